/**
 * Faults between the driver and Azurite, injected by a loopback `FaultProxy` (the shared Azurite
 * is never disturbed: only this file's requests go through the proxy): 500 / 503 `ServerBusy` /
 * 429 answers, reset connections, cut, shortened and bit-flipped bodies, `Content-MD5` mismatches,
 * refused and failing blob batches. Each case shows a coded StorageDriverError with the right
 * `retryable` flag, no claim for a payload not durably stored, every blob absent or exact
 * afterwards (nothing torn is readable), and a successful next call.
 */
import type { ContainerClient } from '@azure/storage-blob';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import type { Payload, StorageDriverClaim } from '@x/storage-driver-core';
import { countPresentExact, makePayload, pseudoRandomBytes } from '@x/storage-driver-test-suite';
import type { InjectedResponse, ProxiedRequest, ProxyFault } from '@x/test-servers';
import { AzureBlobStorageDriver } from '../src';
import {
  azureError,
  blobRequest,
  captureStorageDriverError,
  createContainer,
  deleteContainer,
  listNames,
  makeService,
  operation,
  sleep,
  useProxy,
} from './helpers';

/** The client's tries per request in these tests (`TEST_RETRIES`). */
const MAX_TRIES = 3;

const direct = makeService();
const net = useProxy();
let container: ContainerClient;
let driver: AzureBlobStorageDriver;

beforeEach(async () => {
  container = await createContainer(direct, 'xaz-fault');
  driver = new AzureBlobStorageDriver({ client: net.client, container: container.containerName });
  net.proxy.reset();
});
afterEach(async () => {
  net.proxy.reset();
  await deleteContainer(direct, container.containerName);
});

/** Five distinct payloads of 8 KiB. */
function batch(seed: number): Payload[] {
  return Array.from({ length: 5 }, (_, i) => makePayload(pseudoRandomBytes(8 * 1024, seed + i)));
}

/** Whether `req` is the operation `op` on a blob of this test's container. */
function on(req: ProxiedRequest, op: string): boolean {
  return operation(req) === op && blobRequest(req, container.containerName);
}

/** Requests of `op` to this test's blobs that the proxy answered or damaged itself. */
function faulted(op: string): ProxiedRequest[] {
  return net.proxy.requests.filter((r) => r.injected && on(r, op));
}

/** The claims `driver.store({}, payloads)` would return, computed without writing anything. */
function expectedClaims(payloads: Payload[]): Promise<StorageDriverClaim[]> {
  const dryRun = new AzureBlobStorageDriver({ client: net.client, container: container.containerName });
  Object.defineProperty(dryRun, '_putIfAbsent', { value: async () => undefined });
  return dryRun.store({}, payloads);
}

/**
 * After a failed store of `payloads`: every blob is absent or exact (read from Azurite directly
 * while the fault is still on), and with the fault gone the same store succeeds with the
 * expected claims. Returns how many of the payloads were present.
 */
async function expectNothingTornThenRecovery(payloads: Payload[]): Promise<number> {
  const claims = await expectedClaims(payloads);
  const reader = new AzureBlobStorageDriver({ client: direct, container: container.containerName });
  const present = await countPresentExact(reader, claims, payloads);
  net.proxy.inject = undefined;
  net.proxy.tamper = undefined;
  const stored = await driver.store({}, payloads);
  expect(stored.map((c) => c.claimData)).toEqual(claims.map((c) => c.claimData));
  expect(await countPresentExact(driver, stored, payloads)).toBe(payloads.length);
  return present;
}

describe('error answers after the client retries (500, 503 ServerBusy, 429)', () => {
  // The client retries 500 and 503 only (Azure Storage throttles with 503 ServerBusy); a 429 is
  // still a retryable E_BACKEND for the caller.
  const cases: [string, InjectedResponse, number][] = [
    ['PutBlob', azureError(500, 'InternalError'), MAX_TRIES],
    ['PutBlob', azureError(503, 'ServerBusy'), MAX_TRIES],
    ['PutBlob', azureError(429, 'TooManyRequests'), 1],
    ['GetBlobProperties', azureError(503, 'ServerBusy'), MAX_TRIES],
  ];
  it.each(cases)(
    'store, %s answered %j every time: retryable E_BACKEND, no claim, nothing written',
    async (op, answer, tries) => {
      const d =
        op === 'GetBlobProperties'
          ? new AzureBlobStorageDriver({
              client: net.client,
              container: container.containerName,
              existenceCheck: 'head',
            })
          : driver;
      net.proxy.inject = (req) => (on(req, op) ? answer : undefined);
      const payloads = batch(100);
      const error = await captureStorageDriverError(() => d.store({}, payloads));
      expect([error.code, error.retryable]).toEqual(['E_BACKEND', true]);
      // The client tried the failing request MAX_TRIES times (for one payload at least).
      const perBlob = new Map<string, number>();
      for (const r of faulted(op)) perBlob.set(r.path, (perBlob.get(r.path) ?? 0) + 1);
      expect(Math.max(...perBlob.values())).toBe(tries);
      expect(await expectNothingTornThenRecovery(payloads)).toBe(0);
    },
  );

  it.each([[azureError(500, 'InternalError')], [azureError(503, 'ServerBusy')]])(
    'retrieve, Get Blob answered %j every time: retryable E_BACKEND; succeeds once the fault is gone',
    async (answer) => {
      const payloads = batch(200);
      const claims = await driver.store({}, payloads);
      net.proxy.inject = (req) => (on(req, 'GetBlob') ? answer : undefined);
      const error = await captureStorageDriverError(() => driver.retrieve({}, claims));
      expect([error.code, error.retryable]).toEqual(['E_BACKEND', true]);
      net.proxy.inject = undefined;
      expect(await countPresentExact(driver, claims, payloads)).toBe(payloads.length);
    },
  );

  it('a ServerBusy burst shorter than the client retries is absorbed: the store and retrieve succeed', async () => {
    let left = 2;
    net.proxy.inject = (req) => (on(req, 'PutBlob') && left-- > 0 ? azureError(503, 'ServerBusy') : undefined);
    const payloads = batch(300);
    const claims = await driver.store({}, payloads);
    expect(faulted('PutBlob')).toHaveLength(2);
    expect(await countPresentExact(driver, claims, payloads)).toBe(payloads.length);
  });

  it('a Content-MD5 mismatch (the body was damaged on the way) is retryable E_BACKEND, and nothing is stored', async () => {
    net.proxy.inject = (req) => (on(req, 'PutBlob') ? azureError(400, 'Md5Mismatch') : undefined);
    const payloads = batch(350);
    const error = await captureStorageDriverError(() => driver.store({}, payloads));
    expect([error.code, error.retryable]).toEqual(['E_BACKEND', true]);
    expect(await expectNothingTornThenRecovery(payloads)).toBe(0);
  });
});

describe('reset connections', () => {
  it('store, every Put Blob reset before it reaches Azurite: retryable E_BACKEND, no claim, nothing written', async () => {
    net.proxy.tamper = (req) => (on(req, 'PutBlob') ? { kind: 'reset' } : undefined);
    const payloads = batch(400);
    const error = await captureStorageDriverError(() => driver.store({}, payloads));
    expect([error.code, error.retryable]).toEqual(['E_BACKEND', true]);
    expect(faulted('PutBlob').length).toBeGreaterThanOrEqual(MAX_TRIES);
    expect(await expectNothingTornThenRecovery(payloads)).toBe(0);
  });

  it('store, every Put Blob answer lost after Azurite stored the blob: retryable E_BACKEND, no claim; the blobs are exact', async () => {
    net.proxy.tamper = (req) => (on(req, 'PutBlob') ? { kind: 'reset-after-forward' } : undefined);
    const payloads = batch(500);
    const error = await captureStorageDriverError(() => driver.store({}, payloads));
    expect([error.code, error.retryable]).toEqual(['E_BACKEND', true]);
    // Blobs whose Put Blob reached Azurite are complete (a Put Blob is all or nothing); the rest are absent.
    expect(await expectNothingTornThenRecovery(payloads)).toBeGreaterThanOrEqual(1);
  });

  it('retrieve, every Get Blob reset: retryable E_BACKEND; succeeds once the fault is gone', async () => {
    const payloads = batch(600);
    const claims = await driver.store({}, payloads);
    net.proxy.tamper = (req) => (on(req, 'GetBlob') ? { kind: 'reset' } : undefined);
    const error = await captureStorageDriverError(() => driver.retrieve({}, claims));
    expect([error.code, error.retryable]).toEqual(['E_BACKEND', true]);
    expect(faulted('GetBlob').length).toBeGreaterThanOrEqual(MAX_TRIES);
    net.proxy.tamper = undefined;
    expect(await countPresentExact(driver, claims, payloads)).toBe(payloads.length);
  });
});

describe('truncated and damaged bodies', () => {
  it('store, every Put Blob answer cut inside its headers: retryable E_BACKEND, no claim; the blobs are exact', async () => {
    net.proxy.tamper = (req) => (on(req, 'PutBlob') ? { kind: 'truncate', bytes: 0 } : undefined);
    const payloads = batch(700);
    const error = await captureStorageDriverError(() => driver.store({}, payloads));
    expect([error.code, error.retryable]).toEqual(['E_BACKEND', true]);
    expect(await expectNothingTornThenRecovery(payloads)).toBeGreaterThanOrEqual(1);
  });

  it('store, one Put Blob answer cut: the client retry finds the blob stored (409) and the store succeeds', async () => {
    let left = 1;
    net.proxy.tamper = (req) => (on(req, 'PutBlob') && left-- > 0 ? { kind: 'truncate', bytes: 0 } : undefined);
    const payloads = batch(800);
    const claims = await driver.store({}, payloads);
    expect(faulted('PutBlob')).toHaveLength(1);
    expect(await countPresentExact(driver, claims, payloads)).toBe(payloads.length);
  });

  it('retrieve, the first Get Blob body cut mid-way: retryable E_BACKEND (not E_ABORTED); the next retrieve is exact', async () => {
    // The client's download stream reports a connection cut mid-body as an AbortError and does
    // not resume it; the driver tells it from the caller's abort.
    const payloads = batch(850);
    const claims = await driver.store({}, payloads.slice(0, 1));
    let left = 1;
    net.proxy.tamper = (req) => (on(req, 'GetBlob') && left-- > 0 ? { kind: 'truncate', bytes: 4096 } : undefined);
    const error = await captureStorageDriverError(() => driver.retrieve({}, claims));
    expect([error.code, error.retryable]).toEqual(['E_BACKEND', true]);
    expect(error.message).toMatch(/connection cut/);
    expect(await countPresentExact(driver, claims, payloads.slice(0, 1))).toBe(1);
  });

  const damaged: [string, ProxyFault, string[]][] = [
    // The connection dies after half the body every time (resumes included): transient.
    ['cut mid-body (connection reset)', { kind: 'truncate', bytes: 4096 }, ['E_BACKEND']],
    // A well-formed but short or damaged response: the claim's SHA-256 catches it.
    ['shortened (Content-Length rewritten)', { kind: 'shorten', bytes: 4096 }, ['E_INTEGRITY']],
    ['one bit flipped', { kind: 'corrupt' }, ['E_INTEGRITY']],
  ];
  it.each(damaged)(
    'retrieve, every Get Blob body %s: a coded error, never a wrong payload; succeeds once the fault is gone',
    async (_label, fault, codes) => {
      const payloads = batch(900);
      const claims = await driver.store({}, payloads);
      net.proxy.tamper = (req) => (on(req, 'GetBlob') ? fault : undefined);
      const error = await captureStorageDriverError(() => driver.retrieve({}, claims));
      expect(codes).toContain(error.code);
      expect(error.retryable).toBe(error.code === 'E_BACKEND');
      for (const [i, claim] of claims.entries()) {
        const one = await captureStorageDriverError(() => driver.retrieve({}, [claim]));
        expect([`claim ${i}`, codes.includes(one.code)]).toEqual([`claim ${i}`, true]);
      }
      net.proxy.tamper = undefined;
      expect(await countPresentExact(driver, claims, payloads)).toBe(payloads.length);
    },
  );
});

describe('blob batches', () => {
  /** Stores `n` payloads and returns the storage keys of their blobs. */
  async function stored(d: AzureBlobStorageDriver, n: number, seed: number): Promise<string[]> {
    await d.store(
      {},
      Array.from({ length: n }, (_, i) => makePayload(`batch ${seed} ${i}`)),
    );
    const keys: string[] = [];
    for await (const o of d.list()) keys.push(o.key);
    return keys;
  }

  it('a batch the service refuses (400) falls back to one Delete Blob per blob, and later deletes go one by one', async () => {
    const keys = await stored(driver, 6, 1);
    net.proxy.requests.length = 0;
    net.proxy.inject = (req) => (operation(req) === 'BlobBatch' ? azureError(400, 'InvalidInput') : undefined);
    expect(await driver.delete(keys.slice(0, 3))).toMatchObject({ deleted: 3, missing: 0, errors: [] });
    expect(net.proxy.requests.map(operation)).toEqual(['BlobBatch', 'DeleteBlob', 'DeleteBlob', 'DeleteBlob']);
    net.proxy.inject = undefined;
    net.proxy.requests.length = 0;
    expect(await driver.delete([...keys.slice(3), keys[0] as string])).toMatchObject({ deleted: 3, missing: 1 });
    expect(net.proxy.requests.map(operation)).toEqual(['DeleteBlob', 'DeleteBlob', 'DeleteBlob', 'DeleteBlob']);
    expect(await listNames(container)).toEqual([]);
  });

  it('a batch failing with 503 every time: each blob is a retryable E_BACKEND outcome, nothing deleted; then it works', async () => {
    const keys = await stored(driver, 4, 2);
    net.proxy.inject = (req) => (operation(req) === 'BlobBatch' ? azureError(503, 'ServerBusy') : undefined);
    const failed = await driver.delete(keys);
    expect([failed.deleted, failed.errors.map((e) => e.code)]).toEqual([
      0,
      ['E_BACKEND', 'E_BACKEND', 'E_BACKEND', 'E_BACKEND'],
    ]);
    expect((await listNames(container)).length).toBe(4);
    net.proxy.inject = undefined;
    expect(await driver.delete(keys)).toMatchObject({ deleted: 4, errors: [] });
  });

  it('deleteExpired while every batch fails: reports the errors, deletes nothing, aborts nothing else', async () => {
    const d = new AzureBlobStorageDriver({
      client: net.client,
      container: container.containerName,
      refreshAfter: 1000,
    });
    await stored(d, 3, 3);
    await sleep(2300);
    net.proxy.inject = (req) => (operation(req) === 'BlobBatch' ? azureError(500, 'InternalError') : undefined);
    const result = await d.deleteExpired({ olderThan: d.minimumDeleteAge });
    expect([result.scanned, result.removed, result.errors.length]).toEqual([3, 0, 3]);
    expect((await listNames(container)).length).toBe(3);
  });
});
