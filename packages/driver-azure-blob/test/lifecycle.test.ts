/**
 * Lifecycle specifics beyond the conformance group, through a counting proxy: conditional deletes
 * in blob batches (per-item `If-Match` on the listed ETag; refreshed blobs kept, blobs deleted
 * meanwhile missing), bare storage keys with a cutoff, listing pages.
 */
import type { ContainerClient } from '@azure/storage-blob';
import { afterEach, beforeEach, expect, it } from '@jest/globals';
import { mapBounded, type StoredObject } from '@x/storage-driver-core';
import { makePayload } from '@x/storage-driver-test-suite';
import { AzureBlobStorageDriver } from '../src';
import { countOperations, createContainer, deleteContainer, listNames, makeService, sleep, useProxy } from './helpers';

const service = makeService();
const net = useProxy();
let container: ContainerClient;
let driver: AzureBlobStorageDriver;

beforeEach(async () => {
  container = await createContainer(service, 'xaz-life');
  driver = new AzureBlobStorageDriver({
    client: net.client,
    container: container.containerName,
    refreshAfter: 1000,
    concurrency: 32,
  });
  net.proxy.reset();
});
afterEach(async () => {
  await deleteContainer(service, container.containerName);
});

async function collect(iterable: AsyncIterable<StoredObject>): Promise<StoredObject[]> {
  const out: StoredObject[] = [];
  for await (const o of iterable) out.push(o);
  return out;
}

it('a conditional delete of 300 listed blobs: two batches; refreshed blobs kept, blobs deleted meanwhile missing', async () => {
  const payloads = Array.from({ length: 300 }, (_, i) => makePayload(`old ${i}`));
  const claims = await driver.store({}, payloads);
  await sleep(2300);
  const olderThan = driver.minimumDeleteAge;
  const cutoff = new Date(Date.now() - olderThan);
  const listed = await collect(driver.list({ olderThan }));
  expect(listed).toHaveLength(300);
  // After the listing: 5 blobs re-referenced by a store (a refresh: new ETag), 5 deleted by someone else.
  await driver.store({}, payloads.slice(0, 5));
  const refreshed = new Set(claims.slice(0, 5).map((c) => c.claimData.key));
  const gone = listed.filter((o) => !refreshed.has(o.key)).slice(-5);
  for (const o of gone) await container.getBlockBlobClient(o.key).delete();
  net.proxy.requests.length = 0;
  const result = await driver.delete(listed, { referencedBefore: cutoff });
  expect({ ...result, errors: [...result.errors] }).toMatchObject({ deleted: 290, kept: 5, missing: 5, errors: [] });
  // Azurite answers 412 (not 404) to If-Match on a missing blob: the 10 refused deletes are looked up.
  expect(countOperations(net.proxy.requests)).toEqual({ BlobBatch: 2, GetBlobProperties: 10 });
  expect(await listNames(container)).toHaveLength(5);
  expect(await driver.retrieve({}, await driver.store({}, payloads.slice(0, 5)))).toHaveLength(5);
});

it('bare storage keys with a cutoff are looked up first: old deleted, young kept, absent missing', async () => {
  const [old, young] = [makePayload('old'), makePayload('young')];
  await driver.store({}, [old]);
  await sleep(2300);
  const cutoff = new Date(Date.now() - driver.minimumDeleteAge);
  await driver.store({}, [young]);
  const keys = (await collect(driver.list())).map((o) => o.key).sort();
  const absent = `v0/d/sha256/${'0'.repeat(64)}`;
  net.proxy.requests.length = 0;
  const result = await driver.delete([...keys, absent], { referencedBefore: cutoff });
  expect({ deleted: result.deleted, kept: result.kept, missing: result.missing }).toEqual({
    deleted: 1,
    kept: 1,
    missing: 1,
  });
  expect(countOperations(net.proxy.requests)).toEqual({ GetBlobProperties: 3, BlobBatch: 1 });
  expect(await driver.retrieve({}, await driver.store({}, [young]))).toHaveLength(1);
});

it('a listed object with a version it did not list is looked up like a bare key (never deleted on a guess)', async () => {
  await driver.store({}, [makePayload('kept young')]);
  const [listed] = await collect(driver.list());
  const forged = { ...(listed as StoredObject), version: 'az1:0:"0xFORGED"' };
  const tampered = { ...(listed as StoredObject), version: 'not a version' };
  await sleep(10);
  const cutoff = new Date(Date.now() - driver.minimumDeleteAge);
  // The forged version claims an old Last-Modified: the If-Match on its ETag fails (kept).
  expect(await driver.delete([forged], { referencedBefore: cutoff })).toMatchObject({ deleted: 0, kept: 1 });
  // An unreadable version: looked up; the blob is young (kept).
  expect(await driver.delete([tampered], { referencedBefore: cutoff })).toMatchObject({ deleted: 0, kept: 1 });
  expect(await listNames(container)).toHaveLength(1);
});

it('list pages through 5,001 blobs with two List Blobs requests', async () => {
  const direct = service.getContainerClient(container.containerName);
  const names = Array.from({ length: 5001 }, (_, i) => `v0/d/sha256/${i.toString(16).padStart(64, '0')}`);
  await mapBounded(names, 64, (name) =>
    direct
      .getBlockBlobClient(name)
      .upload(Buffer.from('x'), 1)
      .then(() => undefined),
  );
  net.proxy.requests.length = 0;
  const listed = await collect(driver.list());
  expect(listed).toHaveLength(5001);
  expect(countOperations(net.proxy.requests)).toEqual({ ListBlobs: 2 });
});
