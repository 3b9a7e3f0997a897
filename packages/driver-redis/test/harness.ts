/**
 * The conformance harness shared by the standalone and the cluster suites.
 *
 * Isolation: every test gets its own key prefix. The suite sometimes creates a second, "fresh"
 * store inside one test and expects a claim it produced to be E_NOT_FOUND in the first driver
 * (pre-aborted store, too-large batch). A Redis claim carries the full key, prefix included, so
 * the second store must use the same prefix in a different keyspace: the first driver of a test
 * runs on the backend under test (standalone db 0, or the cluster), later ones on the standalone
 * server's databases 1, 2, ... (same prefix, other keyspace, still a real server).
 */
import { afterAll, beforeEach } from '@jest/globals';
import { StorageDriverClaim as Claim, type StorageDriverClaim, sha256Hex } from '@x/storage-driver-core';
import type { StorageDriverHarness } from '@x/storage-driver-test-suite';
import type { Cluster, Redis } from 'ioredis';
import { RedisStorageDriver, type RedisStorageDriverOptions } from '../src';
import { deleteUnder, keysUnder, quitAll, standaloneClient, uniquePrefix } from './helpers';

interface Backing {
  client: Redis | Cluster;
  prefix: string;
  planted: string[];
}

/** Builds a harness whose first driver per test runs on the client `primary()` returns. */
export function redisHarness(label: string, primary: () => Redis | Cluster): StorageDriverHarness<RedisStorageDriver> {
  const secondaries = new Map<number, Redis>();
  const backing = new Map<RedisStorageDriver, Backing>();
  let prefix = uniquePrefix(label);
  let createdInTest = 0;
  beforeEach(() => {
    prefix = uniquePrefix(label);
    createdInTest = 0;
  });
  afterAll(async () => {
    await quitAll(...secondaries.values());
  });
  const secondary = (n: number): Redis => {
    let c = secondaries.get(n);
    if (c === undefined) {
      c = standaloneClient(n);
      secondaries.set(n, c);
    }
    return c;
  };
  const make = (client: Redis | Cluster, options: Partial<RedisStorageDriverOptions>, planted: string[] = []) => {
    const driver = new RedisStorageDriver({ client, keyPrefix: prefix, ...options });
    backing.set(driver, { client, prefix: driver.keyPrefix, planted });
    return driver;
  };
  const of = (driver: RedisStorageDriver): Backing => {
    const b = backing.get(driver);
    if (!b) throw new Error('unknown driver');
    return b;
  };
  return {
    type: 'redis.redisdriver',
    defaultName: 'redis',
    capabilities: { batchedWrites: true },
    create(options) {
      const n = createdInTest++;
      return make(n === 0 ? primary() : secondary(Math.min(n, 15)), options ?? {});
    },
    reopen(driver) {
      const b = of(driver);
      return make(b.client, { keyPrefix: b.prefix, name: driver.name }, b.planted);
    },
    async destroy(driver) {
      const b = of(driver);
      backing.delete(driver);
      await deleteUnder(b.client, b.prefix);
      for (const key of b.planted.splice(0)) await b.client.unlink(key);
    },
    hooks: {
      async corrupt(driver, claim) {
        const { client } = of(driver);
        const key = claim.claimData['key'] as string;
        const bytes = await client.getBuffer(key);
        if (!bytes) throw new Error(`nothing at ${key}`);
        bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 0xff;
        await client.set(key, bytes, 'KEEPTTL');
      },
      async remove(driver, claim) {
        await of(driver).client.unlink(claim.claimData['key'] as string);
      },
      async countObjects(driver) {
        const b = of(driver);
        return (await keysUnder(b.client, b.prefix)).length;
      },
      hostileClaims(valid: StorageDriverClaim) {
        const key = valid.claimData['key'] as string;
        const rest = key.slice(key.indexOf(':v0:') + 1);
        return [
          `other-prefix:${rest}`,
          `${prefix}x:${rest}`,
          `${prefix}:${rest.split(':').join('/')}`,
          `${prefix}:${rest}:extra`,
          `${prefix}::${rest}`,
          `${prefix}:${rest.toUpperCase()}`,
          rest,
        ].map((k) => new Claim({ ...valid.claimData, key: k }));
      },
      async plantOutside(driver, bytes) {
        const b = of(driver);
        const h = sha256Hex(bytes);
        const keys = [
          `xstorage-test:outside:${b.prefix}:v0:d:sha256:${h}`,
          `${b.prefix}-outside:v0:d:sha256:${h}`,
          `${b.prefix}:v0/d/sha256/${h}`,
          `${b.prefix}:v0:d:sha256:${h}:x`,
        ];
        for (const k of keys) {
          await b.client.set(k, Buffer.from(bytes));
          b.planted.push(k);
        }
        return keys;
      },
    },
  };
}
