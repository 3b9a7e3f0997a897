/**
 * An in-memory reference driver built on core's content-addressed base. It passes the
 * conformance suite and serves as the smallest complete example of a driver.
 *
 * @module
 */
import {
  type BackendOperation,
  ContentAddressedStorageDriver,
  type ContentAddressedStorageDriverOptions,
  type DeleteEntry,
  type DeleteOutcome,
  type ListedObject,
  type ListQuery,
  type StorageDriverCapabilities,
  type StorageLocation,
  type StoreItem,
  throwIfAborted,
} from '@x/storage-driver-core';

/** The backing store of {@link InMemoryStorageDriver}; share one between instances to share data. */
export type InMemoryStore = Map<string, Uint8Array>;

/** Last-referenced times (clock milliseconds) per key, one map per store (so instances sharing a store share them). */
const referencedTimes = new WeakMap<InMemoryStore, Map<string, number>>();

const nextTick = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Options of {@link InMemoryStorageDriver}. */
export interface InMemoryStorageDriverOptions extends ContentAddressedStorageDriverOptions {
  /** Backing map. Default: a new empty `Map` owned by this instance. */
  store?: InMemoryStore;
}

/**
 * Keeps stored objects in a `Map` keyed by the core storage key. For tests and examples only:
 * nothing survives the process, and nothing expires by itself. The reference implementation of
 * the lifecycle hooks: every store (first write or dedup hit) records the clock's time as the
 * object's last-referenced time; `list`, conditional `delete` and `deleteExpired` work from it.
 *
 * - `type`: `memory.inmemorydriver`; default `name`: `memory`.
 * - Claim: `{ key, hash_algorithm, hash_value }`.
 */
export class InMemoryStorageDriver extends ContentAddressedStorageDriver<StorageLocation> {
  /** Implementation id. */
  readonly type = 'memory.inmemorydriver';
  /** The backing map (exposed so tests can inspect or corrupt it). */
  readonly objects: InMemoryStore;

  /** @throws StorageDriverError `E_CONFIG` for an invalid `name` or `maxPayloadSize`. */
  constructor(options: InMemoryStorageDriverOptions = {}) {
    super('memory', options);
    this.objects = options.store ?? new Map();
  }

  // A key-only backend: the base class's default `_locate`, `_claimFields` and `_parseClaim`
  // (claims `{ key }` holding a canonical storage key) are all it needs, so it writes two hooks.

  protected async _putIfAbsent(items: StoreItem[], op: BackendOperation): Promise<void> {
    for (const item of items) {
      // Yield between objects, like a real backend would, so aborts take effect mid-batch.
      await nextTick();
      throwIfAborted(op.signal, op.driverName);
      const key = item.location.key;
      if (!this.objects.has(key)) this.objects.set(key, item.bytes.slice());
      // First write or dedup hit: either way the object was just referenced.
      this.#referenced().set(key, this.now());
    }
  }

  protected async _get(locations: StorageLocation[], op: BackendOperation): Promise<(Uint8Array | undefined)[]> {
    await nextTick();
    throwIfAborted(op.signal, op.driverName);
    return locations.map((l) => this.objects.get(l.key)?.slice());
  }

  protected override _capabilities(): Partial<StorageDriverCapabilities> {
    return { lastReferenced: 'exact' };
  }

  protected override async *_list(query: ListQuery): AsyncIterable<ListedObject> {
    const times = this.#referenced();
    let n = 0;
    for (const key of [...this.objects.keys()]) {
      if (++n % 256 === 0) await nextTick(); // pages, as a backend would
      throwIfAborted(query.signal);
      const bytes = this.objects.get(key);
      if (bytes === undefined || (query.prefix !== undefined && !key.startsWith(query.prefix))) continue;
      const t = times.get(key);
      yield {
        location: { key },
        key,
        size: bytes.byteLength,
        lastReferenced: t === undefined ? undefined : new Date(t),
      };
    }
  }

  protected override async _delete(
    entries: DeleteEntry[],
    options: { readonly referencedBefore: Date | undefined },
    op: BackendOperation,
  ): Promise<DeleteOutcome[]> {
    await nextTick();
    throwIfAborted(op.signal, op.driverName);
    const times = this.#referenced();
    const before = options.referencedBefore?.getTime();
    // Check and delete with no await in between: atomic with respect to stores.
    return entries.map(({ location: { key } }) => {
      if (!this.objects.has(key)) return 'missing';
      const t = times.get(key);
      if (before !== undefined && (t === undefined || t >= before)) return 'kept';
      this.objects.delete(key);
      times.delete(key);
      return 'deleted';
    });
  }

  #referenced(): Map<string, number> {
    let times = referencedTimes.get(this.objects);
    if (times === undefined) {
      times = new Map();
      referencedTimes.set(this.objects, times);
    }
    return times;
  }
}
