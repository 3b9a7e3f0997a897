/** The driver inside the real SDK's ExternalStorage (the runner the client and worker use). */
import {
  defaultPayloadConverter,
  ExternalStorage,
  type Payload,
  type StorageDriver as SdkStorageDriver,
} from '@temporalio/common';
import { ExternalStorageRunner } from '@temporalio/common/lib/internal-non-workflow/external-storage-runner';
import { FsStorageDriver } from '../src';
import { cleanup, makeTempDir, payloadFiles } from './helpers';

let dir: string;
beforeEach(async () => {
  dir = await makeTempDir();
});
afterEach(async () => {
  await cleanup(dir);
});

describe('with @temporalio/common ExternalStorage', () => {
  it('is an SDK StorageDriver and round-trips through the SDK runner', async () => {
    const driver: SdkStorageDriver = new FsStorageDriver({ root: `${dir}/payloads` });
    const externalStorage = new ExternalStorage({ drivers: [driver], payloadSizeThreshold: 1024 });
    expect(externalStorage.getDriver('fs')).toBe(driver);
    const runner = new ExternalStorageRunner(externalStorage);

    const small = defaultPayloadConverter.toPayload('inline');
    const big = defaultPayloadConverter.toPayload('x'.repeat(10_000));
    const target = { kind: 'workflow' as const, namespace: 'default', id: '../../etc', runId: 'r', type: 'W' };
    const stored: Payload[] = await runner.store([small, big, big], { target });

    expect(stored[0]).toEqual(small); // below the threshold: kept inline
    const ref = stored[1] as Payload;
    expect(new TextDecoder().decode(ref.metadata?.messageType ?? undefined)).toBe(
      'temporal.api.sdk.v1.ExternalStorageReference',
    );
    const reference = JSON.parse(new TextDecoder().decode(ref.data ?? undefined)) as {
      driverName: string;
      claimData: Record<string, string>;
    };
    expect(reference.driverName).toBe('fs');
    expect(Object.keys(reference.claimData).sort()).toEqual(['hash_algorithm', 'hash_value', 'key']);
    expect(reference.claimData.key).toMatch(/^v0\/ns\/default\/wt\/W\/wi\/\.\.%2F\.\.%2Fetc\/ri\/r\/d\/sha256\//);
    expect(await payloadFiles(driver as FsStorageDriver)).toHaveLength(1);

    const back = await runner.retrieve(stored);
    expect(back.map((p) => defaultPayloadConverter.fromPayload(p))).toEqual([
      'inline',
      'x'.repeat(10_000),
      'x'.repeat(10_000),
    ]);
  });
});
