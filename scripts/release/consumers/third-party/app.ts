/**
 * What a user writes with a third-party driver: `@acme/storage-driver-redis-hash` (published by
 * scripts/release/registry-check.sh from scripts/release/third-party-driver, built against the
 * released core) composed with the bundled S3 driver by size, through the SDK's `ExternalStorage`
 * against the real Redis and S3 servers.
 */
import assert from 'node:assert/strict';
import { RedisHashStorageDriver } from '@acme/storage-driver-redis-hash';
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import { ExternalStorage, type Payload } from '@temporalio/common';
import { ExternalStorageRunner } from '@temporalio/common/lib/internal-non-workflow';
import { selectBySize } from '@x/storage-driver-core';
import { S3StorageDriver } from '@x/storage-driver-s3';
import { Redis } from 'ioredis';

function payload(bytes: number, seed: number): Payload {
  const data = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) data[i] = (i * 31 + seed) & 0xff;
  return { metadata: { encoding: new TextEncoder().encode('binary/plain') }, data };
}

async function main(): Promise<void> {
  const run = `consumer-third-party-${process.pid}-${Date.now()}`;
  const redis = new Redis(process.env.XSTORAGE_REDIS_URL ?? 'redis://127.0.0.1:6391');
  const s3Client = new S3Client({
    endpoint: process.env.XSTORAGE_S3_ENDPOINT ?? 'http://127.0.0.1:5011',
    forcePathStyle: true,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
  const bucket = run.toLowerCase();
  try {
    await s3Client.send(new CreateBucketCommand({ Bucket: bucket }));
    const acme = new RedisHashStorageDriver({ client: redis, hash: `x-storage:${run}` });
    const s3 = new S3StorageDriver({ client: s3Client, bucket });
    const selector = selectBySize([{ below: 64 * 1024, use: acme }, { use: s3 }]);
    const runner = new ExternalStorageRunner(
      new ExternalStorage({ drivers: selector.drivers, driverSelector: selector, payloadSizeThreshold: 1024 }),
    );
    const payloads = [payload(100, 1), payload(8192, 2), payload(300_000, 3)];
    const stored = await runner.store(payloads, {});
    const where = stored.map((p) =>
      p.externalPayloads?.length ? JSON.parse(new TextDecoder().decode(p.data ?? undefined)).driverName : 'inline',
    );
    assert.deepEqual(where, ['inline', 'redis-hash', 'aws.s3driver']);
    assert.equal(await redis.hlen(`x-storage:${run}`), 1, 'one object in the third-party store');
    const back = await runner.retrieve(stored, {});
    for (const [i, p] of back.entries())
      assert.deepEqual(Buffer.from(p.data ?? []), Buffer.from(payloads[i]?.data ?? []), `payload ${i} round trip`);
    console.log(`  ✓ third-party next to S3: ${where.join(', ')}; every payload read back`);
  } finally {
    await redis.del(`x-storage:${run}`).catch(() => 0);
    const listed = await s3Client.send(new ListObjectsV2Command({ Bucket: bucket })).catch(() => undefined);
    for (const o of listed?.Contents ?? [])
      await s3Client.send(new DeleteObjectCommand({ Bucket: bucket, Key: o.Key }));
    await s3Client.send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => {});
    redis.disconnect();
    s3Client.destroy();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
