/**
 * A driver written against `@temporalio/common`'s own `StorageDriver` interface — not core's base
 * class — passes the conformance suite. It uses only core's free helpers, as a third-party
 * author might, and is typed as the SDK's interface to prove the contracts line up.
 */
import { afterEach, beforeEach, describe, it } from '@jest/globals';
import type {
  Payload,
  StorageDriver,
  StorageDriverRetrieveContext,
  StorageDriverStoreContext,
} from '@temporalio/common';
import { StorageDriverClaim } from '@temporalio/common';
import {
  buildStorageKey,
  decodePayload,
  encodedPayloadSize,
  encodePayload,
  hashClaimFields,
  parseStorageKey,
  readClaimData,
  readClaimHash,
  requireClaimField,
  StorageDriverError,
  sha256Hex,
  throwIfAborted,
  validateDriverName,
} from '@x/storage-driver-core';
import { runStorageDriverConformance } from '../src';

class MapDriver implements StorageDriver {
  readonly type = 'example.mapdriver';
  readonly name: string;
  readonly objects: Map<string, Uint8Array>;
  private readonly maxPayloadSize: number;

  constructor(options: { name?: string; maxPayloadSize?: number; objects?: Map<string, Uint8Array> } = {}) {
    this.name = validateDriverName(options.name ?? 'map');
    this.maxPayloadSize = options.maxPayloadSize ?? 50 * 1024 * 1024;
    this.objects = options.objects ?? new Map();
  }

  async store(context: StorageDriverStoreContext, payloads: Payload[]): Promise<StorageDriverClaim[]> {
    if (!Array.isArray(payloads)) throw new TypeError('payloads must be an array');
    if (payloads.length === 0) return [];
    throwIfAborted(context.abortSignal, this.name);
    for (const [index, p] of payloads.entries()) {
      if (encodedPayloadSize(p) > this.maxPayloadSize) {
        throw new StorageDriverError('E_TOO_LARGE', `payload ${index} too large`, { driverName: this.name, index });
      }
    }
    const encoded = payloads.map((p) => {
      const bytes = encodePayload(p);
      const hash = sha256Hex(bytes);
      return { bytes, hash, key: buildStorageKey(context.target, hash) };
    });
    for (const e of encoded) {
      await new Promise((r) => setImmediate(r));
      throwIfAborted(context.abortSignal, this.name);
      if (!this.objects.has(e.key)) this.objects.set(e.key, e.bytes);
    }
    return encoded.map((e) => new StorageDriverClaim({ key: e.key, ...hashClaimFields(e.hash) }));
  }

  async retrieve(context: StorageDriverRetrieveContext, claims: StorageDriverClaim[]): Promise<Payload[]> {
    if (!Array.isArray(claims)) throw new TypeError('claims must be an array');
    if (claims.length === 0) return [];
    throwIfAborted(context.abortSignal, this.name);
    const parsed = claims.map((c, i) => {
      const data = readClaimData(c, i);
      const hash = readClaimHash(data, i);
      const key = requireClaimField(data, 'key', i);
      parseStorageKey(key);
      return { key, hash };
    });
    await new Promise((r) => setImmediate(r));
    throwIfAborted(context.abortSignal, this.name);
    return parsed.map(({ key, hash }) => {
      const bytes = this.objects.get(key);
      if (!bytes) throw new StorageDriverError('E_NOT_FOUND', `no object at ${key}`, { driverName: this.name, key });
      if (sha256Hex(bytes) !== hash) throw new StorageDriverError('E_INTEGRITY', `hash mismatch at ${key}`, { key });
      return decodePayload(bytes.slice());
    });
  }
}

runStorageDriverConformance(
  { describe, it, beforeEach, afterEach },
  {
    type: 'example.mapdriver',
    defaultName: 'map',
    create: (options) => new MapDriver(options),
    reopen: (d) => new MapDriver({ name: d.name, objects: d.objects }),
    hooks: {
      countObjects: async (d) => d.objects.size,
      // The "outside" of a Map store: an entry under a key the spec can never produce.
      plantOutside: async (d, bytes) => {
        const key = `outside/${sha256Hex(bytes)}`;
        d.objects.set(key, bytes);
        return [key];
      },
      remove: async (d, claim) => {
        d.objects.delete(claim.claimData['key'] as string);
      },
      corrupt: async (d, claim) => {
        const key = claim.claimData['key'] as string;
        d.objects.set(key, new Uint8Array([0x12, 0x01, 0x00]));
      },
    },
  },
);
