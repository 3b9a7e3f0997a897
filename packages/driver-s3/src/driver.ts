/**
 * The S3 storage driver, wire-compatible with Temporal's official S3 drivers: the class and its
 * hooks. What the hooks delegate to: `options.ts` (validation), `keys.ts` (locations from claims),
 * `existence-cache.ts` (what exists: the existence check and cache of a store), `requests.ts`
 * (every SDK command), `lifecycle.ts` (refreshes, listing, deleting), `errors.ts` (error codes).
 *
 * @module
 */
import {
  type BackendOperation,
  ContentAddressedStorageDriver,
  type DeleteEntry,
  type DeleteOutcome,
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
import { type S3CallKind, toStorageDriverError } from './errors';
import { ExistenceTracker, type S3ExistenceBackend } from './existence-cache';
import {
  bucketProblem,
  isSpecKey,
  isValidBucket,
  locationId,
  S3_MAX_KEY_BYTES,
  type S3StorageLocation,
  validateClaimBucket,
  validateClaimKey,
} from './keys';
import { deleteObjects, listObjects, refreshStale, type S3LifecycleBackend } from './lifecycle';
import {
  checkOptions,
  S3_DRIVER_DEFAULT_NAME,
  S3_DRIVER_TYPE,
  type S3ClientLike,
  type S3ExistenceCheck,
  type S3Settings,
  type S3StorageDriverOptions,
} from './options';
import { getObject } from './requests';

/** The validated options and what the driver's modules need from the driver itself. */
interface S3Backend extends S3Settings, Omit<S3LifecycleBackend, 'fail'>, Omit<S3ExistenceBackend, 'fail'> {
  /** Converts an SDK error into a coded error naming the object (`toStorageDriverError`). */
  fail(error: unknown, kind: S3CallKind, location: S3StorageLocation | undefined): StorageDriverError;
}

/**
 * Stores payloads as objects in Amazon S3 or an S3-compatible store (DESIGN §5, type
 * `aws.s3driver`), wire-compatible with Temporal's official S3 drivers for Python, Go, Java and
 * TypeScript: same type and default name, same keys
 * (`v0/ns/{ns}/wt/{type}/wi/{id}/ri/{run}/d/sha256/{hex}`...), same stored bytes (the serialized
 * `Payload` proto) and the same claim `{ bucket, key, hash_algorithm, hash_value }`. Claims of
 * the official TypeScript driver (camelCase `hashAlgorithm`/`hashValue`) are read too.
 *
 * - Content-addressed: identical payloads in a batch are uploaded once; an object that already
 *   exists is not uploaded again (see {@link S3ExistenceCheck}).
 * - At most `concurrency` requests in flight per call; the first failure aborts the others;
 *   the caller's abort signal is passed to every request.
 * - Claims are untrusted: the bucket (a name or an S3 access point ARN) must be one of
 *   `allowedBuckets` exactly, the key must have the official structure (any SDK's
 *   percent-encoding, at most 4096 bytes), and the bytes must match the claim's SHA-256.
 * - Lifecycle (DESIGN §8): an object's last-referenced time is its `LastModified`; a store that
 *   dedups onto an object older than `refreshAfter` copies it onto itself so its age restarts
 *   (changing its ETag, so that a delete conditional on the listed ETag is exact). `list`,
 *   `delete`, `deleteExpired` (`ListObjectsV2`, `DeleteObject` with `If-Match`, `DeleteObjects`)
 *   cover `keyPrefix + 'v0/'` in every allowed bucket; a bucket lifecycle rule works too (see the
 *   README). `close()` releases nothing (the client is the caller's) and makes later calls fail.
 *
 * Errors (all `StorageDriverError`): the constructor throws `E_CONFIG`; `store` throws
 * `E_TOO_LARGE`, `E_ABORTED`, `E_CONFIG` (missing bucket, access denied, invalid request such
 * as an unknown storage class or KMS key, an access point ARN the client cannot address, and on
 * retrieve an archived object (`InvalidObjectState`): not found would wrongly say the data is
 * gone and retrying cannot help until someone restores it; not retryable), `E_BACKEND` (throttling, 5xx,
 * timeouts, connection failures after the SDK's own retries; retryable); `retrieve`
 * additionally throws `E_INVALID_CLAIM`, `E_NOT_FOUND` (`NoSuchKey`), `E_INTEGRITY`; `store` of
 * an archived object that is due for a refresh throws `E_CONFIG` (the copy is refused); the
 * lifecycle methods throw as documented on the base class, and `delete` of a bare storage key
 * throws `E_CONFIG` when `bucket` is a function. Messages name the bucket and key, never
 * credentials. API misuse throws `TypeError`.
 *
 * @example
 * ```ts
 * const client = new S3Client({ region: 'us-east-1' });
 * const driver = new S3StorageDriver({ client, bucket: 'my-temporal-payloads' });
 * const dataConverter = { externalStorage: new ExternalStorage({ drivers: [driver] }) };
 * ```
 */
export class S3StorageDriver extends ContentAddressedStorageDriver<S3StorageLocation> {
  /** Per-implementation identifier: `aws.s3driver`. */
  readonly type = S3_DRIVER_TYPE;
  /** The injected client. */
  readonly client: S3ClientLike;
  /** Requests in flight per call. */
  readonly concurrency: number;
  /** How existing objects are detected. */
  readonly existenceCheck: S3ExistenceCheck;
  /** `auto` mode: objects of at least this many bytes are looked up before they are uploaded. */
  readonly headFirstMinSize: number;
  /** Prefix of every key this driver writes (`''` when off). */
  readonly keyPrefix: string;
  /** Buckets claims may name (and `list`/`deleteExpired` cover). */
  readonly allowedBuckets: readonly string[];
  /** Age (ms) after which a store that dedups onto an object copies it onto itself. */
  readonly refreshAfter: number;
  /**
   * The youngest age (ms) `deleteExpired` and conditional deletes may target, and the smallest
   * `ttl`: `refreshAfter` + a quarter of it (at most 15 minutes) + 1 s.
   */
  readonly minimumDeleteAge: number;

  /** The validated options, with the driver's name, clock and error conversion. */
  readonly #s3: S3Backend;
  /** What this instance knows about which objects exist. */
  readonly #existence: ExistenceTracker;

  /**
   * @throws StorageDriverError `E_CONFIG` if `options` is not an object, `client` has no `send`,
   *   `bucket` is neither a valid bucket name, an S3 access point ARN nor a function, an access
   *   point ARN is configured with a `forcePathStyle` client, `allowedBuckets` is missing while
   *   `bucket` is a function, or `allowedBuckets`, `name`,
   *   `maxPayloadSize`, `concurrency`, `existenceCheck`, `headFirstMinSize`, `existenceCache` (its `ttl` must be less
   *   than `refreshAfter`), `keyPrefix`, `serverSideEncryption`, `storageClass`, `tags`,
   *   `refreshAfter` or `ttl` (less than the minimum delete age) is invalid.
   */
  constructor(options: S3StorageDriverOptions) {
    const settings = checkOptions(options);
    super(S3_DRIVER_DEFAULT_NAME, options);
    this.client = settings.client;
    this.concurrency = settings.concurrency;
    this.existenceCheck = settings.existenceCheck;
    this.headFirstMinSize = settings.headFirstMinSize;
    this.keyPrefix = settings.keyPrefix;
    this.allowedBuckets = settings.allowedBuckets;
    this.refreshAfter = settings.refreshAfter;
    this.minimumDeleteAge = settings.minimumDeleteAge;
    const context = { driverName: this.name, putFields: settings.putFields };
    this.#s3 = {
      ...settings,
      driverName: this.name,
      now: () => this.now(),
      fail: (error, kind, location) => toStorageDriverError(error, kind, location, context),
    };
    this.#existence = new ExistenceTracker(this.#s3);
  }

  // ---- store and retrieve

  /** `{ bucket: the selector's choice, key: keyPrefix + key }`. */
  protected override _locate(
    key: string,
    context: StorageDriverStoreContext,
    payload: Payload,
    index: number,
  ): S3StorageLocation {
    let bucket: unknown;
    try {
      bucket = this.#s3.selectBucket(context, payload);
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
    return { bucket, key: this.keyPrefix + key };
  }

  /** `[bucket, key]` as JSON (`locationId` in `keys.ts`). */
  protected override _locationId(location: S3StorageLocation): string {
    return locationId(location);
  }

  /** `{ bucket, key }`, the official drivers' claim fields. */
  protected override _claimFields(location: S3StorageLocation): Record<string, string> {
    return { bucket: location.bucket, key: location.key };
  }

  /** The claim's bucket must be one of `allowedBuckets`, its key of the official structure (`keys.ts`). */
  protected override _parseClaim(claimData: Record<string, string>, index: number): S3StorageLocation {
    const bucket = validateClaimBucket(requireClaimField(claimData, 'bucket', index));
    if (!this.allowedBuckets.includes(bucket)) {
      throw this.createError(
        StorageDriverErrorCode.INVALID_CLAIM,
        `Claim names bucket ${bucket}, which is not in allowedBuckets`,
        { index },
      );
    }
    const key = validateClaimKey(requireClaimField(claimData, 'key', index));
    return { bucket, key };
  }

  /**
   * S3's 1024-byte key limit minus `keyPrefix`: a longer key becomes the official drivers'
   * namespace digest key `v0/ns/{namespace}/d/sha256/{hex}` (what Python `temporalio` 1.35 writes),
   * so a mixed fleet stores such a payload once.
   */
  protected override _maxKeyLength(): number {
    return S3_MAX_KEY_BYTES - this.keyPrefix.length;
  }

  /**
   * Uploads each item unless it already exists (the existence check, `existence-cache.ts`), at
   * most `concurrency` requests at a time; then, once every upload of the batch has finished,
   * copies onto itself every object of the batch that is older than `refreshAfter` by then
   * (`refreshStale` in `lifecycle.ts`), so the claims the store returns point at objects at most
   * `refreshAfter` old. Resolves to one outcome per item: `existed` where the object was already
   * stored (a dedup hit), `written` where this store uploaded it.
   */
  protected override async _putIfAbsent(
    items: StoreItem<S3StorageLocation>[],
    op: BackendOperation,
  ): Promise<PutOutcome[]> {
    const existence = this.#existence;
    const states = await mapBounded(
      items,
      this.concurrency,
      (item, _i, signal) => existence.ensure(item, signal),
      op.signal,
      this.name,
    );
    // Found (cached, HEAD, 412) = a dedup hit; uploaded by this store = written.
    const outcomes = states.map((s): PutOutcome => (s.written ? 'written' : 'existed'));
    await refreshStale(
      this.#s3,
      items,
      states,
      (item) => item.location,
      async (item, signal) => {
        // Deleted since the check and uploaded again (rare, hence the linear search).
        const uploaded = await existence.upload(item, signal);
        if (uploaded.written) outcomes[items.indexOf(item)] = 'written';
        return uploaded;
      },
      op.signal,
    );
    existence.remember(items, states);
    return outcomes;
  }

  /** One `GetObject` per location (`undefined` for `NoSuchKey`), at most `concurrency` at a time. */
  protected override _get(locations: S3StorageLocation[], op: BackendOperation): Promise<(Uint8Array | undefined)[]> {
    return mapBounded(
      locations,
      this.concurrency,
      async (location, _i, signal) => {
        let found: Awaited<ReturnType<typeof getObject>>;
        try {
          found = await getObject(this.client, location, signal);
        } catch (e) {
          throw this.#s3.fail(e, 'retrieve', location);
        }
        this.#existence.noteRead(location, found);
        return found?.bytes;
      },
      op.signal,
      this.name,
    );
  }

  /**
   * With `existenceCache` on, remembers the objects of a successful retrieve as existing (each
   * with the `LastModified` its `GetObject` returned), so storing the same payload again in the
   * same scope (a workflow passing its input on to an activity) sends no request. The base class
   * calls it only once every object was verified against its claim's SHA-256, which is the digest
   * the object's key names (a claim whose hash differs from its key's is refused before any
   * request): a content-addressed key, known to hold the bytes a store would write.
   */
  protected override _onVerified(locations: readonly S3StorageLocation[]): void {
    this.#existence.learnVerified(locations);
  }

  /**
   * Classifies SDK errors: `NoSuchBucket`, 403 `AccessDenied` (and other credential refusals),
   * 403 `InvalidObjectState` (archived object), other 4xx such as `InvalidArgument`, and the SDK
   * refusing to address an access point ARN → `E_CONFIG` (not retryable); throttling (`SlowDown`,
   * 429), 5xx, timeouts and connection failures → `E_BACKEND` (retryable; the SDK has already
   * retried). The `cause` is the SDK error, stripped of signing details.
   */
  protected override _wrapError(error: unknown, op: BackendOperation): StorageDriverError {
    const kind = (['retrieve', 'list', 'delete'] as const).find((k) => k === op.kind) ?? 'store';
    return this.#s3.fail(error, kind, undefined);
  }

  // ---- lifecycle

  /** Last-referenced times are `LastModified`, refreshed by every store (see `refreshAfter`). */
  protected override _capabilities(): Partial<StorageDriverCapabilities> {
    return { lastReferenced: 'exact' };
  }

  /** `ListObjectsV2` under `keyPrefix + 'v0/'` in every allowed bucket, pages of 1,000. */
  protected override _list(query: ListQuery): AsyncIterable<ListedObject<S3StorageLocation>> {
    return listObjects(this.#s3, query);
  }

  /** Conditional: `DeleteObject` with `If-Match` per object; unconditional: `DeleteObjects` per 1,000. */
  protected override _delete(
    entries: DeleteEntry<S3StorageLocation>[],
    options: { readonly referencedBefore: Date | undefined },
    op: BackendOperation,
  ): Promise<DeleteOutcome[]> {
    return deleteObjects(this.#s3, entries, options.referencedBefore, op.signal);
  }

  /**
   * A bare storage key given to `delete` is in the driver's bucket, under `keyPrefix`.
   *
   * @throws StorageDriverError `E_INVALID_CLAIM` (not a storage key), `E_CONFIG` (`bucket` is a
   *   function: the key does not say which bucket; pass the objects `list` yielded)
   */
  protected override _locateKey(key: string, index: number): S3StorageLocation {
    if (!isSpecKey(key)) {
      throw this.createError(StorageDriverErrorCode.INVALID_CLAIM, `delete: target ${index} is not a storage key`, {
        index,
      });
    }
    if (this.#s3.defaultBucket === undefined) {
      throw this.createError(
        StorageDriverErrorCode.CONFIG,
        'delete: a storage key does not say which bucket it is in when bucket is a function; pass the objects list() yielded',
        { index },
      );
    }
    return this._parseClaim({ bucket: this.#s3.defaultBucket, key: this.keyPrefix + key }, index);
  }

  /** `refreshAfter` + a quarter of it (at most 15 minutes) + 1 s: see {@link S3StorageDriver.minimumDeleteAge}. */
  protected override _minimumDeleteAge(): number {
    return this.minimumDeleteAge;
  }
}
