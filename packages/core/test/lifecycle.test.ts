/**
 * The lifecycle surface of ContentAddressedStorageDriver (DESIGN §8) that the conformance suite
 * cannot reach through a correct driver: capabilities derived from hooks, validation, the closed
 * state, hook contracts (outcome arity, error wrapping), the minimum delete age, objectIdOf.
 */
import {
  type BackendOperation,
  ContentAddressedStorageDriver,
  type ContentAddressedStorageDriverOptions,
  type DeleteEntry,
  type DeleteOutcome,
  type ListedObject,
  type ListQuery,
  lifecycleCapabilities,
  NO_LIFECYCLE_CAPABILITIES,
  parseStorageKey,
  requireClaimField,
  type StorageDriver,
  type StorageDriverCapabilities,
  StorageDriverClaim,
  StorageDriverError,
  type StorageLocation,
  type StoreItem,
} from '../src';
import { expectRejectsCode, thrown, utf8 } from './helpers';

/** Key-only driver over a Map; lifecycle hooks switched on per test. */
class Driver extends ContentAddressedStorageDriver {
  readonly type = 'test.lifecycle';
  readonly objects = new Map<string, { bytes: Uint8Array; at: number }>();
  closes = 0;
  deleteOverride: ((entries: DeleteEntry[]) => Promise<DeleteOutcome[]>) | undefined;
  declared: Partial<StorageDriverCapabilities> = { lastReferenced: 'exact' };
  minimumAge = 0;

  constructor(options: ContentAddressedStorageDriverOptions = {}) {
    super('lifecycle', options);
  }
  protected override _locate(key: string): StorageLocation {
    return { key };
  }
  protected override _claimFields(l: StorageLocation): Record<string, string> {
    return { key: l.key };
  }
  protected override _parseClaim(claimData: Record<string, string>, index: number): StorageLocation {
    const key = requireClaimField(claimData, 'key', index);
    parseStorageKey(key);
    return { key };
  }
  protected async _putIfAbsent(items: StoreItem[]): Promise<void> {
    for (const i of items) this.objects.set(i.location.key, { bytes: i.bytes, at: this.now() });
  }
  protected async _get(locations: StorageLocation[]): Promise<(Uint8Array | undefined)[]> {
    return locations.map((l) => this.objects.get(l.key)?.bytes);
  }
  protected override _capabilities(): Partial<StorageDriverCapabilities> {
    return this.declared;
  }
  protected override _minimumDeleteAge(): number {
    return this.minimumAge;
  }
  protected override async *_list(query: ListQuery): AsyncIterable<ListedObject> {
    for (const [key, { bytes, at }] of this.objects) {
      query.signal.throwIfAborted();
      yield { location: { key }, key, size: bytes.byteLength, lastReferenced: new Date(at) };
    }
  }
  protected override async _delete(
    entries: DeleteEntry[],
    options: { readonly referencedBefore: Date | undefined },
    _op: BackendOperation,
  ): Promise<DeleteOutcome[]> {
    if (this.deleteOverride) return this.deleteOverride(entries);
    return entries.map(({ location: { key } }) => {
      const o = this.objects.get(key);
      if (!o) return 'missing';
      if (options.referencedBefore && o.at >= options.referencedBefore.getTime()) return 'kept';
      this.objects.delete(key);
      return 'deleted';
    });
  }
  protected override async _close(): Promise<void> {
    this.closes++;
  }
}

/** The same driver without any lifecycle hook. */
class PlainDriver extends ContentAddressedStorageDriver {
  readonly type = 'test.plain';
  constructor() {
    super('plain');
  }
  protected override _locate(key: string): StorageLocation {
    return { key };
  }
  protected override _claimFields(l: StorageLocation): Record<string, string> {
    return { key: l.key };
  }
  protected override _parseClaim(claimData: Record<string, string>, index: number): StorageLocation {
    return { key: requireClaimField(claimData, 'key', index) };
  }
  protected async _putIfAbsent(): Promise<void> {}
  protected async _get(locations: StorageLocation[]): Promise<(Uint8Array | undefined)[]> {
    return locations.map(() => undefined);
  }
}

const payload = (text: string) => ({ metadata: { encoding: utf8('json/plain') }, data: utf8(JSON.stringify(text)) });
const collect = async <T>(it: AsyncIterable<T>) => {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
};

describe('capabilities', () => {
  it('are derived from the hooks and the declaration, frozen, and computed once', () => {
    const d = new Driver({ ttl: 1000 });
    expect(d.capabilities).toEqual({
      list: true,
      delete: true,
      deleteExpired: true,
      close: true,
      expiry: 'sweep',
      lastReferenced: 'exact',
      batchedWrites: false,
    });
    expect(Object.isFrozen(d.capabilities)).toBe(true);
    expect(d.capabilities).toBe(d.capabilities);
    expect(new Driver().capabilities.expiry).toBe('none');
    const unknownAge = new Driver();
    unknownAge.declared = {};
    expect(unknownAge.capabilities).toMatchObject({ list: true, deleteExpired: false, lastReferenced: 'none' });
  });

  it('a driver without hooks declares no lifecycle, and its lifecycle methods refuse with E_CONFIG', async () => {
    const d = new PlainDriver();
    expect(d.capabilities).toMatchObject({ list: false, delete: false, deleteExpired: false, close: true });
    await expectRejectsCode(collect(d.list()), 'E_CONFIG');
    await expectRejectsCode(d.delete(['v0/d/sha256/'.concat('a'.repeat(64))]), 'E_CONFIG');
    await expectRejectsCode(d.deleteExpired({ olderThan: 1 }), 'E_CONFIG');
  });

  it('lifecycleCapabilities reads a declared manifest, or none for a plain StorageDriver', () => {
    const plain: StorageDriver = { name: 'p', type: 'p', store: async () => [], retrieve: async () => [] };
    expect(lifecycleCapabilities(plain)).toBe(NO_LIFECYCLE_CAPABILITIES);
    expect(lifecycleCapabilities({ ...plain, capabilities: { list: true } } as StorageDriver).list).toBe(true);
    expect(lifecycleCapabilities(new Driver()).deleteExpired).toBe(true);
  });
});

describe('options', () => {
  it('validates ttl and clock with E_CONFIG', () => {
    expect(thrown(() => new Driver({ ttl: 0 }))).toMatchObject({ code: 'E_CONFIG' });
    expect(thrown(() => new Driver({ ttl: 1.5 }))).toMatchObject({ code: 'E_CONFIG' });
    expect(thrown(() => new Driver({ clock: 5 as unknown as () => number }))).toMatchObject({ code: 'E_CONFIG' });
    expect(new Driver({ ttl: 60_000 }).ttl).toBe(60_000);
  });

  it('list, delete and deleteExpired validate their options', async () => {
    const d = new Driver();
    await expectRejectsCode(collect(d.list({ olderThan: -1 })), 'E_CONFIG');
    await expectRejectsCode(collect(d.list({ prefix: 3 as unknown as string })), 'E_CONFIG');
    await expectRejectsCode(d.deleteExpired({ olderThan: 1, limit: 0 }), 'E_CONFIG');
    await expectRejectsCode(d.deleteExpired({ olderThan: 1, dryRun: 'yes' as unknown as boolean }), 'E_CONFIG');
    await expectRejectsCode(d.delete([], { referencedBefore: new Date(Number.NaN) }), 'E_CONFIG');
    await expect(d.delete('v0' as unknown as string[])).rejects.toBeInstanceOf(TypeError);
    await expect(d.delete([42 as unknown as string])).rejects.toBeInstanceOf(TypeError);
  });
});

describe('clock', () => {
  it('ages objects for list({ olderThan }) and deleteExpired without waiting', async () => {
    let now = 1_000_000;
    const d = new Driver({ clock: () => now });
    await d.store({}, [payload('a')]);
    now += 10_000;
    await d.store({}, [payload('b')]);
    expect((await collect(d.list({ olderThan: 5_000 }))).map((o) => o.lastReferenced?.getTime())).toEqual([1_000_000]);
    expect(await d.deleteExpired({ olderThan: 5_000 })).toMatchObject({ scanned: 1, removed: 1, more: false });
    expect(d.objects.size).toBe(1);
  });
});

describe('delete', () => {
  it('deduplicates targets, maps listed objects and keys to the same object, and tallies outcomes', async () => {
    const d = new Driver();
    await d.store({}, [payload('a'), payload('b')]);
    const [a, b] = await collect(d.list());
    const seen: DeleteEntry[][] = [];
    d.deleteOverride = async (entries) => {
      seen.push(entries);
      return ['deleted', new StorageDriverError('E_BACKEND', 'disk on fire')];
    };
    const r = await d.delete([a!, a!.key, b!]);
    expect(seen[0]).toHaveLength(2);
    expect(r).toEqual({
      deleted: 1,
      deletedBytes: a!.size,
      missing: 0,
      kept: 0,
      errors: [{ key: b!.key, code: 'E_BACKEND', message: 'disk on fire' }],
    });
  });

  it('a hook returning the wrong number of outcomes is a non-retryable E_BACKEND', async () => {
    const d = new Driver();
    await d.store({}, [payload('a')]);
    d.deleteOverride = async () => [];
    const e = await expectRejectsCode(d.delete((await collect(d.list())).slice(0, 1)), 'E_BACKEND');
    expect(e.retryable).toBe(false);
  });

  it('wraps a hook failure like store and retrieve do (E_BACKEND with the cause, driver name)', async () => {
    const d = new Driver();
    const boom = new Error('connection reset');
    d.deleteOverride = async () => {
      throw boom;
    };
    const e = await expectRejectsCode(d.delete([`v0/d/sha256/${'b'.repeat(64)}`]), 'E_BACKEND');
    expect([e.cause, e.driverName, e.retryable]).toEqual([boom, 'lifecycle', true]);
  });

  it('refuses a cutoff younger than the minimum delete age', async () => {
    const d = new Driver({ ttl: 60_000 });
    d.minimumAge = 30_000;
    await expectRejectsCode(d.delete([], { referencedBefore: new Date() }), 'E_CONFIG');
    await expectRejectsCode(d.deleteExpired({ olderThan: 10_000 }), 'E_CONFIG');
    await expect(d.deleteExpired()).resolves.toMatchObject({ removed: 0 });
    // olderThan alone decides, however much the clock moves between reading it and checking:
    // one millisecond short of the minimum is refused, the minimum itself is accepted.
    let t = 1_000_000_000;
    const ticking = new Driver({ clock: () => (t += 7) });
    ticking.minimumAge = 30_000;
    await expectRejectsCode(ticking.deleteExpired({ olderThan: 29_999 }), 'E_CONFIG');
    await expect(ticking.deleteExpired({ olderThan: 30_000 })).resolves.toMatchObject({ removed: 0 });
  });

  it('an invalid key target is E_INVALID_CLAIM before any delete', async () => {
    const d = new Driver();
    let calls = 0;
    d.deleteOverride = async (entries) => {
      calls++;
      return entries.map(() => 'deleted' as const);
    };
    await expectRejectsCode(d.delete([`v0/d/sha256/${'c'.repeat(64)}`, '../etc/passwd']), 'E_INVALID_CLAIM');
    expect(calls).toBe(0);
  });
});

describe('objectIdOf', () => {
  it('accepts a claim or its claimData, validates it, and matches the listed id', async () => {
    const d = new Driver();
    const [claim] = await d.store({}, [payload('a')]);
    const [listed] = await collect(d.list());
    expect(d.objectIdOf(claim!)).toBe(listed!.id);
    expect(d.objectIdOf(claim!.claimData)).toBe(listed!.id);
    expect(thrown(() => d.objectIdOf(new StorageDriverClaim({ key: '/etc/passwd' })))).toMatchObject({
      code: 'E_INVALID_CLAIM',
    });
  });
});

describe('close', () => {
  it('runs _close once however often it is called; later calls of every method are E_CONFIG', async () => {
    const d = new Driver({ ttl: 1000 });
    const [claim] = await d.store({}, [payload('a')]);
    const first = d.close();
    expect(d.close()).toBe(first);
    await first;
    expect(d.closes).toBe(1);
    for (const call of [
      () => d.store({}, [payload('b')]),
      () => d.retrieve({}, [claim!]),
      () => collect(d.list()),
      () => d.delete([]),
      () => d.deleteExpired(),
    ]) {
      const e = await expectRejectsCode(call(), 'E_CONFIG');
      expect(e.retryable).toBe(false);
      expect(e.message).toMatch(/the driver is closed/);
    }
  });
});
