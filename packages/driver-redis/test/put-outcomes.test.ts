/** `_putIfAbsent` reports which keys `SET NX` found already set (dedup hits), standalone and on the cluster. */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  type BackendOperation,
  type PutOutcome,
  STORAGE_OPERATION_REPORT,
  type StorageDriverStoreContext,
  type StorageOperationReport,
  type StoreItem,
} from '@x/storage-driver-core';
import type { Cluster, Redis } from 'ioredis';
import { RedisStorageDriver, type RedisStorageLocation } from '../src';
import {
  clusterClient,
  deleteUnder,
  payload,
  quitAll,
  standaloneClient,
  uniquePrefix,
  workflowTarget,
} from './helpers';

/** The driver, recording what each `_putIfAbsent` resolved to. */
class RecordingDriver extends RedisStorageDriver {
  readonly outcomes: (readonly PutOutcome[])[] = [];
  protected override async _putIfAbsent(items: StoreItem<RedisStorageLocation>[], op: BackendOperation) {
    const outcomes = await super._putIfAbsent(items, op);
    this.outcomes.push(outcomes);
    return outcomes;
  }
}

let standalone: Redis;
let cluster: Cluster;
const used: [Redis | Cluster, string][] = [];
beforeAll(() => {
  standalone = standaloneClient();
  cluster = clusterClient();
});
afterAll(async () => {
  for (const [client, prefix] of used) await deleteUnder(client, prefix).catch(() => {});
  await quitAll(standalone, cluster);
});

describe.each<[string, () => Redis | Cluster]>([
  ['standalone', () => standalone],
  ['cluster', () => cluster],
])('put outcomes on %s', (label, client) => {
  it.each([
    ['without a ttl', undefined],
    ['with a ttl', 3_600_000],
  ])('reports existed where SET NX answered nil, written where it wrote, in item order (%s)', async (_, ttl) => {
    const keyPrefix = uniquePrefix(`outcomes-${label}`);
    used.push([client(), keyPrefix]);
    const driver = new RecordingDriver({ client: client(), keyPrefix, ttl });
    const reports: StorageOperationReport[] = [];
    const context = {
      target: workflowTarget('wf-1'),
      [STORAGE_OPERATION_REPORT]: (r: StorageOperationReport) => reports.push(r),
    } as StorageDriverStoreContext;
    // Enough payloads to span every master of the cluster.
    const fresh = Array.from({ length: 12 }, (_, i) => payload(`fresh-${i}`));
    const stored = Array.from({ length: 12 }, (_, i) => payload(`stored-${i}`));
    await driver.store(context, stored);
    const batch = fresh.flatMap((p, i) => [p, stored[i] as (typeof stored)[number]]);
    await driver.store(context, [...batch, stored[0] as (typeof stored)[number]]);

    expect(driver.outcomes[0]).toEqual(stored.map(() => 'written'));
    expect(driver.outcomes[1]).toEqual(fresh.flatMap(() => ['written', 'existed']));
    expect(reports.map((r) => [r.payloads, r.objects, r.inBatchDuplicates, r.existing])).toEqual([
      [12, 12, 0, 0],
      [25, 24, 1, 12],
    ]);
  });
});
