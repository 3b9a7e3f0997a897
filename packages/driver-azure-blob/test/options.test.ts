/** Constructor validation and defaults (no server: the clients only compute URLs). */
import { BlobServiceClient, ContainerClient } from '@azure/storage-blob';
import { describe, expect, it } from '@jest/globals';
import { isStorageDriverError } from '@x/storage-driver-core';
import {
  AZURE_BLOB_DRIVER_DEFAULT_CONCURRENCY,
  AZURE_DEFAULT_REFRESH_AFTER,
  AzureBlobStorageDriver,
  type AzureBlobStorageDriverOptions,
  azureMinimumDeleteAge,
} from '../src';

const service = new BlobServiceClient('http://127.0.0.1:1/devstoreaccount1');
const containerClient = new ContainerClient('http://127.0.0.1:1/devstoreaccount1/payloads');

function configMessage(options: unknown): string {
  try {
    new AzureBlobStorageDriver(options as AzureBlobStorageDriverOptions);
  } catch (e) {
    if (isStorageDriverError(e, 'E_CONFIG')) return e.message;
    throw e;
  }
  throw new Error('the constructor accepted the options');
}

describe('defaults', () => {
  it('with a ContainerClient: its container, the defaults of every option', () => {
    const d = new AzureBlobStorageDriver({ client: containerClient });
    expect({
      type: d.type,
      name: d.name,
      allowedContainers: d.allowedContainers,
      concurrency: d.concurrency,
      existenceCheck: d.existenceCheck,
      keyPrefix: d.keyPrefix,
      accessTier: d.accessTier,
      refreshAfter: d.refreshAfter,
      minimumDeleteAge: d.minimumDeleteAge,
      ttl: d.ttl,
    }).toEqual({
      type: 'azure.blobdriver',
      name: 'azure.blobdriver',
      allowedContainers: ['payloads'],
      concurrency: AZURE_BLOB_DRIVER_DEFAULT_CONCURRENCY,
      existenceCheck: 'auto',
      keyPrefix: '',
      accessTier: undefined,
      refreshAfter: AZURE_DEFAULT_REFRESH_AFTER,
      minimumDeleteAge: 86_400_000 + 900_000 + 1000,
      ttl: undefined,
    });
    expect(d.capabilities).toMatchObject({
      list: true,
      delete: true,
      deleteExpired: true,
      expiry: 'none',
      lastReferenced: 'exact',
    });
  });

  it('the minimum delete age is refreshAfter + a quarter of it (at most 15 minutes) + 1 s', () => {
    expect(azureMinimumDeleteAge(1000)).toBe(2250);
    expect(azureMinimumDeleteAge(60_000)).toBe(76_000);
    expect(azureMinimumDeleteAge(86_400_000)).toBe(87_301_000);
  });

  it('with a BlobServiceClient: a container name or a selector with allowedContainers', () => {
    expect(new AzureBlobStorageDriver({ client: service, container: 'payloads' }).allowedContainers).toEqual([
      'payloads',
    ]);
    const d = new AzureBlobStorageDriver({
      client: service,
      container: () => 'hot-payloads',
      allowedContainers: ['hot-payloads', 'cold-payloads'],
      accessTier: 'Cool',
      ttl: 86_400_000 * 7,
    });
    expect([d.allowedContainers, d.accessTier, d.capabilities.deleteExpired, d.capabilities.expiry]).toEqual([
      ['hot-payloads', 'cold-payloads'],
      'Cool',
      true,
      'sweep',
    ]);
  });
});

describe('E_CONFIG', () => {
  it.each([
    ['no options', undefined, /options must be an object/],
    ['no client', {}, /ContainerClient or a BlobServiceClient/],
    ['an S3-like client', { client: { send() {} } }, /ContainerClient or a BlobServiceClient/],
    ['a BlobServiceClient without container', { client: service }, /container is required/],
    ['an invalid container', { client: service, container: 'Payloads' }, /not a valid container name/],
    ['$root', { client: service, container: '$root' }, /not a valid container name/],
    [
      'another container than the ContainerClient',
      { client: containerClient, container: 'other' },
      /not the ContainerClient/,
    ],
    [
      'a selector with a ContainerClient',
      { client: containerClient, container: (): string => 'payloads' },
      /needs a BlobServiceClient/,
    ],
    [
      'a selector without allowedContainers',
      { client: service, container: (): string => 'payloads' },
      /allowedContainers is required/,
    ],
    [
      'allowedContainers without container',
      { client: service, container: 'a-1', allowedContainers: ['b-1'] },
      /must include container/,
    ],
    [
      'empty allowedContainers',
      { client: service, container: (): string => 'x', allowedContainers: [] },
      /non-empty array/,
    ],
    [
      'an invalid allowed container',
      { client: service, container: (): string => 'x', allowedContainers: ['x_y'] },
      /allowedContainers/,
    ],
    [
      'an allowed container a ContainerClient cannot reach',
      { client: containerClient, allowedContainers: ['payloads', 'other'] },
      /not reachable/,
    ],
    [
      'accessTier Archive',
      { client: containerClient, accessTier: 'Archive' },
      /Archive is refused: an archived blob cannot be read/,
    ],
    ['accessTier archive', { client: containerClient, accessTier: 'archive' }, /Archive is refused/],
    ['an unknown tier', { client: containerClient, accessTier: 'Premium' }, /"Hot", "Cool" or "Cold"/],
    ['existenceCheck', { client: containerClient, existenceCheck: 'always' }, /existenceCheck/],
    ['refreshAfter below 1 s', { client: containerClient, refreshAfter: 999 }, /refreshAfter/],
    ['refreshAfter over a year', { client: containerClient, refreshAfter: 366 * 86_400_000 }, /refreshAfter/],
    [
      'a ttl below the minimum delete age',
      { client: containerClient, refreshAfter: 1000, ttl: 2249 },
      /minimum delete age 2250/,
    ],
    ['a keyPrefix without a trailing slash', { client: containerClient, keyPrefix: 'temporal' }, /keyPrefix/],
    ['a keyPrefix with a dot segment', { client: containerClient, keyPrefix: 'a/../' }, /keyPrefix/],
    ['concurrency 0', { client: containerClient, concurrency: 0 }, /concurrency/],
    ['an empty name', { client: containerClient, name: '' }, /name/],
  ])('%s', (_label, options, message) => {
    expect(configMessage(options)).toMatch(message);
  });
});
