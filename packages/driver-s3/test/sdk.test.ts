/** The driver inside the real SDK's ExternalStorage (the runner the client and worker use). */
import {
  defaultPayloadConverter,
  ExternalStorage,
  type Payload,
  type StorageDriver as SdkStorageDriver,
} from '@temporalio/common';
import { ExternalStorageRunner } from '@temporalio/common/lib/internal-non-workflow/external-storage-runner';
import { S3StorageDriver } from '../src';
import { createBucket, deleteBucket, listKeys, makeClient } from './helpers';

const client = makeClient();
let bucket: string;
beforeEach(async () => {
  bucket = await createBucket(client, 'sdk');
});
afterEach(async () => {
  await deleteBucket(client, bucket);
});
afterAll(() => client.destroy());

it('is an SDK StorageDriver and round-trips through the SDK runner', async () => {
  const driver: SdkStorageDriver = new S3StorageDriver({ client, bucket });
  const externalStorage = new ExternalStorage({ drivers: [driver], payloadSizeThreshold: 1024 });
  expect(externalStorage.getDriver('aws.s3driver')).toBe(driver);
  const runner = new ExternalStorageRunner(externalStorage);
  const small = defaultPayloadConverter.toPayload('inline');
  const big = defaultPayloadConverter.toPayload('x'.repeat(10_000));
  const target = { kind: 'workflow' as const, namespace: 'default', id: '../../etc', runId: 'r', type: 'W' };
  const stored: Payload[] = await runner.store([small, big, big], { target });
  expect(stored[0]).toEqual(small);
  const reference = JSON.parse(new TextDecoder().decode(stored[1]?.data ?? undefined)) as {
    driverName: string;
    claimData: Record<string, string>;
  };
  expect(reference.driverName).toBe('aws.s3driver');
  expect(Object.keys(reference.claimData).sort()).toEqual(['bucket', 'hash_algorithm', 'hash_value', 'key']);
  expect(reference.claimData.key).toMatch(/^v0\/ns\/default\/wt\/W\/wi\/\.\.%2F\.\.%2Fetc\/ri\/r\/d\/sha256\//);
  expect(await listKeys(client, bucket)).toHaveLength(1);
  const back = await runner.retrieve(stored);
  expect(back.map((p) => defaultPayloadConverter.fromPayload(p))).toEqual([
    'inline',
    'x'.repeat(10_000),
    'x'.repeat(10_000),
  ]);
});
