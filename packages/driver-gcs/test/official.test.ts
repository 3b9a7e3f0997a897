/**
 * Interop with the official TypeScript driver, `@temporalio/external-storage-gcs` 1.22.0 over
 * `@temporalio/external-storage-gcs-google-sdk`'s `GoogleCloudGcsStorageDriverClient`, on the same
 * emulator and bucket: same type, name, object names and bytes; each driver retrieves what the
 * other stored.
 */
import type { Storage } from '@google-cloud/storage';
import type { Payload } from '@temporalio/common';
import { StorageDriverClaim as SdkClaim } from '@temporalio/common/lib/converter/extstore';
import { GcsStorageDriver as OfficialGcsStorageDriver } from '@temporalio/external-storage-gcs';
import { GoogleCloudGcsStorageDriverClient } from '@temporalio/external-storage-gcs-google-sdk';
import { StorageDriverClaim, type StorageDriverTargetInfo, sha256Hex } from '@x/storage-driver-core';
import { makePayload, pseudoRandomBytes } from '@x/storage-driver-test-suite';
import { GcsStorageDriver } from '../src';
import { createBucket, deleteBucket, listNames, makeStorage, payload } from './helpers';

const storage: Storage = makeStorage();
let bucket: string;
let official: OfficialGcsStorageDriver;
let ours: GcsStorageDriver;
beforeEach(async () => {
  bucket = await createBucket(storage, 'official');
  official = new OfficialGcsStorageDriver({ client: new GoogleCloudGcsStorageDriverClient(storage), bucket });
  ours = new GcsStorageDriver({ client: storage, bucket });
});
afterEach(async () => {
  await deleteBucket(storage, bucket);
});

const RUN = '0b8e6a34-7d2f-4c1b-9e0a-1f2e3d4c5b6a';
const targets: [string, StorageDriverTargetInfo | undefined][] = [
  ['no target', undefined],
  ['workflow', { kind: 'workflow', namespace: 'default', type: 'OrderWorkflow', id: 'order-1', runId: RUN }],
  [
    'activity, empty run id',
    { kind: 'activity', namespace: 'payments prod', type: 'Capture/Charge', id: 'act+42', runId: '' },
  ],
  ['hostile', { kind: 'workflow', namespace: '.', type: '..', id: 'a/b?c#d%e [x]*:"<>|', runId: '日本語 café\u0085' }],
  ['missing values', { kind: 'activity', namespace: 'default' }],
];
const payloads = () => [payload('interop'), makePayload(pseudoRandomBytes(300_000, 3))];
/** Payload data as digests (jest's deep equality on 300 KB buffers takes seconds). */
const data = (ps: readonly Payload[]) => ps.map((p) => sha256Hex(p.data ?? new Uint8Array()));

describe('@temporalio/external-storage-gcs 1.22.0 interop', () => {
  it.each(targets)('%s: they store, we find the same objects and read their claim', async (_n, target) => {
    expect([ours.type, ours.name]).toEqual([official.type, official.name]);
    const context = target ? { target } : {};
    const theirs = await official.store(context, payloads() as Payload[]);
    const namesAfterTheirs = await listNames(storage, bucket);
    const mine = await ours.store(context, payloads());
    // Our store found their objects (same names): nothing new written.
    expect(await listNames(storage, bucket)).toEqual(namesAfterTheirs);
    for (const [i, claim] of theirs.entries()) {
      expect(claim.claimData).toStrictEqual({
        bucket,
        object: mine[i]?.claimData.object,
        hashAlgorithm: 'sha256',
        hashValue: mine[i]?.claimData.hash_value,
      });
    }
    // Their claim, through JSON as in workflow history, is retrieved by our driver.
    const fromHistory = theirs.map((c) => new StorageDriverClaim(JSON.parse(JSON.stringify(c.claimData))));
    expect(data(await ours.retrieve({}, fromHistory))).toEqual(data(payloads()));
  });

  it.each(targets)('%s: we store, they read our default claim as it is', async (_n, target) => {
    const context = target ? { target } : {};
    const mine = await ours.store(context, payloads());
    const names = await listNames(storage, bucket);
    const fromHistory = mine.map((c) => new SdkClaim(JSON.parse(JSON.stringify(c.claimData))));
    expect(data(await official.retrieve({}, fromHistory))).toEqual(data(payloads()));
    // Their store of the same payloads is a no-op (412 on ifGenerationMatch: 0): same names, same claims' objects.
    const theirs = await official.store(context, payloads() as Payload[]);
    expect(theirs.map((c) => c.claimData.object)).toEqual(mine.map((c) => c.claimData.object));
    expect(await listNames(storage, bucket)).toEqual(names);
  });

  it('a single-format claim: they read claimFormat typescript, and reject the go and python shapes', async () => {
    const p = payloads();
    for (const claimFormat of ['typescript', 'go', 'python'] as const) {
      const driver = new GcsStorageDriver({ client: storage, bucket, claimFormat });
      const claims = (await driver.store({}, p)) as SdkClaim[];
      if (claimFormat === 'typescript') expect(data(await official.retrieve({}, claims))).toEqual(data(p));
      else await expect(official.retrieve({}, claims)).rejects.toThrow(/'bucket' and 'object'/);
    }
  });

  it('names over 1,024 bytes: they write the long name (which real GCS refuses), we write the namespace digest name', async () => {
    const long = 'x'.repeat(400);
    const target: StorageDriverTargetInfo = { kind: 'workflow', namespace: 'ns', type: long, id: long, runId: long };
    const [theirs] = await official.store({ target }, [payload('long')] as Payload[]);
    const [mine] = await ours.store({ target }, [payload('long')]);
    expect(Buffer.byteLength(theirs?.claimData.object as string)).toBeGreaterThan(1024);
    expect(mine?.claimData.key).toBe(`v0/ns/ns/d/sha256/${mine?.claimData.hash_value}`);
    // Their claim names an object real GCS cannot hold: refused as invalid, not read.
    await expect(ours.retrieve({}, [theirs as StorageDriverClaim])).rejects.toMatchObject({ code: 'E_INVALID_CLAIM' });
    // Ours is read by them.
    const [back] = await official.retrieve({}, [mine as SdkClaim]);
    expect(Buffer.from(back?.data ?? []).toString()).toBe('"long"');
  });
});
