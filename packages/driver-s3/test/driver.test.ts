/** Behaviour against moto through a loopback proxy that counts (and can refuse) requests. */
import { inspect } from 'node:util';
import { GetObjectTaggingCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { StorageDriverClaim } from '@x/storage-driver-core';
import { captureStorageDriverError } from '@x/storage-driver-test-suite';
import { FaultProxy, SERVICES, uniqueName } from '@x/test-servers';
import { type S3ClientLike, S3StorageDriver, type S3StorageDriverOptions } from '../src';
import {
  bigPayload,
  calls,
  createBucket,
  deleteBucket,
  errorCode,
  listKeys,
  makeClient,
  payload,
  s3Error,
} from './helpers';

const direct = makeClient();
let proxy: FaultProxy;
let client: S3Client;
let bucket: string;
const extraBuckets: string[] = [];

beforeAll(async () => {
  proxy = await FaultProxy.start(SERVICES.s3Endpoint);
  // maxAttempts 2 keeps the retry tests short; the SDK's own retries still run.
  client = makeClient(proxy.endpoint, { maxAttempts: 2 });
});
beforeEach(async () => {
  bucket = await createBucket(direct, 'drv');
  proxy.clearRequests();
  proxy.inject = undefined;
});
afterEach(async () => {
  for (const b of [bucket, ...extraBuckets.splice(0)]) await deleteBucket(direct, b);
});
afterAll(async () => {
  client.destroy();
  direct.destroy();
  await proxy.close();
});

const driverOf = (options: Partial<S3StorageDriverOptions> = {}) => new S3StorageDriver({ client, bucket, ...options });
const methods = () => calls(proxy, bucket).map((c) => c.split(' ')[0]);
const LARGE = 1024 * 1024 + 1;

describe('construction', () => {
  it('type, default name, defaults; an S3Client type-checks as S3ClientLike', () => {
    const typed: S3ClientLike = direct;
    const d = new S3StorageDriver({ client: typed, bucket: 'my-bucket' });
    expect([d.type, d.name, d.concurrency, d.existenceCheck, d.headFirstMinSize, d.keyPrefix]).toEqual([
      'aws.s3driver',
      'aws.s3driver',
      50,
      'auto',
      1024 * 1024,
      '',
    ]);
    expect(d.allowedBuckets).toEqual(['my-bucket']);
    expect(
      new S3StorageDriver({ client: direct, bucket: () => 'x-y', allowedBuckets: ['x-y'] }).allowedBuckets,
    ).toEqual(['x-y']);
  });
  it.each<[string, unknown]>([
    ['no options', undefined],
    ['no client', { bucket: 'b' }],
    ['client without send', { client: {}, bucket: 'b' }],
    ['no bucket', { client: direct }],
    ['bucket with a slash', { client: direct, bucket: 'a/b' }],
    ['empty allowedBuckets', { client: direct, bucket: () => 'b', allowedBuckets: [] }],
    // Otherwise a forged claim could make the worker read any bucket its credentials reach.
    ['bucket selector without allowedBuckets', { client: direct, bucket: () => 'b' }],
    ['allowedBuckets without bucket', { client: direct, bucket: 'b', allowedBuckets: ['c'] }],
    ['bad existenceCheck', { client: direct, bucket: 'b', existenceCheck: 'list' }],
    ['concurrency 0', { client: direct, bucket: 'b', concurrency: 0 }],
    ['negative headFirstMinSize', { client: direct, bucket: 'b', headFirstMinSize: -1 }],
    ['fractional headFirstMinSize', { client: direct, bucket: 'b', headFirstMinSize: 1.5 }],
    ['headFirstMinSize as a string', { client: direct, bucket: 'b', headFirstMinSize: '1' }],
    ['keyPrefix without trailing slash', { client: direct, bucket: 'b', keyPrefix: 'x' }],
    ['keyPrefix with ..', { client: direct, bucket: 'b', keyPrefix: 'a/../' }],
    ['keyPrefix with leading /', { client: direct, bucket: 'b', keyPrefix: '/a/' }],
    ['unknown SSE', { client: direct, bucket: 'b', serverSideEncryption: { type: 'DES' } }],
    ['empty KMS key id', { client: direct, bucket: 'b', serverSideEncryption: { type: 'aws:kms', kmsKeyId: '' } }],
    ['bad storage class', { client: direct, bucket: 'b', storageClass: 'standard ia' }],
    [
      '11 tags',
      { client: direct, bucket: 'b', tags: Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`t${i}`, 'v'])) },
    ],
    ['aws: tag', { client: direct, bucket: 'b', tags: { 'aws:x': 'v' } }],
    ['tag value with &', { client: direct, bucket: 'b', tags: { team: 'a & b' } }],
    ['bad name', { client: direct, bucket: 'b', name: '' }],
  ])('%s → E_CONFIG', async (_n, options) => {
    expect(await errorCode(async () => new S3StorageDriver(options as S3StorageDriverOptions))).toBe('E_CONFIG');
  });
});

describe('existence detection and dedup (requests counted at the server)', () => {
  const mark = () => proxy.requests.map((r) => `${r.method}${r.headers['if-none-match'] === '*' ? '*' : ''}`);
  it.each([
    ['small', () => payload('dedup')],
    ['8 KiB', () => bigPayload(8 * 1024, 3)],
    ['just under 1 MiB', () => bigPayload(LARGE - 1024, 8)],
  ])('default (auto), %s payload: one conditional PUT; a repeat looks first', async (_n, make) => {
    const d = driverOf();
    await d.store({}, [make()]);
    expect(mark()).toEqual(['PUT*']);
    proxy.clearRequests();
    // The same instance stored it: a HEAD, no body.
    await d.store({}, [make()]);
    expect(mark()).toEqual(['HEAD']);
    proxy.clearRequests();
    // Another instance (another process) knows nothing: its conditional PUT is refused (412), and
    // the HEAD that follows gives the object's age and size. Nothing is rewritten.
    const other = driverOf();
    const [claim] = await other.store({}, [make()]);
    expect(mark()).toEqual(['PUT*', 'HEAD']);
    expect(await listKeys(direct, bucket)).toEqual([claim?.claimData.key]);
    // An instance that has just read it (a workflow passing its input on) looks first.
    const reader = driverOf();
    await reader.retrieve({}, [claim as StorageDriverClaim]);
    proxy.clearRequests();
    await reader.store({}, [make()]);
    expect(mark()).toEqual(['HEAD']);
  });
  it.each([
    ['1 MiB and more, default', {}, () => bigPayload(LARGE, 4)],
    ['headFirstMinSize 0, small', { headFirstMinSize: 0 }, () => payload('dedup')],
  ])('auto, %s: HEAD + conditional PUT; a repeat from another instance issues only the HEAD', async (_n, o, make) => {
    const d = driverOf(o);
    await d.store({}, [make()]);
    expect(mark()).toEqual(['HEAD', 'PUT*']);
    proxy.clearRequests();
    const [claim] = await driverOf(o).store({}, [make()]);
    expect(mark()).toEqual(['HEAD']);
    expect(await listKeys(direct, bucket)).toEqual([claim?.claimData.key]);
  });
  it('auto: a writer that lands between our HEAD and PUT is not overwritten (conditional PUT → 412)', async () => {
    const d = driverOf({ headFirstMinSize: 0 });
    const [claim] = await driverOf({ existenceCheck: 'conditional-put' }).store({}, [payload('race')]);
    // Make the HEAD say "missing" although the object exists, as if it was written just after.
    proxy.inject = (r) => (r.method === 'HEAD' ? s3Error({ status: 404 }) : undefined);
    proxy.clearRequests();
    await d.store({}, [payload('race')]);
    expect(mark()).toEqual(['HEAD', 'PUT*']);
    expect(await listKeys(direct, bucket)).toEqual([claim?.claimData.key]);
  });
  it('auto: an object that a refused PUT found exists but that is gone by the HEAD is uploaded again', async () => {
    const [claim] = await driverOf().store({}, [payload('vanishing')]);
    proxy.inject = (r) => (r.method === 'HEAD' ? s3Error({ status: 404 }) : undefined);
    proxy.clearRequests();
    // The object exists, so the conditional PUT is refused; the HEAD (forced to 404) says it was
    // deleted since: a second conditional PUT follows (refused again here, as it is really there).
    await driverOf().store({}, [payload('vanishing')]);
    expect(mark()).toEqual(['PUT*', 'HEAD', 'PUT*']);
    proxy.inject = undefined;
    await expect(driverOf().retrieve({}, [claim as StorageDriverClaim])).resolves.toHaveLength(1);
  });
  it('head: a second store of the same payload issues no PUT', async () => {
    const d = driverOf({ existenceCheck: 'head' });
    await d.store({}, [payload('head mode')]);
    expect(methods()).toEqual(['HEAD', 'PUT']);
    expect(proxy.requests[1]?.headers['if-none-match']).toBeUndefined();
    proxy.clearRequests();
    await d.store({}, [payload('head mode')]);
    expect(methods()).toEqual(['HEAD']);
  });
  it('conditional-put: one PUT per new object; a repeat store sends a PUT that is refused (412), then a HEAD for its age; nothing rewritten', async () => {
    const d = driverOf({ existenceCheck: 'conditional-put' });
    await d.store({}, [bigPayload(LARGE, 5)]);
    expect(methods()).toEqual(['PUT']);
    expect(proxy.requests[0]?.headers['if-none-match']).toBe('*');
    proxy.clearRequests();
    const [claim] = await d.store({}, [bigPayload(LARGE, 5)]);
    // The 412 says the object exists, not how old it is: the HEAD tells whether it needs a refresh.
    expect(methods()).toEqual(['PUT', 'HEAD']);
    expect(await listKeys(direct, bucket)).toEqual([claim?.claimData.key]);
  });
  it('identical payloads in a batch are uploaded once', async () => {
    const d = driverOf();
    const claims = await d.store({}, [payload('x'), payload('y'), payload('x'), payload('x')]);
    expect(methods()).toEqual(['PUT', 'PUT']);
    expect(claims[0]?.claimData).toEqual(claims[3]?.claimData);
  });
  it('HEAD answered 403 (no s3:ListBucket) does not fail the store: it falls through to the PUT', async () => {
    proxy.inject = (r) => (r.method === 'HEAD' ? s3Error({ status: 403 }) : undefined);
    for (const d of [driverOf({ existenceCheck: 'head' }), driverOf()]) {
      proxy.clearRequests();
      const p = bigPayload(LARGE, d.existenceCheck === 'head' ? 6 : 7);
      const [claim] = await d.store({}, [p]);
      expect(methods()).toEqual(['HEAD', 'PUT']);
      await expect(d.retrieve({}, [claim as StorageDriverClaim])).resolves.toHaveLength(1);
    }
  });
  it.each(['head', 'auto', 'conditional-put'] as const)(
    '%s: an existing object of the wrong size is overwritten',
    async (existenceCheck) => {
      const [claim] = await driverOf({ existenceCheck }).store({}, [payload('repair me')]);
      await direct.send(new PutObjectCommand({ Bucket: bucket, Key: claim?.claimData.key, Body: new Uint8Array(3) }));
      // A new instance: nothing remembered.
      const d = driverOf({ existenceCheck });
      expect(await errorCode(() => d.retrieve({}, [claim as StorageDriverClaim]))).toBe('E_INTEGRITY');
      proxy.clearRequests();
      await d.store({}, [payload('repair me')]);
      // The last request is the unconditional PUT that repairs it.
      expect(mark().at(-1)).toBe('PUT');
      await expect(d.retrieve({}, [claim as StorageDriverClaim])).resolves.toHaveLength(1);
    },
  );
  it('a server without conditional writes (501 NotImplemented) gets a plain PUT, remembered', async () => {
    proxy.inject = (r) =>
      r.method === 'PUT' && r.headers['if-none-match'] ? s3Error({ status: 501, code: 'NotImplemented' }) : undefined;
    const d = driverOf();
    // auto, small and new: the conditional PUT first; on 501, a HEAD and a plain PUT.
    await d.store({}, [payload('a')]);
    expect(mark()).toEqual(['PUT*', 'HEAD', 'PUT']);
    proxy.clearRequests();
    await d.store({}, [payload('b')]);
    expect(mark()).toEqual(['HEAD', 'PUT']);
  });
});

describe('concurrency and abort', () => {
  it('never more than `concurrency` requests in flight, for store and retrieve', async () => {
    const d = driverOf({ concurrency: 3 });
    const payloads = Array.from({ length: 30 }, (_, i) => bigPayload(20_000, 100 + i));
    const claims = await d.store({}, payloads);
    expect(proxy.peakInFlight).toBeLessThanOrEqual(3);
    expect(proxy.peakInFlight).toBeGreaterThan(1);
    proxy.clearRequests();
    await d.retrieve({}, claims);
    expect(calls(proxy, bucket)).toHaveLength(30);
    expect(proxy.peakInFlight).toBeLessThanOrEqual(3);
  });
  it('the first failure aborts the siblings: no new request starts after it', async () => {
    let puts = 0;
    proxy.inject = (r) =>
      r.method === 'PUT' && ++puts === 1 ? s3Error({ status: 403, code: 'AccessDenied' }) : undefined;
    const d = driverOf({ concurrency: 2 });
    const payloads = Array.from({ length: 40 }, (_, i) => payload(`sibling ${i}`));
    expect(await errorCode(() => d.store({}, payloads))).toBe('E_CONFIG');
    expect(calls(proxy, bucket).length).toBeLessThanOrEqual(3);
  });
  it('the caller’s abort signal reaches the requests in flight', async () => {
    proxy.inject = () => undefined;
    const d = driverOf({ concurrency: 4 });
    const ac = new AbortController();
    const pending = d.store(
      { abortSignal: ac.signal },
      Array.from({ length: 40 }, (_, i) => bigPayload(200_000, 200 + i)),
    );
    setTimeout(() => ac.abort(new Error('caller gave up')), 5);
    expect(await errorCode(() => pending)).toBe('E_ABORTED');
    // Requests already on the wire may still reach the server; after that, nothing new starts.
    await new Promise((r) => setTimeout(r, 200));
    const seen = calls(proxy, bucket).length;
    await new Promise((r) => setTimeout(r, 300));
    expect(calls(proxy, bucket).length).toBe(seen);
    expect(seen).toBeLessThan(40);
    expect((await listKeys(direct, bucket)).length).toBeLessThan(40);
  });
});

describe('PutObject options', () => {
  it('SSE AES256, storage class and tags are set on written objects', async () => {
    const d = driverOf({
      serverSideEncryption: { type: 'AES256' },
      storageClass: 'STANDARD_IA',
      tags: { 'temporal-payload': 'true', team: 'payments+risk ops' },
    });
    const [claim] = await d.store({}, [payload('options')]);
    const key = claim?.claimData.key as string;
    const head = await direct.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    expect(head.ServerSideEncryption).toBe('AES256');
    expect(head.StorageClass).toBe('STANDARD_IA');
    const tagging = await direct.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: key }));
    expect(tagging.TagSet?.sort((a, b) => (a.Key as string).localeCompare(b.Key as string))).toEqual([
      { Key: 'team', Value: 'payments+risk ops' },
      { Key: 'temporal-payload', Value: 'true' },
    ]);
  });
  it('SSE-KMS with a key id and bucket key is set on written objects (checked at the server)', async () => {
    const d = driverOf({
      serverSideEncryption: { type: 'aws:kms', kmsKeyId: 'alias/temporal', bucketKeyEnabled: true },
    });
    const [claim] = await d.store({}, [payload('kms')]);
    const put = proxy.requests.find((r) => r.method === 'PUT');
    expect(put?.headers['x-amz-server-side-encryption']).toBe('aws:kms');
    expect(put?.headers['x-amz-server-side-encryption-aws-kms-key-id']).toBe('alias/temporal');
    const head = await direct.send(new HeadObjectCommand({ Bucket: bucket, Key: claim?.claimData.key }));
    expect([head.ServerSideEncryption, head.SSEKMSKeyId, head.BucketKeyEnabled]).toEqual([
      'aws:kms',
      expect.stringContaining('temporal'),
      true,
    ]);
  });
});

describe('buckets', () => {
  it('a bucket selector routes payloads; claims carry the bucket; allowedBuckets guards retrieval', async () => {
    const other = await createBucket(direct, 'drv-other');
    extraBuckets.push(other);
    const d = driverOf({
      bucket: (ctx) => (ctx.target?.namespace === 'big' ? other : bucket),
      allowedBuckets: [bucket, other],
    });
    const [a] = await d.store({ target: { kind: 'workflow', namespace: 'big' } }, [payload('a')]);
    const [b] = await d.store({}, [payload('b')]);
    expect([a?.claimData.bucket, b?.claimData.bucket]).toEqual([other, bucket]);
    await expect(d.retrieve({}, [a, b] as StorageDriverClaim[])).resolves.toHaveLength(2);
    // A driver configured for one bucket refuses claims naming another, before any request.
    proxy.clearRequests();
    expect(await errorCode(() => driverOf().retrieve({}, [a as StorageDriverClaim]))).toBe('E_INVALID_CLAIM');
    // Spellings S3 or an HTTP layer might fold onto an allowed bucket are not in the list either.
    for (const forged of [bucket.toUpperCase(), `${bucket}.`, `.${bucket}`, '127.0.0.1', `${bucket}..`]) {
      const claim = new StorageDriverClaim({ ...b?.claimData, bucket: forged });
      expect([forged, await errorCode(() => d.retrieve({}, [claim]))]).toEqual([forged, 'E_INVALID_CLAIM']);
    }
    expect(proxy.requests).toHaveLength(0);
  });
  it('a selector returning a bucket outside allowedBuckets, or an invalid name → E_CONFIG, nothing written', async () => {
    expect(
      await errorCode(() =>
        driverOf({ bucket: () => 'elsewhere', allowedBuckets: [bucket] }).store({}, [payload('x')]),
      ),
    ).toBe('E_CONFIG');
    expect(
      await errorCode(() => driverOf({ bucket: () => '../x', allowedBuckets: [bucket] }).store({}, [payload('x')])),
    ).toBe('E_CONFIG');
    expect(
      await errorCode(() =>
        driverOf({
          bucket: () => {
            throw new Error('boom');
          },
          allowedBuckets: [bucket],
        }).store({}, [payload('x')]),
      ),
    ).toBe('E_CONFIG');
    expect(proxy.requests).toHaveLength(0);
  });
});

describe('errors', () => {
  it('NoSuchBucket → E_CONFIG naming bucket and key (store and retrieve)', async () => {
    const missing = uniqueName('missing');
    const d = driverOf({ bucket: missing });
    const e = await captureStorageDriverError(() => d.store({}, [payload('x')]));
    expect([e.code, e.retryable]).toEqual(['E_CONFIG', false]);
    expect(e.message).toContain(`s3://${missing}/v0/d/sha256/`);
    expect(e.message).toContain('does not exist');
    expect(e.key).toMatch(/^v0\/d\/sha256\//);
    const [claim] = await driverOf().store({}, [payload('x')]);
    const r = await captureStorageDriverError(() =>
      d.retrieve({}, [new StorageDriverClaim({ ...claim?.claimData, bucket: missing })]),
    );
    expect([r.code, r.message.includes(missing)]).toEqual(['E_CONFIG', true]);
  });
  it('NoSuchKey → E_NOT_FOUND', async () => {
    const d = driverOf();
    const [claim] = await d.store({}, [payload('gone')]);
    // A well-formed claim (key naming its own hash) for an object that was never stored.
    const hash = String(claim?.claimData.hash_value).replace(/.$/, (c) => (c === '0' ? '1' : '0'));
    const key = `v0/d/sha256/${hash}`;
    expect(
      await errorCode(() => d.retrieve({}, [new StorageDriverClaim({ ...claim?.claimData, key, hash_value: hash })])),
    ).toBe('E_NOT_FOUND');
  });
  it('InvalidObjectState (archived in GLACIER, not restored; produced by moto) → E_CONFIG saying so, not access denied', async () => {
    const d = driverOf({ storageClass: 'GLACIER' });
    const [claim] = await d.store({}, [payload('archived')]);
    const e = await captureStorageDriverError(() => d.retrieve({}, [claim as StorageDriverClaim]));
    expect([e.code, e.retryable, e.key]).toEqual(['E_CONFIG', false, claim?.claimData.key]);
    expect(e.message).toMatch(
      new RegExp(`^retrieve s3://${bucket}/v0/d/sha256/[0-9a-f]{64} failed: InvalidObjectState \\(HTTP 403\\)`),
    );
    expect(e.message).toContain('archived');
    expect(e.message).toContain('restore');
    expect(e.message).not.toMatch(/access denied|s3:GetObject/);
    // The object exists (HEAD answers 200), so a repeat store uploads nothing.
    proxy.clearRequests();
    await d.store({}, [payload('archived')]);
    expect(methods()).toEqual(['HEAD']);
  });
  it('AccessDenied → E_CONFIG naming bucket, key and the permission; no credentials anywhere', async () => {
    proxy.inject = (r) =>
      r.method === 'PUT' || r.method === 'GET' ? s3Error({ status: 403, code: 'AccessDenied' }) : undefined;
    const d = driverOf({ tags: { a: 'b' } });
    const e = await captureStorageDriverError(() => d.store({}, [payload('denied')]));
    expect([e.code, e.retryable]).toEqual(['E_CONFIG', false]);
    expect(e.message).toMatch(
      new RegExp(`^store s3://${bucket}/v0/d/sha256/[0-9a-f]{64} failed: AccessDenied \\(HTTP 403\\)`),
    );
    expect(e.message).toContain('s3:PutObject and s3:PutObjectTagging');
    const g = await captureStorageDriverError(() =>
      d.retrieve({}, [
        new StorageDriverClaim({
          bucket,
          key: e.key as string,
          hash_algorithm: 'sha256',
          hash_value: (e.key as string).slice(-64),
        }),
      ]),
    );
    expect([g.code, g.message.includes('s3:GetObject')]).toEqual(['E_CONFIG', true]);
    for (const err of [e, g]) {
      const dump = JSON.stringify(
        { message: err.message, cause: err.cause, stack: err.stack },
        Object.getOwnPropertyNames(err.cause as object),
      );
      expect(dump).not.toContain('test-secret-do-not-log');
    }
  });
  it('SignatureDoesNotMatch echoes are stripped from the cause, and the echoed access key id is redacted wherever else it appears', async () => {
    proxy.inject = () =>
      s3Error({
        status: 403,
        code: 'SignatureDoesNotMatch',
        extra:
          '<AWSAccessKeyId>AKIDEXAMPLE</AWSAccessKeyId><StringToSign>AWS4-HMAC-SHA256 x</StringToSign><SignatureProvided>abc</SignatureProvided><CanonicalRequest>PUT /</CanonicalRequest>' +
          '<ArgumentValue>Credential=AKIDEXAMPLE/20260101/us-east-1/s3/aws4_request</ArgumentValue>',
      });
    const e = await captureStorageDriverError(() => driverOf().store({}, [payload('sig')]));
    expect(e.code).toBe('E_CONFIG');
    const cause = e.cause as Record<string, unknown>;
    expect(cause.name).toBe('SignatureDoesNotMatch');
    for (const field of ['AWSAccessKeyId', 'StringToSign', 'SignatureProvided', 'CanonicalRequest']) {
      expect([field, Object.hasOwn(cause, field)]).toEqual([field, false]);
    }
    expect(cause.ArgumentValue).toBe('Credential=[redacted]/20260101/us-east-1/s3/aws4_request');
    expect(JSON.stringify(cause)).not.toContain('AKIDEXAMPLE');
    expect(inspect(e, { depth: Number.POSITIVE_INFINITY, showHidden: true })).not.toContain('AKIDEXAMPLE');
    expect(e.message).not.toContain('AKIDEXAMPLE');
  });
  it.each([
    [503, 'SlowDown'],
    [500, 'InternalError'],
    [429, 'TooManyRequests'],
  ])('%i %s → E_BACKEND, retryable, after the SDK’s retries', async (status, code) => {
    proxy.inject = (r) => (r.method === 'PUT' || r.method === 'GET' ? s3Error({ status, code }) : undefined);
    const d = driverOf();
    const e = await captureStorageDriverError(() => d.store({}, [payload('throttled')]));
    expect([e.code, e.retryable]).toEqual(['E_BACKEND', true]);
    expect(e.message).toContain(code);
    expect(calls(proxy, bucket).filter((c) => c.startsWith('PUT '))).toHaveLength(2); // maxAttempts: 2
  });
  it('connection refused → E_BACKEND, retryable', async () => {
    const dead = makeClient('http://127.0.0.1:9', { maxAttempts: 1 });
    const e = await captureStorageDriverError(() =>
      new S3StorageDriver({ client: dead, bucket }).store({}, [payload('x')]),
    );
    expect([e.code, e.retryable]).toEqual(['E_BACKEND', true]);
    dead.destroy();
  });
});
