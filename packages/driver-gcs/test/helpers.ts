/** Shared helpers for the driver-gcs tests: clients, per-test buckets, request classification. */
import { type Bucket, Storage, type StorageOptions } from '@google-cloud/storage';
import { afterAll, afterEach, beforeAll, beforeEach } from '@jest/globals';
import type { Payload, StorageDriverErrorCode } from '@x/storage-driver-core';
import { captureStorageDriverError } from '@x/storage-driver-test-suite';
import { FaultProxy, type ProxiedRequest, uniqueName } from '@x/test-servers';

/** fake-gcs-server (`bash scripts/services.sh env`). */
export const GCS_ENDPOINT = process.env.XSTORAGE_GCS_ENDPOINT ?? 'http://127.0.0.1:4453';
/** A project id must be given: without one the client asks the GCE metadata server for it. */
export const GCS_PROJECT_ID = process.env.XSTORAGE_GCS_PROJECT_ID ?? 'xstorage-test';

const encoder = new TextEncoder();

/**
 * A `Storage` for `endpoint` (default: the emulator). Retries are the client's defaults unless
 * `retryOptions` says otherwise (fault tests shorten the delays).
 */
export function makeStorage(endpoint = GCS_ENDPOINT, options: Partial<StorageOptions> = {}): Storage {
  return new Storage({ apiEndpoint: endpoint, projectId: GCS_PROJECT_ID, ...options });
}

/** Creates a fresh bucket on the emulator (a {@link uniqueName}: lower-case, ≤ 63 chars) and returns its name. */
export async function createBucket(storage: Storage, prefix = 'xgcs'): Promise<string> {
  const name = uniqueName(prefix, { lowerCase: true, maxLength: 63 });
  await storage.createBucket(name);
  return name;
}

/** Every object name of a bucket, sorted. */
export async function listNames(storage: Storage, bucket: string): Promise<string[]> {
  const [files] = await storage.bucket(bucket).getFiles();
  return files.map((f) => f.name).sort();
}

/**
 * Empties and deletes a bucket (the emulator keeps everything in memory, so do clean up). Retries
 * a few times: uploads a test aborted may still land just after the first listing.
 */
export async function deleteBucket(storage: Storage, bucket: string): Promise<void> {
  const b: Bucket = storage.bucket(bucket);
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      await b.deleteFiles({ force: true });
      await b.delete();
      return;
    } catch (e) {
      if ((e as { code?: unknown }).code === 404) return;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** A JSON payload with the given text. */
export function payload(text: string): Payload {
  return { metadata: { encoding: encoder.encode('json/plain') }, data: encoder.encode(JSON.stringify(text)) };
}

/** Runs `fn` and returns the StorageDriverError code it rejects with (fails if it resolves). */
export async function errorCode(fn: () => Promise<unknown>): Promise<StorageDriverErrorCode> {
  return (await captureStorageDriverError(fn)).code;
}

/**
 * The JSON API operation of a request as the proxy saw it: `getMetadata`, `download`, `upload`
 * (single request), `resumableStart`, `resumablePut`, `rewrite`, `delete`, `list`, or `METHOD path`
 * for anything else.
 */
export function gcsOperation(r: ProxiedRequest): string {
  const p = r.rawPath;
  if (p.startsWith('/upload/storage/v1/b/')) {
    const type = r.query.get('uploadType');
    if (type === 'multipart' || type === 'media') return 'upload';
    if (type === 'resumable') return r.method === 'POST' ? 'resumableStart' : 'resumablePut';
  }
  if (/^\/storage\/v1\/b\/[^/]+\/o\/[^/]+\/rewriteTo\//.test(p)) return 'rewrite';
  if (/^\/storage\/v1\/b\/[^/]+\/o\/[^/]+$/.test(p)) {
    if (r.method === 'DELETE') return 'delete';
    if (r.method === 'GET') return r.query.get('alt') === 'media' ? 'download' : 'getMetadata';
  }
  if (/^\/storage\/v1\/b\/[^/]+\/o$/.test(p) && r.method === 'GET') return 'list';
  return `${r.method} ${p}`;
}

/** The bucket a proxied JSON API request is about, if any. */
export function bucketOfRequest(r: ProxiedRequest): string | undefined {
  return /^\/(?:upload\/)?storage\/v1\/b\/([^/]+)/.exec(r.rawPath)?.[1];
}

/** Counts of {@link gcsOperation} over `requests`, e.g. `{ getMetadata: 64, rewrite: 64 }`. */
export function countOperations(requests: readonly ProxiedRequest[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of requests) {
    const op = gcsOperation(r);
    counts[op] = (counts[op] ?? 0) + 1;
  }
  return counts;
}

/** A JSON API error body, as GCS sends it. */
export function gcsError(
  status: number,
  reason: string,
  message = reason,
): { status: number; headers: Record<string, string>; body: string } {
  return {
    status,
    headers: { 'content-type': 'application/json; charset=UTF-8' },
    body: JSON.stringify({ error: { code: status, message, errors: [{ domain: 'global', reason, message }] } }),
  };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export { captureStorageDriverError } from '@x/storage-driver-test-suite';

/** What {@link useProxiedBucket} gives a test file. */
export interface ProxiedBucket {
  /** A `FaultProxy` in front of the emulator, for the whole file; reset around each test. */
  readonly proxy: FaultProxy;
  /** A `Storage` straight to the emulator (setup and checks, never counted). */
  readonly direct: Storage;
  /** A `Storage` whose requests go through {@link ProxiedBucket.proxy}. */
  readonly proxied: Storage;
  /** The current test's bucket, created before it and deleted after it. */
  readonly bucket: string;
}

/**
 * Starts a `FaultProxy` in front of the emulator for the calling test file (closed after it), and
 * gives each test a fresh bucket (`prefix`) and a reset proxy.
 */
export function useProxiedBucket(prefix: string): ProxiedBucket {
  const fixture = { direct: makeStorage() } as { -readonly [K in keyof ProxiedBucket]: ProxiedBucket[K] };
  beforeAll(async () => {
    fixture.proxy = await FaultProxy.start(GCS_ENDPOINT);
    fixture.proxied = makeStorage(fixture.proxy.endpoint);
  });
  afterAll(() => fixture.proxy.close());
  beforeEach(async () => {
    fixture.bucket = await createBucket(fixture.direct, prefix);
    fixture.proxy.reset();
  });
  afterEach(async () => {
    fixture.proxy.reset();
    await deleteBucket(fixture.direct, fixture.bucket);
  });
  return fixture;
}
