/**
 * The write protocol of the filesystem driver, in one place: each payload is written to a fresh
 * temporary file in `<root>/.tmp`, fsynced, then hard-linked (`link()`, atomic put-if-absent) to
 * its final path (or renamed there where the filesystem has no hard links, or over a damaged
 * file); every directory that gained an entry is fsynced once per batch before the claims are
 * returned. A payload already in place is a dedup hit: its mtime is refreshed, nothing is
 * written or fsynced.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { constants as fsConstants, fsync, writev } from 'node:fs';
import { type FileHandle, link, lstat, lutimes, mkdir, open, realpath, rename, unlink } from 'node:fs/promises';
import * as path from 'node:path';
import {
  errorCodeOf,
  mapBounded,
  type PutOutcome,
  StorageDriverError,
  StorageDriverErrorCode,
  type StoreItem,
  throwIfAborted,
} from '@x/storage-driver-core';
import { isMissing } from './errors';
import { type FsStorageLocation, isInside } from './paths';

/** Retries of the mkdir+link loops when a concurrent delete keeps removing an empty directory. */
export const MAX_PUT_ATTEMPTS = 8;

/** errno codes of `link()` on filesystems without hard links; the driver then uses `rename()`. */
export const LINK_UNSUPPORTED_CODES: ReadonlySet<string> = new Set([
  'EPERM',
  'ENOTSUP',
  'EOPNOTSUPP',
  'ENOSYS',
  'EMLINK',
]);

/** errno codes of `fsync` on a directory where the filesystem does not support it. */
const DIR_SYNC_IGNORED_CODES: ReadonlySet<string> = new Set(['EINVAL', 'ENOTSUP', 'EOPNOTSUPP', 'EISDIR', 'EBADF']);

/**
 * Names of the files the driver writes in `.tmp`: `put-…` (a store's temp file) and `sweep-…`
 * (a conditional delete's quarantine). The only files its housekeeping ever deletes there.
 */
export const TEMP_FILE_NAME = /^(?:put|sweep)-\d+-[0-9a-f]{24}$/;

/** A fresh, unguessable name for a file in `.tmp` (matches {@link TEMP_FILE_NAME}). */
export function tempFileName(kind: 'put' | 'sweep'): string {
  return `${kind}-${process.pid}-${randomBytes(12).toString('hex')}`;
}

/** `mkdir -p` with mode 0o700; returns the first directory created, if any. */
export async function mkdirs(dir: string): Promise<string | undefined> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await mkdir(dir, { recursive: true, mode: 0o700 });
    } catch (e) {
      // A concurrent delete removed a parent between two steps of the recursive mkdir.
      if (errorCodeOf(e) !== 'ENOENT' || attempt >= MAX_PUT_ATTEMPTS) throw e;
    }
  }
}

/** What an {@link AtomicWriter} needs from the driver. */
export interface AtomicWriterOptions {
  /** The driver's root (absolute, normalised). */
  readonly root: string;
  /** `<root>/.tmp`, where temporary files are written. */
  readonly tmpDir: string;
  /** Files written in parallel per batch. */
  readonly concurrency: number;
  /** Name of the driver instance (for errors). */
  readonly driverName: string;
  /** The driver's clock: the mtime of a dedup hit and, with `explicitTimes`, of a new file. */
  readonly now: () => number;
  /** A `clock` was given: new files get their mtime from it explicitly. */
  readonly explicitTimes: boolean;
  /** How a path appears in error messages (`<root>/…`). */
  readonly displayPath: (p: string) => string;
}

/**
 * Writes batches of payload files with the protocol of this module. Remembers, once a `link()`
 * failed and `rename()` worked, that the filesystem has no hard links.
 */
export class AtomicWriter {
  readonly #options: AtomicWriterOptions;
  #linkUnsupported = false;

  /** @param options - see {@link AtomicWriterOptions}. */
  constructor(options: AtomicWriterOptions) {
    this.#options = options;
  }

  /**
   * Writes every item that is not already stored (temp file, fsync, `link()` to the final path,
   * fsync of the directory), and refreshes the mtime of those that are, at most `concurrency`
   * at a time. Resolves once every file and every directory that gained an entry is fsynced, to
   * one outcome per item: `existed` where the file was already in place (a dedup hit), else
   * `written`.
   *
   * @param rootReal - the root's real path, resolved for this batch; every target directory must
   *   resolve inside it.
   * @throws StorageDriverError `E_CONFIG` if a target directory resolves outside the root,
   *   `E_BACKEND` if a directory keeps disappearing, `E_ABORTED`; the filesystem's errors as
   *   they are
   */
  async writeAll(items: StoreItem<FsStorageLocation>[], rootReal: string, signal: AbortSignal): Promise<PutOutcome[]> {
    const { concurrency, driverName } = this.#options;
    // Each target directory is checked to resolve inside the root before anything is written
    // into it (a symlinked directory planted in the tree must not redirect payload bytes).
    const parents = new Map<string, Promise<string | undefined>>();
    // Directories that gained an entry; each is fsynced once per batch, after every link, and
    // before the claims are returned (1,000 payloads of one workflow share one directory).
    const dirty = new Set<string>();
    const outcomes = await mapBounded(
      items,
      concurrency,
      async (item, _i, itemSignal): Promise<PutOutcome> => {
        const dirs = await this.#putOne(item, rootReal, parents, itemSignal);
        if (dirs === undefined) return 'existed';
        for (const d of dirs) dirty.add(d);
        return 'written';
      },
      signal,
      driverName,
    );
    await mapBounded([...dirty], concurrency, (d) => syncDirectory(d), signal, driverName);
    return outcomes;
  }

  /**
   * Ensures `dir` exists and resolves inside the root's real path (checked once per directory
   * per batch). Resolves to the first directory it had to create, if any, so the caller can
   * fsync the new directory entries.
   *
   * @throws StorageDriverError `E_CONFIG` if it resolves outside the root.
   */
  #checkedParent(
    dir: string,
    rootReal: string,
    parents: Map<string, Promise<string | undefined>>,
  ): Promise<string | undefined> {
    const { root } = this.#options;
    let checked = parents.get(dir);
    if (checked === undefined) {
      checked = (async () => {
        const outside = () =>
          new StorageDriverError(
            StorageDriverErrorCode.CONFIG,
            `${this.#options.displayPath(dir)} resolves outside the root (a symlinked directory); refusing to write through it`,
            { driverName: this.#options.driverName },
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
            if (!isMissing(e) || existing === root || !isInside(root, existing)) throw e;
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
   * If a regular file of the right size exists at `file`, refreshes its mtime (dedup hit) and
   * returns `present`. Returns `mismatch` if something else is there (a damaged file of another
   * size, a planted symlink), which the caller atomically replaces.
   *
   * Path-based on purpose (`lutimes`, not `futimes` on an open descriptor): if a conditional
   * delete moves the file away before the update, the update fails with ENOENT and the caller
   * writes a fresh copy; if the update lands first, the delete sees the fresh mtime and puts the
   * file back. The time is the driver's clock (`Date.now` unless a `clock` was given).
   */
  async #touchExisting(file: string, size: number): Promise<'present' | 'missing' | 'mismatch'> {
    try {
      const stats = await lstat(file);
      if (!stats.isFile() || stats.size !== size) return 'mismatch';
      const now = new Date(this.#options.now());
      await lutimes(file, now, now);
      return 'present';
    } catch (e) {
      if (isMissing(e)) return 'missing';
      throw e;
    }
  }

  /**
   * Stores one item; returns the directories to fsync, or `undefined` for a dedup hit (the file
   * was already in place, possibly stored by a concurrent writer meanwhile: only its mtime was
   * refreshed).
   */
  async #putOne(
    item: StoreItem<FsStorageLocation>,
    rootReal: string,
    parents: Map<string, Promise<string | undefined>>,
    signal: AbortSignal,
  ): Promise<string[] | undefined> {
    const { driverName } = this.#options;
    const final = item.location.path;
    const dir = path.dirname(final);
    // Directories created here (for this item or a sibling of the batch) must be fsynced too.
    let firstCreated = await this.#checkedParent(dir, rootReal, parents);
    let tmp: string | undefined;
    let tryRename = false; // set when link() failed in a way that suggests no hard-link support
    try {
      for (let attempt = 0; ; attempt++) {
        throwIfAborted(signal, driverName);
        const state = await this.#touchExisting(final, item.size);
        if (state === 'present') return undefined; // Dedup hit: mtime refreshed, nothing to write.
        if (attempt >= MAX_PUT_ATTEMPTS) {
          throw new StorageDriverError(
            StorageDriverErrorCode.BACKEND,
            `Could not store ${this.#options.displayPath(final)}: its directory kept disappearing (concurrent deletes?)`,
            { key: item.location.key, driverName },
          );
        }
        tmp ??= await this.#writeTemp(item.parts, signal);
        throwIfAborted(signal, driverName);
        const viaRename = state === 'mismatch' || this.#linkUnsupported || tryRename;
        try {
          if (viaRename) {
            // Atomic replace: a damaged file is overwritten; identical content is harmless.
            await rename(tmp, final);
            tmp = undefined;
            // link() failed but rename() worked: this filesystem has no hard links.
            if (tryRename) this.#linkUnsupported = true;
          } else {
            await link(tmp, final);
          }
          break;
        } catch (e) {
          const code = errorCodeOf(e);
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
      return directoriesToSync(dir, firstCreated);
    } finally {
      if (tmp !== undefined) await unlink(tmp).catch(() => {});
    }
  }

  /**
   * Writes `parts` one after the other to a fresh file in `.tmp` (mode 0o600, exclusive create),
   * fsynced: a large payload's `data` goes from the caller's buffer to the file, never copied. With
   * a `clock`, its mtime (kept by the `link` into place) is set from the clock.
   */
  async #writeTemp(parts: readonly Uint8Array[], signal: AbortSignal): Promise<string> {
    const { tmpDir, driverName } = this.#options;
    const file = path.join(tmpDir, tempFileName('put'));
    let handle: FileHandle;
    try {
      handle = await open(file, 'wx', 0o600);
    } catch (e) {
      if (errorCodeOf(e) !== 'ENOENT') throw e;
      await mkdirs(tmpDir); // Someone removed .tmp; recreate it once.
      handle = await open(file, 'wx', 0o600);
    }
    let ok = false;
    try {
      await writeParts(handle, parts);
      throwIfAborted(signal, driverName);
      if (this.#options.explicitTimes) {
        const now = new Date(this.#options.now());
        await handle.utimes(now, now);
      }
      await syncHandle(handle);
      ok = true;
    } finally {
      await handle.close().catch(() => {});
      if (!ok) await unlink(file).catch(() => {});
    }
    return file;
  }
}

/** `dir` and, when directories were created, each of them and the parent of the first. */
function directoriesToSync(dir: string, firstCreated: string | undefined): string[] {
  const dirs = [dir];
  if (firstCreated !== undefined && isInside(path.dirname(firstCreated), dir)) {
    for (let d = path.dirname(dir); ; d = path.dirname(d)) {
      dirs.push(d);
      if (d === path.dirname(firstCreated) || d === path.dirname(d)) break;
    }
  }
  return dirs;
}

/**
 * Most bytes one `writev` is given (`writeFile`'s own piece size): a payload up to 512 KiB is one
 * request. Larger pieces made the fsync of a 50 MiB file take 2× longer in one store out of three
 * here (the kernel's dirty-page throttling), where 512 KiB pieces never did.
 */
const MAX_WRITE_BYTES = 512 * 1024;

/**
 * Writes `parts` in order at the file's current position with `writev` (one request to the thread
 * pool for the header, the caller's data and the trailer, where a write per part costs one each;
 * at most {@link MAX_WRITE_BYTES} per request), looping over short writes. Through the descriptor,
 * as {@link syncHandle}.
 */
async function writeParts(handle: FileHandle, parts: readonly Uint8Array[]): Promise<void> {
  let pending = parts.filter((part) => part.byteLength > 0);
  while (pending.length > 0) {
    const batch: Uint8Array[] = [];
    let bytes = 0;
    for (const part of pending) {
      if (bytes === MAX_WRITE_BYTES) break;
      const piece = part.byteLength <= MAX_WRITE_BYTES - bytes ? part : part.subarray(0, MAX_WRITE_BYTES - bytes);
      batch.push(piece);
      bytes += piece.byteLength;
    }
    const written = await new Promise<number>((resolve, reject) =>
      writev(handle.fd, batch, (e, n) => (e ? reject(e) : resolve(n))),
    );
    if (written <= 0) throw new Error('writev wrote nothing');
    // Drop what was written: whole parts, then the written head of the next one.
    let left = written;
    while (pending.length > 0 && left >= (pending[0] as Uint8Array).byteLength) {
      left -= (pending[0] as Uint8Array).byteLength;
      pending = pending.slice(1);
    }
    if (left > 0) pending[0] = (pending[0] as Uint8Array).subarray(left);
  }
}

/**
 * fsyncs an open file or directory through its descriptor (`fs.fsync`) rather than
 * `FileHandle.sync()`: Yarn Plug'n'Play replaces `fs.promises` with its own `FileHandle`, whose
 * `sync()` throws "Method not implemented", while the descriptor is the real one.
 */
function syncHandle(handle: FileHandle): Promise<void> {
  return new Promise((resolve, reject) => fsync(handle.fd, (e) => (e ? reject(e) : resolve())));
}

/** fsyncs a directory's entries; a directory deleted meanwhile or a filesystem without directory fsync is fine. */
export async function syncDirectory(dir: string): Promise<void> {
  let handle: FileHandle;
  try {
    handle = await open(dir, fsConstants.O_RDONLY);
  } catch (e) {
    if (isMissing(e)) return; // Deleted meanwhile; nothing of ours left in it.
    throw e;
  }
  try {
    await syncHandle(handle);
  } catch (e) {
    const code = errorCodeOf(e);
    if (code === undefined || !DIR_SYNC_IGNORED_CODES.has(code)) throw e;
  } finally {
    await handle.close();
  }
}
