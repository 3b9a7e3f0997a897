/**
 * The performance behaviour added for the benchmarks (issue 8): the in-process cache of keys
 * known to exist, the SHA-256 reused as request checksum and signed payload hash, and bodies read
 * into one buffer sized by Content-Length. Requests are counted at a loopback proxy in
 * front of moto.
 */

import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { encodePayload, StorageDriverClaim, StorageDriverErrorCode } from '@x/storage-driver-core';
import { captureStorageDriverError } from '@x/storage-driver-test-suite';
import { FaultProxy, SERVICES } from '@x/test-servers';
import { S3StorageDriver } from '../src';
import { bigPayload, calls, createBucket, deleteBucket, errorCode, makeClient, s3Error } from './helpers';

let proxy: FaultProxy;
let client: S3Client;
let bucket: string;
beforeAll(async () => {
  proxy = await FaultProxy.start(SERVICES.s3Endpoint);
  client = makeClient(proxy.endpoint);
});
afterAll(async () => {
  client?.destroy();
  await proxy?.close();
});
beforeEach(async () => {
  bucket = await createBucket(client, 'perf');
  proxy.clearRequests();
});
afterEach(async () => {
  await deleteBucket(client, bucket);
});

const batch = (n: number, seed: number) => Array.from({ length: n }, (_, i) => bigPayload(4096, seed * 1000 + i + 1));
const methods = () => calls(proxy, bucket).map((c) => c.split(' ')[0]);

// Every object looked up first (auto mode's order from 1 MiB up, here for 4 KiB payloads), so the
// requests counted below are what the cache saves.
describe('existence cache', () => {
  it('opt-in: a repeat store of known keys sends no request; a new driver instance asks S3 again', async () => {
    const driver = new S3StorageDriver({ client, bucket, headFirstMinSize: 0, existenceCache: {} });
    const payloads = batch(6, 1);
    await driver.store({}, payloads);
    expect(methods().sort()).toEqual([...Array(6).fill('HEAD'), ...Array(6).fill('PUT')]);
    proxy.clearRequests();
    const claims = await driver.store({}, [...payloads, ...payloads]);
    expect(methods()).toEqual([]);
    expect(claims).toHaveLength(12);
    // Half known, half new: only the new half reaches S3.
    proxy.clearRequests();
    await driver.store({}, [...payloads.slice(0, 3), ...batch(3, 2)]);
    expect(methods().sort()).toEqual(['HEAD', 'HEAD', 'HEAD', 'PUT', 'PUT', 'PUT']);
    proxy.clearRequests();
    await new S3StorageDriver({ client, bucket, headFirstMinSize: 0, existenceCache: {} }).store({}, payloads);
    expect(methods()).toEqual(Array(6).fill('HEAD'));
    // Without the option (the default), every store asks S3.
    proxy.clearRequests();
    await new S3StorageDriver({ client, bucket, headFirstMinSize: 0 }).store({}, payloads);
    expect(methods()).toEqual(Array(6).fill('HEAD'));
  });

  it('a verified retrieve teaches the cache: storing the retrieved payload again sends no request', async () => {
    const writer = new S3StorageDriver({ client, bucket, headFirstMinSize: 0 });
    const payloads = batch(3, 10);
    const claims = await writer.store({}, payloads);
    const reader = new S3StorageDriver({ client, bucket, headFirstMinSize: 0, existenceCache: {} });
    await reader.retrieve({}, claims);
    proxy.clearRequests();
    await reader.store({}, payloads);
    expect(methods()).toEqual([]);
  });

  it('a retrieve that fails (tampered object) teaches the cache nothing, not even the objects it verified', async () => {
    const writer = new S3StorageDriver({ client, bucket, headFirstMinSize: 0 });
    const [p, q, r] = batch(3, 11);
    const [good, tampered] = await writer.store({}, [r!, p!]);
    // q's bytes (same size) planted at p's key: p's genuine claim reads them and fails its check.
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: tampered!.claimData.key, Body: encodePayload(q!) }));
    const reader = new S3StorageDriver({ client, bucket, headFirstMinSize: 0, existenceCache: {} });
    proxy.clearRequests();
    expect(await errorCode(() => reader.retrieve({}, [good!, tampered!]))).toBe(StorageDriverErrorCode.INTEGRITY);
    expect(methods()).toEqual(['GET', 'GET']); // both read; r's bytes verified, p's did not
    proxy.clearRequests();
    await reader.store({}, [r!, p!]);
    expect(methods()).toEqual(['HEAD', 'HEAD']);
  });

  it('a claim whose hash is not the digest its key names is refused before any request and teaches the cache nothing', async () => {
    const writer = new S3StorageDriver({ client, bucket, headFirstMinSize: 0 });
    const [p, q] = batch(2, 12);
    const [claim] = await writer.store({}, [p!]);
    const [other] = await writer.store({}, [q!]);
    // q's bytes planted at p's key: a claim with q's hash would verify them, but its key names p's digest.
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: claim!.claimData.key, Body: encodePayload(q!) }));
    const planted = new StorageDriverClaim({ ...claim!.claimData, hash_value: other!.claimData.hash_value as string });
    const reader = new S3StorageDriver({ client, bucket, headFirstMinSize: 0, existenceCache: {} });
    proxy.clearRequests();
    expect(await errorCode(() => reader.retrieve({}, [planted]))).toBe(StorageDriverErrorCode.INTEGRITY);
    expect(methods()).toEqual([]);
    await reader.store({}, [p!]);
    expect(methods()[0]).toBe('HEAD');
  });

  it('existenceCache: false (the default) asks S3 on every store', async () => {
    const driver = new S3StorageDriver({ client, bucket, headFirstMinSize: 0, existenceCache: false });
    const payloads = batch(4, 3);
    await driver.store({}, payloads);
    proxy.clearRequests();
    await driver.store({}, payloads);
    expect(methods()).toEqual(Array(4).fill('HEAD'));
  });

  it('a key older than ttl is confirmed again; maxEntries evicts the oldest key', async () => {
    const driver = new S3StorageDriver({
      client,
      bucket,
      headFirstMinSize: 0,
      existenceCache: { ttl: 50, maxEntries: 2 },
    });
    const [a, b, c] = batch(3, 4);
    await driver.store({}, [a!]);
    await new Promise((r) => setTimeout(r, 80));
    proxy.clearRequests();
    await driver.store({}, [a!]);
    expect(methods()).toEqual(['HEAD']);

    const lru = new S3StorageDriver({ client, bucket, headFirstMinSize: 0, existenceCache: { maxEntries: 2 } });
    await lru.store({}, [a!]);
    await lru.store({}, [b!]);
    await lru.store({}, [c!]); // evicts a
    proxy.clearRequests();
    await lru.store({}, [b!, c!]);
    expect(methods()).toEqual([]);
    await lru.store({}, [a!]);
    expect(methods()).toEqual(['HEAD']);
  });

  it('ttl is measured on a monotonic clock: the wall clock stepping back does not extend it', async () => {
    const driver = new S3StorageDriver({ client, bucket, headFirstMinSize: 0, existenceCache: { ttl: 50 } });
    const [a] = batch(1, 15);
    await driver.store({}, [a!]);
    const wall = Date.now();
    const stepBack = jest.spyOn(Date, 'now').mockImplementation(() => wall - 3_600_000); // NTP steps back an hour
    try {
      await new Promise((r) => setTimeout(r, 80));
      proxy.clearRequests();
      await driver.store({}, [a!]);
      expect(methods()).toEqual(['HEAD']);
    } finally {
      stepBack.mockRestore();
    }
  });

  it('an object deleted behind the driver (lifecycle) is forgotten once a retrieve finds it missing', async () => {
    const driver = new S3StorageDriver({ client, bucket, headFirstMinSize: 0, existenceCache: {} });
    const [p] = batch(1, 5);
    const [claim] = await driver.store({}, [p!]);
    await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: claim!.claimData.key }));
    expect(await errorCode(() => driver.retrieve({}, [claim!]))).toBe(StorageDriverErrorCode.NOT_FOUND);
    proxy.clearRequests();
    const [again] = await driver.store({}, [p!]);
    expect(methods()).toEqual(['HEAD', 'PUT']);
    const [back] = await driver.retrieve({}, [again!]);
    expect(back?.data).toEqual(p?.data);
  });

  it('a conditional PUT answered 409 ConditionalRequestConflict (a concurrent operation) is retried, not taken as "exists"', async () => {
    // S3 answers 409 when a concurrent write or delete of the key is in flight: the object may
    // not exist, and AWS says to retry. Neither a claim nor a cache entry may rest on it.
    const driver = new S3StorageDriver({
      client,
      bucket,
      headFirstMinSize: 0,
      existenceCache: {},
      existenceCheck: 'conditional-put',
    });
    const [p] = batch(1, 13);
    let conflicts = 1;
    proxy.inject = (req) =>
      req.method === 'PUT' && req.path.startsWith(`/${bucket}/`) && conflicts-- > 0
        ? s3Error({ status: 409, code: 'ConditionalRequestConflict' })
        : undefined;
    try {
      const [claim] = await driver.store({}, [p!]);
      expect(methods()).toEqual(['PUT', 'PUT']);
      const [back] = await new S3StorageDriver({ client, bucket, headFirstMinSize: 0 }).retrieve({}, [claim!]);
      expect(back?.data).toEqual(p?.data);
      // Conflicts that persist fail the store, retryably, and leave nothing cached.
      const [q] = batch(1, 14);
      proxy.inject = (req) =>
        req.method === 'PUT' && req.path.startsWith(`/${bucket}/`)
          ? s3Error({ status: 409, code: 'ConditionalRequestConflict' })
          : undefined;
      const error = await captureStorageDriverError(() => driver.store({}, [q!]));
      expect([error.code, error.retryable]).toEqual([StorageDriverErrorCode.BACKEND, true]);
      proxy.inject = undefined;
      proxy.clearRequests();
      await driver.store({}, [q!]);
      expect(methods()).toEqual(['PUT']);
    } finally {
      proxy.inject = undefined;
    }
  });

  it('rejects invalid cache options with E_CONFIG', async () => {
    for (const existenceCache of [{ ttl: 0 }, { ttl: 1.5 }, { maxEntries: 0 }, { ttl: 86_400_001 }, 'yes']) {
      expect(
        await errorCode(
          async () => new S3StorageDriver({ client, bucket, headFirstMinSize: 0, existenceCache } as never),
        ),
      ).toBe(StorageDriverErrorCode.CONFIG);
    }
  });
});

describe('request checksum', () => {
  it('PutObject carries the payload SHA-256 as x-amz-checksum-sha256 and as the signed payload hash, and no CRC32', async () => {
    const driver = new S3StorageDriver({ client, bucket, headFirstMinSize: 0, existenceCache: {} });
    const [p] = batch(1, 6);
    const [claim] = await driver.store({}, [p!]);
    const put = proxy.requests.find((r) => r.method === 'PUT' && r.path.startsWith(`/${bucket}/`));
    expect(put?.headers['x-amz-checksum-sha256']).toBe(
      Buffer.from(claim!.claimData.hash_value as string, 'hex').toString('base64'),
    );
    expect(put?.headers['x-amz-checksum-crc32']).toBeUndefined();
    // The same digest, hex, is the SigV4 payload hash: the body is not hashed a second time.
    expect(put?.headers['x-amz-content-sha256']).toBe(claim!.claimData.hash_value);
    expect(put?.headers['x-amz-trailer']).toBeUndefined();
    // The checksum S3 verified is the one the claim carries: the SHA-256 of the stored bytes.
    const [back] = await driver.retrieve({}, [claim!]);
    expect(back?.data).toEqual(p?.data);
    expect(claim!.claimData.hash_value).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe('retrieve', () => {
  it("GetObject does not ask for the SDK's response checksum (core verifies the SHA-256): the body is hashed once", async () => {
    const driver = new S3StorageDriver({ client, bucket, headFirstMinSize: 0 });
    const payloads = batch(2, 12);
    const claims = await driver.store({}, payloads);
    const first = proxy.requests.length;
    const back = await driver.retrieve({}, claims);
    const gets = proxy.requests.slice(first).filter((r) => r.method === 'GET');
    expect(gets).toHaveLength(2);
    for (const get of gets) expect(get.headers['x-amz-checksum-mode']).toBeUndefined();
    expect(back.map((p) => p.data)).toEqual(payloads.map((p) => p.data));
    // The client's own commands are untouched: a plain GetObject still asks for validation.
    const direct = await client.send(new GetObjectCommand({ Bucket: bucket, Key: claims[0]?.claimData.key as string }));
    await direct.Body?.transformToByteArray();
    expect(proxy.requests.at(-1)?.headers['x-amz-checksum-mode']).toBe('ENABLED');
  });

  it('reads bodies of every size (empty data, one chunk, many chunks) byte for byte', async () => {
    const driver = new S3StorageDriver({ client, bucket, headFirstMinSize: 0 });
    const payloads = [bigPayload(0, 7), bigPayload(10, 8), bigPayload(3 * 1024 * 1024 + 3, 9)];
    const back = await driver.retrieve({}, await driver.store({}, payloads));
    expect(
      back.map((p) => Buffer.from(p.data ?? []).equals(Buffer.from(payloads[back.indexOf(p)]?.data ?? []))),
    ).toEqual([true, true, true]);
    // The payload's bytes live in a buffer of exactly the object's size (no over-allocation kept alive).
    const big = back[2]?.data as Uint8Array;
    expect(big.buffer.byteLength).toBeLessThan(big.byteLength + 1024);
  });
});
