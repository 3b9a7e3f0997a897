/**
 * The conformance suite's identity tests.
 *
 * @module
 */
import assert from 'node:assert/strict';
import type { StorageDriver } from '@x/storage-driver-core';
import { StorageDriverErrorCode } from '@x/storage-driver-core';
import { assertRejectsWithCode, makePayload } from '../assertions';
import type { SuiteContext } from '../context';

/** Registers the identity tests of the conformance suite (called inside its describe block). */
export function registerIdentityTests<D extends StorageDriver>(ctx: SuiteContext<D>): void {
  const { it, skip, harness, caps, create, roundTrip } = ctx;
  it('has the declared type and default name', async () => {
    const d = await create();
    assert.equal(d.type, harness.type);
    assert.equal(d.name, harness.defaultName);
    assert.ok(d.name.length > 0 && d.type.length > 0);
  });
  if (caps.customName) {
    it('accepts a custom name and keeps its type', async () => {
      const d = await create({ name: 'custom-instance-7' });
      assert.equal(d.name, 'custom-instance-7');
      assert.equal(d.type, harness.type);
      await roundTrip(d, [makePayload('named')]);
    });
    if (caps.coreClaims) {
      it('rejects an invalid name with E_CONFIG', async () => {
        for (const name of ['', 'bad\u0000name', 'x'.repeat(257)]) {
          await assertRejectsWithCode(
            Promise.resolve().then(() => create({ name })),
            StorageDriverErrorCode.CONFIG,
            `name ${JSON.stringify(name.slice(0, 20))}`,
          );
        }
      });
    }
  } else skip('accepts a custom name', 'capabilities.customName is false');
}
