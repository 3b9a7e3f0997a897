/**
 * Lifecycle of the GCS driver (DESIGN §8): the last-referenced time of an object is its `updated`
 * time, which a store refreshes by a rewrite in place (`store.ts`); listing pages of 1,000 in every
 * allowed bucket; deleting one generation at a time, conditional on it still being the live one.
 *
 * Why deletes are exact. A rewrite gives the object a new generation, and GCS generations are never
 * reused (unlike S3 ETags, which a second copy can bring back). A listed object carries its
 * generation in its `version`; the delete names that generation and requires it
 * (`generation` + `ifGenerationMatch`), so an object a store refreshed after the listing is kept,
 * however old the listing is.
 *
 * @module
 */
import {
  type DeleteEntry,
  type DeleteOutcome,
  isStorageDriverError,
  type ListedObject,
  type ListQuery,
  mapBounded,
  type StorageDriverError,
  StorageDriverErrorCode,
  throwIfAborted,
} from '@x/storage-driver-core';
import type { GcsCallKind } from './errors';
import { type GcsStorageLocation, isObjectName } from './names';
import type { GcsBucketLike } from './options';
import { deleteGeneration, getVersion, listPage } from './requests';

/** What the lifecycle functions need from the driver. */
export interface GcsLifecycleBackend {
  /** Opens the handle of an allowed bucket. */
  readonly bucketHandle: (name: string) => GcsBucketLike;
  /** Requests in flight per call. */
  readonly concurrency: number;
  /** Buckets listed and deleted from. */
  readonly allowedBuckets: readonly string[];
  /** For error messages. */
  readonly driverName: string;
  /** Converts a client error into a coded error naming the object. */
  fail(error: unknown, kind: GcsCallKind, location: GcsStorageLocation | undefined): StorageDriverError;
}

/** Marks an encoded listed version ({@link encodeVersion}). */
const VERSION_TAG = 'gcs1';

/** The opaque `version` of a listed object: its generation and its `updated` time. */
export function encodeVersion(generation: string, updated: number): string {
  return `${VERSION_TAG}:${updated}:${generation}`;
}

/** Parses {@link encodeVersion}; `undefined` for anything else. */
export function decodeVersion(version: string | undefined): { generation: string; updated: number } | undefined {
  if (version === undefined) return undefined;
  const m = /^gcs1:(\d{1,16}):([1-9]\d{0,18})$/.exec(version);
  if (m === null) return undefined;
  return { updated: Number(m[1]), generation: m[2] as string };
}

/** The GCS prefix to list for a storage-key prefix, or `undefined` if no storage key can match. */
export function listPrefix(prefix: string | undefined): string | undefined {
  if (prefix === undefined || 'v0/'.startsWith(prefix)) return 'v0/';
  return prefix.startsWith('v0/') ? prefix : undefined;
}

/**
 * Lists the objects under `v0/` (narrowed by `query.prefix`) in every allowed bucket, a page of
 * 1,000 at a time; names that are not object names of the official layout are skipped.
 */
export async function* listObjects(
  b: GcsLifecycleBackend,
  query: ListQuery,
): AsyncGenerator<ListedObject<GcsStorageLocation>> {
  const prefix = listPrefix(query.prefix);
  if (prefix === undefined) return;
  for (const bucket of new Set(b.allowedBuckets)) {
    const handle = b.bucketHandle(bucket);
    let pageToken: string | undefined;
    do {
      throwIfAborted(query.signal, b.driverName);
      let page: Awaited<ReturnType<typeof listPage>>;
      try {
        page = await listPage(handle, prefix, pageToken);
      } catch (e) {
        throw b.fail(e, 'list', { bucket, key: prefix });
      }
      for (const o of page.objects) {
        if (!isObjectName(o.name)) continue;
        yield {
          location: { bucket, key: o.name },
          key: o.name,
          size: o.size,
          lastReferenced: new Date(o.updated),
          version: encodeVersion(o.generation, o.updated),
        };
      }
      pageToken = page.next;
    } while (pageToken !== undefined);
  }
}

/** Rounds of an unconditional delete that keeps finding a newer generation. */
const MAX_DELETE_ROUNDS = 5;

function isAbort(e: unknown, signal: AbortSignal): boolean {
  return signal.aborted || isStorageDriverError(e, StorageDriverErrorCode.ABORTED);
}

/**
 * Deletes objects one generation at a time, at most `concurrency` at once. With `referencedBefore`:
 * an object whose `updated` time (as listed, or as a metadata GET says for a bare storage key) is
 * before the cutoff is deleted if that generation is still the live one, otherwise `kept`.
 * Without: the listed generation, or the live one, and again for a newer one found meanwhile.
 * Per-object failures become outcomes; an abort is thrown.
 */
export function deleteObjects(
  b: GcsLifecycleBackend,
  entries: readonly DeleteEntry<GcsStorageLocation>[],
  referencedBefore: Date | undefined,
  signal: AbortSignal,
): Promise<DeleteOutcome[]> {
  const cutoff = referencedBefore?.getTime();
  return mapBounded(
    entries,
    b.concurrency,
    async (entry, _i, s) => {
      try {
        return cutoff === undefined
          ? await deleteAnyGeneration(b, entry)
          : await deleteIfUnreferenced(b, entry, cutoff);
      } catch (e) {
        if (isAbort(e, s)) throw e;
        return b.fail(e, 'delete', entry.location);
      }
    },
    signal,
    b.driverName,
  );
}

async function deleteIfUnreferenced(
  b: GcsLifecycleBackend,
  entry: DeleteEntry<GcsStorageLocation>,
  cutoff: number,
): Promise<DeleteOutcome> {
  const bucket = b.bucketHandle(entry.location.bucket);
  const name = entry.location.key;
  const listed = decodeVersion(entry.version) ?? (await getVersion(bucket, name));
  if (listed === undefined) return 'missing';
  if (listed.updated >= cutoff) return 'kept';
  if ((await deleteGeneration(bucket, name, listed.generation)) === 'deleted') return 'deleted';
  // That generation is not the live one: refreshed (kept) or deleted by someone else (missing).
  return (await getVersion(bucket, name)) === undefined ? 'missing' : 'kept';
}

async function deleteAnyGeneration(
  b: GcsLifecycleBackend,
  entry: DeleteEntry<GcsStorageLocation>,
): Promise<DeleteOutcome> {
  const bucket = b.bucketHandle(entry.location.bucket);
  const name = entry.location.key;
  let generation = decodeVersion(entry.version)?.generation;
  for (let round = 0; round < MAX_DELETE_ROUNDS; round++) {
    if (generation === undefined) {
      const live = await getVersion(bucket, name);
      if (live === undefined) return 'missing';
      generation = live.generation;
    }
    if ((await deleteGeneration(bucket, name, generation)) === 'deleted') return 'deleted';
    generation = undefined; // replaced or gone since: look again
  }
  return b.fail(
    Object.assign(new Error(`a newer generation kept appearing (${MAX_DELETE_ROUNDS} rounds)`), { code: 'ECONFLICT' }),
    'delete',
    entry.location,
  );
}
