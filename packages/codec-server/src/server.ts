/**
 * A ready-to-run `node:http` / `node:https` codec server.
 *
 * @module
 */
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { configError } from './errors';
import { type CodecServerOptions, createCodecServerHandler } from './handler';

/** TLS of {@link startCodecServer}: PEM contents (not paths). */
export interface CodecServerTlsOptions {
  /** Certificate chain (PEM). */
  cert: string | Buffer;
  /** Private key (PEM). */
  key: string | Buffer;
  /** Passphrase of an encrypted `key`. Default: none. */
  passphrase?: string;
  /**
   * CA certificate(s) (PEM) that client certificates must chain to: when set, the server asks
   * every client for a certificate and refuses the TLS handshake without a valid one (mutual
   * TLS). Default: none (no client certificates).
   */
  clientCa?: string | Buffer;
}

/** Options of {@link startCodecServer}. */
export interface StartCodecServerOptions extends CodecServerOptions {
  /** Interface to listen on. Default: `127.0.0.1` (loopback only). */
  host?: string;
  /** Port; `0` picks a free one. Default: `8888`. */
  port?: number;
  /** Serve HTTPS with this certificate and key (and client CA for mutual TLS). Default: plain HTTP. */
  tls?: CodecServerTlsOptions;
  /** Time a client has to send the request headers, in ms (slow clients). Default: 10,000. */
  headersTimeoutMs?: number;
  /** Time a client has to send the whole request, body included, in ms. Default: 60,000. */
  requestTimeoutMs?: number;
  /**
   * A connection with no traffic either way for this long is closed, in ms; it covers clients
   * that stop reading a response. Keep it above your slowest storage call. Default: 120,000.
   */
  idleTimeoutMs?: number;
}

/** A listening codec server. */
export interface RunningCodecServer {
  /** The underlying `node:http` or `node:https` server. */
  readonly server: Server | HttpsServer;
  /**
   * Base URL to connect to, e.g. `http://127.0.0.1:8888` (give it to `--ui-codec-endpoint` /
   * `--codec-endpoint`); for a wildcard bind (`0.0.0.0`) it names `127.0.0.1`.
   */
  readonly url: string;
  /** The address actually bound, as a URL: `http://0.0.0.0:8888`, `https://[::]:8443`, `http://127.0.0.1:8888`. */
  readonly boundUrl: string;
  /** The port actually bound. */
  readonly port: number;
  /**
   * Replaces the certificate, key and client CA of an HTTPS server for new connections (e.g. on
   * SIGHUP, after a certificate renewal). Turning TLS or mutual TLS on or off needs a restart.
   *
   * @throws Error if the server is not HTTPS, or the new certificate or key is invalid (the old ones stay in use).
   */
  reloadTls(tls: CodecServerTlsOptions): void;
  /** Stops accepting connections, closes idle and open ones, and resolves when closed. */
  close(): Promise<void>;
}

/** Default port of {@link startCodecServer}. */
export const DEFAULT_CODEC_SERVER_PORT = 8888;

function positiveMs(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1) throw configError(`${name} must be a positive integer, got ${value}`);
  return value;
}

function secureContext(tls: CodecServerTlsOptions): {
  cert: string | Buffer;
  key: string | Buffer;
  passphrase?: string;
  ca?: string | Buffer;
} {
  return {
    cert: tls.cert,
    key: tls.key,
    ...(tls.passphrase === undefined ? {} : { passphrase: tls.passphrase }),
    ...(tls.clientCa === undefined ? {} : { ca: tls.clientCa }),
  };
}

/**
 * Creates the handler and listens on `host:port`, over HTTPS when `tls` is given.
 *
 * @throws StorageDriverError `E_CONFIG` / TypeError for invalid options (see
 *   {@link createCodecServerHandler}; timeouts that are not positive integers); rejects with the
 *   TLS error for an unusable certificate or key and with the listen error (e.g. `EADDRINUSE`).
 */
export async function startCodecServer(options: StartCodecServerOptions): Promise<RunningCodecServer> {
  const handler = createCodecServerHandler(options);
  const headersTimeout = positiveMs(options.headersTimeoutMs, 10_000, 'headersTimeoutMs');
  const requestTimeout = positiveMs(options.requestTimeoutMs, 60_000, 'requestTimeoutMs');
  const idleTimeout = positiveMs(options.idleTimeoutMs, 120_000, 'idleTimeoutMs');
  const httpOptions = {
    headersTimeout: Math.min(headersTimeout, requestTimeout),
    requestTimeout,
    // Node checks both timeouts on this period (30 s by default, longer than the timeouts).
    connectionsCheckingInterval: Math.max(
      100,
      Math.min(30_000, Math.floor(Math.min(headersTimeout, requestTimeout) / 4)),
    ),
  };
  const tls = options.tls;
  const server: Server | HttpsServer =
    tls === undefined
      ? createHttpServer(httpOptions, handler)
      : createHttpsServer(
          {
            ...httpOptions,
            ...secureContext(tls),
            minVersion: 'TLSv1.2',
            requestCert: tls.clientCa !== undefined,
            rejectUnauthorized: tls.clientCa !== undefined,
          },
          handler,
        );
  server.timeout = idleTimeout;
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? DEFAULT_CODEC_SERVER_PORT, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  const scheme = tls === undefined ? 'http' : 'https';
  const urlHost = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
  const boundHost = bound.family === 'IPv6' || bound.address.includes(':') ? `[${bound.address}]` : bound.address;
  return {
    server,
    port: bound.port,
    url: `${scheme}://${urlHost}:${bound.port}`,
    boundUrl: `${scheme}://${boundHost}:${bound.port}`,
    reloadTls(next) {
      if (tls === undefined || !('setSecureContext' in server)) throw new Error('the server does not use TLS');
      server.setSecureContext(secureContext(next));
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
