/** The driver inside the real SDK's ExternalStorage, on the standalone server and the cluster. */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  defaultPayloadConverter,
  ExternalStorage,
  type Payload,
  type StorageDriver as SdkStorageDriver,
} from '@temporalio/common';
import { ExternalStorageRunner } from '@temporalio/common/lib/internal-non-workflow/external-storage-runner';
import type { Cluster, Redis } from 'ioredis';
import { RedisStorageDriver } from '../src';
import { clusterClient, deleteUnder, keysUnder, quitAll, standaloneClient, uniquePrefix } from './helpers';

let redis: Redis;
let cluster: Cluster;
const used: [Redis | Cluster, string][] = [];
beforeAll(() => {
  redis = standaloneClient();
  cluster = clusterClient();
});
afterAll(async () => {
  for (const [client, prefix] of used) await deleteUnder(client, prefix);
  await quitAll(redis, cluster);
});

describe('with @temporalio/common ExternalStorage', () => {
  for (const kind of ['standalone', 'cluster'] as const) {
    it(`is an SDK StorageDriver and round-trips through the SDK runner (${kind})`, async () => {
      const client = kind === 'cluster' ? cluster : redis;
      const keyPrefix = uniquePrefix(`sdk-${kind}`);
      used.push([client, keyPrefix]);
      const driver: SdkStorageDriver = new RedisStorageDriver({ client, keyPrefix, ttl: 60_000 });
      const externalStorage = new ExternalStorage({ drivers: [driver], payloadSizeThreshold: 1024 });
      expect(externalStorage.getDriver('redis')).toBe(driver);
      const runner = new ExternalStorageRunner(externalStorage);

      const small = defaultPayloadConverter.toPayload('inline');
      const bigs = Array.from({ length: 12 }, (_, i) => defaultPayloadConverter.toPayload(`${i}`.repeat(5_000)));
      const target = { kind: 'workflow' as const, namespace: 'default', id: 'a/b c', runId: 'r', type: 'W' };
      const stored: Payload[] = await runner.store([small, ...bigs, bigs[0] as Payload], { target });

      expect(stored[0]).toEqual(small);
      const reference = JSON.parse(new TextDecoder().decode(stored[1]?.data ?? undefined)) as {
        driverName: string;
        claimData: Record<string, string>;
      };
      expect(reference.driverName).toBe('redis');
      expect(Object.keys(reference.claimData).sort()).toEqual(['hash_algorithm', 'hash_value', 'key']);
      expect(reference.claimData.key).toMatch(
        new RegExp(`^${keyPrefix}:v0:ns:default:wt:W:wi:a%2Fb%20c:ri:r:d:sha256:[0-9a-f]{64}$`),
      );
      expect(await keysUnder(client, keyPrefix)).toHaveLength(12);

      const back = await runner.retrieve(stored);
      expect(back.map((p) => defaultPayloadConverter.fromPayload(p))).toEqual([
        'inline',
        ...bigs.map((_, i) => `${i}`.repeat(5_000)),
        '0'.repeat(5_000),
      ]);
    });
  }
});
