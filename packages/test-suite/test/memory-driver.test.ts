import { afterEach, beforeEach, describe, it } from '@jest/globals';
import { type StorageDriverClaim, sha256Hex } from '@x/storage-driver-core';
import { InMemoryStorageDriver, runStorageDriverConformance } from '../src';

runStorageDriverConformance(
  { describe, it, beforeEach, afterEach },
  {
    type: 'memory.inmemorydriver',
    defaultName: 'memory',
    create: (options) => new InMemoryStorageDriver(options),
    reopen: (driver) => new InMemoryStorageDriver({ name: driver.name, store: driver.objects }),
    capabilities: {
      lifecycle: { list: true, delete: true, deleteExpired: true, close: true, lastReferenced: 'exact' },
      clock: true,
    },
    hooks: {
      async corrupt(driver, claim: StorageDriverClaim) {
        const key = claim.claimData['key'] as string;
        const bytes = driver.objects.get(key);
        if (!bytes) throw new Error('nothing to corrupt');
        const copy = bytes.slice();
        copy[copy.length - 1] = (copy[copy.length - 1] as number) ^ 0xff;
        driver.objects.set(key, copy);
      },
      async remove(driver, claim) {
        driver.objects.delete(claim.claimData['key'] as string);
      },
      async countObjects(driver) {
        return driver.objects.size;
      },
      async plantOutside(driver, bytes) {
        // The "outside" of a Map store: an entry under a key the spec can never produce.
        const key = `outside/${sha256Hex(bytes)}`;
        driver.objects.set(key, bytes);
        return [key];
      },
    },
  },
);
