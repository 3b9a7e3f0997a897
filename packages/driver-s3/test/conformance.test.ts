/**
 * The shared conformance suite against a real S3-protocol server (moto), one bucket per test.
 *
 * S3 claims name their bucket, so "a fresh, isolated store" for the second driver of a test
 * (the suite's probes: "the claim this payload would have had must not resolve") is modelled as
 * S3 has it: another account whose bucket has the same name. Its client goes through a loopback
 * proxy that maps the test's bucket name to a private bucket of its own, so its claims name the
 * test's bucket while its writes land elsewhere.
 */
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, beforeEach, describe, it } from '@jest/globals';
import { StorageDriverClaim, sha256Hex } from '@x/storage-driver-core';
import { runStorageDriverConformance } from '@x/storage-driver-test-suite';
import { S3StorageDriver } from '../src';
import { CountingProxy, createBucket, deleteBucket, listKeys, makeClient } from './helpers';

const client = makeClient();
let proxy: CountingProxy;
/** Access key id → [bucket name in claims, private bucket the proxy maps it to]. */
const aliases = new Map<string, [string, string]>();

/** The bucket of the current test (first driver), and every bucket to delete after it. */
let testBucket: string | undefined;
const testBuckets: string[] = [];
let live = 0;
const bucketOf = (driver: S3StorageDriver) => (driver.allowedBuckets as readonly string[])[0] as string;

beforeAll(async () => {
  proxy = await CountingProxy.start();
  proxy.rewrite = (req) => {
    const accessKey = /Credential=([^/]+)\//.exec(String(req.headers.authorization ?? ''))?.[1];
    const alias = accessKey === undefined ? undefined : aliases.get(accessKey);
    if (alias === undefined || !req.url.startsWith(`/${alias[0]}`)) return undefined;
    return `/${alias[1]}${req.url.slice(alias[0].length + 1)}`;
  };
});
/** Deletes the current test's buckets (also after a test whose only create() threw). */
async function cleanupTest(): Promise<void> {
  testBucket = undefined;
  for (const b of testBuckets.splice(0)) await deleteBucket(client, b);
}

afterEach(async () => {
  if (live === 0) await cleanupTest();
});
afterAll(async () => {
  await proxy.close();
  client.destroy();
});

runStorageDriverConformance(
  { describe, it, beforeEach, afterEach },
  {
    type: 'aws.s3driver',
    defaultName: 'aws.s3driver',
    async create(options) {
      if (testBucket === undefined) {
        testBucket = await createBucket(client, 'conf');
        testBuckets.push(testBucket);
        const driver = new S3StorageDriver({ client, bucket: testBucket, ...options });
        live++;
        return driver;
      }
      const own = await createBucket(client, 'conf-alias');
      testBuckets.push(own);
      const accessKeyId = `alias${aliases.size}`;
      aliases.set(accessKeyId, [testBucket, own]);
      const aliasClient = makeClient(proxy.endpoint, { credentials: { accessKeyId, secretAccessKey: 'x' } });
      const driver = new S3StorageDriver({ client: aliasClient, bucket: testBucket, ...options });
      live++;
      return driver;
    },
    reopen: (driver) => {
      live++;
      return new S3StorageDriver({ client: driver.client, bucket: bucketOf(driver), name: driver.name });
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
