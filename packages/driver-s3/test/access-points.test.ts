/**
 * S3 access point ARNs as `bucket` and in claims. moto does not serve access points, so the
 * request-level tests give the SDK a real HTTP connection whose DNS lookup resolves the access
 * point's host name (`{name}-{account}.{endpoint host}`) to a loopback proxy, which forwards each
 * access point's requests path-style to its own moto bucket.
 */
import * as http from 'node:http';
import type { S3Client } from '@aws-sdk/client-s3';
import { StorageDriverClaim } from '@x/storage-driver-core';
import { captureStorageDriverError } from '@x/storage-driver-test-suite';
import { FaultProxy, SERVICES } from '@x/test-servers';
import { isAccessPointArn, isValidBucket, isValidBucketName, S3StorageDriver } from '../src';
import { createBucket, deleteBucket, errorCode, listKeys, makeClient, payload } from './helpers';

const AP = 'arn:aws:s3:us-east-1:123456789012:accesspoint/payloads-ap';
const AP2 = 'arn:aws:s3:us-east-1:123456789012:accesspoint/other-ap';
const H = 'a'.repeat(64);
const KEY = `v0/d/sha256/${H}`;

const direct = makeClient();
let proxy: FaultProxy;
/** Virtual-hosted client whose DNS resolves every host to the proxy. */
let apClient: S3Client;
/** moto bucket behind each access point host label. */
const backing = new Map<string, string>();

beforeAll(async () => {
  proxy = await FaultProxy.start(SERVICES.s3Endpoint);
  proxy.rewrite = (req) => {
    const label = String(req.headers.host ?? '').split('.')[0] as string;
    const bucket = backing.get(label);
    return bucket === undefined ? undefined : `/${bucket}${req.url}`;
  };
  const lookup = (_host: string, options: { all?: boolean }, callback: (...args: unknown[]) => void) =>
    options.all ? callback(null, [{ address: '127.0.0.1', family: 4 }]) : callback(null, '127.0.0.1', 4);
  const port = new URL(proxy.endpoint).port;
  apClient = makeClient(`http://localhost:${port}`, {
    forcePathStyle: false,
    maxAttempts: 1,
    requestHandler: { httpAgent: new http.Agent({ lookup: lookup as never }) },
  });
  backing.set('payloads-ap-123456789012', await createBucket(direct, 'ap'));
  backing.set('other-ap-123456789012', await createBucket(direct, 'ap'));
});
afterAll(async () => {
  for (const b of backing.values()) await deleteBucket(direct, b);
  apClient.destroy();
  direct.destroy();
  await proxy.close();
});
beforeEach(() => proxy.clearRequests());

describe('validation', () => {
  it.each([
    AP,
    'arn:aws-cn:s3:cn-north-1:123456789012:accesspoint/ap1',
    'arn:aws-us-gov:s3:us-gov-west-1:123456789012:accesspoint/a-b-c',
    `arn:aws:s3:ap-southeast-2:000000000000:accesspoint/${'a'.repeat(50)}`,
  ])('accepts the access point ARN %s as bucket, in allowedBuckets and in claims', (arn) => {
    expect(isAccessPointArn(arn) && isValidBucket(arn)).toBe(true);
    expect(isValidBucketName(arn)).toBe(false); // plain-name check unchanged
    expect(new S3StorageDriver({ client: apClient, bucket: arn }).allowedBuckets).toEqual([arn]);
    expect(
      new S3StorageDriver({ client: apClient, bucket: () => arn, allowedBuckets: ['plain', arn] }).allowedBuckets,
    ).toEqual(['plain', arn]);
  });

  it.each<[string, string, RegExp]>([
    ['Object Lambda', 'arn:aws:s3-object-lambda:us-east-1:123456789012:accesspoint/ol', /Object Lambda/],
    ['Outposts', 'arn:aws:s3-outposts:us-east-1:123456789012:outpost/op-01234567890123456/accesspoint/ap1', /Outposts/],
    ['bucket ARN', 'arn:aws:s3:::my-bucket', /only S3 access point ARNs/],
    ['multi-region access point', 'arn:aws:s3::123456789012:accesspoint/mfzwi23gnjvgw.mrap', /only S3 access point/],
    ['11-digit account', 'arn:aws:s3:us-east-1:12345678901:accesspoint/ap1', /only S3 access point/],
    ['upper-case name', 'arn:aws:s3:us-east-1:123456789012:accesspoint/AP1', /only S3 access point/],
    ['colon form', 'arn:aws:s3:us-east-1:123456789012:accesspoint:ap1', /only S3 access point/],
    ['object suffix', `${AP}/object/v0`, /only S3 access point/],
    ['other partition', 'arn:aws-iso:s3:us-iso-east-1:123456789012:accesspoint/ap1', /only S3 access point/],
    ['trailing newline', `${AP}\n`, /only S3 access point/],
    ['plain name with a colon', 'my:bucket', /not a valid bucket name/],
    ['plain name with a slash', 'my/bucket', /not a valid bucket name/],
  ])(
    'rejects %s as bucket (E_CONFIG), in allowedBuckets (E_CONFIG) and in claims (E_INVALID_CLAIM)',
    async (_n, value, why) => {
      const asBucket = await captureStorageDriverError(
        async () => new S3StorageDriver({ client: apClient, bucket: value }),
      );
      expect([asBucket.code, asBucket.message]).toEqual(['E_CONFIG', expect.stringMatching(why)]);
      expect(
        await errorCode(async () => new S3StorageDriver({ client: apClient, bucket: AP, allowedBuckets: [AP, value] })),
      ).toBe('E_CONFIG');
      const driver = new S3StorageDriver({ client: apClient, bucket: AP });
      const claim = new StorageDriverClaim({ bucket: value, key: KEY, hash_algorithm: 'sha256', hash_value: H });
      const e = await captureStorageDriverError(() => driver.retrieve({}, [claim]));
      expect([e.code, e.message]).toEqual(['E_INVALID_CLAIM', expect.stringMatching(why)]);
      expect(proxy.requests).toHaveLength(0);
    },
  );

  it('a selector returning an unsupported ARN fails the store with E_CONFIG naming the problem', async () => {
    const lambda = 'arn:aws:s3-object-lambda:us-east-1:123456789012:accesspoint/ol';
    const d = new S3StorageDriver({ client: apClient, bucket: () => lambda, allowedBuckets: [AP] });
    const e = await captureStorageDriverError(() => d.store({}, [payload('x')]));
    expect([e.code, e.message]).toEqual(['E_CONFIG', expect.stringMatching(/Object Lambda/)]);
  });

  it('claims must name an allowed access point exactly', async () => {
    const driver = new S3StorageDriver({ client: apClient, bucket: AP });
    for (const bucket of [AP2, AP.toUpperCase(), AP.replace('us-east-1', 'us-west-2'), 'payloads-ap']) {
      const claim = new StorageDriverClaim({ bucket, key: KEY, hash_algorithm: 'sha256', hash_value: H });
      expect(await errorCode(() => driver.retrieve({}, [claim]))).toBe('E_INVALID_CLAIM');
    }
    expect(proxy.requests).toHaveLength(0);
  });
});

describe('requests', () => {
  it('stores and retrieves through the access point host name; a repeat store issues no PUT', async () => {
    // HEAD first for every object (not only from 1 MiB), so both requests go through the access point.
    const d = new S3StorageDriver({ client: apClient, bucket: AP, headFirstMinSize: 0 });
    const [claim] = await d.store({}, [payload('via access point')]);
    expect(claim?.claimData.bucket).toBe(AP);
    const hosts = proxy.requests.map((r) => `${r.method} ${String(r.headers.host).split(':')[0]} ${r.path}`);
    expect(hosts).toEqual([
      `HEAD payloads-ap-123456789012.localhost /${claim?.claimData.key}`,
      `PUT payloads-ap-123456789012.localhost /${claim?.claimData.key}`,
    ]);
    expect(await listKeys(direct, backing.get('payloads-ap-123456789012') as string)).toContain(claim?.claimData.key);
    proxy.clearRequests();
    await new S3StorageDriver({ client: apClient, bucket: AP, headFirstMinSize: 0 }).store({}, [
      payload('via access point'),
    ]);
    expect(proxy.requests.map((r) => r.method)).toEqual(['HEAD']);
    expect(await d.retrieve({}, [claim as never])).toEqual([payload('via access point')]);
  });

  it('identical payloads for two access points are two objects (dedup is per bucket and key)', async () => {
    let n = 0;
    const d = new S3StorageDriver({
      client: apClient,
      bucket: () => (n++ % 2 === 0 ? AP : AP2),
      allowedBuckets: [AP, AP2],
    });
    const claims = await d.store({}, [payload('twice'), payload('twice'), payload('twice')]);
    expect(claims.map((c) => c.claimData.bucket)).toEqual([AP, AP2, AP]);
    expect(proxy.requests.filter((r) => r.method === 'PUT').map((r) => String(r.headers.host).split('.')[0])).toEqual(
      expect.arrayContaining(['payloads-ap-123456789012', 'other-ap-123456789012']),
    );
    expect(proxy.requests.filter((r) => r.method === 'PUT')).toHaveLength(2);
    expect(await d.retrieve({}, claims)).toEqual([payload('twice'), payload('twice'), payload('twice')]);
  });

  it('the location id is unambiguous for buckets containing "/" and ":"', () => {
    class Probe extends S3StorageDriver {
      id(bucket: string, key: string): string {
        return this._locationId({ bucket, key });
      }
    }
    const p = new Probe({ client: apClient, bucket: AP });
    expect(p.id('arn:x:accesspoint/a', 'b/v0/k')).not.toBe(p.id('arn:x:accesspoint', 'a/b/v0/k'));
    expect(p.id('a:b', 'c')).not.toBe(p.id('a', 'b:c'));
  });

  it('a path-style client is refused at construction with a clear E_CONFIG', async () => {
    const pathStyle = makeClient(proxy.endpoint, { forcePathStyle: true });
    try {
      const e = await captureStorageDriverError(async () => new S3StorageDriver({ client: pathStyle, bucket: AP }));
      expect([e.code, e.message]).toEqual(['E_CONFIG', expect.stringMatching(/forcePathStyle/)]);
      expect(
        await errorCode(
          async () => new S3StorageDriver({ client: pathStyle, bucket: 'plain', allowedBuckets: ['plain', AP] }),
        ),
      ).toBe('E_CONFIG');
    } finally {
      pathStyle.destroy();
    }
  });

  it.each<[string, string]>([
    ['path-style', AP],
    ['other partition than the client', 'arn:aws-cn:s3:cn-north-1:123456789012:accesspoint/payloads-ap'],
  ])(
    'when the SDK refuses the ARN (%s, client config hidden by a wrapper) the error is E_CONFIG, not retryable',
    async (name, arn) => {
      const real = makeClient(proxy.endpoint, { forcePathStyle: name === 'path-style', maxAttempts: 1 });
      try {
        // A forwarding wrapper (e.g. a tracing decorator) hides `config`, so construction passes.
        const wrapped = {
          send: (command: unknown, options?: { abortSignal?: AbortSignal }) => real.send(command as never, options),
        };
        const d = new S3StorageDriver({ client: wrapped, bucket: arn });
        for (const call of [
          () => d.store({}, [payload('refused')]),
          () =>
            d.retrieve({}, [
              new StorageDriverClaim({ bucket: arn, key: KEY, hash_algorithm: 'sha256', hash_value: H }),
            ]),
        ]) {
          const e = await captureStorageDriverError(call);
          expect([e.code, e.retryable]).toEqual(['E_CONFIG', false]);
          expect(e.message).toContain(`cannot address access point ${arn}`);
        }
        expect(proxy.requests).toHaveLength(0);
      } finally {
        real.destroy();
      }
    },
  );
});
