/**
 * The S3 storage driver, wire-compatible with Temporal's official S3 drivers.
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
  requireClaimField,
  type StorageDriverCapabilities,
  StorageDriverError,
  StorageDriverErrorCode,
  type StorageDriverStoreContext,
  type StoreItem,
  validateConcurrency,
} from '@x/storage-driver-core';
import { classifyS3Error, toStorageDriverError } from './errors';
import { ExistenceCache } from './existence-cache';
import {
  bucketProblem,
  isSpecKey,
  isValidBucket,
  S3_MAX_KEY_BYTES,
  type S3StorageLocation,
  validateClaimBucket,
  validateClaimKey,
  validateKeyPrefix,
} from './keys';
import {
  deleteObjects,
  listObjects,
  refreshStale,
  type S3LifecycleBackend,
  type StoredState,
  s3MinimumDeleteAge,
} from './lifecycle';
import {
  checkEncryption,
  checkExistenceCache,
  checkOptions,
  checkTags,
  S3_DRIVER_DEFAULT_CONCURRENCY,
  S3_DRIVER_DEFAULT_NAME,
  type S3BucketSelector,
  type S3ClientLike,
  type S3ExistenceCheck,
  type S3StorageDriverOptions,
  validateRefreshAfter,
} from './options';
import { encodeTagging, getObject, headObject, putObject } from './requests';

/** `type` of {@link S3StorageDriver}, identical to Temporal's official S3 drivers. */
export const S3_DRIVER_TYPE = 'aws.s3driver';

function configError(message: string): StorageDriverError {
  return new StorageDriverError(StorageDriverErrorCode.CONFIG, message);
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

  private readonly selectBucket: S3BucketSelector;
  /** The bucket when `bucket` is a string (bare storage keys given to `delete` go there). */
  private readonly defaultBucket: string | undefined;
  private readonly putOptions: Readonly<Record<string, string | boolean>>;
  /** Set when the server answered a conditional PUT with 501 NotImplemented. */
  private conditionalPutUnsupported = false;
  /** Keys known to exist (undefined when `existenceCache: false`). */
  private readonly known: ExistenceCache | undefined;
  /**
   * `LastModified` of the objects running retrieves read (cache on only), by location object: the
   * base class hands `_onVerified` the locations it handed `_get`, and a failed retrieve's entries
   * go with its locations.
   */
  private readonly retrieved = new WeakMap<S3StorageLocation, number>();
  /** What the lifecycle module needs from this driver. */
  private readonly backend: S3LifecycleBackend;

  /**
   * @throws StorageDriverError `E_CONFIG` if `options` is not an object, `client` has no `send`,
   *   `bucket` is neither a valid bucket name, an S3 access point ARN nor a function, an access
   *   point ARN is configured with a `forcePathStyle` client, `allowedBuckets` is missing while
   *   `bucket` is a function, or `allowedBuckets`, `name`,
   *   `maxPayloadSize`, `concurrency`, `existenceCheck`, `existenceCache` (its `ttl` must be less
   *   than `refreshAfter`), `keyPrefix`, `serverSideEncryption`, `storageClass`, `tags`,
   *   `refreshAfter` or `ttl` (less than the minimum delete age) is invalid.
   */
  constructor(options: S3StorageDriverOptions) {
    const checked = checkOptions(options);
    super(S3_DRIVER_DEFAULT_NAME, checked);
    this.client = checked.client;
    this.concurrency = validateConcurrency(checked.concurrency, S3_DRIVER_DEFAULT_CONCURRENCY);
    this.existenceCheck = checked.existenceCheck ?? 'auto';
    this.refreshAfter = validateRefreshAfter(checked.refreshAfter);
    this.minimumDeleteAge = s3MinimumDeleteAge(this.refreshAfter);
    if (this.ttl !== undefined && this.ttl < this.minimumDeleteAge) {
      throw configError(
        `ttl (${this.ttl} ms) must be at least the minimum delete age ${this.minimumDeleteAge} ms (refreshAfter ${this.refreshAfter} ms plus its allowance for clock skew, copy time and S3's 1 s resolution)`,
      );
    }
    const cache = checkExistenceCache(checked.existenceCache, this.refreshAfter);
    this.known = cache === undefined ? undefined : new ExistenceCache(cache.maxEntries, cache.ttl);
    this.keyPrefix = validateKeyPrefix(checked.keyPrefix);
    const bucket = checked.bucket;
    this.selectBucket = typeof bucket === 'string' ? () => bucket : bucket;
    this.defaultBucket = typeof bucket === 'string' ? bucket : undefined;
    // checkOptions guarantees allowedBuckets when bucket is a function.
    this.allowedBuckets = Object.freeze([...(checked.allowedBuckets ?? [bucket as string])]);
    const sse = checkEncryption(checked.serverSideEncryption);
    const tags = checkTags(checked.tags);
    const put: Record<string, string | boolean> = {};
    if (sse !== undefined) {
      put['ServerSideEncryption'] = sse.type;
      if (sse.type === 'aws:kms' && sse.kmsKeyId !== undefined) put['SSEKMSKeyId'] = sse.kmsKeyId;
      if (sse.type === 'aws:kms' && sse.bucketKeyEnabled !== undefined) put['BucketKeyEnabled'] = sse.bucketKeyEnabled;
    }
    if (checked.storageClass !== undefined) put['StorageClass'] = checked.storageClass;
    if (tags !== undefined && Object.keys(tags).length > 0) put['Tagging'] = encodeTagging(tags);
    this.putOptions = Object.freeze(put);
    this.backend = {
      client: this.client,
      concurrency: this.concurrency,
      keyPrefix: this.keyPrefix,
      allowedBuckets: this.allowedBuckets,
      refreshAfter: this.refreshAfter,
      driverName: this.name,
      tagging: typeof put['Tagging'] === 'string' ? put['Tagging'] : undefined,
      now: () => this.now(),
      fail: (error, kind, location) => this.wrapS3Error(error, kind, location),
    };
  }

  protected override _locate(
    key: string,
    context: StorageDriverStoreContext,
    payload: Payload,
    index: number,
  ): S3StorageLocation {
    let bucket: unknown;
    try {
      bucket = this.selectBucket(context, payload);
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

  /**
   * S3's 1024-byte key limit minus `keyPrefix`: a longer key becomes the official drivers'
   * namespace digest key `v0/ns/{namespace}/d/sha256/{hex}` (what Python `temporalio` 1.35 writes),
   * so a mixed fleet stores such a payload once.
   */
  protected override _maxKeyLength(): number {
    return S3_MAX_KEY_BYTES - this.keyPrefix.length;
  }

  protected override _locationId(location: S3StorageLocation): string {
    // Unambiguous whatever the bucket holds (access point ARNs contain ':' and '/').
    return JSON.stringify([location.bucket, location.key]);
  }

  protected override _claimFields(location: S3StorageLocation): Record<string, string> {
    return { bucket: location.bucket, key: location.key };
  }

  protected override _parseClaim(claimData: Record<string, string>, index: number): S3StorageLocation {
    const bucket = validateClaimBucket(requireClaimField(claimData, 'bucket', index));
    if (!this.allowedBuckets.includes(bucket)) {
      throw this.createError(
        StorageDriverErrorCode.INVALID_CLAIM,
        `Claim names bucket ${bucket}, which is not in allowedBuckets`,
        {
          index,
        },
      );
    }
    const key = validateClaimKey(requireClaimField(claimData, 'key', index));
    return { bucket, key };
  }

  /**
   * Uploads each item unless it already exists, at most `concurrency` requests at a time; then,
   * once every upload of the batch has finished, copies onto itself every object of the batch
   * that is older than `refreshAfter` by then (see `refreshStale` in `lifecycle.ts`), so the
   * claims the store returns point at objects at most `refreshAfter` old.
   */
  protected async _putIfAbsent(items: StoreItem<S3StorageLocation>[], op: BackendOperation): Promise<void> {
    const states = await mapBounded(
      items,
      this.concurrency,
      (item, _i, signal) => this.putOne(item, signal),
      op.signal,
      this.name,
    );
    await refreshStale(
      this.backend,
      items,
      states,
      (item) => item.location,
      (item, signal) => this.reupload(item, signal),
      op.signal,
    );
    if (this.known !== undefined) {
      items.forEach((item, i) => {
        const lastModified = (states[i] as StoredState).lastModified;
        if (lastModified !== undefined) this.known?.add(this._locationId(item.location), lastModified);
      });
    }
  }

  /** Downloads each location (`undefined` for `NoSuchKey`), at most `concurrency` at a time. */
  protected async _get(locations: S3StorageLocation[], op: BackendOperation): Promise<(Uint8Array | undefined)[]> {
    return mapBounded(
      locations,
      this.concurrency,
      (location, _i, signal) => this.getOne(location, signal),
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
    if (this.known === undefined) return;
    for (const location of locations) {
      const lastModified = this.retrieved.get(location);
      if (lastModified !== undefined) this.known.add(this._locationId(location), lastModified);
    }
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
    return this.wrapS3Error(error, kind, undefined);
  }

  /** Last-referenced times are `LastModified`, refreshed by every store (see `refreshAfter`). */
  protected override _capabilities(): Partial<StorageDriverCapabilities> {
    return { lastReferenced: 'exact' };
  }

  /** `refreshAfter` + a quarter of it (at most 15 minutes) + 1 s: see {@link S3StorageDriver.minimumDeleteAge}. */
  protected override _minimumDeleteAge(): number {
    return this.minimumDeleteAge;
  }

  /** `ListObjectsV2` under `keyPrefix + 'v0/'` in every allowed bucket, pages of 1,000. */
  protected override _list(query: ListQuery): AsyncIterable<ListedObject<S3StorageLocation>> {
    return listObjects(this.backend, query);
  }

  /** Conditional: `DeleteObject` with `If-Match` per object; unconditional: `DeleteObjects` per 1,000. */
  protected override _delete(
    entries: DeleteEntry<S3StorageLocation>[],
    options: { readonly referencedBefore: Date | undefined },
    op: BackendOperation,
  ): Promise<DeleteOutcome[]> {
    return deleteObjects(this.backend, entries, options.referencedBefore, op.signal);
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
    if (this.defaultBucket === undefined) {
      throw this.createError(
        StorageDriverErrorCode.CONFIG,
        'delete: a storage key does not say which bucket it is in when bucket is a function; pass the objects list() yielded',
        { index },
      );
    }
    return this._parseClaim({ bucket: this.defaultBucket, key: this.keyPrefix + key }, index);
  }

  // ---------------------------------------------------------------------------------------------

  /**
   * Makes sure one object exists; resolves to what is known of its age (a cached key: the cached
   * `LastModified`; one a HEAD found: its HEAD; one uploaded now: the time of the upload).
   */
  private async putOne(item: StoreItem<S3StorageLocation>, signal: AbortSignal): Promise<StoredState> {
    const { location, bytes } = item;
    // Content-addressed: an existing object holds these bytes. Its age is checked at the end.
    const cached = this.known?.get(this._locationId(location));
    if (cached !== undefined) return { lastModified: cached, head: undefined };
    try {
      if (this.existenceCheck === 'conditional-put' && !this.conditionalPutUnsupported) {
        const written = await this.put(location, bytes, item.sha256, true, signal, false);
        // 412: it exists, of unknown age (the end of the batch looks it up).
        if (!written.unsupported) return { lastModified: written.exists ? undefined : written.at, head: undefined };
        // 501 (no conditional writes): look first from now on, as `head` does. A plain PUT over an
        // existing object would give it a new LastModified with the same ETag, which a delete
        // conditional on the ETag listed before could then remove.
      }
      const askedAt = this.now();
      let head: Awaited<ReturnType<typeof headObject>>;
      let hidden = false;
      try {
        head = await headObject(this.client, location, signal);
      } catch (e) {
        // 403: no s3:ListBucket, so S3 does not say whether the object exists; try the PUT.
        if (classifyS3Error(e) !== 'access-denied') throw e;
        head = undefined;
        hidden = true;
      }
      if (head !== undefined && (head.size === undefined || head.size === bytes.byteLength)) {
        return { lastModified: head.lastModified, head };
      }
      // A damaged object of the wrong size is overwritten, so that PUT is unconditional.
      const conditional = this.existenceCheck !== 'head' && head === undefined && !this.conditionalPutUnsupported;
      const written = await this.put(location, bytes, item.sha256, conditional, signal);
      // 412 after a 404: another writer created it after our HEAD, so it is at most that old.
      if (written.exists) {
        return { lastModified: hidden ? undefined : askedAt - LAST_MODIFIED_RESOLUTION, head: undefined };
      }
      return { lastModified: written.at, head: undefined };
    } catch (e) {
      throw this.wrapS3Error(e, 'store', location);
    }
  }

  /**
   * Uploads an object that a refresh found deleted meanwhile (conditional, as a first upload; a
   * 412 means another writer created it since, which the caller dates).
   */
  private async reupload(item: StoreItem<S3StorageLocation>, signal: AbortSignal): Promise<StoredState> {
    try {
      const written = await this.put(item.location, item.bytes, item.sha256, !this.conditionalPutUnsupported, signal);
      return { lastModified: written.exists ? undefined : written.at, head: undefined };
    } catch (e) {
      throw this.wrapS3Error(e, 'store', item.location);
    }
  }

  /**
   * One `PutObject` (see `putObject` in `requests.ts`); a conditional one answered 501 (no
   * conditional writes on this server) is remembered and, with `plainFallback`, sent again plain.
   */
  private async put(
    location: S3StorageLocation,
    bytes: Uint8Array,
    sha256: string,
    conditional: boolean,
    signal: AbortSignal,
    plainFallback = true,
  ): Promise<{ exists: boolean; at: number; unsupported?: true }> {
    // The object's LastModified is at least this (S3 dates it when the request arrives, to the second).
    const at = this.now() - LAST_MODIFIED_RESOLUTION;
    const result = await putObject(this.client, location, bytes, sha256, this.putOptions, conditional, signal);
    // Already stored (content-addressed: same bytes), of unknown age.
    if (result === 'exists') return { exists: true, at };
    if (result === 'unsupported') {
      this.conditionalPutUnsupported = true;
      if (!plainFallback) return { exists: false, at, unsupported: true };
      return this.put(location, bytes, sha256, false, signal);
    }
    return { exists: false, at };
  }

  /** One `GetObject` (see `getObject` in `requests.ts`); `undefined` for `NoSuchKey`. */
  private async getOne(location: S3StorageLocation, signal: AbortSignal): Promise<Uint8Array | undefined> {
    try {
      const got = await getObject(this.client, location, signal);
      if (got === undefined) {
        this.known?.delete(this._locationId(location)); // Gone (expired, deleted): the next store uploads it.
        return undefined;
      }
      if (this.known !== undefined && got.lastModified !== undefined) {
        this.retrieved.set(location, got.lastModified);
      }
      return got.bytes;
    } catch (e) {
      throw this.wrapS3Error(e, 'retrieve', location);
    }
  }

  /** Converts an SDK error into a coded `StorageDriverError` naming bucket and key. */
  private wrapS3Error(
    error: unknown,
    kind: 'store' | 'retrieve' | 'list' | 'delete',
    location: S3StorageLocation | undefined,
  ): StorageDriverError {
    return toStorageDriverError(error, kind, location, { driverName: this.name, putFields: this.putOptions });
  }
}

/** S3's `LastModified` is truncated to whole seconds. */
const LAST_MODIFIED_RESOLUTION = 1000;
