/** The store statement answers which rows were already stored (dedup hits), per item and in reports. */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import {
  STORAGE_OPERATION_REPORT,
  type StorageDriverStoreContext,
  type StorageOperationReport,
} from '@x/storage-driver-core';
import type { Pool } from 'pg';
import type { PostgresStorageDriverOptions } from '../src';
import { dropSchema, makePool, payload, RecordingDriver, uniqueSchema } from './helpers';

let pool: Pool;
let schema: string;
beforeAll(() => {
  pool = makePool();
});
afterAll(async () => {
  await pool.end();
});
beforeEach(() => {
  schema = uniqueSchema('outcomes');
});
afterEach(async () => {
  await dropSchema(pool, schema);
});

async function recordingDriver(options: Partial<PostgresStorageDriverOptions> = {}): Promise<RecordingDriver> {
  const driver = new RecordingDriver({ pool, schema, ...options });
  await driver.ensureSchema();
  return driver;
}

describe('put outcomes (dedup hits)', () => {
  it.each([
    // The server's clock: a dedup hit updates last_referenced (the row's xmax is then set).
    ['the server clock (the row is updated)', undefined],
    // A fixed clock: the update's WHERE skips the row, which RETURNING then leaves out.
    ['a fixed clock (the update is skipped)', () => 1_700_000_000_000],
  ])('reports existed for rows already stored, written for new ones, in item order, with %s', async (_, clock) => {
    const driver = await recordingDriver(clock === undefined ? {} : { clock });
    const reports: StorageOperationReport[] = [];
    const context = {
      [STORAGE_OPERATION_REPORT]: (r: StorageOperationReport) => reports.push(r),
    } as StorageDriverStoreContext;
    // Items are written sorted by key (hash order), not in batch order: positions must map back.
    const fresh = Array.from({ length: 10 }, (_, i) => payload(`fresh-${i}`));
    const stored = Array.from({ length: 10 }, (_, i) => payload(`stored-${i}`));
    await driver.store(context, stored);
    const batch = fresh.flatMap((p, i) => [stored[i] as (typeof stored)[number], p]);
    await driver.store(context, batch);

    expect(driver.outcomes[0]).toEqual(stored.map(() => 'written'));
    expect(driver.outcomes[1]).toEqual(fresh.flatMap(() => ['existed', 'written']));
    expect(reports.map((r) => [r.payloads, r.objects, r.existing])).toEqual([
      [10, 10, 0],
      [20, 20, 10],
    ]);
  });
});
