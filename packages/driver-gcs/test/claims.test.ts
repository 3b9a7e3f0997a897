/**
 * Claims are untrusted input: the default claim carries the object name three times (`key`,
 * `object_name`, `object`) and the hash twice (snake and camel case), so every spelling is an
 * attack surface. Hostile buckets, traversal through `.`/`..`, names GCS cannot hold, fields that
 * disagree, each official shape on its own — every one is `E_INVALID_CLAIM` before any request,
 * or the exact stored payload. Requests are counted at a proxy to prove "before any request".
 */
import {
  StorageDriverClaim,
  StorageDriverErrorCode,
  type StorageDriverTargetInfo,
  sha256Hex,
} from '@x/storage-driver-core';
import { FaultProxy } from '@x/test-servers';
import fc from 'fast-check';
import { GcsStorageDriver, readClaimObjectName, validateClaimBucket, validateClaimObjectName } from '../src';
import { captureStorageDriverError, createBucket, deleteBucket, GCS_ENDPOINT, makeStorage, payload } from './helpers';

const storage = makeStorage();
let proxy: FaultProxy;
let bucket: string;
let other: string;
let driver: GcsStorageDriver;
let claim: StorageDriverClaim;
const TARGET: StorageDriverTargetInfo = { kind: 'workflow', namespace: 'ns', type: 'T', id: 'wf-1', runId: 'run-1' };
const PAYLOAD = payload('the stored payload');

beforeAll(async () => {
  proxy = await FaultProxy.start(GCS_ENDPOINT);
  bucket = await createBucket(storage, 'claims');
  other = await createBucket(storage, 'claims-other');
  driver = new GcsStorageDriver({ client: makeStorage(proxy.endpoint), bucket });
  [claim] = (await driver.store({ target: TARGET }, [PAYLOAD])) as [StorageDriverClaim];
  // The same bytes under the same name in a bucket the credentials reach but claims may not name.
  const d = claim.claimData;
  await storage
    .bucket(other)
    .file(d.key as string)
    .save(
      Buffer.from(
        await storage
          .bucket(bucket)
          .file(d.key as string)
          .download()
          .then(([b]) => b),
      ),
    );
});
beforeEach(() => proxy.reset());
afterAll(async () => {
  await proxy.close();
  await deleteBucket(storage, bucket);
  await deleteBucket(storage, other);
});

/** The code `retrieve` rejects `data` with, and that no request was sent. */
async function refusedBeforeAnyRequest(data: Record<string, string>): Promise<string> {
  const error = await captureStorageDriverError(() => driver.retrieve({}, [new StorageDriverClaim(data)]));
  expect(proxy.requests).toHaveLength(0);
  return error.code;
}

const name = () => claim.claimData.key as string;
const hash = () => claim.claimData.hash_value as string;
const NAME_FIELDS = ['key', 'object_name', 'object'] as const;

describe('every official shape is read', () => {
  it.each([
    ['Go', () => ({ bucket, key: name(), hash_algorithm: 'sha256', hash_value: hash() })],
    ['Python', () => ({ bucket, object_name: name(), hash_algorithm: 'sha256', hash_value: hash() })],
    ['TypeScript', () => ({ bucket, object: name(), hashAlgorithm: 'sha256', hashValue: hash() })],
    [
      'TypeScript fields with snake hashes',
      () => ({ bucket, object: name(), hash_algorithm: 'sha256', hash_value: hash() }),
    ],
    ['all (ours)', () => ({ ...claim.claimData })],
  ])('%s claim → the payload; one GET', async (_n, data) => {
    const [back] = await driver.retrieve({}, [new StorageDriverClaim(data())]);
    expect(Buffer.from(back?.data ?? [])).toEqual(Buffer.from(PAYLOAD.data ?? []));
    expect(proxy.requests.map((r) => r.method)).toEqual(['GET']);
  });
});

describe('hostile claims → E_INVALID_CLAIM before any request', () => {
  it.each([
    ['a bucket not in allowedBuckets (holding the same object)', () => ({ bucket: other })],
    ['a bucket that is not a GCS bucket name', () => ({ bucket: 'Bad_Bucket' })],
    ['a bucket with a path', () => ({ bucket: `${bucket}/o/x` })],
    ['a bucket "..', () => ({ bucket: '..' })],
    ['an empty bucket', () => ({ bucket: '' })],
    ['no name field at all', () => ({ key: undefined, object_name: undefined, object: undefined })],
    ['key and object_name disagree', () => ({ object_name: `v0/d/sha256/${hash()}` })],
    ['object disagrees with the other two', () => ({ object: `v0/ns/ns/d/sha256/${hash()}` })],
    ['an empty object field next to valid ones', () => ({ object: '' })],
    ['snake and camel hashes disagree', () => ({ hashValue: sha256Hex(new Uint8Array([1])) })],
    [
      'no hash at all',
      () => ({ hash_algorithm: undefined, hash_value: undefined, hashAlgorithm: undefined, hashValue: undefined }),
    ],
  ])('%s', async (_n, change) => {
    const data: Record<string, string> = { ...claim.claimData };
    for (const [k, v] of Object.entries(change())) {
      if (v === undefined) delete data[k];
      else data[k] = v;
    }
    expect(await refusedBeforeAnyRequest(data)).toBe(StorageDriverErrorCode.INVALID_CLAIM);
  });

  const h = '0a'.repeat(32);
  const hostileNames: [string, string][] = [
    ['raw dot segments', `v0/ns/./wt/T/wi/../ri/R/d/sha256/${h}`],
    ['climbing above v0/', `v0/ns/a/wt/T/wi/../../../../d/sha256/${h}`],
    ['a leading slash', `/v0/d/sha256/${h}`],
    ['another bucket as a path', `../${'x'}/v0/d/sha256/${h}`],
    ['a gs:// URL', `gs://other/v0/d/sha256/${h}`],
    ['backslashes', `v0\\d\\sha256\\${h}`],
    ['lower-case escape', `v0/ns/a/wt/T/wi/a%2fb/ri/R/d/sha256/${h}`],
    ['escaped dot inside a segment', `v0/ns/a%2Eb/wt/T/wi/I/ri/R/d/sha256/${h}`],
    ['raw #', `v0/ns/a/wt/T/wi/a#b/ri/R/d/sha256/${h}`],
    ['raw ?', `v0/ns/a/wt/T/wi/a?alt=media/ri/R/d/sha256/${h}`],
    ['CR LF', `v0/ns/a/wt/T/wi/I\r\nX-Evil: 1/ri/R/d/sha256/${h}`],
    ['NUL', `v0/ns/a/wt/T/wi/I\u0000/ri/R/d/sha256/${h}`],
    ['lone surrogate', `v0/ns/a/wt/T/wi/\udc00/ri/R/d/sha256/${h}`],
    [
      '1,025 bytes',
      `v0/ns/a/wt/T/wi/${'x'.repeat(1025 - `v0/ns/a/wt/T/wi//ri/R/d/sha256/${h}`.length)}/ri/R/d/sha256/${h}`,
    ],
    ['1,025 bytes of 2-byte characters', `v0/ns/a/wt/T/wi/${'é'.repeat(470)}/ri/R/d/sha256/${h}`],
    ['100 KB', `v0/ns/a/wt/T/wi/${'x'.repeat(100_000)}/ri/R/d/sha256/${h}`],
    ['S3 layout without ns (Python < 1.35 on S3)', `v0/wt/T/wi/I/ri/R/d/sha256/${h}`],
    ['extra segments', `v0/ns/a/wt/T/wi/I/ri/R/x/y/d/sha256/${h}`],
    ['upper-case digest', `v0/d/sha256/${h.toUpperCase()}`],
    ['no digest', 'v0/d/sha256/'],
    ['an ACME path', `.well-known/acme-challenge/v0/d/sha256/${h}`],
  ];
  it.each(hostileNames)('an object name with %s, in each name field and in all of them', async (_n, hostile) => {
    expect(() => validateClaimObjectName(hostile)).toThrow();
    for (const fields of [...NAME_FIELDS.map((f) => [f]), NAME_FIELDS]) {
      const data: Record<string, string> = { bucket, hash_algorithm: 'sha256', hash_value: h };
      for (const f of fields) data[f] = hostile;
      expect([fields.join('+'), await refusedBeforeAnyRequest(data)]).toEqual([
        fields.join('+'),
        StorageDriverErrorCode.INVALID_CLAIM,
      ]);
    }
  });

  it('a name naming another digest than the claim → E_INTEGRITY, before any request', async () => {
    const data = { ...claim.claimData, hash_value: '1'.repeat(64), hashValue: '1'.repeat(64) };
    expect(await refusedBeforeAnyRequest(data)).toBe(StorageDriverErrorCode.INTEGRITY);
  });

  it('objectIdOf validates the same way (the collector compares ids of untrusted claims)', () => {
    expect(driver.objectIdOf(claim)).toBe(`${bucket}/${name()}`);
    expect(() => driver.objectIdOf({ ...claim.claimData, bucket: other })).toThrow(/allowedBuckets/);
    expect(() => driver.objectIdOf({ ...claim.claimData, object: 'v0/../x' })).toThrow();
  });

  it('the validators on their own', () => {
    expect(readClaimObjectName({ object_name: 'a', object: 'a' })).toBe('a');
    expect(() => readClaimObjectName({ key: 'a', object: 'b' })).toThrow(/different objects/);
    expect(() => readClaimObjectName({})).toThrow(/missing/);
    for (const b of ['ab', 'a'.repeat(64), 'goog-x', 'x-google-y', '192.168.1.1', 'a..b', '-ab', 'ab-']) {
      expect(() => validateClaimBucket(b)).toThrow();
    }
    for (const b of ['abc', 'my_bucket-1', 'a.b.c', `${'a'.repeat(63)}.${'b'.repeat(63)}`]) {
      expect(validateClaimBucket(b)).toBe(b);
    }
  });
});

describe('property: a default claim with one name field replaced', () => {
  it('is E_INVALID_CLAIM (or E_INTEGRITY / E_NOT_FOUND for a well-formed other name), never another payload', async () => {
    const valid = claim.claimData;
    const damaged = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 40 }),
      fc.constantFrom('.', '..', '%2E', '/', '%2F', '\\', '\u0000', '#', '?', '%', 'v0/', '../'),
      fc
        .tuple(fc.nat(), fc.constantFrom('.', '..', '/..', '%2e', '%', '\r\n', '\ud800', 'é', '//', '#'))
        .map(([at, piece]) => {
          const i = at % (name().length + 1);
          return name().slice(0, i) + piece + name().slice(i);
        }),
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...NAME_FIELDS), damaged, async (field, value) => {
        proxy.reset();
        const data = { ...valid, [field]: value };
        const result = await driver.retrieve({}, [new StorageDriverClaim(data)]).then(
          (payloads) => ({ ok: true as const, payloads }),
          (error: unknown) => ({ ok: false as const, error }),
        );
        if (value === valid[field]) return;
        // Three fields agree only if all equal `value`; one changed field makes them disagree.
        expect(result.ok).toBe(false);
        expect((result as { error: { code?: string } }).error.code).toBe(StorageDriverErrorCode.INVALID_CLAIM);
        expect(proxy.requests).toHaveLength(0);
      }),
      { numRuns: 300, seed: 20261202 },
    );
  });
});
