/** Interop with the official TypeScript driver, @temporalio/external-storage-s3, on the same server. */
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Payload } from '@temporalio/common';
import { StorageDriverClaim as SdkClaim } from '@temporalio/common/lib/converter/extstore';
import {
  S3StorageDriver as OfficialS3StorageDriver,
  type S3StorageDriverClient,
} from '@temporalio/external-storage-s3';
import { StorageDriverClaim, type StorageDriverTargetInfo } from '@x/storage-driver-core';
import { S3StorageDriver } from '../src';
import { bigPayload, createBucket, deleteBucket, listKeys, makeClient, payload } from './helpers';

/** The official driver's client interface implemented over a real S3Client (what its docs describe). */
function officialClient(client: S3Client): S3StorageDriverClient {
  return {
    async putObject(Bucket, Key, Body, options) {
      await client.send(new PutObjectCommand({ Bucket, Key, Body }), options);
    },
    async objectExists(Bucket, Key, options) {
      try {
        await client.send(new HeadObjectCommand({ Bucket, Key }), options);
        return true;
      } catch (e) {
        if ((e as Error).name === 'NotFound' || (e as Error).name === 'NoSuchKey') return false;
        throw e;
      }
    },
    async getObject(Bucket, Key, options) {
      const out = await client.send(new GetObjectCommand({ Bucket, Key }), options);
      return (out.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray();
    },
  };
}

const client = makeClient();
let bucket: string;
let official: OfficialS3StorageDriver;
let ours: S3StorageDriver;
beforeEach(async () => {
  bucket = await createBucket(client, 'official');
  official = new OfficialS3StorageDriver({ client: officialClient(client), bucket });
  ours = new S3StorageDriver({ client, bucket });
});
afterEach(async () => {
  await deleteBucket(client, bucket);
});
afterAll(() => client.destroy());

const RUN = '0b8e6a34-7d2f-4c1b-9e0a-1f2e3d4c5b6a';
const targets: [string, StorageDriverTargetInfo | undefined][] = [
  ['no target', undefined],
  ['workflow', { kind: 'workflow', namespace: 'default', type: 'OrderWorkflow', id: 'order-1', runId: RUN }],
  [
    'activity',
    { kind: 'activity', namespace: 'payments prod', type: 'Capture/Charge', id: 'activity id+42', runId: RUN },
  ],
  ['hostile', { kind: 'workflow', namespace: '~ns', type: "W!*'()é 日本", id: '../../etc/passwd', runId: '' }],
  ['missing values', { kind: 'activity', namespace: 'default' }],
];

describe('@temporalio/external-storage-s3 interop', () => {
  it.each(targets)('%s: same type, name, keys and bytes; its claim is read by our driver', async (_n, target) => {
    expect(ours.type).toBe(official.type);
    expect(ours.name).toBe(official.name);
    const payloads = [payload('interop'), bigPayload(300_000, 3)];
    const context = target ? { target } : {};
    const theirs = await official.store(context, payloads as Payload[]);
    const keysAfterTheirs = await listKeys(client, bucket);
    const mine = await ours.store(context, payloads);
    // Our store found their objects (same keys): nothing new written.
    expect(await listKeys(client, bucket)).toEqual(keysAfterTheirs);
    for (const [i, claim] of theirs.entries()) {
      expect(claim.claimData).toStrictEqual({
        bucket,
        key: mine[i]?.claimData.key,
        hashAlgorithm: 'sha256',
        hashValue: mine[i]?.claimData.hash_value,
      });
    }
    // Their camelCase claim, through JSON as in workflow history, is retrieved by our driver.
    const fromHistory = theirs.map((c) => new StorageDriverClaim(JSON.parse(JSON.stringify(c.claimData))));
    const back = await ours.retrieve({}, fromHistory);
    expect(back.map((p) => Buffer.from(p.data ?? []))).toEqual(payloads.map((p) => Buffer.from(p.data ?? [])));
  });

  it('objects we write are read by the official driver (given its camelCase claim spelling)', async () => {
    const payloads = [payload('ours first'), bigPayload(100_000, 9)];
    const mine = await ours.store({ target: targets[2]?.[1] }, payloads);
    // The official TS driver only reads camelCase hash fields (Python/Go/Java write and read
    // snake_case, as we do); same bucket, key and digest.
    const camel = mine.map(
      (c) =>
        new SdkClaim({
          bucket: c.claimData.bucket as string,
          key: c.claimData.key as string,
          hashAlgorithm: c.claimData.hash_algorithm as string,
          hashValue: c.claimData.hash_value as string,
        }),
    );
    const back = await official.retrieve({}, camel);
    expect(back.map((p) => Buffer.from(p.data ?? []))).toEqual(payloads.map((p) => Buffer.from(p.data ?? [])));
    // Documented limitation of the official TS driver: our snake_case claim as is is rejected.
    await expect(official.retrieve({}, mine as SdkClaim[])).rejects.toThrow(/hashAlgorithm/);
  });
});
