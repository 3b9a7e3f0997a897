/**
 * Private Redis for tests that kill, restart or measure a server: single servers come from
 * `@x/test-servers` (shared with the e2e tests); this adds a private cluster and server counters.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { type PrivateRedis, startRedis } from '@x/test-servers';
import type { Redis } from 'ioredis';

export { type PrivateRedis, startRedis } from '@x/test-servers';

const run = promisify(execFile);

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
