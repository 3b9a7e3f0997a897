/**
 * What a user writes: three bundled drivers (Redis, S3, PostgreSQL) and the filesystem one, installed
 * from the release-test registry by npm, pnpm or yarn next to their peers from the npm registry,
 * composed into the SDK's `ExternalStorage` with core's selectors and no adapter, type-checked with
 * strict settings and run against the real servers (scripts/services.sh). Run by
 * scripts/release/registry-check.sh.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import { ExternalStorage, type Payload, type StorageDriver } from '@temporalio/common';
import { ExternalStorageRunner } from '@temporalio/common/lib/internal-non-workflow';
import { isStorageDriverError, StorageDriverErrorCode, selectBySize, selectByTarget } from '@x/storage-driver-core';
import { FsStorageDriver } from '@x/storage-driver-fs';
import { PostgresStorageDriver } from '@x/storage-driver-postgres';
import { RedisStorageDriver } from '@x/storage-driver-redis';
import { S3StorageDriver } from '@x/storage-driver-s3';
import { Redis } from 'ioredis';
import pg from 'pg';

const env = (name: string, fallback: string): string => process.env[name] ?? fallback;
const run = `consumer-${process.pid}-${Date.now()}`;

function payload(bytes: number, seed: number): Payload {
  const data = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) data[i] = (i * 31 + seed) & 0xff;
  return { metadata: { encoding: new TextEncoder().encode('binary/plain') }, data };
}

async function main(): Promise<void> {
  const redisClient = new Redis(env('XSTORAGE_REDIS_URL', 'redis://127.0.0.1:6391'), { lazyConnect: true });
  const pool = new pg.Pool({
    connectionString: env('XSTORAGE_POSTGRES_URL', 'postgres://xstorage:xstorage-secret@127.0.0.1:5442/xstorage'),
  });
  const s3Client = new S3Client({
    endpoint: env('XSTORAGE_S3_ENDPOINT', 'http://127.0.0.1:5011'),
    forcePathStyle: true,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
  const bucket = run.toLowerCase();
  const schema = run.replace(/-/g, '_');
  const root = await mkdtemp(path.join(tmpdir(), 'x-storage-consumer-'));
  try {
    await s3Client.send(new CreateBucketCommand({ Bucket: bucket }));

    // Injected clients, straight into the SDK: these assignments are the "no adapter" check.
    const redis = new RedisStorageDriver({ client: redisClient, keyPrefix: `x-storage-consumer:${run}`, ttl: 60_000 });
    const s3 = new S3StorageDriver({ client: s3Client, bucket });
    const postgres = new PostgresStorageDriver({ pool, schema });
    const fs = new FsStorageDriver({ root });
    await postgres.ensureSchema();
    const drivers: StorageDriver[] = [redis, s3, postgres, fs];

    const bySize = selectBySize([{ below: 64 * 1024, use: redis }, { use: s3 }]);
    const selector = selectByTarget({
      rules: [
        { namespace: 'audit', use: postgres },
        { namespace: 'local', use: fs },
      ],
      fallback: bySize,
    });
    const externalStorage = new ExternalStorage({
      drivers,
      driverSelector: selector,
      payloadSizeThreshold: 1024,
    });
    const runner = new ExternalStorageRunner(externalStorage);

    const cases: { namespace: string; sizes: number[]; expect: string[] }[] = [
      { namespace: 'default', sizes: [100, 4096, 300_000], expect: ['inline', 'redis', 'aws.s3driver'] },
      { namespace: 'audit', sizes: [8192], expect: ['postgres'] },
      { namespace: 'local', sizes: [8192], expect: ['fs'] },
    ];
    for (const c of cases) {
      const payloads = c.sizes.map((n, i) => payload(n, i));
      const target = { kind: 'workflow' as const, namespace: c.namespace, id: 'wf-1', runId: 'run-1', type: 'Wf' };
      const stored = await runner.store(payloads, { target });
      const where = stored.map((p) => {
        if (p.externalPayloads?.length) return JSON.parse(new TextDecoder().decode(p.data ?? undefined)).driverName;
        return 'inline';
      });
      assert.deepEqual(where, c.expect, `routing for namespace ${c.namespace}`);
      const back = await runner.retrieve(stored, {});
      for (const [i, p] of back.entries()) {
        assert.deepEqual(Buffer.from(p.data ?? []), Buffer.from(payloads[i]?.data ?? []), `payload ${i} round trip`);
      }
      console.log(`  ✓ ${c.namespace}: ${where.join(', ')}; every payload read back`);
    }

    // A forged claim is a coded error through the SDK too.
    const [ref] = await runner.store([payload(5000, 9)], {});
    assert.ok(ref?.data);
    const forged = JSON.parse(new TextDecoder().decode(ref.data));
    forged.claimData.key = `${forged.claimData.key}x`;
    const bad = { ...ref, data: new TextEncoder().encode(JSON.stringify(forged)) };
    const error = await runner.retrieve([bad], {}).then(
      () => undefined,
      (e: unknown) => e,
    );
    const coded = [error, (error as { cause?: unknown })?.cause].find((e) => isStorageDriverError(e));
    assert.ok(coded && isStorageDriverError(coded), `expected a StorageDriverError, got ${String(error)}`);
    assert.ok(
      coded.code === StorageDriverErrorCode.INVALID_CLAIM || coded.code === StorageDriverErrorCode.NOT_FOUND,
      `forged claim gave ${coded.code}`,
    );
    console.log(`  ✓ forged claim → ${coded.code}`);
  } finally {
    const listed = await s3Client.send(new ListObjectsV2Command({ Bucket: bucket })).catch(() => undefined);
    for (const o of listed?.Contents ?? [])
      await s3Client.send(new DeleteObjectCommand({ Bucket: bucket, Key: o.Key }));
    await s3Client.send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => {});
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => {});
    await pool.end();
    redisClient.disconnect();
    s3Client.destroy();
    await rm(root, { recursive: true, force: true });
  }
}

main().then(
  () => console.log('  ✓ composed: Redis, S3, PostgreSQL and fs drivers through one ExternalStorage'),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
