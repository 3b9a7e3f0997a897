/**
 * The filesystem storage driver.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { constants as fsConstants, type Stats } from 'node:fs';
import {
  type FileHandle,
  link,
  lstat,
  lutimes,
  mkdir,
  open,
  opendir,
  realpath,
  rename,
  rmdir,
  unlink,
} from 'node:fs/promises';
import * as path from 'node:path';
import {
  type BackendOperation,
  ContentAddressedStorageDriver,
  type ContentAddressedStorageDriverOptions,
  displayKey,
  isStorageDriverError,
  mapBounded,
  requireClaimField,
  StorageDriverError,
  StorageDriverErrorCode,
  type StorageLocation,
  type StoreItem,
  throwIfAborted,
  validateConcurrency,
  validateTtl,
} from '@x/storage-driver-core';
import { keyToStoragePath, storagePathToKey } from './paths';

/** `type` of {@link FsStorageDriver}. */
export const FS_DRIVER_TYPE = 'local.fsdriver';
/** Default `name` of {@link FsStorageDriver}. */
export const FS_DRIVER_DEFAULT_NAME = 'fs';
/** Default number of files read or written in parallel per batch. */
export const FS_DRIVER_DEFAULT_CONCURRENCY = 8;
/** Directory under the root holding in-flight temporary files. */
export const FS_TMP_DIR = '.tmp';
/** Age after which `sweep` removes leftover temporary files (crashed writers): one hour. */
export const FS_TEMP_FILE_MAX_AGE = 60 * 60 * 1000;
/** Longest accepted `root`, in bytes (keeps `root` + the longest stored path below `PATH_MAX`). */
export const FS_MAX_ROOT_BYTES = 2048;

/** Options of {@link FsStorageDriver}. */
export interface FsStorageDriverOptions extends ContentAddressedStorageDriverOptions {
  /**
   * Directory holding the payloads. Required. Must be an absolute path (a relative path would
   * silently depend on each process's working directory); it is normalised with `path.resolve`.
   * Created with mode `0o700` (including missing parents) on the first store if it does not
   * exist; an existing directory's mode is left alone. Every process sharing a store must use
   * the same root (it is never written into claims). At most 2048 bytes.
   */
  root: string;
  /**
   * Per-instance routing key written into workflow history; override it to run several instances
   * side by side. Default: `fs`.
   */
  name?: string;
  /**
   * Largest serialized payload accepted, in bytes, checked for the whole batch before any write.
   * Default: 52428800 (50 MiB).
   */
  maxPayloadSize?: number;
  /**
   * Lifetime of a stored payload in milliseconds, counted from its last store (a store of an
   * already-present payload refreshes its mtime). Used by {@link FsStorageDriver.sweep} as the
   * default `olderThan`; nothing expires without a sweep. Choose it longer than your longest
   * workflow run plus the namespace retention period. Default: none (payloads are kept forever).
   */
  ttl?: number;
  /** Files read or written in parallel per `store`/`retrieve` call (1–10000). Default: 8. */
  concurrency?: number;
}

/** Where one payload lives: its claim key plus the resolved paths. */
export interface FsStorageLocation extends StorageLocation {
  /** The core storage key, as written into the claim (relative, `/`-separated). */
  readonly key: string;
  /** Path of the file relative to the root, `/`-separated (see `keyToStoragePath`). */
  readonly relativePath: string;
  /** Absolute path of the file. */
  readonly path: string;
}

/** Options of {@link FsStorageDriver.sweep}. */
export interface FsSweepOptions {
  /**
   * Remove payloads whose mtime (time of the last store) is more than this many milliseconds in
   * the past. A non-negative integer. Default: the driver's `ttl`.
   */
  olderThan?: number;
  /** Stops the sweep between files; the sweep then rejects with `E_ABORTED`. */
  signal?: AbortSignal;
  /** Report what would be removed without removing anything. Default: `false`. */
  dryRun?: boolean;
}

/** One payload file removed (or, in a dry run, that would be removed) by a sweep. */
export interface FsSweepRemovedEntry {
  /**
   * The storage key of the payload (as in claims), or `null` for over-long keys stored at a
   * folded path, whose key cannot be recovered from the path.
   */
  key: string | null;
  /** Path of the file relative to the root, `/`-separated. */
  path: string;
  /** Size of the file in bytes. */
  size: number;
  /** Last store time of the payload. */
  mtime: Date;
}

/** A file or directory a sweep could not process; the sweep carries on with the rest. */
export interface FsSweepError {
  /** Path relative to the root, `/`-separated. */
  path: string;
  /** The errno code (`EACCES`, ...), when there is one. */
  code: string | undefined;
  /** What failed. */
  message: string;
}

/** What {@link FsStorageDriver.sweep} did. */
export interface FsSweepResult {
  /** Whether this was a dry run (nothing removed). */
  dryRun: boolean;
  /** Payloads last stored before this instant were removed. */
  cutoff: Date;
  /** Payload files examined. */
  scanned: number;
  /** Payload files removed (in a dry run: that would be removed). */
  removed: FsSweepRemovedEntry[];
  /** Total size of `removed`, in bytes. */
  removedBytes: number;
  /** Empty directories removed. */
  removedDirectories: number;
  /** Leftover temporary files (older than one hour) removed from `.tmp`. */
  removedTempFiles: number;
  /** Files and symlinks under `v0/` that the driver never writes; left alone. */
  skipped: number;
  /** Per-file failures; the sweep continues past them. */
  errors: FsSweepError[];
}

/** State of one sweep run. */
interface SweepRun {
  readonly result: FsSweepResult;
  readonly cutoff: number;
  readonly tempCutoff: number;
  readonly dryRun: boolean;
  readonly signal: AbortSignal | undefined;
}

const O_NOFOLLOW = fsConstants.O_NOFOLLOW ?? 0;
const O_NONBLOCK = fsConstants.O_NONBLOCK ?? 0;
/** Read-only, never through a symlink, never blocking on a FIFO planted at a payload path. */
const OPEN_EXISTING = fsConstants.O_RDONLY | O_NOFOLLOW | O_NONBLOCK;

/** Delay before the one re-read of a payload that was missing (see `readOne`). */
const MISSING_RETRY_DELAY_MS = 20;

/** Names of the temp files the driver writes in `.tmp` (the only files its sweep deletes there). */
const TEMP_FILE_NAME = /^(?:put|sweep)-\d+-[0-9a-f]{24}$/;

/** Retries of the mkdir+link loop when a concurrent sweep keeps removing an empty directory. */
const MAX_PUT_ATTEMPTS = 8;

/** errno codes of transient failures: retrying later may succeed. */
const TRANSIENT_CODES: ReadonlySet<string> = new Set([
  'ENOSPC',
  'EDQUOT',
  'EIO',
  'EMFILE',
  'ENFILE',
  'EAGAIN',
  'EWOULDBLOCK',
  'EBUSY',
  'EINTR',
  'ETIMEDOUT',
  'ESTALE',
  'ENOMEM',
]);
/** errno codes of permanent refusals: fix the configuration (permissions, mount options). */
const CONFIG_CODES: ReadonlySet<string> = new Set(['EACCES', 'EPERM', 'EROFS']);
/** errno codes of `link()` on filesystems without hard links; the driver then uses `rename()`. */
const LINK_UNSUPPORTED_CODES: ReadonlySet<string> = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EMLINK']);
/** errno codes of `fsync` on a directory where the filesystem does not support it. */
const DIR_SYNC_IGNORED_CODES: ReadonlySet<string> = new Set(['EINVAL', 'ENOTSUP', 'EOPNOTSUPP', 'EISDIR', 'EBADF']);

function errnoCode(error: unknown): string | undefined {
  if (isStorageDriverError(error)) return undefined;
  if (typeof error !== 'object' || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

function isMissing(error: unknown): boolean {
  const code = errnoCode(error);
  return code === 'ENOENT' || code === 'ENOTDIR';
}

function isInside(parent: string, child: string): boolean {
  if (child === parent) return true;
  const prefix = parent.endsWith(path.sep) ? parent : parent + path.sep;
  return child.startsWith(prefix);
}

function invalidOption(message: string): StorageDriverError {
  return new StorageDriverError(StorageDriverErrorCode.CONFIG, message);
}

/**
 * Validates the driver-specific options before `super()` (which validates `name` and
 * `maxPayloadSize`).
 *
 * @throws StorageDriverError `E_CONFIG`
 */
function checkOptions(options: unknown): FsStorageDriverOptions {
  if (typeof options !== 'object' || options === null) {
    throw invalidOption('FsStorageDriver options must be an object with a root');
  }
  const root = (options as { root?: unknown }).root;
  if (typeof root !== 'string' || root.length === 0) throw invalidOption('root must be a non-empty string');
  if (root.includes('\0')) throw invalidOption('root must not contain NUL');
  if (!path.isAbsolute(root)) throw invalidOption('root must be an absolute path');
  if (Buffer.byteLength(root, 'utf8') > FS_MAX_ROOT_BYTES) {
    throw invalidOption(`root must be at most ${FS_MAX_ROOT_BYTES} bytes`);
  }
  return options as FsStorageDriverOptions;
}

/**
 * Stores payloads as files under a root directory (DESIGN §5, type `local.fsdriver`).
 *
 * - Content-addressed: the file for a payload lives at the path mapped from its core storage key
 *   (`<root>/v0/...`, see `keyToStoragePath`); identical payloads share one file.
 * - Atomic: each file is written to `<root>/.tmp`, fsynced, then hard-linked (`link()`, atomic
 *   put-if-absent) to its final path, and the directory is fsynced; a reader never sees a partial
 *   file and a crash never leaves one at a final path.
 * - Claims carry only `key` (relative, never the root) plus `hash_algorithm`/`hash_value`; they
 *   are untrusted: keys are parsed strictly, mapped inside the root, and read without following
 *   symlinks out of it.
 * - Lifecycle: a file's mtime is the time of its last store (a dedup hit refreshes it);
 *   {@link FsStorageDriver.sweep} removes files older than `ttl`.
 *
 * Errors (all `StorageDriverError`): the constructor throws `E_CONFIG` for invalid options;
 * `store` throws `E_TOO_LARGE`, `E_ABORTED`, `E_BACKEND` (retryable for `ENOSPC`, `EIO`,
 * `EMFILE`, `EAGAIN`, `EBUSY` and similar), `E_CONFIG` (`EACCES`, `EPERM`, `EROFS`);
 * `retrieve` additionally throws `E_INVALID_CLAIM`, `E_NOT_FOUND`, `E_INTEGRITY`. API misuse
 * (non-array arguments) throws `TypeError`.
 *
 * @example
 * ```ts
 * const driver = new FsStorageDriver({ root: '/var/lib/temporal-payloads', ttl: 30 * 24 * 3600_000 });
 * const dataConverter = { externalStorage: new ExternalStorage({ drivers: [driver] }) };
 * ```
 */
export class FsStorageDriver extends ContentAddressedStorageDriver<FsStorageLocation> {
  /** Per-implementation identifier: `local.fsdriver`. */
  readonly type = FS_DRIVER_TYPE;
  /** Absolute, normalised root directory. */
  readonly root: string;
  /** Payload lifetime in milliseconds used by `sweep`, or `undefined` (no default expiry). */
  readonly ttl: number | undefined;
  /** Files read or written in parallel per call. */
  readonly concurrency: number;

  private readonly tmpDir: string;
  /** Last resolved real path of the root (for error messages only; checks resolve it anew). */
  private rootRealResolved: string | undefined;
  private linkUnsupported = false;

  /**
   * @throws StorageDriverError `E_CONFIG` if `options` is not an object, `root` is missing, not
   *   absolute, contains NUL or is longer than 2048 bytes, or `name`, `maxPayloadSize`, `ttl`
   *   or `concurrency` is invalid.
   */
  constructor(options: FsStorageDriverOptions) {
    const checked = checkOptions(options);
    super(FS_DRIVER_DEFAULT_NAME, checked);
    this.root = path.resolve(checked.root);
    this.tmpDir = path.join(this.root, FS_TMP_DIR);
    this.ttl = validateTtl(checked.ttl);
    this.concurrency = validateConcurrency(checked.concurrency, FS_DRIVER_DEFAULT_CONCURRENCY);
  }

  /**
   * Absolute path of the file that holds (or would hold) the payload stored under `key`.
   *
   * @throws StorageDriverError `E_INVALID_CLAIM` if `key` is not a well-formed storage key.
   */
  pathForKey(key: string): string {
    return path.join(this.root, ...keyToStoragePath(key).split('/'));
  }

  /**
   * Removes payloads whose last store is older than `olderThan` (default: `ttl`) milliseconds,
   * then the directories this leaves empty, and temporary files older than one hour left by
   * crashed writers. Walks only `<root>/v0` and `<root>/.tmp`, never follows symlinks, and
   * leaves files the driver never writes alone.
   *
   * Safe to run while other processes store: a store refreshes the mtime of a payload it finds
   * already present, and a payload that is refreshed between the sweep's check and its removal
   * is put back (the file is first moved into `.tmp`, re-checked, then deleted or restored).
   * A sweep with `olderThan` above a few seconds therefore never removes a payload whose store
   * has just returned. Per-file failures are collected in `errors`; the sweep continues.
   *
   * @throws StorageDriverError `E_CONFIG` if neither `olderThan` nor `ttl` is set, or `olderThan`
   *   is not a non-negative integer, or the root cannot be accessed (`EACCES`/`EPERM`/`EROFS`);
   *   `E_BACKEND` if the root cannot be read for another reason; `E_ABORTED` if `signal` fires.
   *   Failures on single files are collected in `errors` instead.
   */
  async sweep(options: FsSweepOptions = {}): Promise<FsSweepResult> {
    const olderThan = options.olderThan ?? this.ttl;
    if (olderThan === undefined) {
      throw this._error(StorageDriverErrorCode.CONFIG, 'sweep needs olderThan or a driver ttl');
    }
    if (typeof olderThan !== 'number' || !Number.isSafeInteger(olderThan) || olderThan < 0) {
      throw this._error(
        StorageDriverErrorCode.CONFIG,
        `olderThan must be a non-negative integer number of milliseconds, got ${String(olderThan)}`,
      );
    }
    const signal = options.signal;
    const dryRun = options.dryRun === true;
    const now = Date.now();
    const cutoff = now - olderThan;
    const result: FsSweepResult = {
      dryRun,
      cutoff: new Date(cutoff),
      scanned: 0,
      removed: [],
      removedBytes: 0,
      removedDirectories: 0,
      removedTempFiles: 0,
      skipped: 0,
      errors: [],
    };
    throwIfAborted(signal, this.name);
    try {
      await lstat(this.root);
    } catch (e) {
      if (isMissing(e)) return result;
      throw this.wrapFsError(e, 'sweep');
    }
    try {
      // Never walk (or delete inside) a `.tmp` or `v0` that is a symlink planted in the root.
      if (dryRun) await this.checkOwnDirectories(true);
      else await this.prepareRoot();
    } catch (e) {
      throw this.wrapFsError(e, 'sweep');
    }
    const run: SweepRun = { result, cutoff, tempCutoff: now - FS_TEMP_FILE_MAX_AGE, dryRun, signal };
    await this.sweepTemp(run);
    await this.sweepTree(run, path.join(this.root, 'v0'), 'v0', true);
    return result;
  }

  /** Claim fields: `{ key }` (the base adds the hash fields). */
  protected _claimFields(location: FsStorageLocation): Record<string, string> {
    return { key: location.key };
  }

  /** Maps a content-addressed key to its file under the root. */
  protected override _locate(key: string): FsStorageLocation {
    return this.locationForKey(key, undefined);
  }

  /**
   * Validates an (untrusted) claim: `key` is required, must parse as a core storage key, and must
   * map to a path inside the root.
   *
   * @throws StorageDriverError `E_INVALID_CLAIM`
   */
  protected _parseClaim(claimData: Record<string, string>, index: number): FsStorageLocation {
    // keyToStoragePath parses the key strictly (core parseStorageKey, canonical spellings only, so
    // each object has exactly one key and one path); the base adds the index and driver name.
    return this.locationForKey(requireClaimField(claimData, 'key', index), index);
  }

  /**
   * Writes every item that is not already stored (temp file, fsync, `link()` to the final path,
   * fsync of the directory), and refreshes the mtime of those that are, at most `concurrency`
   * at a time.
   */
  protected async _putIfAbsent(items: StoreItem<FsStorageLocation>[], op: BackendOperation): Promise<void> {
    const rootReal = await this.prepareRoot();
    // Each target directory is checked to resolve inside the root before anything is written
    // into it (a symlinked directory planted in the tree must not redirect payload bytes).
    const parents = new Map<string, Promise<string | undefined>>();
    // Directories that gained an entry; each is fsynced once per batch, after every link, and
    // before the claims are returned (1,000 payloads of one workflow share one directory).
    const dirty = new Set<string>();
    await mapBounded(
      items,
      this.concurrency,
      async (item, _i, signal) => {
        for (const d of await this.putOne(item, rootReal, parents, signal)) dirty.add(d);
      },
      op.signal,
      this.name,
    );
    await mapBounded([...dirty], this.concurrency, (d) => syncDirectory(d), op.signal, this.name);
  }

  /** Reads every location (`undefined` where no file exists), at most `concurrency` at a time. */
  protected async _get(locations: FsStorageLocation[], op: BackendOperation): Promise<(Uint8Array | undefined)[]> {
    let rootReal: string;
    try {
      rootReal = await this.realRoot();
    } catch (e) {
      if (isMissing(e)) return locations.map(() => undefined);
      throw e;
    }
    // Locations of one batch mostly share a directory: resolve each parent once.
    const parents = new Map<string, Promise<string>>();
    return mapBounded(
      locations,
      this.concurrency,
      (location, _i, signal) => this.readOne(location, rootReal, parents, signal),
      op.signal,
      this.name,
    );
  }

  /**
   * Classifies filesystem errors: `ENOSPC`, `EDQUOT`, `EIO`, `EMFILE`, `ENFILE`, `EAGAIN`,
   * `EBUSY`, `EINTR`, `ETIMEDOUT`, `ESTALE`, `ENOMEM` → `E_BACKEND` (retryable); `EACCES`,
   * `EPERM`, `EROFS` → `E_CONFIG` (not retryable); any other errno → `E_BACKEND` (not
   * retryable); anything else → `E_BACKEND` (retryable). Messages name the path relative to the
   * root (`<root>/...`); the original error is the `cause`.
   */
  protected override _wrapError(error: unknown, op: BackendOperation): StorageDriverError {
    return this.wrapFsError(error, op.kind);
  }

  // ---------------------------------------------------------------------------------------------

  /** Converts an error from `fs` into a `StorageDriverError` (see `_wrapError`). */
  private wrapFsError(error: unknown, kind: string): StorageDriverError {
    if (isStorageDriverError(error)) return error;
    const code = errnoCode(error);
    if (code === undefined) {
      const message = error instanceof Error ? error.message : String(error);
      return this._error(StorageDriverErrorCode.BACKEND, `${kind} failed: ${message}`, { cause: error });
    }
    const e = error as NodeJS.ErrnoException;
    const where = typeof e.path === 'string' ? ` on ${this.displayPath(e.path)}` : '';
    const syscall = typeof e.syscall === 'string' ? ` (${e.syscall})` : '';
    const message = `${kind} failed: ${code}${syscall}${where}`;
    if (CONFIG_CODES.has(code)) {
      return this._error(
        StorageDriverErrorCode.CONFIG,
        `${message}: the driver cannot write or read its root; check permissions and mount options`,
        { cause: error, retryable: false },
      );
    }
    return this._error(StorageDriverErrorCode.BACKEND, message, { cause: error, retryable: TRANSIENT_CODES.has(code) });
  }

  /** `<root>/relative/path` for messages; never more of the absolute path. */
  private displayPath(p: string): string {
    // Reads open files through the root's real path; name those relative to it too.
    const base =
      this.rootRealResolved !== undefined && isInside(this.rootRealResolved, p) ? this.rootRealResolved : this.root;
    const rel = path.relative(base, p);
    if (rel === '') return '<root>';
    return `<root>/${rel.split(path.sep).join('/')}`;
  }

  /**
   * Puts a quarantined file back at `dest` (link, or rename where hard links are unsupported),
   * creating parent directories as needed. An existing file at `dest` (a fresh copy a store
   * wrote meanwhile) wins.
   */
  private async restoreFile(from: string, dest: string): Promise<void> {
    let tryRename = false;
    for (let attempt = 0; ; attempt++) {
      const viaRename = this.linkUnsupported || tryRename;
      try {
        if (viaRename) await rename(from, dest);
        else await link(from, dest);
        return;
      } catch (e) {
        const code = errnoCode(e);
        if (code === 'EEXIST') return;
        if (attempt >= MAX_PUT_ATTEMPTS) throw e;
        if (code === 'ENOENT') await this.mkdirs(path.dirname(dest));
        else if (!viaRename && code !== undefined && LINK_UNSUPPORTED_CODES.has(code)) tryRename = true;
        else throw e;
      }
    }
  }

  private locationForKey(key: string, index: number | undefined): FsStorageLocation {
    const relativePath = keyToStoragePath(key);
    const abs = path.resolve(this.root, ...relativePath.split('/'));
    // Belt and braces: the mapping never produces `.`/`..` components, but check anyway.
    const rel = path.relative(this.root, abs);
    if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel) || !isInside(this.root, abs)) {
      throw this._error(StorageDriverErrorCode.INVALID_CLAIM, 'Claim key resolves outside the root', {
        key,
        index,
      });
    }
    return { key, relativePath, path: abs };
  }

  /**
   * Real path of the root, resolved anew for each batch (one syscall) so that re-pointing a root
   * symlink (a `current -> disk2` migration) takes effect without a restart.
   */
  private async realRoot(): Promise<string> {
    const real = await realpath(this.root);
    this.rootRealResolved = real;
    return real;
  }

  /**
   * Creates the root, `.tmp` and `v0` (mode 0o700) as needed and checks that `.tmp` and `v0` are
   * real directories, not symlinks; returns the root's real path.
   *
   * @throws StorageDriverError `E_CONFIG` if the root is not a directory or `.tmp`/`v0` is not a
   *   real directory.
   */
  private async prepareRoot(): Promise<string> {
    try {
      await mkdir(this.tmpDir, { recursive: true, mode: 0o700 });
      await mkdir(path.join(this.root, 'v0'), { mode: 0o700 }).catch((e: unknown) => {
        if (errnoCode(e) !== 'EEXIST') throw e;
      });
    } catch (e) {
      const code = errnoCode(e);
      if (code === 'ENOTDIR' || code === 'EEXIST') {
        throw this._error(StorageDriverErrorCode.CONFIG, 'root (or a parent of it) is not a directory', { cause: e });
      }
      throw e;
    }
    await this.checkOwnDirectories(false);
    return this.realRoot();
  }

  /** Checks that `.tmp` and `v0` under the root, where present, are real directories. */
  private async checkOwnDirectories(allowMissing: boolean): Promise<void> {
    for (const name of [FS_TMP_DIR, 'v0']) {
      let stats: Stats;
      try {
        stats = await lstat(path.join(this.root, name));
      } catch (e) {
        if (allowMissing && isMissing(e)) continue;
        throw e;
      }
      if (!stats.isDirectory()) {
        throw this._error(
          StorageDriverErrorCode.CONFIG,
          `<root>/${name} is ${stats.isSymbolicLink() ? 'a symlink' : 'not a directory'}; refusing to use it (remove it; the driver recreates it)`,
        );
      }
    }
  }

  /**
   * Ensures `dir` exists and resolves inside the root's real path (checked once per directory
   * per batch). Resolves to the first directory it had to create, if any, so the caller can
   * fsync the new directory entries.
   *
   * @throws StorageDriverError `E_CONFIG` if it resolves outside the root.
   */
  private checkedParent(
    dir: string,
    rootReal: string,
    parents: Map<string, Promise<string | undefined>>,
  ): Promise<string | undefined> {
    let checked = parents.get(dir);
    if (checked === undefined) {
      checked = (async () => {
        const outside = () =>
          this._error(
            StorageDriverErrorCode.CONFIG,
            `${this.displayPath(dir)} resolves outside the root (a symlinked directory); refusing to write through it`,
          );
        // Check the nearest existing ancestor before creating anything below it, so that not
        // even an empty directory is created through a planted symlink.
        let existing = dir;
        let real: string | undefined;
        for (;;) {
          try {
            real = await realpath(existing);
            break;
          } catch (e) {
            if (!isMissing(e) || existing === this.root || !isInside(this.root, existing)) throw e;
            existing = path.dirname(existing);
          }
        }
        if (!isInside(rootReal, real)) throw outside();
        if (existing === dir) return undefined;
        const firstCreated = await this.mkdirs(dir);
        if (!isInside(rootReal, await realpath(dir))) throw outside();
        return firstCreated;
      })();
      parents.set(dir, checked);
    }
    return checked;
  }

  /** `mkdir -p` with mode 0o700; returns the first directory created, if any. */
  private async mkdirs(dir: string): Promise<string | undefined> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await mkdir(dir, { recursive: true, mode: 0o700 });
      } catch (e) {
        // A concurrent sweep removed a parent between two steps of the recursive mkdir.
        if (errnoCode(e) !== 'ENOENT' || attempt >= MAX_PUT_ATTEMPTS) throw e;
      }
    }
  }

  /**
   * Reads one payload file; `undefined` if it does not exist. A miss is retried once after
   * {@link MISSING_RETRY_DELAY_MS}: a concurrent sweep that finds a stale payload re-referenced
   * moves it aside and puts it back within microseconds, and a reader must not fail in between.
   */
  private async readOne(
    location: FsStorageLocation,
    rootReal: string,
    parents: Map<string, Promise<string>>,
    signal: AbortSignal,
  ): Promise<Uint8Array | undefined> {
    const first = await this.readOnce(location, rootReal, parents, signal);
    if (first !== undefined) return first;
    await new Promise((resolve) => setTimeout(resolve, MISSING_RETRY_DELAY_MS));
    parents.delete(path.dirname(location.path));
    return this.readOnce(location, rootReal, parents, signal);
  }

  private async readOnce(
    location: FsStorageLocation,
    rootReal: string,
    parents: Map<string, Promise<string>>,
    signal: AbortSignal,
  ): Promise<Uint8Array | undefined> {
    throwIfAborted(signal, this.name);
    let parentReal: string;
    try {
      const parent = path.dirname(location.path);
      let resolved = parents.get(parent);
      if (resolved === undefined) {
        resolved = realpath(parent);
        parents.set(parent, resolved);
      }
      parentReal = await resolved;
    } catch (e) {
      if (isMissing(e)) return undefined;
      throw e;
    }
    if (!isInside(rootReal, parentReal)) {
      throw this._error(
        StorageDriverErrorCode.INVALID_CLAIM,
        `Claim key ${displayKey(location.key)} resolves outside the root (symlinked directory)`,
        { key: location.key },
      );
    }
    throwIfAborted(signal, this.name);
    let handle: FileHandle;
    try {
      handle = await open(path.join(parentReal, path.basename(location.path)), OPEN_EXISTING);
    } catch (e) {
      if (isMissing(e)) return undefined;
      if (errnoCode(e) === 'ELOOP') {
        throw this._error(
          StorageDriverErrorCode.INVALID_CLAIM,
          `Claim key ${displayKey(location.key)} resolves to a symlink; refusing to follow it`,
          { key: location.key, cause: e },
        );
      }
      throw e;
    }
    try {
      const stats = await handle.stat();
      if (!stats.isFile()) {
        throw this._error(
          StorageDriverErrorCode.INVALID_CLAIM,
          `Claim key ${displayKey(location.key)} is not a regular file`,
          {
            key: location.key,
          },
        );
      }
      const buffer = await handle.readFile({ signal });
      return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
    } finally {
      await handle.close();
    }
  }

  /**
   * If a regular file of the right size exists at `file`, refreshes its mtime (dedup hit) and
   * returns `present`. Returns `mismatch` if something else is there (a damaged file of another
   * size, a planted symlink), which the caller atomically replaces.
   *
   * Path-based on purpose (`lutimes`, not `futimes` on an open descriptor): if a sweep moves the
   * file away before the update, the update fails with ENOENT and the caller writes a fresh copy;
   * if the update lands first, the sweep sees the fresh mtime and puts the file back.
   */
  private async touchExisting(file: string, size: number): Promise<'present' | 'missing' | 'mismatch'> {
    try {
      const stats = await lstat(file);
      if (!stats.isFile() || stats.size !== size) return 'mismatch';
      const now = new Date();
      await lutimes(file, now, now);
      return 'present';
    } catch (e) {
      if (isMissing(e)) return 'missing';
      throw e;
    }
  }

  /** Stores one item; returns the directories to fsync (none for a dedup hit). */
  private async putOne(
    item: StoreItem<FsStorageLocation>,
    rootReal: string,
    parents: Map<string, Promise<string | undefined>>,
    signal: AbortSignal,
  ): Promise<string[]> {
    const final = item.location.path;
    const dir = path.dirname(final);
    // Directories created here (for this item or a sibling of the batch) must be fsynced too.
    let firstCreated = await this.checkedParent(dir, rootReal, parents);
    let tmp: string | undefined;
    let tryRename = false; // set when link() failed in a way that suggests no hard-link support
    try {
      for (let attempt = 0; ; attempt++) {
        throwIfAborted(signal, this.name);
        const state = await this.touchExisting(final, item.bytes.byteLength);
        if (state === 'present') return []; // Dedup hit: mtime refreshed, nothing to write.
        if (attempt >= MAX_PUT_ATTEMPTS) {
          throw this._error(
            StorageDriverErrorCode.BACKEND,
            `Could not store ${this.displayPath(final)}: its directory kept disappearing (concurrent sweeps?)`,
            { key: item.location.key },
          );
        }
        tmp ??= await this.writeTemp(item.bytes, signal);
        throwIfAborted(signal, this.name);
        const viaRename = state === 'mismatch' || this.linkUnsupported || tryRename;
        try {
          if (viaRename) {
            // Atomic replace: a damaged file is overwritten; identical content is harmless.
            await rename(tmp, final);
            tmp = undefined;
            // link() failed but rename() worked: this filesystem has no hard links.
            if (tryRename) this.linkUnsupported = true;
          } else {
            await link(tmp, final);
          }
          break;
        } catch (e) {
          const code = errnoCode(e);
          if (code === 'EEXIST') continue; // Someone stored the same content meanwhile: touch it.
          if (code === 'ENOENT') {
            firstCreated = (await this.mkdirs(dir)) ?? firstCreated;
            continue;
          }
          if (!viaRename && code !== undefined && LINK_UNSUPPORTED_CODES.has(code)) {
            tryRename = true;
            continue;
          }
          throw e;
        }
      }
      return this.directoriesToSync(dir, firstCreated);
    } finally {
      if (tmp !== undefined) await unlink(tmp).catch(() => {});
    }
  }

  /** Writes `bytes` to a fresh file in `.tmp` (mode 0o600, exclusive create), fsynced. */
  private async writeTemp(bytes: Uint8Array, signal: AbortSignal): Promise<string> {
    const file = path.join(this.tmpDir, `put-${process.pid}-${randomBytes(12).toString('hex')}`);
    let handle: FileHandle;
    try {
      handle = await open(file, 'wx', 0o600);
    } catch (e) {
      if (errnoCode(e) !== 'ENOENT') throw e;
      await this.mkdirs(this.tmpDir); // Someone removed .tmp; recreate it once.
      handle = await open(file, 'wx', 0o600);
    }
    let ok = false;
    try {
      await handle.writeFile(bytes);
      throwIfAborted(signal, this.name);
      await handle.sync();
      ok = true;
    } finally {
      await handle.close().catch(() => {});
      if (!ok) await unlink(file).catch(() => {});
    }
    return file;
  }

  /** `dir` and, when directories were created, each of them and the parent of the first. */
  private directoriesToSync(dir: string, firstCreated: string | undefined): string[] {
    const dirs = [dir];
    if (firstCreated !== undefined && isInside(path.dirname(firstCreated), dir)) {
      for (let d = path.dirname(dir); ; d = path.dirname(d)) {
        dirs.push(d);
        if (d === path.dirname(firstCreated) || d === path.dirname(d)) break;
      }
    }
    return dirs;
  }

  // --- sweep ---------------------------------------------------------------------------------

  private sweepFail(run: SweepRun, relativePath: string, error: unknown): void {
    const wrapped = this.wrapFsError(error, 'sweep');
    run.result.errors.push({ path: relativePath, code: errnoCode(error), message: wrapped.message });
  }

  /** Removes temporary files older than one hour (crashed writers, interrupted sweeps). */
  private async sweepTemp(run: SweepRun): Promise<void> {
    const dir = this.tmpDir;
    let entries: string[];
    try {
      entries = await listDirectory(dir);
    } catch (e) {
      if (!isMissing(e)) this.sweepFail(run, FS_TMP_DIR, e);
      return;
    }
    for (const name of entries) {
      throwIfAborted(run.signal, this.name);
      const rel = `${FS_TMP_DIR}/${name}`;
      if (!TEMP_FILE_NAME.test(name)) {
        run.result.skipped++; // not a file this driver writes: never delete it
        continue;
      }
      const file = path.join(dir, name);
      try {
        const stats = await lstat(file);
        // ctime too: a sweep's quarantine file keeps the payload's old mtime but its ctime is
        // the time of the move, so a concurrent sweep never deletes it from under its owner.
        if (!stats.isFile() || Math.max(stats.mtimeMs, stats.ctimeMs) >= run.tempCutoff) continue;
        if (!run.dryRun) await unlink(file);
        run.result.removedTempFiles++;
      } catch (e) {
        if (!isMissing(e)) this.sweepFail(run, rel, e);
      }
    }
  }

  /** Sweeps `dir` (relative path `rel`) depth-first; removes it afterwards if empty (not `v0`). */
  private async sweepTree(run: SweepRun, dir: string, rel: string, top: boolean): Promise<void> {
    throwIfAborted(run.signal, this.name);
    const subdirs: string[] = [];
    try {
      const handle = await opendir(dir);
      for await (const entry of handle) {
        throwIfAborted(run.signal, this.name);
        const childRel = `${rel}/${entry.name}`;
        if (entry.isDirectory()) subdirs.push(entry.name);
        else if (entry.isFile()) await this.sweepFile(run, path.join(dir, entry.name), childRel);
        else run.result.skipped++; // symlinks, FIFOs, ...: never ours, never followed
      }
    } catch (e) {
      if (isStorageDriverError(e)) throw e;
      if (!isMissing(e)) this.sweepFail(run, rel, e);
      return;
    }
    for (const name of subdirs) await this.sweepTree(run, path.join(dir, name), `${rel}/${name}`, false);
    if (top || run.dryRun) return;
    try {
      await rmdir(dir);
      run.result.removedDirectories++;
    } catch (e) {
      const code = errnoCode(e);
      // Not empty (kept payloads, or a store just created a file there): fine.
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'ENOENT') this.sweepFail(run, rel, e);
    }
  }

  private async sweepFile(run: SweepRun, file: string, rel: string): Promise<void> {
    const parsed = storagePathToKey(rel);
    if (parsed === undefined) {
      run.result.skipped++;
      return;
    }
    run.result.scanned++;
    try {
      const stats = await lstat(file);
      if (!stats.isFile() || stats.mtimeMs >= run.cutoff) return;
      if (run.dryRun) {
        this.sweepRecord(run, parsed.key, rel, stats);
        return;
      }
      const removed = await this.removeIfStale(run, file, rel);
      if (removed !== undefined) this.sweepRecord(run, parsed.key, rel, removed);
    } catch (e) {
      if (isStorageDriverError(e)) throw e;
      if (!isMissing(e)) this.sweepFail(run, rel, e);
    }
  }

  private sweepRecord(run: SweepRun, key: string | null, rel: string, stats: Stats): void {
    run.result.removed.push({ key, path: rel, size: stats.size, mtime: stats.mtime });
    run.result.removedBytes += stats.size;
  }

  /**
   * Moves `file` into `.tmp`, re-checks its mtime there, and deletes it if still stale; if a store
   * refreshed it between the first check and the move, puts it back. Returns the stats of the
   * removed file, or `undefined` if it was kept (or already gone).
   */
  private async removeIfStale(run: SweepRun, file: string, rel: string): Promise<Stats | undefined> {
    const name = `sweep-${process.pid}-${randomBytes(12).toString('hex')}`;
    const quarantine = path.join(this.tmpDir, name);
    try {
      await rename(file, quarantine);
    } catch (e) {
      if (isMissing(e)) return undefined;
      throw e;
    }
    const stats = await lstat(quarantine);
    if (stats.mtimeMs >= run.cutoff) {
      try {
        await this.restoreFile(quarantine, file);
      } catch (e) {
        // Very unlikely (I/O error); leave the file where an operator can find it.
        run.result.errors.push({
          path: rel,
          code: errnoCode(e),
          message: `${rel} was re-stored during the sweep but could not be put back; it is at ${FS_TMP_DIR}/${name} (move it back by hand within an hour): ${this.wrapFsError(e, 'sweep').message}`,
        });
        return undefined;
      }
      await unlink(quarantine).catch(() => {});
      return undefined;
    }
    await unlink(quarantine);
    return stats;
  }
}

async function syncDirectory(dir: string): Promise<void> {
  let handle: FileHandle;
  try {
    handle = await open(dir, fsConstants.O_RDONLY);
  } catch (e) {
    if (isMissing(e)) return; // Swept meanwhile; nothing of ours left in it.
    throw e;
  }
  try {
    await handle.sync();
  } catch (e) {
    const code = errnoCode(e);
    if (code === undefined || !DIR_SYNC_IGNORED_CODES.has(code)) throw e;
  } finally {
    await handle.close();
  }
}

async function listDirectory(dir: string): Promise<string[]> {
  const names: string[] = [];
  const handle = await opendir(dir);
  for await (const entry of handle) names.push(entry.name);
  return names;
}
