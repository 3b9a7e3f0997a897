/**
 * A ready-to-run `node:http` codec server.
 *
 * @module
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type CodecServerOptions, createCodecServerHandler } from './handler';

/** Options of {@link startCodecServer}. */
export interface StartCodecServerOptions extends CodecServerOptions {
  /** Interface to listen on. Default: `127.0.0.1` (loopback only). */
  host?: string;
  /** Port; `0` picks a free one. Default: `8888`. */
  port?: number;
}

/** A listening codec server. */
export interface RunningCodecServer {
  /** The underlying `node:http` server. */
  readonly server: Server;
  /** Base URL, e.g. `http://127.0.0.1:8888` (give it to `--ui-codec-endpoint` / `--codec-endpoint`). */
  readonly url: string;
  /** The port actually bound. */
  readonly port: number;
  /** Stops accepting connections, closes idle and open ones, and resolves when closed. */
  close(): Promise<void>;
}

/** Default port of {@link startCodecServer}. */
export const DEFAULT_CODEC_SERVER_PORT = 8888;

/**
 * Creates the handler and listens on `host:port`.
 *
 * @throws StorageDriverError `E_CONFIG` / TypeError for invalid options (see
 *   {@link createCodecServerHandler}); rejects with the listen error (e.g. `EADDRINUSE`).
 */
export async function startCodecServer(options: StartCodecServerOptions): Promise<RunningCodecServer> {
  const handler = createCodecServerHandler(options);
  const server = createServer(handler);
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? DEFAULT_CODEC_SERVER_PORT, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
  return {
    server,
    port,
    url: `http://${urlHost}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
