// The conformance suite under Node's built-in test runner (node:test), against the built
// packages: proves the suite is runner-agnostic (it only needs describe/it/afterEach and uses
// it.skip where available). Run: node --test packages/test-suite/test-node/
import { afterEach, beforeEach, describe, it } from 'node:test';
import { sha256Hex } from '@x/storage-driver-core';
import { InMemoryStorageDriver, runStorageDriverConformance } from '@x/storage-driver-test-suite';

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
      async corrupt(driver, claim) {
        const key = claim.claimData.key;
        const bytes = driver.objects.get(key).slice();
        bytes[bytes.length - 1] ^= 0xff;
        driver.objects.set(key, bytes);
      },
      async remove(driver, claim) {
        driver.objects.delete(claim.claimData.key);
      },
      countObjects: async (driver) => driver.objects.size,
      // The "outside" of a Map store: an entry under a key the spec can never produce.
      async plantOutside(driver, bytes) {
        const key = `outside/${sha256Hex(bytes)}`;
        driver.objects.set(key, bytes);
        return [key];
      },
    },
  },
);
