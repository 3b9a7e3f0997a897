/** RedisStorageDriver behaviour against the real standalone server (and the cluster for slots). */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { StorageDriverClaim } from '@x/storage-driver-core';
import { captureStorageDriverError } from '@x/storage-driver-test-suite';
import { SERVICES } from '@x/test-servers';
import { Cluster, Redis } from 'ioredis';
import {
  REDIS_DEFAULT_KEY_PREFIX,
  REDIS_DEFAULT_OPERATION_TIMEOUT,
  REDIS_NO_TTL_HORIZON,
  type RedisClientLike,
  RedisStorageDriver,
  redisClusterKeySlot,
} from '../src';
import {
  deleteUnder,
  errorCode,
  payload,
  quitAll,
  standaloneClient,
  text,
  uniquePrefix,
  workflowTarget,
} from './helpers';

let client: Redis;
const prefixes: string[] = [];
beforeAll(() => {
  client = standaloneClient();
});
afterAll(async () => {
  for (const p of [...prefixes, REDIS_DEFAULT_KEY_PREFIX]) await deleteUnder(client, p).catch(() => {});
  await quitAll(client);
});

/** A driver over the shared standalone server under a fresh prefix. */
function makeDriver(options: { ttl?: number; keyPrefix?: string } = {}): RedisStorageDriver {
  const keyPrefix = options.keyPrefix ?? uniquePrefix('driver');
  prefixes.push(keyPrefix);
  return new RedisStorageDriver({ client, ...options, keyPrefix });
}

/** Compile-time check: ioredis' own classes satisfy the structural client type. */
export const asClients = (redis: Redis, cluster: Cluster): RedisClientLike[] => [redis, cluster];

describe('construction', () => {
  it('has type redis, default name redis, documented defaults', () => {
    const driver = new RedisStorageDriver({ client });
    expect(driver.type).toBe('redis');
    expect(driver.name).toBe('redis');
    expect(driver.keyPrefix).toBe('temporalio:payloads');
    expect(driver.ttl).toBeUndefined();
    expect(driver.operationTimeout).toBe(REDIS_DEFAULT_OPERATION_TIMEOUT);
    expect(driver.maxPayloadSize).toBe(50 * 1024 * 1024);
    expect(driver.ownsClient).toBe(false);
    expect(asClients(client, client as unknown as Cluster)).toHaveLength(2);
  });

  it('rejects invalid options with E_CONFIG', async () => {
    const bad: unknown[] = [
      undefined,
      null,
      {},
      { client: {} },
      { client: 'redis://x' },
      { client, keyPrefix: '' },
      { client, keyPrefix: 'ends-with:' },
      { client, keyPrefix: 'ctl\n' },
      { client, keyPrefix: 'x'.repeat(1025) },
      { client, keyPrefix: 42 },
      { client, ttl: 0 },
      { client, ttl: 1.5 },
      { client, ttl: '1000' },
      { client, operationTimeout: 0 },
      { client, operationTimeout: -1 },
      { client, operationTimeout: 2 ** 31 },
      { client, maxPayloadSize: 512 * 1024 * 1024 + 1 },
      { client, name: '' },
    ];
    for (const options of bad) {
      expect(await errorCode(async () => new RedisStorageDriver(options as never))).toBe('E_CONFIG');
    }
    expect(await errorCode(async () => RedisStorageDriver.fromUrl(''))).toBe('E_CONFIG');
    expect(await errorCode(async () => RedisStorageDriver.fromClusterNodes([]))).toBe('E_CONFIG');
    expect(await errorCode(async () => RedisStorageDriver.fromUrl(SERVICES.redisUrl, { keyPrefix: 'a:' }))).toBe(
      'E_CONFIG',
    );
  });
});

describe('keys and values', () => {
  it('test vector: the exact Redis key and value for a target and payload', async () => {
    const driver = makeDriver({ keyPrefix: REDIS_DEFAULT_KEY_PREFIX });
    const target = workflowTarget('order+123=abc', {
      namespace: 'payments prod',
      type: 'ChargeWorkflow',
      runId: '5f3c1e2a-run',
    });
    const [claim] = await driver.store({ target }, [payload('hello')]);
    const key =
      'temporalio:payloads:v0:ns:payments%20prod:wt:ChargeWorkflow:wi:order%2B123%3Dabc:ri:5f3c1e2a-run:d:sha256:' +
      '1b8435174847de88db3a8c5a764295d62add152743b3a9a730796a4c090caf8c';
    expect(claim?.claimData).toEqual({
      key,
      hash_algorithm: 'sha256',
      hash_value: '1b8435174847de88db3a8c5a764295d62add152743b3a9a730796a4c090caf8c',
    });
    // The value is the Payload protobuf, byte for byte.
    expect((await client.getBuffer(key))?.toString('hex')).toBe(
      '0a160a08656e636f64696e67120a6a736f6e2f706c61696e12072268656c6c6f22',
    );
    expect(driver.redisKey(`v0/d/sha256/${'ab'.repeat(32)}`)).toBe(
      `temporalio:payloads:v0:d:sha256:${'ab'.repeat(32)}`,
    );
    const [none] = await driver.store({}, [payload('hello')]);
    expect(none?.claimData.key).toBe(`temporalio:payloads:v0:d:sha256:${claim?.claimData.hash_value}`);
  });

  it('stores every byte value binary-safe (Buffers, never strings)', async () => {
    const driver = makeDriver();
    const bytes = new Uint8Array(512).map((_, i) => i % 256);
    const p = { metadata: { 'x-bin': new Uint8Array([0xff, 0xfe, 0x00, 0xc3]) }, data: bytes };
    const [claim] = await driver.store({}, [p]);
    const [back] = await driver.retrieve({}, [claim as StorageDriverClaim]);
    expect(Buffer.from(back?.data ?? [])).toEqual(Buffer.from(bytes));
    expect(Buffer.from(back?.metadata?.['x-bin'] ?? [])).toEqual(Buffer.from([0xff, 0xfe, 0x00, 0xc3]));
  });

  it('a missing key → E_NOT_FOUND naming the key', async () => {
    const driver = makeDriver();
    const [claim] = await driver.store({}, [payload('soon gone')]);
    const key = claim?.claimData.key as string;
    await client.unlink(key);
    const error = await captureStorageDriverError(() => driver.retrieve({}, [claim as StorageDriverClaim]));
    expect(error.code).toBe('E_NOT_FOUND');
    expect(error.retryable).toBe(false);
    expect(error.key).toBe(key);
    expect(error.message).toContain(key);
  });

  it('rejects a claim under another prefix, and reads the other SDK spelling of a segment', async () => {
    const a = makeDriver();
    const b = makeDriver();
    const [claim] = await a.store({ target: workflowTarget('x~y') }, [payload('p')]);
    expect(claim?.claimData.key).toContain(':wi:x%7Ey:');
    expect(await errorCode(() => b.retrieve({}, [claim as StorageDriverClaim]))).toBe('E_INVALID_CLAIM');
    // Python's quote() leaves "~" raw: such a claim is valid; it names another Redis key.
    const raw = String(claim?.claimData.key).replace('x%7Ey', 'x~y');
    await client.set(raw, (await client.getBuffer(claim?.claimData.key as string)) as Buffer);
    const [back] = await a.retrieve({}, [new StorageDriverClaim({ ...claim?.claimData, key: raw })]);
    expect(text(back)).toBe('"p"');
  });
});

describe('TTL', () => {
  const pttl = (claim: StorageDriverClaim | undefined) => client.pttl(claim?.claimData.key as string);

  it('sets PX ttl; the payload expires and then retrieve → E_NOT_FOUND', async () => {
    const driver = makeDriver({ ttl: 300 });
    const [claim] = await driver.store({}, [payload('expiring')]);
    const left = await pttl(claim);
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThanOrEqual(300);
    const deadline = Date.now() + 10_000;
    while ((await client.exists(claim?.claimData.key as string)) === 1 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(await errorCode(() => driver.retrieve({}, [claim as StorageDriverClaim]))).toBe('E_NOT_FOUND');
  });

  it('a dedup hit extends the expiry to at least ttl from now', async () => {
    const driver = makeDriver({ ttl: 600_000 });
    const [claim] = await driver.store({}, [payload('extend me')]);
    await client.pexpire(claim?.claimData.key as string, 1000); // about to expire
    const [again] = await driver.store({}, [payload('extend me')]);
    expect(again).toEqual(claim);
    expect(await pttl(claim)).toBeGreaterThan(590_000);
  });

  it('a dedup hit never shortens a longer expiry, nor adds one to a persistent key', async () => {
    const prefix = uniquePrefix('ttl');
    const long = makeDriver({ ttl: 3_600_000, keyPrefix: prefix });
    const short = makeDriver({ ttl: 5_000, keyPrefix: prefix });
    const [claim] = await long.store({}, [payload('long')]);
    await short.store({}, [payload('long')]);
    expect(await pttl(claim)).toBeGreaterThan(3_500_000);
    await client.persist(claim?.claimData.key as string);
    await short.store({}, [payload('long')]);
    expect(await pttl(claim)).toBe(-1);
  });

  it('without ttl a payload expires 100 years after its last reference, and a dedup hit dates any key', async () => {
    const prefix = uniquePrefix('nottl');
    const forever = makeDriver({ keyPrefix: prefix });
    const [claim] = await forever.store({}, [payload('forever')]);
    const key = claim?.claimData.key as string;
    const horizon = (await pttl(claim)) as number;
    expect(horizon).toBeGreaterThan(REDIS_NO_TTL_HORIZON - 60_000);
    expect(horizon).toBeLessThanOrEqual(REDIS_NO_TTL_HORIZON);
    expect(REDIS_NO_TTL_HORIZON).toBe(36_525 * 86_400_000);
    // A shorter expiry (another driver's ttl) or none at all (another tool): a dedup hit sets the horizon.
    for (const shorten of [() => client.pexpire(key, 5_000), () => client.persist(key)]) {
      await shorten();
      await forever.store({}, [payload('forever')]);
      expect(await pttl(claim)).toBeGreaterThan(REDIS_NO_TTL_HORIZON - 60_000);
    }
  });
});

describe('errors', () => {
  it('a plain Redis client on a cluster node → E_CONFIG (MOVED) telling to use a Cluster', async () => {
    const node = SERVICES.redisClusterNodes[0] as { host: string; port: number };
    const plain = new Redis(node.port, node.host);
    const keyPrefix = uniquePrefix('moved');
    try {
      const driver = new RedisStorageDriver({ client: plain, keyPrefix });
      const payloads = Array.from({ length: 12 }, (_, i) => payload(`moved ${i}`));
      const error = await captureStorageDriverError(() => driver.store({}, payloads));
      expect(error.code).toBe('E_CONFIG');
      expect(error.message).toMatch(/ioredis Cluster/);
    } finally {
      const cluster = new Cluster([...SERVICES.redisClusterNodes]);
      await deleteUnder(cluster, keyPrefix); // the keys the node owned were written
      await quitAll(plain, cluster);
    }
  });
  it('concurrent first calls on a Cluster that has no slot map yet share one wait (one node error listener)', async () => {
    const cluster = new Cluster([...SERVICES.redisClusterNodes], { lazyConnect: true });
    const keyPrefix = uniquePrefix('first-calls');
    try {
      expect(cluster.slots.length).toBe(0);
      const driver = new RedisStorageDriver({ client: cluster, keyPrefix });
      const calls = Array.from({ length: 24 }, (_, i) => driver.store({}, [payload(`first call ${i}`)]));
      await new Promise((resolve) => setImmediate(resolve));
      expect(cluster.listenerCount('node error')).toBe(1); // 24 before the fix: a warning past 10
      const claims = (await Promise.all(calls)).flat();
      expect(claims).toHaveLength(24);
      expect(cluster.listenerCount('node error')).toBe(0);
      const back = await driver.retrieve({}, claims);
      expect(back.map((p) => Buffer.from(p.data ?? []).toString())).toEqual(
        Array.from({ length: 24 }, (_, i) => JSON.stringify(`first call ${i}`)),
      );
    } finally {
      await deleteUnder(cluster, keyPrefix);
      await quitAll(cluster);
    }
  });
  it('a plain Redis client on a cluster node: a multi-slot retrieve (CROSSSLOT) → E_CONFIG too', async () => {
    const node = SERVICES.redisClusterNodes[0] as { host: string; port: number };
    const plain = new Redis(node.port, node.host);
    const cluster = new Cluster([...SERVICES.redisClusterNodes]);
    const keyPrefix = uniquePrefix('crossslot');
    try {
      const stored = new RedisStorageDriver({ client: cluster, keyPrefix });
      const claims = await stored.store({}, [payload('slot a'), payload('slot b'), payload('slot c')]);
      const slots = new Set(claims.map((c) => redisClusterKeySlot(c.claimData.key as string)));
      expect(slots.size).toBe(3);
      const error = await captureStorageDriverError(() =>
        new RedisStorageDriver({ client: plain, keyPrefix }).retrieve({}, claims),
      );
      expect([error.code, error.retryable]).toEqual(['E_CONFIG', false]);
      expect(error.message).toMatch(/ioredis Cluster/);
    } finally {
      await deleteUnder(cluster, keyPrefix);
      await quitAll(plain, cluster);
    }
  });
  it('a server older than Redis 7.0 (PEXPIRE … GT refused) → E_CONFIG naming the version, not retryable', async () => {
    // Redis 6.2 answers `PEXPIRE k ms GT` with "wrong number of arguments"; Redis 7 gives the same
    // reply to a PEXPIRE with a missing argument, so the real server's error object is used here.
    const reply = await client.call('pexpire', 'only-a-key').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(String(reply)).toMatch(/wrong number of arguments for 'pexpire'/i);
    const driver = new RedisStorageDriver({ client, keyPrefix: uniquePrefix('old-server') });
    const wrap = (driver as unknown as { _wrapError(e: unknown, op: { kind: string }): Error })._wrapError.bind(driver);
    const error = wrap(reply, { kind: 'store' }) as Error & { code: string; retryable: boolean };
    expect([error.code, error.retryable]).toEqual(['E_CONFIG', false]);
    expect(error.message).toMatch(/Redis 7\.0 or later/);
  });
});

describe('redisClusterKeySlot', () => {
  it('matches the server’s CLUSTER KEYSLOT (with and without hash tags)', async () => {
    const node = SERVICES.redisClusterNodes[0] as { host: string; port: number };
    const admin = new Redis(node.port, node.host);
    try {
      const keys = [
        'foo',
        'bar',
        '123456789',
        '{user1}.a',
        'a{}b',
        '{}',
        'x{y',
        'é',
        'temporalio:payloads:v0:d:sha256:00',
      ];
      for (const key of keys) expect(redisClusterKeySlot(key)).toBe(await admin.cluster('KEYSLOT', key));
    } finally {
      await quitAll(admin);
    }
  });
});

describe('owned clients', () => {
  it('fromUrl creates, uses and closes its own client; an injected client is never closed', async () => {
    const keyPrefix = uniquePrefix('owned');
    prefixes.push(keyPrefix);
    const driver = RedisStorageDriver.fromUrl(SERVICES.redisUrl, { keyPrefix, ttl: 60_000, name: 'owned' });
    expect(driver.ownsClient).toBe(true);
    const claims = await driver.store({}, [payload('owned')]);
    expect(text((await driver.retrieve({}, claims))[0])).toBe('"owned"');
    await driver.close();
    await driver.close();
    expect(driver.client.status).toBe('end');
    // A closed driver can never succeed again: E_CONFIG, not a retryable E_BACKEND (as Postgres).
    for (const call of [() => driver.retrieve({}, claims), () => driver.store({}, [payload('late')])]) {
      const error = await captureStorageDriverError(call);
      expect(error.code).toBe('E_CONFIG');
      expect(error.retryable).toBe(false);
      expect(error.message).toMatch(/driver is closed/);
    }
    // An injected client is never closed; the driver over it is (close() is the driver's end of life).
    const injected = makeDriver();
    await injected.close();
    expect(client.status).toBe('ready');
    expect(await client.ping()).toBe('PONG');
    expect(await errorCode(() => injected.store({}, [payload('after close')]))).toBe('E_CONFIG');
  });

  it('fromClusterNodes works against the cluster and closes its client', async () => {
    const keyPrefix = uniquePrefix('owned-cluster');
    const driver = RedisStorageDriver.fromClusterNodes(SERVICES.redisClusterNodes, { keyPrefix });
    const payloads = Array.from({ length: 30 }, (_, i) => payload(`cluster ${i}`));
    const claims = await driver.store({}, payloads);
    expect((await driver.retrieve({}, claims)).map(text)).toEqual(payloads.map(text));
    await driver.close();
    expect(driver.client.status).toBe('end');
    const cleanup = new Cluster([...SERVICES.redisClusterNodes]);
    await deleteUnder(cleanup, keyPrefix);
    await quitAll(cleanup);
  });
});
