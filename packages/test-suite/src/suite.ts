/**
 * The conformance suite: {@link runStorageDriverConformance} registers every topic (files under
 * `topics/`, plus `lifecycle.ts` and `hostile.ts`) for one driver. Each topic's `register…Tests`
 * function is exported too, for a runner that wants one group only.
 *
 * @module
 */
import assert from 'node:assert/strict';
import {
  type Payload,
  type StorageDriver,
  StorageDriverClaim,
  type StorageDriverTargetInfo,
} from '@x/storage-driver-core';
import { assertPayloadEqual } from './assertions';
import type { SuiteContext } from './context';
import {
  type ConformanceTestApi,
  DEFAULT_CONFORMANCE_CAPABILITIES,
  type HarnessDriverOptions,
  type StorageDriverHarness,
} from './harness';
import { registerHostileInputTests } from './hostile';
import { registerLifecycleTests } from './lifecycle';
import { registerAbortTests } from './topics/abort';
import { registerDedupTests } from './topics/dedup';
import { registerErrorTests } from './topics/errors';
import { registerIdentityTests } from './topics/identity';
import { registerRoundTripTests } from './topics/round-trip';
import { registerSizeLimitTests } from './topics/size-limit';
import { registerTargetTests } from './topics/targets';

/**
 * Registers the conformance suite with `api` (your runner's `describe/it/beforeEach/afterEach`)
 * for the driver `harness` creates. Each test gets fresh drivers over an isolated store; all are
 * destroyed after the test. Set your runner's timeout to at least 60 s (8 MiB round trips).
 */
export function runStorageDriverConformance<D extends StorageDriver>(
  api: ConformanceTestApi,
  harness: StorageDriverHarness<D>,
): void {
  const caps = { ...DEFAULT_CONFORMANCE_CAPABILITIES, ...harness.capabilities };
  const hooks = harness.hooks ?? {};
  const { describe, it, afterEach } = api;
  const created: D[] = [];

  const create = async (options?: HarnessDriverOptions): Promise<D> => {
    const d = await harness.create(options);
    created.push(d);
    return d;
  };
  const reopen = async (d: D): Promise<D> => {
    assert.ok(harness.reopen);
    const r = await harness.reopen(d);
    created.push(r);
    return r;
  };
  afterEach(async () => {
    // Destroy every driver even if one destroy fails; report the first failure.
    const results = await Promise.allSettled(created.splice(0).map(async (d) => harness.destroy?.(d)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  });

  const roundTrip = async (driver: D, payloads: Payload[], target?: StorageDriverTargetInfo) => {
    const claims = await driver.store(target ? { target } : {}, payloads);
    assert.ok(Array.isArray(claims), 'store must resolve to an array');
    assert.equal(claims.length, payloads.length, 'store must return one claim per payload');
    for (const c of claims) {
      assert.ok(c && typeof c.claimData === 'object', 'claim must have claimData');
      for (const [k, v] of Object.entries(c.claimData))
        assert.equal(typeof v, 'string', `claimData.${k} must be a string`);
    }
    // Claims travel through workflow history as JSON maps.
    const fromHistory = claims.map((c) => new StorageDriverClaim(JSON.parse(JSON.stringify(c.claimData))));
    const back = await driver.retrieve({}, fromHistory);
    assert.ok(Array.isArray(back), 'retrieve must resolve to an array');
    assert.equal(back.length, payloads.length, 'retrieve must return one payload per claim');
    for (const [i, p] of back.entries()) assertPayloadEqual(p, payloads[i] as Payload, `payload ${i}`);
    return claims;
  };

  const skip = (name: string, why: string) => {
    if (typeof it.skip === 'function') it.skip(`${name} (${why})`, () => {});
    else it(`${name} (skipped: ${why})`, () => {});
  };
  const count = hooks.countObjects;
  /** Registers a test that needs `hooks.countObjects`, or a skip saying so. */
  const itCounting = (name: string, fn: (countObjects: (d: D) => Promise<number>) => Promise<void>) => {
    if (count) it(name, () => fn(count));
    else skip(name, 'hooks.countObjects not provided');
  };

  const ctx: SuiteContext<D> = {
    describe,
    it,
    skip,
    harness,
    caps,
    hooks,
    create,
    reopen,
    roundTrip,
    count,
    itCounting,
  };

  describe(`storage driver conformance: ${harness.type}`, () => {
    describe('identity', () => registerIdentityTests(ctx));
    describe('round trip', () => registerRoundTripTests(ctx));
    describe('dedup', () => registerDedupTests(ctx));
    describe('targets', () => registerTargetTests(ctx));
    describe('errors', () => registerErrorTests(ctx));
    describe('lifecycle', () => {
      registerLifecycleTests({
        it,
        skip,
        create: (options) => create(options),
        caps,
        hooks,
        stress: harness.lifecycleStress,
      });
    });
    describe('hostile input (property-based)', () => {
      registerHostileInputTests({
        it,
        skip,
        create: () => create(),
        caps,
        hooks,
        options: harness.hostileInput,
      });
    });
    describe('size limit', () => registerSizeLimitTests(ctx));
    describe('abort', () => registerAbortTests(ctx));
  });
}
