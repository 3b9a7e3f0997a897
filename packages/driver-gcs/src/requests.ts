/**
 * The request layer: every `@google-cloud/storage` call the driver makes (object metadata GET,
 * single-request and resumable upload, download, rewrite in place, delete of one generation, one
 * page of a listing), each answering what a 404 or 412 means for it. Every call that changes an
 * object carries a generation precondition, which also makes it idempotent for the client's own
 * retries (the client retries 5xx/429 only for such calls, and without one it would switch off
 * retries on the shared `Storage` while the call runs).
 *
 * @module
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { byteView, errorCodeOf } from '@x/storage-driver-core';
import { classifyGcsError, gcsHttpStatus } from './errors';
import type { GcsApiErrorLike, GcsBucketLike, GcsObjectMetadata, GcsRetryOptions } from './options';

/** What the driver knows about one object version. */
export interface ObjectVersion {
  /** Its generation (a decimal int64; unique per version of the name, increasing). */
  readonly generation: string;
  /** Its `updated` time (milliseconds since the epoch, GCS clock). */
  readonly updated: number;
  /** Its size in bytes. */
  readonly size: number;
}

const GENERATION = /^[1-9]\d{0,18}$/;

/** An {@link ObjectVersion} from object metadata; `undefined` if a field is missing or malformed. */
export function versionOf(metadata: GcsObjectMetadata | undefined): ObjectVersion | undefined {
  if (metadata === undefined || metadata === null) return undefined;
  const generation = String(metadata.generation ?? '');
  const updated = typeof metadata.updated === 'string' ? Date.parse(metadata.updated) : Number.NaN;
  const size = Number(metadata.size);
  if (!GENERATION.test(generation) || !Number.isFinite(updated) || !Number.isSafeInteger(size) || size < 0) {
    return undefined;
  }
  return { generation, updated, size };
}

/** The version in metadata a call answered with, or a coded-later error if the answer is unusable. */
function requireVersion(metadata: GcsObjectMetadata | undefined, what: string): ObjectVersion {
  const version = versionOf(metadata);
  if (version === undefined) {
    throw Object.assign(new Error(`${what}: the answer has no usable generation, updated time and size`), {
      code: 'EBADRESPONSE',
    });
  }
  return version;
}

/** Object metadata GET; `undefined` if there is no live object (404). */
export async function getVersion(bucket: GcsBucketLike, name: string): Promise<ObjectVersion | undefined> {
  try {
    const [metadata] = await bucket.file(name).getMetadata();
    return requireVersion(metadata, 'object metadata');
  } catch (e) {
    if (classifyGcsError(e) === 'not-found') return undefined;
    throw e;
  }
}

/**
 * Uploads `bytes` as `name` only if the live generation is `ifGenerationMatch` (`'0'`: only if
 * there is no live object), in one request or (over `resumableThreshold` bytes) a resumable
 * upload. The bytes' MD5 is declared, so GCS rejects (400) an upload damaged on the way instead of
 * storing it; the client's own checksum validation is off (it would delete the object without a
 * precondition on a mismatch, and hash every byte a second time in JavaScript). Resolves to the
 * new version, or `exists` if the precondition failed (412).
 */
export async function uploadIfGeneration(
  bucket: GcsBucketLike,
  name: string,
  bytes: Uint8Array,
  ifGenerationMatch: string,
  resumableThreshold: number,
): Promise<ObjectVersion | 'exists'> {
  const file = bucket.file(name);
  const data = byteView(bytes);
  try {
    await file.save(data, {
      resumable: data.byteLength > resumableThreshold,
      validation: false,
      contentType: 'application/octet-stream',
      metadata: { md5Hash: createHash('md5').update(data).digest('base64') },
      preconditionOpts: { ifGenerationMatch },
    });
  } catch (e) {
    if (classifyGcsError(e) === 'precondition') return 'exists';
    throw e;
  }
  return requireVersion(file.metadata, 'upload');
}

/** Statuses the client retries (its `shouldRetryRequest`), and the JSON API reasons it retries. */
const RETRYABLE_STATUSES = new Set([408, 429, 500, 502, 503, 504]);
const RETRYABLE_REASONS = new Set(['rateLimitExceeded', 'userRateLimitExceeded']);
/** The client's defaults for `retryOptions` (`@google-cloud/storage` 7.x and 8.x). */
const DEFAULT_RETRY = { maxRetries: 3, retryDelayMultiplier: 2, maxRetryDelay: 64, totalTimeout: 600 };
/** Most of an error answer's body the driver reads for its message. */
const MAX_ERROR_BODY = 64 * 1024;

/**
 * Downloads an object; `undefined` if there is none (404). The caller checks the bytes against the
 * claim's SHA-256, so no checksum is requested. The request goes out through the client
 * (`File.requestStream`: its credentials, endpoint, headers) with the client's own retries off,
 * and is retried here under the client's `retryOptions` (same rule and delays: 408, 429, 5xx and
 * rate-limit answers, connections that failed before any answer; `retryableErrorFn` if set): the
 * client's retry of a streamed download pipes into a stream it destroyed, which Node 22 and later
 * answer with an unhandled `ERR_STREAM_UNABLE_TO_PIPE` rejection inside the client, and an
 * application's process ends on it. For the same reason nothing is destroyed under the client
 * before GCS answered: aborting `signal` settles the call at once and cancels the answer when it
 * comes. Once GCS has answered, a download that receives no byte for `stallTimeout` ms is given
 * up (`ETIMEDOUT`): 7.x (node-fetch 2) never reports a connection cut in the middle of a body of
 * known length. A download whose connection failed before any answer (`ECONNRESET`, "socket hang
 * up": a pooled connection the server had already closed) is also sent once more at once, even
 * with retries off: a GET is safe to repeat.
 */
export async function download(
  bucket: GcsBucketLike,
  name: string,
  signal: AbortSignal,
  stallTimeout: number,
): Promise<Uint8Array | undefined> {
  const options = bucket.storage?.retryOptions ?? {};
  const retries = options.autoRetry === false ? 0 : (options.maxRetries ?? DEFAULT_RETRY.maxRetries);
  const first = Date.now();
  let resent = false;
  for (let attempt = 1; ; attempt++) {
    const state = { answered: false };
    try {
      return await downloadOnce(bucket, name, signal, stallTimeout, state);
    } catch (e) {
      if (signal.aborted) throw signal.reason;
      if (!resent && !state.answered && errorCodeOf(e) === 'ECONNRESET') {
        resent = true;
        attempt--;
        continue;
      }
      if (attempt > retries || !retryableDownloadError(e, state.answered, options)) throw e;
      const delay = retryDelay(options, attempt, first);
      if (delay <= 0) throw e;
      try {
        await sleep(delay, undefined, { signal });
      } catch {
        throw signal.reason;
      }
    }
  }
}

/** Whether the client would have retried this download failure. */
function retryableDownloadError(error: unknown, answered: boolean, options: GcsRetryOptions): boolean {
  const status = gcsHttpStatus(error);
  if (status !== undefined && status >= 400) {
    if (options.retryableErrorFn !== undefined) return options.retryableErrorFn(error as GcsApiErrorLike) === true;
    if (RETRYABLE_STATUSES.has(status)) return true;
    const errors = (error as Partial<GcsApiErrorLike>).errors ?? [];
    return errors.some((e) => RETRYABLE_REASONS.has(String(e.reason)));
  }
  // No answer at all (refused, reset, DNS): the client's "no response" retries. A body that failed
  // after the answer began is not retried (nor was it by the client).
  return !answered;
}

/** The client's delay before retry `n` (ms): `multiplier ** n` s plus jitter, bounded. */
function retryDelay(options: GcsRetryOptions, n: number, first: number): number {
  const multiplier = options.retryDelayMultiplier ?? DEFAULT_RETRY.retryDelayMultiplier;
  const max = (options.maxRetryDelay ?? DEFAULT_RETRY.maxRetryDelay) * 1000;
  const left = (options.totalTimeout ?? DEFAULT_RETRY.totalTimeout) * 1000 - (Date.now() - first);
  return Math.min(multiplier ** n * 1000 + Math.floor(Math.random() * 1000), max, left);
}

/** The answer `requestStream` emits: the body stream, with the status and headers on it. */
interface MediaResponse extends Readable {
  statusCode?: number;
  statusMessage?: string;
}

/** One download request ({@link download}); sets `state.answered` once GCS has answered. */
async function downloadOnce(
  bucket: GcsBucketLike,
  name: string,
  signal: AbortSignal,
  stallTimeout: number,
  state: { answered: boolean },
): Promise<Uint8Array | undefined> {
  signal.throwIfAborted();
  const stream = bucket.file(name).requestStream({
    uri: '',
    qs: { alt: 'media' },
    headers: { 'Cache-Control': 'no-store' },
    maxRetries: 0,
  });
  let response: MediaResponse | undefined;
  let stopped: Error | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let settle: ((error?: Error) => void) | undefined;
  // Ends this download early (abort, stall). The answer's body is destroyed only once the client
  // has attached its own pipe to it (next tick): before that, the client would pipe into a
  // destroyed stream.
  const stop = (error: Error) => {
    if (stopped !== undefined) return;
    stopped = error;
    clearTimeout(timer);
    settle?.(error);
    if (response !== undefined) {
      const answer = response;
      setImmediate(() => answer.destroy());
    }
  };
  const onAbort = () => stop(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(
      () =>
        stop(
          Object.assign(
            new Error(
              `download stalled: no byte for ${stallTimeout} ms after GCS answered (a connection cut mid-body?)`,
            ),
            { code: 'ETIMEDOUT' },
          ),
        ),
      stallTimeout,
    );
  };
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    // The answer: the client's stream emits it (the body stream, with status and headers on it),
    // or an error if the request failed before any answer. Reading the client's own stream
    // (resume) is what sends the request; its data is a copy of the body, drained.
    response = await new Promise<MediaResponse>((resolve, reject) => {
      settle = reject;
      stream.on('error', (e: Error) => reject(e));
      stream.once('response', (answer: MediaResponse) => {
        response = answer;
        state.answered = true;
        answer.on('error', () => {}); // surfaced by the iteration below
        if (stopped !== undefined) setImmediate(() => answer.destroy());
        else resolve(answer);
      });
      stream.resume();
    });
    arm();
    const status = response.statusCode;
    const chunks: Buffer[] = [];
    let length = 0;
    for await (const chunk of response) {
      arm();
      const buffer = chunk as Buffer;
      if (status !== undefined && status >= 300 && length >= MAX_ERROR_BODY) continue;
      chunks.push(buffer);
      length += buffer.byteLength;
    }
    if (stopped !== undefined) throw stopped;
    const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, length);
    if (status === 404) return undefined;
    if (status === undefined || status < 200 || status >= 300) throw errorAnswer(status, response.statusMessage, body);
    return body;
  } catch (e) {
    if (signal.aborted) throw signal.reason;
    if (stopped !== undefined) throw stopped;
    if (classifyGcsError(e) === 'not-found') return undefined;
    throw e;
  } finally {
    clearTimeout(timer);
    signal.removeEventListener('abort', onAbort);
  }
}

/**
 * The client's `ApiError` shape for an error answer: `code` (the status), the JSON API's
 * `errors` and message (`{ error: { code, message, errors } }`), else the status text.
 */
function errorAnswer(status: number | undefined, statusMessage: string | undefined, body: Buffer): GcsApiErrorLike {
  let message = statusMessage || `HTTP ${status ?? 'answer without a status'}`;
  let errors: { reason?: string; message?: string }[] = [];
  try {
    const parsed = JSON.parse(body.subarray(0, MAX_ERROR_BODY).toString('utf8')) as {
      error?: { message?: unknown; errors?: unknown };
    };
    if (typeof parsed.error?.message === 'string') message = parsed.error.message;
    if (Array.isArray(parsed.error?.errors)) errors = parsed.error.errors as typeof errors;
  } catch {
    const text = body.subarray(0, 1024).toString('utf8').trim();
    if (text.length > 0) message = text;
  }
  return Object.assign(new Error(message), {
    name: 'ApiError',
    code: status ?? 0,
    errors,
    response: { statusCode: status },
  });
}

/**
 * Rewrites generation `generation` of `name` onto itself (`sourceGeneration` and
 * `ifGenerationMatch` both that generation), which gives the object a new generation and a new
 * `updated` time, keeping its bytes, metadata and storage class. Resolves to the new version, or
 * `changed` if that generation is no longer the live one (404: gone; 412: replaced).
 */
export async function rewriteInPlace(
  bucket: GcsBucketLike,
  name: string,
  generation: string,
): Promise<ObjectVersion | 'changed'> {
  let answer: readonly unknown[];
  try {
    answer = await bucket.file(name, { generation }).copy(name, {
      preconditionOpts: { ifGenerationMatch: generation },
    });
  } catch (e) {
    const kind = classifyGcsError(e);
    if (kind === 'not-found' || kind === 'precondition') return 'changed';
    throw e;
  }
  const [copied, response] = answer as [
    { metadata?: GcsObjectMetadata } | undefined,
    { resource?: GcsObjectMetadata }?,
  ];
  return requireVersion(response?.resource ?? copied?.metadata, 'rewrite');
}

/**
 * Deletes generation `generation` of `name`, only while it is the live one: the request names the
 * generation (`generation`) and requires it (`ifGenerationMatch`). GCS applies the precondition
 * atomically; fake-gcs-server, which ignores delete preconditions, still deletes only the named
 * generation, atomically too. Resolves to `deleted`, or `changed` when that generation is not the
 * live one (412, or 404 when it is gone — the name may hold a newer generation or nothing).
 *
 * Naming the generation deletes permanently on a bucket with Object Versioning (no noncurrent
 * version is kept); a bucket's soft-delete policy still applies.
 */
export async function deleteGeneration(
  bucket: GcsBucketLike,
  name: string,
  generation: string,
): Promise<'deleted' | 'changed'> {
  try {
    await bucket.file(name, { generation }).delete({ ifGenerationMatch: generation });
    return 'deleted';
  } catch (e) {
    const kind = classifyGcsError(e);
    if (kind === 'not-found' || kind === 'precondition') return 'changed';
    throw e;
  }
}

/** One listed object. */
export interface ListedVersion extends ObjectVersion {
  /** Object name. */
  readonly name: string;
}

/** Objects per listing page (the JSON API's maximum). */
export const LIST_PAGE_SIZE = 1000;

/**
 * One page of the objects under `prefix` (at most {@link LIST_PAGE_SIZE}), with only the fields the
 * driver reads; objects whose metadata is unusable are left out.
 */
export async function listPage(
  bucket: GcsBucketLike,
  prefix: string,
  pageToken: string | undefined,
): Promise<{ objects: ListedVersion[]; next: string | undefined }> {
  const [files, nextQuery, response] = await bucket.getFiles({
    prefix,
    autoPaginate: false,
    maxResults: LIST_PAGE_SIZE,
    ...(pageToken === undefined ? {} : { pageToken }),
    fields: 'items(name,generation,size,updated),nextPageToken',
  });
  // The raw response's items; with `fields`, the client hands them over as they are, too.
  const raw = (response as { items?: unknown; nextPageToken?: unknown } | null | undefined) ?? {};
  const items: unknown[] = Array.isArray(raw.items) ? raw.items : [...files];
  const objects: ListedVersion[] = [];
  for (const item of items) {
    const metadata = (item as { metadata?: GcsObjectMetadata }).metadata ?? (item as GcsObjectMetadata);
    const version = versionOf(metadata);
    if (version !== undefined && typeof metadata.name === 'string') objects.push({ name: metadata.name, ...version });
  }
  const next = typeof raw.nextPageToken === 'string' ? raw.nextPageToken : nextQuery?.pageToken;
  return { objects, next: typeof next === 'string' && next !== '' ? next : undefined };
}
