/**
 * `@x/storage-driver-s3`: an S3 storage driver for Temporal External Storage (claim-check
 * pattern), wire-compatible with Temporal's official S3 drivers (Python, Go, Java, TypeScript).
 *
 * @packageDocumentation
 */

/** Re-exported from core: the allowance for clock skew and refresh time in the minimum delete age. */
export { refreshAllowance } from '@x/storage-driver-core';
export { S3StorageDriver } from './driver';
export { classifyS3Error, type S3ErrorKind } from './errors';
export {
  bucketProblem,
  isAccessPointArn,
  isSpecKey,
  isValidBucket,
  isValidBucketName,
  S3_MAX_CLAIM_KEY_BYTES,
  S3_MAX_KEY_BYTES,
  S3_MAX_KEY_PREFIX_BYTES,
  type S3StorageLocation,
  validateClaimBucket,
  validateClaimKey,
  validateKeyPrefix,
} from './keys';
export { s3MinimumDeleteAge } from './lifecycle';
export {
  S3_DEFAULT_HEAD_FIRST_MIN_SIZE,
  S3_DEFAULT_REFRESH_AFTER,
  S3_DRIVER_DEFAULT_CONCURRENCY,
  S3_DRIVER_DEFAULT_NAME,
  S3_DRIVER_TYPE,
  S3_EXISTENCE_CACHE_DEFAULT_MAX_ENTRIES,
  S3_EXISTENCE_CACHE_DEFAULT_TTL,
  S3_MAX_REFRESH_AFTER,
  S3_MIN_REFRESH_AFTER,
  type S3BucketSelector,
  type S3ClientLike,
  type S3ExistenceCacheOptions,
  type S3ExistenceCheck,
  type S3ServerSideEncryption,
  type S3StorageDriverOptions,
} from './options';
