/**
 * `@x/storage-driver-gcs`: a Google Cloud Storage driver for Temporal External Storage (claim-check
 * pattern), wire-compatible with Temporal's official GCS drivers (Go, Python, TypeScript).
 *
 * @packageDocumentation
 */

/** Re-exported from core: the allowance for clock skew and refresh time in the minimum delete age. */
export { refreshAllowance } from '@x/storage-driver-core';
export { GCS_CLAIM_FORMATS, type GcsClaimFormat, readClaimObjectName } from './claims';
export { GCS_DRIVER_TYPE, GcsStorageDriver } from './driver';
export { classifyGcsError, type GcsErrorKind } from './errors';
export {
  bucketProblem,
  encodeGcsSegment,
  GCS_MAX_OBJECT_NAME_BYTES,
  type GcsStorageLocation,
  isGcsSegment,
  isObjectName,
  isValidBucket,
  validateClaimBucket,
  validateClaimObjectName,
} from './names';
export {
  GCS_DEFAULT_DOWNLOAD_STALL_TIMEOUT,
  GCS_DEFAULT_REFRESH_AFTER,
  GCS_DEFAULT_RESUMABLE_UPLOAD_THRESHOLD,
  GCS_DRIVER_DEFAULT_CONCURRENCY,
  GCS_DRIVER_DEFAULT_NAME,
  GCS_HEAD_FIRST_MIN_BYTES,
  GCS_MAX_REFRESH_AFTER,
  GCS_MIN_REFRESH_AFTER,
  type GcsApiErrorLike,
  type GcsBucketLike,
  type GcsBucketSelector,
  type GcsExistenceCheck,
  type GcsFileLike,
  type GcsFilesPage,
  type GcsMediaRequest,
  type GcsObjectMetadata,
  type GcsPreconditionOptions,
  type GcsRetryOptions,
  type GcsStorageDriverOptions,
  type GcsStorageLike,
  gcsMinimumDeleteAge,
} from './options';
