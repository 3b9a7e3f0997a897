/**
 * The S3 lifecycle (issue 14) against moto, with requests counted (and some answered or held) at a
 * loopback proxy: in-place refreshes that keep the object as it is and change its ETag, the
 * refresh decided at the end of a batch, exact conditional deletes, listing, unconditional
 * deletes in batches of 1,000, and the extra requests of a refresh.
 *
 * Objects age by the drivers' clock (the `clock` option) running ahead of S3's, not by waiting:
 * the driver measures ages from its clock against S3's `LastModified`, which moto dates with the
 * real clock. `refreshAfter` is 60 s, far more than any test takes, so real time never makes an
 * object look old, however loaded the machine. The only real waits (at most a second or two) are
 * where S3's own `LastModified` must move to a later second (see {@link untilS3Dates}).
 */
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import {
  encodePayload,
  type Payload,
  type StorageDriverClaim,
  StorageDriverErrorCode,
  type StoredObject,
  sha256Hex,
} from '@x/storage-driver-core';
import { makePayload, pseudoRandomBytes } from '@x/storage-driver-test-suite';
import { FaultProxy, type ProxiedRequest, SERVICES } from '@x/test-servers';
import {
  refreshAllowance,
  S3_DEFAULT_REFRESH_AFTER,
  S3StorageDriver,
  type S3StorageDriverOptions,
  s3MinimumDeleteAge,
} from '../src';
import {
  countOperations,
  createBucket,
  deleteBucket,
  errorCode,
  listKeys,
  makeClient,
  s3Error,
  s3Operation,
} from './helpers';

/**
 * `refreshAfter` of these tests: 60 s. `LastModified` is truncated to the second, so an object
 * written now can look up to 1 s older than it is; 60 s keeps a fresh object from looking old even
 * when a loaded machine makes a test take many seconds.
 */
const REFRESH_AFTER = 60_000;
/** How far the drivers' clock runs ahead of real time (S3's clock): 0 at the start of every test. */
let ahead = 0;
/** The clock of every driver these tests create. */
const clock = () => Date.now() + ahead;
/** A jump of the drivers' clock after which everything written before it is older than `REFRESH_AFTER`. */
const AGE = REFRESH_AFTER + 1100;
/**
 * Runs `fn` as if `REFRESH_AFTER` + 1.1 s had passed since every object was last written: the
 * drivers' clock is that far ahead of S3's during `fn`, and back at S3's afterwards, so that what
 * `fn` wrote or refreshed (which S3 dates with its real clock) is young again, as after a real wait.
 */
async function later<T>(fn: () => Promise<T>): Promise<T> {
  ahead = AGE;
  try {
    return await fn();
  } finally {
    ahead = 0;
  }
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/**
 * Waits, in real time, until S3 dates whatever is written next at `t` or later. For the checks that
 * need S3's own `LastModified` (its real clock, truncated to the second) to move on, which no
 * driver clock can fake; at most a second or so, and robust under load (it only orders events on
 * one machine's clock).
 */
async function untilS3Dates(t: number): Promise<void> {
  const from = Math.ceil(t / 1000) * 1000;
  while (Date.now() < from) await sleep(from - Date.now());
}

const direct = makeClient();
let proxy: FaultProxy;
let client: S3Client;
let bucket: string;
const extraBuckets: string[] = [];

beforeAll(async () => {
  proxy = await FaultProxy.start(SERVICES.s3Endpoint);
  client = makeClient(proxy.endpoint);
});
beforeEach(async () => {
  ahead = 0;
  bucket = await createBucket(direct, 'lc');
  proxy.clearRequests();
});
afterEach(async () => {
  ahead = 0;
  proxy.inject = undefined;
  proxy.hold = undefined;
  for (const b of [bucket, ...extraBuckets.splice(0)]) await deleteBucket(direct, b);
});
afterAll(async () => {
  client.destroy();
  direct.destroy();
  await proxy.close();
});

// HEAD first for every object (auto mode's order from 1 MiB up), so a dedup hit is one HEAD; the
// refresh after a refused conditional PUT is tested with existenceCheck: 'conditional-put'.
const driverOf = (options: Partial<S3StorageDriverOptions> = {}) =>
  new S3StorageDriver({ client, bucket, refreshAfter: REFRESH_AFTER, headFirstMinSize: 0, clock, ...options });
const batch = (n: number, seed: number) =>
  Array.from({ length: n }, (_, i) => makePayload(pseudoRandomBytes(1024, seed * 1000 + i)));
/** Requests to this test's bucket (objects and the bucket itself). */
const bucketRequests = (b = bucket) => proxy.requests.filter((r) => r.path === `/${b}` || r.path.startsWith(`/${b}/`));
const operations = (b = bucket) => countOperations(bucketRequests(b));
const head = (key: string, b = bucket) => direct.send(new HeadObjectCommand({ Bucket: b, Key: key }));
async function collect(iterable: AsyncIterable<StoredObject>): Promise<StoredObject[]> {
  const out: StoredObject[] = [];
  for await (const o of iterable) out.push(o);
  return out;
}

describe('options', () => {
  it('refreshAfter defaults to a day; the minimum delete age adds a quarter of it (at most 15 min) and 1 s', () => {
    const d = new S3StorageDriver({ client: direct, bucket: 'b' });
    expect(d.refreshAfter).toBe(S3_DEFAULT_REFRESH_AFTER);
    expect(d.minimumDeleteAge).toBe(86_400_000 + 15 * 60_000 + 1000);
    expect(s3MinimumDeleteAge(1000)).toBe(1000 + 250 + 1000);
    expect(refreshAllowance(4000)).toBe(1000);
    expect(d.capabilities).toMatchObject({
      list: true,
      delete: true,
      deleteExpired: true,
      close: true,
      lastReferenced: 'exact',
      expiry: 'none',
    });
    expect(new S3StorageDriver({ client: direct, bucket: 'b', ttl: 30 * 86_400_000 }).capabilities.expiry).toBe(
      'sweep',
    );
  });

  it.each<[string, Partial<S3StorageDriverOptions>]>([
    ['refreshAfter below 1 s', { refreshAfter: 999 }],
    ['refreshAfter not an integer', { refreshAfter: 1500.5 }],
    ['refreshAfter over a year', { refreshAfter: 366 * 86_400_000 }],
    ['ttl below the minimum delete age', { refreshAfter: 60_000, ttl: 60_000 }],
    ['ttl below the default minimum delete age', { ttl: 86_400_000 }],
    ['existence cache ttl not below refreshAfter', { refreshAfter: 60_000, existenceCache: { ttl: 60_000 } }],
    ['existence cache ttl of a day with the default refreshAfter', { existenceCache: { ttl: 86_400_000 } }],
  ])('%s → E_CONFIG', async (_n, options) => {
    expect(await errorCode(async () => new S3StorageDriver({ client: direct, bucket: 'b', ...options }))).toBe(
      StorageDriverErrorCode.CONFIG,
    );
  });

  it('deleteExpired and conditional deletes younger than the minimum delete age → E_CONFIG', async () => {
    const d = driverOf();
    const minimum = s3MinimumDeleteAge(REFRESH_AFTER);
    expect(await errorCode(() => d.deleteExpired({ olderThan: minimum - 1 }))).toBe(StorageDriverErrorCode.CONFIG);
    expect(await errorCode(() => d.delete([], { referencedBefore: new Date(clock() - minimum + 1000) }))).toBe(
      StorageDriverErrorCode.CONFIG,
    );
    await expect(d.deleteExpired({ olderThan: minimum })).resolves.toMatchObject({ removed: 0 });
  });
});

describe('refresh on a dedup hit', () => {
  it('keeps metadata, content headers, SSE, storage class and tags, and changes the ETag every time (MD5 ↔ …-1)', async () => {
    const payload = makePayload('refresh me');
    const bytes = encodePayload(payload);
    const key = `v0/d/sha256/${sha256Hex(bytes)}`;
    // Written by "another tool", with user metadata and content headers this driver never sets.
    await direct.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: key,
        Body: bytes,
        Metadata: { origin: 'python-worker' },
        ContentType: 'application/x-protobuf',
        CacheControl: 'no-store',
        ServerSideEncryption: 'aws:kms',
        SSEKMSKeyId: 'arn:aws:kms:us-east-1:123456789012:key/lifecycle-test',
        BucketKeyEnabled: true,
        StorageClass: 'STANDARD_IA',
        Tagging: 'temporal-payload=true&team=payments',
      }),
    );
    const original = await head(key);
    const d = driverOf();
    const etags = [original.ETag];
    let lastModified = original.LastModified?.getTime() ?? 0;
    for (let i = 0; i < 3; i++) {
      // Real time: so that the LastModified S3 gives the copy is later than the last one (same second otherwise).
      await untilS3Dates(lastModified + 1000);
      proxy.clearRequests();
      const before = Date.now();
      await later(() => d.store({}, [payload]));
      const h = await head(key);
      etags.push(h.ETag);
      lastModified = h.LastModified?.getTime() ?? 0;
      expect(lastModified).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
      expect({
        metadata: h.Metadata,
        contentType: h.ContentType,
        cacheControl: h.CacheControl,
        sse: h.ServerSideEncryption,
        kmsKeyId: h.SSEKMSKeyId,
        storageClass: h.StorageClass,
        size: h.ContentLength,
      }).toEqual({
        metadata: { origin: 'python-worker' },
        contentType: 'application/x-protobuf',
        cacheControl: 'no-store',
        sse: 'aws:kms',
        kmsKeyId: original.SSEKMSKeyId,
        storageClass: 'STANDARD_IA',
        size: bytes.byteLength,
      });
      const tags = await direct.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: key }));
      expect(Object.fromEntries((tags.TagSet ?? []).map((t) => [t.Key, t.Value]))).toEqual({
        'temporal-payload': 'true',
        team: 'payments',
      });
      // MD5 → one-part multipart copy (tags read first: a multipart upload does not copy them);
      // multipart → single CopyObject (which copies them).
      expect(operations()).toEqual(
        i % 2 === 0
          ? {
              HeadObject: 1,
              GetObjectTagging: 1,
              CreateMultipartUpload: 1,
              UploadPartCopy: 1,
              CompleteMultipartUpload: 1,
            }
          : { HeadObject: 1, CopyObject: 1 },
      );
      // What the copy asked for, at the wire (moto drops the bucket key of a multipart upload).
      const copy = bucketRequests().find((r) => ['CreateMultipartUpload', 'CopyObject'].includes(s3Operation(r)));
      expect(copy?.headers).toMatchObject(
        i === 0
          ? {
              'x-amz-server-side-encryption': 'aws:kms',
              'x-amz-server-side-encryption-aws-kms-key-id': original.SSEKMSKeyId,
              'x-amz-server-side-encryption-bucket-key-enabled': 'true',
              'x-amz-storage-class': 'STANDARD_IA',
              'x-amz-meta-origin': 'python-worker',
              'x-amz-tagging': 'temporal-payload=true&team=payments',
              'content-type': 'application/x-protobuf',
              'cache-control': 'no-store',
            }
          : i === 1
            ? { 'x-amz-metadata-directive': 'REPLACE', 'x-amz-tagging-directive': 'COPY' }
            : {},
      );
      const [back] = await d.retrieve({}, [(await d.store({}, [payload]))[0] as StorageDriverClaim]);
      expect(back?.data).toEqual(payload.data);
    }
    // Each refresh changed the ETag, alternating between the MD5 and the one-part multipart form.
    expect(etags.map((e) => /-1"$/.test(e ?? ''))).toEqual([false, true, false, true]);
    for (let i = 1; i < etags.length; i++) expect(etags[i]).not.toBe(etags[i - 1]);
    // ...so the form comes back after two refreshes: why a listing older than refreshAfter is re-checked.
    expect(etags[2]).toBe(etags[0]);
  });

  it('a young object is not copied; the cache remembers LastModified and does not let an old object skip its refresh', async () => {
    const payloads = batch(4, 1);
    await driverOf().store({}, payloads);
    ahead = REFRESH_AFTER - 20_000; // young: under 41 s old even by S3's rounded-down LastModified
    const d = driverOf({ existenceCache: { ttl: 30_000 } });
    proxy.clearRequests();
    await d.store({}, payloads);
    expect(operations()).toEqual({ HeadObject: 4 });
    proxy.clearRequests();
    await d.store({}, payloads);
    expect(operations()).toEqual({}); // cached and young: no request
    // 21.1 s later: still cached (confirmed < 30 s ago, by the drivers' clock and by the cache's own
    // monotonic one alike), but the objects are now over refreshAfter old.
    ahead = AGE;
    proxy.clearRequests();
    await d.store({}, payloads);
    // Cached but old: looked up and refreshed as without the cache.
    expect(operations()).toEqual({
      HeadObject: 4,
      CreateMultipartUpload: 4,
      UploadPartCopy: 4,
      CompleteMultipartUpload: 4,
    });
    proxy.clearRequests();
    await d.store({}, payloads);
    expect(operations()).toEqual({});
  });

  it('the refresh is decided at the end of the batch: an object young at its HEAD but old when the batch ends is refreshed', async () => {
    const d = driverOf();
    const [early] = batch(1, 2) as [Payload];
    const [claim] = (await d.store({}, [early])) as [StorageDriverClaim];
    const before = (await head(claim.claimData.key as string)).ETag;
    const [late] = batch(1, 3) as [Payload];
    const lateKey = `v0/d/sha256/${sha256Hex(encodePayload(late))}`;
    proxy.clearRequests();
    // The new payload's PUT is slow: while it is in flight the drivers' clock moves AGE on, so the
    // early object (young at its HEAD, which has answered) is old when the batch ends, and so is the
    // new one by the driver's count from when it sent the PUT. S3 dates an object when its PUT
    // arrives, here AGE after it was sent; moto dates it with the real clock instead, so the drivers'
    // clock goes back to S3's when the batch's end looks the new object up: its HEAD reads young.
    proxy.hold = (r) => {
      if (s3Operation(r) === 'PutObject') ahead = AGE;
      else if (s3Operation(r) === 'HeadObject' && ahead > 0 && r.path.endsWith(`/${lateKey}`)) ahead = 0;
      return undefined;
    };
    await d.store({}, [early, late]);
    proxy.hold = undefined;
    // HEADs: the early object's; the new one's (missing) before its PUT; and the new one's again at
    // the end, because the driver counts an upload's age from when it was sent (AGE before S3 got
    // it), which the HEAD corrects without a copy.
    expect(operations()).toEqual({
      HeadObject: 3,
      PutObject: 1,
      CreateMultipartUpload: 1,
      UploadPartCopy: 1,
      CompleteMultipartUpload: 1,
    });
    expect((await head(claim.claimData.key as string)).ETag).not.toBe(before);
  });

  it('conditional-put: a 412 says the object exists but not its age, so it is looked up (HEAD) and refreshed if old', async () => {
    const d = driverOf({ existenceCheck: 'conditional-put' });
    const payloads = batch(3, 4);
    await d.store({}, payloads);
    proxy.clearRequests();
    await d.store({}, payloads);
    expect(operations()).toEqual({ PutObject: 3, HeadObject: 3 });
    proxy.clearRequests();
    await later(() => d.store({}, payloads));
    expect(operations()).toEqual({
      PutObject: 3,
      HeadObject: 3,
      CreateMultipartUpload: 3,
      UploadPartCopy: 3,
      CompleteMultipartUpload: 3,
    });
  });

  it('conditional-put on a server without conditional writes (501) looks first: an existing object is never rewritten (same ETag, new LastModified)', async () => {
    const payloads = batch(2, 15);
    const [old] = payloads as [Payload];
    const [claim] = (await driverOf().store({}, [old])) as [StorageDriverClaim];
    const before = await head(claim.claimData.key as string);
    // Real time: a plain PUT over the object now would give it a later LastModified (S3's clock).
    await untilS3Dates((before.LastModified?.getTime() ?? 0) + 1000);
    proxy.inject = (r) =>
      s3Operation(r) === 'PutObject' && r.headers['if-none-match']
        ? s3Error({ status: 501, code: 'NotImplemented' })
        : undefined;
    proxy.clearRequests();
    // The object is young (a second or so old, refreshAfter 60 s): no refresh copy joins the requests counted here.
    const d = driverOf({ existenceCheck: 'conditional-put' });
    await d.store({}, [old]);
    // The conditional PUT is refused (501), then a HEAD finds the object: no plain PUT over it.
    expect(bucketRequests().map(s3Operation)).toEqual(['PutObject', 'HeadObject']);
    expect((await head(claim.claimData.key as string)).LastModified).toEqual(before.LastModified);
    proxy.clearRequests();
    await d.store({}, payloads);
    expect(bucketRequests().map((r) => `${s3Operation(r)}${r.headers['if-none-match'] ? '*' : ''}`)).toEqual([
      'HeadObject',
      'HeadObject',
      'PutObject',
    ]);
    proxy.inject = undefined;
  });

  it('an object deleted just before its refresh copy is uploaded again: the claim the store returns resolves', async () => {
    const d = driverOf();
    const [p] = batch(1, 5) as [Payload];
    const [claim] = (await d.store({}, [p])) as [StorageDriverClaim];
    proxy.clearRequests();
    // A sweep wins the race: the object goes between the store's HEAD and its copy.
    proxy.hold = (r) =>
      s3Operation(r) === 'CreateMultipartUpload'
        ? direct.send(new DeleteObjectCommand({ Bucket: bucket, Key: claim.claimData.key }))
        : undefined;
    const [again] = (await later(() => d.store({}, [p]))) as [StorageDriverClaim];
    proxy.hold = undefined;
    expect(operations()).toMatchObject({ HeadObject: 1, UploadPartCopy: 1, AbortMultipartUpload: 1, PutObject: 1 });
    expect((await d.retrieve({}, [again]))[0]?.data).toEqual(p.data);
  });

  it('a copy refused because the source changed (412 on x-amz-copy-source-if-match) is looked up again, not trusted blindly', async () => {
    const d = driverOf();
    const [p] = batch(1, 6) as [Payload];
    const [claim] = (await d.store({}, [p])) as [StorageDriverClaim];
    proxy.clearRequests();
    let refusals = 1;
    // moto ignores x-amz-copy-source-if-match; the proxy answers as S3 does when another writer got there first.
    proxy.inject = (r) =>
      s3Operation(r) === 'UploadPartCopy' && refusals-- > 0
        ? s3Error({ status: 412, code: 'PreconditionFailed' })
        : undefined;
    await later(() => d.store({}, [p]));
    proxy.inject = undefined;
    // The first HEAD, the refused copy (aborted), then a HEAD that still finds it old, and a copy.
    expect(bucketRequests().map(s3Operation)).toEqual([
      'HeadObject',
      'CreateMultipartUpload',
      'UploadPartCopy',
      'AbortMultipartUpload',
      'HeadObject',
      'CreateMultipartUpload',
      'UploadPartCopy',
      'CompleteMultipartUpload',
    ]);
    expect((await head(claim.claimData.key as string)).ETag).toMatch(/-1"$/);
  });

  it('an archived object due for a refresh fails the store with E_CONFIG saying so', async () => {
    const d = driverOf();
    const [p] = batch(1, 7) as [Payload];
    const bytes = encodePayload(p);
    // Uploaded in one part by another tool (ETag …-1, so the refresh is a CopyObject, which moto
    // refuses for an archived source as S3 does) and archived.
    const Key = `v0/d/sha256/${sha256Hex(bytes)}`;
    const { UploadId } = await direct.send(
      new CreateMultipartUploadCommand({ Bucket: bucket, Key, StorageClass: 'GLACIER' }),
    );
    const part = await direct.send(
      new UploadPartCommand({ Bucket: bucket, Key, UploadId, PartNumber: 1, Body: bytes }),
    );
    await direct.send(
      new CompleteMultipartUploadCommand({
        Bucket: bucket,
        Key,
        UploadId,
        MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] },
      }),
    );
    const error = await errorCode(() => later(() => d.store({}, [p])));
    expect(error).toBe(StorageDriverErrorCode.CONFIG);
  });
});

describe('extra requests of a refresh (for the benchmark’s dupes workload)', () => {
  it('a batch of 64 old objects: one HEAD each, then 3 copy requests (multipart) or 1 (CopyObject), alternately', async () => {
    const payloads = batch(64, 8);
    const rows: string[] = [];
    const measure = async (label: string, options: Partial<S3StorageDriverOptions>) => {
      proxy.clearRequests();
      await driverOf(options).store({}, payloads);
      const counts = operations();
      const total = Object.values(counts).reduce((a, b) => a + b, 0);
      rows.push(`${label}: ${total} requests ${JSON.stringify(counts)}`);
      return counts;
    };
    await driverOf().store({}, payloads);
    expect(await measure('auto, 64 young repeats', {})).toEqual({ HeadObject: 64 });
    expect(await later(() => measure('auto, 64 old repeats (MD5 ETags → multipart copy)', {}))).toEqual({
      HeadObject: 64,
      CreateMultipartUpload: 64,
      UploadPartCopy: 64,
      CompleteMultipartUpload: 64,
    });
    expect(await later(() => measure('auto, 64 old repeats (…-1 ETags → CopyObject)', {}))).toEqual({
      HeadObject: 64,
      CopyObject: 64,
    });
    expect(
      await later(() =>
        measure('conditional-put + existenceCache (a new instance), 64 old repeats', {
          existenceCheck: 'conditional-put',
          existenceCache: {},
        }),
      ),
    ).toEqual({
      PutObject: 64,
      HeadObject: 64,
      CreateMultipartUpload: 64,
      UploadPartCopy: 64,
      CompleteMultipartUpload: 64,
    });
    console.log(`S3 refresh requests (moto, refreshAfter ${REFRESH_AFTER} ms):\n  ${rows.join('\n  ')}`);
  });
});

describe('list', () => {
  it('lists storage keys under keyPrefix + v0/ in every allowed bucket, skipping other keys, with ETag-bearing versions', async () => {
    const other = await createBucket(direct, 'lc2');
    extraBuckets.push(other);
    const d = driverOf({
      bucket: (ctx) => (ctx.target?.namespace === 'b' ? other : bucket),
      allowedBuckets: [bucket, other],
      keyPrefix: 'temporal/',
    });
    const target = (namespace: string) => ({ kind: 'workflow', namespace, type: 'T', id: 'w', runId: 'r' }) as const;
    const a = await d.store({ target: target('a') }, batch(2, 9));
    const b = await d.store({ target: target('b') }, batch(1, 10));
    // Not storage keys of this driver: another prefix, a stray file, a malformed key.
    for (const Key of [
      `v0/d/sha256/${'a'.repeat(64)}`,
      'temporal/v0/README',
      `temporal/v0/d/sha256/${'A'.repeat(64)}`,
    ]) {
      await direct.send(new PutObjectCommand({ Bucket: bucket, Key, Body: 'x' }));
    }
    proxy.clearRequests();
    const listed = await collect(d.list());
    expect(listed.map((o) => o.id).sort()).toEqual([...a, ...b].map((c) => d.objectIdOf(c)).sort());
    for (const o of listed) {
      expect(o.key.startsWith('v0/ns/')).toBe(true);
      expect(o.location.key).toBe(`temporal/${o.key}`);
      expect(o.version).toMatch(/^s3v1:\d+:\d+:"[0-9a-f]{32}"$/);
    }
    // Narrowed in S3, not only filtered: the list request carries the prefix.
    proxy.clearRequests();
    expect((await collect(d.list({ prefix: 'v0/ns/b/' }))).map((o) => o.location.bucket)).toEqual([other]);
    const prefixes = proxy.requests
      .filter((r) => s3Operation(r) === 'ListObjectsV2')
      .map((r) => new URL(r.url, 'http://x').searchParams.get('prefix'));
    expect(prefixes).toEqual(['temporal/v0/ns/b/', 'temporal/v0/ns/b/']);
    expect(await collect(d.list({ prefix: 'x/' }))).toEqual([]);
    // A bare storage key needs the bucket: a selector driver cannot say which.
    expect(await errorCode(() => d.delete([listed[0]?.key as string]))).toBe(StorageDriverErrorCode.CONFIG);
    expect(await errorCode(() => driverOf().delete(['temporal/v0/d/sha256/x']))).toBe(
      StorageDriverErrorCode.INVALID_CLAIM,
    );
  });

  it('pages of 1,000; an unconditional delete of 1,001 listed objects is two DeleteObjects', async () => {
    const d = driverOf();
    const keys = Array.from({ length: 1001 }, (_, i) => `v0/d/sha256/${sha256Hex(new TextEncoder().encode(`k${i}`))}`);
    for (let i = 0; i < keys.length; i += 50) {
      await Promise.all(
        keys.slice(i, i + 50).map((Key) => direct.send(new PutObjectCommand({ Bucket: bucket, Key, Body: 'x' }))),
      );
    }
    proxy.clearRequests();
    const listed = await collect(d.list());
    expect(listed).toHaveLength(1001);
    const pages = proxy.requests.filter((r) => s3Operation(r) === 'ListObjectsV2');
    expect(pages.map((r) => new URL(r.url, 'http://x').searchParams.get('max-keys'))).toEqual(['1000', '1000']);
    proxy.clearRequests();
    const result = await d.delete(listed);
    expect(result).toEqual({ deleted: 1001, deletedBytes: 1001, missing: 0, kept: 0, errors: [] });
    expect(operations()).toEqual({ DeleteObjects: 2 });
    expect(await listKeys(direct, bucket)).toEqual([]);
  });
});

describe('conditional delete', () => {
  const listOld = async (d: S3StorageDriver) => collect(d.list({ olderThan: d.minimumDeleteAge }));
  /** From now on, everything written so far is older than the minimum delete age to the drivers. */
  const ageBeyondDeleteAge = (d: S3StorageDriver) => {
    ahead = d.minimumDeleteAge + 1100;
  };

  it('uses the listed ETag while the listing is fresh: one DeleteObject with If-Match per object, 412 → kept', async () => {
    const d = driverOf();
    const claims = await d.store({}, batch(3, 11));
    ageBeyondDeleteAge(d);
    const listed = await listOld(d);
    expect(listed).toHaveLength(3);
    await d.store({}, [batch(3, 11)[0] as Payload]); // refreshed after the listing: new ETag
    proxy.clearRequests();
    const cutoff = new Date(clock() - d.minimumDeleteAge);
    const result = await d.delete(listed, { referencedBefore: cutoff });
    const deletedBytes = listed.filter((o) => o.key !== claims[0]?.claimData.key).reduce((n, o) => n + o.size, 0);
    expect(result).toEqual({ deleted: 2, deletedBytes, missing: 0, kept: 1, errors: [] });
    const deletes = bucketRequests().filter((r) => s3Operation(r) === 'DeleteObject');
    expect(operations()).toEqual({ DeleteObject: 3 });
    expect(deletes.map((r) => r.headers['if-match']).sort()).toEqual(
      listed.map((o) => o.version?.split(':').slice(3).join(':')).sort(),
    );
    expect((await d.retrieve({}, [claims[0] as StorageDriverClaim]))[0]).toBeDefined();
  });

  it('a listing older than refreshAfter − allowance is re-checked with a HEAD: two refreshes that bring the ETag back do not fool it', async () => {
    const d = driverOf();
    const [p] = batch(1, 12) as [Payload];
    const [claim] = (await d.store({}, [p])) as [StorageDriverClaim];
    ageBeyondDeleteAge(d);
    const [listed] = (await listOld(d)) as [StoredObject];
    const cutoff = new Date(clock() - d.minimumDeleteAge);
    // Two refreshes, refreshAfter apart: MD5 → …-1 → the same MD5 again. The clock jump also makes
    // the listing older than refreshAfter − allowance by the delete.
    await d.store({}, [p]);
    ahead += AGE;
    // Real time: the HEAD must find the second refresh dated (by S3's clock) at or after the cutoff.
    await untilS3Dates(cutoff.getTime());
    await d.store({}, [p]);
    const now = await head(claim.claimData.key as string);
    expect(`${listed.version}`.endsWith(`:${now.ETag}`)).toBe(true); // an If-Match on the listed ETag would match
    proxy.clearRequests();
    const result = await d.delete([listed], { referencedBefore: cutoff });
    expect(result).toMatchObject({ deleted: 0, kept: 1 });
    expect(operations()).toEqual({ HeadObject: 1 });
    expect((await d.retrieve({}, [claim]))[0]?.data).toEqual(p.data);
  });

  it('bare keys are looked up first; 404 → missing, 409 (a write in flight) → kept', async () => {
    const d = driverOf();
    const claims = await d.store({}, batch(2, 13));
    ageBeyondDeleteAge(d);
    const keys = claims.map((c) => c.claimData.key as string);
    await direct.send(new DeleteObjectCommand({ Bucket: bucket, Key: keys[1] }));
    proxy.inject = (r) =>
      s3Operation(r) === 'DeleteObject' ? s3Error({ status: 409, code: 'ConditionalRequestConflict' }) : undefined;
    proxy.clearRequests();
    const cutoff = new Date(clock() - d.minimumDeleteAge);
    expect(await d.delete(keys, { referencedBefore: cutoff })).toEqual({
      deleted: 0,
      deletedBytes: 0,
      missing: 1,
      kept: 1,
      errors: [],
    });
    expect(operations()).toEqual({ HeadObject: 2, DeleteObject: 1 });
    proxy.inject = undefined;
    expect(await d.delete(keys, { referencedBefore: cutoff })).toEqual({
      deleted: 1,
      deletedBytes: 0,
      missing: 1,
      kept: 0,
      errors: [],
    });
  });

  it('per-object failures are reported and the others carry on; list and delete name the permission they need', async () => {
    const d = driverOf();
    const claims = await d.store({}, batch(3, 14));
    ageBeyondDeleteAge(d);
    const listed = await listOld(d);
    let denied = 1;
    proxy.inject = (r: ProxiedRequest) =>
      s3Operation(r) === 'DeleteObject' && denied-- > 0 ? s3Error({ status: 403, code: 'AccessDenied' }) : undefined;
    const result = await d.deleteExpired({ olderThan: d.minimumDeleteAge });
    expect({ removed: result.removed, errors: result.errors.map((e) => e.code) }).toEqual({
      removed: 2,
      errors: [StorageDriverErrorCode.CONFIG],
    });
    expect(result.errors[0]?.message).toContain('s3:DeleteObject');
    expect(listed).toHaveLength(3);
    proxy.inject = (r) =>
      s3Operation(r) === 'ListObjectsV2' ? s3Error({ status: 403, code: 'AccessDenied' }) : undefined;
    const e = await errorCode(() => collect(d.list()));
    expect(e).toBe(StorageDriverErrorCode.CONFIG);
    proxy.inject = undefined;
    expect(claims).toHaveLength(3);
  });
});
