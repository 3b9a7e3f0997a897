/**
 * The Azure Blob Storage driver: the class and its hooks. What the hooks delegate to:
 * `options.ts` (validation), `names.ts` (blob names, containers and claims), `store.ts` (the
 * existence check, create-only uploads and the last-referenced refresh), `requests.ts` (every
 * client call), `lifecycle.ts` (listing, deleting), `errors.ts` (error codes).
 *
 * @module
 */
import {
  type BackendOperation,
  ContentAddressedStorageDriver,
  type DeleteEntry,
  type DeleteOutcome,
  ExistenceOrder,
  type ListedObject,
  type ListQuery,
  mapBounded,
  type Payload,
  type PutOutcome,
  requireClaimField,
  type StorageDriverCapabilities,
  type StorageDriverError,
  StorageDriverErrorCode,
  type StorageDriverStoreContext,
  type StoreItem,
} from '@x/storage-driver-core';
import { type AzureCallKind, toStorageDriverError } from './errors';
import { deleteBlobs, listBlobs } from './lifecycle';
import {
  AZURE_MAX_BLOB_NAME_LENGTH,
  type AzureBlobStorageLocation,
  encodeAzureKeySegment,
  isSpecKey,
  isValidContainerName,
  locationId,
  validateClaimContainer,
  validateClaimKey,
} from './names';
import {
  AZURE_BLOB_DRIVER_DEFAULT_NAME,
  AZURE_HEAD_FIRST_MIN_BYTES,
  type AzureAccessTier,
  type AzureBlobServiceClientLike,
  type AzureBlobStorageDriverOptions,
  type AzureContainerClientLike,
  type AzureExistenceCheck,
  type AzureSettings,
  checkOptions,
} from './options';
import { blockBlob, downloadBlob } from './requests';
import { putIfAbsent } from './store';

/** `type` of {@link AzureBlobStorageDriver}. No Temporal SDK has an Azure driver; this project defines it. */
export const AZURE_BLOB_DRIVER_TYPE = 'azure.blobdriver';

/** The validated options and what the driver's modules need from the driver itself. */
interface AzureBackend extends AzureSettings {
  /** Name of the driver instance. */
  readonly driverName: string;
  /** Whether deletes still go in blob batches. */
  readonly batching: { enabled: boolean };
  /** Per blob, the create-only upload first or the lookup first (see `ExistenceOrder`). */
  readonly order: ExistenceOrder;
  /** The driver's clock. */
  now(): number;
  /** Converts a client error into a coded error naming the blob. */
  fail(error: unknown, kind: AzureCallKind, location: AzureBlobStorageLocation | undefined): StorageDriverError;
}

/**
 * Stores payloads as block blobs in Azure Blob Storage (type `azure.blobdriver`): blob names are
 * the content-addressed keys of the key spec (`v0/ns/{ns}/wt/{type}/wi/{id}/ri/{run}/d/sha256/{hex}`...,
 * with `.`/`..` segments and trailing dots escaped for Azure), the bytes are the serialized
 * `Payload` proto, and the claim is `{ container, key, hash_algorithm, hash_value }`.
 *
 * - Content-addressed: identical payloads in a batch are uploaded once; a blob that already
 *   exists is not uploaded again (create-only `Put Blob` with `If-None-Match: *`, looked up first
 *   for payloads of 256 KiB or more: see {@link AzureExistenceCheck}).
 * - At most `concurrency` requests in flight per call; the first failure aborts the others;
 *   the caller's abort signal is passed to every request.
 * - Claims are untrusted: the container must be one of `allowedContainers` exactly, the blob name
 *   must be one this driver writes (at most 1,024 characters), and the bytes must match the
 *   claim's SHA-256. Claims carry no account or endpoint: the injected client decides both.
 * - Lifecycle (DESIGN §8): a blob's last-referenced time is its `Last-Modified`; a store that
 *   dedups onto a blob older than `refreshAfter` refreshes it (`Set Blob Metadata`, which gives it
 *   a new ETag). `list`, `delete`, `deleteExpired` (`List Blobs`, blob batches of conditional
 *   `Delete Blob`s) cover `keyPrefix + 'v0/'` in every allowed container. `close()` releases
 *   nothing (the client is the caller's) and makes later calls fail.
 *
 * Errors (all `StorageDriverError`): the constructor throws `E_CONFIG`; `store` throws
 * `E_TOO_LARGE`, `E_ABORTED`, `E_CONFIG` (missing container, access denied, an invalid request
 * such as a tier the account does not support, a blob found in the Archive tier), `E_BACKEND`
 * (throttling, 5xx, timeouts, connection failures after the client's own retries, an upload
 * whose MD5 the service did not match; retryable); `retrieve` additionally throws
 * `E_INVALID_CLAIM`, `E_NOT_FOUND` (`BlobNotFound`), `E_INTEGRITY`, and `E_CONFIG` for an archived
 * blob (409 `BlobArchived`: it cannot be read until rehydrated); the lifecycle methods throw as
 * documented on the base class, and `delete` of a bare storage key throws `E_CONFIG` when
 * `container` is a function. Messages name the container and blob, never credentials. API
 * misuse throws `TypeError`.
 *
 * @example
 * ```ts
 * const service = new BlobServiceClient(`https://${account}.blob.core.windows.net`, new DefaultAzureCredential());
 * const driver = new AzureBlobStorageDriver({ client: service, container: 'temporal-payloads' });
 * const dataConverter = { externalStorage: new ExternalStorage({ drivers: [driver] }) };
 * ```
 */
export class AzureBlobStorageDriver extends ContentAddressedStorageDriver<AzureBlobStorageLocation> {
  /** Per-implementation identifier: `azure.blobdriver`. */
  readonly type = AZURE_BLOB_DRIVER_TYPE;
  /** The injected client (a `ContainerClient` or a `BlobServiceClient`). */
  readonly client: AzureContainerClientLike | AzureBlobServiceClientLike;
  /** Requests in flight per call. */
  readonly concurrency: number;
  /** How existing blobs are detected. */
  readonly existenceCheck: AzureExistenceCheck;
  /** Prefix of every blob name this driver writes (`''` when off). */
  readonly keyPrefix: string;
  /** Containers claims may name (and `list`/`deleteExpired` cover). */
  readonly allowedContainers: readonly string[];
  /** Tier of written blobs, or `undefined` (the account's default). */
  readonly accessTier: AzureAccessTier | undefined;
  /** Age (ms) after which a store that dedups onto a blob refreshes it. */
  readonly refreshAfter: number;
  /**
   * The youngest age (ms) `deleteExpired` and conditional deletes may target, and the smallest
   * `ttl`: `refreshAfter` + a quarter of it (at most 15 minutes) + 1 s.
   */
  readonly minimumDeleteAge: number;

  /** The validated options, with the driver's name, clock and error conversion. */
  readonly #azure: AzureBackend;

  /**
   * @throws StorageDriverError `E_CONFIG` if `options` is not an object, `client` is neither a
   *   `ContainerClient` nor a `BlobServiceClient`, `container` is missing (with a
   *   `BlobServiceClient`), invalid, not the `ContainerClient`'s container, or a function without
   *   `allowedContainers`, or `allowedContainers`, `name`, `maxPayloadSize`, `concurrency`,
   *   `existenceCheck`, `keyPrefix`, `accessTier` (`Archive` is refused), `refreshAfter` or `ttl`
   *   (less than the minimum delete age) is invalid.
   */
  constructor(options: AzureBlobStorageDriverOptions) {
    const settings = checkOptions(options);
    super(AZURE_BLOB_DRIVER_DEFAULT_NAME, options);
    this.client = settings.client;
    this.concurrency = settings.concurrency;
    this.existenceCheck = settings.existenceCheck;
    this.keyPrefix = settings.keyPrefix;
    this.allowedContainers = settings.allowedContainers;
    this.accessTier = settings.accessTier;
    this.refreshAfter = settings.refreshAfter;
    this.minimumDeleteAge = settings.minimumDeleteAge;
    const driverName = this.name;
    this.#azure = {
      ...settings,
      order: new ExistenceOrder(settings.existenceCheck, AZURE_HEAD_FIRST_MIN_BYTES),
      driverName,
      batching: { enabled: true },
      now: () => this.now(),
      fail: (error, kind, location) => toStorageDriverError(error, kind, location, driverName),
    };
  }

  // ---- store and retrieve

  /** `{ container: the selector's choice, key: keyPrefix + key }`. */
  protected override _locate(
    key: string,
    context: StorageDriverStoreContext,
    payload: Payload,
    index: number,
  ): AzureBlobStorageLocation {
    let container: unknown;
    try {
      container = this.#azure.selectContainer(context, payload);
    } catch (e) {
      throw this.createError(StorageDriverErrorCode.CONFIG, `container selector failed for payload ${index}`, {
        index,
        cause: e,
      });
    }
    if (!isValidContainerName(container)) {
      throw this.createError(
        StorageDriverErrorCode.CONFIG,
        `container selector returned an invalid container name for payload ${index}`,
        { index },
      );
    }
    if (!this.allowedContainers.includes(container)) {
      throw this.createError(
        StorageDriverErrorCode.CONFIG,
        `container selector returned ${container}, which is not in allowedContainers (its claims could not be retrieved), for payload ${index}`,
        { index },
      );
    }
    return { container, key: this.keyPrefix + key };
  }

  protected override _locationId(location: AzureBlobStorageLocation): string {
    return locationId(location);
  }

  protected override _claimFields(location: AzureBlobStorageLocation): Record<string, string> {
    return { container: location.container, key: location.key };
  }

  /** The claim's container must be one of `allowedContainers`, its key a blob name this driver writes (`names.ts`). */
  protected override _parseClaim(claimData: Record<string, string>, index: number): AzureBlobStorageLocation {
    const container = validateClaimContainer(requireClaimField(claimData, 'container', index));
    if (!this.allowedContainers.includes(container)) {
      throw this.createError(
        StorageDriverErrorCode.INVALID_CLAIM,
        `Claim names container ${container}, which is not in allowedContainers`,
        { index },
      );
    }
    return { container, key: validateClaimKey(requireClaimField(claimData, 'key', index)) };
  }

  /** The key spec with Azure's rules on dots (`names.ts`). */
  protected override _encodeKeySegment(value: string | undefined | null): string {
    return encodeAzureKeySegment(value);
  }

  /**
   * Azure's 1,024-character blob name limit minus `keyPrefix`: a longer key becomes
   * `v0/ns/{namespace}/d/sha256/{hex}` (the rule of Temporal's official S3 and GCS drivers).
   */
  protected override _maxKeyLength(): number {
    return AZURE_MAX_BLOB_NAME_LENGTH - this.keyPrefix.length;
  }

  /**
   * Uploads each item unless it already exists, then refreshes the blobs of the batch older than
   * `refreshAfter` (`store.ts`); one outcome per item (`existed` for a dedup hit).
   */
  protected override _putIfAbsent(
    items: StoreItem<AzureBlobStorageLocation>[],
    op: BackendOperation,
  ): Promise<PutOutcome[]> {
    return putIfAbsent(this.#azure, items, op.signal);
  }

  /** One `Get Blob` per location (`undefined` for `BlobNotFound`), at most `concurrency` at a time. */
  protected override _get(
    locations: AzureBlobStorageLocation[],
    op: BackendOperation,
  ): Promise<(Uint8Array | undefined)[]> {
    const b = this.#azure;
    return mapBounded(
      locations,
      this.concurrency,
      async (location, _i, signal) => {
        let bytes: Uint8Array | undefined;
        try {
          bytes = await downloadBlob(blockBlob(b.containerClient(location.container), location), signal);
        } catch (e) {
          throw b.fail(e, 'retrieve', location);
        }
        // A blob read is likely stored again (a workflow passing its input on): looked up first then.
        if (b.order.remembers) b.order.noteRead(locationId(location), bytes !== undefined);
        return bytes;
      },
      op.signal,
      this.name,
    );
  }

  /**
   * Classifies client errors: `ContainerNotFound`, 401/403, 409 `BlobArchived`, other 4xx →
   * `E_CONFIG` (not retryable); throttling (`ServerBusy`, 429, 503), 5xx, timeouts, connection
   * failures and MD5 mismatches of an upload → `E_BACKEND` (retryable; the client has already
   * retried). The `cause` is a copy of the client error without its request and response.
   */
  protected override _wrapError(error: unknown, op: BackendOperation): StorageDriverError {
    const kind = (['retrieve', 'list', 'delete'] as const).find((k) => k === op.kind) ?? 'store';
    return this.#azure.fail(error, kind, undefined);
  }

  // ---- lifecycle

  /** Last-referenced times are `Last-Modified`, refreshed by every store (see `refreshAfter`). */
  protected override _capabilities(): Partial<StorageDriverCapabilities> {
    return { lastReferenced: 'exact' };
  }

  /** `List Blobs` under `keyPrefix + 'v0/'` in every allowed container, pages of 5,000. */
  protected override _list(query: ListQuery): AsyncIterable<ListedObject<AzureBlobStorageLocation>> {
    return listBlobs(this.#azure, query);
  }

  /** Blob batches of up to 256 `Delete Blob`s, each with `If-Match` on its ETag when conditional. */
  protected override _delete(
    entries: DeleteEntry<AzureBlobStorageLocation>[],
    options: { readonly referencedBefore: Date | undefined },
    op: BackendOperation,
  ): Promise<DeleteOutcome[]> {
    return deleteBlobs(this.#azure, entries, options.referencedBefore, op.signal);
  }

  /**
   * A bare storage key given to `delete` is in the driver's container, under `keyPrefix`.
   *
   * @throws StorageDriverError `E_INVALID_CLAIM` (not a storage key), `E_CONFIG` (`container` is a
   *   function: the key does not say which container; pass the objects `list` yielded)
   */
  protected override _locateKey(key: string, index: number): AzureBlobStorageLocation {
    if (!isSpecKey(key)) {
      throw this.createError(StorageDriverErrorCode.INVALID_CLAIM, `delete: target ${index} is not a storage key`, {
        index,
      });
    }
    const container = this.#azure.defaultContainer;
    if (container === undefined) {
      throw this.createError(
        StorageDriverErrorCode.CONFIG,
        'delete: a storage key does not say which container it is in when container is a function; pass the objects list() yielded',
        { index },
      );
    }
    return this._parseClaim({ container, key: this.keyPrefix + key }, index);
  }

  /** `refreshAfter` + a quarter of it (at most 15 minutes) + 1 s: see {@link AzureBlobStorageDriver.minimumDeleteAge}. */
  protected override _minimumDeleteAge(): number {
    return this.minimumDeleteAge;
  }
}
