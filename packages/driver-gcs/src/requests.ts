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
import { byteView, errorCodeOf } from '@x/storage-driver-core';
import { classifyGcsError, gcsHttpStatus } from './errors';
import type { GcsBucketLike, GcsObjectMetadata } from './options';

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

/**
 * Downloads an object; `undefined` if there is none (404). The caller checks the bytes against the
 * claim's SHA-256, so the client's checksum validation is off. Aborting `signal` destroys the
 * stream, which cancels the request. Once GCS has answered, a download that receives no byte for
 * `stallTimeout` ms is given up (`ETIMEDOUT`): `@google-cloud/storage` 7.x (node-fetch 2) never
 * reports a connection cut in the middle of a body of known length, and its `timeout` does not
 * cover the body. A download whose connection failed before any answer (`ECONNRESET`, "socket hang
 * up": a pooled connection the server had already closed, which 7.x does not retry on downloads)
 * is sent once more: a GET is safe to repeat.
 */
export async function download(
  bucket: GcsBucketLike,
  name: string,
  signal: AbortSignal,
  stallTimeout: number,
): Promise<Uint8Array | undefined> {
  const first = { answered: false };
  try {
    return await downloadOnce(bucket, name, signal, stallTimeout, first);
  } catch (e) {
    if (signal.aborted || first.answered || errorCodeOf(e) !== 'ECONNRESET' || gcsHttpStatus(e) !== undefined) throw e;
    return downloadOnce(bucket, name, signal, stallTimeout, { answered: false });
  }
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
  const stream = bucket.file(name).createReadStream({ validation: false });
  const onAbort = () => stream.destroy(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
  signal.addEventListener('abort', onAbort, { once: true });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stalled = () =>
    stream.destroy(
      Object.assign(
        new Error(`download stalled: no byte for ${stallTimeout} ms after GCS answered (a connection cut mid-body?)`),
        { code: 'ETIMEDOUT' },
      ),
    );
  const arm = () => {
    state.answered = true;
    clearTimeout(timer);
    timer = setTimeout(stalled, stallTimeout);
  };
  stream.once('response', arm);
  try {
    const chunks: Buffer[] = [];
    let length = 0;
    for await (const chunk of stream) {
      arm();
      const buffer = chunk as Buffer;
      chunks.push(buffer);
      length += buffer.byteLength;
    }
    return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, length);
  } catch (e) {
    if (signal.aborted) throw signal.reason;
    if (classifyGcsError(e) === 'not-found') return undefined;
    throw e;
  } finally {
    clearTimeout(timer);
    stream.off('response', arm);
    signal.removeEventListener('abort', onAbort);
  }
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
