/** Shared helpers for the driver-s3 tests: clients, per-test buckets, reading S3 requests off a `FaultProxy`. */
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  ListObjectsV2Command,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import type { Payload, StorageDriverErrorCode } from '@x/storage-driver-core';
import { captureStorageDriverError } from '@x/storage-driver-test-suite';
import { type FaultProxy, type InjectedResponse, type ProxiedRequest, SERVICES, uniqueName } from '@x/test-servers';

const encoder = new TextEncoder();

/** An S3Client for `endpoint` (default: moto) with dummy credentials and path-style URLs. */
export function makeClient(endpoint = SERVICES.s3Endpoint, config: Partial<S3ClientConfig> = {}): S3Client {
  return new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test-secret-do-not-log' },
    ...config,
  });
}

/** Creates a fresh bucket on moto (a {@link uniqueName}: lower-case, ≤ 63 chars) and returns its name. */
export async function createBucket(client: S3Client, prefix = 'xs3'): Promise<string> {
  const bucket = uniqueName(prefix, { lowerCase: true, maxLength: 63 });
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  return bucket;
}

/** Lists every key of a bucket. */
export async function listKeys(client: S3Client, bucket: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const out = await client.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
    for (const o of out.Contents ?? []) if (o.Key !== undefined) keys.push(o.Key);
    token = out.IsTruncated ? out.NextContinuationToken : undefined;
  } while (token !== undefined);
  return keys.sort();
}

/**
 * Empties and deletes a bucket (moto keeps everything in memory, so do clean up). Retries a few
 * times: uploads aborted by a test may still land just after the first listing.
 */
export async function deleteBucket(client: S3Client, bucket: string): Promise<void> {
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const keys = await listKeys(client, bucket);
      for (let i = 0; i < keys.length; i += 1000) {
        await client.send(
          new DeleteObjectsCommand({
            Bucket: bucket,
            Delete: { Objects: keys.slice(i, i + 1000).map((Key) => ({ Key })) },
          }),
        );
      }
      await client.send(new DeleteBucketCommand({ Bucket: bucket }));
      return;
    } catch (e) {
      if ((e as Error).name === 'NoSuchBucket') return;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** A JSON payload with the given text. */
export function payload(text: string): Payload {
  return { metadata: { encoding: encoder.encode('json/plain') }, data: encoder.encode(JSON.stringify(text)) };
}

/** A binary payload of `size` pseudo-random bytes. */
export function bigPayload(size: number, seed = 1): Payload {
  const data = new Uint8Array(size);
  let x = seed * 2654435761 || 1;
  for (let i = 0; i < size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    data[i] = x & 255;
    data[i + 1] = (x >>> 8) & 255;
    data[i + 2] = (x >>> 16) & 255;
    data[i + 3] = (x >>> 24) & 255;
  }
  return { metadata: { encoding: encoder.encode('binary/plain') }, data };
}

/** Runs `fn` and returns the StorageDriverError code it rejects with (fails if it resolves). */
export async function errorCode(fn: () => Promise<unknown>): Promise<StorageDriverErrorCode> {
  return (await captureStorageDriverError(fn)).code;
}

/** An S3 error answer for {@link FaultProxy.inject}: a status and, except for HEAD, an XML error body. */
export interface S3ErrorReply {
  /** HTTP status. */
  status: number;
  /** S3 error code (`SlowDown`, `AccessDenied`, ...); without one the body is empty. */
  code?: string;
  /** Extra XML elements of the error body. */
  extra?: string;
}

/** The proxy's answer for an S3 error (`FaultProxy` sends no body to a HEAD request). */
export function s3Error(reply: S3ErrorReply): InjectedResponse {
  const body =
    reply.code === undefined
      ? ''
      : `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${reply.code}</Code><Message>injected</Message>${reply.extra ?? ''}<RequestId>proxy</RequestId></Error>`;
  return { status: reply.status, headers: { 'content-type': 'application/xml' }, body };
}

/** Recorded `METHOD path` strings of the proxy's requests under `/bucket/`. */
export function calls(proxy: FaultProxy, bucket: string): string[] {
  return proxy.requests.filter((r) => r.path.startsWith(`/${bucket}/`)).map((r) => `${r.method} ${r.path}`);
}

/**
 * The S3 operation of a request as the proxy saw it (path-style, one bucket): `HeadObject`,
 * `PutObject`, `CopyObject`, `CreateMultipartUpload`, `UploadPartCopy`, `CompleteMultipartUpload`,
 * `AbortMultipartUpload`, `GetObjectTagging`, `GetObject`, `ListObjectsV2`, `DeleteObject`,
 * `DeleteObjects`, or `METHOD` for anything else.
 */
export function s3Operation(r: ProxiedRequest): string {
  const query = new URLSearchParams(r.url.split('?')[1] ?? '');
  const copy = r.headers['x-amz-copy-source'] !== undefined;
  const objectPath = r.path.split('/').length > 2 && !r.path.endsWith('/');
  switch (r.method) {
    case 'HEAD':
      return 'HeadObject';
    case 'GET':
      if (query.has('tagging')) return 'GetObjectTagging';
      if (query.get('list-type') === '2') return 'ListObjectsV2';
      return objectPath ? 'GetObject' : 'GET';
    case 'PUT':
      if (query.has('uploadId')) return copy ? 'UploadPartCopy' : 'UploadPart';
      return copy ? 'CopyObject' : 'PutObject';
    case 'POST':
      if (query.has('uploads')) return 'CreateMultipartUpload';
      if (query.has('uploadId')) return 'CompleteMultipartUpload';
      if (query.has('delete')) return 'DeleteObjects';
      return 'POST';
    case 'DELETE':
      return query.has('uploadId') ? 'AbortMultipartUpload' : 'DeleteObject';
    default:
      return r.method;
  }
}

/** Counts of {@link s3Operation} over `requests`, e.g. `{ HeadObject: 64, CopyObject: 64 }`. */
export function countOperations(requests: readonly ProxiedRequest[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of requests) {
    const op = s3Operation(r);
    counts[op] = (counts[op] ?? 0) + 1;
  }
  return counts;
}
