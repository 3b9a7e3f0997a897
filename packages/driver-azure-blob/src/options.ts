/**
 * Options of the Azure Blob driver: the structural client types, the option types, their
 * defaults, and validation.
 *
 * @module
 */
import {
  type ContentAddressedStorageDriverOptions,
  configError,
  type ExistenceCheckMode,
  type Payload,
  requireOptionsObject,
  type StorageDriverStoreContext,
  validateConcurrency,
  validateExistenceCheck,
  validateRefreshAfter,
  validateTtl,
} from '@x/storage-driver-core';
import { azureMinimumDeleteAge } from './lifecycle';
import { isValidContainerName, validateKeyPrefix } from './names';

/** Default `name` of {@link AzureBlobStorageDriver} (also its `type`). */
export const AZURE_BLOB_DRIVER_DEFAULT_NAME = 'azure.blobdriver';
/** Default number of requests in flight per `store`/`retrieve` call. */
export const AZURE_BLOB_DRIVER_DEFAULT_CONCURRENCY = 16;
/**
 * With `existenceCheck: 'auto'`, payloads of at least this many bytes (256 KiB) are looked up
 * (`Get Blob Properties`) before they are uploaded; smaller ones are uploaded create-only
 * straight away. See the README's "How store works" for the measurements behind it.
 */
export const AZURE_HEAD_FIRST_MIN_BYTES = 256 * 1024;
/** Default `refreshAfter`: one day. */
export const AZURE_DEFAULT_REFRESH_AFTER = 86_400_000;
/** Smallest `refreshAfter`: Azure's `Last-Modified` has a resolution of one second. */
export const AZURE_MIN_REFRESH_AFTER = 1000;
/** Largest `refreshAfter`: one year. */
export const AZURE_MAX_REFRESH_AFTER = 365 * 86_400_000;

// ---------------------------------------------------------------------------------------------
// The client, typed structurally: the parts of `@azure/storage-blob` 12.x the driver calls.

/** What the driver passes to cancel a request (a standard `AbortSignal`). */
export interface AzureCancellable {
  /** Cancels the request. */
  abortSignal?: AbortSignal;
}

/** Access conditions the driver sends (`If-Match` / `If-None-Match`). */
export interface AzureAccessConditions {
  /** Only if the blob's ETag is this. */
  ifMatch?: string;
  /** Only if the blob's ETag is not this (`*`: only if there is no blob). */
  ifNoneMatch?: string;
}

/** What a write (upload, set metadata) answers: the new version. */
export interface AzureWriteResponse {
  /** ETag of the version written. */
  etag?: string;
  /** `Last-Modified` of the version written. */
  lastModified?: Date;
}

/** What `Get Blob Properties` answers (the fields the driver reads). */
export interface AzureBlobPropertiesResponse {
  /** ETag of the current version. */
  etag?: string;
  /** `Last-Modified` of the current version. */
  lastModified?: Date;
  /** Size in bytes. */
  contentLength?: number;
  /** `Hot`, `Cool`, `Cold`, `Archive`... */
  accessTier?: string;
  /** User metadata (kept by a refresh). */
  metadata?: Record<string, string>;
}

/** What `Get Blob` answers (the fields the driver reads). */
export interface AzureDownloadResponse {
  /** The body (Node.js). */
  readableStreamBody?: AsyncIterable<Uint8Array | string> & { destroy?(error?: Error): unknown };
  /** Size of the body in bytes. */
  contentLength?: number;
}

/** The blob a batch sub-request addresses (a `BlobClient` of the same client). */
export interface AzureBlobReference {
  /** The blob's URL. */
  readonly url: string;
  /** The blob's name. */
  readonly name: string;
}

/** The part of a `BlockBlobClient` the driver uses. */
export interface AzureBlockBlobClientLike extends AzureBlobReference {
  /** `Put Blob`, single shot. */
  upload(
    body: Uint8Array,
    contentLength: number,
    options?: AzureCancellable & {
      conditions?: AzureAccessConditions;
      tier?: string;
      blobHTTPHeaders?: { blobContentMD5?: Uint8Array };
    },
  ): Promise<AzureWriteResponse>;
  /** `Get Blob Properties`. */
  getProperties(options?: AzureCancellable): Promise<AzureBlobPropertiesResponse>;
  /** `Get Blob`. */
  download(
    offset?: number,
    count?: number,
    options?: AzureCancellable & { maxRetryRequests?: number },
  ): Promise<AzureDownloadResponse>;
  /** `Set Blob Metadata` (replaces all metadata; a new version: new ETag and `Last-Modified`). */
  setMetadata(
    metadata?: Record<string, string>,
    options?: AzureCancellable & { conditions?: AzureAccessConditions },
  ): Promise<AzureWriteResponse>;
  /** `Delete Blob`. */
  delete(options?: AzureCancellable & { conditions?: AzureAccessConditions }): Promise<unknown>;
}

/** One listed blob (the fields the driver reads). */
export interface AzureListedBlob {
  /** Blob name. */
  name: string;
  /** Its properties. */
  properties: { lastModified?: Date; etag?: string; contentLength?: number };
}

/** One page of `List Blobs`. */
export interface AzureListPage {
  /** The blobs of this page. */
  segment: { blobItems: AzureListedBlob[] };
  /** Token of the next page; empty or `undefined` after the last one. */
  continuationToken?: string;
}

/** One sub-response of a blob batch. */
export interface AzureBatchSubResponse {
  /** HTTP status of the sub-request. */
  status: number;
  /** Its error code, if it failed. */
  errorCode?: string;
}

/** A blob batch being built (`BlobBatch`). */
export interface AzureBlobBatchLike {
  /** Adds a `Delete Blob` sub-request. */
  deleteBlob(blob: AzureBlobReference, options?: { conditions?: AzureAccessConditions }): Promise<void>;
}

/** The part of a container-scoped `BlobBatchClient` the driver uses. */
export interface AzureBlobBatchClientLike {
  /** A new, empty batch. */
  createBatch(): AzureBlobBatchLike;
  /** Sends a batch (at most 256 sub-requests); sub-responses are in the order they were added. */
  submitBatch(
    batch: AzureBlobBatchLike,
    options?: AzureCancellable,
  ): Promise<{ subResponses: AzureBatchSubResponse[] }>;
}

/**
 * The part of a `ContainerClient` (`@azure/storage-blob` 12.x) the driver uses. Typed
 * structurally so a client of any 12.x version type-checks; the driver never closes it.
 */
export interface AzureContainerClientLike {
  /** The container's name. */
  readonly containerName: string;
  /** A client of one block blob of the container. */
  getBlockBlobClient(blobName: string): AzureBlockBlobClientLike;
  /** `List Blobs`, flat, paged. */
  listBlobsFlat(options?: AzureCancellable & { prefix?: string }): {
    byPage(settings?: { maxPageSize?: number; continuationToken?: string }): AsyncIterableIterator<AzureListPage>;
  };
  /** A batch client scoped to the container (12.5.0 and later; without it, deletes go one by one). */
  getBlobBatchClient?(): AzureBlobBatchClientLike;
}

/** The part of a `BlobServiceClient` (`@azure/storage-blob` 12.x) the driver uses. */
export interface AzureBlobServiceClientLike {
  /** The client of one container of the account. */
  getContainerClient(containerName: string): AzureContainerClientLike;
}

// ---------------------------------------------------------------------------------------------
// Options

/** Picks the container for one payload (called once per payload of a `store` call). */
export type AzureContainerSelector = (context: StorageDriverStoreContext, payload: Payload) => string;

/**
 * Access tier of the blobs the driver writes. `Archive` is refused: an archived blob cannot be
 * read (`Get Blob` answers 409 `BlobArchived`) until it is rehydrated, which takes hours, so a
 * workflow could not get its payload back.
 */
export type AzureAccessTier = 'Hot' | 'Cool' | 'Cold';

/**
 * How `store` avoids uploading a blob that already exists.
 *
 * - `auto` (default): payloads of at least 256 KiB ({@link AZURE_HEAD_FIRST_MIN_BYTES}), and blobs
 *   this driver instance recently stored or read (likely repeats), as `head`; other smaller ones
 *   as `conditional-put`. What the instance saw only picks the order: the service is asked on
 *   every store.
 * - `head`: `Get Blob Properties` first; `Put Blob` with `If-None-Match: *` only if there is no
 *   blob. A new blob costs two requests, a repeat store one (and uploads nothing).
 * - `conditional-put`: `Put Blob` with `If-None-Match: *` straight away (409 `BlobAlreadyExists`:
 *   it exists). A new blob costs one request; a repeat store uploads the body again before the
 *   service refuses it, then reads the blob's properties (its age decides a refresh).
 */
export type AzureExistenceCheck = ExistenceCheckMode;

/** Options of {@link AzureBlobStorageDriver}. */
export interface AzureBlobStorageDriverOptions extends ContentAddressedStorageDriverOptions {
  /**
   * A `ContainerClient` (one container) or a `BlobServiceClient` (any container of the account)
   * from `@azure/storage-blob` 12.x, with its credentials, endpoint and retry options. Required.
   * Never closed by the driver.
   */
  client: AzureContainerClientLike | AzureBlobServiceClientLike;
  /**
   * The container to store into: a name, or a function `(context, payload) => name` called once
   * per payload (route by namespace, workflow type or size; needs a `BlobServiceClient`). The
   * container is written into each claim, so retrieval needs nothing beyond `allowedContainers`.
   * Required with a `BlobServiceClient`.
   * @default the `ContainerClient`'s container
   */
  container?: string | AzureContainerSelector;
  /**
   * Containers claims may name (compared exactly); a claim naming any other container is rejected
   * with `E_INVALID_CLAIM` before any request, so a forged claim in history cannot make a worker
   * read from another container its credentials reach. A container selector returning a
   * container outside this list fails the store with `E_CONFIG`. `list` and `deleteExpired` cover
   * these containers. Required when `container` is a function; with a `ContainerClient` it can
   * only be that container.
   * @default [container]
   */
  allowedContainers?: readonly string[];
  /**
   * Per-instance routing key written into workflow history.
   * @default 'azure.blobdriver'
   */
  name?: string;
  /**
   * Largest serialized payload accepted, in bytes, checked for the whole batch before any write.
   * @default 52428800 (50 MiB)
   */
  maxPayloadSize?: number;
  /**
   * Requests in flight per `store`/`retrieve` call (1–10000).
   * @default 16
   */
  concurrency?: number;
  /**
   * How to skip blobs that already exist (see {@link AzureExistenceCheck}).
   * @default 'auto'
   */
  existenceCheck?: AzureExistenceCheck;
  /**
   * Prefix put in front of every blob name this driver writes, e.g. `temporal/` (at most 512
   * characters, ending with `/`; see the README). Claims carry the full name, so claims written
   * with another prefix stay readable.
   * @default ''
   */
  keyPrefix?: string;
  /**
   * Access tier of written blobs: `Hot`, `Cool` or `Cold`. `Archive` is refused with `E_CONFIG`
   * (an archived blob cannot be read back until it is rehydrated). Blobs that already exist keep
   * their tier.
   * @default undefined (none sent: the account's default tier)
   */
  accessTier?: AzureAccessTier;
  /**
   * How old (milliseconds since its `Last-Modified`) an existing blob must be before a `store`
   * that dedups onto it refreshes it (`Set Blob Metadata` with its own metadata, conditional on
   * its ETag), so that its age restarts: a blob's last-referenced time is its `Last-Modified`, at
   * most `refreshAfter` behind the latest store that returned a claim for it. An integer from
   * 1000 to 31536000000 (one year).
   * @default 86400000 (one day)
   */
  refreshAfter?: number;
  /**
   * Default `olderThan` of `deleteExpired`, in milliseconds. Azure expires nothing by itself
   * (see the README's Lifecycle section for a lifecycle management rule instead). At least the
   * minimum delete age (`refreshAfter` plus a quarter of it, at most 15 minutes, plus 1 s).
   * @default undefined (`deleteExpired` needs an `olderThan`)
   */
  ttl?: number;
}

/**
 * The options of {@link AzureBlobStorageDriver} once validated, with their defaults: what the
 * driver and its modules read. (`name`, `maxPayloadSize`, `ttl` and `clock` are the base class's.)
 */
export interface AzureSettings {
  /** The injected client. */
  readonly client: AzureContainerClientLike | AzureBlobServiceClientLike;
  /** The client of a container (one of `allowedContainers`). */
  readonly containerClient: (container: string) => AzureContainerClientLike;
  /** Picks the container of one payload. */
  readonly selectContainer: AzureContainerSelector;
  /** The container when `container` is a string (bare storage keys given to `delete` go there). */
  readonly defaultContainer: string | undefined;
  /** Containers claims may name (and `list`/`deleteExpired` cover). */
  readonly allowedContainers: readonly string[];
  /** Requests in flight per call. */
  readonly concurrency: number;
  /** How a store detects existing blobs. */
  readonly existenceCheck: AzureExistenceCheck;
  /** Prefix of every blob name this driver writes (`''` when off). */
  readonly keyPrefix: string;
  /** Tier of written blobs, or `undefined` (the account default). */
  readonly accessTier: AzureAccessTier | undefined;
  /** Age (ms) after which a store that dedups onto a blob refreshes it. */
  readonly refreshAfter: number;
  /** The youngest age (ms) a conditional delete may target (see `azureMinimumDeleteAge`). */
  readonly minimumDeleteAge: number;
}

function isServiceClient(client: object): client is AzureBlobServiceClientLike {
  return typeof (client as Partial<AzureBlobServiceClientLike>).getContainerClient === 'function';
}

function isContainerClient(client: object): client is AzureContainerClientLike {
  const c = client as Partial<AzureContainerClientLike>;
  return typeof c.getBlockBlobClient === 'function' && typeof c.listBlobsFlat === 'function';
}

function validateAccessTier(tier: unknown): AzureAccessTier | undefined {
  if (tier === undefined) return undefined;
  if (tier === 'Hot' || tier === 'Cool' || tier === 'Cold') return tier;
  if (typeof tier === 'string' && tier.toLowerCase() === 'archive') {
    throw configError(
      'accessTier Archive is refused: an archived blob cannot be read (Get Blob answers 409 BlobArchived) until it is rehydrated, which takes hours; use Hot, Cool or Cold',
    );
  }
  throw configError('accessTier must be "Hot", "Cool" or "Cold"');
}

/** Containers named by the options, validated; the selector of one payload's container. */
function checkContainers(
  o: Partial<AzureBlobStorageDriverOptions>,
  client: AzureContainerClientLike | AzureBlobServiceClientLike,
): { allowed: readonly string[]; select: AzureContainerSelector; fixed: string | undefined } {
  const single = isServiceClient(client) ? undefined : client.containerName;
  if (single !== undefined && !isValidContainerName(single)) {
    throw configError(`the ContainerClient's container ${JSON.stringify(single)} is not a valid container name`);
  }
  const container = o.container ?? single;
  if (typeof container === 'string') {
    if (!isValidContainerName(container)) {
      throw configError(
        `container ${JSON.stringify(container)} is not a valid container name (3-63 lower-case letters, digits and single hyphens)`,
      );
    }
    if (single !== undefined && container !== single) {
      throw configError(
        `container ${container} is not the ContainerClient's container ${single} (pass a BlobServiceClient to use several containers)`,
      );
    }
  } else if (typeof container !== 'function') {
    throw configError('container is required with a BlobServiceClient: a container name or a function returning one');
  } else if (single !== undefined) {
    throw configError('a container function needs a BlobServiceClient (a ContainerClient reaches one container)');
  } else if (o.allowedContainers === undefined) {
    throw configError('allowedContainers is required when container is a function (claims name their container)');
  }
  let allowed: readonly string[] = typeof container === 'string' ? [container] : [];
  if (o.allowedContainers !== undefined) {
    if (!Array.isArray(o.allowedContainers) || o.allowedContainers.length === 0) {
      throw configError('allowedContainers must be a non-empty array of container names');
    }
    for (const c of o.allowedContainers) {
      if (!isValidContainerName(c))
        throw configError(`allowedContainers: ${JSON.stringify(c)} is not a valid container name`);
      if (single !== undefined && c !== single) {
        throw configError(`allowedContainers: ${c} is not reachable through a ContainerClient of ${single}`);
      }
    }
    if (typeof container === 'string' && !o.allowedContainers.includes(container)) {
      throw configError('allowedContainers must include container');
    }
    allowed = [...new Set(o.allowedContainers as readonly string[])];
  }
  return {
    allowed: Object.freeze(allowed),
    select: typeof container === 'string' ? () => container : container,
    fixed: typeof container === 'string' ? container : undefined,
  };
}

/**
 * Validates the options of {@link AzureBlobStorageDriver} (all but the base class's own) and
 * resolves their defaults.
 *
 * @throws StorageDriverError `E_CONFIG` if `options` is not an object, `client` is neither a
 *   `ContainerClient` nor a `BlobServiceClient`, `container` is missing (with a
 *   `BlobServiceClient`), not a valid container name, not the `ContainerClient`'s container, or a
 *   function without `allowedContainers` or with a `ContainerClient`, or `allowedContainers`,
 *   `concurrency`, `existenceCheck`, `keyPrefix`, `accessTier` (`Archive` is refused),
 *   `refreshAfter` or `ttl` (less than the minimum delete age) is invalid.
 */
export function checkOptions(options: unknown): AzureSettings {
  const o = requireOptionsObject<Partial<AzureBlobStorageDriverOptions>>(
    options,
    'AzureBlobStorageDriver options must be an object with a client',
  );
  const client = o.client;
  if (typeof client !== 'object' || client === null || !(isServiceClient(client) || isContainerClient(client))) {
    throw configError('client must be a ContainerClient or a BlobServiceClient from @azure/storage-blob');
  }
  const containers = checkContainers(o, client);
  const existenceCheck = validateExistenceCheck(o.existenceCheck);
  const refreshAfter = validateRefreshAfter(o.refreshAfter, {
    min: AZURE_MIN_REFRESH_AFTER,
    max: AZURE_MAX_REFRESH_AFTER,
    fallback: AZURE_DEFAULT_REFRESH_AFTER,
    minReason: 'Azure times have 1 s resolution',
  });
  const minimumDeleteAge = azureMinimumDeleteAge(refreshAfter);
  const ttl = validateTtl(o.ttl);
  if (ttl !== undefined && ttl < minimumDeleteAge) {
    throw configError(
      `ttl (${ttl} ms) must be at least the minimum delete age ${minimumDeleteAge} ms (refreshAfter ${refreshAfter} ms plus its allowance for clock skew, refresh time and Azure's 1 s resolution)`,
    );
  }
  const clients = new Map<string, AzureContainerClientLike>();
  const containerClient = isServiceClient(client)
    ? (name: string) => {
        let c = clients.get(name);
        if (c === undefined) {
          c = client.getContainerClient(name);
          clients.set(name, c);
        }
        return c;
      }
    : () => client;
  return {
    client,
    containerClient,
    selectContainer: containers.select,
    defaultContainer: containers.fixed,
    allowedContainers: containers.allowed,
    concurrency: validateConcurrency(o.concurrency, AZURE_BLOB_DRIVER_DEFAULT_CONCURRENCY),
    existenceCheck,
    keyPrefix: validateKeyPrefix(o.keyPrefix),
    accessTier: validateAccessTier(o.accessTier),
    refreshAfter,
    minimumDeleteAge,
  };
}
