/**
 * A third-party driver as the root README's "Writing a third-party driver" describes it: extend
 * core's `ContentAddressedStorageDriver` and implement the two hooks. Objects live as fields of one
 * Redis hash (`HSETNX` to write if absent, `HMGET` to read), a layout no bundled driver uses.
 */
import {
  type BackendOperation,
  ContentAddressedStorageDriver,
  type ContentAddressedStorageDriverOptions,
  type StorageLocation,
  type StoreItem,
} from '@x/storage-driver-core';
import type { Redis } from 'ioredis';

export interface RedisHashStorageDriverOptions extends ContentAddressedStorageDriverOptions {
  /** An ioredis client; the driver never closes it. */
  client: Redis;
  /** The Redis key of the hash that holds every object of this store. */
  hash: string;
}

export class RedisHashStorageDriver extends ContentAddressedStorageDriver {
  readonly type = 'acme.redishashdriver';
  readonly client: Redis;
  readonly hash: string;

  constructor(options: RedisHashStorageDriverOptions) {
    super('redis-hash', options);
    this.client = options.client;
    this.hash = options.hash;
  }

  protected override async _putIfAbsent(items: StoreItem[], op: BackendOperation): Promise<void> {
    op.signal.throwIfAborted();
    const pipeline = this.client.pipeline();
    for (const item of items) pipeline.hsetnx(this.hash, item.location.key, Buffer.from(item.bytes));
    for (const [error] of (await pipeline.exec()) ?? []) if (error) throw error;
  }

  protected override async _get(
    locations: StorageLocation[],
    op: BackendOperation,
  ): Promise<(Uint8Array | undefined)[]> {
    op.signal.throwIfAborted();
    if (locations.length === 0) return [];
    const values = await this.client.hmgetBuffer(this.hash, ...locations.map((l) => l.key));
    return values.map((v) => v ?? undefined);
  }
}
