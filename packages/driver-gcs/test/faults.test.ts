/**
 * Faults between the driver and GCS, injected by `@x/test-servers`' FaultProxy in front of
 * fake-gcs-server (the shared emulator is never disturbed: only this file's requests go through the
 * proxy): 500 / 503 / 429 answers, reset connections, cut, shortened and corrupted bodies. Each case
 * shows a coded StorageDriverError with the right `retryable` flag, no claim for a payload not
 * durably stored, every object absent or exact afterwards (nothing torn is readable), and a
 * successful next call.
 */
import type { Storage } from '@google-cloud/storage';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import type { Payload, StorageDriverClaim } from '@x/storage-driver-core';
import { countPresentExact, makePayload, pseudoRandomBytes } from '@x/storage-driver-test-suite';
import { FaultProxy, type InjectedResponse, type ProxiedRequest, type ProxyFault } from '@x/test-servers';
import { GcsStorageDriver } from '../src';
import {
  bucketOfRequest,
  captureStorageDriverError,
  createBucket,
  deleteBucket,
  GCS_ENDPOINT,
  gcsError,
  gcsOperation,
  makeStorage,
  sleep,
} from './helpers';

/**
 * Attempts per request: the first and one client retry. Uploads (`save`) retry through async-retry,
 * whose minimum delay of 1 s refuses a smaller `maxRetryDelay` ("minTimeout is greater than
 * maxTimeout"), so the client of the upload cases waits 1 s before its retry.
 */
const MAX_ATTEMPTS = 2;
const RETRIES = { retryOptions: { maxRetries: MAX_ATTEMPTS - 1, maxRetryDelay: 1, retryDelayMultiplier: 1 } };
/**
 * Every other call (metadata GET, download, rewrite, delete) retries through retry-request, which
 * takes any delay: 20 ms. A client with this setting cannot upload (see above), so the cases that
 * fault those calls store through {@link driver} and then use {@link fast}. A delay of 1 s there
 * would also meet the proxy's 1 s keep-alive timeout: the retry would go out on a connection the
 * proxy is closing ("socket hang up").
 */
const FAST_RETRIES = { retryOptions: { maxRetries: MAX_ATTEMPTS - 1, maxRetryDelay: 0.02, retryDelayMultiplier: 1 } };
/** The `downloadStallTimeout` of {@link fast}: a download cut mid-body fails after this long. */
const STALL_TIMEOUT = 150;

let proxy: FaultProxy;
let direct: Storage;
let client: Storage;
let bucket: string;
/** The driver through the proxy, with {@link RETRIES}: the upload cases. */
let driver: GcsStorageDriver;
/** The same bucket through the proxy, with {@link FAST_RETRIES} and `existenceCheck: 'head'`: no uploads. */
let fast: GcsStorageDriver;

beforeAll(async () => {
  proxy = await FaultProxy.start(GCS_ENDPOINT);
  direct = makeStorage();
});
afterAll(async () => {
  await proxy.close();
});
beforeEach(async () => {
  bucket = await createBucket(direct, 'fault');
  client = makeStorage(proxy.endpoint, RETRIES);
  driver = new GcsStorageDriver({ client, bucket, refreshAfter: 1000 });
  fast = new GcsStorageDriver({
    client: makeStorage(proxy.endpoint, FAST_RETRIES),
    bucket,
    // Looks every object up first, so a store of objects that exist uploads nothing.
    existenceCheck: 'head',
    refreshAfter: 1000,
    downloadStallTimeout: STALL_TIMEOUT,
  });
  proxy.reset();
});
afterEach(async () => {
  proxy.reset();
  await deleteBucket(direct, bucket);
});

/** Five distinct payloads of 8 KiB. */
function batch(seed: number): Payload[] {
  return Array.from({ length: 5 }, (_, i) => makePayload(pseudoRandomBytes(8 * 1024, seed + i)));
}

/** Whether `req` is an `op` request about this test's bucket. */
const is = (req: ProxiedRequest, op: string) => gcsOperation(req) === op && bucketOfRequest(req) === bucket;
/** Requests of `op` the proxy answered or damaged itself. */
const faulted = (op: string) => proxy.requests.filter((r) => r.injected && is(r, op));

/** The claims `driver.store({}, payloads)` would return, without writing anything (a twin whose write is a no-op). */
function expectedClaims(payloads: Payload[]): Promise<StorageDriverClaim[]> {
  const dryRun = new GcsStorageDriver({ client: direct, bucket });
  Object.defineProperty(dryRun, '_putIfAbsent', { value: async () => [] });
  return dryRun.store({}, payloads);
}

/**
 * After a failed store of `payloads`: every object is absent or exact (read from the emulator
 * directly while the fault is still on), and with the fault gone the same store succeeds with the
 * expected claims. Returns how many of the payloads were present.
 */
async function expectNothingTornThenRecovery(payloads: Payload[]): Promise<number> {
  const claims = await expectedClaims(payloads);
  const present = await countPresentExact(new GcsStorageDriver({ client: direct, bucket }), claims, payloads);
  proxy.reset();
  const stored = await driver.store({}, payloads);
  expect(stored.map((c) => c.claimData)).toEqual(claims.map((c) => c.claimData));
  expect(await countPresentExact(driver, stored, payloads)).toBe(payloads.length);
  return present;
}

describe('error answers after the client retries (500, 503, 429)', () => {
  const cases: [string, InjectedResponse][] = [
    ['upload', gcsError(500, 'backendError', 'Backend Error')],
    ['upload', gcsError(503, 'backendError', 'Service Unavailable')],
    ['upload', gcsError(429, 'rateLimitExceeded', 'The rate of change requests to the object is too high')],
    ['getMetadata', gcsError(503, 'backendError', 'Service Unavailable')],
  ];
  it.each(cases)('store, every %s answered %j: retryable E_BACKEND, no claim, nothing written', async (op, answer) => {
    proxy.inject = (req) => (is(req, op) ? answer : undefined);
    const payloads = batch(100);
    // A store whose lookups fail never uploads: the fast-retrying client will do.
    const error = await captureStorageDriverError(() => (op === 'upload' ? driver : fast).store({}, payloads));
    expect([error.code, error.retryable]).toEqual(['E_BACKEND', true]);
    expect(error.message).toContain(`HTTP ${answer.status}`);
    // Counted at the proxy: the client tried the failing request MAX_ATTEMPTS times (for one object at least).
    const perObject = new Map<string, number>();
    for (const r of faulted(op)) perObject.set(r.url, (perObject.get(r.url) ?? 0) + 1);
    expect(Math.max(...perObject.values())).toBe(MAX_ATTEMPTS);
    expect(await expectNothingTornThenRecovery(payloads)).toBe(0);
  });

  it.each([[gcsError(500, 'backendError')], [gcsError(429, 'rateLimitExceeded')]])(
    'retrieve, every download answered %j: retryable E_BACKEND; succeeds once the fault is gone',
    async (answer) => {
      const payloads = batch(200);
      const claims = await driver.store({}, payloads);
      proxy.inject = (req) => (is(req, 'download') ? answer : undefined);
      const error = await captureStorageDriverError(() => fast.retrieve({}, claims));
      expect([error.code, error.retryable]).toEqual(['E_BACKEND', true]);
      expect(error.message).toContain(`HTTP ${answer.status}`);
      expect(Math.max(...countBy(faulted('download')).values())).toBe(MAX_ATTEMPTS);
      proxy.reset();
      expect(await countPresentExact(fast, claims, payloads)).toBe(payloads.length);
    },
  );

  it("retrieve follows the client's retryOptions: autoRetry false sends each download once; retryableErrorFn decides", async () => {
    const payloads = batch(250);
    const claims = await driver.store({}, payloads);
    proxy.inject = (req) => (is(req, 'download') ? gcsError(503, 'backendError') : undefined);
    const once = new GcsStorageDriver({
      client: makeStorage(proxy.endpoint, { retryOptions: { autoRetry: false } }),
      bucket,
    });
    const error = await captureStorageDriverError(() => once.retrieve({}, claims));
    expect([error.code, error.retryable]).toEqual(['E_BACKEND', true]);
    expect(Math.max(...countBy(faulted('download')).values())).toBe(1);
    await sleep(200); // the batch's other downloads, which the first failure left running
    proxy.reset();
    proxy.inject = (req) => (is(req, 'download') ? gcsError(503, 'backendError') : undefined);
    const seen: number[] = [];
    const judged = new GcsStorageDriver({
      client: makeStorage(proxy.endpoint, {
        retryOptions: {
          ...FAST_RETRIES.retryOptions,
          maxRetries: 3,
          retryableErrorFn: (e: { code?: number }) => {
            seen.push(Number(e.code));
            return seen.length < 3; // two retries, then the error stands
          },
        },
      }),
      bucket,
    });
    await captureStorageDriverError(() => judged.retrieve({}, claims.slice(0, 1)));
    expect(seen).toEqual([503, 503, 503]);
    expect([...countBy(faulted('download')).values()]).toEqual([3]);
  });

  it('retrieve aborted before GCS answers: E_ABORTED at once, and the late answer raises nothing (no unhandled rejection on any Node line)', async () => {
    const payloads = batch(270);
    const claims = await driver.store({}, payloads);
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    proxy.hold = (req) => (is(req, 'download') ? held : undefined);
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    process.on('uncaughtException', onUnhandled);
    try {
      const controller = new AbortController();
      const call = captureStorageDriverError(() => fast.retrieve({ abortSignal: controller.signal }, claims));
      await sleep(100);
      controller.abort();
      const started = Date.now();
      const error = await call;
      expect(error.code).toBe('E_ABORTED');
      expect(Date.now() - started).toBeLessThan(100);
      release(); // the held downloads now reach GCS and are answered
      await sleep(300);
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      process.off('uncaughtException', onUnhandled);
      proxy.hold = undefined;
    }
    expect(await countPresentExact(fast, claims, payloads)).toBe(payloads.length);
  });

  it('a 503 burst shorter than the client retries is absorbed: the store and retrieve succeed', async () => {
    let left = 2;
    proxy.inject = (req) => (is(req, 'upload') && left-- > 0 ? gcsError(503, 'backendError') : undefined);
    const payloads = batch(300);
    const claims = await driver.store({}, payloads);
    expect(faulted('upload')).toHaveLength(2);
    expect(await countPresentExact(driver, claims, payloads)).toBe(payloads.length);
  });

  it('a rewrite (refresh of an old object) answered 503 every time: retryable E_BACKEND; the object is intact and the next store refreshes it', async () => {
    const payloads = batch(350);
    const claims = await driver.store({}, payloads);
    await sleep(1100);
    proxy.inject = (req) => (is(req, 'rewrite') ? gcsError(503, 'backendError') : undefined);
    const error = await captureStorageDriverError(() => fast.store({}, payloads));
    expect([error.code, error.retryable]).toEqual(['E_BACKEND', true]);
    expect(Math.max(...countBy(faulted('rewrite')).values())).toBe(MAX_ATTEMPTS);
    proxy.reset();
    await fast.store({}, payloads);
    expect(proxy.requests.filter((r) => is(r, 'rewrite'))).toHaveLength(payloads.length);
    expect(await countPresentExact(driver, claims, payloads)).toBe(payloads.length);
  });

  it('a delete answered 503 every time: deleteExpired reports it per object and removes the others', async () => {
    const payloads = batch(360);
    await driver.store({}, payloads);
    await sleep(driver.minimumDeleteAge + 50);
    let failing = 2;
    const failed = new Set<string>();
    proxy.inject = (req) => {
      if (!is(req, 'delete')) return undefined;
      if (failed.has(req.rawPath) || (failing > 0 && failed.add(req.rawPath) && failing-- > 0)) {
        return gcsError(503, 'backendError');
      }
      return undefined;
    };
    const result = await fast.deleteExpired({ olderThan: fast.minimumDeleteAge });
    expect({ removed: result.removed, errors: result.errors.map((e) => e.code) }).toEqual({
      removed: 3,
      errors: ['E_BACKEND', 'E_BACKEND'],
    });
  });
});

function countBy(requests: readonly ProxiedRequest[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of requests) counts.set(r.url, (counts.get(r.url) ?? 0) + 1);
  return counts;
}

describe('reset connections', () => {
  it('store, every upload reset before it reaches GCS: retryable E_BACKEND, no claim, nothing written', async () => {
    proxy.tamper = (req) => (is(req, 'upload') ? { kind: 'reset' } : undefined);
    const payloads = batch(400);
    const error = await captureStorageDriverError(() => driver.store({}, payloads));
    expect([error.code, error.retryable]).toEqual(['E_BACKEND', true]);
    expect(faulted('upload').length).toBeGreaterThanOrEqual(MAX_ATTEMPTS);
    expect(await expectNothingTornThenRecovery(payloads)).toBe(0);
  });

  it('store, every upload answer lost after GCS stored the object: retryable E_BACKEND, no claim; the objects are exact', async () => {
    proxy.tamper = (req) => (is(req, 'upload') ? { kind: 'reset-after-forward' } : undefined);
    const payloads = batch(500);
    const error = await captureStorageDriverError(() => driver.store({}, payloads));
    expect([error.code, error.retryable]).toEqual(['E_BACKEND', true]);
    // Objects whose upload reached GCS are complete (GCS writes whole objects); the rest are absent.
    expect(await expectNothingTornThenRecovery(payloads)).toBeGreaterThanOrEqual(1);
  });

  it('store, one upload answer lost: the client retry finds the object stored (412) and the store succeeds', async () => {
    let left = 1;
    proxy.tamper = (req) => (is(req, 'upload') && left-- > 0 ? { kind: 'reset-after-forward' } : undefined);
    const payloads = batch(550);
    const claims = await driver.store({}, payloads);
    expect(faulted('upload')).toHaveLength(1);
    // The retry of the lost upload was answered 412 (ifGenerationMatch: 0 made the retry safe).
    expect(proxy.requests.filter((r) => is(r, 'upload')).map((r) => r.status)).toContain(412);
    expect(await countPresentExact(driver, claims, payloads)).toBe(payloads.length);
  });

  it('retrieve, every download reset: retryable E_BACKEND; succeeds once the fault is gone', async () => {
    const payloads = batch(600);
    const claims = await driver.store({}, payloads);
    proxy.tamper = (req) => (is(req, 'download') ? { kind: 'reset' } : undefined);
    const error = await captureStorageDriverError(() => fast.retrieve({}, claims));
    expect([error.code, error.retryable]).toEqual(['E_BACKEND', true]);
    proxy.reset();
    expect(await countPresentExact(fast, claims, payloads)).toBe(payloads.length);
  });
});

describe('cut, shortened and corrupted bodies', () => {
  it('store, every upload answer cut after its headers (the body never comes): retryable E_BACKEND once the client times out, no claim; the objects are exact', async () => {
    // @google-cloud/storage 7.x (node-fetch 2) does not notice the connection close: only the
    // client's `timeout` ends the wait (the README tells users to set one).
    const timed = new GcsStorageDriver({ client: makeStorage(proxy.endpoint, { ...RETRIES, timeout: 1000 }), bucket });
    proxy.tamper = (req) => (is(req, 'upload') ? { kind: 'truncate', bytes: 0 } : undefined);
    const payloads = batch(700);
    const error = await captureStorageDriverError(() => timed.store({}, payloads));
    // The answer was a 200 whose body timed out: the transfer failed, not the request.
    expect([error.code, error.retryable]).toEqual(['E_BACKEND', true]);
    expect(error.message).toMatch(/timeout/i);
    // GCS stored what reached it; nothing torn is readable.
    expect(await expectNothingTornThenRecovery(payloads)).toBeGreaterThanOrEqual(1);
  });

  it('store, every upload body damaged on the way (one bit flipped): GCS refuses it (the driver declares the MD5), nothing is stored', async () => {
    proxy.tamper = (req) => (is(req, 'upload') ? { kind: 'corrupt-request' } : undefined);
    const payloads = batch(750);
    const error = await captureStorageDriverError(() => driver.store({}, payloads));
    // 400: not retryable (the client does not retry it either); nothing damaged was stored.
    expect([error.code, error.retryable]).toEqual(['E_CONFIG', false]);
    expect(error.message).toMatch(/MD5/);
    expect(faulted('upload').map((r) => r.status)).toContain(400);
    expect(await expectNothingTornThenRecovery(payloads)).toBe(0);
  });

  const damaged: [string, ProxyFault, string[]][] = [
    // The connection dies after part of the body. @google-cloud/storage 7.x never reports it (the
    // stream neither ends nor fails): the driver's downloadStallTimeout gives up (transient).
    ['cut mid-body (connection reset)', { kind: 'truncate', bytes: 4096 }, ['E_BACKEND']],
    // A well-formed but short or damaged response: the claim's SHA-256 catches it.
    ['shortened (Content-Length rewritten)', { kind: 'shorten', bytes: 4096 }, ['E_INTEGRITY']],
    ['one bit flipped', { kind: 'corrupt' }, ['E_INTEGRITY']],
  ];
  it.each(damaged)(
    'retrieve, every download body %s: a coded error, never a wrong payload; succeeds once the fault is gone',
    async (_label, fault, codes) => {
      const payloads = batch(900);
      const claims = await driver.store({}, payloads);
      proxy.tamper = (req) => (is(req, 'download') ? fault : undefined);
      const error = await captureStorageDriverError(() => fast.retrieve({}, claims));
      expect(codes).toContain(error.code);
      expect(error.retryable).toBe(error.code === 'E_BACKEND');
      for (const [i, claim] of claims.entries()) {
        const one = await captureStorageDriverError(() => fast.retrieve({}, [claim]));
        expect([`claim ${i}`, codes.includes(one.code)]).toEqual([`claim ${i}`, true]);
      }
      proxy.reset();
      expect(await countPresentExact(fast, claims, payloads)).toBe(payloads.length);
    },
  );
});
