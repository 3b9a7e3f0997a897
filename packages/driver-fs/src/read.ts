/**
 * Reading payload files for `retrieve`, hardened against hostile claims and planted files: the
 * real path of each file's directory must lie inside the root's, the file is opened with
 * `O_NOFOLLOW | O_NONBLOCK` and must be a regular file. A missing file reads as `undefined`.
 *
 * @module
 */
import { constants as fsConstants } from 'node:fs';
import { type FileHandle, open, realpath } from 'node:fs/promises';
import * as path from 'node:path';
import {
  displayKey,
  errorCodeOf,
  mapBounded,
  StorageDriverError,
  StorageDriverErrorCode,
  throwIfAborted,
} from '@x/storage-driver-core';
import { isMissing } from './errors';
import { type FsStorageLocation, isInside } from './paths';

const O_NOFOLLOW = fsConstants.O_NOFOLLOW ?? 0;
const O_NONBLOCK = fsConstants.O_NONBLOCK ?? 0;
/** Read-only, never through a symlink, never blocking on a FIFO planted at a payload path. */
const OPEN_EXISTING = fsConstants.O_RDONLY | O_NOFOLLOW | O_NONBLOCK;

/** Delay before the one re-read of a payload that was missing (see {@link readPayloadFiles}). */
const MISSING_RETRY_DELAY_MS = 20;

/** One batch of reads. */
export interface ReadBatch {
  /** Real path of the root, resolved for this batch. */
  readonly rootReal: string;
  /** Files read in parallel. */
  readonly concurrency: number;
  /** Name of the driver instance (for errors). */
  readonly driverName: string;
  /** Stops the reads (`E_ABORTED`). */
  readonly signal: AbortSignal;
}

/**
 * Reads every location (`undefined` where no file exists), at most `concurrency` at a time. A
 * miss is retried once after {@link MISSING_RETRY_DELAY_MS}: a concurrent conditional delete
 * that finds a stale payload re-referenced moves it aside and puts it back within microseconds,
 * and a reader must not fail in between.
 *
 * @throws StorageDriverError `E_INVALID_CLAIM` for a file behind a symlinked directory, a
 *   symlink or a non-regular file; `E_ABORTED`; the filesystem's errors as they are
 */
export function readPayloadFiles(
  locations: FsStorageLocation[],
  batch: ReadBatch,
): Promise<(Uint8Array | undefined)[]> {
  // Locations of one batch mostly share a directory: resolve each parent once.
  const parents = new Map<string, Promise<string>>();
  return mapBounded(
    locations,
    batch.concurrency,
    async (location, _i, signal) => {
      const first = await readOnce(location, batch, parents, signal);
      if (first !== undefined) return first;
      await new Promise((resolve) => setTimeout(resolve, MISSING_RETRY_DELAY_MS));
      parents.delete(path.dirname(location.path));
      return readOnce(location, batch, parents, signal);
    },
    batch.signal,
    batch.driverName,
  );
}

async function readOnce(
  location: FsStorageLocation,
  batch: ReadBatch,
  parents: Map<string, Promise<string>>,
  signal: AbortSignal,
): Promise<Uint8Array | undefined> {
  const refuse = (why: string, cause?: unknown) =>
    new StorageDriverError(StorageDriverErrorCode.INVALID_CLAIM, `Claim key ${displayKey(location.key)} ${why}`, {
      key: location.key,
      driverName: batch.driverName,
      cause,
    });
  throwIfAborted(signal, batch.driverName);
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
  if (!isInside(batch.rootReal, parentReal)) throw refuse('resolves outside the root (symlinked directory)');
  throwIfAborted(signal, batch.driverName);
  let handle: FileHandle;
  try {
    handle = await open(path.join(parentReal, path.basename(location.path)), OPEN_EXISTING);
  } catch (e) {
    if (isMissing(e)) return undefined;
    if (errorCodeOf(e) === 'ELOOP') throw refuse('resolves to a symlink; refusing to follow it', e);
    throw e;
  }
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) throw refuse('is not a regular file');
    return await readExactly(handle, stats.size, signal, batch.driverName);
  } finally {
    await handle.close();
  }
}

/** Largest single read: a 50 MiB payload is read in pieces, so an abort is seen between them. */
const MAX_READ_BYTES = 8 * 1024 * 1024;

/**
 * Reads the `size` bytes the open file's `fstat` reported straight into one buffer of that size
 * (no second `fstat`, no read past the end to find it, as `readFile` does). A file cut shorter
 * meanwhile reads as what it holds (core's integrity check then refuses it).
 */
async function readExactly(
  handle: FileHandle,
  size: number,
  signal: AbortSignal,
  driverName: string,
): Promise<Uint8Array> {
  const out = new Uint8Array(Buffer.allocUnsafeSlow(size).buffer, 0, size);
  let offset = 0;
  while (offset < size) {
    throwIfAborted(signal, driverName);
    const { bytesRead } = await handle.read(out, offset, Math.min(size - offset, MAX_READ_BYTES), offset);
    if (bytesRead === 0) return out.slice(0, offset);
    offset += bytesRead;
  }
  return out;
}
