/**
 * Options of the filesystem driver: their types, the defaults and limits, and validation.
 *
 * @module
 */
import * as path from 'node:path';
import {
  type ContentAddressedStorageDriverOptions,
  configError,
  requireOptionsObject,
  validateConcurrency,
} from '@x/storage-driver-core';

/** `type` of {@link FsStorageDriver}. */
export const FS_DRIVER_TYPE = 'local.fsdriver';
/** Default `name` of {@link FsStorageDriver}. */
export const FS_DRIVER_DEFAULT_NAME = 'fs';
/** Default number of files read or written in parallel per batch. */
export const FS_DRIVER_DEFAULT_CONCURRENCY = 8;
/** Longest accepted `root`, in bytes (keeps `root` + the longest stored path below `PATH_MAX`). */
export const FS_MAX_ROOT_BYTES = 2048;

/** Options of {@link FsStorageDriver}. */
export interface FsStorageDriverOptions extends ContentAddressedStorageDriverOptions {
  /**
   * Directory holding the payloads. Required (no default). Must be an absolute path (a relative
   * path would silently depend on each process's working directory); it is normalised with
   * `path.resolve`. Created with mode `0o700` (including missing parents) on the first store if
   * it does not exist; an existing directory's mode is left alone. Every process sharing a store
   * must use the same root (it is never written into claims). At most 2048 bytes
   * ({@link FS_MAX_ROOT_BYTES}).
   */
  root: string;
  /**
   * Per-instance routing key written into workflow history; override it to run several instances
   * side by side.
   * @default 'fs'
   */
  name?: string;
  /**
   * Largest serialized payload accepted, in bytes, checked for the whole batch before any write.
   * @default 52428800 (50 MiB)
   */
  maxPayloadSize?: number;
  /**
   * Lifetime of a stored payload in milliseconds, counted from its last reference (the last store
   * that returned a claim for it: a store of an already-present payload refreshes its mtime).
   * The default `olderThan` of `deleteExpired`; nothing expires until `deleteExpired` runs (a
   * cron job, `x-storage sweep`). Choose it longer than your longest workflow run plus the
   * namespace retention period. A positive integer.
   * @default undefined (payloads are kept forever)
   */
  ttl?: number;
  /**
   * The clock (milliseconds since the epoch) for the last-referenced times the driver records:
   * with one, every new file's and every refreshed file's mtime is set from it explicitly (one
   * more `futimes` per new file); without one, new files keep the mtime the kernel gives them.
   * `list({ olderThan })` and `deleteExpired` measure ages from it. For tests.
   * @default Date.now
   */
  clock?: () => number;
  /**
   * Files read or written in parallel per `store`/`retrieve` call (1–10000).
   * @default 8
   */
  concurrency?: number;
}

/** The driver's own options, resolved by {@link checkOptions}. */
export interface ResolvedFsStorageDriverOptions {
  /** Absolute root directory, normalised with `path.resolve`. */
  readonly root: string;
  /** Files read or written in parallel per call. */
  readonly concurrency: number;
  /** A `clock` was given: new files get their mtime from it explicitly. */
  readonly explicitTimes: boolean;
}

/**
 * Validates the driver's own options (the base class validates `name`, `maxPayloadSize`, `ttl`
 * and `clock`) and resolves them: `root` normalised, `concurrency` defaulted to
 * {@link FS_DRIVER_DEFAULT_CONCURRENCY}.
 *
 * @throws StorageDriverError `E_CONFIG` if `options` is not an object, `root` is missing, not
 *   absolute, contains NUL or is longer than 2048 bytes, or `concurrency` is invalid
 */
export function checkOptions(options: unknown): ResolvedFsStorageDriverOptions {
  const checked = requireOptionsObject<FsStorageDriverOptions>(
    options,
    'FsStorageDriver options must be an object with a root',
  );
  const root: unknown = checked.root;
  if (typeof root !== 'string' || root.length === 0) throw configError('root must be a non-empty string');
  if (root.includes('\0')) throw configError('root must not contain NUL');
  if (!path.isAbsolute(root)) throw configError('root must be an absolute path');
  if (Buffer.byteLength(root, 'utf8') > FS_MAX_ROOT_BYTES) {
    throw configError(`root must be at most ${FS_MAX_ROOT_BYTES} bytes`);
  }
  return {
    root: path.resolve(root),
    concurrency: validateConcurrency(checked.concurrency, FS_DRIVER_DEFAULT_CONCURRENCY),
    explicitTimes: checked.clock !== undefined,
  };
}
