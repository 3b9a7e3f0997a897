/**
 * Faults between the driver and S3, injected by a loopback proxy in front of moto (the shared
 * server is never disturbed: only this file's requests go through its proxy): 500 / 503 /
 * SlowDown answers, reset connections, and truncated or damaged bodies. Each case shows a coded
 * StorageDriverError with the right `retryable` flag, no claim for a payload not durably stored,
 * every key absent or exact afterwards (nothing torn is readable), and a successful next call.
 */

import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import type { Payload, StorageDriverClaim } from '@x/storage-driver-core';
import {
  captureStorageDriverError,
  countPresentExact,
  makePayload,
  pseudoRandomBytes,
} from '@x/storage-driver-test-suite';
import { FaultProxy, type ProxiedRequest, type ProxyFault, SERVICES } from '@x/test-servers';
import { S3StorageDriver } from '../src';
import { createBucket, deleteBucket, makeClient, type S3ErrorReply, s3Error } from './helpers';

/** The SDK's default: each request is tried 3 times before the driver sees the error. */
const MAX_ATTEMPTS = 3;

let proxy: FaultProxy;
let direct: S3Client;
let client: S3Client;
let bucket: string;
let driver: S3StorageDriver;

beforeAll(async () => {
  proxy = await FaultProxy.start(SERVICES.s3Endpoint);
  direct = makeClient();
});
afterAll(async () => {
  await proxy.close();
  direct.destroy();
});
beforeEach(async () => {
  bucket = await createBucket(direct, 'xs3-fault');
  client = makeClient(proxy.endpoint, { maxAttempts: MAX_ATTEMPTS });
  // HEAD first for every object, so every fault case meets both requests of a new object.
  driver = new S3StorageDriver({ client, bucket, headFirstMinSize: 0 });
  proxy.clearRequests();
});
afterEach(async () => {
  proxy.inject = undefined;
  proxy.tamper = undefined;
  client.destroy();
  await deleteBucket(direct, bucket);
});

/** Five distinct payloads of 8 KiB. */
function batch(seed: number): Payload[] {
  return Array.from({ length: 5 }, (_, i) => makePayload(pseudoRandomBytes(8 * 1024, seed + i)));
}

/** Requests of `method` to objects of this test's bucket that the proxy answered or damaged itself. */
function faulted(method: string): ProxiedRequest[] {
  return proxy.requests.filter((r) => r.injected && r.method === method && r.path.startsWith(`/${bucket}/`));
}

/** Whether `req` is a `method` request to an object of this test's bucket. */
function objectRequest(req: ProxiedRequest, method: string): boolean {
  return req.method === method && req.path.startsWith(`/${bucket}/`);
}

/**
 * The claims `driver.store({}, payloads)` would return, computed without writing anything: a twin
 * driver instance whose backend write is a no-op. (The suite's `expectedClaims` derives its dry
 * run with `Object.create(driver)`, which the base class's private fields refuse since issue 14.)
 */
function expectedClaims(payloads: Payload[]): Promise<StorageDriverClaim[]> {
  const dryRun = new S3StorageDriver({ client, bucket });
  Object.defineProperty(dryRun, '_putIfAbsent', { value: async () => {} });
  return dryRun.store({}, payloads);
}

/**
 * After a failed store of `payloads`: every key is absent or exact (read from moto directly while
 * the fault is still on, so a request that left the client just before the store gave up meets
 * the same fault), and with the fault gone the same store succeeds with the expected claims.
 * Returns how many of the payloads were present.
 */
async function expectNothingTornThenRecovery(payloads: Payload[]): Promise<number> {
  const claims = await expectedClaims(payloads);
  const reader = new S3StorageDriver({ client: direct, bucket });
  const present = await countPresentExact(reader, claims, payloads);
  proxy.inject = undefined;
  proxy.tamper = undefined;
  const stored = await driver.store({}, payloads);
  expect(stored.map((c) => c.claimData)).toEqual(claims.map((c) => c.claimData));
  expect(await countPresentExact(driver, stored, payloads)).toBe(payloads.length);
  return present;
}

describe('error answers after the SDK retries (500, 503, SlowDown)', () => {
  const cases: [string, S3ErrorReply][] = [
    ['PUT', { status: 500, code: 'InternalError' }],
    ['PUT', { status: 503, code: 'ServiceUnavailable' }],
    ['PUT', { status: 503, code: 'SlowDown' }],
    ['HEAD', { status: 503 }],
  ];
  it.each(cases)(
    'store, %s answered %j every time: retryable E_BACKEND, no claim, nothing written',
    async (method, answer) => {
      proxy.inject = (req) => (objectRequest(req, method) ? s3Error(answer) : undefined);
      const payloads = batch(100);
      const error = await captureStorageDriverError(() => driver.store({}, payloads));
      expect([error.code, error.retryable]).toEqual(['E_BACKEND', true]);
      if (answer.code !== undefined) expect(error.message).toContain(answer.code);
      // Counted at the proxy: the SDK tried the failing request MAX_ATTEMPTS times (for the first
      // payload at least) before the driver gave up.
      const perKey = new Map<string, number>();
      for (const r of faulted(method)) perKey.set(r.path, (perKey.get(r.path) ?? 0) + 1);
      expect(Math.max(...perKey.values())).toBe(MAX_ATTEMPTS);
      expect(await expectNothingTornThenRecovery(payloads)).toBe(0);
    },
  );

  it.each([[{ status: 500, code: 'InternalError' }], [{ status: 503, code: 'SlowDown' }]] as [S3ErrorReply][])(
    'retrieve, GET answered %j every time: retryable E_BACKEND; succeeds once the fault is gone',
    async (answer) => {
      const payloads = batch(200);
      const claims = await driver.store({}, payloads);
      proxy.inject = (req) => (objectRequest(req, 'GET') ? s3Error(answer) : undefined);
      const error = await captureStorageDriverError(() => driver.retrieve({}, claims));
      expect([error.code, error.retryable]).toEqual(['E_BACKEND', true]);
      expect(error.message).toContain(answer.code as string);
      proxy.inject = undefined;
      expect(await countPresentExact(driver, claims, payloads)).toBe(payloads.length);
    },
  );

  it('a SlowDown burst shorter than the SDK retries is absorbed: the store and retrieve succeed', async () => {
    let left = 2;
    proxy.inject = (req) =>
      objectRequest(req, 'PUT') && left-- > 0 ? s3Error({ status: 503, code: 'SlowDown' }) : undefined;
    const payloads = batch(300);
    const claims = await driver.store({}, payloads);
    expect(faulted('PUT')).toHaveLength(2);
    expect(await countPresentExact(driver, claims, payloads)).toBe(payloads.length);
  });
});

describe('reset connections', () => {
  it('store, every PUT reset before it reaches S3: retryable E_BACKEND, no claim, nothing written', async () => {
    proxy.tamper = (req) => (objectRequest(req, 'PUT') ? { kind: 'reset' } : undefined);
    const payloads = batch(400);
    const error = await captureStorageDriverError(() => driver.store({}, payloads));
    expect([error.code, error.retryable]).toEqual(['E_BACKEND', true]);
    expect(faulted('PUT').length).toBeGreaterThanOrEqual(MAX_ATTEMPTS);
    expect(await expectNothingTornThenRecovery(payloads)).toBe(0);
  });

  it('store, every PUT answer lost after S3 stored the object: retryable E_BACKEND, no claim; the objects are exact', async () => {
    proxy.tamper = (req) => (objectRequest(req, 'PUT') ? { kind: 'reset-after-forward' } : undefined);
    const payloads = batch(500);
    const error = await captureStorageDriverError(() => driver.store({}, payloads));
    expect([error.code, error.retryable]).toEqual(['E_BACKEND', true]);
    // Objects whose PUT reached S3 are complete (S3 writes whole objects); the rest are absent.
    expect(await expectNothingTornThenRecovery(payloads)).toBeGreaterThanOrEqual(1);
  });

  it('retrieve, every GET reset: retryable E_BACKEND; succeeds once the fault is gone', async () => {
    const payloads = batch(600);
    const claims = await driver.store({}, payloads);
    proxy.tamper = (req) => (objectRequest(req, 'GET') ? { kind: 'reset' } : undefined);
    const error = await captureStorageDriverError(() => driver.retrieve({}, claims));
    expect([error.code, error.retryable]).toEqual(['E_BACKEND', true]);
    expect(faulted('GET').length).toBeGreaterThanOrEqual(MAX_ATTEMPTS);
    proxy.tamper = undefined;
    expect(await countPresentExact(driver, claims, payloads)).toBe(payloads.length);
  });
});

describe('a large payload, streamed from its parts', () => {
  // Data of 64 KiB or more: the PUT's body is a stream of the serialized payload's parts, made
  // anew for each of the SDK's attempts (the SDK does not retry a request whose body it was given
  // as a stream).
  const large = (seed: number) => makePayload(pseudoRandomBytes(3 * 1024 * 1024 + seed, seed));

  it.each([
    ['reset before it reaches S3', { kind: 'reset' }],
    ['forwarded whole, its answer lost', { kind: 'reset-after-forward' }],
  ] as [string, ProxyFault][])(
    'its first PUT %s is retried by the SDK from the start: the object is exact',
    async (_, fault) => {
      let faults = 0;
      proxy.tamper = (req) => (objectRequest(req, 'PUT') && faults++ === 0 ? fault : undefined);
      const p = large(700);
      const [claim] = await driver.store({}, [p]);
      const puts = proxy.requests.filter((r) => objectRequest(r, 'PUT'));
      expect(puts).toHaveLength(2);
      expect(puts[1]?.headers['content-length']).toBe(puts[0]?.headers['content-length']);
      const [back] = await driver.retrieve({}, [claim as StorageDriverClaim]);
      expect(Buffer.from(back?.data ?? []).equals(Buffer.from(p.data ?? []))).toBe(true);
    },
  );
});

describe('truncated and damaged bodies', () => {
  it('store, every PUT answer cut inside its headers: retryable E_BACKEND, no claim; the objects are exact', async () => {
    proxy.tamper = (req) => (objectRequest(req, 'PUT') ? { kind: 'truncate', bytes: 0 } : undefined);
    const payloads = batch(700);
    const error = await captureStorageDriverError(() => driver.store({}, payloads));
    expect([error.code, error.retryable]).toEqual(['E_BACKEND', true]);
    expect(await expectNothingTornThenRecovery(payloads)).toBeGreaterThanOrEqual(1);
  });

  it('store, one PUT answer cut: the SDK retry finds the object stored (412) and the store succeeds', async () => {
    let left = 1;
    proxy.tamper = (req) => (objectRequest(req, 'PUT') && left-- > 0 ? { kind: 'truncate', bytes: 0 } : undefined);
    const payloads = batch(800);
    const claims = await driver.store({}, payloads);
    expect(faulted('PUT')).toHaveLength(1);
    expect(await countPresentExact(driver, claims, payloads)).toBe(payloads.length);
  });

  const damaged: [string, ProxyFault, string[]][] = [
    // The connection dies after half the body: the stream fails (transient).
    ['cut mid-body (connection reset)', { kind: 'truncate', bytes: 4096 }, ['E_BACKEND']],
    // A well-formed but short or damaged response: the claim's SHA-256 catches it.
    ['shortened (Content-Length rewritten)', { kind: 'shorten', bytes: 4096 }, ['E_INTEGRITY']],
    ['one bit flipped', { kind: 'corrupt' }, ['E_INTEGRITY']],
  ];
  it.each(damaged)(
    'retrieve, every GET body %s: a coded error, never a wrong payload; succeeds once the fault is gone',
    async (_label, fault, codes) => {
      const payloads = batch(900);
      const claims: StorageDriverClaim[] = await driver.store({}, payloads);
      proxy.tamper = (req) => (objectRequest(req, 'GET') ? fault : undefined);
      const error = await captureStorageDriverError(() => driver.retrieve({}, claims));
      expect(codes).toContain(error.code);
      expect(error.retryable).toBe(error.code === 'E_BACKEND');
      for (const [i, claim] of claims.entries()) {
        const one = await captureStorageDriverError(() => driver.retrieve({}, [claim]));
        expect([`claim ${i}`, codes.includes(one.code)]).toEqual([`claim ${i}`, true]);
      }
      proxy.tamper = undefined;
      expect(await countPresentExact(driver, claims, payloads)).toBe(payloads.length);
    },
  );
});
