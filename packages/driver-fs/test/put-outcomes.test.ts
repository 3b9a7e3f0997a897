/** `_putIfAbsent` reports which files were already in place (dedup hits), per item and in reports. */

import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import {
  type BackendOperation,
  type PutOutcome,
  STORAGE_OPERATION_REPORT,
  type StorageDriverStoreContext,
  type StorageOperationReport,
  type StoreItem,
} from '@x/storage-driver-core';
import { FsStorageDriver, type FsStorageLocation } from '../src';
import { cleanup, makeTempDir, payload, workflowTarget } from './helpers';

/** The driver, recording what each `_putIfAbsent` resolved to. */
class RecordingDriver extends FsStorageDriver {
  readonly outcomes: (readonly PutOutcome[])[] = [];
  protected override async _putIfAbsent(items: StoreItem<FsStorageLocation>[], op: BackendOperation) {
    const outcomes = await super._putIfAbsent(items, op);
    this.outcomes.push(outcomes);
    return outcomes;
  }
}

let dir: string | undefined;
beforeEach(async () => {
  dir = await makeTempDir('fs-put-outcomes-');
});
afterEach(async () => {
  await cleanup(dir);
});

describe('put outcomes (dedup hits)', () => {
  it('reports existed for files already in place, written for new ones, in item order', async () => {
    const driver = new RecordingDriver({ root: path.join(dir as string, 'store') });
    const reports: StorageOperationReport[] = [];
    const context = {
      target: workflowTarget('wf-1'),
      [STORAGE_OPERATION_REPORT]: (r: StorageOperationReport) => reports.push(r),
    } as StorageDriverStoreContext;
    const [a, b, c, d] = [payload('a'), payload('b'), payload('c'), payload('d')];

    await driver.store(context, [b, d]);
    // Distinct items in batch order: a (new), b (stored), c (new), d (stored); the second b is an
    // in-batch duplicate, written once and not counted as a backend hit.
    await driver.store(context, [a, b, c, b, d]);

    expect(driver.outcomes).toEqual([
      ['written', 'written'],
      ['written', 'existed', 'written', 'existed'],
    ]);
    expect(reports.map((r) => [r.payloads, r.objects, r.inBatchDuplicates, r.existing])).toEqual([
      [2, 2, 0, 0],
      [5, 4, 1, 2],
    ]);
  });

  it('counts a file another driver instance stored meanwhile as existed', async () => {
    const root = path.join(dir as string, 'store');
    const other = new FsStorageDriver({ root });
    const driver = new RecordingDriver({ root });
    await other.store({}, [payload('shared')]);
    await driver.store({}, [payload('shared'), payload('own')]);
    expect(driver.outcomes).toEqual([['existed', 'written']]);
  });
});
