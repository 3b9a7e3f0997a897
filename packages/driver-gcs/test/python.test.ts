/**
 * Interop with Temporal's official Python GCS driver (`temporalio` 1.35,
 * `temporalio.contrib.gcp.gcsdriver` over gcloud-aio-storage, driven by `python/gcs_interop.py` in
 * the venv of `scripts/services.sh`) on the same emulator and bucket, both directions: Python
 * stores and we read its claims and find its objects under our names; we store and Python reads
 * our default claims as they are.
 */
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import {
  decodePayload,
  encodePayload,
  type Payload,
  StorageDriverClaim,
  type StorageDriverTargetInfo,
  sha256Hex,
} from '@x/storage-driver-core';
import { makePayload, pseudoRandomBytes } from '@x/storage-driver-test-suite';
import { GcsStorageDriver } from '../src';
import { createBucket, deleteBucket, GCS_ENDPOINT, listNames, makeStorage, payload } from './helpers';

const PYTHON = process.env.XSTORAGE_PYTHON ?? '/tmp/x-storage-services/venv/bin/python';
const SCRIPT = path.join(__dirname, 'python', 'gcs_interop.py');

/** Runs the Python side with a JSON request; resolves to its JSON answer. */
function python<T>(mode: 'store' | 'retrieve', request: object): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      PYTHON,
      [SCRIPT, mode],
      { maxBuffer: 64 << 20, timeout: 60_000 },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`${mode} failed: ${error.message}\n${stderr}`));
        else resolve(JSON.parse(stdout) as T);
      },
    );
    child.stdin?.end(JSON.stringify(request));
  });
}

const b64 = (p: Payload) => Buffer.from(encodePayload(p)).toString('base64');
const digests = (ps: readonly Payload[]) => ps.map((p) => sha256Hex(encodePayload(p)));

const storage = makeStorage();
let bucket: string;
let ours: GcsStorageDriver;
beforeEach(async () => {
  bucket = await createBucket(storage, 'python');
  ours = new GcsStorageDriver({ client: storage, bucket });
});
afterEach(async () => {
  await deleteBucket(storage, bucket);
});

const RUN = '5a1e6b7c-1d2e-4f30-9a4b-5c6d7e8f9012';
const LONG = 'x'.repeat(400);
const targets: [string, StorageDriverTargetInfo | undefined][] = [
  ['no target', undefined],
  ['workflow', { kind: 'workflow', namespace: 'default', type: 'OrderWorkflow', id: 'order-1', runId: RUN }],
  [
    'activity, empty run id',
    { kind: 'activity', namespace: 'payments prod', type: 'Capture/Charge', id: 'a+b=c', runId: '' },
  ],
  ['hostile', { kind: 'workflow', namespace: '.', type: '..', id: 'a/b?c#d%e [x]*:"<>|', runId: '日本語 café\u0085' }],
  ['empty namespace', { kind: 'workflow', namespace: '', type: 'T', id: 'id', runId: RUN }],
  [
    'over 1,024 bytes (namespace digest name)',
    { kind: 'workflow', namespace: 'ns', type: LONG, id: LONG, runId: LONG },
  ],
];
const payloads = () => [payload('python interop'), makePayload(pseudoRandomBytes(300_000, 5))];

interface StoreAnswer {
  cases: { claims: Record<string, string>[] }[];
  type: string;
  name: string;
  error?: string;
}
interface RetrieveAnswer {
  payloads?: string[];
  error?: string;
}

describe('temporalio 1.35 GCSStorageDriver interop', () => {
  it('Python stores; we read its claims, and our store finds its objects under the same names', async () => {
    const answer = await python<StoreAnswer>('store', {
      endpoint: GCS_ENDPOINT,
      bucket,
      cases: targets.map(([, target]) => ({ target: target ?? null, payloads: payloads().map(b64) })),
    });
    expect(answer.error).toBeUndefined();
    expect([answer.type, answer.name]).toEqual([ours.type, ours.name]);
    const namesAfterPython = await listNames(storage, bucket);
    for (const [i, [label, target]] of targets.entries()) {
      const theirs = (answer.cases[i] as { claims: Record<string, string>[] }).claims;
      const mine = await ours.store(target ? { target } : {}, payloads());
      for (const [j, claim] of theirs.entries()) {
        expect([label, claim]).toEqual([
          label,
          {
            bucket,
            object_name: mine[j]?.claimData.key,
            hash_algorithm: 'sha256',
            hash_value: mine[j]?.claimData.hash_value,
          },
        ]);
      }
      const back = await ours.retrieve(
        {},
        theirs.map((c) => new StorageDriverClaim(c)),
      );
      expect([label, digests(back)]).toEqual([label, digests(payloads())]);
    }
    // Same names: our stores wrote nothing new.
    expect(await listNames(storage, bucket)).toEqual(namesAfterPython);
  });

  it('we store; Python reads our default claims as they are (and the python format)', async () => {
    for (const claimFormat of ['all', 'python'] as const) {
      const driver = new GcsStorageDriver({ client: storage, bucket, claimFormat });
      const mine: StorageDriverClaim[] = [];
      for (const [, target] of targets) mine.push(...(await driver.store(target ? { target } : {}, payloads())));
      // One Python run reads them all (claims through JSON, as in workflow history).
      const answer = await python<RetrieveAnswer>('retrieve', {
        endpoint: GCS_ENDPOINT,
        bucket,
        claims: mine.map((c) => JSON.parse(JSON.stringify(c.claimData))),
      });
      expect([claimFormat, answer.error]).toEqual([claimFormat, undefined]);
      const back = (answer.payloads ?? []).map((p) => decodePayload(Buffer.from(p, 'base64')));
      expect([claimFormat, digests(back)]).toEqual([claimFormat, targets.flatMap(() => digests(payloads()))]);
    }
  });

  it('Python cannot read the go and typescript claim shapes (it needs object_name)', async () => {
    for (const claimFormat of ['go', 'typescript'] as const) {
      const driver = new GcsStorageDriver({ client: storage, bucket, claimFormat });
      const mine = await driver.store({}, [payload('one shape')]);
      const answer = await python<RetrieveAnswer>('retrieve', {
        endpoint: GCS_ENDPOINT,
        bucket,
        claims: mine.map((c) => c.claimData),
      });
      expect(answer.error).toMatch(/KeyError: 'object_name'/);
    }
  });
});
