/**
 * What a `store` sends: for each distinct object, the existence check by `existenceCheck` — an
 * object metadata GET first and, if it is missing, an upload with `ifGenerationMatch: 0` (the
 * official Python GCS driver's requests; a 412 means another writer created it meanwhile), or that
 * upload straight away (a 412 means it exists: it is looked up at the end of the batch, for its
 * size and age); then, once every upload of the batch has finished, a rewrite in place of every
 * object of the batch older than `refreshAfter` by then, so that its `updated` time (its
 * last-referenced time) restarts and its generation changes (which makes a delete conditional on
 * the listed generation exact).
 *
 * @module
 */
import {
  type ExistenceOrder,
  mapBounded,
  type PutOutcome,
  StorageDriverError,
  StorageDriverErrorCode,
  type StoreItem,
} from '@x/storage-driver-core';
import type { GcsCallKind } from './errors';
import { type GcsStorageLocation, locationId } from './names';
import type { GcsBucketLike } from './options';
import { getVersion, type ObjectVersion, rewriteInPlace, uploadIfGeneration } from './requests';

/** Rounds of the end-of-batch refresh check before a store gives up (clocks that disagree wildly). */
const MAX_REFRESH_ROUNDS = 8;

/** What the store functions need from the driver. */
export interface GcsStoreBackend {
  /** Opens the handle of an allowed bucket. */
  readonly bucketHandle: (name: string) => GcsBucketLike;
  /** Requests in flight per call. */
  readonly concurrency: number;
  /** Uploads of more bytes than this are resumable. */
  readonly resumableUploadThreshold: number;
  /**
   * Per object, the create-only upload first or the lookup first (`existenceCheck`, and in `auto`
   * mode the size and the objects this instance recently stored or read).
   */
  readonly order: ExistenceOrder;
  /** The driver's `refreshAfter` (ms). */
  readonly refreshAfter: number;
  /** For error messages. */
  readonly driverName: string;
  /** The driver's clock (milliseconds since the epoch). */
  now(): number;
  /** Converts a client error into a coded error naming the object. */
  fail(error: unknown, kind: GcsCallKind, location: GcsStorageLocation | undefined): StorageDriverError;
}

/** What the store knows about one object of its batch. */
interface ObjectState {
  /**
   * Its `updated` time (GCS clock), or the earliest it can be (driver clock) when only that is
   * known; `undefined` if unknown.
   */
  updated: number | undefined;
  /** Its live generation, when known (a rewrite needs it). */
  generation: string | undefined;
  /** Whether this store uploaded it. */
  written: boolean;
  /** Whether this store uploaded or rewrote it (so it is fresh: not checked again). */
  touched: boolean;
}

const stateOf = (version: ObjectVersion, written: boolean, touched: boolean): ObjectState => ({
  updated: version.updated,
  generation: version.generation,
  written,
  touched,
});

/**
 * Makes sure every item exists (uploading what is missing), then refreshes what is old; resolves to
 * one outcome per item (`written` if this store uploaded it).
 *
 * @throws StorageDriverError naming the object (the first failure; the other requests are aborted)
 */
export async function putIfAbsent(
  b: GcsStoreBackend,
  items: readonly StoreItem<GcsStorageLocation>[],
  signal: AbortSignal,
): Promise<PutOutcome[]> {
  const states = await mapBounded(items, b.concurrency, (item) => ensure(b, item), signal, b.driverName);
  await refreshStale(b, items, states, signal);
  if (b.order.remembers) for (const item of items) b.order.noteExists(locationId(item.location));
  return states.map((s) => (s.written ? 'written' : 'existed'));
}

/**
 * The existence check of one item (by `existenceCheck`, size and what this instance saw), and its
 * upload if it is missing.
 */
async function ensure(b: GcsStoreBackend, item: StoreItem<GcsStorageLocation>): Promise<ObjectState> {
  const bucket = b.bucketHandle(item.location.bucket);
  const name = item.location.key;
  try {
    // Upload first: a 412 leaves the object's size and age unknown, so the end of the batch looks
    // it up (`keepFresh`), and replaces it if damaged or rewrites it if old, as after a lookup here.
    if (b.order.uploadFirst(item.size, locationId(item.location))) {
      return await uploadOver(b, bucket, item, '0', undefined);
    }
    const askedAt = b.now();
    const found = await getVersion(bucket, name);
    // Content-addressed: an object of the right size holds these bytes (its age is checked at the end).
    if (found !== undefined && found.size === item.size) return stateOf(found, false, false);
    // Missing: create it. Damaged (another size): replace exactly the version seen.
    return await uploadOver(b, bucket, item, found?.generation ?? '0', askedAt);
  } catch (e) {
    throw b.fail(e, 'store', item.location);
  }
}

/**
 * The end of a store batch: rewrites in place every object of the batch whose `updated` time is
 * older than `refreshAfter` now (after all uploads finished, however long the batch took), looking
 * up first those whose generation is unknown, and uploading again those deleted meanwhile. Objects
 * that were young at one check and aged past `refreshAfter` while others were being rewritten are
 * checked again, until a check finds nothing old. So every object whose claim the store returns was
 * at most `refreshAfter` old at the last check, or was written during this batch. Updates `states`.
 *
 * @throws StorageDriverError naming the object; `E_BACKEND` if objects never look fresh (another
 *   writer replacing them over and over, or clocks far apart)
 */
async function refreshStale(
  b: GcsStoreBackend,
  items: readonly StoreItem<GcsStorageLocation>[],
  states: ObjectState[],
  signal: AbortSignal,
): Promise<void> {
  for (let round = 0; ; round++) {
    const now = b.now();
    const stale = states.flatMap((s, i) =>
      !s.touched && (s.updated === undefined || now - s.updated > b.refreshAfter) ? [i] : [],
    );
    if (stale.length === 0) return;
    if (round === MAX_REFRESH_ROUNDS + items.length) {
      throw new StorageDriverError(
        StorageDriverErrorCode.BACKEND,
        `store failed: ${stale.length} objects still look older than refreshAfter after ${round} rounds of rewrites (another writer replacing them over and over, or this machine's clock far from GCS's?)`,
        { driverName: b.driverName },
      );
    }
    await mapBounded(
      stale,
      b.concurrency,
      async (i) => {
        const item = items[i] as StoreItem<GcsStorageLocation>;
        try {
          states[i] = await keepFresh(b, item, states[i] as ObjectState);
        } catch (e) {
          throw b.fail(e, 'store', item.location);
        }
      },
      signal,
      b.driverName,
    );
  }
}

/**
 * Refreshes one object that looks old or whose age is unknown: looks it up if needed (gone: uploads
 * it again; another size than the payload: replaces it), rewrites it.
 */
async function keepFresh(
  b: GcsStoreBackend,
  item: StoreItem<GcsStorageLocation>,
  state: ObjectState,
): Promise<ObjectState> {
  const bucket = b.bucketHandle(item.location.bucket);
  const name = item.location.key;
  let generation = state.generation;
  if (generation === undefined) {
    const askedAt = b.now();
    const found = await getVersion(bucket, name);
    if (found === undefined) return reupload(b, bucket, item, state);
    if (found.size !== item.size) return uploadOver(b, bucket, item, found.generation, askedAt);
    // Young after all: nothing to rewrite (checked again if it ages during this batch).
    if (b.now() - found.updated <= b.refreshAfter) return { ...stateOf(found, state.written, false) };
    generation = found.generation;
  }
  const rewritten = await rewriteInPlace(bucket, name, generation);
  if (rewritten !== 'changed') return stateOf(rewritten, state.written, true);
  // That generation is gone or replaced (deleted by a sweep, or refreshed by another store): look again.
  const found = await getVersion(bucket, name);
  if (found === undefined) return reupload(b, bucket, item, state);
  return stateOf(found, state.written, false);
}

/**
 * Uploads an item only over the live generation `generation` (`'0'`: only if there is no object;
 * another: exactly the damaged version a lookup at `askedAt` saw). Written: fresh. 412: another
 * writer created or replaced it after that lookup, so it is at most that old; with no lookup
 * before (`askedAt` undefined), of unknown size and age (looked up by the refresh).
 */
async function uploadOver(
  b: GcsStoreBackend,
  bucket: GcsBucketLike,
  item: StoreItem<GcsStorageLocation>,
  generation: string,
  askedAt: number | undefined,
): Promise<ObjectState> {
  const uploaded = await uploadIfGeneration(
    bucket,
    item.location.key,
    item.bytes,
    generation,
    b.resumableUploadThreshold,
  );
  if (uploaded !== 'exists') return stateOf(uploaded, true, true);
  return { updated: askedAt, generation: undefined, written: false, touched: false };
}

/** Uploads an object a refresh found deleted (as a first upload: a 412 means another writer created it since). */
async function reupload(
  b: GcsStoreBackend,
  bucket: GcsBucketLike,
  item: StoreItem<GcsStorageLocation>,
  state: ObjectState,
): Promise<ObjectState> {
  const began = b.now();
  const uploaded = await uploadIfGeneration(bucket, item.location.key, item.bytes, '0', b.resumableUploadThreshold);
  if (uploaded === 'exists') return { updated: began, generation: undefined, written: state.written, touched: true };
  return stateOf(uploaded, true, true);
}
