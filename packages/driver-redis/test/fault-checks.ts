/**
 * Checks shared by the fault tests: the claims a batch would get (computed without writing), and
 * "nothing torn is readable" — every claim yields E_NOT_FOUND or exactly the payload stored, and
 * every stored value hashes to the digest its key names. (The first two are backend-independent:
 * candidates for @x/storage-driver-test-suite.)
 */
import { createHash } from 'node:crypto';
import {
  type ContentAddressedStorageDriver,
  isStorageDriverError,
  type Payload,
  type StorageDriver,
  type StorageDriverClaim,
  StorageDriverErrorCode,
} from '@x/storage-driver-core';
import { assertPayloadEqual } from '@x/storage-driver-test-suite';
import type { Redis } from 'ioredis';

/**
 * The claims `driver.store({}, payloads)` would return, computed without any I/O: the same driver
 * (its options, key layout and claim fields) with its backend write replaced by a no-op.
 */
export function expectedClaims(
  driver: ContentAddressedStorageDriver,
  payloads: Payload[],
): Promise<StorageDriverClaim[]> {
  const dryRun = Object.create(driver) as ContentAddressedStorageDriver;
  Object.defineProperty(dryRun, '_putIfAbsent', { value: async () => {} });
  return dryRun.store({}, payloads);
}

/**
 * Retrieves each claim on its own: it must be E_NOT_FOUND or exactly `payloads[i]` (anything
 * else — a wrong payload, E_INTEGRITY, another error — fails). Returns how many are present.
 */
export async function countPresentExact(
  driver: StorageDriver,
  claims: StorageDriverClaim[],
  payloads: Payload[],
): Promise<number> {
  let present = 0;
  for (const [i, claim] of claims.entries()) {
    try {
      const [back] = await driver.retrieve({}, [claim]);
      assertPayloadEqual(back as Payload, payloads[i] as Payload, `claim ${i}`);
      present++;
    } catch (e) {
      if (!isStorageDriverError(e, StorageDriverErrorCode.NOT_FOUND)) throw e;
    }
  }
  return present;
}

/** Every key under `prefix:` whose value does not hash to the sha256 its key ends with (none expected). */
export async function tornValues(admin: Redis, prefix: string): Promise<string[]> {
  const torn: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await admin.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) {
      const value = await admin.getBuffer(key);
      const digest = createHash('sha256')
        .update(value ?? Buffer.alloc(0))
        .digest('hex');
      if (!key.endsWith(`:sha256:${digest}`)) torn.push(key);
    }
  } while (cursor !== '0');
  return torn;
}
