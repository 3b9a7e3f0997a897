/**
 * The conformance suite's targets tests.
 *
 * @module
 */
import assert from 'node:assert/strict';
import type { StorageDriver } from '@x/storage-driver-core';
import { makePayload } from '../assertions';
import type { SuiteContext } from '../context';

/** Hostile ids every target-scoped driver must round-trip. */
export const HOSTILE_IDS: readonly string[] = [
  '..',
  '.',
  '',
  '/',
  '../../../../etc/passwd',
  '%2F',
  'a/b/../c',
  'nul\u0000byte',
  'üñíçødé ✓ 日本語 🚀',
  '\\windows\\path',
  '~home',
  'x'.repeat(1000),
  'é'.repeat(1000),
];

/** Registers the targets tests of the conformance suite (called inside its describe block). */
export function registerTargetTests<D extends StorageDriver>(ctx: SuiteContext<D>): void {
  const { it, create, roundTrip } = ctx;
  const run = '7a1c1a47-9f5c-4e3a-8f5e-0b9d2f6c1e11';
  it('no target, workflow target and activity target round-trip', async () => {
    const d = await create();
    const p = makePayload('scoped');
    await roundTrip(d, [p], undefined);
    await roundTrip(d, [p], { kind: 'workflow', namespace: 'default', id: 'wf-1', runId: run, type: 'MyWorkflow' });
    await roundTrip(d, [p], { kind: 'activity', namespace: 'default', id: 'act-1', type: 'MyActivity' });
    await roundTrip(d, [p], { kind: 'workflow', namespace: 'default' });
  });
  it('the same payload for different targets gets different claims', async () => {
    const d = await create();
    const p = makePayload('per-target');
    const [a] = await d.store({ target: { kind: 'workflow', namespace: 'ns', id: 'a', runId: run, type: 'T' } }, [p]);
    const [b] = await d.store({ target: { kind: 'workflow', namespace: 'ns', id: 'b', runId: run, type: 'T' } }, [p]);
    assert.notDeepEqual(a?.claimData, b?.claimData);
  });
  for (const [i, id] of HOSTILE_IDS.entries()) {
    it(`hostile id #${i} (${JSON.stringify(id.length > 24 ? `${id.slice(0, 12)}…×${id.length}` : id)}) round-trips in every field`, async () => {
      const d = await create();
      const p = makePayload(`hostile ${i}`);
      await roundTrip(d, [p], { kind: 'workflow', namespace: id, id, runId: id, type: id });
      await roundTrip(d, [p], { kind: 'activity', namespace: id, id, runId: id, type: id });
    });
  }
}
