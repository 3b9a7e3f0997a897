/**
 * The request layer of the S3 driver: every SDK command the driver sends, one function each, with
 * the SDK details (input fields, middleware, output shapes, what a 404/412/501 means for that
 * request). The rest of the driver decides which requests to send; this module only sends them.
 * Errors other than the answers a function documents are thrown as the SDK raised them (the
 * caller converts them with `toStorageDriverError`).
 *
 * @module
 */

import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import { StorageDriverError, StorageDriverErrorCode, type StoreItem } from '@x/storage-driver-core';
import { classifyS3Error, s3ErrorName } from './errors';
import { isAccessPointArn, type S3StorageLocation } from './keys';
import type { S3ClientLike } from './options';

/** S3's `LastModified` is truncated to whole seconds. */
export const LAST_MODIFIED_RESOLUTION = 1000;

/** Conditional PUTs sent for one object while S3 answers 409 `ConditionalRequestConflict`. */
const CONFLICT_ATTEMPTS = 3;

/**
 * Smallest body (1 MiB) a PUT streams from its parts rather than joining them: below it a join
 * costs microseconds and a stream per request more than it saves.
 */
const STREAM_MIN_BYTES = 1024 * 1024;

/** Largest body read into a buffer allocated up front from `Content-Length` (the maximum Uint8Array length). */
const MAX_PREALLOCATED = 2 ** 32;

// ---------------------------------------------------------------------------------------------
// HeadObject

/** What a `HeadObject` said about an object: its version and what an in-place copy must preserve. */
export interface ObjectHead {
  /** The ETag, quoted as S3 sends it (`"…"` or `"…-N"`). */
  readonly etag: string | undefined;
  /** `LastModified` in milliseconds since the epoch. */
  readonly lastModified: number | undefined;
  /** `Content-Length`. */
  readonly size: number | undefined;
  /** Number of tags, if the server said (`x-amz-tagging-count`). */
  readonly tagCount: number | undefined;
  /** Attributes a `CopyObject`/`CreateMultipartUpload` takes to keep the object as it is. */
  readonly attributes: Readonly<Record<string, unknown>>;
}

/** Output fields of `HeadObject` the driver reads. */
interface HeadOutput {
  ETag?: string;
  LastModified?: Date;
  ContentLength?: number;
  TagCount?: number;
  ContentType?: string;
  ContentEncoding?: string;
  ContentDisposition?: string;
  ContentLanguage?: string;
  CacheControl?: string;
  Expires?: Date;
  WebsiteRedirectLocation?: string;
  Metadata?: Record<string, string>;
  ServerSideEncryption?: string;
  SSEKMSKeyId?: string;
  BucketKeyEnabled?: boolean;
  StorageClass?: string;
}

/** Head fields copied verbatim into a copy request (same names in both APIs). */
const PRESERVED = [
  'ContentType',
  'ContentEncoding',
  'ContentDisposition',
  'ContentLanguage',
  'CacheControl',
  'WebsiteRedirectLocation',
  'ServerSideEncryption',
  'SSEKMSKeyId',
  'BucketKeyEnabled',
  'StorageClass',
] as const;

function readHead(out: HeadOutput): ObjectHead {
  const attributes: Record<string, unknown> = {};
  for (const field of PRESERVED) {
    const v = out[field];
    if (v !== undefined && v !== null && v !== '') attributes[field] = v;
  }
  if (out.Expires instanceof Date && !Number.isNaN(out.Expires.getTime())) attributes['Expires'] = out.Expires;
  if (out.Metadata !== undefined && Object.keys(out.Metadata).length > 0) attributes['Metadata'] = out.Metadata;
  const lastModified = out.LastModified instanceof Date ? out.LastModified.getTime() : undefined;
  return {
    etag: typeof out.ETag === 'string' && out.ETag !== '' ? out.ETag : undefined,
    lastModified: Number.isFinite(lastModified) ? lastModified : undefined,
    size: typeof out.ContentLength === 'number' ? out.ContentLength : undefined,
    tagCount: typeof out.TagCount === 'number' ? out.TagCount : undefined,
    attributes,
  };
}

/** `HeadObject`; `undefined` if there is no object (404). */
export async function headObject(
  client: S3ClientLike,
  location: S3StorageLocation,
  signal: AbortSignal,
): Promise<ObjectHead | undefined> {
  try {
    const out = (await client.send(new HeadObjectCommand({ Bucket: location.bucket, Key: location.key }), {
      abortSignal: signal,
    })) as HeadOutput;
    return readHead(out);
  } catch (e) {
    if (classifyS3Error(e) === 'not-found') return undefined;
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// PutObject

/**
 * What a {@link putObject} did: `created` (written), `exists` (conditional, 412: an object is
 * already there, of unknown age), `unsupported` (conditional, 501: the server has no conditional
 * writes; nothing was written).
 */
export type PutResult = 'created' | 'exists' | 'unsupported';

/**
 * One `PutObject` of `item`, with `If-None-Match: *` when `conditional`. The SHA-256 computed for
 * the key (`item.sha256`, hex) is reused twice, so the body is never hashed again: as the request
 * checksum (`ChecksumSHA256`: S3 verifies the upload, and the AWS SDK computes no CRC32 of its
 * own), and as the SigV4 payload hash (`x-amz-content-sha256`, which the signer otherwise computes over the
 * whole body). A conditional PUT answered 409 `ConditionalRequestConflict` (a concurrent write or
 * delete of the key in flight: the object may not exist, yet or any more) is sent again, up to 3
 * times in all.
 *
 * The body is a store item's serialized payload. Its `parts` (a serialized payload with 64 KiB of
 * data or more: core's header, the caller's data, a trailer) of 1 MiB or more in all are never
 * joined: each attempt the SDK makes gets a new stream of the same parts,
 * made after its retry middleware (`withStreamOf`), so the data goes from the caller's buffer to
 * the socket and a failed attempt can still be retried in full (the SDK does not retry a request
 * whose body is a stream it was given). Smaller ones are sent as the item's `bytes`.
 *
 * @param fields - what every PUT carries besides the body (SSE, storage class, `Tagging`).
 */
export async function putObject(
  client: S3ClientLike,
  item: StoreItem<S3StorageLocation>,
  fields: Readonly<Record<string, string | boolean>>,
  conditional: boolean,
  signal: AbortSignal,
): Promise<PutResult> {
  const { location, parts, size, sha256 } = item;
  const stream = parts.length > 1 && size >= STREAM_MIN_BYTES;
  const input = {
    Bucket: location.bucket,
    Key: location.key,
    // Streamed: an empty placeholder until the per-attempt middleware puts a stream of the parts in.
    Body: stream ? new Uint8Array(0) : item.bytes,
    ContentLength: size,
    ChecksumSHA256: Buffer.from(sha256, 'hex').toString('base64'),
    ...fields,
    ...(conditional ? { IfNoneMatch: '*' } : {}),
  };
  for (let attempt = 1; ; attempt++) {
    try {
      const command = new PutObjectCommand(input);
      command.middlewareStack.add(
        (next) => async (args) => {
          const request = args.request as { headers?: Record<string, string> } | undefined;
          if (request?.headers !== undefined) request.headers['x-amz-content-sha256'] = sha256;
          return next(args);
        },
        { step: 'build', name: 'xStoragePayloadSha256' },
      );
      if (stream) {
        command.middlewareStack.add(
          (next) => async (args) => next({ ...args, request: withStreamOf(args.request, parts) }),
          PER_ATTEMPT_BODY,
        );
      }
      await client.send(command, { abortSignal: signal });
      return 'created';
    } catch (e) {
      if (!conditional) throw e;
      const kind = classifyS3Error(e);
      // Already stored (content-addressed: same bytes), of unknown age.
      if (kind === 'exists') return 'exists';
      if (kind === 'not-implemented') return 'unsupported';
      // A concurrent write or delete of the key is in flight; once it is done, S3 answers 200 or 412.
      if (s3ErrorName(e) !== 'ConditionalRequestConflict' || attempt >= CONFLICT_ATTEMPTS) throw e;
    }
  }
}

/**
 * Where the body of a PUT of several parts is made: in the SDK's `finalizeRequest` step after its
 * retry middleware (`priority: 'high'`) and its signer, so once per attempt, just before the
 * request is sent.
 */
const PER_ATTEMPT_BODY = { step: 'finalizeRequest', priority: 'low', name: 'xStoragePartsBody' } as const;

/**
 * A copy of one attempt's `request` whose body is a new stream of `parts`: the request the retry
 * middleware holds keeps its placeholder body, so it still retries (it gives up on a request
 * whose body is a stream), and each retry streams the parts from their start.
 */
function withStreamOf(request: unknown, parts: readonly Uint8Array[]): unknown {
  if (typeof request !== 'object' || request === null || !('body' in request)) return request;
  return Object.assign(Object.create(Object.getPrototypeOf(request) as object | null) as object, request, {
    headers: { ...(request as { headers?: Record<string, string> }).headers },
    body: Readable.from(parts, { objectMode: false }),
  });
}

// ---------------------------------------------------------------------------------------------
// GetObject

/** Output fields of `GetObject` the driver reads. */
interface GetOutput {
  Body?: unknown;
  ContentLength?: number;
  LastModified?: Date;
}

/**
 * One `GetObject`: the body and its `LastModified` (ms since the epoch, if the server sent one),
 * or `undefined` if there is no object (404). The bytes are verified against the claim's SHA-256
 * by core, so the AWS SDK's own response checksum validation (on by default since 3.729:
 * `ChecksumMode: 'ENABLED'`, which hashes the whole body a second time, SHA-256 for objects this
 * driver wrote) is switched off for this request only; the injected client's configuration is
 * left alone.
 */
export async function getObject(
  client: S3ClientLike,
  location: S3StorageLocation,
  signal: AbortSignal,
): Promise<{ bytes: Uint8Array; lastModified: number | undefined } | undefined> {
  const command = new GetObjectCommand({ Bucket: location.bucket, Key: location.key });
  command.middlewareStack.add(
    (next) => async (args) => {
      // Build step: after the SDK's input middleware set ChecksumMode, before its response
      // middleware reads it (any SDK version: no relative placement on a middleware it may lack).
      delete (args.input as { ChecksumMode?: unknown }).ChecksumMode;
      const request = args.request as { headers?: Record<string, string> } | undefined;
      if (request?.headers !== undefined) delete request.headers['x-amz-checksum-mode'];
      return next(args);
    },
    { step: 'build', name: 'xStorageNoResponseChecksum' },
  );
  let out: GetOutput;
  try {
    out = (await client.send(command, { abortSignal: signal })) as GetOutput;
  } catch (e) {
    if (classifyS3Error(e) === 'not-found') return undefined;
    throw e;
  }
  const bytes = await readBody(out.Body, out.ContentLength);
  return { bytes, lastModified: out.LastModified instanceof Date ? out.LastModified.getTime() : undefined };
}

/**
 * Reads an SDK response body (Node stream with the SDK mixin, any async iterable, or bytes) into
 * one `Uint8Array`. With a `Content-Length`, the chunks are copied straight into one buffer of
 * that size as they arrive: one copy of the object in memory instead of the chunks plus their
 * concatenation (`transformToByteArray`), which halves the peak for large payloads.
 */
async function readBody(body: unknown, contentLength?: number): Promise<Uint8Array> {
  if (body === undefined || body === null) return new Uint8Array(0);
  if (body instanceof Uint8Array) return body;
  const b = body as { transformToByteArray?: () => Promise<Uint8Array>; [Symbol.asyncIterator]?: unknown };
  if (
    typeof b[Symbol.asyncIterator] === 'function' &&
    Number.isSafeInteger(contentLength) &&
    (contentLength as number) >= 0 &&
    (contentLength as number) < MAX_PREALLOCATED
  ) {
    const out = new Uint8Array(contentLength as number);
    let offset = 0;
    for await (const chunk of body as AsyncIterable<Uint8Array | string>) {
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      if (offset + bytes.byteLength > out.byteLength) {
        // More bytes than announced: no preallocation to trust; the integrity check decides.
        throw new StorageDriverError(
          StorageDriverErrorCode.BACKEND,
          'GetObject body is longer than its Content-Length',
        );
      }
      out.set(bytes, offset);
      offset += bytes.byteLength;
    }
    return offset === out.byteLength ? out : out.subarray(0, offset);
  }
  if (typeof b.transformToByteArray === 'function') return b.transformToByteArray();
  if (typeof b[Symbol.asyncIterator] === 'function') {
    const chunks: Uint8Array[] = [];
    for await (const chunk of body as AsyncIterable<Uint8Array>) chunks.push(chunk);
    return Buffer.concat(chunks);
  }
  throw new TypeError('Unsupported GetObject body type');
}

// ---------------------------------------------------------------------------------------------
// In-place copies (refreshes) and tags

/** Encodes tags as the `Tagging` header value (URL query syntax). */
export function encodeTagging(tags: Readonly<Record<string, string>>): string {
  return Object.entries(tags)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .join('&');
}

/** The `x-amz-copy-source` of an object: bucket (or access point ARN) and URL-encoded key. */
function copySource(location: S3StorageLocation): string {
  const key = location.key.split('/').map(encodeURIComponent).join('/');
  return isAccessPointArn(location.bucket) ? `${location.bucket}/object/${key}` : `${location.bucket}/${key}`;
}

/** `x-amz-copy-source-if-match` on the ETag a `HeadObject` saw, when it saw one. */
function ifMatch(head: ObjectHead): { CopySourceIfMatch?: string } {
  return head.etag === undefined ? {} : { CopySourceIfMatch: head.etag };
}

/**
 * A single-part `CopyObject` of an object onto itself, conditional on the version `head` saw,
 * keeping the attributes `head` read (`MetadataDirective: REPLACE` with them) and the tags
 * (`TaggingDirective: COPY`). The new version's ETag is the MD5 of the bytes.
 */
export async function copyObjectInPlace(
  client: S3ClientLike,
  location: S3StorageLocation,
  head: ObjectHead,
  signal: AbortSignal,
): Promise<void> {
  await client.send(
    new CopyObjectCommand({
      Bucket: location.bucket,
      Key: location.key,
      CopySource: copySource(location),
      ...ifMatch(head),
      ...head.attributes,
      MetadataDirective: 'REPLACE',
      TaggingDirective: 'COPY',
      // The SHA-256 checksum the driver's uploads carry (S3 computes it server-side).
      ChecksumAlgorithm: 'SHA256',
    } as ConstructorParameters<typeof CopyObjectCommand>[0]),
    { abortSignal: signal },
  );
}

/**
 * A one-part multipart copy of an object onto itself (`CreateMultipartUpload`, `UploadPartCopy`
 * conditional on the version `head` saw, `CompleteMultipartUpload`), keeping the attributes `head`
 * read and setting `tagging` (a multipart upload does not copy tags). The new version's ETag is
 * `…-1`. On failure the upload is aborted (best effort, not tied to the possibly aborted signal;
 * a bucket rule `AbortIncompleteMultipartUpload` cleans up what this cannot).
 */
export async function multipartCopyInPlace(
  client: S3ClientLike,
  location: S3StorageLocation,
  head: ObjectHead,
  tagging: string | undefined,
  signal: AbortSignal,
): Promise<void> {
  const Bucket = location.bucket;
  const Key = location.key;
  const created = (await client.send(
    new CreateMultipartUploadCommand({
      Bucket,
      Key,
      ...head.attributes,
      ...(tagging === undefined ? {} : { Tagging: tagging }),
    } as ConstructorParameters<typeof CreateMultipartUploadCommand>[0]),
    { abortSignal: signal },
  )) as { UploadId?: string };
  const UploadId = created.UploadId;
  if (UploadId === undefined) throw new Error('CreateMultipartUpload returned no UploadId');
  try {
    const part = (await client.send(
      new UploadPartCopyCommand({
        Bucket,
        Key,
        UploadId,
        PartNumber: 1,
        CopySource: copySource(location),
        ...ifMatch(head),
      }),
      { abortSignal: signal },
    )) as { CopyPartResult?: { ETag?: string } };
    await client.send(
      new CompleteMultipartUploadCommand({
        Bucket,
        Key,
        UploadId,
        MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.CopyPartResult?.ETag }] },
      }),
      { abortSignal: signal },
    );
  } catch (e) {
    await client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId })).catch(() => {});
    throw e;
  }
}

/** `GetObjectTagging`: the object's tags as a `Tagging` value, or `undefined` if it has none. */
export async function getObjectTagging(
  client: S3ClientLike,
  location: S3StorageLocation,
  signal: AbortSignal,
): Promise<string | undefined> {
  const tags = (await client.send(new GetObjectTaggingCommand({ Bucket: location.bucket, Key: location.key }), {
    abortSignal: signal,
  })) as { TagSet?: { Key?: string; Value?: string }[] };
  const set = (tags.TagSet ?? []).filter((t) => typeof t.Key === 'string');
  return set.length > 0 ? encodeTagging(Object.fromEntries(set.map((t) => [t.Key, t.Value ?? '']))) : undefined;
}

// ---------------------------------------------------------------------------------------------
// ListObjectsV2

/** ListObjectsV2 page size (the S3 maximum). */
const LIST_PAGE = 1000;

/** One object of a {@link listObjectsPage}. */
export interface ListedS3Object {
  /** The S3 key. */
  readonly key: string;
  /** `Size`, or 0 if the server sent none. */
  readonly size: number;
  /** `LastModified` in milliseconds since the epoch, if the server sent a valid one. */
  readonly lastModified: number | undefined;
  /** `ETag`, if the server sent a non-empty one. */
  readonly etag: string | undefined;
}

/**
 * One `ListObjectsV2` page of up to 1,000 keys under `prefix`; `next` is the continuation token
 * of the next page, `undefined` after the last one.
 */
export async function listObjectsPage(
  client: S3ClientLike,
  bucket: string,
  prefix: string,
  continuationToken: string | undefined,
  signal: AbortSignal,
): Promise<{ objects: ListedS3Object[]; next: string | undefined }> {
  const out = (await client.send(
    new ListObjectsV2Command({
      Bucket: bucket,
      Prefix: prefix,
      MaxKeys: LIST_PAGE,
      ContinuationToken: continuationToken,
    }),
    { abortSignal: signal },
  )) as {
    Contents?: { Key?: string; Size?: number; LastModified?: Date; ETag?: string }[];
    IsTruncated?: boolean;
    NextContinuationToken?: string;
  };
  const objects: ListedS3Object[] = [];
  for (const o of out.Contents ?? []) {
    if (typeof o.Key !== 'string') continue;
    const lastModified = o.LastModified instanceof Date ? o.LastModified.getTime() : Number.NaN;
    objects.push({
      key: o.Key,
      size: typeof o.Size === 'number' ? o.Size : 0,
      lastModified: Number.isFinite(lastModified) ? lastModified : undefined,
      etag: typeof o.ETag === 'string' && o.ETag !== '' ? o.ETag : undefined,
    });
  }
  return { objects, next: out.IsTruncated ? out.NextContinuationToken : undefined };
}

// ---------------------------------------------------------------------------------------------
// DeleteObject, DeleteObjects

/** DeleteObjects takes at most 1,000 keys. */
export const DELETE_OBJECTS_MAX = 1000;

/**
 * `DeleteObject` with `If-Match: etag`: `deleted`; `kept` if the object is another version now
 * (412: refreshed or rewritten since) or a write of it is in flight (409
 * `ConditionalRequestConflict`); `missing` if there is none (404).
 */
export async function deleteObjectIfMatch(
  client: S3ClientLike,
  location: S3StorageLocation,
  etag: string,
  signal: AbortSignal,
): Promise<'deleted' | 'kept' | 'missing'> {
  try {
    await client.send(new DeleteObjectCommand({ Bucket: location.bucket, Key: location.key, IfMatch: etag }), {
      abortSignal: signal,
    });
    return 'deleted';
  } catch (e) {
    const kind = classifyS3Error(e);
    if (kind === 'exists') return 'kept';
    if (kind === 'not-found') return 'missing';
    if (s3ErrorName(e) === 'ConditionalRequestConflict') return 'kept';
    throw e;
  }
}

/**
 * One `DeleteObjects` of at most 1,000 keys of one bucket (not quiet): the keys S3 reports
 * deleted (it reports a missing key as deleted too), and per key it refused, an `Error` named by
 * its error code (for `classifyS3Error`).
 */
export async function deleteObjectsBatch(
  client: S3ClientLike,
  bucket: string,
  keys: readonly string[],
  signal: AbortSignal,
): Promise<{ deleted: ReadonlySet<string | undefined>; failed: ReadonlyMap<string | undefined, Error> }> {
  const out = (await client.send(
    new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: false } }),
    { abortSignal: signal },
  )) as { Deleted?: { Key?: string }[]; Errors?: { Key?: string; Code?: string; Message?: string }[] };
  const failed = new Map<string | undefined, Error>();
  for (const error of out.Errors ?? []) {
    failed.set(
      error.Key,
      Object.assign(new Error(error.Message ?? error.Code ?? 'DeleteObjects error'), { name: error.Code ?? 'Error' }),
    );
  }
  return { deleted: new Set((out.Deleted ?? []).map((d) => d.Key)), failed };
}
