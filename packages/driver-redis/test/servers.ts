/**
 * Private redis-server instances for tests that kill, restart or measure a server: never the
 * shared ones of scripts/services.sh. Each runs in a temp dir on a free loopback port and is a
 * child of the test process (stopped by its pid in afterAll).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import type { Redis } from 'ioredis';

const run = promisify(execFile);

async function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A free loopback port whose cluster bus port (+10000) is free too. */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 30000);
    if ((await portIsFree(port)) && (await portIsFree(port + 10000))) return port;
  }
  throw new Error('no free port');
}

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
  const port = await freePort();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'driver-redis-server-'));
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

/** A private 3-master cluster (no replicas). */
export interface PrivateCluster {
  readonly nodes: PrivateRedis[];
  stop(): Promise<void>;
}

/**
 * Starts three cluster-enabled servers and joins them with `redis-cli --cluster create`. With a
 * `password`, every node requires it (`requirepass`) and uses it towards the others (`masterauth`).
 */
export async function startCluster(options: { password?: string } = {}): Promise<PrivateCluster> {
  const nodes: PrivateRedis[] = [];
  const stop = async () => {
    await Promise.all(nodes.map((n) => n.stop()));
  };
  const { password } = options;
  const auth = password === undefined ? [] : ['-a', password, '--no-auth-warning'];
  const args = password === undefined ? [] : ['--requirepass', password, '--masterauth', password];
  try {
    for (let i = 0; i < 3; i++) nodes.push(await startRedis({ cluster: true, args }));
    await run('redis-cli', [
      ...auth,
      '--cluster',
      'create',
      ...nodes.map((n) => `127.0.0.1:${n.port}`),
      '--cluster-replicas',
      '0',
      '--cluster-yes',
    ]);
    const deadline = Date.now() + 20_000;
    for (const n of nodes) {
      for (;;) {
        const { stdout } = await run('redis-cli', [...auth, '-p', String(n.port), 'cluster', 'info']);
        if (/cluster_state:ok/.test(stdout) && /cluster_known_nodes:3/.test(stdout)) break;
        if (Date.now() > deadline) throw new Error('private cluster did not reach cluster_state:ok');
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    return { nodes, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** Server-side counters of one node, read over a separate connection. */
export interface ServerCounters {
  /** `INFO stats` total_reads_processed: read events the server processed (all clients). */
  reads: number;
  /** `INFO commandstats` calls per command, e.g. `{ set: 20, pexpire: 20 }`. */
  calls: Record<string, number>;
}

/** Reads the counters of the node behind `admin` (each read adds 1 read event of its own). */
export async function counters(admin: Redis): Promise<ServerCounters> {
  const info = await admin.info('all');
  const reads = Number(/total_reads_processed:(\d+)/.exec(info)?.[1]);
  const calls: Record<string, number> = {};
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls[m[1] as string] = Number(m[2]);
  return { reads, calls };
}

/** What a measured operation did on one node: read events and command calls (minus the measuring INFO). */
export function delta(before: ServerCounters, after: ServerCounters): ServerCounters {
  const calls: Record<string, number> = {};
  for (const [k, v] of Object.entries(after.calls)) {
    const d = v - (before.calls[k] ?? 0) - (k === 'info' ? 1 : 0);
    if (d > 0) calls[k] = d;
  }
  return { reads: after.reads - before.reads - 1, calls };
}
