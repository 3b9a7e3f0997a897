/**
 * Security review: credentials never appear in errors from real failing S3 calls — not in the
 * message, and not anywhere `inspect(error, { depth: Infinity, showHidden: true })` reaches
 * (cause chain, `$response`, `$metadata`, hidden properties).
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { inspect } from 'node:util';
import { S3Client } from '@aws-sdk/client-s3';
import { afterAll, describe, expect, it } from '@jest/globals';
import { StorageDriverClaim, type StorageDriverError, sha256Hex } from '@x/storage-driver-core';
import { captureStorageDriverError, makePayload } from '@x/storage-driver-test-suite';
import { SERVICES, uniqueName } from '@x/test-servers';
import { S3StorageDriver } from '../src';

const ACCESS_KEY = `AKIA${randomBytes(8).toString('hex').toUpperCase()}`;
const SECRET = `sec-${randomBytes(16).toString('base64url')}`;
const clients: S3Client[] = [];
afterAll(() => {
  for (const c of clients) c.destroy();
});

function client(endpoint: string): S3Client {
  const c = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    maxAttempts: 1,
    credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET },
  });
  clients.push(c);
  return c;
}

function expectNoCredentials(error: StorageDriverError): void {
  const dump = inspect(error, { depth: Number.POSITIVE_INFINITY, showHidden: true, maxArrayLength: null });
  for (const secret of [ACCESS_KEY, SECRET]) {
    expect(error.message).not.toContain(secret);
    expect(dump).not.toContain(secret);
  }
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('no credentials in errors from real failing S3 calls', () => {
  it('a missing bucket (moto answers NoSuchBucket) on store and retrieve', async () => {
    const bucket = uniqueName('missing');
    const d = new S3StorageDriver({ client: client(SERVICES.s3Endpoint), bucket });
    const stored = await captureStorageDriverError(() => d.store({}, [makePayload('x')]));
    expect(stored.code).toBe('E_CONFIG');
    expectNoCredentials(stored);
    const hash = sha256Hex(new Uint8Array([1]));
    const claim = new StorageDriverClaim({
      bucket,
      key: `v0/d/sha256/${hash}`,
      hash_algorithm: 'sha256',
      hash_value: hash,
    });
    const read = await captureStorageDriverError(() => d.retrieve({}, [claim]));
    expect(['E_CONFIG', 'E_NOT_FOUND']).toContain(read.code);
    expectNoCredentials(read);
  });

  it('connection refused (nothing listens on the endpoint) → E_BACKEND, retryable', async () => {
    const d = new S3StorageDriver({ client: client(`http://127.0.0.1:${await closedPort()}`), bucket: 'any-bucket' });
    const e = await captureStorageDriverError(() => d.store({}, [makePayload('y')]));
    expect([e.code, e.retryable]).toEqual(['E_BACKEND', true]);
    expectNoCredentials(e);
  });
});
