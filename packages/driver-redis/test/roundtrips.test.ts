/**
 * Round trips per batch, measured at the servers (INFO stats total_reads_processed and INFO
 * commandstats) on private servers, so no other client's traffic is counted.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  buildStorageKey,
  encodePayload,
  type Payload,
  type StorageDriverClaim,
  type StoredObject,
  sha256Hex,
} from '@x/storage-driver-core';
import { captureStorageDriverError } from '@x/storage-driver-test-suite';
import { Cluster, Redis } from 'ioredis';
import { RedisStorageDriver, redisClusterKeySlot } from '../src';
import { collect, payload, quitAll, text, workflowTarget } from './helpers';
import {
  counters,
  delta,
  type PrivateCluster,
  type PrivateRedis,
  type ServerCounters,
  startCluster,
  startRedis,
} from './servers';

const target = workflowTarget('roundtrips');
/** `size` bytes counting up from `seed` (mod 251): a wrong offset or a lost piece changes them. */
const bytesOf = (size: number, seed: number) => Uint8Array.from({ length: size }, (_, i) => (seed + i) % 251);
const batch = (tag: string, n: number) => Array.from({ length: n }, (_, i) => payload(`${tag} ${i}`));

describe('standalone: one round trip per batch', () => {
  let server: PrivateRedis;
  let client: Redis;
  let admin: Redis;
  beforeAll(async () => {
    server = await startRedis();
    client = new Redis(server.port, '127.0.0.1');
    admin = new Redis(server.port, '127.0.0.1');
    await Promise.all([client.ping(), admin.ping()]);
  });
  afterAll(async () => {
    await quitAll(client, admin);
    await server?.stop();
  });

  const measure = async <T>(fn: () => Promise<T>): Promise<[T, ServerCounters]> => {
    const before = await counters(admin);
    const result = await fn();
    return [result, delta(before, await counters(admin))];
  };

  it('the measurement itself counts nothing', async () => {
    const [, d] = await measure(async () => {});
    expect(d).toEqual({ reads: 0, calls: {} });
  });

  it('store with ttl: 1 read, one EVAL running PEXPIRE GT + SET NX PX per distinct payload; retrieve: 1 read, 1 MGET', async () => {
    const driver = new RedisStorageDriver({ client, keyPrefix: 'rt', ttl: 60_000 });
    const payloads = batch('ttl', 20);
    const [claims, stored] = await measure(() => driver.store({ target }, [...payloads, ...payloads.slice(0, 5)]));
    expect(stored).toEqual({ reads: 1, calls: { eval: 1, pexpire: 20, set: 20 } });
    const [back, read] = await measure(() => driver.retrieve({}, claims));
    expect(read).toEqual({ reads: 1, calls: { mget: 1 } });
    expect(back.map(text)).toEqual([...payloads, ...payloads.slice(0, 5)].map(text));
    // A second store of the same batch (all dedup hits) is still one round trip.
    const [, again] = await measure(() => driver.store({ target }, payloads));
    expect(again).toEqual({ reads: 1, calls: { eval: 1, pexpire: 20, set: 20 } });
  });

  it('store without ttl: 1 read, PEXPIRE + SET NX PX (the 100-year horizon) per distinct payload', async () => {
    const driver = new RedisStorageDriver({ client, keyPrefix: 'rt-nottl' });
    const [, stored] = await measure(() => driver.store({ target }, batch('nottl', 20)));
    expect(stored).toEqual({ reads: 1, calls: { eval: 1, pexpire: 20, set: 20 } });
  });

  it('one payload, or a batch over 4 MiB: the pipeline of PEXPIRE + SET NX PX, no script', async () => {
    const driver = new RedisStorageDriver({ client, keyPrefix: 'rt-pipeline', ttl: 60_000 });
    const [, one] = await measure(() => driver.store({ target }, batch('one', 1)));
    expect(one).toEqual({ reads: 1, calls: { pexpire: 1, set: 1 } });
    const big = Array.from({ length: 10 }, (_, i) => ({ metadata: {}, data: new Uint8Array(512 * 1024).fill(i) }));
    const [claims, many] = await measure(() => driver.store({ target }, big));
    expect(many.calls).toEqual({ pexpire: 10, set: 10 });
    expect((await driver.retrieve({}, claims)).map((p) => p.data?.[0])).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('objects of 1 MiB or more: their own PEXPIRE + SET NX PX beside the batch’s script, still one round trip; bytes exact', async () => {
    const driver = new RedisStorageDriver({ client, keyPrefix: 'rt-large', ttl: 60_000 });
    const large = [7, 8].map((i) => ({
      metadata: { encoding: new TextEncoder().encode('binary/plain') },
      data: bytesOf(1536 * 1024, i),
    }));
    const mixed = [large[0], ...batch('beside large', 3), large[1]] as Payload[];
    const [claims, stored] = await measure(() => driver.store({ target }, mixed));
    // The three small payloads: one script call; each large one: PEXPIRE + SET of its own.
    expect(stored.calls).toEqual({ eval: 1, pexpire: 5, set: 5 });
    const back = await driver.retrieve({}, claims);
    expect(back.map((p) => sha256Hex(encodePayload(p)))).toEqual(mixed.map((p) => sha256Hex(encodePayload(p))));
    expect(Buffer.from(back[4]?.data ?? []).equals(Buffer.from(large[1]?.data ?? []))).toBe(true);
    expect(await admin.strlen(claims[0]?.claimData.key as string)).toBe(encodePayload(large[0] as Payload).byteLength);
    expect(await admin.pttl(claims[4]?.claimData.key as string)).toBeGreaterThan(50_000);
    // Stored again: dedup hits, the values intact.
    const [, again] = await measure(() => driver.store({ target }, mixed));
    expect(again.calls).toEqual({ eval: 1, pexpire: 5, set: 5 });
    const digests = (ps: Payload[]) => ps.map((p) => sha256Hex(encodePayload(p)));
    expect(digests(await driver.retrieve({}, claims))).toEqual(digests(mixed));
  });

  it('a large object is written from its parts: exact bytes with ioredis keyPrefix, before the connection is up, and with a client that is not ioredis', async () => {
    const large = (seed: number) => ({
      metadata: { encoding: new TextEncoder().encode('binary/plain') },
      data: bytesOf(1024 * 1024 + seed, seed),
    });
    const roundTrip = async (c: ConstructorParameters<typeof RedisStorageDriver>[0]['client'], p: Payload) => {
      const driver = new RedisStorageDriver({ client: c, keyPrefix: 'rt-parts', ttl: 60_000 });
      const [claim] = await driver.store({ target }, [p, ...batch('beside', 2)]);
      const [back] = await driver.retrieve({}, [claim as StorageDriverClaim]);
      expect(Buffer.from(back?.data ?? []).equals(Buffer.from(p.data ?? []))).toBe(true);
      return claim?.claimData.key as string;
    };
    // ioredis' own keyPrefix applies to the key exactly as for its other commands.
    const prefixed = new Redis(server.port, '127.0.0.1', { keyPrefix: 'app:' });
    // A client not connected yet: the command waits in ioredis' offline queue.
    const lazy = new Redis(server.port, '127.0.0.1', { lazyConnect: true });
    try {
      const p1 = large(1);
      const key = await roundTrip(prefixed, p1);
      expect(await admin.strlen(`app:${key}`)).toBe(encodePayload(p1).byteLength);
      expect(await admin.exists(key)).toBe(0);
      expect(lazy.status).toBe('wait');
      await roundTrip(lazy, large(2));
    } finally {
      prefixed.disconnect();
      lazy.disconnect();
    }
    // Only the methods the driver's structural type names (no sendCommand): the value is joined and sent with call().
    const structural = {
      get status() {
        return client.status;
      },
      pipeline: () => client.pipeline(),
      call: (command: string, ...args: (string | Buffer | number)[]) => client.call(command, ...args),
      callBuffer: (command: string, ...args: (string | Buffer | number)[]) => client.callBuffer(command, ...args),
    };
    const p3 = large(3);
    const key = await roundTrip(structural, p3);
    expect(await admin.strlen(key)).toBe(encodePayload(p3).byteLength);
  });

  it('a user without EVAL: the pipeline after one refused script, then only the pipeline; outcomes and bytes exact', async () => {
    await admin.call('ACL', 'SETUSER', 'noeval', 'on', '>noeval-pw', '~*', '&*', '+@all', '-eval', '-evalsha');
    const limited = new Redis(server.port, '127.0.0.1', { username: 'noeval', password: 'noeval-pw' });
    try {
      await limited.ping(); // connected before the measurement
      const driver = new RedisStorageDriver({ client: limited, keyPrefix: 'rt-noeval', ttl: 60_000 });
      const payloads = batch('noeval', 10);
      const [claims, first] = await measure(() => driver.store({ target }, payloads));
      // EVAL refused by the ACL (not counted as a call), then the pipeline.
      expect(first.calls).toEqual({ pexpire: 10, set: 10 });
      expect(first.reads).toBe(2);
      expect((await driver.retrieve({}, claims)).map(text)).toEqual(payloads.map(text));
      const [, second] = await measure(() => driver.store({ target }, payloads));
      expect(second).toEqual({ reads: 1, calls: { pexpire: 10, set: 10 } });
      // A large object: PEXPIRE + SET NX of its own, as with scripts.
      const large = { metadata: {}, data: bytesOf(1024 * 1024 + 5, 3) };
      const [[claim], alone] = await measure(() => driver.store({ target }, [large]));
      expect(alone.calls).toEqual({ pexpire: 1, set: 1 });
      const [back] = await driver.retrieve({}, [claim as StorageDriverClaim]);
      expect(Buffer.from(back?.data ?? []).equals(Buffer.from(large.data))).toBe(true);
    } finally {
      limited.disconnect();
      await admin.call('ACL', 'DELUSER', 'noeval');
    }
  });

  it('list: one SCAN then one pipeline (TIME, PTTL + STRLEN per key) per page; the first object after one page', async () => {
    const driver = new RedisStorageDriver({ client, keyPrefix: 'rt-list' });
    for (let i = 0; i < 5; i++) await driver.store({}, batch(`list ${i}`, 500));
    const [, first] = await measure(async () => {
      for await (const _ of driver.list()) break;
    });
    expect(first.calls.scan).toBe(1);
    expect(first.calls.time).toBe(1);
    expect(first.calls.strlen).toBe(first.calls.pttl);
    expect(first.calls.pttl).toBeLessThan(2500); // one page in memory, not the keyspace
    const [listed, all] = await measure(() => collect(driver.list()));
    expect(listed).toHaveLength(2500);
    expect(all.calls).toEqual({ scan: all.calls.scan, time: all.calls.time, pttl: 2500, strlen: 2500 });
    expect(all.calls.time).toBeLessThanOrEqual(all.calls.scan as number);
  });

  it('delete: 1 read of UNLINK per key; conditional: 1 read of EVALSHA per key, one more of EVAL after SCRIPT FLUSH', async () => {
    const driver = new RedisStorageDriver({ client, keyPrefix: 'rt-delete' });
    await driver.store({ target }, batch('delete', 30));
    const objects = await collect(driver.list());
    const [plain, unlinked] = await measure(() => driver.delete(objects.slice(0, 10)));
    expect(plain).toMatchObject({ deleted: 10 });
    expect(unlinked).toEqual({ reads: 1, calls: { unlink: 10 } });
    await admin.script('FLUSH');
    const future = new Date(Date.now() + 60_000);
    const [loaded, flushed] = await measure(() => driver.delete(objects.slice(10, 20), { referencedBefore: future }));
    expect(loaded).toMatchObject({ deleted: 10 });
    // EVALSHA answers NOSCRIPT; EVAL runs (and caches) the script: PTTL and UNLINK inside it.
    expect(flushed).toEqual({ reads: 2, calls: { evalsha: 10, eval: 10, pttl: 10, unlink: 10 } });
    const [cached, once] = await measure(() => driver.delete(objects.slice(10), { referencedBefore: future }));
    expect(cached).toMatchObject({ deleted: 10, missing: 10 });
    expect(once).toEqual({ reads: 1, calls: { evalsha: 20, pttl: 20, unlink: 10 } });
  });
});

describe('cluster: one round trip per master node per batch', () => {
  let cluster: PrivateCluster;
  let client: Cluster;
  let admins: Redis[];
  beforeAll(async () => {
    cluster = await startCluster();
    client = new Cluster(
      cluster.nodes.map((n) => ({ host: '127.0.0.1', port: n.port })),
      { slotsRefreshInterval: 600_000 },
    );
    admins = cluster.nodes.map((n) => new Redis(n.port, '127.0.0.1'));
  });
  afterAll(async () => {
    await quitAll(client, ...(admins ?? []));
    await cluster?.stop();
  });

  const measure = async <T>(fn: () => Promise<T>): Promise<[T, ServerCounters[]]> => {
    const before = await Promise.all(admins.map(counters));
    const result = await fn();
    const after = await Promise.all(admins.map(counters));
    return [result, after.map((a, i) => delta(before[i] as ServerCounters, a))];
  };

  it('a batch spanning all 3 masters: per node 1 read for store and 1 for retrieve, no CROSSSLOT', async () => {
    const driver = new RedisStorageDriver({ client, keyPrefix: 'rt-cluster', ttl: 60_000 });
    await driver.store({ target }, batch('warm-up', 30)); // opens the connection to every node
    const payloads = batch('cluster', 60);
    const [claims, stored] = await measure(() => driver.store({ target }, payloads));
    const perNode = stored.map((d) => d.calls.set ?? 0);
    expect(perNode.every((n) => n > 0)).toBe(true); // every master got part of the batch
    expect(perNode.reduce((a, b) => a + b, 0)).toBe(60);
    for (const [i, d] of stored.entries()) {
      expect(d).toEqual({ reads: 1, calls: { pexpire: perNode[i], set: perNode[i] } });
    }
    const [back, read] = await measure(() => driver.retrieve({}, claims));
    expect(back.map(text)).toEqual(payloads.map(text));
    for (const [i, d] of read.entries()) expect(d).toEqual({ reads: 1, calls: { get: perNode[i] } });
  });

  it('the first call on a brand-new Cluster (no slot map yet) still sends one pipeline per master', async () => {
    const fresh = new Cluster(
      cluster.nodes.map((n) => ({ host: '127.0.0.1', port: n.port })),
      { slotsRefreshInterval: 600_000 },
    );
    try {
      expect(fresh.slots.length).toBe(0);
      const driver = new RedisStorageDriver({ client: fresh, keyPrefix: 'rt-fresh', ttl: 60_000 });
      const payloads = batch('fresh', 30);
      const [claims, stored] = await measure(() => driver.store({ target }, payloads));
      const perNode = stored.map((d) => d.calls.set ?? 0);
      expect(perNode.every((n) => n > 0)).toBe(true);
      expect(perNode.reduce((a, b) => a + b, 0)).toBe(30);
      for (const [i, d] of stored.entries()) expect(d.calls.pexpire).toBe(perNode[i]);
      expect((await driver.retrieve({}, claims)).map(text)).toEqual(payloads.map(text));
    } finally {
      await quitAll(fresh);
    }
  });

  it('a slot moved behind the client’s back (MOVED) is retried through ioredis and lands on the new owner', async () => {
    const driver = new RedisStorageDriver({ client, keyPrefix: 'rt-moved', ttl: 60_000 });
    await driver.store({}, batch('warm-up', 10)); // the client has the slot map cached
    const payloads = batch('moved', 10);
    const moved = payloads[0] as (typeof payloads)[number];
    const key = driver.redisKey(buildStorageKey(target, sha256Hex(encodePayload(moved))));
    const slot = redisClusterKeySlot(key);
    // Find the owner and move the (empty) slot to another master, as a resharding would.
    const ids = await Promise.all(admins.map((a) => a.cluster('MYID') as Promise<string>));
    const owner = await ownerOf(slot);
    const next = (owner + 1) % admins.length;
    await (admins[next] as Redis).cluster('SETSLOT', slot, 'IMPORTING', ids[owner] as string);
    await (admins[owner] as Redis).cluster('SETSLOT', slot, 'MIGRATING', ids[next] as string);
    for (const a of admins) await a.cluster('SETSLOT', slot, 'NODE', ids[next] as string);

    const movedCount = async () =>
      Number(/errorstat_MOVED:count=(\d+)/.exec(await (admins[owner] as Redis).info('errorstats'))?.[1] ?? 0);
    const movedBefore = await movedCount();
    const claims = await driver.store({ target }, payloads);
    expect(await movedCount()).toBeGreaterThan(movedBefore); // the stale slot map was used and redirected
    expect(await (admins[next] as Redis).cluster('COUNTKEYSINSLOT', slot)).toBe(1);
    expect(await (admins[owner] as Redis).cluster('COUNTKEYSINSLOT', slot)).toBe(0);
    expect((await driver.retrieve({}, claims as StorageDriverClaim[])).map(text)).toEqual(payloads.map(text));
  });

  it('a slot nobody serves (CLUSTERDOWN) fails the store with E_BACKEND and leaves no unhandled rejection', async () => {
    const down = new Cluster(
      cluster.nodes.map((n) => ({ host: '127.0.0.1', port: n.port })),
      { slotsRefreshInterval: 600_000, retryDelayOnClusterDown: 0 },
    );
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    const driver = new RedisStorageDriver({ client: down, keyPrefix: 'rt-down', ttl: 60_000 });
    const lost = payload('in an unserved slot');
    const key = driver.redisKey(buildStorageKey(target, sha256Hex(encodePayload(lost))));
    const slot = redisClusterKeySlot(key);
    const owner = admins[await ownerOf(slot)] as Redis;
    try {
      await driver.store({ target }, batch('served', 3)); // slot map loaded
      await owner.cluster('DELSLOTS', slot);
      const error = await captureStorageDriverError(() => driver.store({ target }, [lost, ...batch('served', 3)]));
      expect([error.code, error.retryable]).toEqual(['E_BACKEND', true]);
      expect(error.message).toMatch(/CLUSTERDOWN/);
      await new Promise((r) => setTimeout(r, 100)); // let any orphaned rejection surface
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      await owner.cluster('ADDSLOTS', slot);
      await quitAll(down);
    }
  });

  it('list: SCAN on every master; conditional delete: one pipeline of EVALSHA per master', async () => {
    const driver = new RedisStorageDriver({ client, keyPrefix: 'rt-cluster-lifecycle' });
    const claims = await driver.store({ target }, batch('lifecycle', 60));
    const [objects, listed] = await measure(() => collect(driver.list()));
    expect(objects.map((o) => o.location.key).sort()).toEqual(claims.map((c) => c.claimData.key).sort());
    const perNode = listed.map((d) => d.calls.pttl ?? 0);
    expect(perNode.every((n) => n > 0)).toBe(true);
    for (const d of listed) expect(d.calls.scan).toBeGreaterThanOrEqual(1);
    const future = new Date(Date.now() + 60_000);
    await Promise.all(admins.map((a) => a.script('FLUSH')));
    // Every other object: list yields node after node, so both halves reach every master.
    const [even, odd] = [0, 1].map((r) => objects.filter((_, i) => i % 2 === r)) as [StoredObject[], StoredObject[]];
    const [first, loading] = await measure(() => driver.delete(even, { referencedBefore: future }));
    expect(first).toMatchObject({ deleted: 30, errors: [] });
    for (const d of loading) {
      // Per master: one pipeline of EVALSHA (NOSCRIPT), then one of EVAL, which caches the script.
      expect(d.calls.eval).toBe(d.calls.evalsha);
      if ((d.calls.evalsha ?? 0) > 0) expect(d.reads).toBe(2);
    }
    const [rest, cached] = await measure(() => driver.delete(odd, { referencedBefore: future }));
    expect(rest).toMatchObject({ deleted: 30, errors: [] });
    expect(cached.reduce((n, d) => n + (d.calls.evalsha ?? 0), 0)).toBe(30);
    for (const d of cached) {
      expect(d.calls.eval).toBeUndefined();
      if ((d.calls.evalsha ?? 0) > 0) expect(d.reads).toBe(1);
    }
  });

  async function ownerOf(slot: number): Promise<number> {
    const slots = await (admins[0] as Redis).cluster('SLOTS');
    const range = slots.find(([from, to]) => slot >= from && slot <= to);
    const port = range?.[2]?.[1];
    return cluster.nodes.findIndex((n) => n.port === port);
  }
});
