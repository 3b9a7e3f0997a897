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
  parseStorageKey,
  requireClaimField,
  type StorageLocation,
  type StoreItem,
  throwIfAborted,
} from '@x/storage-driver-core';

/** The backing store of {@link InMemoryStorageDriver}; share one between instances to share data. */
export type InMemoryStore = Map<string, Uint8Array>;

/** Options of {@link InMemoryStorageDriver}. */
export interface InMemoryStorageDriverOptions extends ContentAddressedStorageDriverOptions {
  /** Backing map. Default: a new empty `Map` owned by this instance. */
  store?: InMemoryStore;
}

/**
 * Keeps stored objects in a `Map` keyed by the core storage key. For tests and examples only:
 * nothing survives the process, and there is no expiry.
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

  protected _locate(key: string): StorageLocation {
    return { key };
  }

  protected _claimFields(location: StorageLocation): Record<string, string> {
    return { key: location.key };
  }

  protected _parseClaim(claimData: Record<string, string>, index: number): StorageLocation {
    const key = requireClaimField(claimData, 'key', index);
    parseStorageKey(key);
    return { key };
  }

  protected async _putIfAbsent(items: StoreItem[], op: BackendOperation): Promise<void> {
    for (const item of items) {
      // Yield between objects, like a real backend would, so aborts take effect mid-batch.
      await new Promise<void>((resolve) => setImmediate(resolve));
      throwIfAborted(op.signal, op.driverName);
      if (!this.objects.has(item.location.key)) this.objects.set(item.location.key, item.bytes.slice());
    }
  }

  protected async _get(locations: StorageLocation[], op: BackendOperation): Promise<(Uint8Array | undefined)[]> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    throwIfAborted(op.signal, op.driverName);
    return locations.map((l) => this.objects.get(l.key)?.slice());
  }
}
