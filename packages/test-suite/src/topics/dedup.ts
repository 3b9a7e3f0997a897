/**
 * The conformance suite's dedup tests.
 *
 * @module
 */
import assert from 'node:assert/strict';
import type { StorageDriver } from '@x/storage-driver-core';
import { makePayload, pseudoRandomBytes } from '../assertions';
import { KiB, type SuiteContext } from '../context';

/** Registers the dedup tests of the conformance suite (called inside its describe block). */
export function registerDedupTests<D extends StorageDriver>(ctx: SuiteContext<D>): void {
  const { it, create, roundTrip, itCounting } = ctx;
  it('identical payloads in one batch get identical claims', async () => {
    const d = await create();
    const p = makePayload('same bytes');
    const claims = await roundTrip(d, [p, makePayload('other'), { ...p }, p]);
    assert.deepEqual(claims[0]?.claimData, claims[2]?.claimData);
    assert.deepEqual(claims[0]?.claimData, claims[3]?.claimData);
    assert.notDeepEqual(claims[0]?.claimData, claims[1]?.claimData);
  });
  itCounting('identical payloads in one batch are stored as one object', async (countObjects) => {
    const d = await create();
    const p = makePayload('same bytes');
    await d.store({}, [p, makePayload('other'), { ...p }, p]);
    assert.equal(await countObjects(d), 2);
  });
  it('storing again gives the same claim', async () => {
    const d = await create();
    const p = makePayload('again');
    const [first] = await d.store({}, [p]);
    const [second] = await d.store({}, [p]);
    assert.deepEqual(second?.claimData, first?.claimData);
  });
  itCounting('storing again writes no new object', async (countObjects) => {
    const d = await create();
    const p = makePayload('again');
    await d.store({}, [p]);
    const before = await countObjects(d);
    await d.store({}, [p]);
    assert.equal(await countObjects(d), before);
  });
  it('50 concurrent stores of the same payload all succeed with the same claim', async () => {
    const d = await create();
    const p = makePayload(pseudoRandomBytes(64 * KiB, 50));
    const results = await Promise.all(Array.from({ length: 50 }, () => d.store({}, [p])));
    for (const r of results) assert.deepEqual(r[0]?.claimData, results[0]?.[0]?.claimData);
    await roundTrip(d, [p]);
  });
  itCounting('50 concurrent stores of the same payload leave one stored object', async (countObjects) => {
    const d = await create();
    const p = makePayload(pseudoRandomBytes(64 * KiB, 51));
    await Promise.all(Array.from({ length: 50 }, () => d.store({}, [p])));
    assert.equal(await countObjects(d), 1);
  });
}
