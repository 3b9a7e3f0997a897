/**
 * The shared conformance suite against a real S3-protocol server (moto): every `create()` gets a
 * bucket of its own; a test's buckets are deleted once its last driver is destroyed.
 */
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeEach, describe, it } from '@jest/globals';
import { StorageDriverClaim, sha256Hex } from '@x/storage-driver-core';
import { runStorageDriverConformance } from '@x/storage-driver-test-suite';
import { S3_MIN_REFRESH_AFTER, S3StorageDriver, s3MinimumDeleteAge } from '../src';
import { createBucket, deleteBucket, listKeys, makeClient } from './helpers';

const client = makeClient();
/**
 * The smallest `refreshAfter` (S3 times have 1 s resolution), so that the lifecycle group, which
 * has to wait for objects to age, waits as little as it can: objects are refreshed by a dedup hit
 * once older than 1 s, and can be deleted once older than the minimum delete age (2.25 s).
 */
const REFRESH_AFTER = S3_MIN_REFRESH_AFTER;
const MINIMUM_DELETE_AGE = s3MinimumDeleteAge(REFRESH_AFTER);
/** Every bucket the current test created, deleted after it. */
const testBuckets: string[] = [];
let live = 0;
const bucketOf = (driver: S3StorageDriver) => (driver.allowedBuckets as readonly string[])[0] as string;

/** Deletes the current test's buckets (also after a test whose only create() threw). */
async function cleanupTest(): Promise<void> {
  for (const b of testBuckets.splice(0)) await deleteBucket(client, b);
}

afterEach(async () => {
  if (live === 0) await cleanupTest();
});
afterAll(() => {
  client.destroy();
});

runStorageDriverConformance(
  { describe, it, beforeEach, afterEach },
  {
    type: 'aws.s3driver',
    defaultName: 'aws.s3driver',
    capabilities: {
      // moto accepts keys longer than real S3's 1024-byte limit: have the suite check it.
      maxClaimKeyBytes: 1024,
      lifecycle: { list: true, delete: true, deleteExpired: true, close: true, lastReferenced: 'exact' },
      // LastModified is S3's own clock, to the second; it cannot be faked, so the group waits.
      timeResolution: 1000,
      lifecycleOlderThan: MINIMUM_DELETE_AGE + 50,
    },
    async create(options) {
      const bucket = await createBucket(client, 'conf');
      testBuckets.push(bucket);
      const driver = new S3StorageDriver({ client, bucket, refreshAfter: REFRESH_AFTER, ...options });
      live++;
      return driver;
    },
    reopen: (driver) => {
      live++;
      return new S3StorageDriver({
        client: driver.client,
        bucket: bucketOf(driver),
        name: driver.name,
        refreshAfter: driver.refreshAfter,
      });
    },
    async destroy() {
      if (--live > 0) return;
      await cleanupTest();
    },
    hooks: {
      async corrupt(_driver, claim) {
        const { bucket, key } = claim.claimData as { bucket: string; key: string };
        const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        const bytes = await (out.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray();
        bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 0xff;
        await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes }));
      },
      async remove(_driver, claim) {
        const { bucket, key } = claim.claimData as { bucket: string; key: string };
        await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
      },
      async countObjects(driver) {
        return (await listKeys(client, bucketOf(driver))).length;
      },
      hostileClaims(valid) {
        const d = valid.claimData;
        const h = d.hash_value as string;
        return [
          new StorageDriverClaim({ ...d, bucket: 'another-bucket' }),
          new StorageDriverClaim({ ...d, bucket: `${d.bucket}/..` }),
          new StorageDriverClaim({ ...d, bucket: `${d.bucket}?x-id=GetObject` }),
          new StorageDriverClaim({ ...d, bucket: '..' }),
          new StorageDriverClaim({ ...d, bucket: '' }),
          new StorageDriverClaim({ ...d, key: `v0/ns/a b/wt/T/wi/I/ri/R/d/sha256/${h}` }),
          new StorageDriverClaim({ ...d, key: `v0/ns/a/wt/T/wi/I/ri/R/x/y/d/sha256/${h}` }),
          new StorageDriverClaim({ ...d, key: `v0/ns/a/wt/T/ai/I/ri/R/d/sha256/${h}` }),
          new StorageDriverClaim({ ...d, key: `v0/ns/a/wt/T/wi/I%2/ri/R/d/sha256/${h}` }),
          new StorageDriverClaim({ ...d, key: `v0/ns/a/wt/T/wi/é/ri/R/d/sha256/${h}` }),
          new StorageDriverClaim({ ...d, key: `v0/ns/a/wt/T/wi/${'x'.repeat(4100)}/ri/R/d/sha256/${h}` }),
          new StorageDriverClaim({ ...d, key: `v0/ns/a/wt/T/wi/I\r\nX-Evil: 1/ri/R/d/sha256/${h}` }),
        ];
      },
      async plantOutside(driver, bytes) {
        // The payload under a valid key in another bucket the credentials reach, and at the
        // root of the driver's own bucket.
        const other = await createBucket(client, 'outside');
        testBuckets.push(other);
        const hex = sha256Hex(bytes);
        const key = `v0/d/sha256/${hex}`;
        await client.send(new PutObjectCommand({ Bucket: other, Key: key, Body: bytes }));
        await client.send(new PutObjectCommand({ Bucket: bucketOf(driver), Key: hex, Body: bytes }));
        return [`../${other}/${key}`, `/${other}/${key}`, hex, `v0/../${hex}`, `v0/d/sha256/../../${hex}`];
      },
    },
  },
);
