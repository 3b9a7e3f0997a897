/**
 * Test vectors of Temporal's official GCS drivers: the object names of the Go driver's tests
 * (`contrib/gcp/gcsdriver` v0.1.0, `TestObjectKey_*`, `TestEncodeObjectNameSegment_*`, `TestStore_*`)
 * and the TypeScript driver's tests (`@temporalio/external-storage-gcs` 1.22.0), the claim shape of
 * each claim format, and the stored bytes — each stored through the driver into fake-gcs-server and
 * found there under exactly that name.
 */
import { encodePayload, StorageDriverClaim, type StorageDriverTargetInfo, sha256Hex } from '@x/storage-driver-core';
import { encodeGcsSegment, GcsStorageDriver, isGcsSegment, isObjectName } from '../src';
import { createBucket, deleteBucket, listNames, makeStorage, payload } from './helpers';

const storage = makeStorage();
let bucket: string;
beforeAll(async () => {
  bucket = await createBucket(storage, 'vectors');
});
afterAll(async () => {
  await deleteBucket(storage, bucket);
});

const encoder = new TextEncoder();
/** `{"metadata":{"encoding":"json/plain"},"data":"\"hello\""}` serialized, and its SHA-256. */
const HELLO = payload('hello');
const HELLO_BYTES = '0a160a08656e636f64696e67120a6a736f6e2f706c61696e12072268656c6c6f22';
const HELLO_SHA256 = '1b8435174847de88db3a8c5a764295d62add152743b3a9a730796a4c090caf8c';
/** Go `TestStore_SinglePayload`'s payload: `binary/plain` "hello". */
const GO_HELLO = { metadata: { encoding: encoder.encode('binary/plain') }, data: encoder.encode('hello') };

const wf = (namespace: string, type?: string, id?: string, runId?: string): StorageDriverTargetInfo => ({
  kind: 'workflow',
  namespace,
  ...(type === undefined ? {} : { type }),
  ...(id === undefined ? {} : { id }),
  ...(runId === undefined ? {} : { runId }),
});
const act = (namespace: string, type: string, id: string, runId: string): StorageDriverTargetInfo => ({
  kind: 'activity',
  namespace,
  type,
  id,
  runId,
});

/**
 * Go vectors call `objectKey(target, "abc123")`; here `abc123` stands for the real digest of the
 * stored payload. `x`×300 in all four fields (G7) is over 1,024 bytes: Go and Python fall back to
 * the namespace digest name (the TypeScript driver writes the long name, which GCS refuses).
 */
const X300 = 'x'.repeat(300);
const goVectors: [string, StorageDriverTargetInfo | undefined, string][] = [
  ['G1 TestObjectKey_NoTarget', undefined, 'v0/d/sha256/abc123'],
  [
    'G2 TestObjectKey_WorkflowInfo',
    wf('default', 'MyWorkflow', 'wf-123', 'run-456'),
    'v0/ns/default/wt/MyWorkflow/wi/wf-123/ri/run-456/d/sha256/abc123',
  ],
  [
    'G3 TestObjectKey_ActivityInfo',
    act('default', 'MyActivity', 'act-789', 'run-abc'),
    'v0/ns/default/at/MyActivity/ai/act-789/ri/run-abc/d/sha256/abc123',
  ],
  [
    'G4 TestObjectKey_WorkflowInfo_EmptyFields',
    wf('my-ns', '', '', ''),
    'v0/ns/my-ns/wt/null/wi/null/ri/null/d/sha256/abc123',
  ],
  [
    'G5 TestObjectKey_ActivityInfo_EmptyFields',
    act('my-ns', '', '', ''),
    'v0/ns/my-ns/at/null/ai/null/ri/null/d/sha256/abc123',
  ],
  [
    'G6 TestObjectKey_WorkflowInfo_SpecialChars',
    wf('my namespace', 'my/workflow', 'wf id+1', 'run=abc'),
    'v0/ns/my namespace/wt/my%2Fworkflow/wi/wf id+1/ri/run=abc/d/sha256/abc123',
  ],
  ['G7 TestObjectKey_LongKeyFallback', wf(X300, X300, X300, X300), `v0/ns/${X300}/d/sha256/abc123`],
  // Not in the Go tests: an empty namespace is `null` too (measured in Python 1.35).
  ['empty namespace', wf('', 'T', 'id', 'run'), 'v0/ns/null/wt/T/wi/id/ri/run/d/sha256/abc123'],
];

/** TypeScript vectors: the name starts with this (the digest follows). */
const tsVectors: [string, StorageDriverTargetInfo | undefined, string][] = [
  [
    'T1 content-addressed name',
    wf('my-ns', 'MyWorkflow', 'wf-1', 'run-1'),
    'v0/ns/my-ns/wt/MyWorkflow/wi/wf-1/ri/run-1/d/sha256/',
  ],
  [
    'T2 only GCS-discouraged characters are escaped',
    wf('payments prod', "Capture/Charge!*'()", 'order+123=abc', 'r~1'),
    "v0/ns/payments prod/wt/Capture%2FCharge!%2A'()/wi/order+123=abc/ri/r~1/d/sha256/",
  ],
  ['T3 reserved and empty segments', wf('.', '..', undefined, ''), 'v0/ns/%2E/wt/%2E%2E/wi/null/ri/null/d/sha256/'],
  ['T4 no identity', undefined, 'v0/d/sha256/'],
];

describe('object names', () => {
  it('the serialized payload and its digest are pinned', () => {
    expect(Buffer.from(encodePayload(HELLO)).toString('hex')).toBe(HELLO_BYTES);
    expect(sha256Hex(encodePayload(HELLO))).toBe(HELLO_SHA256);
  });

  it.each(goVectors)('%s: exact object name, stored under it', async (_name, target, expected) => {
    const driver = new GcsStorageDriver({ client: storage, bucket, claimFormat: 'go' });
    const [claim] = await driver.store(target ? { target } : {}, [HELLO]);
    const name = expected.replace('abc123', HELLO_SHA256);
    expect(claim?.claimData.key).toBe(name);
    expect(Buffer.byteLength(name)).toBeLessThanOrEqual(1024);
    expect(await listNames(storage, bucket)).toContain(name);
    const [bytes] = await storage.bucket(bucket).file(name).download();
    expect(bytes.toString('hex')).toBe(HELLO_BYTES);
  });

  it.each(tsVectors)('%s', async (_name, target, prefix) => {
    const driver = new GcsStorageDriver({ client: storage, bucket });
    const [claim] = await driver.store(target ? { target } : {}, [HELLO]);
    expect(claim?.claimData.key).toBe(`${prefix}${HELLO_SHA256}`);
  });

  it('G9 TestStore_DifferentTargets_SamePayload_DifferentKeys', async () => {
    const driver = new GcsStorageDriver({ client: storage, bucket });
    const [a] = await driver.store({ target: wf('ns', '', 'wf-1', 'run-1') }, [HELLO]);
    const [b] = await driver.store({ target: act('ns', '', 'act-1', 'run-1') }, [HELLO]);
    expect(a?.claimData.key).toBe(`v0/ns/ns/wt/null/wi/wf-1/ri/run-1/d/sha256/${HELLO_SHA256}`);
    expect(b?.claimData.key).toBe(`v0/ns/ns/at/null/ai/act-1/ri/run-1/d/sha256/${HELLO_SHA256}`);
  });

  it('exactly 1,024 bytes is kept; 1,025 falls back (UTF-8 bytes, not characters)', async () => {
    const driver = new GcsStorageDriver({ client: storage, bucket });
    // v0/ns/n/wt/t/wi/{id}/ri/r/d/sha256/{64}: 97 bytes besides the id.
    const fixed = `v0/ns/n/wt/t/wi//ri/r/d/sha256/${HELLO_SHA256}`.length;
    const room = 1024 - fixed;
    const exact = 'é'.repeat(Math.floor(room / 2)) + (room % 2 === 1 ? 'a' : ''); // 2-byte characters: 1,024 bytes
    const [kept] = await driver.store({ target: wf('n', 't', exact, 'r') }, [HELLO]);
    expect(Buffer.byteLength(kept?.claimData.key as string)).toBe(1024);
    expect(kept?.claimData.key).toContain(`/wi/${exact}/`);
    const [fallback] = await driver.store({ target: wf('n', 't', `${exact}c`, 'r') }, [HELLO]);
    expect(fallback?.claimData.key).toBe(`v0/ns/n/d/sha256/${HELLO_SHA256}`);
  });
});

describe('segment escaping (Go TestEncodeObjectNameSegment_*, plus the C1 and U+00A0 edges)', () => {
  const segments: [string, string][] = [
    ['', 'null'],
    ['hello-world_v2.0', 'hello-world_v2.0'],
    ['a/b', 'a%2Fb'],
    ['100%done', '100%25done'],
    ['a#b', 'a%23b'],
    ['a[b]', 'a%5Bb%5D'],
    ['a*b', 'a%2Ab'],
    ['a?b', 'a%3Fb'],
    ['a:b', 'a%3Ab'],
    ['a"b', 'a%22b'],
    ['a<b>', 'a%3Cb%3E'],
    ['a|b', 'a%7Cb'],
    ['a\x00b', 'a%00b'],
    ['a\nb', 'a%0Ab'],
    ['a\rb', 'a%0Db'],
    ['a\x7fb', 'a%7Fb'],
    ['.', '%2E'],
    ['..', '%2E%2E'],
    ['...', '...'],
    ['日本語', '日本語'],
    ['café', 'café'],
    ['hello world', 'hello world'],
    ['a+b=c@d', 'a+b=c@d'],
    ['\u0085', '%C2%85'],
    ['\u009f', '%C2%9F'],
    ['\u00a0', '\u00a0'],
    ["~!$&'(),;=", "~!$&'(),;="],
    // A lone surrogate is what the Temporal server stores as U+FFFD (protobuf strings are UTF-8).
    ['a\ud800b', 'a\ufffdb'],
  ];
  it.each(segments)('%j → %j, and the segment is recognized as canonical', (input, expected) => {
    expect(encodeGcsSegment(input)).toBe(expected);
    expect(isGcsSegment(expected)).toBe(true);
  });

  it('undefined and null are null; a non-string is a TypeError', () => {
    expect(encodeGcsSegment(undefined)).toBe('null');
    expect(encodeGcsSegment(null)).toBe('null');
    expect(() => encodeGcsSegment(42 as unknown as string)).toThrow(TypeError);
  });

  it.each([
    ['a%2fb', 'lower-case hex'],
    ['%41', 'an escape of a kept character'],
    ['a%2', 'a cut escape'],
    ['%C3', 'half a UTF-8 sequence'],
    ['a/b', 'a raw slash (two segments)'],
    ['.', 'a raw dot segment'],
    ['..', 'a raw dot-dot segment'],
    ['a#b', 'a raw #'],
    ['a\nb', 'a raw control character'],
    ['%2E.', 'an escaped dot where none is needed'],
    ['%6Eull', 'an escaped null'],
    ['', 'an empty segment'],
  ])('%j is not a segment any official driver writes (%s)', (segment) => {
    expect(isGcsSegment(segment)).toBe(false);
  });

  it('GCS names differ from the S3 key spec for the same target', async () => {
    const driver = new GcsStorageDriver({ client: storage, bucket });
    const [claim] = await driver.store({ target: wf('payments prod', 'ChargeWorkflow', 'order+123=abc', 'r') }, [
      HELLO,
    ]);
    // S3 (DESIGN §4.4): v0/ns/payments%20prod/wt/ChargeWorkflow/wi/order%2B123%3Dabc/...
    expect(claim?.claimData.key).toBe(
      `v0/ns/payments prod/wt/ChargeWorkflow/wi/order+123=abc/ri/r/d/sha256/${HELLO_SHA256}`,
    );
    expect(isObjectName(claim?.claimData.key)).toBe(true);
  });
});

describe('claims (G8 TestStore_SinglePayload and the TypeScript claim)', () => {
  const GO_HELLO_SHA256 = sha256Hex(encodePayload(GO_HELLO));
  const key = `v0/d/sha256/${GO_HELLO_SHA256}`;
  const snake = { hash_algorithm: 'sha256', hash_value: GO_HELLO_SHA256 };
  const camel = { hashAlgorithm: 'sha256', hashValue: GO_HELLO_SHA256 };
  it.each([
    ['all (default)', undefined, () => ({ bucket, key, object_name: key, object: key, ...snake, ...camel })],
    ['go', 'go', () => ({ bucket, key, ...snake })],
    ['python', 'python', () => ({ bucket, object_name: key, ...snake })],
    ['typescript', 'typescript', () => ({ bucket, object: key, ...camel })],
  ] as const)(
    'claimFormat %s: exactly that official shape, read back by a driver of every format',
    async (_n, claimFormat, shape) => {
      const driver = new GcsStorageDriver({ client: storage, bucket, ...(claimFormat ? { claimFormat } : {}) });
      const [claim] = await driver.store({}, [GO_HELLO]);
      expect(claim?.claimData).toStrictEqual(shape());
      for (const reader of ['all', 'go', 'python', 'typescript'] as const) {
        const other = new GcsStorageDriver({ client: storage, bucket, claimFormat: reader });
        // Through JSON, as in workflow history.
        const fromHistory = new StorageDriverClaim(JSON.parse(JSON.stringify(claim?.claimData)));
        const [back] = await other.retrieve({}, [fromHistory]);
        expect(Buffer.from(back?.data ?? []).toString()).toBe('hello');
        expect(other.objectIdOf(fromHistory)).toBe(driver.objectIdOf(claim as StorageDriverClaim));
      }
    },
  );
});
