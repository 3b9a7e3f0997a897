/**
 * Meta tests: the conformance suite must fail broken drivers. Each broken variant is run
 * through the suite with a collecting runner, and specific tests must fail.
 */
import { describe, expect, it } from '@jest/globals';
import type {
  BackendOperation,
  Payload,
  StorageDriver,
  StorageDriverClaim,
  StorageDriverRetrieveContext,
  StorageDriverStoreContext,
  StorageLocation,
  StoreItem,
} from '@x/storage-driver-core';
import {
  type ConformanceTestApi,
  type HarnessDriverOptions,
  InMemoryStorageDriver,
  runStorageDriverConformance,
  type StorageDriverHarnessHooks,
  type TestFn,
} from '../src';

interface Collected {
  name: string;
  fn: TestFn;
}

/** Runs the whole suite with a collecting runner; returns failed test names → messages. */
async function runSuiteAgainst<D extends StorageDriver>(
  create: (o?: HarnessDriverOptions) => D,
  hooks: StorageDriverHarnessHooks<D> = {},
): Promise<Map<string, string>> {
  const tests: Collected[] = [];
  const before: TestFn[] = [];
  const after: TestFn[] = [];
  const prefix: string[] = [];
  const api: ConformanceTestApi = {
    describe(name, fn) {
      prefix.push(name);
      fn();
      prefix.pop();
    },
    it(name, fn) {
      tests.push({ name: [...prefix.slice(1), name].join(' › '), fn });
    },
    beforeEach: (fn) => before.push(fn),
    afterEach: (fn) => after.push(fn),
  };
  runStorageDriverConformance(api, {
    type: 'memory.inmemorydriver',
    defaultName: 'memory',
    create,
    capabilities: { largePayloads: false },
    hooks,
  });
  const failures = new Map<string, string>();
  for (const t of tests) {
    try {
      for (const b of before) await b();
      await t.fn();
    } catch (e) {
      failures.set(t.name, e instanceof Error ? e.message : String(e));
    } finally {
      for (const a of after) await a();
    }
  }
  return failures;
}

/** Wraps a driver, letting a test replace store/retrieve behaviour. */
function wrap(
  inner: StorageDriver,
  overrides: {
    store?: (ctx: StorageDriverStoreContext, p: Payload[]) => Promise<StorageDriverClaim[]>;
    retrieve?: (ctx: StorageDriverRetrieveContext, c: StorageDriverClaim[]) => Promise<Payload[]>;
  },
): StorageDriver {
  return {
    name: inner.name,
    type: inner.type,
    store: overrides.store ?? ((ctx, p) => inner.store(ctx, p)),
    retrieve: overrides.retrieve ?? ((ctx, c) => inner.retrieve(ctx, c)),
  };
}

const failedMatching = (failures: Map<string, string>, pattern: RegExp) =>
  [...failures.keys()].filter((k) => pattern.test(k));

describe('the conformance suite catches broken drivers', () => {
  it('passes a correct driver (control)', async () => {
    const failures = await runSuiteAgainst((o) => new InMemoryStorageDriver(o));
    expect([...failures.entries()]).toEqual([]);
  });

  it('catches a driver that returns payloads out of order', async () => {
    const failures = await runSuiteAgainst((o) => {
      const d = new InMemoryStorageDriver(o);
      return wrap(d, { retrieve: async (ctx, c) => (await d.retrieve(ctx, c)).reverse() });
    });
    expect(failedMatching(failures, /100 payloads in one batch keep order/)).toHaveLength(1);
    expect(failedMatching(failures, /different order and with repeats/)).toHaveLength(1);
  });

  it('catches a driver that drops a claim', async () => {
    const failures = await runSuiteAgainst((o) => {
      const d = new InMemoryStorageDriver(o);
      return wrap(d, { store: async (ctx, p) => (await d.store(ctx, p)).slice(0, Math.max(0, p.length - 1)) });
    });
    expect(failedMatching(failures, /one claim per payload|round-trip/).length).toBeGreaterThan(0);
    expect(failures.size).toBeGreaterThan(10);
  });

  it('catches a driver that corrupts data on read', async () => {
    class Corrupting extends InMemoryStorageDriver {
      protected override async _get(l: StorageLocation[], op: BackendOperation) {
        const found = await super._get(l, op);
        return found.map((b) => (b ? Uint8Array.from(b, (x, i) => (i === b.length - 1 ? x ^ 1 : x)) : b));
      }
    }
    const failures = await runSuiteAgainst((o) => new Corrupting(o));
    expect(failedMatching(failures, /256 KiB payload/)).toHaveLength(1);
    expect(failedMatching(failures, /hostile id/).length).toBeGreaterThan(5);
  });

  it('catches a driver that writes even when the batch is too large', async () => {
    class EagerWriter extends InMemoryStorageDriver {
      override async store(ctx: StorageDriverStoreContext, payloads: Payload[]) {
        // Writes what fits before discovering the oversized payload.
        for (const p of payloads) await super.store(ctx, [p]).catch(() => undefined);
        return super.store(ctx, payloads);
      }
    }
    const failures = await runSuiteAgainst((o) => new EagerWriter(o));
    const suiteWithCount = await runSuiteAgainst((o) => new EagerWriter(o), {
      countObjects: async (d) => d.objects.size,
    });
    // Caught through claims alone (the rejected batch's payload must not resolve)…
    expect(failedMatching(failures, /small payloads were not stored/)).toHaveLength(1);
    // …and by object count when the harness can count.
    expect(failedMatching(suiteWithCount, /nothing of a too-large batch is written/)).toHaveLength(1);
  });

  it('catches a driver that ignores the abort signal', async () => {
    const failures = await runSuiteAgainst((o) => {
      const d = new InMemoryStorageDriver(o);
      return wrap(d, {
        store: (ctx, p) => d.store({ ...ctx, abortSignal: undefined }, p),
        retrieve: (ctx, c) => d.retrieve({ ...ctx, abortSignal: undefined }, c),
      });
    });
    expect(failedMatching(failures, /pre-aborted signal/)).toHaveLength(1);
    expect(failedMatching(failures, /aborting mid-batch/)).toHaveLength(1);
  });

  it('catches a driver that accepts hostile claims', async () => {
    class Lenient extends InMemoryStorageDriver {
      protected override _parseClaim(claimData: Record<string, string>): StorageLocation {
        return { key: claimData['key'] ?? '' };
      }
      protected override async _putIfAbsent(items: StoreItem[], op: BackendOperation) {
        return super._putIfAbsent(items, op);
      }
    }
    const failures = await runSuiteAgainst((o) => new Lenient(o));
    expect(failedMatching(failures, /hostile claim keys/)).toHaveLength(1);
    expect(failedMatching(failures, /nothing outside the store/)).toHaveLength(0); // no plantOutside hook here
  });
});
