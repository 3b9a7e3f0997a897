/**
 * The filesystem driver's side of the lifecycle contract (DESIGN §8): a streaming walk of
 * `<root>/v0` for `list`, deletes (unconditional, or conditional through a quarantine in `.tmp`
 * that never loses a payload a concurrent store refreshed), removal of the directories deletes
 * leave empty, and removal of the temporary files of crashed writers.
 *
 * @module
 */
import type { Dir, Stats } from 'node:fs';
import { link, lstat, opendir, realpath, rename, rmdir, unlink } from 'node:fs/promises';
import * as path from 'node:path';
import {
  type DeleteOutcome,
  displayKey,
  errorCodeOf,
  isStorageDriverError,
  type ListedObject,
  type ListQuery,
  mapBounded,
  StorageDriverError,
  StorageDriverErrorCode,
  throwIfAborted,
} from '@x/storage-driver-core';
import { LINK_UNSUPPORTED_CODES, MAX_PUT_ATTEMPTS, mkdirs, TEMP_FILE_NAME, tempFileName } from './atomic-write';
import { isMissing } from './errors';
import { FS_TMP_DIR, type FsStorageLocation, isInside, MAX_PATH_COMPONENTS, storagePathToKey } from './paths';

/**
 * Age after which `deleteExpired` removes a temporary file left in `.tmp` by a crashed writer
 * (or an interrupted delete): one hour, counted from the later of its mtime and ctime on the
 * system clock.
 */
export const FS_TEMP_FILE_MAX_AGE = 60 * 60 * 1000;

/** Names read from a directory before their `lstat`s run together (bounded memory). */
const LIST_PAGE = 64;
/** Directory entries Node reads per `readdir` call of an open directory. */
const DIR_BUFFER = 128;

/** A payload file found by {@link walkPayloadFiles}. */
interface FoundPayloadFile extends FsStorageLocation {
  /** Size in bytes. */
  readonly size: number;
  /** mtime in milliseconds since the epoch: the last-referenced time. */
  readonly mtimeMs: number;
}

/** What {@link listPayloadFiles} lists. */
export interface ListBatch {
  /** The driver's root (absolute, normalised). */
  readonly root: string;
  /** Real path of the root, resolved for this listing. */
  readonly rootReal: string;
  /** Directory to walk, relative to the root: `prefixDirectory` of the query's prefix. */
  readonly start: string;
  /** What to list. */
  readonly query: ListQuery;
}

/**
 * The driver's `list`: streams the payload files under `<root>/<start>` as listed objects (see
 * {@link walkPayloadFiles}). The directory of a prefix is never entered through a symlinked
 * directory (the walk never follows one either).
 *
 * @throws the filesystem error of a directory or file that cannot be read (not `ENOENT`),
 *   `StorageDriverError` `E_ABORTED` when the query's signal fires
 */
export async function* listPayloadFiles(batch: ListBatch): AsyncGenerator<ListedObject<FsStorageLocation>> {
  const { root, rootReal, start, query } = batch;
  if (start !== 'v0') {
    const expected = path.join(rootReal, ...start.split('/'));
    const real = await realpath(expected).catch((e: unknown) => {
      if (isMissing(e)) return undefined;
      throw e;
    });
    if (real !== expected) return;
  }
  const files = walkPayloadFiles({
    root,
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

/** What {@link walkPayloadFiles} walks and filters. */
interface WalkOptions {
  /** The driver's root (absolute, normalised). */
  readonly root: string;
  /** Directory to walk, relative to the root (`v0`, or deeper for a key prefix). */
  readonly start: string;
  /** Only keys starting with this. */
  readonly prefix: string | undefined;
  /** Only files whose mtime is before this (milliseconds). */
  readonly before: number | undefined;
  /** Stops the walk (`E_ABORTED`). */
  readonly signal: AbortSignal;
}

interface OpenDirectory {
  readonly dir: Dir;
  readonly rel: string;
  readonly abs: string;
  readonly depth: number;
}

/**
 * Streams the payload files under `<root>/<start>`, depth first, with bounded memory: one open
 * directory per level (at most {@link MAX_PATH_COMPONENTS} levels) and one page of names; the
 * tree is never collected, so a directory of a million files costs what one of ten does. Only
 * regular files whose path decodes to a storage key are yielded; symlinks, FIFOs and foreign
 * names are skipped and never followed. Files and directories removed while the walk runs are
 * skipped.
 *
 * @throws the filesystem error of a directory or file that cannot be read (not `ENOENT`),
 *   `StorageDriverError` `E_ABORTED` when `signal` fires
 */
async function* walkPayloadFiles(options: WalkOptions): AsyncGenerator<FoundPayloadFile> {
  const stack: OpenDirectory[] = [];
  const enter = async (rel: string, abs: string, depth: number): Promise<void> => {
    try {
      stack.push({ dir: await opendir(abs, { bufferSize: DIR_BUFFER }), rel, abs, depth });
    } catch (e) {
      if (!isMissing(e)) throw e; // removed meanwhile (an emptied directory): nothing in it
    }
  };
  try {
    const parts = options.start.split('/');
    await enter(options.start, path.join(options.root, ...parts), parts.length);
    let page: string[] = [];
    while (stack.length > 0) {
      throwIfAborted(options.signal);
      const top = stack[stack.length - 1] as OpenDirectory;
      const entry = await top.dir.read();
      if (entry?.isFile()) {
        page.push(entry.name);
        if (page.length >= LIST_PAGE) {
          yield* statPage(options, top, page);
          page = [];
        }
        continue;
      }
      if (entry !== null && !entry.isDirectory()) continue; // symlinks, FIFOs…: never ours
      // The end of `top`, or a subdirectory: first the files of `top` read so far.
      if (page.length > 0) {
        yield* statPage(options, top, page);
        page = [];
      }
      if (entry === null) {
        stack.pop();
        await top.dir.close().catch(() => {});
      } else if (top.depth + 1 < MAX_PATH_COMPONENTS) {
        // Deeper directories cannot hold a stored path: not walked.
        await enter(`${top.rel}/${entry.name}`, path.join(top.abs, entry.name), top.depth + 1);
      }
    }
  } finally {
    for (const { dir } of stack.splice(0).reverse()) await dir.close().catch(() => {});
  }
}

/** Decodes, filters and stats one page of file names of `dir` (the `lstat`s run together). */
async function* statPage(options: WalkOptions, dir: OpenDirectory, names: string[]): AsyncGenerator<FoundPayloadFile> {
  const candidates: FsStorageLocation[] = [];
  for (const name of names) {
    const relativePath = `${dir.rel}/${name}`;
    const key = storagePathToKey(relativePath);
    if (key === undefined) continue; // not a file the driver writes
    if (options.prefix !== undefined && !key.startsWith(options.prefix)) continue;
    candidates.push({ key, relativePath, path: path.join(dir.abs, name) });
  }
  const stats = await Promise.all(
    candidates.map((c) =>
      lstat(c.path).catch((e: unknown) => {
        if (isMissing(e)) return undefined; // deleted meanwhile
        throw e;
      }),
    ),
  );
  for (const [i, c] of candidates.entries()) {
    const s = stats[i];
    if (s === undefined || !s.isFile()) continue;
    if (options.before !== undefined && s.mtimeMs >= options.before) continue;
    yield { ...c, size: s.size, mtimeMs: s.mtimeMs };
  }
}

/** One batch of deletes. */
export interface DeleteBatch {
  /** Real path of the root, resolved for this call. */
  readonly rootReal: string;
  /**
   * Delete only files whose mtime is before this (milliseconds), atomically with respect to a
   * store's refresh; `undefined` to delete unconditionally.
   */
  readonly cutoff: number | undefined;
  /** Files deleted in parallel. */
  readonly concurrency: number;
  /** Name of the driver instance (for errors). */
  readonly driverName: string;
  /** Stops the deletes (`E_ABORTED`). */
  readonly signal: AbortSignal;
  /** The driver's classification of a filesystem error (see `fsError`). */
  readonly classify: (error: unknown) => StorageDriverError;
}

/**
 * The driver's `delete`: deletes payload files, at most `concurrency` at a time (see
 * {@link deletePayloadFile}), then the directories that became empty; one outcome per location,
 * in order. Per-file failures are outcomes.
 */
export async function deletePayloadFiles(locations: FsStorageLocation[], batch: DeleteBatch): Promise<DeleteOutcome[]> {
  const { rootReal, driverName } = batch;
  const ctx: DeleteContext = {
    rootReal,
    directories: new Map<string, Promise<string>>(),
    cutoff: batch.cutoff,
    fail: (error, key, context) => {
      const { code, message, retryable } = batch.classify(error);
      const text = context === undefined ? message : `${displayKey(key)}: ${context}: ${message}`;
      return new StorageDriverError(code, text, { key, cause: error, retryable, driverName });
    },
    refuse: (key, why) =>
      new StorageDriverError(StorageDriverErrorCode.INVALID_CLAIM, `${displayKey(key)} ${why}`, { key, driverName }),
  };
  const outcomes = await mapBounded(
    locations,
    batch.concurrency,
    (location) => deletePayloadFile(ctx, location),
    batch.signal,
    driverName,
  );
  await removeEmptyDirectories(
    rootReal,
    locations.filter((_, i) => outcomes[i] === 'deleted').map((l) => path.posix.dirname(l.relativePath)),
  );
  return outcomes;
}

/** What {@link deletePayloadFile} needs from the driver. */
interface DeleteContext {
  /** Real path of the root, resolved for this call. */
  readonly rootReal: string;
  /**
   * Real paths of the directories of this call's files, by relative path, resolved once per call
   * (a batch of 1,000 mostly shares a few directories). Start with an empty map.
   */
  readonly directories: Map<string, Promise<string>>;
  /**
   * Delete only files whose mtime is before this (milliseconds), atomically with respect to a
   * store's refresh; `undefined` to delete unconditionally.
   */
  readonly cutoff: number | undefined;
  /** A filesystem failure of one file as the error outcome (a `StorageDriverError`). */
  readonly fail: (error: unknown, key: string, context?: string) => StorageDriverError;
  /** The `E_INVALID_CLAIM` outcome of a file the driver refuses to delete. */
  readonly refuse: (key: string, why: string) => StorageDriverError;
}

/**
 * Deletes one payload file and returns its outcome; per-file failures are returned, not thrown.
 *
 * - Never through a symlinked directory (the real path of the file's directory must lie inside
 *   the root's) and never anything but a regular file (a symlink or FIFO at a payload path is
 *   refused with `E_INVALID_CLAIM` and left alone).
 * - Unconditional (`cutoff` undefined): `unlink`.
 * - Conditional: a file whose mtime is not before the cutoff is `kept`. Otherwise it is renamed
 *   into `.tmp` (quarantine), its mtime is read again there, and it is deleted if still before
 *   the cutoff. If a store refreshed it between the first check and the move, it is put back
 *   (`link`, so a fresh copy a store wrote meanwhile wins) and reported `kept`. A store that
 *   comes after the move finds nothing and writes a fresh copy. So a payload whose store
 *   returned is never lost.
 * - A missing file is `missing`.
 */
async function deletePayloadFile(ctx: DeleteContext, location: FsStorageLocation): Promise<DeleteOutcome> {
  try {
    return await deleteOne(ctx, location);
  } catch (e) {
    if (isStorageDriverError(e)) return e;
    return ctx.fail(e, location.key);
  }
}

async function deleteOne(ctx: DeleteContext, location: FsStorageLocation): Promise<DeleteOutcome> {
  const relDir = path.posix.dirname(location.relativePath);
  let dirReal: string;
  try {
    let resolved = ctx.directories.get(relDir);
    if (resolved === undefined) {
      resolved = realpath(path.join(ctx.rootReal, ...relDir.split('/')));
      ctx.directories.set(relDir, resolved);
    }
    dirReal = await resolved;
  } catch (e) {
    if (isMissing(e)) return 'missing';
    throw e;
  }
  if (!isInside(ctx.rootReal, dirReal)) {
    throw ctx.refuse(location.key, 'resolves outside the root (a symlinked directory); not deleted');
  }
  const file = path.join(dirReal, path.basename(location.path));
  let stats: Stats;
  try {
    stats = await lstat(file);
  } catch (e) {
    if (isMissing(e)) return 'missing';
    throw e;
  }
  if (!stats.isFile())
    throw ctx.refuse(location.key, 'is not a regular file (the driver never writes one); not deleted');
  if (ctx.cutoff === undefined) {
    try {
      await unlink(file);
    } catch (e) {
      if (isMissing(e)) return 'missing';
      throw e;
    }
    return 'deleted';
  }
  if (stats.mtimeMs >= ctx.cutoff) return 'kept';

  const name = tempFileName('sweep');
  const quarantine = path.join(ctx.rootReal, FS_TMP_DIR, name);
  try {
    await rename(file, quarantine);
  } catch (e) {
    if (isMissing(e)) return 'missing';
    throw e;
  }
  const moved = await lstat(quarantine);
  if (moved.mtimeMs < ctx.cutoff) {
    await unlink(quarantine);
    return 'deleted';
  }
  // A store refreshed it between the check and the move: put it back.
  try {
    await restoreFile(quarantine, file);
  } catch (e) {
    // Very unlikely (an I/O error); leave it where an operator can find it.
    throw ctx.fail(
      e,
      location.key,
      `it was re-referenced during the delete but could not be put back; it is at <root>/${FS_TMP_DIR}/${name} (move it back by hand within an hour)`,
    );
  }
  await unlink(quarantine).catch(() => {});
  return 'kept';
}

/**
 * Puts a quarantined file back at `dest` (`link`, or `rename` where hard links are unsupported),
 * creating its directory again if a concurrent delete removed it. An existing file at `dest`
 * (a fresh copy a store wrote meanwhile) wins.
 */
async function restoreFile(from: string, dest: string): Promise<void> {
  let viaRename = false;
  for (let attempt = 0; ; attempt++) {
    try {
      if (viaRename) await rename(from, dest);
      else await link(from, dest);
      return;
    } catch (e) {
      const code = errorCodeOf(e);
      if (code === 'EEXIST') return;
      if (attempt >= MAX_PUT_ATTEMPTS) throw e;
      if (code === 'ENOENT') await mkdirs(path.dirname(dest));
      else if (!viaRename && code !== undefined && LINK_UNSUPPORTED_CODES.has(code)) viaRename = true;
      else throw e;
    }
  }
}

/**
 * Removes the directories (relative to the root, `/`-separated) that deletes left empty, and
 * their parents that become empty, deepest first, never `v0` itself. `rmdir` never removes a
 * directory that is not empty, so a directory a store has just written into stays; a store that
 * finds its directory removed creates it again. Best effort: failures are left for the next run.
 */
async function removeEmptyDirectories(rootReal: string, relDirs: Iterable<string>): Promise<void> {
  const byDepth = new Map<number, Set<string>>();
  const add = (rel: string) => {
    const depth = rel.split('/').length;
    if (depth < 2) return; // `v0` stays
    let level = byDepth.get(depth);
    if (level === undefined) {
      level = new Set();
      byDepth.set(depth, level);
    }
    level.add(rel);
  };
  for (const rel of relDirs) add(rel);
  for (let depth = Math.max(0, ...byDepth.keys()); depth >= 2; depth--) {
    for (const rel of byDepth.get(depth) ?? []) {
      try {
        await rmdir(path.join(rootReal, ...rel.split('/')));
      } catch (e) {
        if (errorCodeOf(e) !== 'ENOENT') continue; // not empty (or not removable): its parents are not either
      }
      add(rel.slice(0, rel.lastIndexOf('/')));
    }
  }
}

/**
 * Removes the temporary files of crashed writers (and interrupted deletes) from `.tmp`: only files
 * named as the driver names them (`put-<pid>-<hex>`, `sweep-<pid>-<hex>`), only regular files
 * (a symlink there is never followed nor removed), and only when both their mtime and ctime are
 * older than {@link FS_TEMP_FILE_MAX_AGE} on the system clock (a quarantined payload keeps its old
 * mtime, but its ctime is the time of the move, so a delete in progress never loses it). Best
 * effort: a file that cannot be removed now is tried again next run.
 *
 * @throws the filesystem error of `.tmp` itself (not `ENOENT`), `E_ABORTED` when `signal` fires
 */
export async function removeStaleTempFiles(tmpDir: string, signal: AbortSignal): Promise<void> {
  let dir: Dir;
  try {
    dir = await opendir(tmpDir, { bufferSize: DIR_BUFFER });
  } catch (e) {
    if (isMissing(e)) return;
    throw e;
  }
  const cutoff = Date.now() - FS_TEMP_FILE_MAX_AGE;
  // `for await` closes the directory at the end, on an abort and on an error.
  for await (const entry of dir) {
    throwIfAborted(signal);
    if (!entry.isFile() || !TEMP_FILE_NAME.test(entry.name)) continue;
    const file = path.join(tmpDir, entry.name);
    try {
      const s = await lstat(file);
      if (s.isFile() && Math.max(s.mtimeMs, s.ctimeMs) < cutoff) await unlink(file);
    } catch {
      // Removed meanwhile, or not removable now: the next run tries again.
    }
  }
}
