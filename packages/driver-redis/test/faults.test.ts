/**
 * Server failures, on a private redis-server this file starts, kills and restarts (never the
 * shared one): calls fail with a retryable E_BACKEND within operationTimeout instead of waiting
 * in ioredis' offline queue, honour the abort signal, and succeed again after the restart.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { PutOutcome, StorageDriverClaim } from '@x/storage-driver-core';
import {
  captureStorageDriverError,
  countPresentExact,
  makePayload,
  pseudoRandomBytes,
} from '@x/storage-driver-test-suite';
import { Redis } from 'ioredis';
import { RedisStorageDriver, type RedisStorageDriverOptions } from '../src';
import { tornValues } from './fault-checks';
import { payload, quitAll, text } from './helpers';
import { counters, type PrivateRedis, startRedis } from './servers';

const OPERATION_TIMEOUT = 1_000;

/** A driver that writes nothing: its `store` returns the claims the real driver's would. */
class DryRunDriver extends RedisStorageDriver {
  protected override async _putIfAbsent(items: unknown[]): Promise<PutOutcome[]> {
    return items.map(() => 'written');
  }
}

/**
 * The claims a driver with `options` returns for `payloads`, computed without writing. (The
 * test-suite's `expectedClaims` works on an `Object.create` copy of the driver, which the base
 * class' private fields no longer allow.)
 */
function expectedClaims(options: RedisStorageDriverOptions, payloads: ReturnType<typeof makePayload>[]) {
  return new DryRunDriver(options).store({}, payloads);
}

describe('server down', () => {
  let server: PrivateRedis;
  let client: Redis;
  let driver: RedisStorageDriver;
  beforeAll(async () => {
    server = await startRedis();
    // ioredis defaults (offline queue on, 20 retries per request); reconnect quickly for the test.
    client = new Redis(server.port, '127.0.0.1', { retryStrategy: () => 100 });
    client.on('error', () => {});
    driver = new RedisStorageDriver({ client, keyPrefix: 'faults', ttl: 600_000, operationTimeout: OPERATION_TIMEOUT });
  });
  afterAll(async () => {
    client?.disconnect();
    await server?.stop();
  });

  it('killed mid-batch: the store fails with a retryable E_BACKEND and returns no claim; after a restart the next call succeeds', async () => {
    const before = await driver.store({}, [payload('before the crash')]);
    expect(text((await driver.retrieve({}, before))[0])).toBe('"before the crash"');

    // Hold the batch inside the server: writes of every client are paused, so the pipeline has
    // been received but not executed when the server dies.
    const admin = new Redis(server.port, '127.0.0.1');
    await admin.client('PAUSE', 60_000, 'WRITE');
    const batch = Array.from({ length: 50 }, (_, i) => payload(`in flight ${i}`));
    let settled = false;
    const pending = driver.store({}, batch).finally(() => {
      settled = true;
    });
    const deadline = Date.now() + 5_000;
    // Wait until the server shows our pipeline blocked on the pause.
    while (Date.now() < deadline) {
      const clients = await admin.client('LIST');
      if (/cmd=(?:pexpire|eval)/.test(String(clients))) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(settled).toBe(false);
    admin.disconnect();
    await server.kill();

    const error = await captureStorageDriverError(() => pending);
    expect(error.code).toBe('E_BACKEND');
    expect(error.retryable).toBe(true);
    expect(error.message).toMatch(/timed out after 1000 ms/);

    // While it is down: bounded failures for store and retrieve, and the abort signal wins.
    const down = await captureStorageDriverError(() => driver.store({}, [payload('while down')]));
    expect([down.code, down.retryable]).toEqual(['E_BACKEND', true]);
    const downRead = await captureStorageDriverError(() => driver.retrieve({}, before));
    expect([downRead.code, downRead.retryable]).toEqual(['E_BACKEND', true]);
    const patient = new RedisStorageDriver({ client, keyPrefix: 'faults', operationTimeout: 600_000 });
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('sibling failed')), 50);
    expect(
      (await captureStorageDriverError(() => patient.store({ abortSignal: ac.signal }, [payload('aborted')]))).code,
    ).toBe('E_ABORTED');

    // Back on the same port (empty: the private server has no persistence).
    await server.restart();
    const after = await driver.store({}, [payload('after the restart')]);
    expect(text((await driver.retrieve({}, after))[0])).toBe('"after the restart"');
    const gone = await captureStorageDriverError(() => driver.retrieve({}, before as StorageDriverClaim[]));
    expect(gone.code).toBe('E_NOT_FOUND');
    expect(gone.message).toContain(before[0]?.claimData.key as string);
  });
});

describe('default ioredis options', () => {
  it('owned (fromUrl) and injected clients with default options: bounded E_BACKEND while down, then work again unaided', async () => {
    const server = await startRedis();
    const owned = RedisStorageDriver.fromUrl(server.url, { keyPrefix: 'defaults', operationTimeout: 500 });
    const client = new Redis(server.url); // every ioredis default: offline queue, 20 retries per request
    client.on('error', () => {});
    const injected = new RedisStorageDriver({ client, keyPrefix: 'defaults', operationTimeout: 500 });
    try {
      for (const driver of [owned, injected]) await driver.store({}, [payload('warm')]);
      await server.kill();
      for (const driver of [owned, injected]) {
        const error = await captureStorageDriverError(() => driver.store({}, [payload('while down')]));
        expect([error.code, error.retryable]).toEqual(['E_BACKEND', true]);
        expect(error.message).toMatch(/timed out after 500 ms/);
      }
      await server.restart();
      // The next call, with the default operationTimeout (10 s), outlasts ioredis' reconnect
      // backoff (ioredis 6: 50 ms doubling, at most 5 s + jitter) and succeeds without any help.
      for (const driver of [owned, injected]) {
        const patient = new RedisStorageDriver({ client: driver.client, keyPrefix: 'defaults' });
        const claims = await patient.store({}, [payload('back again')]);
        expect(text((await patient.retrieve({}, claims))[0])).toBe('"back again"');
      }
    } finally {
      await owned.close();
      client.disconnect();
      await server.stop();
    }
  });
});

describe('owned client', () => {
  it('fromUrl against a dead port fails with E_BACKEND within operationTimeout; close() stops reconnecting', async () => {
    const server = await startRedis();
    await server.kill(); // a port nobody listens on
    const driver = RedisStorageDriver.fromUrl(server.url, {
      operationTimeout: 500,
      clientOptions: { retryStrategy: () => 50 },
    });
    try {
      const error = await captureStorageDriverError(() => driver.store({}, [payload('nowhere')]));
      expect([error.code, error.retryable]).toEqual(['E_BACKEND', true]);
      expect(error.message).toMatch(/timed out after 500 ms/);
      await driver.close();
      // The server comes back; a closed driver's client must not reconnect to it.
      await server.restart();
      const admin = new Redis(server.port, '127.0.0.1');
      await new Promise((r) => setTimeout(r, 300)); // six reconnect periods of the closed client
      const clients = String(await admin.client('LIST'))
        .trim()
        .split('\n');
      await quitAll(admin);
      expect(clients).toHaveLength(1); // only the admin connection
    } finally {
      await driver.close();
      await server.stop();
    }
  });
});

/** A client of a private server that reconnects every 100 ms (ioredis defaults otherwise). */
function reconnectingClient(port: number): Redis {
  const client = new Redis(port, '127.0.0.1', { retryStrategy: () => 100 });
  client.on('error', () => {});
  return client;
}

/** `count` distinct binary payloads of `size` bytes. */
function binaryBatch(count: number, size: number, seed: number): ReturnType<typeof makePayload>[] {
  return Array.from({ length: count }, (_, i) => makePayload(pseudoRandomBytes(size, seed + i)));
}

describe('killed mid-batch with an append-only file (appendfsync always), then restarted', () => {
  it('the store fails with a retryable E_BACKEND and no claim; after the restart every key is absent or exact, none torn; the batch then stores', async () => {
    // Durable: every executed write is fsynced to the AOF before its reply, and reloaded on restart.
    const server = await startRedis({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] });
    const client = reconnectingClient(server.port);
    let admin = new Redis(server.port, '127.0.0.1', { retryStrategy: () => null });
    admin.on('error', () => {});
    const options: RedisStorageDriverOptions = { client, keyPrefix: 'killed', ttl: 600_000, operationTimeout: 3_000 };
    const driver = new RedisStorageDriver(options);
    try {
      const batch = binaryBatch(128, 256 * 1024, 1000); // 32 MiB in one pipeline
      const claims = await expectedClaims(options, batch);
      const setsBefore = (await counters(admin)).calls.set ?? 0;
      const outcome = driver.store({}, batch).then(
        () => undefined,
        (e: unknown) => e,
      );
      // Freeze the batch part-way (once the server has executed some of its SETs), then kill it.
      let executed = 0;
      for (const deadline = Date.now() + 20_000; executed === 0 && Date.now() < deadline; ) {
        executed = ((await counters(admin)).calls.set ?? 0) - setsBefore;
      }
      await admin.client('PAUSE', 60_000, 'WRITE');
      executed = ((await counters(admin)).calls.set ?? 0) - setsBefore;
      expect(executed).toBeGreaterThan(0);
      expect(executed).toBeLessThan(batch.length); // the kill lands mid-batch
      admin.disconnect();
      await server.kill();

      const error = await captureStorageDriverError(() => outcome.then((e) => Promise.reject(e)));
      expect([error.code, error.retryable]).toEqual(['E_BACKEND', true]);

      await server.restart(); // same port and directory: the AOF is reloaded
      admin = new Redis(server.port, '127.0.0.1');
      // Each payload is absent or exact (ioredis may even have resent the rest of the pipeline).
      const present = await countPresentExact(driver, claims, batch);
      expect(present).toBeGreaterThanOrEqual(executed); // every executed SET survived the kill
      expect(await tornValues(admin, 'killed')).toEqual([]);

      // Recovery: the same batch stores completely and reads back byte for byte.
      expect((await driver.store({}, batch)).map((c) => c.claimData)).toEqual(claims.map((c) => c.claimData));
      expect(await countPresentExact(driver, claims, batch)).toBe(batch.length);
    } finally {
      admin.disconnect();
      client.disconnect();
      await server.stop();
    }
  });
});

describe('server paused (CLIENT PAUSE ALL, 5 s) longer than operationTimeout (1 s)', () => {
  it('store and retrieve fail with a retryable E_BACKEND while paused, no claim; after unpausing nothing is torn and the next calls succeed', async () => {
    const server = await startRedis();
    const client = reconnectingClient(server.port);
    const admin = new Redis(server.port, '127.0.0.1');
    const options: RedisStorageDriverOptions = { client, keyPrefix: 'paused', ttl: 600_000, operationTimeout: 1_000 };
    const driver = new RedisStorageDriver(options);
    try {
      const before = [payload('before the pause')];
      const kept = await driver.store({}, before);
      const batch = binaryBatch(20, 64 * 1024, 2000);
      const claims = await expectedClaims(options, batch);

      // Paused five times longer than operationTimeout. PAUSE ALL holds every command of every
      // client (CLIENT UNPAUSE included), so the pause ends by itself.
      await admin.client('PAUSE', 5_000, 'ALL');
      const [storeError, retrieveError] = await Promise.all([
        captureStorageDriverError(() => driver.store({}, batch)),
        captureStorageDriverError(() => driver.retrieve({}, kept)),
      ]);
      for (const e of [storeError, retrieveError]) {
        expect([e.code, e.retryable]).toEqual(['E_BACKEND', true]);
        expect(e.message).toMatch(/timed out after 1000 ms/);
      }
      expect(await admin.ping()).toBe('PONG'); // answered once the pause is over

      // The timed-out pipeline was held in the server and may have run since: every payload of it
      // is absent or exact (a write without a claim is an orphan, never a torn value).
      await countPresentExact(driver, claims, batch);
      expect(await tornValues(admin, 'paused')).toEqual([]);

      // Recovery on the same client: the next calls succeed.
      expect(text((await driver.retrieve({}, kept))[0])).toBe('"before the pause"');
      await driver.store({}, batch);
      expect(await countPresentExact(driver, claims, batch)).toBe(batch.length);
    } finally {
      admin.disconnect();
      client.disconnect();
      await server.stop();
    }
  });
});
