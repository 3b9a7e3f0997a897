/**
 * The filesystem storage driver.
 *
 * @module
 */
import type { Stats } from 'node:fs';
import { lstat, mkdir, realpath } from 'node:fs/promises';
import * as path from 'node:path';
import {
  type BackendOperation,
  ContentAddressedStorageDriver,
  type DeleteEntry,
  type DeleteOutcome,
  type ListedObject,
  type ListQuery,
  requireClaimField,
  type StorageDriverCapabilities,
  type StorageDriverError,
  StorageDriverErrorCode,
  type StoreItem,
  validateConcurrency,
} from '@x/storage-driver-core';
import { AtomicWriter } from './atomic-write';
import { displayPath, errnoCode, fsError, isMissing } from './errors';
import { deletePayloadFiles, FS_TMP_DIR, listPayloadFiles, removeStaleTempFiles } from './lifecycle';
import {
  checkOptions,
  FS_DRIVER_DEFAULT_CONCURRENCY,
  FS_DRIVER_DEFAULT_NAME,
  FS_DRIVER_TYPE,
  type FsStorageDriverOptions,
} from './options';
import { type FsStorageLocation, isInside, keyToStoragePath, prefixDirectory } from './paths';
import { readPayloadFiles } from './read';

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
  private readonly writer: AtomicWriter;

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
    this.concurrency = validateConcurrency(checked.concurrency, FS_DRIVER_DEFAULT_CONCURRENCY);
    this.writer = new AtomicWriter({
      root: this.root,
      tmpDir: this.tmpDir,
      concurrency: this.concurrency,
      driverName: this.name,
      now: () => this.now(),
      explicitTimes: checked.clock !== undefined,
      displayPath: (p) => this.displayPath(p),
    });
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
    await this.writer.writeAll(items, rootReal, op.signal);
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
    return readPayloadFiles(locations, {
      rootReal,
      concurrency: this.concurrency,
      driverName: this.name,
      signal: op.signal,
    });
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
    yield* listPayloadFiles({ root: this.root, rootReal, start, query });
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
    return deletePayloadFiles(
      entries.map((e) => e.location),
      {
        rootReal,
        cutoff,
        concurrency: this.concurrency,
        driverName: this.name,
        signal: op.signal,
        classify: (error) => this.wrapFsError(error, 'delete'),
      },
    );
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
    return fsError(error, kind, { driverName: this.name, displayPath: (p) => this.displayPath(p) });
  }

  /** `<root>/relative/path` for messages; never more of the absolute path. */
  private displayPath(p: string): string {
    return displayPath(p, this.root, this.rootRealResolved);
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
        throw this.createError(StorageDriverErrorCode.CONFIG, 'root (or a parent of it) is not a directory', {
          cause: e,
        });
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
}
