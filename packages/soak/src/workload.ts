/**
 * What the soak callers send: seeded decisions, payload sizes skewed small (0 B to 1 MiB), a pool
 * of repeated payloads shared by every caller, fresh random payloads, and the targets (unicode
 * and dot-segment ids included) they are stored under.
 *
 * @module
 */
import { encodePayload, type Payload, type StorageDriverTargetInfo, sha256Hex } from '@x/storage-driver-core';
import { makePayload, pseudoRandomBytes } from '@x/storage-driver-test-suite';

/** Largest payload data the soak generates: 1 MiB. */
export const MAX_PAYLOAD_BYTES = 1024 * 1024;

/** Largest batch (payloads per `store`, claims per `retrieve`). */
export const MAX_BATCH = 8;

/** A seeded pseudo-random source of floats in `[0, 1)` (mulberry32), so a run is reproducible. */
export type Rng = () => number;

/** Creates a seeded {@link Rng}. */
export function createRng(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A uniformly drawn integer in `[0, n)`. */
export function randomInt(rng: Rng, n: number): number {
  return Math.floor(rng() * n);
}

/**
 * A payload size in bytes, skewed small: 5 % are empty, the rest log-uniform over 1 B–1 MiB
 * (median ≈ 1 KiB, mean ≈ 75 KiB, 10 % above 256 KiB). `max` caps the draw.
 */
export function drawSize(rng: Rng, max = MAX_PAYLOAD_BYTES): number {
  if (rng() < 0.05) return 0;
  const size = Math.floor(Math.exp(rng() * Math.log(MAX_PAYLOAD_BYTES + 1)));
  return Math.min(size, max);
}

/** A batch size in `[1, MAX_BATCH]`, skewed towards 1 (about 40 % single-payload batches). */
export function drawBatchSize(rng: Rng): number {
  return rng() < 0.4 ? 1 : 2 + randomInt(rng, MAX_BATCH - 1);
}

/**
 * The targets payloads are stored under (`undefined` = no target): plain ids, an activity, a
 * unicode namespace/type/id, and `.`/`..` segments. The key is scoped by target, so one payload
 * under two targets is two objects; under the same target it is one (a dedup hit).
 */
export const SOAK_TARGETS: readonly (StorageDriverTargetInfo | undefined)[] = [
  undefined,
  { kind: 'workflow', namespace: 'default', type: 'OrderWorkflow', id: 'order-42', runId: 'run-soak-1' },
  {
    kind: 'workflow',
    namespace: 'payments prod',
    type: 'Zahlungsvorgang✓',
    id: 'üñíçødé ✓ 日本語 🚀',
    runId: '7f1c2a90-0000-4000-8000-000000000001',
  },
  { kind: 'activity', namespace: 'default', type: 'Capture/Charge', id: 'activity id+42', runId: 'run-soak-2' },
  { kind: 'activity', namespace: 'ns-é', type: 'Ω', id: '..', runId: '.' },
];

/** Number of payloads in the repeated pool. */
export const POOL_SIZE = 48;

/**
 * The repeated payloads every caller draws from (cross-caller duplicates): sizes drawn like fresh
 * ones, plus one empty and one of exactly 1 MiB. Deterministic for a seed.
 */
export function buildPool(seed: number): Payload[] {
  const rng = createRng(seed ^ 0x5eed);
  const pool: Payload[] = [];
  for (let i = 0; i < POOL_SIZE; i++) {
    const size = i === 0 ? 0 : i === 1 ? MAX_PAYLOAD_BYTES : drawSize(rng);
    pool.push(makePayload(pseudoRandomBytes(size, 0x10000 + i), { 'x-soak': 'pool', 'x-soak-index': String(i) }));
  }
  return pool;
}

/**
 * A fresh random payload: `size` pseudo-random bytes from a seed no other fresh payload of the run
 * uses; some carry an extra metadata entry.
 */
export function freshPayload(size: number, seed: number, caller: number, rng: Rng): Payload {
  const metadata: Record<string, string> = { 'x-soak': 'fresh' };
  if (rng() < 0.3) metadata['x-soak-caller'] = `caller ${caller} ✓`;
  return makePayload(pseudoRandomBytes(size, seed), metadata);
}

/** A structural copy of `payload` (distinct objects and byte arrays, identical content). */
export function copyPayload(payload: Payload): Payload {
  const metadata: Record<string, Uint8Array> = {};
  for (const [k, v] of Object.entries(payload.metadata ?? {})) metadata[k] = new Uint8Array(v);
  return { metadata, data: new Uint8Array(payload.data ?? new Uint8Array(0)) };
}

/** Serialized size of a payload's data and metadata values, in bytes (what the table counts). */
export function payloadBytes(payload: Payload): number {
  let n = payload.data?.length ?? 0;
  for (const v of Object.values(payload.metadata ?? {})) n += v.length;
  return n;
}

/**
 * The soak's own fingerprint of a payload, independent of the driver's claim hash: SHA-256 of the
 * protobuf encoding of its metadata (sorted by key) and data (absent = empty). Two payloads have
 * the same fingerprint exactly when their metadata and data are byte-identical.
 */
export function payloadFingerprint(payload: Payload): string {
  const metadata: Record<string, Uint8Array> = {};
  const source = payload.metadata ?? {};
  for (const k of Object.keys(source).sort()) metadata[k] = source[k] as Uint8Array;
  return sha256Hex(encodePayload({ metadata, data: payload.data ?? new Uint8Array(0) }));
}
