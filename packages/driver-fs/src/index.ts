/**
 * `@x/storage-driver-fs`: a filesystem storage driver for Temporal External Storage
 * (claim-check pattern) with atomic writes, content-addressed keys, integrity checks and the
 * lifecycle contract (list, delete, deleteExpired by last-referenced time).
 *
 * @packageDocumentation
 */
export { FsStorageDriver } from './driver';
export { FS_TEMP_FILE_MAX_AGE } from './lifecycle';
export {
  FS_DRIVER_DEFAULT_CONCURRENCY,
  FS_DRIVER_DEFAULT_NAME,
  FS_DRIVER_TYPE,
  FS_MAX_ROOT_BYTES,
  type FsStorageDriverOptions,
} from './options';
export {
  FS_TMP_DIR,
  type FsStorageLocation,
  keyToRelativePath,
  keyToStoragePath,
  MAX_DIRECT_PATH_BYTES,
  MAX_SEGMENT_COMPONENT_BYTES,
  relativePathToKey,
  storagePathToKey,
} from './paths';
