/**
 * Options of the S3 driver: their types, defaults, and validation.
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
import { bucketProblem, isAccessPointArn, isValidBucket, validateKeyPrefix } from './keys';
import { s3MinimumDeleteAge } from './lifecycle';
import { encodeTagging } from './requests';

/** `type` of {@link S3StorageDriver}, identical to Temporal's official S3 drivers. */
export const S3_DRIVER_TYPE = 'aws.s3driver';
/** Default `name` of {@link S3StorageDriver}, identical to Temporal's official S3 drivers. */
export const S3_DRIVER_DEFAULT_NAME = 'aws.s3driver';
/**
 * Default number of S3 requests in flight per `store`/`retrieve` call: the AWS SDK's default
 * socket limit (50), which the official drivers reach too (they send every request of a call at
 * once). Where each request waits tens of milliseconds, requests in flight decide the time of a
 * batch (the benchmark's S3 latency profile; figures in the README).
 */
export const S3_DRIVER_DEFAULT_CONCURRENCY = 50;
/**
 * Default `headFirstMinSize`: in `auto` mode, objects from 1 MiB up are looked up before they are
 * uploaded. Below it, uploading a body S3 then refuses costs less than the extra round trip a
 * lookup adds to every new object (1 MiB at 100 MB/s ≈ 10 ms, half a 20 ms round trip).
 */
export const S3_DEFAULT_HEAD_FIRST_MIN_SIZE = 1024 * 1024;
/**
 * The part of an `S3Client` (`@aws-sdk/client-s3` v3) the driver uses. Typed structurally so a
 * client of any 3.x version type-checks; the driver never destroys it.
 */
export interface S3ClientLike {
  /** Sends one command; `options.abortSignal` cancels the request. */
  send(command: unknown, options?: { abortSignal?: AbortSignal }): Promise<unknown>;
  /** The client's resolved configuration; only `forcePathStyle` is read (access point ARNs need it off). */
  readonly config?: { readonly forcePathStyle?: unknown };
}

/** Picks the bucket (name or access point ARN) for one payload (called once per payload of a `store` call). */
export type S3BucketSelector = (context: StorageDriverStoreContext, payload: Payload) => string;

/**
 * How `store` avoids re-uploading an object that already exists.
 *
 * - `auto` (default): per object, whichever of the two below costs less. An object smaller than
 *   `headFirstMinSize` (default 1 MiB) that this driver instance has not recently stored or read
 *   (most likely new) gets the conditional `PutObject` alone: one request. A larger one, or one it
 *   has recently stored or read (most likely a repeat), gets a `HeadObject` first and, only if
 *   the object is missing, a `PutObject` with `If-None-Match: *`, so an object that exists is
 *   never uploaded again and a concurrent writer of the same key is not overwritten. What the
 *   instance has seen only picks the order of the requests: S3 is asked every time.
 * - `head`: `HeadObject` first, then a plain `PutObject` if the object is missing (exactly the
 *   official drivers' requests).
 * - `conditional-put`: only a `PutObject` with `If-None-Match: *`; a 409
 *   `ConditionalRequestConflict` (a concurrent write or delete in flight) is retried. One request
 *   per new object, but a repeat store uploads the body once more before S3 refuses it (412
 *   `PreconditionFailed`), then sends a `HeadObject` for the object's age and size.
 *
 * In every mode a `HeadObject` answered 403 (the caller has `s3:PutObject` but not
 * `s3:ListBucket`, so S3 hides whether the object exists) falls through to the `PutObject`, and
 * a server that answers a conditional `PutObject` with 501 `NotImplemented` gets plain
 * `PutObject`s from then on (remembered per driver instance).
 */
export type S3ExistenceCheck = ExistenceCheckMode;

/** Server-side encryption settings passed to every `PutObject`. */
export type S3ServerSideEncryption =
  | {
      /** SSE-S3: objects encrypted with S3-managed keys. */
      type: 'AES256';
    }
  | {
      /** SSE-KMS. */
      type: 'aws:kms';
      /**
       * KMS key id, ARN or alias.
       * @default undefined (the AWS-managed `aws/s3` key, or the bucket default)
       */
      kmsKeyId?: string;
      /**
       * Use an S3 Bucket Key (fewer KMS requests).
       * @default undefined (the bucket's setting)
       */
      bucketKeyEnabled?: boolean;
    };

/** Options of {@link S3StorageDriver}. */
export interface S3StorageDriverOptions extends ContentAddressedStorageDriverOptions {
  /**
   * An `S3Client` from `@aws-sdk/client-s3` v3 (region, credentials, `endpoint`,
   * `forcePathStyle`, retries: all the client's). Required. Never destroyed by the driver.
   */
  client: S3ClientLike;
  /**
   * The bucket to store into: a name, an S3 access point ARN
   * (`arn:{aws|aws-cn|aws-us-gov}:s3:{region}:{account}:accesspoint/{name}`, as the official
   * Python driver accepts), or a function `(context, payload) => name or ARN` called once per
   * payload (route by namespace, workflow type or size). Required. The bucket is written into
   * each claim, so retrieval needs no configuration beyond `allowedBuckets`. Access point ARNs
   * need a client without `forcePathStyle` (the SDK addresses them by host name); S3 Object
   * Lambda, Outposts and multi-region access points are rejected with `E_CONFIG`.
   */
  bucket: string | S3BucketSelector;
  /**
   * Buckets (names or access point ARNs, compared exactly) that claims may name; a claim naming
   * any other bucket is rejected with `E_INVALID_CLAIM` before any request, so a forged claim in
   * history cannot make a worker read from another bucket its credentials can reach. A bucket
   * selector returning a bucket outside this list fails the store with `E_CONFIG`. Required when
   * `bucket` is a function.
   * @default [bucket] when `bucket` is a string
   */
  allowedBuckets?: readonly string[];
  /**
   * Per-instance routing key written into workflow history. The default is the official drivers'
   * name, so claims stay retrievable across SDKs.
   * @default 'aws.s3driver'
   */
  name?: string;
  /**
   * Largest serialized payload accepted, in bytes, checked for the whole batch before any write.
   * @default 52428800 (50 MiB)
   */
  maxPayloadSize?: number;
  /**
   * S3 requests in flight per `store`/`retrieve` call (1–10000).
   * @default 50
   */
  concurrency?: number;
  /**
   * How to skip objects that already exist (see {@link S3ExistenceCheck}).
   * @default 'auto'
   */
  existenceCheck?: S3ExistenceCheck;
  /**
   * With `existenceCheck: 'auto'`: objects (serialized payloads) of at least this many bytes are
   * always looked up with a `HeadObject` before they are uploaded; smaller ones not seen recently
   * by this instance are sent as one conditional `PutObject` (see {@link S3ExistenceCheck}).
   * `0` looks up every object first. Ignored by the other modes. 0–2147483647.
   * @default 1048576 (1 MiB)
   */
  headFirstMinSize?: number;
  /**
   * Opt-in: remember keys known to exist so a repeat store skips S3 entirely (see
   * {@link S3ExistenceCacheOptions}; `{}` for the defaults `{ maxEntries: 10000, ttl: 600000 }`).
   * Off by default: every store asks S3, as the official drivers do.
   * @default false
   */
  existenceCache?: S3ExistenceCacheOptions | false;
  /**
   * Prefix put in front of every key this driver writes, e.g. `temporal/` (must end with `/`;
   * at most 512 bytes). Claims carry the full key, so any driver can read them; keys of other
   * drivers (without the prefix) are still readable. Off by default: keys are then exactly
   * the official drivers' keys.
   * @default ''
   */
  keyPrefix?: string;
  /**
   * Server-side encryption of written objects.
   * @default undefined (none set: the bucket's default encryption applies)
   */
  serverSideEncryption?: S3ServerSideEncryption;
  /**
   * Storage class of written objects, e.g. `STANDARD`, `INTELLIGENT_TIERING`, `STANDARD_IA`.
   * Avoid archive classes (`GLACIER`, `DEEP_ARCHIVE`): archived objects cannot be read back
   * directly (retrieve fails with `E_CONFIG` `InvalidObjectState` until the object is restored).
   * @default undefined (none set: `STANDARD`)
   */
  storageClass?: string;
  /**
   * Tags set on every written object, so lifecycle rules can target offloaded payloads (e.g.
   * `{ 'temporal-payload': 'true' }`). At most 10 tags; keys 1–128, values 0–256 characters of
   * letters, digits, spaces and `_ . : / = + - @`. Requires `s3:PutObjectTagging` in addition to
   * `s3:PutObject`.
   * @default undefined (no tags)
   */
  tags?: Readonly<Record<string, string>>;
  /**
   * How old (milliseconds since its `LastModified`) an existing object must be before a `store`
   * that dedups onto it copies it onto itself, so that its age restarts: the object's
   * last-referenced time is its `LastModified`, at most `refreshAfter` behind the latest store
   * that returned a claim for it. Shorter means more copies on repeat stores; longer means
   * `deleteExpired` and bucket lifecycle rules must wait longer (the minimum delete age is
   * `refreshAfter` plus a quarter of it, at most 15 minutes, plus 1 s). An integer from 1000 to
   * 31536000000 (one year).
   * @default 86400000 (one day)
   */
  refreshAfter?: number;
  /**
   * Default `olderThan` of `deleteExpired`, in milliseconds: payloads not referenced for this long
   * are removed by a sweep. S3 does not expire anything by itself; see the README's Lifecycle
   * section for a bucket rule instead. At least the minimum delete age (`refreshAfter` plus a
   * quarter of it, at most 15 minutes, plus 1 s).
   * @default undefined (`deleteExpired` needs an `olderThan`)
   */
  ttl?: number;
}

/** Default `refreshAfter`: one day. */
export const S3_DEFAULT_REFRESH_AFTER = 86_400_000;
/** Smallest `refreshAfter`: S3's `LastModified` has a resolution of one second. */
export const S3_MIN_REFRESH_AFTER = 1000;
/** Largest `refreshAfter`: one year. */
export const S3_MAX_REFRESH_AFTER = 365 * 86_400_000;
/** Default {@link S3ExistenceCacheOptions.maxEntries}. */
export const S3_EXISTENCE_CACHE_DEFAULT_MAX_ENTRIES = 10_000;
/**
 * Default {@link S3ExistenceCacheOptions.ttl}: 10 minutes (or half of `refreshAfter`, if that is
 * shorter).
 */
export const S3_EXISTENCE_CACHE_DEFAULT_TTL = 10 * 60_000;

/**
 * The in-process cache of objects this driver instance knows exist (it wrote them, a
 * `HeadObject`/conditional `PutObject` found them, or it retrieved and verified them under a key
 * naming their digest), each with its `LastModified`. Keys are content-addressed, so an object
 * that exists holds exactly the bytes a store would write: a store of a cached key that is not
 * due for a refresh sends no request at all; one older than `refreshAfter` is looked up and
 * refreshed as without the cache. Bounded by entries and by age, because an object can disappear
 * behind the driver's back (a lifecycle expiration, a manual delete).
 */
export interface S3ExistenceCacheOptions {
  /**
   * Most keys remembered (least recently confirmed dropped first), 1–10000000.
   * @default 10000
   */
  maxEntries?: number;
  /**
   * How long a key is trusted after S3 last confirmed it, in milliseconds: from 1 ms to one day,
   * and less than `refreshAfter`.
   * @default 600000 (10 minutes), or half of `refreshAfter` if that is shorter
   */
  ttl?: number;
}

/** {@link S3ExistenceCacheOptions} with their defaults. */
export interface ResolvedExistenceCache {
  /** Most keys remembered. */
  readonly maxEntries: number;
  /** How long a key is trusted after S3 last confirmed it (ms). */
  readonly ttl: number;
}

/**
 * Validates `existenceCache` against `refreshAfter`; resolves its defaults, or `undefined` when off.
 *
 * @throws StorageDriverError `E_CONFIG`
 */
function checkExistenceCache(cache: unknown, refreshAfter: number): ResolvedExistenceCache | undefined {
  if (cache === undefined || cache === false) return undefined;
  if (typeof cache !== 'object' || cache === null) throw configError('existenceCache must be an object or false');
  const { maxEntries, ttl } = cache as S3ExistenceCacheOptions;
  if (maxEntries !== undefined && (!Number.isInteger(maxEntries) || maxEntries < 1 || maxEntries > 10_000_000)) {
    throw configError('existenceCache.maxEntries must be an integer from 1 to 10000000');
  }
  if (ttl !== undefined && (!Number.isInteger(ttl) || ttl < 1 || ttl > 86_400_000)) {
    throw configError('existenceCache.ttl must be an integer number of milliseconds from 1 to 86400000 (1 day)');
  }
  if (ttl !== undefined && ttl >= refreshAfter) {
    throw configError(`existenceCache.ttl (${ttl} ms) must be less than refreshAfter (${refreshAfter} ms)`);
  }
  return {
    maxEntries: maxEntries ?? S3_EXISTENCE_CACHE_DEFAULT_MAX_ENTRIES,
    ttl: ttl ?? Math.min(S3_EXISTENCE_CACHE_DEFAULT_TTL, Math.floor(refreshAfter / 2)),
  };
}

/** Characters S3 allows in tag keys and values. */
const TAG_TEXT = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u;

const STORAGE_CLASS = /^[A-Z][A-Z0-9_]{0,63}$/;

function checkTags(tags: unknown): Readonly<Record<string, string>> | undefined {
  if (tags === undefined) return undefined;
  if (typeof tags !== 'object' || tags === null || Array.isArray(tags)) throw configError('tags must be an object');
  const entries = Object.entries(tags);
  if (entries.length > 10) throw configError('tags: S3 allows at most 10 tags per object');
  for (const [k, v] of entries) {
    if (k.length < 1 || k.length > 128) throw configError('tags: keys must be 1-128 characters');
    if (typeof v !== 'string' || v.length > 256)
      throw configError(`tags: value of ${k} must be a string of at most 256 characters`);
    if (k.startsWith('aws:')) throw configError('tags: the aws: prefix is reserved');
    if (!TAG_TEXT.test(k) || !TAG_TEXT.test(v)) {
      throw configError(`tags: ${k} has characters S3 does not allow (letters, digits, spaces and _ . : / = + - @)`);
    }
  }
  return Object.freeze({ ...(tags as Record<string, string>) });
}

function checkEncryption(sse: unknown): S3ServerSideEncryption | undefined {
  if (sse === undefined) return undefined;
  if (typeof sse !== 'object' || sse === null) throw configError('serverSideEncryption must be an object');
  const s = sse as { type?: unknown; kmsKeyId?: unknown; bucketKeyEnabled?: unknown };
  if (s.type === 'AES256') return { type: 'AES256' };
  if (s.type === 'aws:kms') {
    if (s.kmsKeyId !== undefined && (typeof s.kmsKeyId !== 'string' || s.kmsKeyId.length === 0)) {
      throw configError('serverSideEncryption.kmsKeyId must be a non-empty string');
    }
    if (s.bucketKeyEnabled !== undefined && typeof s.bucketKeyEnabled !== 'boolean') {
      throw configError('serverSideEncryption.bucketKeyEnabled must be a boolean');
    }
    return {
      type: 'aws:kms',
      ...(s.kmsKeyId === undefined ? {} : { kmsKeyId: s.kmsKeyId as string }),
      ...(s.bucketKeyEnabled === undefined ? {} : { bucketKeyEnabled: s.bucketKeyEnabled as boolean }),
    };
  }
  throw configError('serverSideEncryption.type must be "AES256" or "aws:kms"');
}

/**
 * The options of {@link S3StorageDriver} once validated, with their defaults: what the driver and
 * its modules read. (`name`, `maxPayloadSize`, `ttl` and `clock` are the base class's.)
 */
export interface S3Settings {
  /** The injected client. */
  readonly client: S3ClientLike;
  /** Picks the bucket of one payload. */
  readonly selectBucket: S3BucketSelector;
  /** The bucket when `bucket` is a string (bare storage keys given to `delete` go there). */
  readonly defaultBucket: string | undefined;
  /** Buckets claims may name (and `list`/`deleteExpired` cover). */
  readonly allowedBuckets: readonly string[];
  /** Requests in flight per call. */
  readonly concurrency: number;
  /** How a store detects existing objects. */
  readonly existenceCheck: S3ExistenceCheck;
  /** `auto` mode: the smallest object that is always looked up before it is uploaded. */
  readonly headFirstMinSize: number;
  /** The existence cache's bounds, or `undefined` when it is off. */
  readonly existenceCache: ResolvedExistenceCache | undefined;
  /** Prefix of every key this driver writes (`''` when off). */
  readonly keyPrefix: string;
  /** Age (ms) after which a store that dedups onto an object copies it onto itself. */
  readonly refreshAfter: number;
  /** The youngest age (ms) a conditional delete may target (see `s3MinimumDeleteAge`). */
  readonly minimumDeleteAge: number;
  /** Fields every `PutObject` carries: SSE, storage class, `Tagging`. */
  readonly putFields: Readonly<Record<string, string | boolean>>;
  /** The `Tagging` this driver puts on what it writes, if any. */
  readonly tagging: string | undefined;
}

/**
 * Validates the options of {@link S3StorageDriver} (all but the base class's own) and resolves
 * their defaults.
 *
 * @throws StorageDriverError `E_CONFIG` if `options` is not an object, `client` has no `send`,
 *   `bucket` is neither a valid bucket name, an S3 access point ARN nor a function, an access
 *   point ARN is configured with a `forcePathStyle` client, `allowedBuckets` is missing while
 *   `bucket` is a function, or `allowedBuckets`, `concurrency`, `existenceCheck`, `headFirstMinSize`,
 *   `existenceCache` (its `ttl` must be less than `refreshAfter`), `keyPrefix`,
 *   `serverSideEncryption`, `storageClass`, `tags`, `refreshAfter` or `ttl` (less than the
 *   minimum delete age) is invalid.
 */
export function checkOptions(options: unknown): S3Settings {
  const o = requireOptionsObject<Partial<S3StorageDriverOptions>>(
    options,
    'S3StorageDriver options must be an object with a client and a bucket',
  );
  if (typeof o.client !== 'object' || o.client === null || typeof o.client.send !== 'function') {
    throw configError('client must be an S3Client (an object with a send method)');
  }
  if (typeof o.bucket === 'string') {
    if (!isValidBucket(o.bucket)) throw configError(`bucket ${JSON.stringify(o.bucket)} ${bucketProblem(o.bucket)}`);
  } else if (typeof o.bucket !== 'function') {
    throw configError('bucket must be a bucket name or a function returning one');
  } else if (o.allowedBuckets === undefined) {
    throw configError('allowedBuckets is required when bucket is a function (claims name their bucket)');
  }
  if (o.allowedBuckets !== undefined) {
    if (!Array.isArray(o.allowedBuckets) || o.allowedBuckets.length === 0) {
      throw configError('allowedBuckets must be a non-empty array of bucket names');
    }
    for (const b of o.allowedBuckets) {
      if (!isValidBucket(b)) throw configError(`allowedBuckets: ${JSON.stringify(b)} ${bucketProblem(b)}`);
    }
    if (typeof o.bucket === 'string' && !o.allowedBuckets.includes(o.bucket)) {
      throw configError('allowedBuckets must include bucket');
    }
  }
  const arns = [...(typeof o.bucket === 'string' ? [o.bucket] : []), ...(o.allowedBuckets ?? [])].filter(
    isAccessPointArn,
  );
  if (arns.length > 0 && o.client.config?.forcePathStyle === true) {
    throw configError(
      `access point ARN ${arns[0]} needs a client without forcePathStyle (the AWS SDK addresses access points by host name)`,
    );
  }
  const existenceCheck = validateExistenceCheck(o.existenceCheck);
  const headFirstMinSize = o.headFirstMinSize ?? S3_DEFAULT_HEAD_FIRST_MIN_SIZE;
  if (!Number.isInteger(headFirstMinSize) || headFirstMinSize < 0 || headFirstMinSize > 2 ** 31 - 1) {
    throw configError(
      `headFirstMinSize must be an integer number of bytes from 0 to 2147483647, got ${String(o.headFirstMinSize)}`,
    );
  }
  if (o.storageClass !== undefined && (typeof o.storageClass !== 'string' || !STORAGE_CLASS.test(o.storageClass))) {
    throw configError('storageClass must be an S3 storage class name such as STANDARD or INTELLIGENT_TIERING');
  }
  const client = o.client;
  const bucket = o.bucket as string | S3BucketSelector;
  const concurrency = validateConcurrency(o.concurrency, S3_DRIVER_DEFAULT_CONCURRENCY);
  const refreshAfter = validateRefreshAfter(o.refreshAfter, {
    min: S3_MIN_REFRESH_AFTER,
    max: S3_MAX_REFRESH_AFTER,
    fallback: S3_DEFAULT_REFRESH_AFTER,
    minReason: 'S3 times have 1 s resolution',
  });
  const minimumDeleteAge = s3MinimumDeleteAge(refreshAfter);
  const ttl = validateTtl(o.ttl);
  if (ttl !== undefined && ttl < minimumDeleteAge) {
    throw configError(
      `ttl (${ttl} ms) must be at least the minimum delete age ${minimumDeleteAge} ms (refreshAfter ${refreshAfter} ms plus its allowance for clock skew, copy time and S3's 1 s resolution)`,
    );
  }
  const existenceCache = checkExistenceCache(o.existenceCache, refreshAfter);
  const keyPrefix = validateKeyPrefix(o.keyPrefix);
  const sse = checkEncryption(o.serverSideEncryption);
  const tags = checkTags(o.tags);
  const putFields: Record<string, string | boolean> = {};
  if (sse !== undefined) {
    putFields['ServerSideEncryption'] = sse.type;
    if (sse.type === 'aws:kms' && sse.kmsKeyId !== undefined) putFields['SSEKMSKeyId'] = sse.kmsKeyId;
    if (sse.type === 'aws:kms' && sse.bucketKeyEnabled !== undefined) {
      putFields['BucketKeyEnabled'] = sse.bucketKeyEnabled;
    }
  }
  if (o.storageClass !== undefined) putFields['StorageClass'] = o.storageClass;
  const tagging = tags !== undefined && Object.keys(tags).length > 0 ? encodeTagging(tags) : undefined;
  if (tagging !== undefined) putFields['Tagging'] = tagging;
  return {
    client,
    selectBucket: typeof bucket === 'string' ? () => bucket : bucket,
    defaultBucket: typeof bucket === 'string' ? bucket : undefined,
    // Checked above: allowedBuckets is given when bucket is a function.
    allowedBuckets: Object.freeze([...(o.allowedBuckets ?? [bucket as string])]),
    concurrency,
    existenceCheck,
    headFirstMinSize,
    existenceCache,
    keyPrefix,
    refreshAfter,
    minimumDeleteAge,
    putFields: Object.freeze(putFields),
    tagging,
  };
}
