/**
 * Interop. No Temporal SDK has an Azure driver, so there is no official driver to read or write
 * the same blobs; what is shared is checked instead: the driver inside the real SDK's
 * `ExternalStorage` (the runner the client and worker use), and blob names that are the key spec
 * itself (the same names as the S3 drivers' keys, except segments that are or end with dots), so
 * tools that parse keys (lifecycle rules by prefix, the x-storage gc namespace scoping) work on them.
 */

import type { ContainerClient } from '@azure/storage-blob';
import { afterEach, beforeEach, expect, it } from '@jest/globals';
import {
  defaultPayloadConverter,
  ExternalStorage,
  type Payload,
  type StorageDriver as SdkStorageDriver,
} from '@temporalio/common';
import { ExternalStorageRunner } from '@temporalio/common/lib/internal-non-workflow/external-storage-runner';
import {
  buildStorageKey,
  encodePayload,
  parseStorageKey,
  type StorageDriverTargetInfo,
  sha256Hex,
} from '@x/storage-driver-core';
import { AzureBlobStorageDriver } from '../src';
import { createContainer, deleteContainer, listNames, makeService } from './helpers';

const service = makeService();
let container: ContainerClient;
beforeEach(async () => {
  container = await createContainer(service, 'xaz-sdk');
});
afterEach(async () => {
  await deleteContainer(service, container.containerName);
});

it('is an SDK StorageDriver and round-trips through the SDK runner', async () => {
  const driver: SdkStorageDriver = new AzureBlobStorageDriver({ client: container });
  const externalStorage = new ExternalStorage({ drivers: [driver], payloadSizeThreshold: 1024 });
  expect(externalStorage.getDriver('azure.blobdriver')).toBe(driver);
  const runner = new ExternalStorageRunner(externalStorage);
  const small = defaultPayloadConverter.toPayload('inline');
  const big = defaultPayloadConverter.toPayload('x'.repeat(10_000));
  const target = { kind: 'workflow' as const, namespace: 'default', id: '../../etc', runId: 'r', type: 'W' };
  const stored: Payload[] = await runner.store([small, big, big], { target });
  expect(stored[0]).toEqual(small);
  const reference = JSON.parse(new TextDecoder().decode(stored[1]?.data ?? undefined)) as {
    driverName: string;
    claimData: Record<string, string>;
  };
  expect(reference.driverName).toBe('azure.blobdriver');
  expect(Object.keys(reference.claimData).sort()).toEqual(['container', 'hash_algorithm', 'hash_value', 'key']);
  expect(reference.claimData.container).toBe(container.containerName);
  expect(reference.claimData.key).toMatch(/^v0\/ns\/default\/wt\/W\/wi\/\.\.%2F\.\.%2Fetc\/ri\/r\/d\/sha256\//);
  expect(await listNames(container)).toHaveLength(1);
  const back = await runner.retrieve(stored);
  expect(back.map((p) => defaultPayloadConverter.fromPayload(p))).toEqual([
    'inline',
    'x'.repeat(10_000),
    'x'.repeat(10_000),
  ]);
});

it('blob names are the key spec: the S3 drivers’ keys, except segments that are or end with dots', async () => {
  const driver = new AzureBlobStorageDriver({ client: container });
  const payload = defaultPayloadConverter.toPayload({ order: 42 });
  const hex = sha256Hex(encodePayload(payload));
  const same: (StorageDriverTargetInfo | undefined)[] = [
    undefined,
    { kind: 'workflow', namespace: 'default', type: 'OrderWorkflow', id: 'order-1', runId: 'r1' },
    { kind: 'activity', namespace: 'payments prod', type: 'Capture/Charge', id: 'activity id+42', runId: 'r1' },
    { kind: 'workflow', namespace: '~ns', type: "W!*'()é 日本", id: '../../etc/passwd', runId: '' },
    { kind: 'activity', namespace: 'default' },
  ];
  for (const target of same) {
    const [claim] = await driver.store(target === undefined ? {} : { target }, [payload]);
    expect(claim?.claimData.key).toBe(buildStorageKey(target, hex));
  }
  const dotted: StorageDriverTargetInfo = { kind: 'workflow', namespace: '.', type: '..', id: 'v1.', runId: 'r' };
  const [claim] = await driver.store({ target: dotted }, [payload]);
  expect(claim?.claimData.key).toBe(`v0/ns/%2E/wt/%2E%2E/wi/v1%2E/ri/r/d/sha256/${hex}`);
  expect(buildStorageKey(dotted, hex)).toBe(`v0/ns/./wt/../wi/v1./ri/r/d/sha256/${hex}`);
  // Every name parses as a storage key (the lenient parser every tool of this project uses).
  for (const name of await listNames(container)) expect(parseStorageKey(name, { canonical: false }).sha256).toBe(hex);
});
