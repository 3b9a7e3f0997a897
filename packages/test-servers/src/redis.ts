/**
 * A private `redis-server` (from `scripts/services.sh`) in a temp directory on a free loopback
 * port, for tests that kill, restart or reconfigure a server.
 *
 * @module
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { freeRedisPort } from './ports';

const run = promisify(execFile);

/** A private redis-server. */
export interface PrivateRedis {
  readonly port: number;
  readonly url: string;
  /** SIGKILLs the server (no shutdown, no save) and waits for it to exit. */
  kill(): Promise<void>;
  /** Starts it again on the same port (after `kill`). */
  restart(): Promise<void>;
  /** Kills it and removes its directory. */
  stop(): Promise<void>;
}

async function waitForPing(port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      // A password-protected server answers NOAUTH: it is up all the same.
      const { stdout } = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), 'ping']);
      if (stdout.trim() === 'PONG' || stdout.includes('NOAUTH')) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`redis-server on ${port} did not start`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Starts a private redis-server (optionally cluster-enabled) on a free port. */
export async function startRedis(options: { cluster?: boolean; args?: readonly string[] } = {}): Promise<PrivateRedis> {
  const port = await freeRedisPort();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'xstorage-redis-server-'));
  let child: ChildProcess | undefined;
  const start = async () => {
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
    args.push('--dir', dir, '--maxmemory-policy', 'noeviction', '--logfile', path.join(dir, 'redis.log'));
    if (options.cluster) args.push('--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf');
    args.push(...(options.args ?? []));
    child = spawn('redis-server', args, { stdio: 'ignore' });
    await waitForPing(port);
  };
  const kill = async () => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill('SIGKILL');
    });
  };
  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    kill,
    restart: start,
    stop: async () => {
      await kill();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
