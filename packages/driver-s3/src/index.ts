/**
 * `@x/storage-driver-s3`: an S3 storage driver for Temporal External Storage (claim-check
 * pattern), wire-compatible with Temporal's official S3 drivers (Python, Go, Java, TypeScript).
 *
 * @packageDocumentation
 */
export {
  S3_DRIVER_DEFAULT_CONCURRENCY,
  S3_DRIVER_DEFAULT_NAME,
  S3_DRIVER_TYPE,
  type S3BucketSelector,
  type S3ClientLike,
  type S3ExistenceCheck,
  type S3ServerSideEncryption,
  S3StorageDriver,
  type S3StorageDriverOptions,
  type S3StorageLocation,
} from './driver';
export { classifyS3Error, type S3ErrorKind } from './errors';
export {
  S3_EXISTENCE_CACHE_DEFAULT_MAX_ENTRIES,
  S3_EXISTENCE_CACHE_DEFAULT_TTL,
  type S3ExistenceCacheOptions,
} from './existence-cache';
export {
  bucketProblem,
  isAccessPointArn,
  isSpecKey,
  isValidBucket,
  isValidBucketName,
  S3_MAX_CLAIM_KEY_BYTES,
  S3_MAX_KEY_BYTES,
  S3_MAX_KEY_PREFIX_BYTES,
  validateClaimBucket,
  validateClaimKey,
  validateKeyPrefix,
} from './keys';
export {
  refreshAllowance,
  S3_DEFAULT_REFRESH_AFTER,
  S3_MAX_REFRESH_AFTER,
  S3_MIN_REFRESH_AFTER,
  s3MinimumDeleteAge,
} from './lifecycle';
