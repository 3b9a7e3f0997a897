/**
 * Options of the GCS driver: the client types it accepts, its options with their defaults, and
 * their validation.
 *
 * @module
 */
import type { Readable } from 'node:stream';
import {
  type ContentAddressedStorageDriverOptions,
  configError,
  type ExistenceCheckMode,
  type Payload,
  refreshMinimumDeleteAge,
  requireOptionsObject,
  type StorageDriverStoreContext,
  validateConcurrency,
  validateExistenceCheck,
  validateRefreshAfter,
  validateTtl,
} from '@x/storage-driver-core';
import { GCS_CLAIM_FORMATS, type GcsClaimFormat } from './claims';
import { bucketProblem, isValidBucket } from './names';

/** Default `name` of {@link GcsStorageDriver}, identical to Temporal's official GCS drivers. */
export const GCS_DRIVER_DEFAULT_NAME = 'gcp.gcsdriver';
/** Default number of GCS requests in flight per call. */
export const GCS_DRIVER_DEFAULT_CONCURRENCY = 16;
/** Default `refreshAfter`: one day. */
export const GCS_DEFAULT_REFRESH_AFTER = 86_400_000;
/** Smallest `refreshAfter`: one second (a rewrite per object per second at most). */
export const GCS_MIN_REFRESH_AFTER = 1000;
/** Largest `refreshAfter`: one year. */
export const GCS_MAX_REFRESH_AFTER = 365 * 86_400_000;
/**
 * Default `resumableUploadThreshold`: 8 MiB, where Google's Python client switches from a
 * single-request upload to a resumable one.
 */
export const GCS_DEFAULT_RESUMABLE_UPLOAD_THRESHOLD = 8 * 1024 * 1024;
/** Default `downloadStallTimeout`: 30 seconds without a byte. */
export const GCS_DEFAULT_DOWNLOAD_STALL_TIMEOUT = 30_000;
/**
 * With `existenceCheck: 'auto'`, payloads of at least this many bytes (256 KiB) are looked up
 * (object metadata GET) before they are uploaded; smaller ones are uploaded create-only
 * (`ifGenerationMatch: 0`) straight away. The Azure Blob driver's value, measured on Azure's
 * emulator on loopback, not on GCS: see the README's "How store works".
 */
export const GCS_HEAD_FIRST_MIN_BYTES = 256 * 1024;

/** Object metadata fields the driver reads (`@google-cloud/storage`'s `FileMetadata`). */
export interface GcsObjectMetadata {
  /** Object name. */
  name?: string;
  /** Generation (an int64, as a decimal string in the JSON API). */
  generation?: string | number;
  /** Last update time (RFC 3339). */
  updated?: string;
  /** Size in bytes (a decimal string in the JSON API). */
  size?: string | number;
}

/** Precondition options of `@google-cloud/storage` calls. */
export interface GcsPreconditionOptions {
  /** Only if the object's live generation is this (`0`: only if there is none). */
  ifGenerationMatch?: number | string;
}

/**
 * The part of a `@google-cloud/storage` `File` (v7 or v8) the driver uses. Typed structurally so
 * a client of either major version type-checks.
 */
export interface GcsFileLike {
  /** Object name. */
  readonly name: string;
  /** Metadata of the last response about the object (set by `save`). */
  readonly metadata?: GcsObjectMetadata;
  /** GET object metadata. */
  getMetadata(): Promise<readonly [GcsObjectMetadata, ...unknown[]]>;
  /** Uploads `data` (single-request or resumable). */
  save(
    data: Buffer,
    options: {
      resumable: boolean;
      validation: boolean;
      contentType: string;
      metadata: { md5Hash: string };
      preconditionOpts: GcsPreconditionOptions;
    },
  ): Promise<void>;
  /**
   * Sends one authenticated request about the object and streams the answer (`File` inherits it
   * from `ServiceObject`): the driver downloads with `qs: { alt: 'media' }` and `maxRetries: 0`,
   * then retries itself under the client's `retryOptions` (see {@link GcsRetryOptions}).
   */
  requestStream(request: GcsMediaRequest): Readable;
  /** Rewrites this object (of the generation it was opened with) to the object `destination` of the same bucket. */
  copy(destination: string, options: { preconditionOpts: GcsPreconditionOptions }): Promise<readonly unknown[]>;
  /** Deletes the object (of the generation it was opened with). */
  delete(options: GcsPreconditionOptions): Promise<unknown>;
}

/**
 * What `Bucket.getFiles` resolves to with `autoPaginate: false`: the files (`File`s, or the raw
 * items when `fields` is given), the next query, and the raw JSON API response (`{ items,
 * nextPageToken }`), which the driver reads.
 */
export type GcsFilesPage = readonly [readonly unknown[], ({ pageToken?: string } | null | undefined)?, unknown?];

/** The part of a `@google-cloud/storage` `Bucket` (v7 or v8) the driver uses. */
export interface GcsBucketLike {
  /** Bucket name. */
  readonly name: string;
  /** The `Storage` the bucket was opened from (used to open the other allowed buckets). */
  readonly storage?: GcsStorageLike;
  /** A handle on one object, optionally of one generation. */
  file(name: string, options?: { generation?: number | string }): GcsFileLike;
  /** One page of a listing. */
  getFiles(query: {
    prefix: string;
    autoPaginate: false;
    maxResults: number;
    pageToken?: string;
    fields: string;
  }): Promise<GcsFilesPage>;
}

/** The part of a `@google-cloud/storage` `Storage` (v7 or v8) the driver uses. */
export interface GcsStorageLike {
  /** A handle on a bucket. */
  bucket(name: string): GcsBucketLike;
  /** The client's retry settings (`new Storage({ retryOptions })`, with the client's defaults filled in). */
  readonly retryOptions?: GcsRetryOptions;
}

/** The request {@link GcsFileLike.requestStream} sends for a download. */
export interface GcsMediaRequest {
  /** Relative to the object's URL: `''`. */
  uri: string;
  /** Query: `alt: 'media'` (the object's bytes rather than its metadata). */
  qs: { alt: 'media' };
  /** Request headers. */
  headers: Record<string, string>;
  /** The client's own retries of this request: `0` (the driver retries, see {@link GcsRetryOptions}). */
  maxRetries: number;
}

/**
 * The part of `@google-cloud/storage`'s `RetryOptions` the driver reads for downloads, which it
 * retries itself under these settings (the client's retries of a streamed download raise an
 * unhandled `ERR_STREAM_UNABLE_TO_PIPE` rejection inside the client on Node 22 and later, which
 * would end the worker process). Every other request is retried by the client.
 */
export interface GcsRetryOptions {
  /** Whether to retry at all. @default true */
  autoRetry?: boolean;
  /** Retries after the first attempt. @default 3 */
  maxRetries?: number;
  /** Delay of retry n: `retryDelayMultiplier ** n` seconds plus up to 1 s of jitter. @default 2 */
  retryDelayMultiplier?: number;
  /** Upper bound of one delay (seconds). @default 64 */
  maxRetryDelay?: number;
  /** No retry starts later than this many seconds after the first attempt. @default 600 */
  totalTimeout?: number;
  /** Decides which errors are retried instead of the client's rule (408, 429, 5xx, rate-limit reasons). */
  retryableErrorFn?(error: GcsApiErrorLike): boolean;
}

/** What `retryableErrorFn` receives for an error answer: the client's `ApiError` shape. */
export interface GcsApiErrorLike extends Error {
  /** HTTP status. */
  code: number;
  /** The JSON API's `error.errors` (each with a `reason`). */
  errors: { reason?: string; message?: string }[];
}

/** Picks the bucket for one payload (called once per payload of a `store` call). */
export type GcsBucketSelector = (context: StorageDriverStoreContext, payload: Payload) => string;

/**
 * How `store` avoids uploading an object that already exists.
 *
 * - `auto` (default): payloads of at least 256 KiB ({@link GCS_HEAD_FIRST_MIN_BYTES}), and
 *   objects this driver instance recently stored or read (likely repeats), as `head`; other
 *   smaller ones as `conditional-put`. What the instance saw only picks the order: GCS is asked on
 *   every store.
 * - `head`: an object metadata GET first (what the official Python driver does); an upload with
 *   `ifGenerationMatch: 0` only if there is no object. A new object costs two requests (three
 *   above `resumableUploadThreshold`), a repeat store one (and uploads nothing).
 * - `conditional-put`: an upload with `ifGenerationMatch: 0` straight away (412: it exists). A new
 *   object costs one request (two above `resumableUploadThreshold`); a repeat store uploads the
 *   body again before GCS refuses it, then looks the object up (its size decides a repair, its
 *   age a refresh).
 */
export type GcsExistenceCheck = ExistenceCheckMode;

/** Options of {@link GcsStorageDriver}. */
export interface GcsStorageDriverOptions extends ContentAddressedStorageDriverOptions {
  /**
   * A `Storage` or a `Bucket` from `@google-cloud/storage` 7.x or 8.x (project, credentials,
   * `apiEndpoint`, retries: all the client's). Required. Never closed by the driver. With a
   * `Bucket`, `bucket` defaults to its name and other allowed buckets are opened through its
   * `storage`.
   */
  client: GcsStorageLike | GcsBucketLike;
  /**
   * The bucket to store into: a name, or a function `(context, payload) => name` called once per
   * payload (route by namespace, workflow type or size). Required with a `Storage` client. The
   * bucket is written into each claim, so retrieval needs no configuration beyond `allowedBuckets`.
   * @default the `Bucket` client's name
   */
  bucket?: string | GcsBucketSelector;
  /**
   * Buckets (compared exactly) that claims may name; a claim naming any other bucket is rejected
   * with `E_INVALID_CLAIM` before any request, so a forged claim in history cannot make a worker
   * read from another bucket its credentials reach. A bucket selector returning a bucket outside
   * this list fails the store with `E_CONFIG`. `list` and `deleteExpired` cover every allowed
   * bucket. Required when `bucket` is a function.
   * @default [bucket]
   */
  allowedBuckets?: readonly string[];
  /**
   * Per-instance routing key written into workflow history. The default is the official drivers'
   * name, so claims stay retrievable across SDKs.
   * @default 'gcp.gcsdriver'
   */
  name?: string;
  /**
   * Largest serialized payload accepted, in bytes, checked for the whole batch before any write.
   * @default 52428800 (50 MiB)
   */
  maxPayloadSize?: number;
  /**
   * GCS requests in flight per `store`/`retrieve`/`delete` call (1–10000).
   * @default 16
   */
  concurrency?: number;
  /**
   * How to skip objects that already exist (see {@link GcsExistenceCheck}).
   * @default 'auto'
   */
  existenceCheck?: GcsExistenceCheck;
  /**
   * The claim shape written (see {@link GcsClaimFormat}); claims of every official GCS driver are
   * read whatever it is.
   * @default 'all'
   */
  claimFormat?: GcsClaimFormat;
  /**
   * Payloads larger than this many bytes (serialized) are uploaded with a resumable upload (one
   * extra request to open the session, but an interrupted transfer resumes instead of starting
   * over; an existing object is refused at the session's start, before any byte is sent); smaller
   * ones in a single request. `0` makes every upload resumable. An integer from 0 to 5497558138880
   * (5 TiB).
   * @default 8388608 (8 MiB)
   */
  resumableUploadThreshold?: number;
  /**
   * How long (ms) a download may go without receiving a byte, once GCS has answered, before the
   * driver gives it up: the retrieve fails with a retryable `E_BACKEND`. `@google-cloud/storage`
   * 7.x downloads through node-fetch 2, which never reports a connection cut in the middle of a
   * body of known length (the stream neither ends nor fails, and the client's `timeout` does not
   * cover the body), so without this such a retrieve would wait forever. An integer from 100 to
   * 3600000 (an hour).
   * @default 30000 (30 seconds)
   */
  downloadStallTimeout?: number;
  /**
   * How old (milliseconds since its `updated` time) an existing object must be before a `store`
   * that dedups onto it rewrites it in place, so that its age restarts: the object's
   * last-referenced time is its `updated`, at most `refreshAfter` behind the latest store that
   * returned a claim for it. Shorter means more rewrites on repeat stores; longer means
   * `deleteExpired` and bucket lifecycle rules must wait longer (the minimum delete age is
   * `refreshAfter` plus a quarter of it, at most 15 minutes, plus 1 ms). An integer from 1000 to
   * 31536000000 (one year).
   * @default 86400000 (one day)
   */
  refreshAfter?: number;
  /**
   * Default `olderThan` of `deleteExpired`, in milliseconds: payloads not referenced for this long
   * are removed by a sweep. GCS does not expire anything by itself; see the README's Lifecycle
   * section for a bucket rule instead. At least the minimum delete age.
   * @default undefined (`deleteExpired` needs an `olderThan`)
   */
  ttl?: number;
}

/** Resolution of GCS `updated` times used in the minimum delete age (they are given to the microsecond). */
export const UPDATED_RESOLUTION = 1;

/**
 * The youngest age a conditional delete may target with this `refreshAfter`: `refreshAfter` +
 * {@link refreshAllowance} + 1 ms. An object some `store` returned a claim for within this time is
 * never older than it.
 */
export function gcsMinimumDeleteAge(refreshAfter: number): number {
  return refreshMinimumDeleteAge(refreshAfter, UPDATED_RESOLUTION);
}

/**
 * The options of {@link GcsStorageDriver} once validated, with their defaults: what the driver and
 * its modules read (`name`, `maxPayloadSize`, `ttl` and `clock` are the base class's).
 */
export interface GcsSettings {
  /** The injected client. */
  readonly client: GcsStorageLike | GcsBucketLike;
  /** Opens (once) the handle of an allowed bucket. */
  readonly bucketHandle: (name: string) => GcsBucketLike;
  /** Picks the bucket of one payload. */
  readonly selectBucket: GcsBucketSelector;
  /** The bucket when `bucket` is a string (bare storage keys given to `delete` go there). */
  readonly defaultBucket: string | undefined;
  /** Buckets claims may name (and `list`/`deleteExpired` cover). */
  readonly allowedBuckets: readonly string[];
  /** Requests in flight per call. */
  readonly concurrency: number;
  /** How a store detects existing objects. */
  readonly existenceCheck: GcsExistenceCheck;
  /** The claim shape written. */
  readonly claimFormat: GcsClaimFormat;
  /** Uploads of more bytes than this are resumable. */
  readonly resumableUploadThreshold: number;
  /** A download that receives no byte for this long (ms) once answered is given up. */
  readonly downloadStallTimeout: number;
  /** Age (ms) after which a store that dedups onto an object rewrites it. */
  readonly refreshAfter: number;
  /** The youngest age (ms) a conditional delete may target. */
  readonly minimumDeleteAge: number;
}

const isBucketClient = (client: object): client is GcsBucketLike =>
  typeof (client as Partial<GcsBucketLike>).file === 'function';

/**
 * Validates the options of {@link GcsStorageDriver} (all but the base class's own) and resolves
 * their defaults.
 *
 * @throws StorageDriverError `E_CONFIG` if `options` is not an object, `client` is neither a
 *   `Storage` nor a `Bucket`, `bucket` is missing (with a `Storage`), not a valid bucket name or a
 *   function, `allowedBuckets` is missing while `bucket` is a function, names a bucket a `Bucket`
 *   client without `storage` cannot open, or is invalid, or `concurrency`, `existenceCheck`,
 *   `claimFormat`, `resumableUploadThreshold`, `downloadStallTimeout`, `refreshAfter` or `ttl`
 *   (less than the minimum delete age) is invalid.
 */
export function checkOptions(options: unknown): GcsSettings {
  const o = requireOptionsObject<Partial<GcsStorageDriverOptions>>(
    options,
    'GcsStorageDriver options must be an object with a client (a Storage or a Bucket)',
  );
  const client = o.client;
  if (
    typeof client !== 'object' ||
    client === null ||
    (typeof (client as Partial<GcsStorageLike>).bucket !== 'function' && !isBucketClient(client))
  ) {
    throw configError('client must be a Storage or a Bucket from @google-cloud/storage');
  }
  const bucketClient = isBucketClient(client) ? client : undefined;
  if (bucketClient !== undefined && !isValidBucket(bucketClient.name)) {
    throw configError(
      `client is a Bucket whose name ${JSON.stringify(bucketClient.name)} ${bucketProblem(bucketClient.name)}`,
    );
  }
  const bucket = o.bucket ?? bucketClient?.name;
  if (typeof bucket === 'string') {
    if (!isValidBucket(bucket)) throw configError(`bucket ${JSON.stringify(bucket)} ${bucketProblem(bucket)}`);
  } else if (typeof bucket !== 'function') {
    throw configError('bucket must be a bucket name or a function returning one (required with a Storage client)');
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
    if (typeof bucket === 'string' && !o.allowedBuckets.includes(bucket)) {
      throw configError('allowedBuckets must include bucket');
    }
  }
  const allowedBuckets = Object.freeze([...(o.allowedBuckets ?? [bucket as string])]);
  const storage = bucketClient === undefined ? (client as GcsStorageLike) : bucketClient.storage;
  const unreachable = allowedBuckets.find((b) => b !== bucketClient?.name && storage === undefined);
  if (unreachable !== undefined) {
    throw configError(`client is a Bucket without storage, so bucket ${unreachable} cannot be opened; pass a Storage`);
  }
  const existenceCheck = validateExistenceCheck(o.existenceCheck);
  if (o.claimFormat !== undefined && !GCS_CLAIM_FORMATS.includes(o.claimFormat)) {
    throw configError(`claimFormat must be one of ${GCS_CLAIM_FORMATS.map((f) => JSON.stringify(f)).join(', ')}`);
  }
  const refreshAfter = validateRefreshAfter(o.refreshAfter, {
    min: GCS_MIN_REFRESH_AFTER,
    max: GCS_MAX_REFRESH_AFTER,
    fallback: GCS_DEFAULT_REFRESH_AFTER,
    minReason: 'a rewrite per object per second at most',
  });
  const minimumDeleteAge = gcsMinimumDeleteAge(refreshAfter);
  const ttl = validateTtl(o.ttl);
  if (ttl !== undefined && ttl < minimumDeleteAge) {
    throw configError(
      `ttl (${ttl} ms) must be at least the minimum delete age ${minimumDeleteAge} ms (refreshAfter ${refreshAfter} ms plus its allowance for clock skew and rewrite time)`,
    );
  }
  const handles = new Map<string, GcsBucketLike>();
  const bucketHandle = (name: string): GcsBucketLike => {
    if (bucketClient !== undefined && name === bucketClient.name) return bucketClient;
    let handle = handles.get(name);
    if (handle === undefined) {
      // Only allowed buckets are opened, and each of them is reachable (checked above).
      handle = (storage as GcsStorageLike).bucket(name);
      handles.set(name, handle);
    }
    return handle;
  };
  return {
    client,
    bucketHandle,
    selectBucket: typeof bucket === 'string' ? () => bucket : bucket,
    defaultBucket: typeof bucket === 'string' ? bucket : undefined,
    allowedBuckets,
    concurrency: validateConcurrency(o.concurrency, GCS_DRIVER_DEFAULT_CONCURRENCY),
    existenceCheck,
    claimFormat: o.claimFormat ?? 'all',
    resumableUploadThreshold: checkInteger(
      o.resumableUploadThreshold,
      'resumableUploadThreshold',
      0,
      5 * 1024 ** 4,
      GCS_DEFAULT_RESUMABLE_UPLOAD_THRESHOLD,
    ),
    downloadStallTimeout: checkInteger(
      o.downloadStallTimeout,
      'downloadStallTimeout',
      100,
      3_600_000,
      GCS_DEFAULT_DOWNLOAD_STALL_TIMEOUT,
    ),
    refreshAfter,
    minimumDeleteAge,
  };
}

/** An integer option from `min` to `max`, or `fallback` when undefined. */
function checkInteger(value: unknown, what: string, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw configError(`${what} must be an integer from ${min} to ${max}, got ${String(value)}`);
  }
  return value;
}
