/**
 * The soak's checks catch what they claim to: drivers that return the wrong bytes, lose payloads or
 * leak memory fail the soak (in-memory drivers, so these run without servers), and the ledger and
 * fingerprint behave as documented.
 */
import { describe, expect, it } from '@jest/globals';
import {
  type Payload,
  type StorageDriver,
  StorageDriverClaim,
  type StorageDriverRetrieveContext,
  type StorageDriverStoreContext,
} from '@x/storage-driver-core';
import { InMemoryStorageDriver, makePayload } from '@x/storage-driver-test-suite';
import { createRng, Ledger, payloadFingerprint, runSoakOn, type SoakBackend, type SoakOptions } from '../src';

/** A backend around an in-memory driver; `wrap` decorates the driver (the fault under test). */
function memoryBackend(wrap: (inner: InMemoryStorageDriver) => StorageDriver): () => Promise<SoakBackend> {
  return async () => {
    const inner = new InMemoryStorageDriver();
    return {
      driver: wrap(inner),
      location: 'memory',
      countObjects: async () => inner.objects.size,
      inProcessBytes: () => [...inner.objects.values()].reduce((n, bytes) => n + bytes.byteLength, 0),
      async close() {
        inner.objects.clear();
        return true;
      },
    };
  };
}

/** Delegates to `inner`, with overridable store/retrieve. */
class Decorated implements StorageDriver {
  readonly name: string;
  readonly type: string;
  calls = 0;
  constructor(readonly inner: InMemoryStorageDriver) {
    this.name = inner.name;
    this.type = inner.type;
  }
  store(ctx: StorageDriverStoreContext, payloads: Payload[]): Promise<StorageDriverClaim[]> {
    return this.inner.store(ctx, payloads);
  }
  retrieve(ctx: StorageDriverRetrieveContext, claims: StorageDriverClaim[]): Promise<Payload[]> {
    return this.inner.retrieve(ctx, claims);
  }
}

const short: Partial<SoakOptions> = { durationMs: 1_500, warmupMs: 300, concurrency: 8, seed: 3 };

describe('soak checks', () => {
  it('a healthy driver passes', async () => {
    const r = await runSoakOn(
      'memory',
      memoryBackend((inner) => inner),
      short,
    );
    expect(r.failures).toEqual([]);
    expect(r.passed).toBe(true);
    expect(r.verified).toBe(r.distinctClaims);
    expect(r.objects).toBe(r.distinctClaims);
    expect(r.dedupHits).toBeGreaterThan(0);
    expect(r.inBatchDuplicates).toBeGreaterThan(0);
  });

  it('a driver that returns the right objects in the wrong order fails on integrity', async () => {
    // Each object still matches its own hash, so only the soak's own ledger can notice.
    class Swapping extends Decorated {
      override async retrieve(ctx: StorageDriverRetrieveContext, claims: StorageDriverClaim[]) {
        const got = await this.inner.retrieve(ctx, claims);
        return ++this.calls % 5 === 0 ? got.reverse() : got;
      }
    }
    const r = await runSoakOn(
      'swapping',
      memoryBackend((inner) => new Swapping(inner)),
      short,
    );
    expect(r.integrityFailures).toBeGreaterThan(0);
    expect(r.integritySamples.join('\n')).toMatch(/differs|returned content/);
    expect(r.errors).toBe(0);
    expect(r.passed).toBe(false);
  });

  it('a driver that acknowledges writes it never made fails with lost payloads', async () => {
    // Every 7th store goes to a scratch store: valid claims, but the objects are not in the backend.
    class Losing extends Decorated {
      readonly scratch = new InMemoryStorageDriver();
      override async store(ctx: StorageDriverStoreContext, payloads: Payload[]) {
        return ++this.calls % 7 === 0 ? this.scratch.store(ctx, payloads) : this.inner.store(ctx, payloads);
      }
    }
    const r = await runSoakOn(
      'losing',
      memoryBackend((inner) => new Losing(inner)),
      short,
    );
    expect(r.lost).toBeGreaterThan(0);
    expect(r.verified + r.lost).toBe(r.distinctClaims);
    expect(r.objects).toBe(r.distinctClaims - r.lost);
    expect(r.failures.join('\n')).toMatch(/lost payload/);
    expect(r.passed).toBe(false);
  });

  it('a driver that leaks memory per call fails the flat-heap check', async () => {
    const retained: number[][] = [];
    class Leaking extends Decorated {
      override async store(ctx: StorageDriverStoreContext, payloads: Payload[]) {
        // ≥ 512 KiB of V8 heap per call (a packed array of 64 Ki numbers), never freed.
        retained.push(new Array<number>(64 * 1024).fill(++this.calls));
        return this.inner.store(ctx, payloads);
      }
    }
    const r = await runSoakOn(
      'leaking',
      memoryBackend((inner) => new Leaking(inner)),
      // One reading after warm-up and one at the end: no forced GC in between to slow the callers.
      { ...short, durationMs: 2_500, checkpoints: 1, heapBoundBytes: 4 * 1024 * 1024 },
    );
    expect(r.memory.flat).toBe(false);
    expect(r.memory.heapGrowth).toBeGreaterThan(4 * 1024 * 1024);
    expect(r.failures.join('\n')).toMatch(/heap grew/);
    retained.length = 0;
  });

  it('a driver that retains payload bytes per call fails the flat-memory check', async () => {
    // Payload bytes live in ArrayBuffers, outside the V8 heap: 256 KiB per call, never freed,
    // costs the heap only a small wrapper object, so a heap-only check would not notice.
    const retained: Uint8Array[] = [];
    class Hoarding extends Decorated {
      override async store(ctx: StorageDriverStoreContext, payloads: Payload[]) {
        retained.push(new Uint8Array(256 * 1024).fill(++this.calls & 0xff));
        return this.inner.store(ctx, payloads);
      }
    }
    const r = await runSoakOn(
      'hoarding',
      memoryBackend((inner) => new Hoarding(inner)),
      { ...short, durationMs: 2_500, checkpoints: 1, arrayBufferBoundBytes: 16 * 1024 * 1024 },
    );
    expect(retained.length * 256 * 1024).toBeGreaterThan(32 * 1024 * 1024);
    expect(r.memory.flat).toBe(false);
    expect(r.failures.join('\n')).toMatch(/memory grew/);
    retained.length = 0;
  });

  it('any error fails the run and is reported with its code', async () => {
    class Failing extends Decorated {
      override async retrieve(ctx: StorageDriverRetrieveContext, claims: StorageDriverClaim[]) {
        if (++this.calls % 10 === 0) {
          return this.inner.retrieve(ctx, [new StorageDriverClaim({ key: 'not a key', hash_algorithm: 'sha256' })]);
        }
        return this.inner.retrieve(ctx, claims);
      }
    }
    const r = await runSoakOn(
      'failing',
      memoryBackend((inner) => new Failing(inner)),
      short,
    );
    expect(r.errors).toBeGreaterThan(0);
    expect(Object.keys(r.errorCodes)).toEqual(['E_INVALID_CLAIM']);
    expect(r.errorSamples[0]).toMatchObject({ op: 'retrieve', code: 'E_INVALID_CLAIM', retryable: false });
    expect(r.passed).toBe(false);
  });
});

describe('ledger and fingerprint', () => {
  it('the fingerprint ignores metadata order and catches a single changed byte', () => {
    const a = makePayload(new Uint8Array([1, 2, 3]), { b: 'x', a: 'y' });
    const b: Payload = { metadata: { a: a.metadata?.a as Uint8Array, ...a.metadata }, data: new Uint8Array([1, 2, 3]) };
    expect(payloadFingerprint(b)).toBe(payloadFingerprint(a));
    expect(payloadFingerprint(makePayload(new Uint8Array([1, 2, 4]), { b: 'x', a: 'y' }))).not.toBe(
      payloadFingerprint(a),
    );
    expect(payloadFingerprint({ metadata: a.metadata, data: null })).toBe(
      payloadFingerprint({ metadata: a.metadata, data: new Uint8Array(0) }),
    );
  });

  it('the ledger tells new, known (dedup) and conflicting claims apart, and rebuilds claims', () => {
    const ledger = new Ledger();
    const claim = new StorageDriverClaim({ key: 'v0/d/sha256/aa', hash_algorithm: 'sha256', hash_value: 'aa' });
    const same = new StorageDriverClaim({ hash_value: 'aa', hash_algorithm: 'sha256', key: 'v0/d/sha256/aa' });
    expect(ledger.record(claim, 'f1', 10)).toBe('new');
    expect(ledger.record(same, 'f1', 10)).toBe('known');
    expect(ledger.record(same, 'f2', 10)).toBe('conflict');
    expect(ledger.size).toBe(1);
    expect(ledger.uniqueBytes).toBe(10);
    const [entry] = ledger.sample(createRng(1), 1);
    expect(entry?.claim).not.toBe(claim);
    expect(entry?.claim.claimData).toEqual(claim.claimData);
    expect(entry?.fingerprint).toBe('f1');
  });
});
