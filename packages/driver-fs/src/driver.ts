/**
 * The filesystem storage driver.
 *
 * @module
 */
import { constants as fsConstants, type Stats } from 'node:fs';
import { type FileHandle, link, lstat, lutimes, mkdir, open, realpath, rename, unlink } from 'node:fs/promises';
import * as path from 'node:path';
import {
  type BackendOperation,
  ContentAddressedStorageDriver,
  type ContentAddressedStorageDriverOptions,
  type DeleteEntry,
  type DeleteOutcome,
  displayKey,
  isStorageDriverError,
  type ListedObject,
  type ListQuery,
  mapBounded,
  requireClaimField,
  type StorageDriverCapabilities,
  StorageDriverError,
  StorageDriverErrorCode,
  type StorageLocation,
  type StoreItem,
  throwIfAborted,
  validateConcurrency,
} from '@x/storage-driver-core';
import {
  errnoCode,
  isInside,
  isMissing,
  LINK_UNSUPPORTED_CODES,
  MAX_PUT_ATTEMPTS,
  mkdirs,
  tempFileName,
} from './fsutil';
import {
  deletePayloadFile,
  FS_TMP_DIR,
  removeEmptyDirectories,
  removeStaleTempFiles,
  walkPayloadFiles,
} from './lifecycle';
import { keyToStoragePath, prefixDirectory } from './paths';

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
   * Lifetime of a stored payload in milliseconds, counted from its last reference (the last store
   * that returned a claim for it: a store of an already-present payload refreshes its mtime).
   * The default `olderThan` of `deleteExpired`; nothing expires until `deleteExpired` runs (a
   * cron job, `x-storage sweep`). Choose it longer than your longest workflow run plus the
   * namespace retention period. A positive integer. Default: none (payloads are kept forever).
   */
  ttl?: number;
  /**
   * The clock (milliseconds since the epoch) for the last-referenced times the driver records:
   * with one, every new file's and every refreshed file's mtime is set from it explicitly (one
   * more `futimes` per new file); without one, new files keep the mtime the kernel gives them.
   * `list({ olderThan })` and `deleteExpired` measure ages from it. For tests. Default: `Date.now`.
   */
  clock?: () => number;
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

const O_NOFOLLOW = fsConstants.O_NOFOLLOW ?? 0;
const O_NONBLOCK = fsConstants.O_NONBLOCK ?? 0;
/** Read-only, never through a symlink, never blocking on a FIFO planted at a payload path. */
const OPEN_EXISTING = fsConstants.O_RDONLY | O_NOFOLLOW | O_NONBLOCK;

/** Delay before the one re-read of a payload that was missing (see `readOne`). */
const MISSING_RETRY_DELAY_MS = 20;

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
/** errno codes of `fsync` on a directory where the filesystem does not support it. */
const DIR_SYNC_IGNORED_CODES: ReadonlySet<string> = new Set(['EINVAL', 'ENOTSUP', 'EOPNOTSUPP', 'EISDIR', 'EBADF']);

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
 * - Lifecycle (DESIGN §8): a file's mtime is its last-referenced time (a dedup hit refreshes
 *   it); `list` walks `<root>/v0` as a stream, `delete` and `deleteExpired` remove files (a
 *   conditional delete is race-free against concurrent stores), `deleteExpired` also removes
 *   the temporary files of crashed writers. See the base class for the methods.
 *
 * Errors (all `StorageDriverError`): the constructor throws `E_CONFIG` for invalid options;
 * `store` throws `E_TOO_LARGE`, `E_ABORTED`, `E_BACKEND` (retryable for `ENOSPC`, `EIO`,
 * `EMFILE`, `EAGAIN`, `EBUSY` and similar), `E_CONFIG` (`EACCES`, `EPERM`, `EROFS`);
 * `retrieve` additionally throws `E_INVALID_CLAIM`, `E_NOT_FOUND`, `E_INTEGRITY`; `list`,
 * `delete` and `deleteExpired` throw `E_CONFIG` when `<root>/v0` or `<root>/.tmp` is a symlink
 * or not a directory, or the tree cannot be read (`EACCES`…), and report per-file failures of
 * deletes in `errors`. After `close()` every call throws `E_CONFIG`. API misuse (non-array
 * arguments) throws `TypeError`.
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
  /** Files read or written in parallel per call. */
  readonly concurrency: number;

  private readonly tmpDir: string;
  /** Last resolved real path of the root (for error messages only; checks resolve it anew). */
  private rootRealResolved: string | undefined;
  private linkUnsupported = false;
  /** A `clock` was given: new files get their mtime from it explicitly. */
  private readonly explicitTimes: boolean;

  /**
   * @throws StorageDriverError `E_CONFIG` if `options` is not an object, `root` is missing, not
   *   absolute, contains NUL or is longer than 2048 bytes, or `name`, `maxPayloadSize`, `ttl`,
   *   `clock` or `concurrency` is invalid.
   */
  constructor(options: FsStorageDriverOptions) {
    const checked = checkOptions(options);
    super(FS_DRIVER_DEFAULT_NAME, checked);
    this.root = path.resolve(checked.root);
    this.tmpDir = path.join(this.root, FS_TMP_DIR);
    this.explicitTimes = checked.clock !== undefined;
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

  /** Claim fields: `{ key }` (the base adds the hash fields). */
  protected override _claimFields(location: FsStorageLocation): Record<string, string> {
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
  protected override _parseClaim(claimData: Record<string, string>, index: number): FsStorageLocation {
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

  // --- lifecycle hooks (the walk, deletes and housekeeping are in ./lifecycle) ----------------

  /** Last-referenced times are exact: every store that returns a claim sets the file's mtime. */
  protected override _capabilities(): Partial<StorageDriverCapabilities> {
    return { lastReferenced: 'exact' };
  }

  /**
   * Streams the payload files under `<root>/v0` (from the directory a key prefix fixes), with
   * bounded memory; `.tmp` is never entered, symlinks never followed, foreign files skipped. A
   * missing root lists nothing and creates nothing.
   *
   * @throws (from the iterator) `E_CONFIG` when `<root>/v0` or `<root>/.tmp` is a symlink or not
   *   a directory, or a directory cannot be read (`EACCES`…); `E_BACKEND` for other I/O errors
   */
  protected override async *_list(query: ListQuery): AsyncIterable<ListedObject<FsStorageLocation>> {
    const start = prefixDirectory(query.prefix);
    if (start === undefined) return; // no stored key can start with the prefix
    let rootReal: string;
    try {
      rootReal = await this.realRoot();
    } catch (e) {
      if (isMissing(e)) return;
      throw e;
    }
    await this.checkOwnDirectories(true);
    if (start !== 'v0') {
      // The directory of a prefix: never through a symlinked directory (the walk below never
      // follows one either).
      const expected = path.join(rootReal, ...start.split('/'));
      const real = await realpath(expected).catch((e: unknown) => {
        if (isMissing(e)) return undefined;
        throw e;
      });
      if (real !== expected) return;
    }
    const files = walkPayloadFiles({
      root: this.root,
      start,
      prefix: query.prefix,
      before: query.referencedBefore?.getTime(),
      signal: query.signal,
    });
    for await (const f of files) {
      yield {
        location: { key: f.key, relativePath: f.relativePath, path: f.path },
        key: f.key,
        size: f.size,
        lastReferenced: new Date(f.mtimeMs),
      };
    }
  }

  /**
   * Deletes payload files, at most `concurrency` at a time (see `deletePayloadFile`: conditional
   * deletes go through a quarantine in `.tmp` and put back a file a store refreshed), then the
   * directories that became empty. A missing root: every entry is `missing`, nothing is created.
   */
  protected override async _delete(
    entries: DeleteEntry<FsStorageLocation>[],
    options: { readonly referencedBefore: Date | undefined },
    op: BackendOperation,
  ): Promise<DeleteOutcome[]> {
    try {
      await this.realRoot();
    } catch (e) {
      if (isMissing(e)) return entries.map(() => 'missing');
      throw e;
    }
    const cutoff = options.referencedBefore?.getTime();
    // A conditional delete needs `.tmp` (recreated if an operator removed it); both check that
    // `.tmp` and `v0` are real directories.
    let rootReal: string;
    if (cutoff === undefined) {
      await this.checkOwnDirectories(true);
      rootReal = await this.realRoot();
    } else rootReal = await this.prepareRoot();
    const ctx = {
      rootReal,
      directories: new Map<string, Promise<string>>(),
      cutoff,
      fail: (error: unknown, key: string, context?: string) => {
        const { code, message, retryable } = this.wrapFsError(error, 'delete');
        const text = context === undefined ? message : `${displayKey(key)}: ${context}: ${message}`;
        return this.createError(code, text, { key, cause: error, retryable });
      },
      refuse: (key: string, why: string) =>
        this.createError(StorageDriverErrorCode.INVALID_CLAIM, `${displayKey(key)} ${why}`, { key }),
    };
    const outcomes = await mapBounded(
      entries,
      this.concurrency,
      (entry) => deletePayloadFile(ctx, entry.location),
      op.signal,
      this.name,
    );
    await removeEmptyDirectories(
      rootReal,
      entries.filter((_, i) => outcomes[i] === 'deleted').map((e) => path.posix.dirname(e.location.relativePath)),
    );
    return outcomes;
  }

  /**
   * Removes the temporary files crashed writers left in `.tmp` (older than
   * `FS_TEMP_FILE_MAX_AGE`); nothing in a dry run, nothing in a missing root.
   */
  protected override async _housekeeping(options: { readonly dryRun: boolean }, op: BackendOperation): Promise<void> {
    try {
      await this.realRoot();
    } catch (e) {
      if (isMissing(e)) return;
      throw e;
    }
    // Checked in a dry run too: a planted `.tmp` symlink is reported, not walked.
    await this.checkOwnDirectories(true);
    if (options.dryRun) return;
    await removeStaleTempFiles(this.tmpDir, op.signal);
  }

  // ---------------------------------------------------------------------------------------------

  /** Converts an error from `fs` into a `StorageDriverError` (see `_wrapError`). */
  private wrapFsError(error: unknown, kind: string): StorageDriverError {
    if (isStorageDriverError(error)) return error;
    const code = errnoCode(error);
    if (code === undefined) {
      const message = error instanceof Error ? error.message : String(error);
      return this.createError(StorageDriverErrorCode.BACKEND, `${kind} failed: ${message}`, { cause: error });
    }
    const e = error as NodeJS.ErrnoException;
    const where = typeof e.path === 'string' ? ` on ${this.displayPath(e.path)}` : '';
    const syscall = typeof e.syscall === 'string' ? ` (${e.syscall})` : '';
    const message = `${kind} failed: ${code}${syscall}${where}`;
    if (CONFIG_CODES.has(code)) {
      return this.createError(
        StorageDriverErrorCode.CONFIG,
        `${message}: the driver cannot write or read its root; check permissions and mount options`,
        { cause: error, retryable: false },
      );
    }
    return this.createError(StorageDriverErrorCode.BACKEND, message, { cause: error, retryable: TRANSIENT_CODES.has(code) });
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

  private locationForKey(key: string, index: number | undefined): FsStorageLocation {
    const relativePath = keyToStoragePath(key);
    const abs = path.resolve(this.root, ...relativePath.split('/'));
    // Belt and braces: the mapping never produces `.`/`..` components, but check anyway.
    const rel = path.relative(this.root, abs);
    if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel) || !isInside(this.root, abs)) {
      throw this.createError(StorageDriverErrorCode.INVALID_CLAIM, 'Claim key resolves outside the root', {
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
        throw this.createError(StorageDriverErrorCode.CONFIG, 'root (or a parent of it) is not a directory', { cause: e });
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
        throw this.createError(
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
          this.createError(
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
        const firstCreated = await mkdirs(dir);
        if (!isInside(rootReal, await realpath(dir))) throw outside();
        return firstCreated;
      })();
      parents.set(dir, checked);
    }
    return checked;
  }

  /**
   * Reads one payload file; `undefined` if it does not exist. A miss is retried once after
   * {@link MISSING_RETRY_DELAY_MS}: a concurrent conditional delete that finds a stale payload
   * re-referenced moves it aside and puts it back within microseconds, and a reader must not fail
   * in between.
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
      throw this.createError(
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
        throw this.createError(
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
        throw this.createError(
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
   * Path-based on purpose (`lutimes`, not `futimes` on an open descriptor): if a conditional
   * delete moves the file away before the update, the update fails with ENOENT and the caller
   * writes a fresh copy; if the update lands first, the delete sees the fresh mtime and puts the
   * file back. The time is the driver's clock (`Date.now` unless a `clock` was given).
   */
  private async touchExisting(file: string, size: number): Promise<'present' | 'missing' | 'mismatch'> {
    try {
      const stats = await lstat(file);
      if (!stats.isFile() || stats.size !== size) return 'mismatch';
      const now = new Date(this.now());
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
          throw this.createError(
            StorageDriverErrorCode.BACKEND,
            `Could not store ${this.displayPath(final)}: its directory kept disappearing (concurrent deletes?)`,
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
            firstCreated = (await mkdirs(dir)) ?? firstCreated;
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

  /**
   * Writes `bytes` to a fresh file in `.tmp` (mode 0o600, exclusive create), fsynced. With a
   * `clock`, its mtime (kept by the `link` into place) is set from the clock.
   */
  private async writeTemp(bytes: Uint8Array, signal: AbortSignal): Promise<string> {
    const file = path.join(this.tmpDir, tempFileName('put'));
    let handle: FileHandle;
    try {
      handle = await open(file, 'wx', 0o600);
    } catch (e) {
      if (errnoCode(e) !== 'ENOENT') throw e;
      await mkdirs(this.tmpDir); // Someone removed .tmp; recreate it once.
      handle = await open(file, 'wx', 0o600);
    }
    let ok = false;
    try {
      await handle.writeFile(bytes);
      throwIfAborted(signal, this.name);
      if (this.explicitTimes) {
        const now = new Date(this.now());
        await handle.utimes(now, now);
      }
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
}

async function syncDirectory(dir: string): Promise<void> {
  let handle: FileHandle;
  try {
    handle = await open(dir, fsConstants.O_RDONLY);
  } catch (e) {
    if (isMissing(e)) return; // Deleted meanwhile; nothing of ours left in it.
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
