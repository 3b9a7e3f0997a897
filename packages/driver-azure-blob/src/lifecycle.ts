/**
 * Lifecycle of the Azure Blob driver (DESIGN §8): a blob's last-referenced time is its
 * `Last-Modified`, which a store refreshes once the blob is older than `refreshAfter`
 * (`store.ts`); listing with flat `List Blobs` pages; deleting in container-scoped blob batches
 * (256 sub-requests each), each sub-request conditional on the ETag it was listed with
 * (`If-Match`) when the delete is conditional.
 *
 * Why a listed ETag is enough. Every write of a blob (a refresh is a `Set Blob Metadata`) gives
 * it a new ETag, and an ETag never comes back. So `If-Match: <listed ETag>` succeeds only if the
 * blob was not refreshed (nor rewritten) since it was listed, however long ago that was; a blob a
 * store refreshed meanwhile answers 412 and is `kept`.
 *
 * @module
 */
import {
  type DeleteEntry,
  type DeleteOutcome,
  type ListedObject,
  type ListQuery,
  mapBounded,
  refreshMinimumDeleteAge,
  type StorageDriverError,
  throwIfAborted,
} from '@x/storage-driver-core';
import { classifyAzureError } from './errors';
import { type AzureBlobStorageLocation, isSpecKey, validateClaimKey } from './names';
import type { AzureContainerClientLike } from './options';
import {
  BATCH_MAX,
  type BatchDelete,
  blockBlob,
  type DeleteResult,
  deleteBlob,
  deleteBlobBatch,
  getBlobProperties,
  LAST_MODIFIED_RESOLUTION,
  listBlobPage,
} from './requests';

/** Re-exported from core: the allowance for clock skew and refresh time in the minimum delete age. */
export { refreshAllowance } from '@x/storage-driver-core';

/**
 * The youngest age a conditional delete may target with this `refreshAfter`: `refreshAfter` +
 * {@link refreshAllowance} + 1 s (the resolution of `Last-Modified`). A blob some `store`
 * returned a claim for within this time is never older than it.
 */
export function azureMinimumDeleteAge(refreshAfter: number): number {
  return refreshMinimumDeleteAge(refreshAfter, LAST_MODIFIED_RESOLUTION);
}

/** What the lifecycle functions need from the driver. */
export interface AzureLifecycleBackend {
  /** The client of a container. */
  readonly containerClient: (container: string) => AzureContainerClientLike;
  /** Requests in flight per call (per-blob requests). */
  readonly concurrency: number;
  /** The driver's `keyPrefix` (`''` when off). */
  readonly keyPrefix: string;
  /** Containers listed and deleted from. */
  readonly allowedContainers: readonly string[];
  /** Whether deletes still go in blob batches (turned off once the service or client refuses them). */
  readonly batching: { enabled: boolean };
  /** For error messages. */
  readonly driverName: string;
  /** Converts a client error into a coded error naming the blob. */
  fail(error: unknown, kind: 'list' | 'delete', location: AzureBlobStorageLocation | undefined): StorageDriverError;
}

// ---------------------------------------------------------------------------------------------
// Listing

/** Marks an encoded listed version ({@link encodeVersion}). */
const VERSION_TAG = 'az1';

/** The opaque `version` of a listed blob: its `Last-Modified` and ETag. */
export function encodeVersion(etag: string, lastModified: number): string {
  return `${VERSION_TAG}:${lastModified}:${etag}`;
}

/** Parses {@link encodeVersion}; `undefined` for anything else. */
export function decodeVersion(version: string | undefined): { etag: string; lastModified: number } | undefined {
  if (version === undefined) return undefined;
  const m = /^az1:(\d{1,16}):(.+)$/s.exec(version);
  if (m === null) return undefined;
  return { lastModified: Number(m[1]), etag: m[2] as string };
}

/** The blob-name prefix to list for a storage-key prefix, or `undefined` if no storage key can match. */
export function listPrefix(keyPrefix: string, prefix: string | undefined): string | undefined {
  if (prefix === undefined || 'v0/'.startsWith(prefix)) return `${keyPrefix}v0/`;
  if (prefix.startsWith('v0/')) return keyPrefix + prefix;
  return undefined;
}

/** The storage key of a listed blob of this driver (under its prefix, as it writes them), else `undefined`. */
function storageKeyOf(keyPrefix: string, name: string): string | undefined {
  if (!name.startsWith(keyPrefix)) return undefined;
  const key = name.slice(keyPrefix.length);
  if (!isSpecKey(key)) return undefined;
  try {
    validateClaimKey(name); // what a claim for it must pass (delete re-parses the location)
  } catch {
    return undefined;
  }
  return key;
}

/**
 * Lists the blobs under `keyPrefix + 'v0/'` (narrowed by `query.prefix`) in every allowed
 * container, a page of 5,000 at a time; names that are not this driver's storage keys are skipped.
 */
export async function* listBlobs(
  b: AzureLifecycleBackend,
  query: ListQuery,
): AsyncGenerator<ListedObject<AzureBlobStorageLocation>> {
  const prefix = listPrefix(b.keyPrefix, query.prefix);
  if (prefix === undefined) return;
  for (const container of b.allowedContainers) {
    const client = b.containerClient(container);
    let token: string | undefined;
    do {
      throwIfAborted(query.signal, b.driverName);
      let page: Awaited<ReturnType<typeof listBlobPage>>;
      try {
        page = await listBlobPage(client, prefix, token, query.signal);
      } catch (e) {
        throw b.fail(e, 'list', { container, key: prefix });
      }
      for (const blob of page.blobs) {
        const key = storageKeyOf(b.keyPrefix, blob.name);
        if (key === undefined) continue;
        yield {
          location: { container, key: blob.name },
          key,
          size: blob.size,
          lastReferenced: blob.lastModified === undefined ? undefined : new Date(blob.lastModified),
          version:
            blob.lastModified !== undefined && blob.etag !== undefined
              ? encodeVersion(blob.etag, blob.lastModified)
              : undefined,
        };
      }
      token = page.next;
    } while (token !== undefined);
  }
}

// ---------------------------------------------------------------------------------------------
// Deleting

/** One delete to send: the entry's index and, for a conditional delete, the ETag it must still have. */
interface Planned {
  readonly index: number;
  readonly ifMatch: string | undefined;
}

/**
 * Deletes blobs. With `referencedBefore`, each only if its version is still one last modified
 * before the cutoff: the listed version (no request to decide: listed at or after the cutoff is
 * `kept`), or for a bare storage key what `Get Blob Properties` says now; the delete carries
 * `If-Match` on that version's ETag, so a blob refreshed since answers 412 (`kept`; `missing` if
 * a lookup then finds no blob). Without it, unconditionally. Deletes go in container-scoped blob
 * batches of up to 256, one `Delete Blob` per blob where batches are refused. Per-blob failures
 * become outcomes; an abort is thrown.
 */
export async function deleteBlobs(
  b: AzureLifecycleBackend,
  entries: readonly DeleteEntry<AzureBlobStorageLocation>[],
  referencedBefore: Date | undefined,
  signal: AbortSignal,
): Promise<DeleteOutcome[]> {
  const outcomes = new Array<DeleteOutcome | undefined>(entries.length).fill(undefined);
  const locationOf = (i: number) => (entries[i] as DeleteEntry<AzureBlobStorageLocation>).location;
  const blobOf = (i: number) => blockBlob(b.containerClient(locationOf(i).container), locationOf(i));
  /** Runs `fn` for one entry; a failure other than an abort becomes the entry's outcome. */
  const settle = async (i: number, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (e) {
      if (signal.aborted) throw e;
      outcomes[i] = b.fail(e, 'delete', locationOf(i));
    }
  };

  const planned: Planned[] = [];
  if (referencedBefore === undefined) {
    for (let i = 0; i < entries.length; i++) planned.push({ index: i, ifMatch: undefined });
  } else {
    const cutoff = referencedBefore.getTime();
    const unknown: number[] = [];
    entries.forEach((entry, i) => {
      const listed = decodeVersion(entry.version);
      if (listed === undefined) unknown.push(i);
      else if (listed.lastModified >= cutoff) outcomes[i] = 'kept';
      else planned.push({ index: i, ifMatch: listed.etag });
    });
    await mapBounded(
      unknown,
      b.concurrency,
      (i, _n, s) =>
        settle(i, async () => {
          const head = await getBlobProperties(blobOf(i), s);
          if (head === undefined) outcomes[i] = 'missing';
          else if (head.etag === undefined || head.lastModified === undefined || head.lastModified >= cutoff) {
            outcomes[i] = 'kept';
          } else planned.push({ index: i, ifMatch: head.etag });
        }),
      signal,
      b.driverName,
    );
  }

  const byContainer = new Map<string, Planned[]>();
  for (const p of planned) {
    const container = locationOf(p.index).container;
    byContainer.set(container, [...(byContainer.get(container) ?? []), p]);
  }
  const record = (p: Planned, result: DeleteResult | Error) => {
    outcomes[p.index] = result instanceof Error ? b.fail(result, 'delete', locationOf(p.index)) : result;
  };
  for (const [container, list] of byContainer) {
    for (let start = 0; start < list.length; start += BATCH_MAX) {
      throwIfAborted(signal, b.driverName);
      const chunk = list.slice(start, start + BATCH_MAX);
      let sent = false;
      if (b.batching.enabled) {
        const deletes: BatchDelete[] = [];
        for (const p of chunk) {
          try {
            deletes.push({ blob: blobOf(p.index), ifMatch: p.ifMatch });
          } catch (e) {
            outcomes[p.index] = b.fail(e, 'delete', locationOf(p.index));
          }
        }
        const sendable = chunk.filter((p) => outcomes[p.index] === undefined);
        sent = await sendBatch(b, container, sendable, deletes, signal, record);
        if (sent) continue;
      }
      await mapBounded(
        chunk.filter((p) => outcomes[p.index] === undefined),
        b.concurrency,
        (p, _n, s) => settle(p.index, async () => record(p, await deleteBlob(blobOf(p.index), p.ifMatch, s))),
        signal,
        b.driverName,
      );
    }
  }

  // Azurite answers 412 (not 404) to a conditional delete of a missing blob: look before saying `kept`.
  const kept = planned.filter((p) => p.ifMatch !== undefined && outcomes[p.index] === 'kept').map((p) => p.index);
  await mapBounded(
    kept,
    b.concurrency,
    async (i, _n, s) => {
      try {
        if ((await getBlobProperties(blobOf(i), s)) === undefined) outcomes[i] = 'missing';
      } catch (e) {
        if (signal.aborted) throw e;
      }
    },
    signal,
    b.driverName,
  );
  return outcomes as DeleteOutcome[];
}

/**
 * Sends one blob batch of `chunk`; `false` if batches are refused (the client has no batch
 * client, or the service refuses the batch request itself for a reason that is not about the
 * blobs: 400, 404 but not `ContainerNotFound`, 405, 501...): batching is then turned off for this
 * driver instance and the caller deletes one by one. Any other failure of the whole batch
 * (transient, access denied, no container) becomes every sub-request's outcome.
 */
async function sendBatch(
  b: AzureLifecycleBackend,
  container: string,
  chunk: readonly Planned[],
  deletes: readonly BatchDelete[],
  signal: AbortSignal,
  record: (p: Planned, result: DeleteResult | Error) => void,
): Promise<boolean> {
  if (chunk.length === 0) return true;
  let results: Awaited<ReturnType<typeof deleteBlobBatch>>;
  try {
    results = await deleteBlobBatch(b.containerClient(container), deletes, signal);
  } catch (e) {
    if (signal.aborted) throw e;
    const kind = classifyAzureError(e);
    if (kind !== 'permanent' && kind !== 'not-found') {
      for (const p of chunk) record(p, e as Error);
      return true;
    }
    b.batching.enabled = false;
    return false;
  }
  if (results === 'unsupported') {
    b.batching.enabled = false;
    return false;
  }
  chunk.forEach((p, i) => {
    record(p, results[i] as DeleteResult | Error);
  });
  return true;
}
