/**
 * Interop with Temporal's Python SDK (`temporalio` from PyPI, driven by `python/interop.py`):
 * - S3: Python's official `temporalio.contrib.aws.s3driver` (aioboto3 client) and our
 *   `S3StorageDriver` on the same moto server and bucket;
 * - Redis: a Python driver with the layout of Temporal's Python Redis sample (`python/redis_driver.py`,
 *   `redis.asyncio`) and our `RedisStorageDriver` on the same server and key prefix.
 * Each direction goes through the SDKs' own `ExternalStorage` (Python `DataConverter`, TS
 * `ExternalStorage` + the runner the client and worker use); payloads cross as protobuf bytes.
 */
import { defaultPayloadConverter, ExternalStorage, type Payload } from '@temporalio/common';
import { ExternalStorageRunner } from '@temporalio/common/lib/internal-non-workflow/external-storage-runner';
import {
  buildStorageKey,
  encodePayload,
  fitStorageKey,
  type StorageDriverTargetInfo,
  sha256Hex,
} from '@x/storage-driver-core';
import type { RedisStorageDriver } from '@x/storage-driver-redis';
import type { S3StorageDriver } from '@x/storage-driver-s3';
import { hostileTargetArbitrary } from '@x/storage-driver-test-suite';
import { createBackend, type TestBackend } from '@x/test-backends';
import { SERVICES } from '@x/test-servers';
import fc from 'fast-check';
import {
  bigValue,
  INTEROP_RUN_ID,
  INTEROP_TARGETS,
  interopValue,
  isReference,
  PAYLOAD_SIZE_THRESHOLD,
  type PythonEncodeCase,
  type PythonInteropBackend,
  pythonDecode,
  pythonEncode,
  REFERENCE_MESSAGE_TYPE,
  referenceInfo,
} from '../src';

jest.setTimeout(60_000);

interface Side {
  readonly kind: 's3' | 'redis';
  /** Driver name both languages use (their defaults). */
  readonly driverName: string;
  /** Claim fields both languages write. */
  readonly claimFields: readonly string[];
  /** The Python side of the same store. */
  python(backend: TestBackend): PythonInteropBackend;
}

const SIDES: readonly Side[] = [
  {
    kind: 's3',
    driverName: 'aws.s3driver',
    claimFields: ['bucket', 'hash_algorithm', 'hash_value', 'key'],
    python: (b) => ({
      driver: 's3',
      s3: { endpoint: SERVICES.s3Endpoint, bucket: (b.driver as S3StorageDriver).allowedBuckets[0] ?? '' },
    }),
  },
  {
    kind: 'redis',
    driverName: 'redis',
    claimFields: ['hash_algorithm', 'hash_value', 'key'],
    python: (b) => ({
      driver: 'redis',
      redis: { url: SERVICES.redisUrl, keyPrefix: (b.driver as RedisStorageDriver).keyPrefix },
    }),
  },
];

/** Cases with targets whose keys are the same in every layout, values above and below the threshold. */
const CASES: readonly PythonEncodeCase[] = [
  { target: INTEROP_TARGETS.workflow, values: [interopValue('wf'), 'small inline', interopValue('wf')] },
  { target: INTEROP_TARGETS.activity, values: [interopValue('act'), 42, { small: 'é' }] },
  { target: null, values: [interopValue('no target')] },
];

const bytesOf = (p: Payload) => encodePayload(p);
/** Whether `s` has no lone surrogate (with the `u` flag, a surrogate pair is one non-Cs code point). */
const wellFormed = (s: string) => !/\p{Cs}/u.test(s);
const toTarget = (t: StorageDriverTargetInfo | null) => t ?? undefined;

describe.each(SIDES)('$kind', (side) => {
  let backend: TestBackend;
  let runner: ExternalStorageRunner;
  let python: PythonInteropBackend;
  beforeEach(async () => {
    backend = await createBackend(side.kind);
    expect(backend.driver.name).toBe(side.driverName);
    runner = new ExternalStorageRunner(
      new ExternalStorage({ drivers: [backend.driver], payloadSizeThreshold: PAYLOAD_SIZE_THRESHOLD }),
    );
    python = side.python(backend);
  });
  afterEach(async () => {
    expect(await backend?.close()).toBe(true); // the bucket or key prefix is gone at the server
  });

  /**
   * Checks one payload as written by `ExternalStorage` (either language) for `original`: a
   * reference naming the shared driver with the spec's key when at or above the threshold (the
   * stored object holds exactly `original`'s bytes), `original` itself below it. Returns the storage key.
   */
  async function expectStored(
    payload: Payload,
    original: Payload,
    target: StorageDriverTargetInfo | null,
  ): Promise<string | undefined> {
    const bytes = bytesOf(original);
    if (bytes.length < PAYLOAD_SIZE_THRESHOLD) {
      expect(isReference(payload)).toBe(false);
      expect(sha256Hex(bytesOf(payload))).toBe(sha256Hex(bytes));
      return undefined;
    }
    const ref = referenceInfo(payload);
    expect(ref).toMatchObject({
      encoding: 'json/protobuf',
      messageType: REFERENCE_MESSAGE_TYPE,
      sizeBytes: bytes.length,
      driverName: side.driverName,
    });
    const claim = ref.claimData ?? {};
    expect(Object.keys(claim).sort()).toEqual(side.claimFields);
    const hash = sha256Hex(bytes);
    expect(claim).toMatchObject({ hash_algorithm: 'sha256', hash_value: hash });
    const key = backend.storageKeyOfClaim(claim);
    expect(key).toBe(buildStorageKey(target, hash));
    const stored = await backend.read(key);
    expect(stored && sha256Hex(stored)).toBe(hash);
    return key;
  }

  it('Python offloads through its DataConverter; the TS SDK with our driver decodes the same values', async () => {
    const encoded = await pythonEncode(python, PAYLOAD_SIZE_THRESHOLD, CASES);
    const keys = new Set<string>();
    for (const [i, c] of CASES.entries()) {
      const { payloads, originals } = encoded[i] ?? { payloads: [], originals: [] };
      expect(payloads).toHaveLength(c.values.length);
      for (const [j, payload] of payloads.entries()) {
        const key = await expectStored(payload, originals[j] as Payload, c.target);
        if (key !== undefined) keys.add(key);
      }
      const back = await runner.retrieve(payloads);
      expect(back.map((p) => sha256Hex(bytesOf(p)))).toEqual(originals.map((p) => sha256Hex(bytesOf(p))));
      expect(back.map((p) => defaultPayloadConverter.fromPayload(p))).toEqual(c.values);
    }
    // Offloaded: wf (twice, one object), act, no target; everything else stayed inline.
    expect(keys.size).toBe(3);
    expect(await backend.keys()).toEqual([...keys].sort());
  });

  it('the TS SDK offloads with our driver; Python decodes the same values', async () => {
    const stored: Payload[][] = [];
    const keys = new Set<string>();
    for (const c of CASES) {
      const originals = c.values.map((v) => defaultPayloadConverter.toPayload(v));
      const payloads = await runner.store(originals, { target: toTarget(c.target) });
      for (const [j, payload] of payloads.entries()) {
        const key = await expectStored(payload, originals[j] as Payload, c.target);
        if (key !== undefined) keys.add(key);
      }
      stored.push(payloads);
    }
    expect(await backend.keys()).toEqual([...keys].sort());
    expect(await pythonDecode(python, stored)).toEqual(CASES.map((c) => c.values));
  });

  it('identical bytes for the same target get one key in both languages (dedup across languages)', async () => {
    const value = bigValue('dedup'); // ASCII: both JSON converters write the same bytes
    const tsPayload = defaultPayloadConverter.toPayload(value);
    // Python first, then TS, for the workflow target; TS first, then Python, for the activity target.
    const [pyWorkflow] = await pythonEncode(python, PAYLOAD_SIZE_THRESHOLD, [
      { target: INTEROP_TARGETS.workflow, values: [value] },
    ]);
    expect(sha256Hex(bytesOf(pyWorkflow?.originals[0] as Payload))).toBe(sha256Hex(bytesOf(tsPayload)));
    const tsWorkflow = await runner.store([tsPayload], { target: INTEROP_TARGETS.workflow });
    const tsActivity = await runner.store([tsPayload], { target: INTEROP_TARGETS.activity });
    const [pyActivity] = await pythonEncode(python, PAYLOAD_SIZE_THRESHOLD, [
      { target: INTEROP_TARGETS.activity, values: [value] },
    ]);
    const claimKey = (p: Payload | undefined) => referenceInfo(p ?? {}).claimData?.key;
    expect(claimKey(tsWorkflow[0])).toBe(claimKey(pyWorkflow?.payloads[0]));
    expect(claimKey(tsActivity[0])).toBe(claimKey(pyActivity?.payloads[0]));
    const hash = sha256Hex(bytesOf(tsPayload));
    expect(await backend.keys()).toEqual(
      [buildStorageKey(INTEROP_TARGETS.workflow, hash), buildStorageKey(INTEROP_TARGETS.activity, hash)].sort(),
    );
    // Each side reads the references the other wrote.
    expect(await pythonDecode(python, [tsWorkflow, tsActivity])).toEqual([[value], [value]]);
    const fromPython = await runner.retrieve([pyWorkflow?.payloads[0] ?? {}, pyActivity?.payloads[0] ?? {}]);
    expect(fromPython.map((p) => defaultPayloadConverter.fromPayload(p))).toEqual([value, value]);
  });

  it("ids with ~ ! * ' ( ): keys per each language's layout, and each side reads the other's", async () => {
    const value = bigValue('tilde');
    const target = INTEROP_TARGETS.tilde;
    const [py] = await pythonEncode(python, PAYLOAD_SIZE_THRESHOLD, [{ target, values: [value] }]);
    const ts = await runner.store([defaultPayloadConverter.toPayload(value)], { target });
    const hash = sha256Hex(bytesOf(py?.originals[0] as Payload));
    const ours = buildStorageKey(target, hash);
    expect(ours).toBe(`v0/ns/ns%7E1/wt/W!*'()/wi/%7Euser/ri/${INTEROP_RUN_ID}/d/sha256/${hash}`);
    const pyKey = backend.storageKeyOfClaim(referenceInfo(py?.payloads[0] ?? {}).claimData ?? {});
    if (side.kind === 's3') {
      // The official S3 driver follows the same key spec: one object.
      expect(pyKey).toBe(ours);
      expect(await backend.keys()).toEqual([ours]);
    } else {
      // The sample's urllib.parse.quote(safe="") keeps ~ and escapes !*'(): a second key, no cross-language dedup.
      expect(pyKey).toBe(`v0/ns/ns~1/wt/W%21%2A%27%28%29/wi/~user/ri/${INTEROP_RUN_ID}/d/sha256/${hash}`);
      expect(await backend.keys()).toEqual([ours, pyKey].sort());
    }
    expect(await pythonDecode(python, [ts])).toEqual([[value]]);
    const back = await runner.retrieve(py?.payloads ?? []);
    expect(back.map((p) => defaultPayloadConverter.fromPayload(p))).toEqual([value]);
  });

  /**
   * The key each language writes for `target` (before `keyPrefix` / the Redis `:` mapping). S3: the
   * official rule both drivers follow, the namespace digest key above 1024 bytes. Redis: the
   * sample's layout (`quote(safe="")`, no fallback: full keys of any length, no `ns/…` for an
   * empty namespace), and ours, which keeps full keys in Redis to match it.
   */
  const expectedKeys = (target: StorageDriverTargetInfo, hash: string): { ts: string; py: string } => {
    if (side.kind === 's3') {
      const key = fitStorageKey(target, hash);
      return { ts: key, py: key };
    }
    const ts = buildStorageKey(target, hash);
    return { ts, py: target.namespace === '' ? ts.replace('v0/ns/null/', 'v0/') : ts };
  };

  it.each([
    ['a workflow id over 1024 bytes', INTEROP_TARGETS.longId],
    ['a non-ASCII activity id over 1024 encoded bytes', INTEROP_TARGETS.longUnicodeActivity],
    ['no run id', INTEROP_TARGETS.emptyRun],
    ['an empty namespace', INTEROP_TARGETS.emptyNamespace],
  ])('%s: the same key on both sides (S3) or each layout (Redis), read both ways', async (_name, target) => {
    const value = bigValue(`edge ${_name}`);
    const tsPayload = defaultPayloadConverter.toPayload(value);
    const hash = sha256Hex(bytesOf(tsPayload));
    const want = expectedKeys(target, hash);
    if (side.kind === 's3' && buildStorageKey(target, hash).length > 1024) {
      expect(want.ts).toBe(`v0/ns/${target.namespace === 'default' ? 'default' : 'payments%20prod'}/d/sha256/${hash}`);
    }
    const [py] = await pythonEncode(python, PAYLOAD_SIZE_THRESHOLD, [{ target, values: [value] }]);
    expect(sha256Hex(bytesOf(py?.originals[0] as Payload))).toBe(hash);
    const ts = await runner.store([tsPayload], { target });
    const keyOf = (p: Payload | undefined) => backend.storageKeyOfClaim(referenceInfo(p ?? {}).claimData ?? {});
    expect(keyOf(py?.payloads[0])).toBe(want.py);
    expect(keyOf(ts[0])).toBe(want.ts);
    // One object when both layouts agree (every S3 case): a mixed fleet stores the payload once.
    expect(await backend.keys()).toEqual([...new Set([want.ts, want.py])].sort());
    expect(await pythonDecode(python, [ts])).toEqual([[value]]);
    const back = await runner.retrieve(py?.payloads ?? []);
    expect(back.map((p) => defaultPayloadConverter.fromPayload(p))).toEqual([value]);
  });

  it('40 generated hostile targets (unicode, ., .., /, NUL, ids up to 10,000 characters): keys agree and both sides read', async () => {
    // Temporal ids are valid UTF-8 (protobuf strings), so lone surrogates are left out; Python could
    // not encode them. Namespaces are cut to 60 characters (at most 720 encoded bytes): with one over
    // ~944 encoded bytes even Python's fallback key is over S3's limit (real S3 refuses it), while
    // ours folds the namespace (the one documented divergence).
    const targets = fc.sample(
      hostileTargetArbitrary()
        .filter((t) => [t.namespace, t.type, t.id, t.runId].every((v) => v === undefined || wellFormed(v)))
        .map((t) => ({ ...t, namespace: t.namespace.slice(0, 60) }))
        .filter((t) => wellFormed(t.namespace)),
      { seed: 20_261_202, numRuns: 40 },
    );
    const values = targets.map((_, i) => bigValue(`hostile ${i}`));
    const encoded = await pythonEncode(
      python,
      PAYLOAD_SIZE_THRESHOLD,
      targets.map((target, i) => ({ target, values: [values[i]] })),
    );
    const ours: Payload[][] = [];
    let sameKey = 0;
    for (const [i, target] of targets.entries()) {
      const tsPayload = defaultPayloadConverter.toPayload(values[i]);
      const hash = sha256Hex(bytesOf(tsPayload));
      const py = encoded[i];
      expect(sha256Hex(bytesOf(py?.originals[0] as Payload))).toBe(hash);
      const ts = await runner.store([tsPayload], { target });
      ours.push(ts);
      const keyOf = (p: Payload | undefined) => backend.storageKeyOfClaim(referenceInfo(p ?? {}).claimData ?? {});
      const want = expectedKeys(target, hash);
      expect(keyOf(ts[0])).toBe(want.ts);
      const pyKey = keyOf(py?.payloads[0]);
      // S3: always the same key. Redis: the sample's quote(safe="") spelling differs for ~ ! * ' ( )
      // and an empty namespace, so only some keys agree there.
      if (side.kind === 's3') expect(pyKey).toBe(want.py);
      if (pyKey === want.ts) sameKey++;
      const back = await runner.retrieve(py?.payloads ?? []);
      expect(back.map((p) => defaultPayloadConverter.fromPayload(p))).toEqual([values[i]]);
    }
    expect(sameKey).toBeGreaterThan(side.kind === 's3' ? 39 : 0);
    expect(await pythonDecode(python, ours)).toEqual(values.map((v) => [v]));
  });
});
