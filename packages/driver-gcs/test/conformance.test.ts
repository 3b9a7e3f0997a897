/**
 * The shared conformance suite against fake-gcs-server: every `create()` gets a bucket of its own;
 * a test's buckets are deleted once its last driver is destroyed.
 *
 * Two runs. The suite assumes one claim field names the object (it removes or replaces that field
 * and expects the claim to fail), so:
 * - the default claim format (`all`: `key`, `object_name` and `object` together) runs everything
 *   but the claim-field tests, lifecycle group included (its stress test is the one of the report);
 * - the `go` format (`{ bucket, key }`, one name field) runs the claim-field, hostile-claim and
 *   hostile-input tests. The multi-field claim's own hostile cases are in `claims.test.ts`.
 */
import { afterAll, afterEach, beforeEach, describe, it } from '@jest/globals';
import { StorageDriverClaim, sha256Hex } from '@x/storage-driver-core';
import { runStorageDriverConformance, type StorageDriverHarness } from '@x/storage-driver-test-suite';
import { GCS_MIN_REFRESH_AFTER, type GcsClaimFormat, GcsStorageDriver, gcsMinimumDeleteAge } from '../src';
import { createBucket, deleteBucket, listNames, makeStorage } from './helpers';

const storage = makeStorage();
/**
 * The smallest `refreshAfter`, so that the lifecycle group, which has to wait for objects to age
 * (GCS sets `updated` itself; no clock or hook can age an object), waits as little as it can.
 */
const REFRESH_AFTER = GCS_MIN_REFRESH_AFTER;
const MINIMUM_DELETE_AGE = gcsMinimumDeleteAge(REFRESH_AFTER);
/** Every bucket the current test created, deleted after it. */
const testBuckets: string[] = [];
let live = 0;
const bucketOf = (driver: GcsStorageDriver) => driver.allowedBuckets[0] as string;

async function cleanupTest(): Promise<void> {
  for (const b of testBuckets.splice(0)) await deleteBucket(storage, b);
}

afterEach(async () => {
  if (live === 0) await cleanupTest();
});
afterAll(cleanupTest);

function harness(claimFormat: GcsClaimFormat): StorageDriverHarness<GcsStorageDriver> {
  return {
    type: 'gcp.gcsdriver',
    defaultName: 'gcp.gcsdriver',
    async create(options) {
      const bucket = await createBucket(storage, 'conf');
      testBuckets.push(bucket);
      const driver = new GcsStorageDriver({
        client: storage,
        bucket,
        refreshAfter: REFRESH_AFTER,
        claimFormat,
        ...options,
      });
      live++;
      return driver;
    },
    reopen: (driver) => {
      live++;
      return new GcsStorageDriver({
        client: storage,
        bucket: bucketOf(driver),
        name: driver.name,
        refreshAfter: driver.refreshAfter,
        claimFormat,
      });
    },
    async destroy() {
      if (--live > 0) return;
      await cleanupTest();
    },
    hooks: {
      async corrupt(_driver, claim) {
        const { bucket, key } = claim.claimData as { bucket: string; key: string };
        const file = storage.bucket(bucket).file(key);
        const [bytes] = await file.download();
        bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 0xff;
        await file.save(bytes, { resumable: false });
      },
      async remove(_driver, claim) {
        const { bucket, key } = claim.claimData as { bucket: string; key: string };
        await storage.bucket(bucket).file(key).delete();
      },
      async countObjects(driver) {
        return (await listNames(storage, bucketOf(driver))).length;
      },
      hostileClaims(valid) {
        const d = valid.claimData;
        const h = (d.hash_value ?? d.hashValue) as string;
        const claim = (fields: Record<string, string>) => new StorageDriverClaim({ ...d, ...fields });
        return [
          claim({ bucket: 'another-bucket' }),
          claim({ bucket: `${d.bucket}/..` }),
          claim({ bucket: `${d.bucket}?alt=media` }),
          claim({ bucket: '..' }),
          claim({ bucket: '' }),
          claim({ bucket: (d.bucket as string).toUpperCase() }),
          // Dot segments raw (the official drivers write %2E and %2E%2E).
          claim({ key: `v0/ns/./wt/T/wi/../ri/R/d/sha256/${h}` }),
          claim({ key: `v0/ns/a/wt/T/wi/../../../d/sha256/${h}` }),
          // Escapes no official driver writes: lower-case, of a kept character, malformed, of a half character.
          claim({ key: `v0/ns/a/wt/T/wi/a%2fb/ri/R/d/sha256/${h}` }),
          claim({ key: `v0/ns/a%2Eb/wt/T/wi/I/ri/R/d/sha256/${h}` }),
          claim({ key: `v0/ns/a/wt/T/wi/I%2/ri/R/d/sha256/${h}` }),
          claim({ key: `v0/ns/a/wt/T/wi/%C3/ri/R/d/sha256/${h}` }),
          // Raw characters every official driver escapes.
          claim({ key: `v0/ns/a/wt/T/wi/a#b/ri/R/d/sha256/${h}` }),
          claim({ key: `v0/ns/a/wt/T/wi/I\r\nX-Evil: 1/ri/R/d/sha256/${h}` }),
          claim({ key: `v0/ns/a/wt/T/wi/\ud800/ri/R/d/sha256/${h}` }),
          // Structure and length.
          claim({ key: `v0/ns/a/wt/T/wi/I/ri/R/x/y/d/sha256/${h}` }),
          claim({ key: `v0/wt/T/wi/I/ri/R/d/sha256/${h}` }),
          claim({ key: `v0/ns/a/wt/T/wi/${'x'.repeat(1000)}/ri/R/d/sha256/${h}` }),
          // Two name fields that disagree.
          claim({ object_name: `v0/ns/other/d/sha256/${h}` }),
          claim({ object: `v0/ns/another/d/sha256/${h}` }),
        ];
      },
      async plantOutside(driver, bytes) {
        // The payload under a valid name in another bucket the credentials reach, and at the root
        // of the driver's own bucket.
        const other = await createBucket(storage, 'outside');
        testBuckets.push(other);
        const hex = sha256Hex(bytes);
        const name = `v0/d/sha256/${hex}`;
        await storage.bucket(other).file(name).save(Buffer.from(bytes), { resumable: false });
        await storage.bucket(bucketOf(driver)).file(hex).save(Buffer.from(bytes), { resumable: false });
        return [
          `../${other}/${name}`,
          `/${other}/${name}`,
          `gs://${other}/${name}`,
          hex,
          `v0/../${hex}`,
          `v0/d/sha256/../../${hex}`,
        ];
      },
    },
  };
}

describe('claimFormat all (the default): lifecycle and everything but the one-field claim tests', () => {
  runStorageDriverConformance(
    { describe, it, beforeEach, afterEach },
    {
      ...harness('all'),
      capabilities: {
        // fake-gcs-server accepts names longer than real GCS's 1,024-byte limit: have the suite check it.
        maxClaimKeyBytes: 1024,
        coreClaims: false,
        strictClaimKeys: false,
        lifecycle: { list: true, delete: true, deleteExpired: true, close: true, lastReferenced: 'exact' },
        // `updated` is GCS's own clock (to the microsecond); it cannot be faked, so the group waits.
        timeResolution: 1,
        lifecycleOlderThan: MINIMUM_DELETE_AGE + 50,
      },
      hostileInput: { enabled: false },
    },
  );
});

describe('claimFormat go: claim fields, hostile claims and hostile input', () => {
  runStorageDriverConformance(
    { describe, it, beforeEach, afterEach },
    { ...harness('go'), capabilities: { maxClaimKeyBytes: 1024 } },
  );
});
