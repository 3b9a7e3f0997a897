/**
 * The filesystem storage driver: the class and its hooks. The hooks delegate to the modules
 * beside it: `options.ts` (options and validation), `errors.ts` (error classification),
 * `paths.ts` (key ↔ path), `atomic-write.ts` (the write protocol), `read.ts` (hardened reads),
 * `lifecycle.ts` (list, delete, housekeeping).
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
  errorCodeOf,
  type ListedObject,
  type ListQuery,
  type PutOutcome,
  requireClaimField,
  type StorageDriverCapabilities,
  type StorageDriverError,
  StorageDriverErrorCode,
  type StoreItem,
} from '@x/storage-driver-core';
import { AtomicWriter, syncDirectory } from './atomic-write';
import { displayPath, fsError, isMissing } from './errors';
import { deletePayloadFiles, listPayloadFiles, removeStaleTempFiles } from './lifecycle';
import { checkOptions, FS_DRIVER_DEFAULT_NAME, FS_DRIVER_TYPE, type FsStorageDriverOptions } from './options';
import { FS_TMP_DIR, type FsStorageLocation, keyToStoragePath, prefixDirectory, storageLocation } from './paths';
import { readPayloadFiles } from './read';

/**
 * Stores payloads as files under a root directory (DESIGN §5, type `local.fsdriver`):
 * content-addressed (`<root>/v0/...`, one file per distinct payload), written atomically (temp
 * file, fsync, `link()`, directory fsync), read without following symlinks out of the root from
 * claims that carry only `key` and the hash; a file's mtime is its last-referenced time, which
 * `list`, `delete` and `deleteExpired` (DESIGN §8) go by. The package README has the details.
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

  readonly #tmpDir: string;
  readonly #writer: AtomicWriter;
  /** Last resolved real path of the root (for error messages only; checks resolve it anew). */
  #rootReal: string | undefined;

  /**
   * @throws StorageDriverError `E_CONFIG` if `options` is not an object, `root` is missing, not
   *   absolute, contains NUL or is longer than 2048 bytes, or `name`, `maxPayloadSize`, `ttl`,
   *   `clock` or `concurrency` is invalid.
   */
  constructor(options: FsStorageDriverOptions) {
    const resolved = checkOptions(options);
    super(FS_DRIVER_DEFAULT_NAME, options);
    this.root = resolved.root;
    this.concurrency = resolved.concurrency;
    this.#tmpDir = path.join(this.root, FS_TMP_DIR);
    this.#writer = new AtomicWriter({
      root: this.root,
      tmpDir: this.#tmpDir,
      concurrency: this.concurrency,
      driverName: this.name,
      now: () => this.now(),
      explicitTimes: resolved.explicitTimes,
      displayPath: (p) => this.#displayPath(p),
    });
  }

  // --- store and retrieve -----------------------------------------------------------------------

  /** Maps a content-addressed key to its file under the root (see `storageLocation`). */
  protected override _locate(key: string): FsStorageLocation {
    return storageLocation(this.root, key);
  }

  /**
   * Validates an (untrusted) claim: `key` is required, must parse as a core storage key
   * (canonical spellings only, so each object has exactly one key and one path), and must map to
   * a path inside the root. The base adds the index and the driver's name to the error.
   *
   * @throws StorageDriverError `E_INVALID_CLAIM`
   */
  protected override _parseClaim(claimData: Record<string, string>, index: number): FsStorageLocation {
    return storageLocation(this.root, requireClaimField(claimData, 'key', index));
  }

  /**
   * Writes every item that is not already stored and refreshes the mtime of those that are (see
   * `AtomicWriter`: temp file, fsync, `link()` to the final path, directory fsync), creating the
   * root, `.tmp` and `v0` first where missing. Resolves to one outcome per item: `existed` where
   * the file was already in place (a dedup hit, reported to instrumentation), else `written`.
   */
  protected override async _putIfAbsent(
    items: StoreItem<FsStorageLocation>[],
    op: BackendOperation,
  ): Promise<PutOutcome[]> {
    return this.#writer.writeAll(items, await this.#prepareRoot(), op.signal);
  }

  /** Reads every location (`undefined` where no file exists; see `readPayloadFiles`). */
  protected override async _get(
    locations: FsStorageLocation[],
    op: BackendOperation,
  ): Promise<(Uint8Array | undefined)[]> {
    const rootReal = await this.#existingRoot();
    if (rootReal === undefined) return locations.map(() => undefined);
    return readPayloadFiles(locations, {
      rootReal,
      concurrency: this.concurrency,
      driverName: this.name,
      signal: op.signal,
    });
  }

  /**
   * Classifies filesystem errors (see `fsError`): `ENOSPC`, `EIO`, `EMFILE`, `EAGAIN`, `EBUSY`
   * and similar → `E_BACKEND` (retryable); `EACCES`, `EPERM`, `EROFS` → `E_CONFIG`; any other
   * errno → `E_BACKEND` (not retryable). Messages name the path relative to the root
   * (`<root>/...`); the original error is the `cause`.
   */
  protected override _wrapError(error: unknown, op: BackendOperation): StorageDriverError {
    return this.#fsError(error, op.kind);
  }

  // --- lifecycle (the walk, the deletes and the housekeeping are in ./lifecycle) ----------------

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
    const rootReal = await this.#existingRoot();
    if (rootReal === undefined) return;
    await this.#checkOwnDirectories(true);
    yield* listPayloadFiles({ root: this.root, rootReal, start, query });
  }

  /**
   * Deletes payload files (see `deletePayloadFiles`: conditional deletes go through a quarantine
   * in `.tmp` and put back a file a store refreshed), then the directories that became empty. A
   * missing root: every entry is `missing`, nothing is created.
   */
  protected override async _delete(
    entries: DeleteEntry<FsStorageLocation>[],
    options: { readonly referencedBefore: Date | undefined },
    op: BackendOperation,
  ): Promise<DeleteOutcome[]> {
    if ((await this.#existingRoot()) === undefined) return entries.map(() => 'missing');
    const cutoff = options.referencedBefore?.getTime();
    // A conditional delete needs `.tmp` (recreated if an operator removed it); both check that
    // `.tmp` and `v0` are real directories.
    let rootReal: string;
    if (cutoff === undefined) {
      await this.#checkOwnDirectories(true);
      rootReal = await this.#realRoot();
    } else rootReal = await this.#prepareRoot();
    return deletePayloadFiles(
      entries.map((e) => e.location),
      {
        rootReal,
        cutoff,
        concurrency: this.concurrency,
        driverName: this.name,
        signal: op.signal,
        classify: (error) => this.#fsError(error, 'delete'),
      },
    );
  }

  /**
   * Removes the temporary files crashed writers left in `.tmp` (older than
   * `FS_TEMP_FILE_MAX_AGE`); nothing in a dry run, nothing in a missing root.
   */
  protected override async _housekeeping(options: { readonly dryRun: boolean }, op: BackendOperation): Promise<void> {
    if ((await this.#existingRoot()) === undefined) return;
    // Checked in a dry run too: a planted `.tmp` symlink is reported, not walked.
    await this.#checkOwnDirectories(true);
    if (options.dryRun) return;
    await removeStaleTempFiles(this.#tmpDir, op.signal);
  }

  // --- the driver's own methods -------------------------------------------------------------------

  /**
   * Absolute path of the file that holds (or would hold) the payload stored under `key`.
   *
   * @throws StorageDriverError `E_INVALID_CLAIM` if `key` is not a well-formed storage key.
   */
  pathForKey(key: string): string {
    return path.join(this.root, ...keyToStoragePath(key).split('/'));
  }

  // --- private helpers ----------------------------------------------------------------------------

  #fsError(error: unknown, kind: string): StorageDriverError {
    return fsError(error, kind, { driverName: this.name, displayPath: (p) => this.#displayPath(p) });
  }

  #displayPath(p: string): string {
    return displayPath(p, this.root, this.#rootReal);
  }

  /**
   * Real path of the root, resolved anew for each batch (one syscall) so that re-pointing a root
   * symlink (a `current -> disk2` migration) takes effect without a restart.
   */
  async #realRoot(): Promise<string> {
    const real = await realpath(this.root);
    this.#rootReal = real;
    return real;
  }

  /** The real path of the root, or `undefined` when the root does not exist. */
  async #existingRoot(): Promise<string | undefined> {
    try {
      return await this.#realRoot();
    } catch (e) {
      if (isMissing(e)) return undefined;
      throw e;
    }
  }

  /**
   * Creates the root, `.tmp` and `v0` (mode 0o700) as needed and checks that `.tmp` and `v0` are
   * real directories, not symlinks; returns the root's real path.
   *
   * @throws StorageDriverError `E_CONFIG` if the root is not a directory or `.tmp`/`v0` is not a
   *   real directory.
   */
  async #prepareRoot(): Promise<string> {
    try {
      // The first directory mkdir created (the root itself, or a parent of it), if any.
      const created = await mkdir(this.#tmpDir, { recursive: true, mode: 0o700 });
      const v0Created = await mkdir(path.join(this.root, 'v0'), { mode: 0o700 }).then(
        () => true,
        (e: unknown) => {
          if (errorCodeOf(e) !== 'EEXIST') throw e;
          return false;
        },
      );
      // A fresh root: make its new entries durable too (the write protocol syncs `v0` and below).
      if (created !== undefined || v0Created) {
        // The root, and every directory from the root up to the parent of the first one created.
        const dirs = [this.root];
        const top = created === undefined ? this.root : path.dirname(created);
        for (let d = this.root; d !== top && d !== path.dirname(d); ) {
          d = path.dirname(d);
          dirs.push(d);
        }
        for (const d of dirs) await syncDirectory(d);
      }
    } catch (e) {
      const code = errorCodeOf(e);
      if (code === 'ENOTDIR' || code === 'EEXIST') {
        throw this.createError(StorageDriverErrorCode.CONFIG, 'root (or a parent of it) is not a directory', {
          cause: e,
        });
      }
      throw e;
    }
    await this.#checkOwnDirectories(false);
    return this.#realRoot();
  }

  /** Checks that `.tmp` and `v0` under the root, where present, are real directories. */
  async #checkOwnDirectories(allowMissing: boolean): Promise<void> {
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
