/**
 * A latency-injecting HTTP proxy for the S3 latency profile: every request it forwards to the
 * upstream S3 server (moto) takes `delayMs` longer, half on the way in (before the upstream sees
 * the request) and half on the way out (before the client sees the response), as one round trip
 * to a distant server would. Requests are delayed independently, so requests in flight overlap
 * exactly as the client issues them (the proxy never queues or serializes anything: one upstream
 * connection per client request in flight). An optional bandwidth cap paces request and response
 * bodies through one shared link per direction (a client's uplink and downlink), FIFO by arrival.
 *
 * It counts what it forwards, per bucket (path-style addressing: the first path segment): requests
 * by method and status, conditional `PUT`s (`If-None-Match`), body bytes each way and the peak
 * number of requests in flight. `GET /__latency-proxy/stats[?bucket=name][&reset=1]` answers those
 * counters as JSON without delay and without forwarding (`reset=1` starts them again from zero).
 *
 * Standalone: `node dist/latency-proxy.js [--upstream=http://127.0.0.1:5011] [--delay=20]
 * [--bandwidth=MiB/s] [--port=0]` prints its address and runs until interrupted.
 *
 * @module
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline, Transform } from 'node:stream';

/** Path of the proxy's own statistics endpoint (never forwarded; not a valid bucket name). */
export const LATENCY_PROXY_CONTROL_PATH = '/__latency-proxy/stats';
/** Default added latency per request, in milliseconds. */
export const LATENCY_PROXY_DEFAULT_DELAY_MS = 20;

/** Options of {@link LatencyProxy.start}. */
export interface LatencyProxyOptions {
  /** Base URL of the S3 server, e.g. `http://127.0.0.1:5011` (`http:` only). */
  readonly upstream: string;
  /** Added latency per request (both directions together), in ms. Default: 20. */
  readonly delayMs?: number;
  /** Bandwidth cap of each direction in MiB/s (request bodies, response bodies). Default: none. */
  readonly bandwidthMiBps?: number;
  /** Port to listen on (loopback). Default: 0 (a free one). */
  readonly port?: number;
}

/** What the proxy forwarded for one bucket (or for all, under the key `*`). */
export interface RequestStats {
  /** Requests forwarded. */
  requests: number;
  /** Requests by HTTP method (`GET`, `HEAD`, `PUT`, `POST`, `DELETE`). */
  methods: Record<string, number>;
  /** Responses by HTTP status code (`200`, `404`, `412`, …). */
  statuses: Record<string, number>;
  /** `PUT`s carrying `If-None-Match` (conditional writes). */
  conditionalPuts: number;
  /** Request body bytes forwarded upstream. */
  bytesUp: number;
  /** Response body bytes returned to the client. */
  bytesDown: number;
  /** Most requests of this bucket in flight at once (arrival to last response byte). */
  peakInFlight: number;
  /**
   * Milliseconds during which at least one request of this bucket was at the upstream server
   * (forwarded, response headers not yet back): the server's busy time, injected delays excluded.
   */
  upstreamBusyMs: number;
}

/** An empty {@link RequestStats}. */
export function emptyStats(): RequestStats {
  return {
    requests: 0,
    methods: {},
    statuses: {},
    conditionalPuts: 0,
    bytesUp: 0,
    bytesDown: 0,
    peakInFlight: 0,
    upstreamBusyMs: 0,
  };
}

interface BucketCounters {
  stats: RequestStats;
  inFlight: number;
  /** Requests at the upstream server now, and since when at least one has been. */
  atUpstream: number;
  busySince: number;
}

function newCounters(): BucketCounters {
  return { stats: emptyStats(), inFlight: 0, atUpstream: 0, busySince: 0 };
}

function upstreamStarted(c: BucketCounters): void {
  if (c.atUpstream++ === 0) c.busySince = performance.now();
}

function upstreamDone(c: BucketCounters): void {
  if (--c.atUpstream === 0) c.stats.upstreamBusyMs += performance.now() - c.busySince;
}

/**
 * A shared link of limited bandwidth: each chunk is sent once the chunks reserved before it have
 * gone through, at `bytesPerMs`.
 */
class Link {
  private free = 0;
  constructor(private readonly bytesPerMs: number) {}

  /** Milliseconds until a chunk of `bytes` reserved now has been transmitted. */
  reserve(bytes: number): number {
    const now = performance.now();
    const start = Math.max(now, this.free);
    this.free = start + bytes / this.bytesPerMs;
    return this.free - now;
  }
}

/** Counts bytes through `count` and, given a link, releases each chunk when the link has sent it. */
function meter(count: (bytes: number) => void, link: Link | undefined): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      count(chunk.length);
      const wait = link?.reserve(chunk.length) ?? 0;
      if (wait < 1) callback(null, chunk);
      else setTimeout(() => callback(null, chunk), wait);
    },
  });
}

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'upgrade',
  'expect',
]);

function forwardable(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
  }
  return out;
}

function bucketOf(url: string): string {
  const path = url.split('?')[0] ?? '';
  return decodeURIComponent(path.split('/')[1] ?? '');
}

/** A running proxy (see the module documentation). */
export class LatencyProxy {
  /** Added latency per request, ms. */
  readonly delayMs: number;
  /** Bandwidth cap per direction in MiB/s, or `undefined`. */
  readonly bandwidthMiBps: number | undefined;
  private readonly counters = new Map<string, BucketCounters>();
  private readonly all: BucketCounters = newCounters();
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });
  private readonly up: Link | undefined;
  private readonly down: Link | undefined;
  private readonly upstream: URL;
  private readonly server: http.Server;

  private constructor(options: LatencyProxyOptions) {
    this.upstream = new URL(options.upstream);
    if (this.upstream.protocol !== 'http:')
      throw new Error(`latency proxy: upstream must be http:, got ${options.upstream}`);
    this.delayMs = options.delayMs ?? LATENCY_PROXY_DEFAULT_DELAY_MS;
    if (!(this.delayMs >= 0)) throw new Error(`latency proxy: delay must be ≥ 0 ms, got ${this.delayMs}`);
    this.bandwidthMiBps = options.bandwidthMiBps;
    if (this.bandwidthMiBps !== undefined) {
      if (!(this.bandwidthMiBps > 0)) throw new Error(`latency proxy: bandwidth must be > 0 MiB/s`);
      const bytesPerMs = (this.bandwidthMiBps * 1024 * 1024) / 1000;
      this.up = new Link(bytesPerMs);
      this.down = new Link(bytesPerMs);
    }
    this.server = http.createServer((req, res) => this.handle(req, res));
    // `Expect: 100-continue` (the AWS SDK sends it for bodies ≥ 2 MiB): the "100 Continue" costs
    // the client one more round trip before it sends the body.
    this.server.on('checkContinue', (req, res) => {
      setTimeout(() => res.writeContinue(), this.delayMs);
      this.handle(req, res);
    });
    this.server.keepAliveTimeout = 60_000;
  }

  /** Starts a proxy on loopback. */
  static async start(options: LatencyProxyOptions): Promise<LatencyProxy> {
    const proxy = new LatencyProxy(options);
    await new Promise<void>((resolve, reject) => {
      proxy.server.once('error', reject);
      proxy.server.listen(options.port ?? 0, '127.0.0.1', resolve);
    });
    return proxy;
  }

  /** The proxy's base URL (use it as the S3 client's `endpoint`, path-style). */
  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Counters of `bucket` (all buckets when omitted) since the start or the last reset. */
  stats(bucket?: string): RequestStats {
    const c = bucket === undefined ? this.all : this.counters.get(bucket);
    if (c === undefined) return emptyStats();
    const stats = structuredClone(c.stats);
    if (c.atUpstream > 0) stats.upstreamBusyMs += performance.now() - c.busySince;
    return stats;
  }

  /** Starts the counters of `bucket` (all when omitted) again from zero. */
  reset(bucket?: string): void {
    const targets = bucket === undefined ? [this.all, ...this.counters.values()] : [this.counters.get(bucket)];
    for (const c of targets) {
      if (c === undefined) continue;
      c.stats = emptyStats();
      c.stats.peakInFlight = c.inFlight;
      c.busySince = performance.now();
    }
  }

  /** Stops listening and closes every connection. */
  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.agent.destroy();
  }

  private counter(bucket: string): BucketCounters {
    let c = this.counters.get(bucket);
    if (c === undefined) {
      c = newCounters();
      this.counters.set(bucket, c);
    }
    return c;
  }

  private control(req: http.IncomingMessage, res: http.ServerResponse): void {
    const query = new URL(req.url ?? '/', 'http://proxy').searchParams;
    const bucket = query.get('bucket') ?? undefined;
    const body = JSON.stringify(this.stats(bucket));
    if (query.get('reset') === '1') this.reset(bucket);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = req.url ?? '/';
    if (url.startsWith(LATENCY_PROXY_CONTROL_PATH)) {
      this.control(req, res);
      return;
    }
    const method = req.method ?? 'GET';
    const counted = [this.all, this.counter(bucketOf(url))];
    for (const c of counted) {
      c.stats.requests++;
      c.stats.methods[method] = (c.stats.methods[method] ?? 0) + 1;
      if (method === 'PUT' && req.headers['if-none-match'] !== undefined) c.stats.conditionalPuts++;
      c.inFlight++;
      c.stats.peakInFlight = Math.max(c.stats.peakInFlight, c.inFlight);
    }
    let done = false;
    res.on('close', () => {
      if (done) return;
      done = true;
      for (const c of counted) c.inFlight--;
    });
    const half = this.delayMs / 2;
    setTimeout(() => this.forward(req, res, counted, half), half);
  }

  private forward(req: http.IncomingMessage, res: http.ServerResponse, counted: BucketCounters[], half: number): void {
    if (res.destroyed) return;
    for (const c of counted) upstreamStarted(c);
    let atUpstream = true;
    const leftUpstream = () => {
      if (!atUpstream) return;
      atUpstream = false;
      for (const c of counted) upstreamDone(c);
    };
    const upstreamRequest = http.request(
      {
        protocol: this.upstream.protocol,
        hostname: this.upstream.hostname,
        port: this.upstream.port,
        method: req.method,
        path: req.url,
        headers: forwardable(req.headers),
        agent: this.agent,
      },
      (upstreamResponse) => {
        leftUpstream(); // moto answers once it has done the work; the body follows at loopback speed
        const status = upstreamResponse.statusCode ?? 502;
        for (const c of counted) c.stats.statuses[status] = (c.stats.statuses[status] ?? 0) + 1;
        setTimeout(() => {
          if (res.destroyed) {
            upstreamResponse.destroy();
            return;
          }
          res.writeHead(status, forwardable(upstreamResponse.headers));
          const down = meter((n) => {
            for (const c of counted) c.stats.bytesDown += n;
          }, this.down);
          pipeline(upstreamResponse, down, res, () => {});
        }, half);
      },
    );
    upstreamRequest.on('close', leftUpstream);
    upstreamRequest.on('error', (error) => {
      if (!res.headersSent) {
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(`latency proxy: upstream error: ${error.message}`);
      } else res.destroy(error);
    });
    res.on('close', () => {
      if (!res.writableFinished) upstreamRequest.destroy();
    });
    const up = meter((n) => {
      for (const c of counted) c.stats.bytesUp += n;
    }, this.up);
    pipeline(req, up, upstreamRequest, (error) => {
      if (error) upstreamRequest.destroy(error);
    });
  }
}

/**
 * Reads a proxy's counters for `bucket` (all buckets when omitted) over HTTP, from another
 * process, optionally resetting them.
 */
export async function fetchProxyStats(proxyUrl: string, bucket?: string, reset = false): Promise<RequestStats> {
  const query = new URLSearchParams({
    ...(bucket === undefined ? {} : { bucket }),
    ...(reset ? { reset: '1' } : {}),
  });
  const response = await fetch(`${proxyUrl}${LATENCY_PROXY_CONTROL_PATH}?${query}`);
  if (!response.ok) throw new Error(`latency proxy stats: HTTP ${response.status}`);
  return (await response.json()) as RequestStats;
}

async function main(argv: string[]): Promise<void> {
  const arg = (name: string) => argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const bandwidth = arg('bandwidth');
  const proxy = await LatencyProxy.start({
    upstream: arg('upstream') ?? process.env.XSTORAGE_S3_ENDPOINT ?? 'http://127.0.0.1:5011',
    delayMs: Number(arg('delay') ?? LATENCY_PROXY_DEFAULT_DELAY_MS),
    bandwidthMiBps: bandwidth === undefined ? undefined : Number(bandwidth),
    port: Number(arg('port') ?? 0),
  });
  console.log(
    `latency proxy on ${proxy.url}: +${proxy.delayMs} ms per request${proxy.bandwidthMiBps ? `, ${proxy.bandwidthMiBps} MiB/s each way` : ''}; stats at ${proxy.url}${LATENCY_PROXY_CONTROL_PATH}`,
  );
  const stop = () => void proxy.close().then(() => process.exit(0));
  process.once('SIGINT', stop).once('SIGTERM', stop);
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((e) => {
    console.error(e);
    process.exit(2);
  });
}
