/**
 * The GCS storage driver, wire-compatible with Temporal's official GCS drivers: the class and its
 * hooks. What the hooks delegate to: `options.ts` (validation), `names.ts` (object names and their
 * validation), `claims.ts` (the official drivers' claim shapes), `store.ts` (existence check,
 * upload, refresh), `requests.ts` (every client call), `lifecycle.ts` (listing, deleting),
 * `errors.ts` (error codes).
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
  type StorageDriverClaim,
  type StorageDriverError,
  StorageDriverErrorCode,
  type StorageDriverStoreContext,
  type StoreItem,
} from '@x/storage-driver-core';
import { claimLocationFields, type GcsClaimFormat, readClaimObjectName, withHashSpelling } from './claims';
import { type GcsCallKind, toStorageDriverError } from './errors';
import { deleteObjects, type GcsLifecycleBackend, listObjects } from './lifecycle';
import {
  bucketProblem,
  encodeGcsSegment,
  GCS_MAX_OBJECT_NAME_BYTES,
  type GcsStorageLocation,
  isObjectName,
  isValidBucket,
  locationId,
  validateClaimBucket,
  validateClaimObjectName,
} from './names';
import {
  checkOptions,
  GCS_DRIVER_DEFAULT_NAME,
  GCS_HEAD_FIRST_MIN_BYTES,
  type GcsBucketLike,
  type GcsExistenceCheck,
  type GcsSettings,
  type GcsStorageDriverOptions,
  type GcsStorageLike,
} from './options';
import { download } from './requests';
import { type GcsStoreBackend, putIfAbsent } from './store';

/** `type` of {@link GcsStorageDriver}, identical to Temporal's official GCS drivers. */
export const GCS_DRIVER_TYPE = 'gcp.gcsdriver';

/** The validated options and what the driver's modules need from the driver itself. */
interface GcsBackend extends GcsSettings, GcsStoreBackend, GcsLifecycleBackend {
  /** Per object, the create-only upload first or the lookup first (see `ExistenceOrder`). */
  readonly order: ExistenceOrder;
}

/**
 * Stores payloads as objects in Google Cloud Storage (type `gcp.gcsdriver`), wire-compatible with
 * Temporal's official GCS drivers for Go, Python and TypeScript: same type and default name, same
 * object names (`v0/ns/{ns}/wt/{type}/wi/{id}/ri/{run}/d/sha256/{hex}`..., their segment escaping,
 * and Go's and Python's digest-only name above 1,024 bytes), same stored bytes (the serialized
 * `Payload` proto). The three official drivers name the object differently in their claims (Go
 * `key`, Python `object_name`, TypeScript `object`); by default this driver writes all of them
 * (see `claimFormat`) and it reads any of them.
 *
 * - Content-addressed: identical payloads in a batch are uploaded once; an object that already
 *   exists is not uploaded again (an upload with `ifGenerationMatch: 0`, looked up first with a
 *   metadata GET for payloads of 256 KiB or more: see {@link GcsExistenceCheck}).
 * - At most `concurrency` requests in flight per call; the first failure aborts the others.
 *   `@google-cloud/storage` cannot cancel most requests once sent: an abort rejects at once, and
 *   requests already sent finish in the background (downloads are cancelled).
 * - Claims are untrusted: the bucket must be one of `allowedBuckets` exactly, the object name must
 *   have the official layout with segments exactly as the official drivers escape them (at most
 *   1,024 bytes), every name field present must agree, and the bytes must match the claim's SHA-256.
 * - Lifecycle (DESIGN §8): an object's last-referenced time is its `updated` time; a store that
 *   dedups onto an object older than `refreshAfter` rewrites it in place so its age restarts (and
 *   its generation changes). `list`, `delete`, `deleteExpired` cover `v0/` in every allowed
 *   bucket; each delete names the generation it deletes and requires it to be the live one. A
 *   bucket lifecycle rule works too (see the README). `close()` releases nothing (the client is the
 *   caller's) and makes later calls fail.
 *
 * Errors (all `StorageDriverError`): the constructor throws `E_CONFIG`; `store` throws
 * `E_TOO_LARGE`, `E_ABORTED`, `E_CONFIG` (missing bucket, access denied, a bucket selector
 * returning a bucket outside `allowedBuckets`, other 4xx; not retryable), `E_BACKEND` (429, 5xx,
 * timeouts, connection failures after the client's own retries; retryable); `retrieve` additionally
 * throws `E_INVALID_CLAIM`, `E_NOT_FOUND`, `E_INTEGRITY`; the lifecycle methods throw as documented
 * on the base class, and `delete` of a bare storage key throws `E_CONFIG` when `bucket` is a
 * function. Messages name the bucket and object, never credentials. API misuse throws `TypeError`.
 *
 * @example
 * ```ts
 * const storage = new Storage();
 * const driver = new GcsStorageDriver({ client: storage, bucket: 'my-temporal-payloads' });
 * const dataConverter = { externalStorage: new ExternalStorage({ drivers: [driver] }) };
 * ```
 */
export class GcsStorageDriver extends ContentAddressedStorageDriver<GcsStorageLocation> {
  /** Per-implementation identifier: `gcp.gcsdriver`. */
  readonly type = GCS_DRIVER_TYPE;
  /** The injected client (a `Storage` or a `Bucket`). */
  readonly client: GcsStorageLike | GcsBucketLike;
  /** Buckets claims may name (and `list`/`deleteExpired` cover). */
  readonly allowedBuckets: readonly string[];
  /** Requests in flight per call. */
  readonly concurrency: number;
  /** How existing objects are detected. */
  readonly existenceCheck: GcsExistenceCheck;
  /** The claim shape written. */
  readonly claimFormat: GcsClaimFormat;
  /** Uploads of more bytes than this are resumable. */
  readonly resumableUploadThreshold: number;
  /** A download that receives no byte for this long (ms) once GCS answered is given up (`E_BACKEND`). */
  readonly downloadStallTimeout: number;
  /** Age (ms) after which a store that dedups onto an object rewrites it in place. */
  readonly refreshAfter: number;
  /**
   * The youngest age (ms) `deleteExpired` and conditional deletes may target, and the smallest
   * `ttl`: `refreshAfter` + a quarter of it (at most 15 minutes) + 1 ms.
   */
  readonly minimumDeleteAge: number;

  /** The validated options, with the driver's name, clock and error conversion. */
  readonly #gcs: GcsBackend;

  /**
   * @throws StorageDriverError `E_CONFIG` if `options` is not an object, `client` is neither a
   *   `Storage` nor a `Bucket`, `bucket` is missing (with a `Storage`), not a valid bucket name or a
   *   function, `allowedBuckets` is missing while `bucket` is a function, or `allowedBuckets`,
   *   `name`, `maxPayloadSize`, `concurrency`, `existenceCheck`, `claimFormat`,
   *   `resumableUploadThreshold`, `downloadStallTimeout`, `refreshAfter` or `ttl` (less than the
   *   minimum delete age) is invalid.
   */
  constructor(options: GcsStorageDriverOptions) {
    const settings = checkOptions(options);
    super(GCS_DRIVER_DEFAULT_NAME, options);
    this.client = settings.client;
    this.allowedBuckets = settings.allowedBuckets;
    this.concurrency = settings.concurrency;
    this.existenceCheck = settings.existenceCheck;
    this.claimFormat = settings.claimFormat;
    this.resumableUploadThreshold = settings.resumableUploadThreshold;
    this.downloadStallTimeout = settings.downloadStallTimeout;
    this.refreshAfter = settings.refreshAfter;
    this.minimumDeleteAge = settings.minimumDeleteAge;
    const driverName = this.name;
    this.#gcs = {
      ...settings,
      order: new ExistenceOrder(settings.existenceCheck, GCS_HEAD_FIRST_MIN_BYTES),
      driverName,
      now: () => this.now(),
      fail: (error, kind, location) => toStorageDriverError(error, kind, location, driverName),
    };
  }

  /**
   * Stores payloads (see the base class); the claims carry the hash fields in the spelling of
   * `claimFormat` (both spellings for `all`, camelCase for `typescript`).
   */
  override async store(context: StorageDriverStoreContext, payloads: Payload[]): Promise<StorageDriverClaim[]> {
    return withHashSpelling(await super.store(context, payloads), this.claimFormat);
  }

  // ---- store and retrieve

  /** `{ bucket: the selector's choice, key: the object name }`. */
  protected override _locate(
    key: string,
    context: StorageDriverStoreContext,
    payload: Payload,
    index: number,
  ): GcsStorageLocation {
    let bucket: unknown;
    try {
      bucket = this.#gcs.selectBucket(context, payload);
    } catch (e) {
      throw this.createError(StorageDriverErrorCode.CONFIG, `bucket selector failed for payload ${index}`, {
        index,
        cause: e,
      });
    }
    if (!isValidBucket(bucket)) {
      throw this.createError(
        StorageDriverErrorCode.CONFIG,
        `bucket selector returned a value that ${bucketProblem(bucket)} for payload ${index}`,
        { index },
      );
    }
    if (!this.allowedBuckets.includes(bucket)) {
      throw this.createError(
        StorageDriverErrorCode.CONFIG,
        `bucket selector returned ${bucket}, which is not in allowedBuckets (its claims could not be retrieved)`,
        { index },
      );
    }
    return { bucket, key };
  }

  /** The official GCS drivers' segment escaping (`names.ts`), not the S3 key spec. */
  protected override _encodeKeySegment(value: string | undefined | null): string {
    return encodeGcsSegment(value);
  }

  /**
   * GCS's 1,024-byte name limit: a longer name becomes `v0/ns/{namespace}/d/sha256/{hex}`, as the
   * official Go and Python GCS drivers write it (the TypeScript one writes the long name, which GCS
   * refuses).
   */
  protected override _maxKeyLength(): number {
    return GCS_MAX_OBJECT_NAME_BYTES;
  }

  protected override _locationId(location: GcsStorageLocation): string {
    return locationId(location);
  }

  /** `bucket` and the object name in the fields of `claimFormat` (`claims.ts`). */
  protected override _claimFields(location: GcsStorageLocation): Record<string, string> {
    return claimLocationFields(location, this.claimFormat);
  }

  /**
   * The claim's bucket must be one of `allowedBuckets`; its object name (`key`, `object_name` or
   * `object`, all equal when several are present) must have the official layout (`names.ts`).
   */
  protected override _parseClaim(claimData: Record<string, string>, index: number): GcsStorageLocation {
    const bucket = validateClaimBucket(requireClaimField(claimData, 'bucket', index));
    if (!this.allowedBuckets.includes(bucket)) {
      throw this.createError(
        StorageDriverErrorCode.INVALID_CLAIM,
        `Claim names bucket ${bucket}, which is not in allowedBuckets`,
        { index },
      );
    }
    return { bucket, key: validateClaimObjectName(readClaimObjectName(claimData, index)) };
  }

  /**
   * For each distinct object: an upload with `ifGenerationMatch: 0`, looked up first (metadata
   * GET) by `existenceCheck`, or after a 412; then a rewrite in place of those older than
   * `refreshAfter` at the end of the batch (`store.ts`).
   */
  protected override _putIfAbsent(
    items: StoreItem<GcsStorageLocation>[],
    op: BackendOperation,
  ): Promise<readonly PutOutcome[]> {
    return putIfAbsent(this.#gcs, items, op.signal);
  }

  /**
   * One download per location (`undefined` for a 404), at most `concurrency` at a time; a download
   * silent for `downloadStallTimeout` once answered fails (retryable).
   */
  protected override _get(locations: GcsStorageLocation[], op: BackendOperation): Promise<(Uint8Array | undefined)[]> {
    const b = this.#gcs;
    return mapBounded(
      locations,
      this.concurrency,
      async (location, _i, signal) => {
        let bytes: Uint8Array | undefined;
        try {
          bytes = await download(b.bucketHandle(location.bucket), location.key, signal, this.downloadStallTimeout);
        } catch (e) {
          throw b.fail(e, 'retrieve', location);
        }
        // An object read is likely stored again (a workflow passing its input on): looked up first then.
        if (b.order.remembers) b.order.noteRead(locationId(location), bytes !== undefined);
        return bytes;
      },
      op.signal,
      this.name,
    );
  }

  /**
   * Classifies client errors: a missing bucket, 401/403 and other 4xx → `E_CONFIG` (not
   * retryable); 408, 429, 5xx, timeouts and connection failures → `E_BACKEND` (retryable; the
   * client has already retried). The `cause` is the client error without credentials.
   */
  protected override _wrapError(error: unknown, op: BackendOperation): StorageDriverError {
    const kind: GcsCallKind = (['retrieve', 'list', 'delete'] as const).find((k) => k === op.kind) ?? 'store';
    return this.#gcs.fail(error, kind, undefined);
  }

  // ---- lifecycle

  /** Last-referenced times are `updated`, refreshed by every store (see `refreshAfter`). */
  protected override _capabilities(): Partial<StorageDriverCapabilities> {
    return { lastReferenced: 'exact' };
  }

  /** Pages of 1,000 under `v0/` in every allowed bucket (`lifecycle.ts`). */
  protected override _list(query: ListQuery): AsyncIterable<ListedObject<GcsStorageLocation>> {
    return listObjects(this.#gcs, query);
  }

  /** One delete per object, naming and requiring the generation listed or found (`lifecycle.ts`). */
  protected override _delete(
    entries: DeleteEntry<GcsStorageLocation>[],
    options: { readonly referencedBefore: Date | undefined },
    op: BackendOperation,
  ): Promise<DeleteOutcome[]> {
    return deleteObjects(this.#gcs, entries, options.referencedBefore, op.signal);
  }

  /**
   * A bare storage key given to `delete` is an object name in the driver's bucket.
   *
   * @throws StorageDriverError `E_INVALID_CLAIM` (not a storage key), `E_CONFIG` (`bucket` is a
   *   function: the key does not say which bucket; pass the objects `list` yielded)
   */
  protected override _locateKey(key: string, index: number): GcsStorageLocation {
    if (!isObjectName(key)) {
      throw this.createError(StorageDriverErrorCode.INVALID_CLAIM, `delete: target ${index} is not a storage key`, {
        index,
      });
    }
    const bucket = this.#gcs.defaultBucket;
    if (bucket === undefined) {
      throw this.createError(
        StorageDriverErrorCode.CONFIG,
        'delete: a storage key does not say which bucket it is in when bucket is a function; pass the objects list() yielded',
        { index },
      );
    }
    return { bucket, key };
  }

  /** `refreshAfter` + a quarter of it (at most 15 minutes) + 1 ms: see {@link GcsStorageDriver.minimumDeleteAge}. */
  protected override _minimumDeleteAge(): number {
    return this.minimumDeleteAge;
  }
}
