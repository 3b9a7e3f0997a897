/**
 * Lifecycle of the S3 driver (DESIGN §8): the last-referenced time of an object is its
 * `LastModified`, which a dedup hit refreshes by copying the object onto itself once it is older
 * than `refreshAfter`; listing with `ListObjectsV2`; deleting with `DeleteObjects` (unconditional)
 * or `DeleteObject` with `If-Match` (conditional, exact to the version listed).
 *
 * Why every refresh changes the ETag. S3 has no delete conditional on the modification time, only
 * on the ETag, and a plain self-copy keeps the ETag (the MD5 of the same bytes). So refreshes
 * alternate between a single-part `CopyObject` (ETag: the MD5) and a one-part multipart copy
 * (ETag: `…-1`), chosen by the form of the current ETag. A conditional delete of the version a
 * listing saw then fails (412) once any refresh happened in between — unless two did and the ETag
 * came back, which takes at least `refreshAfter` (a refresh only happens to an object older than
 * that). Listings older than {@link listingFreshness} are therefore re-checked with a `HeadObject`
 * before the delete.
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
  refreshAllowance,
  refreshMinimumDeleteAge,
  StorageDriverError,
  StorageDriverErrorCode,
  throwIfAborted,
} from '@x/storage-driver-core';
import { classifyS3Error, isAbortError } from './errors';
import { isSpecKey, type S3StorageLocation, validateClaimKey } from './keys';
import type { S3ClientLike } from './options';
import {
  copyObjectInPlace,
  DELETE_OBJECTS_MAX,
  deleteObjectIfMatch,
  deleteObjectsBatch,
  getObjectTagging,
  headObject,
  LAST_MODIFIED_RESOLUTION,
  listObjectsPage,
  multipartCopyInPlace,
  type ObjectHead,
} from './requests';

/** Rounds of the end-of-batch refresh check before a store gives up (clocks that disagree wildly). */
const MAX_REFRESH_ROUNDS = 8;

/**
 * The youngest age a conditional delete may target with this `refreshAfter`: `refreshAfter` +
 * {@link refreshAllowance} + 1 s (the resolution of `LastModified`). An object some `store`
 * returned a claim for within this time is never older than it.
 */
export function s3MinimumDeleteAge(refreshAfter: number): number {
  return refreshMinimumDeleteAge(refreshAfter, LAST_MODIFIED_RESOLUTION);
}

/**
 * How long a listing may be trusted for a conditional delete without a new `HeadObject`:
 * `refreshAfter` − {@link refreshAllowance}. Two refreshes (which could bring an ETag back)
 * cannot both happen within it.
 */
export function listingFreshness(refreshAfter: number): number {
  return refreshAfter - refreshAllowance(refreshAfter);
}

/** What the lifecycle functions need from the driver. */
export interface S3LifecycleBackend {
  /** The injected client. */
  readonly client: S3ClientLike;
  /** Requests in flight per call. */
  readonly concurrency: number;
  /** The driver's `keyPrefix` (`''` when off). */
  readonly keyPrefix: string;
  /** Buckets listed and deleted from. */
  readonly allowedBuckets: readonly string[];
  /** The driver's `refreshAfter` (ms). */
  readonly refreshAfter: number;
  /** For error messages. */
  readonly driverName: string;
  /** The `Tagging` this driver puts on what it writes, if any. */
  readonly tagging: string | undefined;
  /** The driver's clock (milliseconds since the epoch). */
  now(): number;
  /** Converts an SDK error into a coded error naming the object. */
  fail(error: unknown, kind: 'store' | 'list' | 'delete', location: S3StorageLocation | undefined): StorageDriverError;
}

/**
 * Result of {@link refreshObject}: `refreshed` (with the new `LastModified` the driver may
 * assume, in its own clock), `gone` (the object was deleted meanwhile: upload it again) or
 * `changed` (another writer replaced the version we saw, so it was just refreshed or rewritten).
 */
export type RefreshResult = { kind: 'refreshed'; lastModified: number } | { kind: 'gone' } | { kind: 'changed' };

/**
 * Copies an object onto itself so that its `LastModified` restarts, keeping user metadata,
 * content headers, SSE (type, KMS key id, bucket key), storage class and tags, and changing its
 * ETag: a single-part `CopyObject` for an object whose ETag is a multipart one (`…-N`), a one-part
 * multipart copy (`CreateMultipartUpload`, `UploadPartCopy`, `CompleteMultipartUpload`) for one
 * whose ETag is a plain MD5. Each copy is conditional on the source still being the version the
 * `HeadObject` saw (`x-amz-copy-source-if-match`), so a refresh never builds on a stale view.
 *
 * Errors other than "gone" and "changed" are thrown as the SDK raised them.
 */
export async function refreshObject(
  b: S3LifecycleBackend,
  location: S3StorageLocation,
  head: ObjectHead,
  signal: AbortSignal,
): Promise<RefreshResult> {
  const started = b.now();
  try {
    if (head.etag === undefined || head.etag.includes('-')) {
      await copyObjectInPlace(b.client, location, head, signal);
    } else {
      // A multipart upload does not copy tags. S3 reports how many an object has in the HEAD
      // (x-amz-tagging-count, only for tagged objects and only to callers allowed to read tags): read
      // them when it says there are some; without the header, re-apply the driver's own tags (what it
      // puts on what it writes) if it has any.
      let tagging = head.tagCount === undefined ? b.tagging : undefined;
      if (head.tagCount !== undefined && head.tagCount > 0)
        tagging = await getObjectTagging(b.client, location, signal);
      await multipartCopyInPlace(b.client, location, head, tagging, signal);
    }
  } catch (e) {
    const kind = classifyS3Error(e);
    if (kind === 'not-found') return { kind: 'gone' };
    if (kind === 'exists') return { kind: 'changed' }; // 412 on x-amz-copy-source-if-match
    throw e;
  }
  // S3 dates the new version at the start of the copy (a multipart one at its initiation), to
  // the second: assume the earliest it can be, in this driver's clock.
  return { kind: 'refreshed', lastModified: started - LAST_MODIFIED_RESOLUTION };
}

/** What the driver knows about one object of a store batch once its upload step is done. */
export interface StoredState {
  /**
   * Earliest `LastModified` the object can have, in the driver's clock; `undefined` if unknown
   * (a conditional PUT answered 412: it exists, of unknown age).
   */
  lastModified: number | undefined;
  /** The `HeadObject` of the object, when one was made (an in-place copy needs it). */
  head: ObjectHead | undefined;
}

/**
 * The end of a store batch: refreshes every object of the batch whose `LastModified` is older
 * than `refreshAfter` now (after all uploads finished, however long the batch took: objects the
 * batch uploaded itself count from their upload), heading first those whose age is unknown, and
 * uploading again those deleted meanwhile. Each object is copied at most once per batch; objects
 * that were young at one check and aged past `refreshAfter` while others were being copied are
 * checked again, until a check finds nothing old. So every object whose claim the store returns is
 * at most `refreshAfter` old at the last check, or was copied (or uploaded) during this batch.
 * Updates `states`.
 *
 * @param reupload uploads an item again (its object was deleted); resolves to its new state.
 * @throws what the requests throw (the driver wraps it), `E_BACKEND` if objects never look fresh
 *   (another writer replacing them over and over, or clocks far apart).
 */
export async function refreshStale<T>(
  b: S3LifecycleBackend,
  items: readonly T[],
  states: StoredState[],
  locationOf: (item: T) => S3StorageLocation,
  reupload: (item: T, signal: AbortSignal) => Promise<StoredState>,
  signal: AbortSignal,
): Promise<void> {
  const copied = new Array<boolean>(items.length).fill(false);
  for (let round = 0; ; round++) {
    const now = b.now();
    const stale = items.flatMap((_item, i) => {
      if (copied[i]) return [];
      const lm = (states[i] as StoredState).lastModified;
      return lm === undefined || now - lm > b.refreshAfter ? [i] : [];
    });
    if (stale.length === 0) return;
    if (round === MAX_REFRESH_ROUNDS + items.length) {
      throw new StorageDriverError(
        StorageDriverErrorCode.BACKEND,
        `store failed: ${stale.length} objects still look older than refreshAfter after ${round} rounds of refreshes (another writer replacing them over and over, or this machine's clock far from S3's?)`,
        { driverName: b.driverName },
      );
    }
    await mapBounded(
      stale,
      b.concurrency,
      async (i, _n, s) => {
        const item = items[i] as T;
        const { state, touched } = await keepFresh(b, item, states[i] as StoredState, locationOf(item), reupload, s);
        states[i] = state;
        copied[i] = touched;
      },
      signal,
      b.driverName,
    );
  }
}

/** Refreshes one object if it is old; `touched` once it was copied or uploaded again. */
async function keepFresh<T>(
  b: S3LifecycleBackend,
  item: T,
  state: StoredState,
  location: S3StorageLocation,
  reupload: (item: T, signal: AbortSignal) => Promise<StoredState>,
  signal: AbortSignal,
): Promise<{ state: StoredState; touched: boolean }> {
  const began = b.now();
  // Found missing after `began`: uploaded again, or (412) created by another writer since then.
  const again = async () => {
    const uploaded = await reupload(item, signal);
    return {
      state: { lastModified: uploaded.lastModified ?? began - LAST_MODIFIED_RESOLUTION, head: undefined },
      touched: true,
    };
  };
  let head = state.head;
  if (head === undefined) {
    try {
      head = await headObject(b.client, location, signal);
    } catch (e) {
      throw b.fail(e, 'store', location);
    }
    if (head === undefined) return again();
    // Known now, and young: nothing to copy (checked again if it ages during this batch).
    if (head.lastModified !== undefined && b.now() - head.lastModified <= b.refreshAfter) {
      return { state: { lastModified: head.lastModified, head: undefined }, touched: false };
    }
  }
  let result: RefreshResult;
  try {
    result = await refreshObject(b, location, head, signal);
  } catch (e) {
    throw b.fail(e, 'store', location);
  }
  if (result.kind === 'gone') return again();
  if (result.kind === 'refreshed')
    return { state: { lastModified: result.lastModified, head: undefined }, touched: true };
  // `changed`: another writer replaced the version we saw after our HEAD; look again next round.
  return { state: { lastModified: undefined, head: undefined }, touched: false };
}

// ---------------------------------------------------------------------------------------------
// Listing

/** Marks an encoded listed version ({@link encodeVersion}). */
const VERSION_TAG = 's3v1';

/**
 * The opaque `version` of a listed object: its ETag, its `LastModified` and when it was listed
 * (the driver's clock before the `ListObjectsV2` request), so that a conditional delete can use
 * the listing without a request while it is fresh, and knows when to check again.
 */
export function encodeVersion(etag: string, lastModified: number, listedAt: number): string {
  return `${VERSION_TAG}:${lastModified}:${listedAt}:${etag}`;
}

/** Parses {@link encodeVersion}; `undefined` for anything else. */
export function decodeVersion(
  version: string | undefined,
): { etag: string; lastModified: number; listedAt: number } | undefined {
  if (version === undefined) return undefined;
  const m = /^s3v1:(\d{1,16}):(\d{1,16}):(.+)$/s.exec(version);
  if (m === null) return undefined;
  return { lastModified: Number(m[1]), listedAt: Number(m[2]), etag: m[3] as string };
}

/** The S3 prefix to list for a storage-key prefix, or `undefined` if no storage key can match. */
export function listPrefix(keyPrefix: string, prefix: string | undefined): string | undefined {
  if (prefix === undefined || 'v0/'.startsWith(prefix)) return `${keyPrefix}v0/`;
  if (prefix.startsWith('v0/')) return keyPrefix + prefix;
  return undefined;
}

/** Whether a listed S3 key is one of this driver's storage keys (under its prefix, well-formed). */
function storageKeyOf(keyPrefix: string, key: unknown): string | undefined {
  if (typeof key !== 'string' || !key.startsWith(keyPrefix)) return undefined;
  const storageKey = key.slice(keyPrefix.length);
  if (!isSpecKey(storageKey)) return undefined;
  try {
    validateClaimKey(key); // what a claim for it must pass (delete re-parses the location)
  } catch {
    return undefined;
  }
  return storageKey;
}

/**
 * Lists the objects under `keyPrefix + 'v0/'` (narrowed by `query.prefix`) in every allowed
 * bucket, a page of 1,000 at a time; keys that are not storage keys are skipped.
 */
export async function* listObjects(
  b: S3LifecycleBackend,
  query: ListQuery,
): AsyncGenerator<ListedObject<S3StorageLocation>> {
  const prefix = listPrefix(b.keyPrefix, query.prefix);
  if (prefix === undefined) return;
  for (const bucket of new Set(b.allowedBuckets)) {
    let continuationToken: string | undefined;
    do {
      throwIfAborted(query.signal, b.driverName);
      const listedAt = b.now();
      let page: Awaited<ReturnType<typeof listObjectsPage>>;
      try {
        page = await listObjectsPage(b.client, bucket, prefix, continuationToken, query.signal);
      } catch (e) {
        throw b.fail(e, 'list', { bucket, key: prefix });
      }
      for (const o of page.objects) {
        const key = storageKeyOf(b.keyPrefix, o.key);
        if (key === undefined) continue;
        yield {
          location: { bucket, key: o.key },
          key,
          size: o.size,
          lastReferenced: o.lastModified === undefined ? undefined : new Date(o.lastModified),
          version:
            o.lastModified !== undefined && o.etag !== undefined
              ? encodeVersion(o.etag, o.lastModified, listedAt)
              : undefined,
        };
      }
      continuationToken = page.next;
    } while (continuationToken !== undefined);
  }
}

// ---------------------------------------------------------------------------------------------
// Deleting

function isAbort(e: unknown, signal: AbortSignal): boolean {
  return signal.aborted || isStorageDriverError(e, StorageDriverErrorCode.ABORTED) || isAbortError(e);
}

/**
 * Deletes objects: with `referencedBefore`, each with a `DeleteObject` conditional on the ETag
 * (`If-Match`) of a version last modified before the cutoff (the listed one while the listing is
 * fresh, otherwise what a `HeadObject` says now): 412 (refreshed since) and 409 (a concurrent
 * write) are `kept`, 404 is `missing`. Without it, `DeleteObjects` per bucket in batches of
 * 1,000, after a `HeadObject` of each bare storage key (S3 reports a missing key as deleted).
 * Per-object failures become outcomes; an abort is thrown.
 */
export async function deleteObjects(
  b: S3LifecycleBackend,
  entries: readonly DeleteEntry<S3StorageLocation>[],
  referencedBefore: Date | undefined,
  signal: AbortSignal,
): Promise<DeleteOutcome[]> {
  if (referencedBefore !== undefined) {
    const cutoff = referencedBefore.getTime();
    return mapBounded(
      entries,
      b.concurrency,
      async (entry, _i, s) => {
        try {
          return await deleteIfUnreferenced(b, entry, cutoff, s);
        } catch (e) {
          if (isAbort(e, s)) throw e;
          return b.fail(e, 'delete', entry.location);
        }
      },
      signal,
      b.driverName,
    );
  }
  return deleteUnconditionally(b, entries, signal);
}

async function deleteIfUnreferenced(
  b: S3LifecycleBackend,
  entry: DeleteEntry<S3StorageLocation>,
  cutoff: number,
  signal: AbortSignal,
): Promise<DeleteOutcome> {
  const { location } = entry;
  const listed = decodeVersion(entry.version);
  const age = listed === undefined ? Number.NaN : b.now() - listed.listedAt;
  let etag: string;
  if (listed !== undefined && age >= 0 && age < listingFreshness(b.refreshAfter)) {
    if (listed.lastModified >= cutoff) return 'kept';
    etag = listed.etag;
  } else {
    const head = await headObject(b.client, location, signal);
    if (head === undefined) return 'missing';
    if (head.etag === undefined || head.lastModified === undefined || head.lastModified >= cutoff) return 'kept';
    etag = head.etag;
  }
  return deleteObjectIfMatch(b.client, location, etag, signal);
}

async function deleteUnconditionally(
  b: S3LifecycleBackend,
  entries: readonly DeleteEntry<S3StorageLocation>[],
  signal: AbortSignal,
): Promise<DeleteOutcome[]> {
  const outcomes: (DeleteOutcome | undefined)[] = new Array(entries.length).fill(undefined);
  // S3 reports a missing key as deleted: a bare key is looked up first so `missing` is counted.
  // (A listed object existed when listed; it is deleted without a lookup.)
  const bare = entries.flatMap((e, i) => (e.version === undefined ? [i] : []));
  await mapBounded(
    bare,
    b.concurrency,
    async (i, _n, s) => {
      const location = (entries[i] as DeleteEntry<S3StorageLocation>).location;
      try {
        if ((await headObject(b.client, location, s)) === undefined) outcomes[i] = 'missing';
      } catch (e) {
        if (isAbort(e, s)) throw e;
        outcomes[i] = b.fail(e, 'delete', location);
      }
    },
    signal,
    b.driverName,
  );
  const byBucket = new Map<string, number[]>();
  entries.forEach((e, i) => {
    if (outcomes[i] !== undefined) return;
    const list = byBucket.get(e.location.bucket) ?? [];
    list.push(i);
    byBucket.set(e.location.bucket, list);
  });
  for (const [bucket, indices] of byBucket) {
    for (let start = 0; start < indices.length; start += DELETE_OBJECTS_MAX) {
      throwIfAborted(signal, b.driverName);
      const chunk = indices.slice(start, start + DELETE_OBJECTS_MAX);
      const keyOf = (i: number) => (entries[i] as DeleteEntry<S3StorageLocation>).location.key;
      let result: Awaited<ReturnType<typeof deleteObjectsBatch>>;
      try {
        result = await deleteObjectsBatch(b.client, bucket, chunk.map(keyOf), signal);
      } catch (e) {
        if (isAbort(e, signal)) throw e;
        const error = b.fail(e, 'delete', { bucket, key: keyOf(chunk[0] as number) });
        for (const i of chunk) outcomes[i] = error;
        continue;
      }
      for (const i of chunk) {
        const key = keyOf(i);
        const cause = result.failed.get(key);
        if (cause !== undefined) {
          outcomes[i] = classifyS3Error(cause) === 'not-found' ? 'missing' : b.fail(cause, 'delete', { bucket, key });
        } else if (result.deleted.has(key)) outcomes[i] = 'deleted';
        else {
          outcomes[i] = new StorageDriverError(
            StorageDriverErrorCode.BACKEND,
            `delete s3://${bucket}/${key}: DeleteObjects reported neither success nor an error`,
            { driverName: b.driverName, key },
          );
        }
      }
    }
  }
  return outcomes as DeleteOutcome[];
}
