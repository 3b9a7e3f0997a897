/**
 * `@x/storage-driver-fs`: a filesystem storage driver for Temporal External Storage
 * (claim-check pattern) with atomic writes, content-addressed keys, integrity checks and a TTL
 * sweep.
 *
 * @packageDocumentation
 */
export {
  FS_DRIVER_DEFAULT_CONCURRENCY,
  FS_DRIVER_DEFAULT_NAME,
  FS_DRIVER_TYPE,
  FS_MAX_ROOT_BYTES,
  FS_TEMP_FILE_MAX_AGE,
  FS_TMP_DIR,
  FsStorageDriver,
  type FsStorageDriverOptions,
  type FsStorageLocation,
  type FsSweepError,
  type FsSweepOptions,
  type FsSweepRemovedEntry,
  type FsSweepResult,
} from './driver';
export {
  FOLDED_DIR,
  isFoldedStoragePath,
  keyToRelativePath,
  keyToStoragePath,
  MAX_DIRECT_PATH_BYTES,
  MAX_SEGMENT_COMPONENT_BYTES,
  relativePathToKey,
  storagePathToKey,
} from './paths';
