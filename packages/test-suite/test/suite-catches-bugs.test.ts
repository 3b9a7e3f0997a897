/**
 * Meta tests: the conformance suite must fail broken drivers. Each broken variant is run
 * through the suite with a collecting runner, and specific tests must fail.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import {
  type BackendOperation,
  ContentAddressedStorageDriver,
  type ContentAddressedStorageDriverOptions,
  type DeleteEntry,
  type DeleteExpiredOptions,
  type DeleteExpiredResult,
  type DeleteOutcome,
  type Payload,
  requireClaimField,
  type StorageDriver,
  type StorageDriverClaim,
  type StorageDriverRetrieveContext,
  type StorageDriverStoreContext,
  type StorageLocation,
  type StoreItem,
  throwIfAborted,
} from '@x/storage-driver-core';
import {
  type ConformanceCapabilities,
  type ConformanceTestApi,
  type HarnessDriverOptions,
  InMemoryStorageDriver,
  runStorageDriverConformance,
  type StorageDriverHarness,
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
  extra: Pick<StorageDriverHarness<D>, 'hostileInput' | 'destroy'> & {
    capabilities?: Partial<ConformanceCapabilities>;
  } = {},
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
    ...extra,
    capabilities: { largePayloads: false, ...extra.capabilities },
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

/**
 * A filesystem driver that trusts the claim: it reads `path.join(root, claim.key)` with no
 * validation (the classic traversal bug).
 */
class PathTrustingDriver extends ContentAddressedStorageDriver {
  readonly type = 'memory.inmemorydriver';
  constructor(
    readonly root: string,
    options: ContentAddressedStorageDriverOptions = {},
  ) {
    super('memory', options);
  }
  protected override _locate(key: string): StorageLocation {
    return { key };
  }
  protected override _claimFields(l: StorageLocation): Record<string, string> {
    return { key: l.key };
  }
  protected override _parseClaim(claimData: Record<string, string>): StorageLocation {
    return { key: requireClaimField(claimData, 'key') };
  }
  protected async _putIfAbsent(items: StoreItem[], op: BackendOperation): Promise<void> {
    for (const item of items) {
      throwIfAborted(op.signal, op.driverName);
      const file = path.join(this.root, item.location.key);
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, item.bytes);
    }
  }
  protected async _get(locations: StorageLocation[]): Promise<(Uint8Array | undefined)[]> {
    return Promise.all(
      locations.map((l) =>
        // Any unreadable path is "not found": the traversal is the only bug the suite can see.
        readFile(path.join(this.root, l.key)).catch(() => undefined),
      ),
    );
  }
}

const hostileClaimsTest = /hostile input \(property-based\) › hostile claims/;
const hostileTargetsTest = /hostile input \(property-based\) › hostile target ids/;

describe('the hostile-input group (fast-check) catches broken drivers', () => {
  it('catches a driver that reads a path taken from the claim (planted sentinel outside the store)', async () => {
    const base = await mkdtemp(path.join(tmpdir(), 'hostile-meta-'));
    let n = 0;
    try {
      const failures = await runSuiteAgainst(
        (o) => new PathTrustingDriver(path.join(base, `d${n++}`, 'store'), o),
        {
          async plantOutside(driver, bytes) {
            const outside = path.join(path.dirname(driver.root), 'outside');
            await mkdir(outside, { recursive: true });
            await writeFile(path.join(outside, 'payload'), bytes);
            return ['../outside/payload'];
          },
        },
        {},
      );
      const [name] = failedMatching(failures, hostileClaimsTest);
      expect(name).toBeDefined();
      const message = failures.get(name as string) as string;
      expect(message).toMatch(/reproduce: XSTORAGE_FC_SEED=20261125 XSTORAGE_FC_PATH=[0-9:]+/);
      expect(message).toMatch(/read the sentinel planted outside the store/);
    } finally {
      await rm(base, { recursive: true, force: true, maxRetries: 5 });
    }
  });

  it('catches a driver that throws a TypeError on a claim field that is not a string', async () => {
    const failures = await runSuiteAgainst((o) => {
      const d = new InMemoryStorageDriver(o);
      return wrap(d, {
        retrieve: async (ctx, claims) => {
          // Looks at the key before the base validates the claim.
          for (const c of claims) void (c.claimData['key'] as string).startsWith('v0/');
          return d.retrieve(ctx, claims);
        },
      });
    });
    const [name] = failedMatching(failures, hostileClaimsTest);
    expect(failures.get(name as string)).toMatch(/non-StorageDriverError: TypeError/);
  });

  it('catches a driver that fails on lone surrogates in target ids (only the property finds it)', async () => {
    class UriEncoding extends InMemoryStorageDriver {
      protected override _locate(key: string, ctx?: StorageDriverStoreContext): StorageLocation {
        encodeURIComponent(ctx?.target?.id ?? ''); // URIError on a lone surrogate
        return { key };
      }
    }
    const failures = await runSuiteAgainst((o) => new UriEncoding(o));
    expect(failedMatching(failures, hostileTargetsTest)).toHaveLength(1);
    expect(failures.get(failedMatching(failures, hostileTargetsTest)[0] as string)).toMatch(/URIError/);
    // The fixed hostile ids have no lone surrogate: nothing else fails.
    expect(failures.size).toBe(1);
  });

  it('catches keys over capabilities.maxClaimKeyBytes', async () => {
    /** Writes full keys of any length (core's default falls back to the namespace digest key above 1024). */
    class FullKeysDriver extends InMemoryStorageDriver {
      protected override _maxKeyLength(): number {
        return Number.POSITIVE_INFINITY;
      }
    }
    const failures = await runSuiteAgainst(
      (o) => new FullKeysDriver(o),
      {},
      {
        capabilities: { maxClaimKeyBytes: 1024 },
      },
    );
    const [name] = failedMatching(failures, hostileTargetsTest);
    expect(failures.get(name as string)).toMatch(/over maxClaimKeyBytes 1024/);
  });

  it('hostileInput: numRuns and seed are honoured; enabled: false skips the group', async () => {
    const names: string[] = [];
    const skipped: string[] = [];
    const it = Object.assign((name: string) => names.push(name), { skip: (name: string) => skipped.push(name) });
    const api: ConformanceTestApi = { describe: (_n, fn) => fn(), it, afterEach: () => {} };
    const harness = {
      type: 't',
      defaultName: 'memory',
      create: (o?: HarnessDriverOptions) => new InMemoryStorageDriver(o),
    };
    runStorageDriverConformance(api, { ...harness, hostileInput: { numRuns: 40, seed: 7 } });
    expect(names.filter((n) => /fast-check: 40 runs, seed 7/.test(n))).toHaveLength(1);
    expect(names.filter((n) => /fast-check: 10 runs, seed 7/.test(n))).toHaveLength(1);
    names.length = 0;
    runStorageDriverConformance(api, { ...harness, hostileInput: { enabled: false } });
    expect(names.filter((n) => /fast-check/.test(n))).toHaveLength(0);
    expect(skipped.filter((n) => /hostile (claims|target ids).*enabled is false/.test(n))).toHaveLength(2);
  });
});

describe('the lifecycle group catches broken drivers', () => {
  const LIFECYCLE = {
    lifecycle: { list: true, delete: true, deleteExpired: true, close: true, lastReferenced: 'exact' as const },
    clock: true,
  };

  it('passes the correct in-memory driver with its lifecycle declared (control)', async () => {
    const failures = await runSuiteAgainst((o) => new InMemoryStorageDriver(o), {}, { capabilities: LIFECYCLE });
    expect([...failures.entries()]).toEqual([]);
  });

  it('catches a driver whose dedup hit does not refresh the last-referenced time', async () => {
    /** Writes new objects only: a store of an existing payload leaves its age alone. */
    class NoRefreshDriver extends InMemoryStorageDriver {
      protected override async _putIfAbsent(items: StoreItem[], op: BackendOperation): Promise<void> {
        await super._putIfAbsent(
          items.filter((i) => !this.objects.has(i.location.key)),
          op,
        );
      }
    }
    const failures = await runSuiteAgainst((o) => new NoRefreshDriver(o), {}, { capabilities: LIFECYCLE });
    expect(failedMatching(failures, /a dedup hit moves lastReferenced forward/)).toHaveLength(1);
    expect(failedMatching(failures, /deleteExpired while callers store and re-store/)).toHaveLength(1);
  });

  it('catches a driver whose deleteExpired ignores dryRun', async () => {
    class NoDryRunDriver extends InMemoryStorageDriver {
      override deleteExpired(options: DeleteExpiredOptions = {}): Promise<DeleteExpiredResult> {
        return super.deleteExpired({ ...options, dryRun: false });
      }
    }
    const failures = await runSuiteAgainst((o) => new NoDryRunDriver(o), {}, { capabilities: LIFECYCLE });
    expect(failures.get(failedMatching(failures, /a dry run deletes nothing/)[0] ?? '')).toMatch(
      /dry run must delete nothing|E_NOT_FOUND/,
    );
  });

  it('catches a driver whose delete ignores referencedBefore (not conditional)', async () => {
    class UnconditionalDriver extends InMemoryStorageDriver {
      protected override _delete(
        entries: DeleteEntry[],
        _options: { readonly referencedBefore: Date | undefined },
        op: BackendOperation,
      ): Promise<DeleteOutcome[]> {
        return super._delete(entries, { referencedBefore: undefined }, op);
      }
    }
    const failures = await runSuiteAgainst((o) => new UnconditionalDriver(o), {}, { capabilities: LIFECYCLE });
    expect(failedMatching(failures, /delete with referencedBefore keeps/)).toHaveLength(1);
  });

  it('catches a manifest that claims more than the harness declares, and a driver without close()', async () => {
    const failures = await runSuiteAgainst(
      (o) => new InMemoryStorageDriver(o),
      {},
      { capabilities: { ...LIFECYCLE, lifecycle: { ...LIFECYCLE.lifecycle, lastReferenced: 'partial' } } },
    );
    expect(failures.get(failedMatching(failures, /capabilities: a well-formed manifest/)[0] ?? '')).toMatch(
      /capabilities.lastReferenced is exact; the harness declares partial/,
    );
  });
});
