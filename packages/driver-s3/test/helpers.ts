/** Shared helpers for the driver-s3 tests: clients, per-test buckets, a counting proxy. */
import { randomBytes } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
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
import { SERVICES } from '@x/test-servers';

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

/** A unique bucket name (lower-case, ≤ 63 chars). */
export function uniqueBucketName(prefix = 'xs3'): string {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(5).toString('hex')}`;
}

/** Creates a fresh bucket on moto and returns its name. */
export async function createBucket(client: S3Client, prefix?: string): Promise<string> {
  const bucket = uniqueBucketName(prefix);
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

/** A canned response the proxy sends instead of forwarding. */
export interface InjectedResponse {
  status: number;
  /** S3 error code; sent as an XML error body (not for HEAD). */
  code?: string;
  /** Extra XML elements of the error body. */
  extra?: string;
}

/**
 * A network or transfer fault the proxy applies to one request (see {@link CountingProxy.tamper}).
 * - `reset`: the client connection is destroyed before anything is forwarded (nothing reaches S3).
 * - `reset-after-forward`: the request is forwarded (S3 does the work), then the client connection
 *   is destroyed instead of answering.
 * - `truncate`: forwarded; the client gets the upstream status and headers (its Content-Length)
 *   but only the first `bytes` of the body, then the connection is destroyed. An empty body (a
 *   PUT's answer) is cut inside the header block instead.
 * - `shorten`: forwarded; the client gets a well-formed response with only the first `bytes` of
 *   the body (Content-Length rewritten to match).
 * - `corrupt`: forwarded; one bit in the middle of the body is flipped (same length).
 */
export type ProxyFault =
  | { kind: 'reset' }
  | { kind: 'reset-after-forward' }
  | { kind: 'truncate'; bytes: number }
  | { kind: 'shorten'; bytes: number }
  | { kind: 'corrupt' };

/** One request seen by the proxy. */
export interface ProxiedRequest {
  method: string;
  /** Path without the query string, URL-decoded. */
  path: string;
  /** Raw URL, with the query string. */
  url: string;
  headers: http.IncomingHttpHeaders;
  /** Whether the proxy answered it itself (fault injection). */
  injected: boolean;
}

/**
 * A loopback HTTP proxy in front of moto: forwards every request unchanged, records method and
 * path, tracks the peak number of requests in flight, can answer requests itself (`inject`) to
 * reproduce server behaviours moto has no switch for (403 on HEAD, 5xx, throttling), and can
 * damage the exchange (`tamper`: reset connections, truncated or corrupted bodies).
 */
export class CountingProxy {
  readonly requests: ProxiedRequest[] = [];
  /** Return a response to send instead of forwarding, or undefined to forward. */
  inject: ((req: ProxiedRequest) => InjectedResponse | undefined) | undefined;
  /** Return a fault to apply to the request or its response, or undefined to leave it alone. */
  tamper: ((req: ProxiedRequest) => ProxyFault | undefined) | undefined;
  /** Return a different URL (path and query) to forward the request to, or undefined. */
  rewrite: ((req: ProxiedRequest) => string | undefined) | undefined;
  /**
   * Return a promise to hold the request until it settles (a delay, or something done to the
   * server first, such as deleting the object a copy is about to read), or undefined to forward
   * it at once.
   */
  hold: ((req: ProxiedRequest) => Promise<unknown> | undefined) | undefined;
  private inFlight = 0;
  /** Highest number of requests in flight at once since the last `reset()`. */
  peakInFlight = 0;
  private readonly server: http.Server;
  private readonly upstream: URL;
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

  private constructor(upstream: string) {
    this.upstream = new URL(upstream);
    this.server = http.createServer((req, res) => this.handle(req, res));
    this.server.keepAliveTimeout = 1000;
  }

  /** Starts a proxy on 127.0.0.1 (free port) forwarding to `upstream` (default: moto). */
  static async start(upstream = SERVICES.s3Endpoint): Promise<CountingProxy> {
    const proxy = new CountingProxy(upstream);
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  /** The proxy's URL, to use as the client's `endpoint`. */
  get endpoint(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Forgets recorded requests and the peak. */
  reset(): void {
    this.requests.length = 0;
    this.peakInFlight = 0;
  }

  /** Recorded `METHOD path` strings for requests under `/bucket/`. */
  calls(bucket: string): string[] {
    return this.requests.filter((r) => r.path.startsWith(`/${bucket}/`)).map((r) => `${r.method} ${r.path}`);
  }

  /** Stops the proxy. */
  async close(): Promise<void> {
    this.agent.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = req.url ?? '/';
    const rawPath = url.split('?')[0] as string;
    let path: string;
    try {
      path = decodeURIComponent(rawPath);
    } catch {
      path = rawPath;
    }
    const record: ProxiedRequest = { method: req.method ?? '', path, url, headers: req.headers, injected: false };
    this.requests.push(record);
    this.inFlight++;
    this.peakInFlight = Math.max(this.peakInFlight, this.inFlight);
    let done = false;
    const finish = () => {
      if (!done) {
        done = true;
        this.inFlight--;
      }
    };
    res.on('close', finish);

    const injected = this.inject?.(record);
    if (injected !== undefined) {
      record.injected = true;
      req.resume();
      req.on('end', () => {
        const body =
          req.method === 'HEAD' || injected.code === undefined
            ? ''
            : `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${injected.code}</Code><Message>injected</Message>${injected.extra ?? ''}<RequestId>proxy</RequestId></Error>`;
        res.writeHead(injected.status, {
          'content-type': 'application/xml',
          'content-length': Buffer.byteLength(body),
        });
        res.end(req.method === 'HEAD' ? undefined : body);
      });
      return;
    }

    const held = this.hold?.(record);
    if (held === undefined) this.forward(req, res, record);
    else {
      const go = () => this.forward(req, res, record);
      held.then(go, go);
    }
  }

  private forward(req: http.IncomingMessage, res: http.ServerResponse, record: ProxiedRequest): void {
    const url = record.url;
    const fault = this.tamper?.(record);
    if (fault !== undefined) record.injected = true;
    if (fault?.kind === 'reset') {
      req.socket.destroy();
      return;
    }

    const headers = { ...req.headers };
    delete headers.expect;
    const rewritten = this.rewrite?.(record);
    // A rewritten request goes path-style to the upstream (moto must not read a bucket from the host).
    if (rewritten !== undefined) headers.host = this.upstream.host;
    const upstreamReq = http.request(
      {
        host: this.upstream.hostname,
        port: this.upstream.port,
        method: req.method,
        path: rewritten ?? url,
        headers,
        agent: this.agent,
      },
      (upstreamRes) => {
        if (fault === undefined) {
          res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
          upstreamRes.pipe(res);
          return;
        }
        const chunks: Buffer[] = [];
        upstreamRes.on('data', (chunk: Buffer) => chunks.push(chunk));
        upstreamRes.on('end', () => applyFault(fault, upstreamRes, Buffer.concat(chunks), res));
      },
    );
    upstreamReq.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    req.pipe(upstreamReq);
  }
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

/** Answers `res` with the upstream response `upstream` (body `body`) damaged as `fault` says. */
function applyFault(fault: ProxyFault, upstream: http.IncomingMessage, body: Buffer, res: http.ServerResponse): void {
  const status = upstream.statusCode ?? 502;
  const headers: http.OutgoingHttpHeaders = { ...upstream.headers };
  delete headers['transfer-encoding'];
  delete headers.connection;
  const socket = res.socket;
  switch (fault.kind) {
    case 'reset':
    case 'reset-after-forward':
      socket?.destroy();
      return;
    case 'truncate': {
      headers['content-length'] = String(body.length);
      const lines = Object.entries(headers).map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(', ') : String(v)}`);
      const head = Buffer.from(
        `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}\r\n${lines.join('\r\n')}\r\n\r\n`,
      );
      const cut =
        body.length > 0 ? Buffer.concat([head, body.subarray(0, fault.bytes)]) : head.subarray(0, head.length >> 1);
      socket?.write(cut, () => socket.destroy());
      return;
    }
    case 'shorten': {
      const part = body.subarray(0, fault.bytes);
      res.writeHead(status, { ...headers, 'content-length': String(part.length) });
      res.end(part);
      return;
    }
    case 'corrupt': {
      const copy = Buffer.from(body);
      if (copy.length > 0) copy[copy.length >> 1] = (copy[copy.length >> 1] as number) ^ 0x01;
      res.writeHead(status, headers);
      res.end(copy);
      return;
    }
  }
}

export { captureStorageDriverError } from '@x/storage-driver-test-suite';
