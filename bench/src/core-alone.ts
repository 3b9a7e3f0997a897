/**
 * "Core alone": a driver built on core's `ContentAddressedStorageDriver` whose backend is a plain
 * `Map` — no copy, no yield, no I/O — so a run of it measures what core itself does per batch
 * (envelope, hashing, keys, in-batch dedup, claims and their validation, integrity check,
 * decoding). The targets' notes compare every driver with its raw client plus this.
 *
 * @module
 */
import { ContentAddressedStorageDriver, type StorageLocation, type StoreItem } from '@x/storage-driver-core';
import { BENCH_MAX_PAYLOAD_SIZE, driverImpl, type Impl } from './impls';

/**
 * The backend-less driver: objects live in a `Map`, by reference. Each store replaces the previous
 * store's objects: the workloads it runs (`distinct`, `small`, `big`) read back only the batch they
 * have just stored, and a backend holds its objects outside this process, so memory stays one
 * batch's, as a driver's does.
 */
class CoreAloneDriver extends ContentAddressedStorageDriver<StorageLocation> {
  readonly type = 'bench.corealone';
  readonly objects = new Map<string, Uint8Array>();

  constructor() {
    super('core-alone', { maxPayloadSize: BENCH_MAX_PAYLOAD_SIZE });
  }

  protected async _putIfAbsent(items: StoreItem<StorageLocation>[]): Promise<void> {
    this.objects.clear();
    for (const item of items) this.objects.set(item.location.key, item.bytes);
  }

  protected async _get(locations: StorageLocation[]): Promise<(Uint8Array | undefined)[]> {
    return locations.map((l) => this.objects.get(l.key));
  }
}

/** The `core` implementation: {@link CoreAloneDriver} with the benchmark's target. */
export function coreAloneImpl(): Impl {
  const driver = new CoreAloneDriver();
  return driverImpl('core', 'core' as Impl['backend'], 'driver', driver, () => driver.close());
}
