/**
 * The store path of the Azure Blob driver: the existence check of each blob a store writes
 * (`existenceCheck`: `Get Blob Properties` first, or a create-only `Put Blob` straight away), the
 * upload, and the last-referenced refresh of the blobs a store dedups onto (`Set Blob Metadata`
 * conditional on the ETag, once a blob is older than `refreshAfter`), so that the claims a store
 * returns point at blobs at most `refreshAfter` old.
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
import { type AzureBlobStorageLocation, locationId } from './names';
import type { AzureAccessTier, AzureContainerClientLike } from './options';
import { type BlobHead, blockBlob, getBlobProperties, LAST_MODIFIED_RESOLUTION, putBlob, touchBlob } from './requests';

/** Rounds of the end-of-batch refresh check before a store gives up (clocks that disagree wildly). */
const MAX_REFRESH_ROUNDS = 8;

/** What the store path needs from the driver. */
export interface AzureStoreBackend {
  /** The client of a container. */
  readonly containerClient: (container: string) => AzureContainerClientLike;
  /** Requests in flight per call. */
  readonly concurrency: number;
  /**
   * Per blob, the create-only upload first or the lookup first (`existenceCheck`, and in `auto`
   * mode the size and the blobs this instance recently stored or read).
   */
  readonly order: ExistenceOrder;
  /** Tier of written blobs, if set. */
  readonly accessTier: AzureAccessTier | undefined;
  /** Age (ms) after which a dedup hit refreshes a blob. */
  readonly refreshAfter: number;
  /** For error messages. */
  readonly driverName: string;
  /** The driver's clock (milliseconds since the epoch). */
  now(): number;
  /** Converts a client error into a coded error naming the blob. */
  fail(error: unknown, kind: 'store', location: AzureBlobStorageLocation): StorageDriverError;
}

/** What the driver knows about one blob of a store batch. */
interface BlobState {
  /** Whether this store wrote the blob (`written`) or found it (`existed`). */
  readonly outcome: PutOutcome;
  /** `Last-Modified` (ms) of the version last seen or written; `undefined` if unknown. */
  readonly lastModified: number | undefined;
  /** The blob's properties, when just read (a refresh needs its ETag and metadata). */
  readonly head: BlobHead | undefined;
}

/** One item's state after a step of the refresh, and whether the step refreshed or rewrote it. */
interface Step {
  readonly state: BlobState;
  readonly touched: boolean;
}

type Item = StoreItem<AzureBlobStorageLocation>;

/**
 * Writes every item that does not exist yet, at most `concurrency` requests at a time, then
 * refreshes the blobs of the batch that are older than `refreshAfter` once every upload has
 * finished (checked again until a check finds nothing old). Resolves to one outcome per item.
 *
 * @throws StorageDriverError naming the blob (`E_CONFIG` for a blob found in the Archive tier),
 *   `E_BACKEND` if blobs never look fresh (another writer rewriting them over and over, or clocks
 *   far apart)
 */
export async function putIfAbsent(
  b: AzureStoreBackend,
  items: readonly Item[],
  signal: AbortSignal,
): Promise<PutOutcome[]> {
  const states = await mapBounded(
    items,
    b.concurrency,
    (item, _i, s) => guard(b, item, () => ensure(b, item, s)),
    signal,
    b.driverName,
  );
  const touched = new Array<boolean>(items.length).fill(false);
  for (let round = 0; ; round++) {
    const now = b.now();
    const stale = states.flatMap((state, i) =>
      !touched[i] && (state.lastModified === undefined || now - state.lastModified > b.refreshAfter) ? [i] : [],
    );
    if (stale.length === 0) {
      if (b.order.remembers) for (const item of items) b.order.noteExists(locationId(item.location));
      return states.map((s) => s.outcome);
    }
    if (round === MAX_REFRESH_ROUNDS + items.length) {
      throw new StorageDriverError(
        StorageDriverErrorCode.BACKEND,
        `store failed: ${stale.length} blobs still look older than refreshAfter after ${round} rounds of refreshes (another writer rewriting them over and over, or this machine's clock far from Azure's?)`,
        { driverName: b.driverName },
      );
    }
    await mapBounded(
      stale,
      b.concurrency,
      async (i, _n, s) => {
        const item = items[i] as Item;
        const step = await guard(b, item, () => keepFresh(b, item, states[i] as BlobState, s));
        states[i] = step.state;
        touched[i] = step.touched;
      },
      signal,
      b.driverName,
    );
  }
}

/** Runs `fn`, converting what it throws into a coded error naming the item's blob. */
async function guard<T>(b: AzureStoreBackend, item: Item, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw b.fail(e, 'store', item.location);
  }
}

function blobOf(b: AzureStoreBackend, location: AzureBlobStorageLocation) {
  return blockBlob(b.containerClient(location.container), location);
}

/** The first step of one item: look (by `existenceCheck`, size and what this instance saw), then upload create-only. */
async function ensure(b: AzureStoreBackend, item: Item, signal: AbortSignal): Promise<BlobState> {
  const blob = blobOf(b, item.location);
  if (!b.order.uploadFirst(item.size, locationId(item.location))) {
    const head = await getBlobProperties(blob, signal);
    if (head !== undefined) return (await found(b, item, head, 'existed', signal)).state;
  }
  return (await create(b, item, 'existed', signal)).state;
}

/** A create-only upload: `written`, or (it exists) a state of unknown age that keeps `outcome`. */
async function create(b: AzureStoreBackend, item: Item, outcome: PutOutcome, signal: AbortSignal): Promise<Step> {
  const put = await putBlob(blobOf(b, item.location), item.bytes, { tier: b.accessTier }, signal);
  if (put.kind === 'written') {
    return { state: { outcome: 'written', lastModified: put.version.lastModified, head: undefined }, touched: true };
  }
  return { state: { outcome, lastModified: undefined, head: undefined }, touched: false };
}

/**
 * A blob that exists. Archived: the store fails (`E_CONFIG`): its claim could not be read back.
 * Of another size than the payload (damaged; keys are content-addressed): overwritten, on
 * exactly that version (`written`). Otherwise found as it is (keeping `outcome`).
 */
async function found(
  b: AzureStoreBackend,
  item: Item,
  head: BlobHead,
  outcome: PutOutcome,
  signal: AbortSignal,
): Promise<Step> {
  if (head.tier === 'Archive') {
    throw b.fail(
      Object.assign(new Error('The blob is in the Archive tier'), {
        name: 'RestError',
        statusCode: 409,
        code: 'BlobArchived',
      }),
      'store',
      item.location,
    );
  }
  if (head.size === undefined || head.size === item.size) {
    return { state: { outcome, lastModified: head.lastModified, head }, touched: false };
  }
  const put = await putBlob(
    blobOf(b, item.location),
    item.bytes,
    { tier: b.accessTier, overwrite: head.etag ?? '*' },
    signal,
  );
  if (put.kind === 'written') {
    return { state: { outcome: 'written', lastModified: put.version.lastModified, head: undefined }, touched: true };
  }
  return { state: { outcome, lastModified: undefined, head: undefined }, touched: false };
}

/**
 * One refresh step of a blob that is old or of unknown age: read its properties if needed (gone:
 * upload it again; young: nothing to do), then `Set Blob Metadata` on the version seen (another
 * version meanwhile: look again next round).
 */
async function keepFresh(b: AzureStoreBackend, item: Item, state: BlobState, signal: AbortSignal): Promise<Step> {
  const blob = blobOf(b, item.location);
  let head = state.head;
  if (head === undefined) {
    head = await getBlobProperties(blob, signal);
    if (head === undefined) return create(b, item, state.outcome, signal);
    const step = await found(b, item, head, state.outcome, signal);
    if (step.touched || step.state.head === undefined) return step;
    if (head.lastModified !== undefined && b.now() - head.lastModified <= b.refreshAfter) {
      return { state: { outcome: state.outcome, lastModified: head.lastModified, head: undefined }, touched: false };
    }
  }
  const started = b.now();
  const touch = await touchBlob(blob, head, signal);
  if (touch.kind === 'gone') return create(b, item, state.outcome, signal);
  if (touch.kind === 'changed') {
    return { state: { outcome: state.outcome, lastModified: undefined, head: undefined }, touched: false };
  }
  const lastModified = touch.version.lastModified ?? started - LAST_MODIFIED_RESOLUTION;
  return { state: { outcome: state.outcome, lastModified, head: undefined }, touched: true };
}
