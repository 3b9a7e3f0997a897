// The released conformance suite under node:test, against the real Redis (XSTORAGE_REDIS_URL).
import { randomUUID } from 'node:crypto';
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import { sha256Hex } from '@x/storage-driver-core';
import { runStorageDriverConformance } from '@x/storage-driver-test-suite';
import { Redis } from 'ioredis';
import { RedisHashStorageDriver } from '../src/index.js';

const client = new Redis(process.env.XSTORAGE_REDIS_URL ?? 'redis://127.0.0.1:6391');
after(() => client.disconnect());

runStorageDriverConformance(
  { describe, it, beforeEach, afterEach },
  {
    type: 'acme.redishashdriver',
    defaultName: 'redis-hash',
    create: (options) => new RedisHashStorageDriver({ ...options, client, hash: `acme-test:${randomUUID()}` }),
    reopen: (driver) => new RedisHashStorageDriver({ client, hash: driver.hash, name: driver.name }),
    destroy: async (driver) => {
      await client.del(driver.hash);
    },
    // One pipeline per batch: an abort mid-batch cannot stop the writes already sent.
    capabilities: { batchedWrites: true },
    hooks: {
      async corrupt(driver, claim) {
        const key = claim.claimData.key ?? '';
        const bytes = await client.hgetBuffer(driver.hash, key);
        if (!bytes) throw new Error(`nothing stored at ${key}`);
        bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) ^ 0xff;
        await client.hset(driver.hash, key, bytes);
      },
      async remove(driver, claim) {
        await client.hdel(driver.hash, claim.claimData.key ?? '');
      },
      countObjects: (driver) => client.hlen(driver.hash),
      async plantOutside(driver, bytes) {
        const key = `outside/${sha256Hex(bytes)}`;
        await client.hset(driver.hash, key, Buffer.from(bytes));
        return [key];
      },
    },
  },
);
