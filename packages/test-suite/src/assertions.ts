/**
 * Assertion helpers used by the suite, exported for driver authors' own tests.
 *
 * @module
 */
import assert from 'node:assert/strict';
import {
  type ContentAddressedStorageDriver,
  isStorageDriverError,
  type Payload,
  type StorageDriver,
  type StorageDriverClaim,
  type StorageDriverError,
  type StorageDriverErrorCode,
  type StorageDriverStoreContext,
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

/**
 * The claims `driver.store(context, payloads)` would return, computed without writing anything:
 * the same driver instance (options, key layout, claim fields) with its backend write replaced by
 * a no-op for the duration of the call (so don't store through `driver` concurrently). For fault
 * tests of drivers built on `ContentAddressedStorageDriver`: after a failed batch, check each of
 * these claims with {@link countPresentExact}.
 *
 * @throws whatever `store` throws before writing (e.g. `E_TOO_LARGE`).
 */
export async function expectedClaims(
  driver: ContentAddressedStorageDriver,
  payloads: Payload[],
  context: StorageDriverStoreContext = {},
): Promise<StorageDriverClaim[]> {
  // An own property on the real instance (a copy made with Object.create would not carry the
  // base class's #private state), removed again whatever happens.
  Object.defineProperty(driver, '_putIfAbsent', { value: async () => {}, configurable: true, writable: true });
  try {
    return await driver.store(context, payloads);
  } finally {
    delete (driver as unknown as { _putIfAbsent?: unknown })._putIfAbsent;
  }
}

/**
 * "Nothing torn is readable": retrieves each claim on its own; each must fail with `E_NOT_FOUND`
 * or return exactly `payloads[i]`. Returns how many are present.
 *
 * @throws AssertionError for a wrong payload; rethrows any error other than `E_NOT_FOUND` (such as
 *   `E_INTEGRITY`, which means torn or corrupted bytes were readable).
 */
export async function countPresentExact(
  driver: StorageDriver,
  claims: StorageDriverClaim[],
  payloads: Payload[],
): Promise<number> {
  let present = 0;
  for (const [i, claim] of claims.entries()) {
    try {
      const [back] = await driver.retrieve({}, [claim]);
      assertPayloadEqual(back as Payload, payloads[i] as Payload, `claim ${i}`);
      present++;
    } catch (e) {
      if (!isStorageDriverError(e, 'E_NOT_FOUND')) throw e;
    }
  }
  return present;
}
