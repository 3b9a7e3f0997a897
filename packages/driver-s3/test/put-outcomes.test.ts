/**
 * `_putIfAbsent` reports which objects were already stored (dedup hits), per item and in the
 * per-call report instrumentation reads, for each way the driver finds out: a `HeadObject`, a
 * conditional `PutObject` answered 412, the existence cache, and a refresh that finds the object
 * deleted and uploads it again. Against moto.
 */

import { DeleteObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import {
  type BackendOperation,
  type PutOutcome,
  STORAGE_OPERATION_REPORT,
  type StorageDriverClaim,
  type StorageDriverStoreContext,
  type StorageOperationReport,
  type StoreItem,
} from '@x/storage-driver-core';
import { type S3ExistenceCheck, S3StorageDriver, type S3StorageDriverOptions, type S3StorageLocation } from '../src';
import { createBucket, deleteBucket, makeClient, payload } from './helpers';

/** The driver, recording what each `_putIfAbsent` resolved to. */
class RecordingDriver extends S3StorageDriver {
  readonly outcomes: (readonly PutOutcome[])[] = [];
  protected override async _putIfAbsent(items: StoreItem<S3StorageLocation>[], op: BackendOperation) {
    const outcomes = await super._putIfAbsent(items, op);
    this.outcomes.push(outcomes);
    return outcomes;
  }
}

let client: S3Client;
let bucket: string;
beforeAll(() => {
  client = makeClient();
});
afterAll(() => {
  client?.destroy();
});
beforeEach(async () => {
  bucket = await createBucket(client, 'outcomes');
});
afterEach(async () => {
  await deleteBucket(client, bucket);
});

const recording = (options: Partial<S3StorageDriverOptions> = {}) =>
  new RecordingDriver({ client, bucket, ...options } as S3StorageDriverOptions);

/** The S3 key a claim points at. */
const keyOf = (claim: StorageDriverClaim | undefined) => claim?.claimData.key as string;

describe('put outcomes (dedup hits)', () => {
  it.each<[string, S3ExistenceCheck]>([
    ['auto (HeadObject first)', 'auto'],
    ['conditional-put (412 when it exists)', 'conditional-put'],
    ['head', 'head'],
  ])('%s: existed for objects already stored, written for new ones, in item order', async (_n, check) => {
    const driver = recording({ existenceCheck: check });
    const reports: StorageOperationReport[] = [];
    const context = {
      target: { kind: 'workflow', namespace: 'default', id: 'wf-1' },
      [STORAGE_OPERATION_REPORT]: (r: StorageOperationReport) => reports.push(r),
    } as StorageDriverStoreContext;
    const [a, b, c, d] = [payload('a'), payload('b'), payload('c'), payload('d')];

    await driver.store(context, [b, d]);
    // Distinct items in batch order: a (new), b (stored), c (new), d (stored); the second b is an
    // in-batch duplicate, uploaded once and not counted as a backend hit.
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

  it('an object another driver instance stored meanwhile is existed', async () => {
    await new S3StorageDriver({ client, bucket }).store({}, [payload('shared')]);
    const driver = recording({ existenceCheck: 'conditional-put' });
    await driver.store({}, [payload('shared'), payload('own')]);
    expect(driver.outcomes).toEqual([['existed', 'written']]);
  });

  it('a key the existence cache knows is existed without a request', async () => {
    const driver = recording({ existenceCache: {} });
    await driver.store({}, [payload('cached')]);
    await driver.store({}, [payload('cached')]);
    expect(driver.outcomes).toEqual([['written'], ['existed']]);
  });

  it('a damaged object (wrong size) is overwritten: written', async () => {
    const [claim] = await new S3StorageDriver({ client, bucket }).store({}, [payload('damaged')]);
    const key = keyOf(claim);
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: new Uint8Array(3) }));
    const driver = recording();
    await driver.store({}, [payload('damaged')]);
    expect(driver.outcomes).toEqual([['written']]);
  });

  it('an object a refresh finds deleted is uploaded again: written', async () => {
    let offset = 0;
    const driver = recording({ existenceCache: {}, refreshAfter: 60_000, clock: () => Date.now() + offset });
    const [claim] = await driver.store({}, [payload('refreshed')]);
    await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: keyOf(claim) }));
    // The cached key is now older than refreshAfter: the refresh looks it up, finds it gone and
    // uploads it again.
    offset = 120_000;
    await driver.store({}, [payload('refreshed')]);
    expect(driver.outcomes).toEqual([['written'], ['written']]);
    // Present again, so the next store (cache) counts it as stored.
    await driver.store({}, [payload('refreshed')]);
    expect(driver.outcomes[2]).toEqual(['existed']);
  });
});
