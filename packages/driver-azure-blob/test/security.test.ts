/**
 * Security review: credentials never appear in errors from real failing calls — not in the
 * message, and not anywhere `inspect(error, { depth: Infinity, showHidden: true })` reaches (the
 * client's errors hold the request with its URL, where a SAS token lives, and signed headers).
 * And the classification of what Azurite really answers.
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { inspect } from 'node:util';
import {
  AccountSASPermissions,
  AccountSASResourceTypes,
  AccountSASServices,
  BlobServiceClient,
  generateAccountSASQueryParameters,
  StorageSharedKeyCredential,
} from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { StorageDriverClaim, type StorageDriverError, sha256Hex } from '@x/storage-driver-core';
import { captureStorageDriverError, makePayload } from '@x/storage-driver-test-suite';
import { uniqueName } from '@x/test-servers';
import { AzureBlobStorageDriver, classifyAzureError } from '../src';
import {
  ACCOUNT,
  ACCOUNT_KEY,
  BLOB_ENDPOINT,
  createContainer,
  deleteContainer,
  makeService,
  TEST_RETRIES,
} from './helpers';

const service = makeService();
let container: string;
beforeAll(async () => {
  container = (await createContainer(service, 'xaz-sec')).containerName;
});
afterAll(async () => {
  await deleteContainer(service, container);
});

/** An account SAS for Azurite's development account, with `permissions`. */
function sas(permissions: string): string {
  return generateAccountSASQueryParameters(
    {
      expiresOn: new Date(Date.now() + 3_600_000),
      permissions: AccountSASPermissions.parse(permissions),
      resourceTypes: AccountSASResourceTypes.parse('sco').toString(),
      services: AccountSASServices.parse('b').toString(),
    },
    new StorageSharedKeyCredential(ACCOUNT, ACCOUNT_KEY),
  ).toString();
}

function expectNoSecrets(error: StorageDriverError, secrets: string[]): void {
  const dump = inspect(error, { depth: Number.POSITIVE_INFINITY, showHidden: true, maxArrayLength: null });
  for (const secret of secrets) {
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

describe('no credentials in errors from real failing calls', () => {
  it('a SAS client: a missing container (store and retrieve) and a SAS without write permission', async () => {
    const token = sas('rl');
    const signature = new URLSearchParams(token).get('sig') as string;
    expect(signature.length).toBeGreaterThan(20);
    const client = new BlobServiceClient(`${BLOB_ENDPOINT}?${token}`, undefined, TEST_RETRIES);
    const missing = new AzureBlobStorageDriver({ client, container: uniqueName('missing') });
    const stored = await captureStorageDriverError(() => missing.store({}, [makePayload('x')]));
    expect([stored.code, stored.retryable]).toEqual(['E_CONFIG', false]);
    expectNoSecrets(stored, [signature, encodeURIComponent(signature), ACCOUNT_KEY]);
    const hash = sha256Hex(new Uint8Array([1]));
    const claim = new StorageDriverClaim({
      container: missing.allowedContainers[0] as string,
      key: `v0/d/sha256/${hash}`,
      hash_algorithm: 'sha256',
      hash_value: hash,
    });
    const read = await captureStorageDriverError(() => missing.retrieve({}, [claim]));
    expect(read.code).toBe('E_CONFIG');
    expect(read.message).toMatch(/ContainerNotFound/);
    expectNoSecrets(read, [signature, encodeURIComponent(signature), ACCOUNT_KEY]);
    const readOnly = new AzureBlobStorageDriver({ client, container });
    const denied = await captureStorageDriverError(() => readOnly.store({}, [makePayload('y')]));
    expect([denied.code, denied.retryable]).toEqual(['E_CONFIG', false]);
    expect(denied.message).toMatch(/access denied; the credentials need write/);
    expectNoSecrets(denied, [signature, encodeURIComponent(signature), ACCOUNT_KEY]);
  });

  it('a shared key the service refuses (403): E_CONFIG naming what is needed, no key anywhere', async () => {
    const wrongKey = randomBytes(64).toString('base64');
    const client = BlobServiceClient.fromConnectionString(
      `DefaultEndpointsProtocol=http;AccountName=${ACCOUNT};AccountKey=${wrongKey};BlobEndpoint=${BLOB_ENDPOINT};`,
      TEST_RETRIES,
    );
    const d = new AzureBlobStorageDriver({ client, container });
    const e = await captureStorageDriverError(() => d.store({}, [makePayload('z')]));
    expect([e.code, e.retryable]).toEqual(['E_CONFIG', false]);
    expect(e.message).toMatch(/HTTP 403.*access denied/);
    expectNoSecrets(e, [wrongKey, ACCOUNT_KEY]);
  });

  it('connection refused (nothing listens on the endpoint): E_BACKEND, retryable', async () => {
    const client = makeService(`http://127.0.0.1:${await closedPort()}/${ACCOUNT}`);
    const d = new AzureBlobStorageDriver({ client, container });
    const e = await captureStorageDriverError(() => d.store({}, [makePayload('w')]));
    expect([e.code, e.retryable]).toEqual(['E_BACKEND', true]);
    expectNoSecrets(e, [ACCOUNT_KEY]);
  });
});

describe('what Azurite answers, classified', () => {
  it('a wrong x-ms-blob-content-md5 (Azurite: 400 InvalidOperation, Azure: 400 Md5Mismatch) is transient', async () => {
    const blob = service.getContainerClient(container).getBlockBlobClient('md5-check');
    const error = await blob
      .upload(Buffer.from('body'), 4, { blobHTTPHeaders: { blobContentMD5: new Uint8Array(16) } })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect((error as { statusCode?: number }).statusCode).toBe(400);
    expect(classifyAzureError(error)).toBe('transient');
    expect(await blob.exists()).toBe(false);
  });

  it('an archived blob (409 BlobArchived), a missing container (404 ContainerNotFound), a missing blob (404)', async () => {
    const c = service.getContainerClient(container);
    await c.getBlockBlobClient('archived').upload(Buffer.from('a'), 1, { tier: 'Archive' });
    const fail = (p: Promise<unknown>) =>
      p.then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(classifyAzureError(await fail(c.getBlockBlobClient('archived').download()))).toBe('archived');
    expect(classifyAzureError(await fail(service.getContainerClient(uniqueName('xaz')).getProperties()))).toBe(
      'no-container',
    );
    expect(classifyAzureError(await fail(c.getBlockBlobClient('absent').download()))).toBe('not-found');
    // A HEAD has no body: the code comes from the x-ms-error-code header (error.details.errorCode).
    const head = await fail(service.getContainerClient(uniqueName('xaz')).getBlockBlobClient('x').getProperties());
    expect([
      classifyAzureError(head),
      classifyAzureError(await fail(c.getBlockBlobClient('absent').getProperties())),
    ]).toEqual(['no-container', 'not-found']);
    expect(
      classifyAzureError(
        await fail(c.getBlockBlobClient('archived').upload(Buffer.from('a'), 1, { conditions: { ifNoneMatch: '*' } })),
      ),
    ).toBe('exists');
  });
});
