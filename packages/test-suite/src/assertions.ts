/**
 * Assertion helpers used by the suite, exported for driver authors' own tests.
 *
 * @module
 */
import assert from 'node:assert/strict';
import {
  isStorageDriverError,
  type Payload,
  type StorageDriverError,
  type StorageDriverErrorCode,
} from '@x/storage-driver-core';

const textEncoder = new TextEncoder();

/** Builds a payload with `encoding` metadata (default `binary/plain`) and the given data. */
export function makePayload(data: Uint8Array | string, metadata: Record<string, Uint8Array | string> = {}): Payload {
  const md: Record<string, Uint8Array> = { encoding: textEncoder.encode('binary/plain') };
  for (const [k, v] of Object.entries(metadata)) md[k] = typeof v === 'string' ? textEncoder.encode(v) : v;
  return { metadata: md, data: typeof data === 'string' ? textEncoder.encode(data) : data };
}

/** Deterministic pseudo-random bytes (xorshift), so failures are reproducible. */
export function pseudoRandomBytes(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

function bytesEqual(a: Uint8Array | null | undefined, b: Uint8Array | null | undefined): boolean {
  const x = a ?? new Uint8Array(0);
  const y = b ?? new Uint8Array(0);
  return (
    x.length === y.length &&
    Buffer.compare(Buffer.from(x.buffer, x.byteOffset, x.length), Buffer.from(y.buffer, y.byteOffset, y.length)) === 0
  );
}

/**
 * Asserts two payloads are equal in protobuf terms: same metadata keys with byte-identical
 * values, byte-identical data (absent equals empty), same external-payload sizes.
 */
export function assertPayloadEqual(actual: Payload, expected: Payload, message = 'payload'): void {
  assert.ok(actual !== null && typeof actual === 'object', `${message}: not an object`);
  const am = actual.metadata ?? {};
  const em = expected.metadata ?? {};
  assert.deepEqual(Object.keys(am).sort(), Object.keys(em).sort(), `${message}: metadata keys differ`);
  for (const k of Object.keys(em)) {
    assert.ok(am[k] instanceof Uint8Array, `${message}: metadata[${JSON.stringify(k)}] is not a Uint8Array`);
    assert.ok(bytesEqual(am[k], em[k]), `${message}: metadata[${JSON.stringify(k)}] differs`);
  }
  assert.ok(
    bytesEqual(actual.data, expected.data),
    `${message}: data differs (${actual.data?.length ?? 0} vs ${expected.data?.length ?? 0} bytes)`,
  );
  const sizes = (p: Payload) => (p.externalPayloads ?? []).map((d) => String(d.sizeBytes ?? 0));
  assert.deepEqual(sizes(actual), sizes(expected), `${message}: externalPayloads differ`);
}

/**
 * Asserts `promise` rejects with a `StorageDriverError` carrying `code`, and returns the error.
 */
export async function assertRejectsWithCode(
  promise: Promise<unknown>,
  code: StorageDriverErrorCode,
  message = 'operation',
): Promise<Error> {
  let error: unknown;
  try {
    await promise;
  } catch (e) {
    error = e;
  }
  assert.ok(error !== undefined, `${message}: expected rejection with ${code}, but it resolved`);
  assert.ok(
    isStorageDriverError(error),
    `${message}: expected a StorageDriverError ${code}, got ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`,
  );
  assert.equal(error.code, code, `${message}: expected ${code}, got ${error.code}: ${error.message}`);
  return error;
}

/**
 * Runs `operation` (a function returning a promise, or a promise) and returns the
 * `StorageDriverError` it rejects with, for tests that inspect more than the code (`retryable`,
 * `message`, `cause`). Any other rejection is rethrown as is; resolving fails the test.
 */
export async function captureStorageDriverError(
  operation: Promise<unknown> | (() => Promise<unknown>),
): Promise<StorageDriverError> {
  try {
    await (typeof operation === 'function' ? operation() : operation);
  } catch (e) {
    if (isStorageDriverError(e)) return e;
    throw e;
  }
  assert.fail('expected a StorageDriverError, but the call succeeded');
}
