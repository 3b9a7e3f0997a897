/**
 * A password-protected private redis-server (`requirepass`): the right password works through a
 * URL, and a wrong or missing one is a permanent E_CONFIG whose message and whole cause chain
 * never contain the password (ioredis attaches the failed AUTH/HELLO command, arguments included,
 * to the error it rejects queued commands with).
 */
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { StorageDriverError } from '@x/storage-driver-core';
import { captureStorageDriverError } from '@x/storage-driver-test-suite';
import { Redis } from 'ioredis';
import { RedisStorageDriver } from '../src';
import { payload, quitAll, text } from './helpers';
import { type PrivateRedis, startRedis } from './servers';

const SECRET = 'pa55-Secret-9f1c';
const WRONG = 'wrong-Secret-77ab';

let server: PrivateRedis;
beforeAll(async () => {
  server = await startRedis({ args: ['--requirepass', SECRET] });
});
afterAll(async () => {
  await server?.stop();
});

/** Everything reachable from the error: message, stack, properties, the whole cause chain. */
function everything(error: StorageDriverError): string {
  return inspect(error, { depth: Number.POSITIVE_INFINITY, showHidden: true, maxArrayLength: null });
}

function expectNoSecret(error: StorageDriverError, ...secrets: string[]): void {
  const dump = everything(error);
  for (const secret of secrets) {
    expect(error.message).not.toContain(secret);
    expect(dump).not.toContain(secret);
    expect(dump).not.toContain(Buffer.from(secret).toString('hex'));
  }
}

describe('password-protected server', () => {
  it('fromUrl with redis://:password@ stores and retrieves', async () => {
    const driver = RedisStorageDriver.fromUrl(`redis://:${SECRET}@127.0.0.1:${server.port}`, { keyPrefix: 'auth' });
    try {
      const claims = await driver.store({}, [payload('behind a password')]);
      expect(text((await driver.retrieve({}, claims))[0])).toBe('"behind a password"');
    } finally {
      await driver.close();
    }
  });

  it('a wrong password (owned client) → E_CONFIG, the password in neither message nor cause chain', async () => {
    const driver = RedisStorageDriver.fromUrl(`redis://:${WRONG}@127.0.0.1:${server.port}`, {
      keyPrefix: 'auth',
      operationTimeout: 5_000,
    });
    try {
      const error = await captureStorageDriverError(() => driver.store({}, [payload('nope')]));
      expect([error.code, error.retryable]).toEqual(['E_CONFIG', false]);
      expect(error.message).toMatch(/WRONGPASS/);
      expectNoSecret(error, WRONG);
      const readError = await captureStorageDriverError(() =>
        driver.retrieve({}, [
          {
            claimData: {
              key: `auth:v0:d:sha256:${'0'.repeat(64)}`,
              hash_algorithm: 'sha256',
              hash_value: '0'.repeat(64),
            },
          },
        ]),
      );
      expect(readError.code).toBe('E_CONFIG');
      expectNoSecret(readError, WRONG);
    } finally {
      await driver.close();
    }
  });

  it('a wrong password (injected client, username too) → E_CONFIG without the secret', async () => {
    const client = new Redis({ port: server.port, host: '127.0.0.1', username: 'default', password: WRONG });
    client.on('error', () => {});
    try {
      const driver = new RedisStorageDriver({ client, keyPrefix: 'auth', operationTimeout: 5_000 });
      const error = await captureStorageDriverError(() => driver.store({}, [payload('nope')]));
      expect([error.code, error.retryable]).toEqual(['E_CONFIG', false]);
      expectNoSecret(error, WRONG);
    } finally {
      await quitAll(client);
    }
  });

  it('an unparsable URL holding a password → E_CONFIG that echoes neither URL nor password', async () => {
    for (const url of [`redis://:${WRONG}@127.0.0.1:99999999`, `redis://:${WRONG}@[::1`]) {
      const error = await captureStorageDriverError(async () => RedisStorageDriver.fromUrl(url));
      expect(error.code).toBe('E_CONFIG');
      expectNoSecret(error, WRONG);
    }
  });

  it('no password → NOAUTH → E_CONFIG', async () => {
    const client = new Redis(server.port, '127.0.0.1');
    client.on('error', () => {});
    try {
      const driver = new RedisStorageDriver({ client, keyPrefix: 'auth', operationTimeout: 5_000 });
      const error = await captureStorageDriverError(() => driver.store({}, [payload('nope')]));
      expect([error.code, error.retryable]).toEqual(['E_CONFIG', false]);
      expect(error.message).toMatch(/NOAUTH/);
    } finally {
      await quitAll(client);
    }
  });
});
