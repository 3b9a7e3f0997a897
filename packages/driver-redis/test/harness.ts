/**
 * The conformance harness shared by the standalone and the cluster suites. Isolation: every
 * created driver gets a key prefix of its own on the backend under test (a Redis claim carries
 * its full key, prefix included); `reopen` shares its driver's prefix.
 */
import { StorageDriverClaim as Claim, type StorageDriverClaim, sha256Hex } from '@x/storage-driver-core';
import type { StorageDriverHarness } from '@x/storage-driver-test-suite';
import type { Cluster, Redis } from 'ioredis';
import { RedisStorageDriver, type RedisStorageDriverOptions } from '../src';
import { deleteUnder, keysUnder, uniquePrefix } from './helpers';

interface Backing {
  client: Redis | Cluster;
  prefix: string;
  planted: string[];
}

/** Builds a harness whose drivers run on the client `primary()` returns. */
export function redisHarness(label: string, primary: () => Redis | Cluster): StorageDriverHarness<RedisStorageDriver> {
  const backing = new Map<RedisStorageDriver, Backing>();
  const make = (client: Redis | Cluster, options: Partial<RedisStorageDriverOptions>, planted: string[] = []) => {
    const driver = new RedisStorageDriver({ client, keyPrefix: uniquePrefix(label), ...options });
    backing.set(driver, { client, prefix: driver.keyPrefix, planted });
    return driver;
  };
  const of = (driver: RedisStorageDriver): Backing => {
    const b = backing.get(driver);
    if (!b) throw new Error('unknown driver');
    return b;
  };
  return {
    type: 'redis',
    defaultName: 'redis',
    capabilities: {
      batchedWrites: true,
      // Keys written by other tools without an expiry have no known age: 'partial'.
      lifecycle: { list: true, delete: true, deleteExpired: true, close: true, lastReferenced: 'partial' },
    },
    create(options) {
      return make(primary(), options ?? {});
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
        const prefix = key.slice(0, key.indexOf(':v0:'));
        const rest = key.slice(prefix.length + 1);
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
      async age(driver, claims, ms) {
        // The age is horizon − PTTL: a shorter remaining expiry makes the key look `ms` older.
        const { client } = of(driver);
        for (const claim of claims) {
          const key = claim.claimData['key'] as string;
          const left = await client.pttl(key);
          if (left <= ms) throw new Error(`cannot age ${key} by ${ms} ms: ${left} ms left`);
          await client.pexpire(key, left - ms);
        }
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
