/**
 * The conformance suite's abort tests.
 *
 * @module
 */
import assert from 'node:assert/strict';
import type { StorageDriver } from '@x/storage-driver-core';
import { type StorageDriverClaim, StorageDriverErrorCode } from '@x/storage-driver-core';
import { assertRejectsWithCode, makePayload, pseudoRandomBytes } from '../assertions';
import { KiB, type SuiteContext } from '../context';

/** Registers the abort tests of the conformance suite (called inside its describe block). */
export function registerAbortTests<D extends StorageDriver>(ctx: SuiteContext<D>): void {
  const { it, skip, caps, create, count, itCounting } = ctx;
  it('a pre-aborted signal rejects store and retrieve with E_ABORTED', async () => {
    const d = await create();
    const claims = await d.store({}, [makePayload('abort')]);
    const ac = new AbortController();
    ac.abort(new Error('caller gave up'));
    const never = makePayload('never written');
    const before = count ? await count(d) : undefined;
    await assertRejectsWithCode(d.store({ abortSignal: ac.signal }, [never]), StorageDriverErrorCode.ABORTED);
    await assertRejectsWithCode(d.retrieve({ abortSignal: ac.signal }, claims), StorageDriverErrorCode.ABORTED);
    if (count) {
      assert.equal(await count(d), before, 'pre-aborted store must write nothing');
    } else if (caps.coreClaims) {
      const [claim] = await (await create()).store({}, [never]);
      await assertRejectsWithCode(
        d.retrieve({}, [claim as StorageDriverClaim]),
        StorageDriverErrorCode.NOT_FOUND,
        'pre-aborted store must write nothing',
      );
    }
  });
  const abortBatch = async (d: D) => {
    const n = 200;
    const payloads = Array.from({ length: n }, (_, i) => makePayload(pseudoRandomBytes(64 * KiB, 1000 + i)));
    const ac = new AbortController();
    const pending = d.store({ abortSignal: ac.signal }, payloads);
    setImmediate(() => ac.abort(new Error('sibling failed')));
    await assertRejectsWithCode(pending, StorageDriverErrorCode.ABORTED);
    return n;
  };
  it('aborting mid-batch rejects with E_ABORTED', async () => {
    await abortBatch(await create());
  });
  if (caps.batchedWrites) {
    skip('aborting mid-batch stops the work', 'capabilities.batchedWrites: one round trip per batch');
  } else {
    itCounting('aborting mid-batch stops the work', async (countObjects) => {
      const d = await create();
      const n = await abortBatch(d);
      await new Promise((r) => setTimeout(r, 200));
      const stored = await countObjects(d);
      assert.ok(stored < n, `work must stop after abort (stored ${stored} of ${n})`);
    });
  }
}
