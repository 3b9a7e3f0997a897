/**
 * The request layer of the Azure Blob driver: every client call the driver makes, one function
 * each, with the client details (options, response fields, what a 404/409/412 means for that
 * request). The rest of the driver decides which requests to send; this module only sends them.
 * Errors other than the answers a function documents are thrown as the client raised them (the
 * caller converts them with `toStorageDriverError`).
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { byteView, configError, displayKey, StorageDriverError, StorageDriverErrorCode } from '@x/storage-driver-core';
import { classifyAzureError } from './errors';
import type { AzureBlobStorageLocation } from './names';
import type { AzureBlockBlobClientLike, AzureContainerClientLike, AzureWriteResponse } from './options';

/** Azure's `Last-Modified` is truncated to whole seconds. */
export const LAST_MODIFIED_RESOLUTION = 1000;
/** Most sub-requests of one blob batch (the service's and the client's limit). */
export const BATCH_MAX = 256;
/** `List Blobs` page size (the service's maximum). */
const LIST_PAGE = 5000;
/** Ranged `Get Blob` requests the client sends to resume a body whose stream broke. */
const DOWNLOAD_RESUMES = 3;
/** Largest body read into a buffer allocated up front from `Content-Length`. */
const MAX_PREALLOCATED = 2 ** 32;

/**
 * The client of one blob, checked: the URL the client will send must name exactly
 * `location.container` and `location.key` (the JS client resolves `.`/`..` path segments and
 * sends `\` as `/`; the key spec escapes both, so this never fails for a name this driver wrote
 * or accepted from a claim). The URL is checked, not the client's `name`: clients before 12.0.2
 * misparse `name` for IP-style (emulator) endpoints.
 *
 * @throws StorageDriverError `E_CONFIG` if the client would address another blob.
 */
export function blockBlob(
  container: AzureContainerClientLike,
  location: AzureBlobStorageLocation,
): AzureBlockBlobClientLike {
  const blob = container.getBlockBlobClient(location.key);
  let path: string | undefined;
  try {
    path = decodeURIComponent(new URL(blob.url).pathname);
  } catch {
    path = undefined;
  }
  if (path === undefined || location.key.includes('\\') || !path.endsWith(`/${location.container}/${location.key}`)) {
    throw configError(
      `the client would address ${displayKey(path ?? blob.url)} for blob ${location.container}/${displayKey(location.key)} (its URL handling rewrote the name); refusing the request`,
    );
  }
  return blob;
}

/**
 * MD5 of the body, sent as `x-ms-blob-content-md5` (the blob's `Content-MD5` property): on a
 * single-shot `Put Blob` the service checks it against the body it received and refuses a body
 * damaged on the way (400 `Md5Mismatch`), so no damaged blob is ever stored under a key.
 */
export function contentMd5(bytes: Uint8Array): Uint8Array {
  return createHash('md5').update(bytes).digest();
}

// ---------------------------------------------------------------------------------------------
// Get Blob Properties

/** What `Get Blob Properties` said about a blob. */
export interface BlobHead {
  /** The ETag (changes with every write, metadata included). */
  readonly etag: string | undefined;
  /** `Last-Modified` in milliseconds since the epoch. */
  readonly lastModified: number | undefined;
  /** Size in bytes. */
  readonly size: number | undefined;
  /** Access tier (`Hot`, `Cool`, `Cold`, `Archive`). */
  readonly tier: string | undefined;
  /** User metadata (a refresh writes it back unchanged). */
  readonly metadata: Readonly<Record<string, string>>;
}

function time(date: Date | undefined): number | undefined {
  const t = date instanceof Date ? date.getTime() : Number.NaN;
  return Number.isFinite(t) ? t : undefined;
}

/** `Get Blob Properties`; `undefined` if there is no blob (404 `BlobNotFound`). */
export async function getBlobProperties(
  blob: AzureBlockBlobClientLike,
  signal: AbortSignal,
): Promise<BlobHead | undefined> {
  try {
    const p = await blob.getProperties({ abortSignal: signal });
    return {
      etag: typeof p.etag === 'string' && p.etag !== '' ? p.etag : undefined,
      lastModified: time(p.lastModified),
      size: typeof p.contentLength === 'number' ? p.contentLength : undefined,
      tier: typeof p.accessTier === 'string' ? p.accessTier : undefined,
      metadata: p.metadata ?? {},
    };
  } catch (e) {
    if (classifyAzureError(e) === 'not-found') return undefined;
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// Put Blob

/** A version a write created: its `Last-Modified` (ms) and ETag, as the service answered. */
export interface BlobVersion {
  readonly lastModified: number | undefined;
  readonly etag: string | undefined;
}

function versionOf(response: AzureWriteResponse): BlobVersion {
  return { lastModified: time(response.lastModified), etag: response.etag };
}

/**
 * What {@link putBlob} did: `written` (the new version), `exists` (create-only: a blob is already
 * there, of unknown age), `changed` (over a version: that version is not the blob's any more).
 */
export type PutResult = { kind: 'written'; version: BlobVersion } | { kind: 'exists' } | { kind: 'changed' };

/**
 * One single-shot `Put Blob` with the body's MD5: create-only (`If-None-Match: *`; 409
 * `BlobAlreadyExists` or 412 means a blob exists) or, with `overwrite`, over that version only
 * (`If-Match`: 412 or 404 means it changed or went meanwhile).
 */
export async function putBlob(
  blob: AzureBlockBlobClientLike,
  bytes: Uint8Array,
  options: { tier: string | undefined; overwrite?: string },
  signal: AbortSignal,
): Promise<PutResult> {
  try {
    const response = await blob.upload(byteView(bytes), bytes.byteLength, {
      abortSignal: signal,
      conditions: options.overwrite === undefined ? { ifNoneMatch: '*' } : { ifMatch: options.overwrite },
      // x-ms-blob-content-md5: the service checks it against the body it received (Put Blob).
      blobHTTPHeaders: { blobContentMD5: contentMd5(bytes) },
      ...(options.tier === undefined ? {} : { tier: options.tier }),
    });
    return { kind: 'written', version: versionOf(response) };
  } catch (e) {
    const kind = classifyAzureError(e);
    if (options.overwrite === undefined && (kind === 'exists' || kind === 'condition-not-met'))
      return { kind: 'exists' };
    if (options.overwrite !== undefined && (kind === 'condition-not-met' || kind === 'not-found'))
      return { kind: 'changed' };
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// Get Blob

/**
 * One `Get Blob` of the whole blob; `undefined` if there is none (404 `BlobNotFound`). The body
 * is copied into one buffer of its `Content-Length` as it arrives; a stream that breaks is
 * resumed by the client with ranged requests (up to 3) on the same ETag.
 */
export async function downloadBlob(
  blob: AzureBlockBlobClientLike,
  signal: AbortSignal,
): Promise<Uint8Array | undefined> {
  let response: Awaited<ReturnType<AzureBlockBlobClientLike['download']>>;
  try {
    response = await blob.download(0, undefined, { abortSignal: signal, maxRetryRequests: DOWNLOAD_RESUMES });
  } catch (e) {
    if (classifyAzureError(e) === 'not-found') return undefined;
    throw e;
  }
  const body = response.readableStreamBody;
  if (body === undefined) return new Uint8Array(0);
  try {
    return await readBody(body, response.contentLength);
  } catch (e) {
    body.destroy?.();
    throw e;
  }
}

async function readBody(body: AsyncIterable<Uint8Array | string>, length: number | undefined): Promise<Uint8Array> {
  if (length === undefined || !Number.isSafeInteger(length) || length < 0 || length >= MAX_PREALLOCATED) {
    const chunks: Buffer[] = [];
    for await (const chunk of body) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : byteView(chunk));
    return Buffer.concat(chunks);
  }
  const out = new Uint8Array(length);
  let offset = 0;
  for await (const chunk of body) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    if (offset + bytes.byteLength > length) {
      // More bytes than announced: nothing here to trust; the integrity check would refuse it too.
      throw new StorageDriverError(StorageDriverErrorCode.BACKEND, 'Get Blob body is longer than its Content-Length', {
        retryable: true,
      });
    }
    out.set(bytes, offset);
    offset += bytes.byteLength;
  }
  return offset === length ? out : out.subarray(0, offset);
}

// ---------------------------------------------------------------------------------------------
// Set Blob Metadata (the refresh)

/** What {@link touchBlob} did: `touched` (the new version), `gone` (no blob), `changed` (another version now). */
export type TouchResult = { kind: 'touched'; version: BlobVersion } | { kind: 'gone' } | { kind: 'changed' };

/**
 * The last-referenced refresh: `Set Blob Metadata` with the blob's own metadata (nothing
 * changes but its `Last-Modified` and ETag), conditional on the version `head` saw (`If-Match`),
 * so a refresh never builds on a stale view. 404 is `gone`, 412 `changed`.
 */
export async function touchBlob(
  blob: AzureBlockBlobClientLike,
  head: BlobHead,
  signal: AbortSignal,
): Promise<TouchResult> {
  try {
    const response = await blob.setMetadata(
      { ...head.metadata },
      { abortSignal: signal, ...(head.etag === undefined ? {} : { conditions: { ifMatch: head.etag } }) },
    );
    return { kind: 'touched', version: versionOf(response) };
  } catch (e) {
    const kind = classifyAzureError(e);
    if (kind === 'not-found') return { kind: 'gone' };
    if (kind === 'condition-not-met') return { kind: 'changed' };
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// List Blobs

/** One blob of a {@link listBlobPage}. */
export interface ListedBlob {
  /** Blob name. */
  readonly name: string;
  /** Size in bytes (0 if the service sent none). */
  readonly size: number;
  /** `Last-Modified` in ms since the epoch, if valid. */
  readonly lastModified: number | undefined;
  /** ETag, if any. */
  readonly etag: string | undefined;
}

/**
 * One flat `List Blobs` page of up to 5,000 blobs under `prefix`; `next` is the continuation
 * token of the next page, `undefined` after the last one.
 */
export async function listBlobPage(
  container: AzureContainerClientLike,
  prefix: string,
  continuationToken: string | undefined,
  signal: AbortSignal,
): Promise<{ blobs: ListedBlob[]; next: string | undefined }> {
  const pages = container
    .listBlobsFlat({ prefix, abortSignal: signal })
    .byPage({ maxPageSize: LIST_PAGE, ...(continuationToken === undefined ? {} : { continuationToken }) });
  const { value: page, done } = await pages.next();
  if (done === true || page === undefined) return { blobs: [], next: undefined };
  const blobs = page.segment.blobItems.map((b) => ({
    name: b.name,
    size: typeof b.properties.contentLength === 'number' ? b.properties.contentLength : 0,
    lastModified: time(b.properties.lastModified),
    etag: typeof b.properties.etag === 'string' && b.properties.etag !== '' ? b.properties.etag : undefined,
  }));
  const next = page.continuationToken;
  return { blobs, next: typeof next === 'string' && next !== '' ? next : undefined };
}

// ---------------------------------------------------------------------------------------------
// Delete Blob, Blob Batch

/** What one delete did: `deleted`, `missing` (404), `kept` (412: `ifMatch` is not the blob's ETag). */
export type DeleteResult = 'deleted' | 'missing' | 'kept';

/** `Delete Blob`, with `If-Match: ifMatch` when given. */
export async function deleteBlob(
  blob: AzureBlockBlobClientLike,
  ifMatch: string | undefined,
  signal: AbortSignal,
): Promise<DeleteResult> {
  try {
    await blob.delete({ abortSignal: signal, ...(ifMatch === undefined ? {} : { conditions: { ifMatch } }) });
    return 'deleted';
  } catch (e) {
    const kind = classifyAzureError(e);
    if (kind === 'not-found') return 'missing';
    if (kind === 'condition-not-met' && ifMatch !== undefined) return 'kept';
    throw e;
  }
}

/** One sub-request of {@link deleteBlobBatch}. */
export interface BatchDelete {
  /** The blob. */
  readonly blob: AzureBlockBlobClientLike;
  /** Delete only this version (`If-Match`), if set. */
  readonly ifMatch: string | undefined;
}

/**
 * One container-scoped blob batch of at most {@link BATCH_MAX} `Delete Blob` sub-requests, each
 * with its own `If-Match`: per sub-request a {@link DeleteResult}, or an `Error` carrying the
 * sub-response's status and code (for `classifyAzureError`). `unsupported` if the client has no
 * container batch client (before 12.5.0). Whole-batch failures are thrown.
 */
export async function deleteBlobBatch(
  container: AzureContainerClientLike,
  deletes: readonly BatchDelete[],
  signal: AbortSignal,
): Promise<(DeleteResult | Error)[] | 'unsupported'> {
  if (typeof container.getBlobBatchClient !== 'function') return 'unsupported';
  const client = container.getBlobBatchClient();
  const batch = client.createBatch();
  for (const d of deletes) {
    await batch.deleteBlob(d.blob, d.ifMatch === undefined ? {} : { conditions: { ifMatch: d.ifMatch } });
  }
  const { subResponses } = await client.submitBatch(batch, { abortSignal: signal });
  return deletes.map((d, i) => {
    const sub = subResponses[i];
    if (sub === undefined) {
      return Object.assign(new Error('Blob Batch answered fewer sub-responses than sub-requests'), {
        name: 'BatchResponseIncomplete',
      });
    }
    if (sub.status >= 200 && sub.status < 300) return 'deleted';
    const error = Object.assign(new Error(`Blob Batch sub-request answered ${sub.status} ${sub.errorCode ?? ''}`), {
      name: 'RestError',
      statusCode: sub.status,
      ...(sub.errorCode === undefined ? {} : { code: sub.errorCode }),
    });
    const kind = classifyAzureError(error);
    if (kind === 'not-found') return 'missing';
    if (kind === 'condition-not-met' && d.ifMatch !== undefined) return 'kept';
    return error;
  });
}
