/**
 * Smoke test of Azurite (Blob service, started by `bash scripts/services.sh start azurite`) with
 * the real `@azure/storage-blob` client: every operation an Azure Blob driver relies on is one
 * named test, so an emulator (or client) regression shows up by name, not as a driver failure.
 */
import { randomBytes } from 'node:crypto';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { SERVICES, uniqueName } from '../src';
import { loopbackOnly } from './loopback';

const guard = loopbackOnly();
const service = BlobServiceClient.fromConnectionString(SERVICES.azuriteConnectionString);
let container: ContainerClient;

/** The HTTP status and error code of a rejected client call (`undefined` if it did not reject). */
async function failureOf(call: Promise<unknown>): Promise<string | undefined> {
  try {
    await call;
    return undefined;
  } catch (e) {
    const { statusCode, code } = e as { statusCode?: number; code?: string };
    return code === undefined ? `${statusCode}` : `${statusCode} ${code}`;
  }
}

async function text(name: string): Promise<string> {
  return (await container.getBlockBlobClient(name).downloadToBuffer()).toString('utf8');
}

async function listNames(prefix: string): Promise<string[]> {
  const names: string[] = [];
  for await (const b of container.listBlobsFlat({ prefix })) names.push(b.name);
  return names;
}

beforeAll(async () => {
  container = service.getContainerClient(uniqueName('xs-smoke', { lowerCase: true, maxLength: 63 }));
  expect((await container.createIfNotExists()).succeeded).toBe(true);
});

afterAll(async () => {
  await container.deleteIfExists();
});

afterAll(() => {
  expect(guard.refused).toEqual([]);
});

test('createIfNotExists on an existing container reports it was not created', async () => {
  expect((await container.createIfNotExists()).succeeded).toBe(false);
});

test('upload + download round-trips the bytes', async () => {
  const data = randomBytes(100_000);
  await container.getBlockBlobClient('up/a').uploadData(data);
  expect(Buffer.compare(await container.getBlockBlobClient('up/a').downloadToBuffer(), data)).toBe(0);
});

describe('If-None-Match: * (create-only)', () => {
  test('creates an absent blob', async () => {
    await container.getBlockBlobClient('cas/new').uploadData(Buffer.from('one'), { conditions: { ifNoneMatch: '*' } });
    expect(await text('cas/new')).toBe('one');
  });

  test('over an existing blob answers 409 BlobAlreadyExists and keeps it', async () => {
    const blob = container.getBlockBlobClient('cas/existing');
    await blob.uploadData(Buffer.from('first'));
    expect(await failureOf(blob.uploadData(Buffer.from('second'), { conditions: { ifNoneMatch: '*' } }))).toBe(
      '409 BlobAlreadyExists',
    );
    expect(await text('cas/existing')).toBe('first');
  });

  test('a staged-block upload (Put Block + Put Block List) over an existing blob answers 409', async () => {
    const blob = container.getBlockBlobClient('cas/blocks');
    const options = { blockSize: 256 * 1024, maxSingleShotSize: 256 * 1024, conditions: { ifNoneMatch: '*' } };
    const data = randomBytes(600_000);
    await blob.uploadData(data, options);
    expect((await blob.getBlockList('committed')).committedBlocks).toHaveLength(3);
    expect(await failureOf(blob.uploadData(randomBytes(600_000), options))).toBe('409 BlobAlreadyExists');
    expect(Buffer.compare(await blob.downloadToBuffer(), data)).toBe(0);
  });

  test('concurrent create-only writers: exactly one wins, the others get 409', async () => {
    const blob = container.getBlockBlobClient('cas/race');
    const outcomes = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        failureOf(blob.uploadData(Buffer.from(`writer-${i}`), { conditions: { ifNoneMatch: '*' } })),
      ),
    );
    expect(outcomes.filter((o) => o === undefined)).toHaveLength(1);
    expect(outcomes.filter((o) => o?.startsWith('409'))).toHaveLength(7);
  });
});

describe('properties and reads', () => {
  test('getProperties carries lastModified, etag, contentLength, accessTier', async () => {
    await container.getBlockBlobClient('md/a').uploadData(Buffer.from('metadata'));
    const p = await container.getBlockBlobClient('md/a').getProperties();
    expect(p.lastModified).toBeInstanceOf(Date);
    expect(p.etag).toEqual(expect.any(String));
    expect(p.contentLength).toBe(8);
    expect(p.accessTier).toBe('Hot');
  });

  test('exists() tells present from absent; downloading an absent blob answers 404', async () => {
    expect(await container.getBlockBlobClient('md/a').exists()).toBe(true);
    expect(await container.getBlockBlobClient('md/absent').exists()).toBe(false);
    expect(await failureOf(container.getBlockBlobClient('md/absent').downloadToBuffer())).toMatch(/^404/);
  });

  test('setMetadata moves lastModified (last-referenced refresh)', async () => {
    const blob = container.getBlockBlobClient('md/touch');
    await blob.uploadData(Buffer.from('x'));
    const before = (await blob.getProperties()).lastModified!;
    await new Promise((r) => setTimeout(r, 1100)); // Last-Modified has one-second resolution
    await blob.setMetadata({ lastreferenced: String(Date.now()) });
    const after = (await blob.getProperties()).lastModified!;
    expect(after.getTime()).toBeGreaterThan(before.getTime());
  });

  test('uploading into a missing container answers 404 ContainerNotFound', async () => {
    const missing = service.getContainerClient(`${container.containerName}-missing`);
    expect(await failureOf(missing.getBlockBlobClient('x').uploadData(Buffer.from('x')))).toBe('404 ContainerNotFound');
  });
});

describe('listing', () => {
  beforeAll(async () => {
    const names = ['ls/a/1', 'ls/a/2', 'ls/b/1', 'ls/c'];
    for (let i = 0; i < 7; i++) names.push(`pg/${String(i).padStart(2, '0')}`);
    await Promise.all(
      names.map((n) => container.getBlockBlobClient(n).uploadData(Buffer.from('x'), { metadata: { origin: 'smoke' } })),
    );
  });

  test('listBlobsFlat pages with maxPageSize and resumes from a continuationToken', async () => {
    const seen: string[] = [];
    let pages = 0;
    let firstToken: string | undefined;
    for await (const page of container.listBlobsFlat({ prefix: 'pg/' }).byPage({ maxPageSize: 3 })) {
      pages++;
      firstToken ??= page.continuationToken;
      seen.push(...page.segment.blobItems.map((b) => b.name));
    }
    expect(seen).toEqual(['pg/00', 'pg/01', 'pg/02', 'pg/03', 'pg/04', 'pg/05', 'pg/06']);
    expect(pages).toBe(3);
    const resumed = await container
      .listBlobsFlat({ prefix: 'pg/' })
      .byPage({ maxPageSize: 3, continuationToken: firstToken })
      .next();
    expect(resumed.value?.segment.blobItems[0]?.name).toBe('pg/03');
  });

  test('listBlobsByHierarchy lists the direct blobs and the sub-prefixes', async () => {
    const names: string[] = [];
    const prefixes: string[] = [];
    for await (const item of container.listBlobsByHierarchy('/', { prefix: 'ls/' })) {
      (item.kind === 'prefix' ? prefixes : names).push(item.name);
    }
    expect(names).toEqual(['ls/c']);
    expect(prefixes).toEqual(['ls/a/', 'ls/b/']);
  });

  test('listed blobs carry lastModified, etag, accessTier and (includeMetadata) metadata', async () => {
    for await (const b of container.listBlobsFlat({ prefix: 'pg/00', includeMetadata: true })) {
      expect(b.properties.lastModified).toBeInstanceOf(Date);
      expect(b.properties.etag).toEqual(expect.any(String));
      expect(b.properties.accessTier).toBe('Hot');
      expect(b.metadata).toEqual({ origin: 'smoke' });
    }
    expect(await listNames('pg/00')).toEqual(['pg/00']);
  });
});

describe('access tiers', () => {
  test('upload with a tier, then setAccessTier Hot, Cool, Cold, Archive', async () => {
    const blob = container.getBlockBlobClient('tier/a');
    await blob.uploadData(Buffer.from('x'), { tier: 'Cool' });
    const tiers = [(await blob.getProperties()).accessTier];
    for (const tier of ['Hot', 'Cool', 'Cold', 'Archive'] as const) {
      await blob.setAccessTier(tier);
      tiers.push((await blob.getProperties()).accessTier);
    }
    expect(tiers).toEqual(['Cool', 'Hot', 'Cool', 'Cold', 'Archive']);
  });

  test('downloading an archived blob answers 409 BlobArchived', async () => {
    const blob = container.getBlockBlobClient('tier/archived');
    await blob.uploadData(Buffer.from('x'), { tier: 'Archive' });
    expect(await failureOf(blob.downloadToBuffer())).toBe('409 BlobArchived');
  });
});

describe('copy and delete', () => {
  test('beginCopyFromURL within the account copies the bytes', async () => {
    await container.getBlockBlobClient('cp/src').uploadData(Buffer.from('copied'));
    const poller = await container
      .getBlockBlobClient('cp/dst')
      .beginCopyFromURL(container.getBlockBlobClient('cp/src').url);
    expect((await poller.pollUntilDone()).copyStatus).toBe('success');
    expect(await text('cp/dst')).toBe('copied');
  });

  test('delete removes the blob; deleteIfExists then reports false; a second delete answers 404', async () => {
    const blob = container.getBlockBlobClient('del/a');
    await blob.uploadData(Buffer.from('x'));
    await blob.delete();
    expect((await blob.deleteIfExists()).succeeded).toBe(false);
    expect(await failureOf(blob.delete())).toBe('404 BlobNotFound');
  });

  test('delete with a stale ifMatch etag answers 412 ConditionNotMet', async () => {
    const blob = container.getBlockBlobClient('del/etag');
    const { etag } = await blob.uploadData(Buffer.from('v1'));
    await blob.uploadData(Buffer.from('v2'));
    expect(await failureOf(blob.delete({ conditions: { ifMatch: etag! } }))).toBe('412 ConditionNotMet');
  });

  test('BlobBatchClient.deleteBlobs deletes several blobs in one request; a missing one is a per-item 404', async () => {
    const names = ['batch/1', 'batch/2', 'batch/3'];
    await Promise.all(names.map((n) => container.getBlockBlobClient(n).uploadData(Buffer.from('x'))));
    const clients = [...names, 'batch/missing'].map((n) => container.getBlockBlobClient(n));
    const result = await container.getBlobBatchClient().deleteBlobs(clients);
    expect(result.subResponses.map((r) => r.status)).toEqual([202, 202, 202, 404]);
    expect(result.subResponses[3]?.errorCode).toBe('BlobNotFound');
    expect(await listNames('batch/')).toEqual([]);
  });

  test('BlobBatchClient.setBlobsAccessTier sets the tier of several blobs in one request', async () => {
    const names = ['batch-tier/1', 'batch-tier/2'];
    await Promise.all(names.map((n) => container.getBlockBlobClient(n).uploadData(Buffer.from('x'))));
    const result = await container.getBlobBatchClient().setBlobsAccessTier(
      names.map((n) => container.getBlockBlobClient(n)),
      'Cool',
    );
    expect(result.subResponses.map((r) => r.status)).toEqual([200, 200]);
    expect((await container.getBlockBlobClient('batch-tier/1').getProperties()).accessTier).toBe('Cool');
  });
});

describe('blob names', () => {
  test('space % # ? [ ] * : " < > | + = @ ~ and Unicode round-trip and list back; names are case-sensitive', async () => {
    const names = ['bn/a b', 'bn/100%25done', 'bn/a#b', 'bn/a?b', 'bn/a[b]', 'bn/a*b', 'bn/a:b', 'bn/a"b'];
    names.push('bn/a<b>', 'bn/a|b', 'bn/a+b=c@d', "bn/x!'()~", 'bn/日本語', 'bn/café', 'bn/%2E', 'bn/Aa', 'bn/aA');
    for (const n of names) await container.getBlockBlobClient(n).uploadData(Buffer.from(n));
    for (const n of names) expect(await text(n)).toBe(n);
    expect((await listNames('bn/')).sort()).toEqual([...names].sort());
  });

  test('the client sends "\\" as "/" and resolves "." and ".." segments (URL rules), so keys must escape them', async () => {
    await container.getBlockBlobClient('dots/a\\b').uploadData(Buffer.from('backslash'));
    await container.getBlockBlobClient('dots/./c').uploadData(Buffer.from('dot'));
    await container.getBlockBlobClient('dots/x/../d').uploadData(Buffer.from('dotdot'));
    expect((await listNames('dots/')).sort()).toEqual(['dots/a/b', 'dots/c', 'dots/d']);
  });
});
