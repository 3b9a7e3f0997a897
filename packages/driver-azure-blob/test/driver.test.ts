/**
 * The driver against Azurite, through a counting proxy: the requests each operation sends (the
 * costs the README quotes), the refresh, tiers and archived blobs, damaged blobs, container
 * routing and the allow-list, key prefixes and long keys.
 */
import type { ContainerClient } from '@azure/storage-blob';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import {
  encodePayload,
  type Payload,
  STORAGE_OPERATION_REPORT,
  StorageDriverClaim,
  type StorageDriverStoreContext,
  type StorageOperationReport,
  type StoredObject,
} from '@x/storage-driver-core';
import { makePayload, pseudoRandomBytes } from '@x/storage-driver-test-suite';
import { AZURE_HEAD_FIRST_MIN_BYTES, AzureBlobStorageDriver, type AzureBlobStorageDriverOptions } from '../src';
import {
  blobRequest,
  captureStorageDriverError,
  countOperations,
  createContainer,
  deleteContainer,
  errorCode,
  listNames,
  makeService,
  operation,
  sleep,
  useProxy,
} from './helpers';

const service = makeService();
const net = useProxy();
let container: ContainerClient;
const extra: string[] = [];

beforeEach(async () => {
  container = await createContainer(service, 'xaz-drv');
  net.proxy.reset();
});
afterEach(async () => {
  net.proxy.reset();
  for (const name of [container.containerName, ...extra.splice(0)]) await deleteContainer(service, name);
});

function driver(options: Partial<AzureBlobStorageDriverOptions> = {}): AzureBlobStorageDriver {
  return new AzureBlobStorageDriver({ client: net.client, container: container.containerName, ...options });
}

/** Operations the proxy saw since the last call, and forgets them. */
function take(): Record<string, number> {
  const counts = countOperations(net.proxy.requests);
  net.proxy.requests.length = 0;
  return counts;
}

/** Stores with an operation report; resolves to the claims and how many objects already existed. */
async function storeReported(
  d: AzureBlobStorageDriver,
  payloads: Payload[],
  context: StorageDriverStoreContext = {},
): Promise<{ claims: StorageDriverClaim[]; existing: number | undefined }> {
  let report: StorageOperationReport | undefined;
  const claims = await d.store(
    {
      ...context,
      [STORAGE_OPERATION_REPORT]: (r: StorageOperationReport) => (report = r),
    } as StorageDriverStoreContext,
    payloads,
  );
  return { claims, existing: report?.existing };
}

const small = () => makePayload(pseudoRandomBytes(4096, 1));
const large = () => makePayload(pseudoRandomBytes(AZURE_HEAD_FIRST_MIN_BYTES, 2));

describe('requests per operation', () => {
  it('store: a new blob is one create-only Put Blob (below 256 KiB) or a lookup and a Put Blob (from 256 KiB)', async () => {
    const d = driver();
    expect(await storeReported(d, [small()])).toMatchObject({ existing: 0 });
    expect(take()).toEqual({ PutBlob: 1 });
    await storeReported(d, [large()]);
    expect(take()).toEqual({ GetBlobProperties: 1, PutBlob: 1 });
  });

  it('store again (young blob) from another instance: a refused Put Blob and a lookup (small), a lookup only (large); no upload of a large body', async () => {
    await driver().store({}, [small(), large()]);
    take();
    const d = driver();
    expect(await storeReported(d, [small()])).toMatchObject({ existing: 1 });
    expect(take()).toEqual({ PutBlob: 1, GetBlobProperties: 1 });
    expect(await storeReported(d, [large()])).toMatchObject({ existing: 1 });
    expect(take()).toEqual({ GetBlobProperties: 1 });
  });

  it('store again from the instance that stored or read the blob: a lookup only, whatever its size', async () => {
    const d = driver();
    const [claim] = await d.store({}, [small()]);
    take();
    expect(await storeReported(d, [small()])).toMatchObject({ existing: 1 });
    expect(take()).toEqual({ GetBlobProperties: 1 });
    // An instance that has just read it (a workflow passing its input on to an activity).
    const reader = driver();
    await reader.retrieve({}, [claim as StorageDriverClaim]);
    take();
    expect(await storeReported(reader, [small()])).toMatchObject({ existing: 1 });
    expect(take()).toEqual({ GetBlobProperties: 1 });
  });

  it('store again (blob older than refreshAfter): plus one Set Blob Metadata', async () => {
    await driver({ refreshAfter: 1000 }).store({}, [small(), large()]);
    await sleep(2100);
    take();
    const d = driver({ refreshAfter: 1000 });
    await d.store({}, [small()]);
    expect(take()).toEqual({ PutBlob: 1, GetBlobProperties: 1, SetBlobMetadata: 1 });
    await d.store({}, [large()]);
    expect(take()).toEqual({ GetBlobProperties: 1, SetBlobMetadata: 1 });
  });

  it('existenceCheck head and conditional-put override the size rule', async () => {
    const head = driver({ existenceCheck: 'head' });
    await head.store({}, [small()]);
    expect(take()).toEqual({ GetBlobProperties: 1, PutBlob: 1 });
    await head.store({}, [small()]);
    expect(take()).toEqual({ GetBlobProperties: 1 });
    const put = driver({ existenceCheck: 'conditional-put' });
    await put.store({}, [large()]);
    expect(take()).toEqual({ PutBlob: 1 });
    await put.store({}, [large()]);
    expect(take()).toEqual({ PutBlob: 1, GetBlobProperties: 1 });
  });

  it('the Put Blob is create-only and carries Content-MD5 and the tier; the refresh is conditional on the ETag', async () => {
    const d = driver({ refreshAfter: 1000, accessTier: 'Cool' });
    await d.store({}, [small()]);
    const put = net.proxy.requests.find((r) => operation(r) === 'PutBlob');
    expect(put?.headers['if-none-match']).toBe('*');
    expect(put?.headers['x-ms-blob-content-md5']).toMatch(/^[A-Za-z0-9+/]{22}==$/);
    expect(put?.headers['x-ms-access-tier']).toBe('Cool');
    await sleep(2100);
    net.proxy.requests.length = 0;
    await d.store({}, [small()]);
    const touch = net.proxy.requests.find((r) => operation(r) === 'SetBlobMetadata');
    expect(touch?.headers['if-match']).toMatch(/^"0x[0-9A-F]+"$/);
  });

  it('retrieve: one Get Blob per distinct blob', async () => {
    const d = driver();
    const claims = await d.store({}, [small(), large(), small()]);
    take();
    expect(await d.retrieve({}, claims)).toHaveLength(3);
    expect(take()).toEqual({ GetBlob: 2 });
  });

  it('delete: one blob batch per 256 blobs; deleteExpired: one List Blobs page per 5,000 and the batches', async () => {
    const d = driver({ refreshAfter: 1000, concurrency: 32 });
    const payloads = Array.from({ length: 300 }, (_, i) => makePayload(`delete ${i}`));
    const claims = await d.store({}, payloads.slice(0, 150));
    await d.store({}, payloads.slice(150));
    const keys: string[] = [];
    for await (const o of d.list()) if (claims.some((c) => c.claimData.key === o.key)) keys.push(o.key);
    take();
    expect(await d.delete(keys)).toMatchObject({ deleted: 150, missing: 0 });
    expect(take()).toEqual({ BlobBatch: 1 });
    await sleep(2300);
    const result = await d.deleteExpired({ olderThan: d.minimumDeleteAge });
    expect([result.removed, result.errors]).toEqual([150, []]);
    expect(take()).toEqual({ ListBlobs: 1, BlobBatch: 1 });
    expect(await listNames(container)).toEqual([]);
  });

  it('store keeps at most `concurrency` requests in flight', async () => {
    const d = driver({ concurrency: 4 });
    await d.store(
      {},
      Array.from({ length: 40 }, (_, i) => makePayload(`c ${i}`)),
    );
    expect(net.proxy.peakInFlight).toBeLessThanOrEqual(4);
    expect(net.proxy.peakInFlight).toBeGreaterThan(1);
  });
});

describe('the last-referenced refresh', () => {
  it('moves Last-Modified and the ETag, and keeps the metadata and tier the blob has', async () => {
    const d = driver({ refreshAfter: 1000 });
    const [claim] = (await d.store({}, [small()])) as [StorageDriverClaim];
    const blob = container.getBlockBlobClient(claim.claimData.key as string);
    await blob.setMetadata({ owner: 'ops' });
    await blob.setAccessTier('Cold');
    const before = await blob.getProperties();
    await sleep(2100);
    await d.store({}, [small()]);
    const after = await blob.getProperties();
    expect(after.lastModified?.getTime()).toBeGreaterThan(before.lastModified?.getTime() as number);
    expect(after.etag).not.toBe(before.etag);
    expect([after.metadata, after.accessTier]).toEqual([{ owner: 'ops' }, 'Cold']);
  });

  it('a blob deleted between the lookup and the refresh is uploaded again (the claim stays good)', async () => {
    const d = driver({ refreshAfter: 1000, existenceCheck: 'head' });
    const payload = small();
    const [claim] = (await d.store({}, [payload])) as [StorageDriverClaim];
    await sleep(2100);
    take();
    net.proxy.hold = (r) =>
      operation(r) === 'SetBlobMetadata'
        ? container.getBlockBlobClient(claim.claimData.key as string).delete()
        : undefined;
    expect(await storeReported(d, [payload])).toMatchObject({ existing: 0 });
    // Azurite answers the Set Blob Metadata on the deleted blob with 412 (If-Match), not 404: the
    // driver then looks again (a second lookup, 404) before it uploads.
    const { GetBlobProperties: lookups, ...rest } = take();
    expect([rest, [1, 2].includes(lookups as number)]).toEqual([{ SetBlobMetadata: 1, PutBlob: 1 }, true]);
    net.proxy.hold = undefined;
    expect(await d.retrieve({}, [claim])).toHaveLength(1);
  });

  it('a refresh that lost a race (the ETag moved: 412) looks again and finds the blob young', async () => {
    const d = driver({ refreshAfter: 1000, existenceCheck: 'head' });
    const payload = small();
    const [claim] = (await d.store({}, [payload])) as [StorageDriverClaim];
    await sleep(2100);
    take();
    let raced = false;
    net.proxy.hold = (r) => {
      if (operation(r) !== 'SetBlobMetadata' || raced) return undefined;
      raced = true;
      return container.getBlockBlobClient(claim.claimData.key as string).setMetadata({ other: 'writer' });
    };
    await d.store({}, [payload]);
    expect(take()).toEqual({ GetBlobProperties: 2, SetBlobMetadata: 1 });
    expect(net.proxy.requests).toEqual([]);
  });
});

describe('tiers, archived and damaged blobs', () => {
  it('accessTier sets the tier of written blobs', async () => {
    const d = driver({ accessTier: 'Cold' });
    const [claim] = (await d.store({}, [small()])) as [StorageDriverClaim];
    expect((await container.getBlockBlobClient(claim.claimData.key as string).getProperties()).accessTier).toBe('Cold');
  });

  it('retrieving an archived blob fails with E_CONFIG (not retryable), naming the way out', async () => {
    const d = driver();
    const [claim] = (await d.store({}, [small()])) as [StorageDriverClaim];
    await container.getBlockBlobClient(claim.claimData.key as string).setAccessTier('Archive');
    const e = await captureStorageDriverError(() => d.retrieve({}, [claim]));
    expect([e.code, e.retryable]).toEqual(['E_CONFIG', false]);
    expect(e.message).toMatch(/BlobArchived \(HTTP 409\).*rehydrated/);
  });

  it('storing a payload whose blob is archived fails with E_CONFIG: its claim could not be read back', async () => {
    for (const payload of [small(), large()]) {
      const d = driver();
      const [claim] = (await d.store({}, [payload])) as [StorageDriverClaim];
      await container.getBlockBlobClient(claim.claimData.key as string).setAccessTier('Archive');
      expect(await errorCode(() => d.store({}, [payload]))).toBe('E_CONFIG');
    }
  });

  it('a blob of the wrong size under a key is overwritten by the next store (on that version only)', async () => {
    for (const payload of [small(), large()]) {
      const d = driver();
      const [claim] = (await d.store({}, [payload])) as [StorageDriverClaim];
      const blob = container.getBlockBlobClient(claim.claimData.key as string);
      await blob.upload(Buffer.from('torn'), 4);
      expect(await errorCode(() => d.retrieve({}, [claim]))).toBe('E_INTEGRITY');
      expect(await storeReported(d, [payload])).toMatchObject({ existing: 0 });
      expect(await d.retrieve({}, [claim])).toHaveLength(1);
    }
  });
});

describe('containers', () => {
  it('a selector routes payloads to several containers; list covers them all; claims name theirs', async () => {
    const second = await createContainer(service, 'xaz-drv2');
    extra.push(second.containerName);
    const names = [container.containerName, second.containerName];
    const d = driver({
      container: (context) => (context.target?.namespace === 'b' ? (names[1] as string) : (names[0] as string)),
      allowedContainers: names,
    });
    const target = (namespace: string) =>
      ({ target: { kind: 'workflow', namespace, type: 'W', id: 'w', runId: 'r' } }) as StorageDriverStoreContext;
    const [a] = (await d.store(target('a'), [makePayload('in a')])) as [StorageDriverClaim];
    const [b] = (await d.store(target('b'), [makePayload('in b')])) as [StorageDriverClaim];
    expect([a.claimData.container, b.claimData.container]).toEqual(names);
    expect(Object.keys(a.claimData).sort()).toEqual(['container', 'hash_algorithm', 'hash_value', 'key']);
    const listed: StoredObject[] = [];
    for await (const o of d.list()) listed.push(o);
    expect(listed.map((o) => o.location.container).sort()).toEqual([...names].sort());
    expect(await d.delete(listed)).toMatchObject({ deleted: 2 });
    expect(await errorCode(() => d.delete([listed[0]?.key as string]))).toBe('E_CONFIG');
  });

  it('a claim naming a container outside allowedContainers is refused before any request', async () => {
    const other = await createContainer(service, 'xaz-other');
    extra.push(other.containerName);
    const writer = new AzureBlobStorageDriver({ client: service, container: other.containerName });
    const [claim] = (await writer.store({}, [makePayload('elsewhere')])) as [StorageDriverClaim];
    take();
    expect(await errorCode(() => driver().retrieve({}, [claim]))).toBe('E_INVALID_CLAIM');
    expect(net.proxy.requests).toEqual([]);
  });

  it('a selector returning a container outside allowedContainers fails the store (E_CONFIG), writing nothing', async () => {
    const d = driver({ container: () => 'not-allowed', allowedContainers: [container.containerName] });
    expect(await errorCode(() => d.store({}, [makePayload('x')]))).toBe('E_CONFIG');
    const invalid = driver({ container: () => 'Not_A_Container', allowedContainers: [container.containerName] });
    expect(await errorCode(() => invalid.store({}, [makePayload('x')]))).toBe('E_CONFIG');
    const throwing = driver({
      container: () => {
        throw new Error('no route');
      },
      allowedContainers: [container.containerName],
    });
    expect(await errorCode(() => throwing.store({}, [makePayload('x')]))).toBe('E_CONFIG');
    expect(net.proxy.requests).toEqual([]);
  });

  it('a driver with a ContainerClient reads the claims of one with a BlobServiceClient, and the reverse', async () => {
    const byService = driver();
    const byContainer = new AzureBlobStorageDriver({ client: net.client.getContainerClient(container.containerName) });
    const [c1] = (await byService.store({}, [makePayload('one')])) as [StorageDriverClaim];
    const [c2] = (await byContainer.store({}, [makePayload('two')])) as [StorageDriverClaim];
    expect((await byContainer.retrieve({}, [c1])).length + (await byService.retrieve({}, [c2])).length).toBe(2);
  });
});

describe('blob names', () => {
  const wf = (id: string, namespace = 'default') => ({
    target: { kind: 'workflow' as const, namespace, type: 'W', id, runId: 'r' },
  });

  it('dots a client would resolve are stored under exactly the name in the claim', async () => {
    const d = driver();
    const claims = [];
    for (const id of ['.', '..', 'a.', '../../x', '..\\..\\y'])
      claims.push(...(await d.store(wf(id), [makePayload(id)])));
    const keys = claims.map((c) => c.claimData.key);
    expect(keys.map((k) => k?.split('/')[6])).toEqual(['%2E', '%2E%2E', 'a%2E', '..%2F..%2Fx', '..%5C..%5Cy']);
    expect(await listNames(container)).toEqual([...keys].sort());
    expect(await d.retrieve({}, claims)).toHaveLength(5);
  });

  it('keyPrefix: names carry it, list yields storage keys without it, and other prefixes stay readable', async () => {
    const d = driver({ keyPrefix: 'temporal/prod/' });
    const [claim] = (await d.store(wf('w'), [makePayload('prefixed')])) as [StorageDriverClaim];
    expect(claim.claimData.key).toMatch(
      /^temporal\/prod\/v0\/ns\/default\/wt\/W\/wi\/w\/ri\/r\/d\/sha256\/[0-9a-f]{64}$/,
    );
    const listed = [];
    for await (const o of d.list()) listed.push(o.key);
    expect(listed).toEqual([(claim.claimData.key as string).slice('temporal/prod/'.length)]);
    expect(await driver({ keyPrefix: 'other/' }).retrieve({}, [claim])).toHaveLength(1);
    const unprefixed = [];
    for await (const o of driver().list()) unprefixed.push(o.key);
    expect(unprefixed).toEqual([]);
  });

  it('a name over 1,024 characters (prefix included) becomes the namespace digest key', async () => {
    const prefix = `${'p'.repeat(99)}/`;
    const d = driver({ keyPrefix: prefix });
    const payload = makePayload('long');
    const hex = (await d.store({}, [payload]))[0]?.claimData.hash_value as string;
    const base = `v0/ns/default/wt/W/wi//ri/r/d/sha256/${hex}`;
    const fits = 'x'.repeat(1024 - prefix.length - base.length);
    const [exact] = (await d.store(wf(fits), [payload])) as [StorageDriverClaim];
    expect(exact.claimData.key).toHaveLength(1024);
    const [long] = (await d.store(wf(`${fits}x`), [payload])) as [StorageDriverClaim];
    expect(long.claimData.key).toBe(`${prefix}v0/ns/default/d/sha256/${hex}`);
    const [huge] = (await d.store(wf('id', 'n'.repeat(1000)), [payload])) as [StorageDriverClaim];
    expect(huge.claimData.key).toMatch(new RegExp(`^${prefix}v0/ns/%7E[0-9a-f]{64}/d/sha256/${hex}$`));
    expect(await d.retrieve({}, [exact, long, huge])).toHaveLength(3);
    for (const c of [exact, long, huge]) expect((c.claimData.key as string).length).toBeLessThanOrEqual(1024);
  });

  it('stores exactly the serialized Payload', async () => {
    const d = driver();
    const payload = makePayload('bytes');
    const [claim] = (await d.store({}, [payload])) as [StorageDriverClaim];
    const stored = await container.getBlockBlobClient(claim.claimData.key as string).downloadToBuffer();
    expect(Buffer.compare(stored, Buffer.from(encodePayload(payload)))).toBe(0);
  });
});

describe('claims', () => {
  it('hostile claims are refused before any request', async () => {
    const d = driver();
    const [claim] = (await d.store({}, [makePayload('valid')])) as [StorageDriverClaim];
    take();
    const h = claim.claimData.hash_value as string;
    const hostile: Record<string, string>[] = [
      { ...claim.claimData, container: 'another-one' },
      { ...claim.claimData, key: `v0/ns/x/wt/../wi/y/ri/r/d/sha256/${h}` },
      { ...claim.claimData, key: `v0/ns/x/wt/a./wi/y/ri/r/d/sha256/${h}` },
      { ...claim.claimData, key: `v0/ns/x/wt/${'x'.repeat(1000)}/wi/y/ri/r/d/sha256/${h}` },
      { hash_algorithm: 'sha256', hash_value: h, key: claim.claimData.key as string },
    ];
    for (const data of hostile) {
      expect(await errorCode(() => d.retrieve({}, [new StorageDriverClaim(data)]))).toBe('E_INVALID_CLAIM');
    }
    expect(net.proxy.requests.filter((r) => blobRequest(r, container.containerName))).toEqual([]);
  });
});
