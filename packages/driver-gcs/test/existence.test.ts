/**
 * `existenceCheck` against fake-gcs-server, through a counting `FaultProxy` (nothing injected):
 * the requests each mode sends for new objects, repeats (by the instance that stored or read the
 * object, and by another one), objects older than `refreshAfter` and damaged objects, and the
 * validation of the option. The counts are the ones the README quotes.
 */
import { describe, expect, it } from '@jest/globals';
import {
  type Payload,
  STORAGE_OPERATION_REPORT,
  type StorageDriverClaim,
  type StorageDriverStoreContext,
  type StorageOperationReport,
} from '@x/storage-driver-core';
import { assertPayloadEqual, makePayload, pseudoRandomBytes } from '@x/storage-driver-test-suite';
import {
  GCS_HEAD_FIRST_MIN_BYTES,
  type GcsExistenceCheck,
  GcsStorageDriver,
  type GcsStorageDriverOptions,
} from '../src';
import { bucketOfRequest, errorCode, gcsOperation, sleep, useProxiedBucket } from './helpers';

const MODES: readonly GcsExistenceCheck[] = ['auto', 'conditional-put', 'head'];

const net = useProxiedBucket('exist');

/** A driver of this test's bucket, through the proxy. */
function driver(options: Partial<GcsStorageDriverOptions> = {}): GcsStorageDriver {
  return new GcsStorageDriver({ client: net.proxied, bucket: net.bucket, ...options });
}

/** This test's requests (operation and status) since the last call, which it forgets. */
function takeRequests(): { op: string; status: number | undefined }[] {
  const mine = net.proxy.requests.filter((r) => bucketOfRequest(r) === net.bucket);
  net.proxy.clearRequests();
  return mine.map((r) => ({ op: gcsOperation(r), status: r.status }));
}

/** How many requests of each operation `requests` holds. */
function tally(requests: readonly { op: string }[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const { op } of requests) counts[op] = (counts[op] ?? 0) + 1;
  return counts;
}

/** Operations counted since the last call (see {@link takeRequests}). */
const take = () => tally(takeRequests());

/** Stores `payloads` with `d`; resolves to how many of their objects already existed. */
async function existing(d: GcsStorageDriver, payloads: Payload[]): Promise<number | undefined> {
  let found: number | undefined;
  const onReport = (r: StorageOperationReport) => {
    found = r.existing;
  };
  await d.store({ [STORAGE_OPERATION_REPORT]: onReport } as StorageDriverStoreContext, payloads);
  return found;
}

const small = (seed = 1) => makePayload(pseudoRandomBytes(4096, seed));
const large = (seed = 2) => makePayload(pseudoRandomBytes(GCS_HEAD_FIRST_MIN_BYTES, seed));

/** `claim` reads back as `expected` through `d`. */
async function expectReadable(d: GcsStorageDriver, claim: StorageDriverClaim, expected: Payload): Promise<void> {
  const [read] = await d.retrieve({}, [claim]);
  assertPayloadEqual(read as Payload, expected);
}

/** The live generation of a claim's object, read directly. */
async function generationOf(claim: StorageDriverClaim): Promise<string> {
  const [metadata] = await net.direct.bucket(net.bucket).file(String(claim.claimData.key)).getMetadata();
  return String(metadata.generation);
}

describe('new objects', () => {
  it('auto: one upload below 256 KiB; a lookup and an upload from 256 KiB', async () => {
    const d = driver();
    expect(await existing(d, [small(1), small(2), small(3)])).toBe(0);
    expect(take()).toEqual({ upload: 3 });
    expect(await existing(d, [large()])).toBe(0);
    expect(take()).toEqual({ getMetadata: 1, upload: 1 });
  });

  it('conditional-put: one upload each, whatever the size; head: a lookup (404) and an upload each', async () => {
    expect(await existing(driver({ existenceCheck: 'conditional-put' }), [small(1), small(2), large(3)])).toBe(0);
    expect(take()).toEqual({ upload: 3 });
    expect(await existing(driver({ existenceCheck: 'head' }), [small(4), small(5), large(6)])).toBe(0);
    const requests = takeRequests();
    expect(requests.filter((r) => r.op === 'getMetadata').map((r) => r.status)).toEqual([404, 404, 404]);
    expect(requests.filter((r) => r.op === 'upload').map((r) => r.status)).toEqual([200, 200, 200]);
  });

  it('above resumableUploadThreshold, conditional-put opens a session straight away; a repeat is refused (412), then looked up', async () => {
    const d = driver({ existenceCheck: 'conditional-put', resumableUploadThreshold: 0 });
    await d.store({}, [small()]);
    expect(take()).toEqual({ resumableStart: 1, resumablePut: 1 });
    await driver({ existenceCheck: 'conditional-put', resumableUploadThreshold: 0 }).store({}, [small()]);
    // fake-gcs-server v1.56.1 opens the session and refuses the bytes.
    expect(takeRequests()).toEqual([
      { op: 'resumableStart', status: 200 },
      { op: 'resumablePut', status: 412 },
      { op: 'getMetadata', status: 200 },
    ]);
  });
});

describe('repeats of a young object', () => {
  it('head: one lookup, from any instance', async () => {
    await driver({ existenceCheck: 'head' }).store({}, [small(), large()]);
    take();
    for (const d of [driver({ existenceCheck: 'head' }), driver({ existenceCheck: 'head' })]) {
      expect(await existing(d, [small(), large()])).toBe(2);
      expect(take()).toEqual({ getMetadata: 2 });
    }
  });

  it('auto, the instance that stored or read the object: one lookup, whatever its size', async () => {
    const d = driver();
    const [claim] = (await d.store({}, [small()])) as [StorageDriverClaim];
    take();
    expect(await existing(d, [small()])).toBe(1);
    expect(take()).toEqual({ getMetadata: 1 });
    // An instance that has just read it (a workflow passing its input on to an activity).
    const reader = driver();
    await reader.retrieve({}, [claim]);
    expect(take()).toEqual({ download: 1 });
    expect(await existing(reader, [small()])).toBe(1);
    expect(take()).toEqual({ getMetadata: 1 });
  });

  it('conditional-put (and auto below 256 KiB) from another instance: a refused upload (412) then a lookup; the object is intact', async () => {
    const [claim] = (await driver().store({}, [small()])) as [StorageDriverClaim];
    const generation = await generationOf(claim);
    take();
    for (const d of [driver({ existenceCheck: 'conditional-put' }), driver()]) {
      expect(await existing(d, [small()])).toBe(1);
      expect(takeRequests()).toEqual([
        { op: 'upload', status: 412 },
        { op: 'getMetadata', status: 200 },
      ]);
    }
    expect(await generationOf(claim)).toBe(generation);
    await expectReadable(driver(), claim, small());
  });

  it('auto from 256 KiB, from another instance: one lookup, no body sent', async () => {
    await driver().store({}, [large()]);
    take();
    expect(await existing(driver(), [large()])).toBe(1);
    expect(take()).toEqual({ getMetadata: 1 });
  });

  it('auto: an object deleted behind the instance is looked up first, then uploaded again', async () => {
    const d = driver();
    const [claim] = (await d.store({}, [small()])) as [StorageDriverClaim];
    await net.direct.bucket(net.bucket).file(String(claim.claimData.key)).delete();
    take();
    expect(await existing(d, [small()])).toBe(0);
    expect(take()).toEqual({ getMetadata: 1, upload: 1 });
    // A read that found nothing: most likely new again, so uploaded first.
    await net.direct.bucket(net.bucket).file(String(claim.claimData.key)).delete();
    expect(await errorCode(() => d.retrieve({}, [claim]))).toBe('E_NOT_FOUND');
    take();
    expect(await existing(d, [small()])).toBe(0);
    expect(take()).toEqual({ upload: 1 });
  });
});

describe('repeats of an object older than refreshAfter', () => {
  it('every mode rewrites it in place; after a refused upload, the lookup that follows finds its age', async () => {
    const payloads = new Map(MODES.map((mode, i) => [mode, small(10 + i)]));
    const claims = new Map<GcsExistenceCheck, StorageDriverClaim>();
    for (const [mode, p] of payloads) {
      const [claim] = (await driver({ existenceCheck: mode }).store({}, [p])) as [StorageDriverClaim];
      claims.set(mode, claim);
    }
    await sleep(1100);
    take();
    const expected: Record<GcsExistenceCheck, Record<string, number>> = {
      auto: { upload: 1, getMetadata: 1, rewrite: 1 },
      'conditional-put': { upload: 1, getMetadata: 1, rewrite: 1 },
      head: { getMetadata: 1, rewrite: 1 },
    };
    for (const mode of MODES) {
      const claim = claims.get(mode) as StorageDriverClaim;
      const before = await generationOf(claim);
      const d = driver({ existenceCheck: mode, refreshAfter: 1000 });
      expect([mode, await existing(d, [payloads.get(mode) as Payload])]).toEqual([mode, 1]);
      expect([mode, take()]).toEqual([mode, expected[mode]]);
      expect(BigInt(await generationOf(claim))).toBeGreaterThan(BigInt(before));
    }
  });
});

describe('damaged objects (another size under the name)', () => {
  /** What a store of a damaged object sends, per mode and size, by a fresh instance. */
  const cases: [GcsExistenceCheck, 'small' | 'large', Record<string, number>][] = [
    ['auto', 'small', { upload: 2, getMetadata: 1 }],
    ['auto', 'large', { getMetadata: 1, upload: 1 }],
    ['conditional-put', 'small', { upload: 2, getMetadata: 1 }],
    ['conditional-put', 'large', { upload: 2, getMetadata: 1 }],
    ['head', 'small', { getMetadata: 1, upload: 1 }],
    ['head', 'large', { getMetadata: 1, upload: 1 }],
  ];
  it.each(cases)(
    '%s, %s payload: replaced on the version seen (written), then readable',
    async (mode, size, counts) => {
      const p = size === 'small' ? small() : large();
      const [claim] = (await driver().store({}, [p])) as [StorageDriverClaim];
      const file = net.direct.bucket(net.bucket).file(String(claim.claimData.key));
      await file.save(Buffer.from('torn'), { resumable: false });
      const damaged = await generationOf(claim);
      expect(await errorCode(() => driver().retrieve({}, [claim]))).toBe('E_INTEGRITY');
      take();
      expect(await existing(driver({ existenceCheck: mode }), [p])).toBe(0);
      const preconditions = net.proxy.requests
        .filter((r) => bucketOfRequest(r) === net.bucket && gcsOperation(r) === 'upload')
        .map((r) => r.query.get('ifGenerationMatch'));
      const requests = takeRequests();
      expect(tally(requests)).toEqual(counts);
      // The replacing upload is the last request, on exactly the damaged generation.
      expect(requests.at(-1)).toEqual({ op: 'upload', status: 200 });
      expect(preconditions.at(-1)).toBe(damaged);
      await expectReadable(driver(), claim, p);
    },
  );

  it('auto, the instance that stored it: looked up first, replaced', async () => {
    const d = driver();
    const [claim] = (await d.store({}, [small()])) as [StorageDriverClaim];
    await net.direct
      .bucket(net.bucket)
      .file(String(claim.claimData.key))
      .save(Buffer.from('torn'), { resumable: false });
    take();
    expect(await existing(d, [small()])).toBe(0);
    expect(take()).toEqual({ getMetadata: 1, upload: 1 });
    await expectReadable(d, claim, small());
  });
});

describe('the option', () => {
  it("defaults to 'auto' and keeps what is given", () => {
    expect(driver().existenceCheck).toBe('auto');
    for (const mode of MODES) expect(driver({ existenceCheck: mode }).existenceCheck).toBe(mode);
  });

  it.each([['always'], ['HEAD'], ['conditional'], [''], [null], [1]])('%p is refused with E_CONFIG', (value) => {
    expect(() => driver({ existenceCheck: value as unknown as GcsExistenceCheck })).toThrow(
      expect.objectContaining({
        code: 'E_CONFIG',
        message: expect.stringContaining('existenceCheck must be "auto", "conditional-put" or "head"'),
      }),
    );
  });
});
