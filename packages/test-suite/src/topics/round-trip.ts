/**
 * The conformance suite's round trip tests.
 *
 * @module
 */
import assert from 'node:assert/strict';
import type { Payload, StorageDriver, StorageDriverClaim } from '@x/storage-driver-core';
import { assertPayloadEqual, makePayload, pseudoRandomBytes } from '../assertions';
import { KiB, MiB, type SuiteContext } from '../context';

/** Registers the round trip tests of the conformance suite (called inside its describe block). */
export function registerRoundTripTests<D extends StorageDriver>(ctx: SuiteContext<D>): void {
  const { it, skip, caps, create, roundTrip } = ctx;
  it('empty batch → [] for store and retrieve', async () => {
    const d = await create();
    assert.deepEqual(await d.store({}, []), []);
    assert.deepEqual(await d.retrieve({}, []), []);
  });
  it('empty data, absent data, absent metadata, empty metadata', async () => {
    const d = await create();
    await roundTrip(d, [
      { metadata: { encoding: new TextEncoder().encode('binary/null') }, data: new Uint8Array(0) },
      { metadata: { encoding: new TextEncoder().encode('binary/null') } },
      { data: new Uint8Array([1, 2, 3]) },
      { metadata: {}, data: new Uint8Array([4]) },
      {},
    ]);
  });
  it('binary metadata values and unicode', async () => {
    const d = await create();
    await roundTrip(d, [
      makePayload('x', { bin: new Uint8Array([0, 255, 0, 128, 10, 13]), empty: new Uint8Array(0) }),
      makePayload('日本語 ✓ 🚀 üñí', { 'ключ 🔑': 'значение', '': 'empty key' }),
    ]);
  });
  it('0-byte and 1-byte data', async () => {
    const d = await create();
    await roundTrip(d, [
      makePayload(new Uint8Array(0)),
      makePayload(new Uint8Array([0])),
      makePayload(new Uint8Array([255])),
    ]);
  });
  it('256 KiB payload', async () => {
    const d = await create();
    await roundTrip(d, [makePayload(pseudoRandomBytes(256 * KiB, 7))]);
  });
  if (caps.largePayloads) {
    it('8 MiB payload', async () => {
      const d = await create();
      await roundTrip(d, [makePayload(pseudoRandomBytes(8 * MiB, 8))]);
    });
  } else skip('8 MiB payload', 'capabilities.largePayloads is false');
  it('100 payloads in one batch keep order and arity', async () => {
    const d = await create();
    const payloads = Array.from({ length: 100 }, (_, i) => makePayload(`payload #${i}`, { i: String(i) }));
    const claims = await roundTrip(d, payloads);
    const unique = new Set(claims.map((c) => JSON.stringify(c.claimData)));
    assert.equal(unique.size, 100, 'distinct payloads must get distinct claims');
  });
  it('retrieve in a different order and with repeats', async () => {
    const d = await create();
    const payloads = [makePayload('a'), makePayload('b'), makePayload('c')];
    const claims = await d.store({}, payloads);
    const order = [2, 0, 2, 1, 0];
    const back = await d.retrieve(
      {},
      order.map((i) => claims[i] as StorageDriverClaim),
    );
    for (const [j, p] of back.entries()) assertPayloadEqual(p, payloads[order[j] as number] as Payload);
    back[0]?.data?.fill(0);
    assertPayloadEqual(back[2] as Payload, payloads[2] as Payload, 'repeat must not share mutable bytes');
  });
  it('does not keep references to the caller’s buffers', async () => {
    const d = await create();
    const data = pseudoRandomBytes(4096, 3);
    const original = data.slice();
    const claims = await d.store({}, [makePayload(data)]);
    data.fill(0);
    const [back] = await d.retrieve({}, claims);
    assertPayloadEqual(back as Payload, makePayload(original));
  });
}
