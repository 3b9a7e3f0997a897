/**
 * Smoke test of the GCS emulator (`fake-gcs-server`, started by `bash scripts/services.sh start gcs`)
 * with the real `@google-cloud/storage` client: every operation a GCS driver relies on is one named
 * test, so an emulator (or client) regression shows up by name, not as a driver failure.
 */
import { createHash, randomBytes } from 'node:crypto';
import { type Bucket, type File, type GetFilesOptions, Storage } from '@google-cloud/storage';
import { SERVICES, uniqueName } from '../src';
import { loopbackOnly } from './loopback';

const ENDPOINT = SERVICES.gcsEndpoint;
// A project id must be given: without one the client asks the GCE metadata server for it.
const PROJECT_ID = SERVICES.gcsProjectId;

const guard = loopbackOnly();
const storage = new Storage({ apiEndpoint: ENDPOINT, projectId: PROJECT_ID });
let bucket: Bucket;

/** The HTTP status of a rejected client call (`undefined` if it did not reject). */
async function statusOf(call: Promise<unknown>): Promise<number | undefined> {
  try {
    await call;
    return undefined;
  } catch (e) {
    return (e as { code?: number }).code;
  }
}

async function text(file: File): Promise<string> {
  const [contents] = await file.download();
  return contents.toString('utf8');
}

beforeAll(async () => {
  [bucket] = await storage.createBucket(uniqueName('xs-smoke', { lowerCase: true, maxLength: 63 }));
});

afterAll(async () => {
  await bucket.deleteFiles({ force: true });
  await bucket.delete();
});

afterAll(() => {
  expect(guard.refused).toEqual([]);
});

test('the bucket exists after createBucket', async () => {
  const [exists] = await bucket.exists();
  expect(exists).toBe(true);
});

describe('uploads', () => {
  test('multipart upload (resumable: false) round-trips the bytes', async () => {
    const data = randomBytes(100_000);
    await bucket.file('up/multipart').save(data, { resumable: false });
    const [got] = await bucket.file('up/multipart').download();
    expect(Buffer.compare(got, data)).toBe(0);
  });

  test('resumable upload in several 256 KiB chunks round-trips the bytes', async () => {
    const data = randomBytes(3 * 256 * 1024 + 1000);
    await bucket.file('up/resumable').save(data, { resumable: true, chunkSize: 256 * 1024 });
    const [got] = await bucket.file('up/resumable').download();
    expect(Buffer.compare(got, data)).toBe(0);
  });

  test('download validates the checksums the server sends (x-goog-hash crc32c/md5)', async () => {
    const data = randomBytes(10_000);
    await bucket.file('up/checksummed').save(data, { resumable: false });
    const [got] = await bucket.file('up/checksummed').download({ validation: 'crc32c' });
    expect(got.length).toBe(data.length);
  });
});

describe('ifGenerationMatch preconditions', () => {
  test('ifGenerationMatch: 0 creates an absent object', async () => {
    await bucket.file('cas/new').save('one', { resumable: false, preconditionOpts: { ifGenerationMatch: 0 } });
    expect(await text(bucket.file('cas/new'))).toBe('one');
  });

  test.each([
    ['multipart', false],
    ['resumable', true],
  ])(
    'ifGenerationMatch: 0 on a %s upload over an existing object answers 412 and keeps it',
    async (kind, resumable) => {
      const file = bucket.file(`cas/existing-${kind}`);
      await file.save('first', { resumable: false });
      const status = await statusOf(file.save('second', { resumable, preconditionOpts: { ifGenerationMatch: 0 } }));
      expect(status).toBe(412);
      expect(await text(file)).toBe('first');
    },
  );

  test('ifGenerationMatch: 0 with save() defaults (the official TS GCS client) answers 412 over an existing object', async () => {
    const file = bucket.file('cas/defaults');
    await file.save(Buffer.from('first'), { preconditionOpts: { ifGenerationMatch: 0 } });
    expect(await statusOf(file.save(Buffer.from('second'), { preconditionOpts: { ifGenerationMatch: 0 } }))).toBe(412);
    expect(await text(file)).toBe('first');
  });

  test('concurrent create-only writers: exactly one wins, the others get 412', async () => {
    const file = bucket.file('cas/race');
    const outcomes = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        statusOf(file.save(`writer-${i}`, { resumable: false, preconditionOpts: { ifGenerationMatch: 0 } })),
      ),
    );
    expect(outcomes.filter((s) => s === undefined)).toHaveLength(1);
    expect(outcomes.filter((s) => s === 412)).toHaveLength(7);
  });

  test('ifGenerationMatch: <current generation> replaces it; the stale generation then answers 412', async () => {
    const file = bucket.file('cas/generation');
    await file.save('v1', { resumable: false });
    const [v1] = await file.getMetadata();
    await file.save('v2', { resumable: false, preconditionOpts: { ifGenerationMatch: v1.generation! } });
    const [v2] = await file.getMetadata();
    expect(String(v2.generation)).not.toBe(String(v1.generation));
    expect(
      await statusOf(file.save('v3', { resumable: false, preconditionOpts: { ifGenerationMatch: v1.generation! } })),
    ).toBe(412);
    expect(await text(file)).toBe('v2');
  });
});

describe('metadata and reads', () => {
  test('getMetadata carries generation, metageneration, updated, timeCreated, size, md5Hash, crc32c', async () => {
    const data = Buffer.from('metadata');
    await bucket.file('md/a').save(data, { resumable: false });
    const [md] = await bucket.file('md/a').getMetadata();
    expect(Number(md.generation)).toBeGreaterThan(0);
    expect(Number(md.metageneration)).toBeGreaterThan(0);
    expect(Number.isNaN(Date.parse(String(md.updated)))).toBe(false);
    expect(Number.isNaN(Date.parse(String(md.timeCreated)))).toBe(false);
    expect(Number(md.size)).toBe(data.length);
    expect(md.md5Hash).toBe(createHash('md5').update(data).digest('base64'));
    expect(md.crc32c).toEqual(expect.any(String));
  });

  test('exists() tells present from absent; downloading an absent object answers 404', async () => {
    await bucket.file('md/present').save('x', { resumable: false });
    expect((await bucket.file('md/present').exists())[0]).toBe(true);
    expect((await bucket.file('md/absent').exists())[0]).toBe(false);
    expect(await statusOf(bucket.file('md/absent').download())).toBe(404);
  });

  test('a ranged download returns the requested bytes', async () => {
    await bucket.file('md/range').save('0123456789', { resumable: false });
    const [got] = await bucket.file('md/range').download({ start: 2, end: 5 });
    expect(got.toString()).toBe('2345');
  });

  test('writing into a missing bucket answers 404', async () => {
    const status = await statusOf(storage.bucket(`${bucket.name}-missing`).file('x').save('x', { resumable: false }));
    expect(status).toBe(404);
  });
});

describe('listing', () => {
  beforeAll(async () => {
    const names = ['ls/a/1', 'ls/a/2', 'ls/b/1', 'ls/c', 'lt/x'];
    for (let i = 0; i < 7; i++) names.push(`pg/${String(i).padStart(2, '0')}`);
    await Promise.all(names.map((n) => bucket.file(n).save('x', { resumable: false })));
  });

  test('prefix + delimiter lists the direct objects and the sub-prefixes', async () => {
    const [files, , response] = await bucket.getFiles({ prefix: 'ls/', delimiter: '/', autoPaginate: false });
    expect(files.map((f) => f.name).sort()).toEqual(['ls/c']);
    expect(((response as { prefixes?: string[] }).prefixes ?? []).sort()).toEqual(['ls/a/', 'ls/b/']);
  });

  test('maxResults + pageToken pages through every object once', async () => {
    let query: GetFilesOptions | null = { prefix: 'pg/', maxResults: 3, autoPaginate: false };
    const seen: string[] = [];
    let pages = 0;
    while (query !== null && pages < 10) {
      const [files, next]: [File[], GetFilesOptions | null, unknown] = await bucket.getFiles(query);
      pages++;
      expect(files.length).toBeLessThanOrEqual(3);
      seen.push(...files.map((f) => f.name));
      query = next;
    }
    expect(seen).toEqual(['pg/00', 'pg/01', 'pg/02', 'pg/03', 'pg/04', 'pg/05', 'pg/06']);
    expect(pages).toBe(3);
  });

  test('startOffset/endOffset bound the listing', async () => {
    const [files] = await bucket.getFiles({ prefix: 'pg/', startOffset: 'pg/02', endOffset: 'pg/05' });
    expect(files.map((f) => f.name)).toEqual(['pg/02', 'pg/03', 'pg/04']);
  });

  test('listed objects carry updated and generation', async () => {
    const [files] = await bucket.getFiles({ prefix: 'pg/', maxResults: 1, autoPaginate: false });
    expect(files[0]?.metadata.generation).toBeDefined();
    expect(Number.isNaN(Date.parse(String(files[0]?.metadata.updated)))).toBe(false);
  });
});

describe('copy, rewrite, delete', () => {
  test('copy (the rewrite API) to a new name duplicates the bytes', async () => {
    await bucket.file('cp/src').save('copied', { resumable: false });
    await bucket.file('cp/src').copy(bucket.file('cp/dst'));
    expect(await text(bucket.file('cp/dst'))).toBe('copied');
  });

  test('a rewrite in place with new metadata moves updated and generation (last-referenced refresh)', async () => {
    const file = bucket.file('cp/touch');
    await file.save('touch', { resumable: false });
    const [before] = await file.getMetadata();
    await new Promise((r) => setTimeout(r, 20));
    await file.copy(file, { metadata: { lastReferenced: String(Date.now()) } });
    const [after] = await file.getMetadata();
    expect(Date.parse(String(after.updated))).toBeGreaterThan(Date.parse(String(before.updated)));
    expect(String(after.generation)).not.toBe(String(before.generation));
    expect(await text(file)).toBe('touch');
  });

  test('delete removes the object; deleting it again answers 404; ignoreNotFound accepts that', async () => {
    const file = bucket.file('del/a');
    await file.save('x', { resumable: false });
    await file.delete();
    expect((await file.exists())[0]).toBe(false);
    expect(await statusOf(file.delete())).toBe(404);
    await file.delete({ ignoreNotFound: true });
  });

  test('deleteFiles({ prefix }) deletes every object under the prefix', async () => {
    await Promise.all(['dp/1', 'dp/2', 'dp/3'].map((n) => bucket.file(n).save('x', { resumable: false })));
    await bucket.deleteFiles({ prefix: 'dp/' });
    const [left] = await bucket.getFiles({ prefix: 'dp/' });
    expect(left).toHaveLength(0);
  });
});

test('object names with space % # ? [ ] * : " < > | + = @ ~ and Unicode round-trip and list back', async () => {
  const names = ['on/a b', 'on/100%25done', 'on/a#b', 'on/a?b', 'on/a[b]', 'on/a*b', 'on/a:b', 'on/a"b'];
  names.push('on/a<b>', 'on/a|b', 'on/a+b=c@d', "on/x!'()~", 'on/日本語', 'on/café', 'on/%2E', 'on/...');
  for (const n of names) await bucket.file(n).save(n, { resumable: false });
  for (const n of names) expect(await text(bucket.file(n))).toBe(n);
  const [files] = await bucket.getFiles({ prefix: 'on/' });
  expect(files.map((f) => f.name).sort()).toEqual([...names].sort());
});
