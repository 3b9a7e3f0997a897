/**
 * Round trips per batch for the drivers that promise one: Redis (counted on the wire by a
 * reply-holding proxy) and PostgreSQL (counted at the server by `pg_stat_statements`); and, for
 * the same implementations and batches, the server's own time per batch (Redis: CPU time of its
 * main thread; PostgreSQL: execution time of the statements, `pg_stat_statements`),
 * which the targets' notes compare between a driver and its raw client.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import * as net from 'node:net';
import type { Payload } from '@x/storage-driver-core';
import { SERVICES, uniqueName } from '@x/test-servers';
import { Redis } from 'ioredis';
import { median, randomPayload } from './env';
import { countingImpls, type Impl, makePool } from './impls';

/** Milliseconds both directions must be quiet before held replies are released. */
const QUIET_MS = 150;

/**
 * A loopback TCP proxy in front of Redis that holds every reply until client and server have both
 * been quiet for {@link QUIET_MS}, then releases them at once. A client that pipelines sends its
 * whole batch without waiting and is released once; a client that waits for a reply before
 * sending more is released once per wait. `roundTrips` counts releases that followed new client
 * bytes: the number of times the client had to wait for the server. (A client stalled for longer
 * than the quiet period mid-write would be over-counted, never under-counted.)
 */
class RoundTripProxy {
  roundTrips = 0;
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();

  private constructor(upstream: URL) {
    this.server = net.createServer((client) => {
      const up = net.connect(Number(upstream.port), upstream.hostname);
      this.sockets.add(client).add(up);
      const held: Buffer[] = [];
      let sent = false;
      let timer: NodeJS.Timeout | undefined;
      const arm = () => {
        if (timer) clearTimeout(timer);
        timer = setTimeout(() => {
          if (held.length > 0) {
            client.write(Buffer.concat(held.splice(0)));
            if (sent) this.roundTrips++;
            sent = false;
          }
        }, QUIET_MS);
      };
      client.on('data', (chunk) => {
        sent = true;
        up.write(chunk);
        arm();
      });
      up.on('data', (chunk) => {
        held.push(chunk);
        arm();
      });
      const end = () => {
        if (timer) clearTimeout(timer);
        // Replies still held (QUIT's) go out before the client side closes.
        if (held.length > 0 && !client.destroyed) client.end(Buffer.concat(held.splice(0)));
        else client.end();
        up.destroy();
      };
      client.on('close', end).on('error', end);
      up.on('close', end).on('error', end);
    });
  }

  static async start(upstreamUrl: string): Promise<RoundTripProxy> {
    const proxy = new RoundTripProxy(new URL(upstreamUrl));
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get url(): string {
    return `redis://127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Round trips of one store and one retrieve of a batch, and the server's time for them. */
export interface RoundTripCount {
  readonly impl: string;
  readonly batch: string;
  /** Data bytes of the batch (what a workload of the same shape stores per batch). */
  readonly bytesPerBatch: number;
  readonly store: number;
  readonly retrieve: number;
  /** How it was counted. */
  readonly method: string;
  /**
   * The server's own time for one batch (store + retrieve), milliseconds: the median of
   * {@link SERVER_TIME_BATCHES} batches of new payloads.
   */
  readonly serverMs?: number;
  /** How {@link RoundTripCount.serverMs} was measured. */
  readonly serverMethod?: string;
}

/** Batches of each shape whose server time is measured (after the counted one). */
export const SERVER_TIME_BATCHES = 9;

/** How one backend's counters are read: round trips, and the server's time so far in milliseconds. */
interface Meter {
  readonly method: string;
  count(): Promise<number>;
  readonly serverMethod: string;
  serverMs(): Promise<number>;
}

const batches: [string, () => Payload[]][] = [
  ['64 × 256 KiB', () => Array.from({ length: 64 }, () => randomPayload(256 * 1024))],
  ['1,000 × 1 KiB', () => Array.from({ length: 1000 }, () => randomPayload(1024))],
];

async function measure(impl: Impl, meter: Meter, sink: RoundTripCount[]): Promise<void> {
  // Warm-up: connections opened, prepared code paths; not counted.
  await impl.retrieve(await impl.store(batches[1]?.[1]().slice(0, 4) ?? []));
  for (const [batch, make] of batches) {
    const payloads = make();
    const a = await meter.count();
    const refs = await impl.store(payloads);
    const b = await meter.count();
    await impl.retrieve(refs);
    const c = await meter.count();
    const times: number[] = [];
    for (let i = 0; i < SERVER_TIME_BATCHES; i++) {
      const next = make();
      const before = await meter.serverMs();
      await impl.retrieve(await impl.store(next));
      times.push((await meter.serverMs()) - before);
    }
    sink.push({
      impl: impl.id,
      batch,
      bytesPerBatch: payloads.reduce((n, p) => n + (p.data?.byteLength ?? 0), 0),
      store: b - a,
      retrieve: c - b,
      method: meter.method,
      serverMs: median(times),
      serverMethod: meter.serverMethod,
    });
  }
}

async function redisCounts(sink: RoundTripCount[]): Promise<void> {
  const admin = new Redis(SERVICES.redisUrl);
  // CPU time of Redis' main thread, where every command is read, parsed and run (seconds with
  // microseconds in INFO cpu).
  const serverMs = async () => {
    const info = await admin.info('cpu');
    const field = (name: string) => Number(new RegExp(`^${name}:([0-9.]+)`, 'm').exec(info)?.[1] ?? Number.NaN);
    return 1000 * (field('used_cpu_user_main_thread') + field('used_cpu_sys_main_thread'));
  };
  try {
    for (const kind of ['driver', 'raw'] as const) {
      const proxy = await RoundTripProxy.start(SERVICES.redisUrl);
      const impl = await countingImpls.redis(kind, proxy.url);
      try {
        // Let the connection's own handshake settle, then count only our batches.
        await new Promise((r) => setTimeout(r, QUIET_MS * 2));
        const meter: Meter = {
          method: 'wire: client waits for Redis replies (reply-holding proxy)',
          async count() {
            await new Promise((r) => setTimeout(r, QUIET_MS * 2));
            return proxy.roundTrips;
          },
          serverMethod: "Redis main thread's CPU time (INFO cpu)",
          serverMs,
        };
        await measure(impl, meter, sink);
      } finally {
        await impl.close();
        await proxy.close();
      }
    }
  } finally {
    await admin.quit();
  }
}

async function postgresCounts(sink: RoundTripCount[]): Promise<void> {
  const admin = makePool();
  for (const kind of ['driver', 'raw'] as const) {
    // A login role of our own: pg_stat_statements filtered by it sees every statement this
    // pool sends (BEGIN, SET, catalog queries included) and nothing of anyone else.
    const role = uniqueName('xs_bench_role', { separator: '_', maxLength: 63 });
    const password = randomBytes(12).toString('hex');
    const url = new URL(SERVICES.postgresUrl);
    await admin.query(`CREATE ROLE "${role}" LOGIN INHERIT PASSWORD '${password}' IN ROLE "${url.username}"`);
    url.username = role;
    url.password = password;
    const metered = makePool(url.toString());
    const impl = await countingImpls.postgres(kind, metered, makePool());
    const stat = async (column: string) => {
      const r = await admin.query<{ value: string }>(
        `SELECT coalesce(sum(${column}), 0)::float8 AS value FROM pg_stat_statements
          WHERE userid = (SELECT oid FROM pg_roles WHERE rolname = $1) AND toplevel`,
        [role],
      );
      return Number(r.rows[0]?.value ?? 0);
    };
    const meter: Meter = {
      method: 'server: pg_stat_statements calls by a dedicated login role',
      count: () => stat('calls'),
      serverMethod: 'execution time of its statements (pg_stat_statements total_exec_time)',
      serverMs: () => stat('total_exec_time'),
    };
    try {
      await measure(impl, meter, sink);
    } finally {
      await impl.close();
      await admin.query(`DROP ROLE IF EXISTS "${role}"`);
    }
  }
  await admin.end();
}

/** Counts store and retrieve round trips per batch for Redis and PostgreSQL (drivers and raw clients). */
export async function countRoundTrips(): Promise<RoundTripCount[]> {
  const sink: RoundTripCount[] = [];
  await redisCounts(sink);
  await postgresCounts(sink);
  return sink;
}
