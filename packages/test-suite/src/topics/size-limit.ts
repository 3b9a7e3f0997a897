/**
 * The conformance suite's size limit tests.
 *
 * @module
 */
import assert from 'node:assert/strict';
import type { StorageDriver } from '@x/storage-driver-core';
import {
  encodePayload,
  isStorageDriverError,
  type StorageDriverClaim,
  StorageDriverErrorCode,
} from '@x/storage-driver-core';
import { assertRejectsWithCode, makePayload, pseudoRandomBytes } from '../assertions';
import type { SuiteContext } from '../context';

/** Registers the size limit tests of the conformance suite (called inside its describe block). */
export function registerSizeLimitTests<D extends StorageDriver>(ctx: SuiteContext<D>): void {
  const { it, skip, caps, create, roundTrip, count, itCounting } = ctx;
  if (caps.maxPayloadSize) {
    it('over maxPayloadSize → E_TOO_LARGE (not retryable), and the small payloads were not stored', async () => {
      const d = await create({ maxPayloadSize: 4096 });
      const small = makePayload(pseudoRandomBytes(100, 1));
      const empty = makePayload(new Uint8Array(0));
      const big = makePayload(pseudoRandomBytes(5000, 2));
      const err = await assertRejectsWithCode(d.store({}, [small, empty, big]), StorageDriverErrorCode.TOO_LARGE);
      assert.equal(isStorageDriverError(err) && err.retryable, false, 'E_TOO_LARGE is not retryable');
      // With countObjects, 'nothing of a too-large batch is written' below proves this by counting.
      if (caps.coreClaims && !count) {
        // The claim the small payload would have had must not resolve.
        const probe = await create();
        const [claim] = await probe.store({}, [small]);
        await assertRejectsWithCode(
          d.retrieve({}, [claim as StorageDriverClaim]),
          StorageDriverErrorCode.NOT_FOUND,
          'payload of the rejected batch',
        );
      }
      await roundTrip(d, [small]);
    });
    itCounting('nothing of a too-large batch is written', async (countObjects) => {
      const d = await create({ maxPayloadSize: 4096 });
      const before = await countObjects(d);
      await assertRejectsWithCode(
        d.store({}, [makePayload(pseudoRandomBytes(100, 5)), makePayload(pseudoRandomBytes(5000, 6))]),
        StorageDriverErrorCode.TOO_LARGE,
      );
      assert.equal(await countObjects(d), before, 'nothing of the batch may be written');
    });
    it('a payload whose serialized size equals maxPayloadSize is accepted', async () => {
      const probe = makePayload(pseudoRandomBytes(1000, 4));
      const d = await create({ maxPayloadSize: encodePayload(probe).length });
      await roundTrip(d, [probe]);
    });
  } else skip('maxPayloadSize', 'capabilities.maxPayloadSize is false');
}
