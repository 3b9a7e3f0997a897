/**
 * Checks shared by the fault tests: the claims a batch would get (computed without writing), and
 * "nothing torn is readable": every claim yields E_NOT_FOUND or exactly the payload stored.
 * (Backend-independent: candidates for @x/storage-driver-test-suite.)
 */
import {
  type ContentAddressedStorageDriver,
  isStorageDriverError,
  type Payload,
  type StorageDriver,
  type StorageDriverClaim,
  StorageDriverErrorCode,
} from '@x/storage-driver-core';
import { assertPayloadEqual } from '@x/storage-driver-test-suite';

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
