/**
 * A loopback HTTP proxy for fault tests of object-store drivers (S3, GCS, Azure Blob): it
 * forwards every request to one upstream server unchanged, records what it saw, and on request
 * answers itself (`inject`: 500/503/429, a 412, any status and body), damages the exchange
 * (`tamper`: reset connections, cut or corrupted bodies), holds a request until something happened
 * (`hold`), or forwards it to another path (`rewrite`). The shared emulators are never disturbed:
 * only the requests of the client pointed at the proxy go through it.
 *
 * @module
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

/** A canned response the proxy sends instead of forwarding. */
export interface InjectedResponse {
  /** HTTP status. */
  status: number;
  /** Response headers (`content-length` is set from the body). */
  headers?: Record<string, string>;
  /** Response body (not sent to a HEAD request). */
  body?: string | Buffer;
}

/**
 * A network or transfer fault the proxy applies to one request (see {@link FaultProxy.tamper}).
 * - `reset`: the client connection is destroyed before anything is forwarded (nothing reaches the
 *   server).
 * - `reset-after-forward`: the request is forwarded (the server does the work), then the client
 *   connection is destroyed instead of answering.
 * - `truncate`: forwarded; the client gets the upstream status and headers (with a Content-Length of
 *   the whole body) but only the first `bytes` of the body, then the connection is destroyed. An
 *   empty body is cut inside the header block instead.
 * - `shorten`: forwarded; the client gets a well-formed response with only the first `bytes` of the
 *   body (Content-Length rewritten to match).
 * - `corrupt`: forwarded; one bit in the middle of the body is flipped (same length).
 * - `corrupt-request`: one bit in the middle of the request body is flipped (same length) before it
 *   is forwarded; the answer is passed on unchanged (does the server refuse a damaged upload?).
 */
export type ProxyFault =
  | { kind: 'reset' }
  | { kind: 'reset-after-forward' }
  | { kind: 'truncate'; bytes: number }
  | { kind: 'shorten'; bytes: number }
  | { kind: 'corrupt' }
  | { kind: 'corrupt-request' };

/** One request seen by the proxy. */
export interface ProxiedRequest {
  /** HTTP method. */
  readonly method: string;
  /** Path without the query string, as sent (still percent-encoded). */
  readonly rawPath: string;
  /** Path without the query string, percent-decoded (the raw path if it does not decode). */
  readonly path: string;
  /** The query string, parsed. */
  readonly query: URLSearchParams;
  /** Raw URL (path and query). */
  readonly url: string;
  /** Request headers. */
  readonly headers: http.IncomingHttpHeaders;
  /** Whether the proxy answered or damaged it itself (`inject` or `tamper`). */
  injected: boolean;
  /** Status the client was answered with, once known (`undefined` for a reset). */
  status: number | undefined;
}

/**
 * The proxy. Start it with {@link FaultProxy.start}, point the client at {@link FaultProxy.endpoint},
 * set the hooks per test and `reset()` between tests.
 */
export class FaultProxy {
  /** Every request seen since the last `reset()`, in arrival order. */
  readonly requests: ProxiedRequest[] = [];
  /** Return a response to send instead of forwarding, or `undefined` to forward. */
  inject: ((req: ProxiedRequest) => InjectedResponse | undefined) | undefined;
  /** Return a fault to apply to the request or its response, or `undefined` to leave it alone. */
  tamper: ((req: ProxiedRequest) => ProxyFault | undefined) | undefined;
  /**
   * Return another URL (path and query) to forward the request to, or `undefined`. A rewritten
   * request carries the upstream's `Host` (it goes path-style: an S3 server must not read a
   * virtual-hosted bucket from the client's host name).
   */
  rewrite: ((req: ProxiedRequest) => string | undefined) | undefined;
  /**
   * Return a promise to hold the request until it settles (a delay, or something done to the server
   * first), or `undefined` to forward it at once.
   */
  hold: ((req: ProxiedRequest) => Promise<unknown> | undefined) | undefined;
  /** Highest number of requests in flight at once since the last `reset()`. */
  peakInFlight = 0;
  #inFlight = 0;
  readonly #server: http.Server;
  readonly #upstream: URL;
  readonly #agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

  private constructor(upstream: string) {
    this.#upstream = new URL(upstream);
    this.#server = http.createServer((req, res) => this.#handle(req, res));
    this.#server.keepAliveTimeout = 1000;
  }

  /** Starts a proxy on 127.0.0.1 (a free port) in front of `upstream` (`http://host:port`). */
  static async start(upstream: string): Promise<FaultProxy> {
    const proxy = new FaultProxy(upstream);
    await new Promise<void>((resolve) => proxy.#server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  /** The proxy's URL (`http://127.0.0.1:port`), to use as the client's endpoint. */
  get endpoint(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  /** The proxy's port. */
  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  /** Forgets the recorded requests and the peak; the hooks stay (to count the next step of a test). */
  clearRequests(): void {
    this.requests.length = 0;
    this.peakInFlight = 0;
  }

  /** Forgets the recorded requests and the peak, and clears every hook. */
  reset(): void {
    this.clearRequests();
    this.inject = undefined;
    this.tamper = undefined;
    this.rewrite = undefined;
    this.hold = undefined;
  }

  /** Stops the proxy (open connections are closed). */
  async close(): Promise<void> {
    this.#agent.destroy();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const rawPath = q === -1 ? url : url.slice(0, q);
    let path: string;
    try {
      path = decodeURIComponent(rawPath);
    } catch {
      path = rawPath;
    }
    const record: ProxiedRequest = {
      method: req.method ?? '',
      rawPath,
      path,
      query: new URLSearchParams(q === -1 ? '' : url.slice(q + 1)),
      url,
      headers: req.headers,
      injected: false,
      status: undefined,
    };
    this.requests.push(record);
    this.#inFlight++;
    this.peakInFlight = Math.max(this.peakInFlight, this.#inFlight);
    let done = false;
    res.on('close', () => {
      if (done) return;
      done = true;
      this.#inFlight--;
    });

    const injected = this.inject?.(record);
    if (injected !== undefined) {
      record.injected = true;
      record.status = injected.status;
      req.resume();
      req.on('end', () => {
        const body = req.method === 'HEAD' ? Buffer.alloc(0) : Buffer.from(injected.body ?? '');
        res.writeHead(injected.status, { ...injected.headers, 'content-length': String(body.length) });
        res.end(body);
      });
      return;
    }
    const held = this.hold?.(record);
    if (held === undefined) this.#forward(req, res, record);
    else {
      const go = () => this.#forward(req, res, record);
      held.then(go, go);
    }
  }

  #forward(req: http.IncomingMessage, res: http.ServerResponse, record: ProxiedRequest): void {
    const fault = this.tamper?.(record);
    if (fault !== undefined) record.injected = true;
    if (fault?.kind === 'reset') {
      req.socket.destroy();
      return;
    }
    const headers = { ...req.headers };
    delete headers.expect;
    const rewritten = this.rewrite?.(record);
    if (rewritten !== undefined) headers.host = this.#upstream.host;
    const damageRequest = fault?.kind === 'corrupt-request';
    const upstreamReq = http.request(
      {
        host: this.#upstream.hostname,
        port: this.#upstream.port,
        method: req.method,
        path: rewritten ?? record.url,
        headers,
        agent: this.#agent,
      },
      (upstreamRes) => {
        record.status = upstreamRes.statusCode;
        if (fault === undefined || damageRequest) {
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
    if (!damageRequest) {
      req.pipe(upstreamReq);
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (body.length > 0) body[body.length >> 1] = (body[body.length >> 1] as number) ^ 0x01;
      upstreamReq.end(body);
    });
  }
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
    case 'corrupt-request':
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
