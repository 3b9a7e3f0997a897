/**
 * What a user writes with one driver: `@x/storage-driver-redis` and the packages its README says to
 * install (core, ioredis, @temporalio/common), from the release-test registry, through the SDK's
 * `ExternalStorage` against the real Redis. Run by scripts/release/registry-check.sh.
 */
import assert from 'node:assert/strict';
import { ExternalStorage, type Payload } from '@temporalio/common';
import { ExternalStorageRunner } from '@temporalio/common/lib/internal-non-workflow';
import { RedisStorageDriver } from '@x/storage-driver-redis';
import { Redis } from 'ioredis';

function payload(bytes: number, seed: number): Payload {
  const data = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) data[i] = (i * 31 + seed) & 0xff;
  return { metadata: { encoding: new TextEncoder().encode('binary/plain') }, data };
}

async function main(): Promise<void> {
  const client = new Redis(process.env.XSTORAGE_REDIS_URL ?? 'redis://127.0.0.1:6391');
  const keyPrefix = `x-storage-consumer-single:${process.pid}-${Date.now()}`;
  try {
    const redis = new RedisStorageDriver({ client, keyPrefix, ttl: 60_000 });
    const runner = new ExternalStorageRunner(new ExternalStorage({ drivers: [redis], payloadSizeThreshold: 1024 }));
    const payloads = [payload(100, 1), payload(300_000, 2)];
    const target = { kind: 'workflow' as const, namespace: 'default', id: 'wf-1', runId: 'run-1', type: 'Wf' };
    const stored = await runner.store(payloads, { target });
    assert.equal(stored[0]?.externalPayloads?.length ?? 0, 0, 'the small payload stays inline');
    assert.equal(stored[1]?.externalPayloads?.length, 1, 'the large payload is offloaded');
    const keys = await client.keys(`${keyPrefix}*`);
    assert.ok(keys.length >= 1, `the payload is in Redis under ${keyPrefix}`);
    const back = await runner.retrieve(stored, {});
    for (const [i, p] of back.entries())
      assert.deepEqual(Buffer.from(p.data ?? []), Buffer.from(payloads[i]?.data ?? []), `payload ${i} round trip`);
    console.log(`  ✓ redis alone: 1 inline, 1 offloaded to ${keys.length} Redis key(s); both read back`);
    if (keys.length) await client.del(...keys);
  } finally {
    client.disconnect();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
