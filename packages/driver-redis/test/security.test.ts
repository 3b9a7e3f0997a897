/**
 * Security review: a connection string with a password to a Redis that is not there (connection
 * refused) gives a retryable E_BACKEND whose message and whole inspected error never hold the
 * password or the URL. (Wrong passwords, NOAUTH and unparsable URLs: auth.test.ts.)
 */
import { createServer } from 'node:net';
import { inspect } from 'node:util';
import { expect, it } from '@jest/globals';
import { captureStorageDriverError } from '@x/storage-driver-test-suite';
import { RedisStorageDriver } from '../src';
import { payload } from './helpers';

const SECRET = 'refused-Secret-4e2d';

it('connection refused with redis://user:password@ → E_BACKEND without the password', async () => {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  const url = `redis://default:${SECRET}@127.0.0.1:${port}/0`;
  const driver = RedisStorageDriver.fromUrl(url, { operationTimeout: 1500 });
  try {
    const e = await captureStorageDriverError(() => driver.store({}, [payload('refused')]));
    expect([e.code, e.retryable]).toEqual(['E_BACKEND', true]);
    const dump = inspect(e, { depth: Number.POSITIVE_INFINITY, showHidden: true, maxArrayLength: null });
    for (const s of [SECRET, url, Buffer.from(SECRET).toString('hex')]) {
      expect(e.message).not.toContain(s);
      expect(dump).not.toContain(s);
    }
  } finally {
    await driver.close();
  }
});
