/**
 * Every bundled driver against its real server (fs, Redis, Redis Cluster, PostgreSQL, S3 on
 * moto, GCS on fake-gcs-server, Azure Blob on Azurite), instrumented, through a known workload:
 * span names, attributes and parentage, the status of a failed call, and the metric values
 * afterwards.
 */
import { BlobServiceClient } from '@azure/storage-blob';
import { Storage } from '@google-cloud/storage';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { AzureBlobStorageDriver } from '@x/storage-driver-azure-blob';
import {
  encodedPayloadSize,
  type StorageDriver,
  StorageDriverClaim,
  type StorageDriverLifecycle,
  type StoredObject,
} from '@x/storage-driver-core';
import { GcsStorageDriver } from '@x/storage-driver-gcs';
import { BACKEND_KINDS, createBackend } from '@x/test-backends';
import { uniqueSuffix } from '@x/test-servers';
import {
  StorageAttributes as A,
  type InstrumentationWarning,
  instrumentStorageDriver,
  StorageMetrics as M,
  RUN_ID_ATTR_KEY,
  WORKFLOW_ID_ATTR_KEY,
} from '../src';
import { makeTelemetry, parentId, payload, type Telemetry } from './helpers';

const target = {
  kind: 'workflow',
  namespace: 'default',
  type: 'OrderWorkflow',
  id: 'order-42',
  runId: 'run-1',
} as const;

/** A driver on its real server, for the workload below. */
interface Subject {
  readonly driver: StorageDriver & StorageDriverLifecycle;
  /** Removes the object a claim points at, behind the driver's back. */
  remove(claim: StorageDriverClaim): Promise<void>;
  /** Deletes what the test stored; resolves to whether nothing is left. */
  close(): Promise<boolean>;
}

const unique = uniqueSuffix;

/** GCS on fake-gcs-server (`bash scripts/services.sh env`), a fresh bucket. */
async function gcsSubject(name: string): Promise<Subject> {
  const storage = new Storage({
    apiEndpoint: process.env.XSTORAGE_GCS_ENDPOINT ?? 'http://127.0.0.1:4453',
    projectId: process.env.XSTORAGE_GCS_PROJECT_ID ?? 'xstorage-test',
  });
  const [bucket] = await storage.createBucket(`otel-${unique()}`);
  return {
    driver: new GcsStorageDriver({ client: storage, bucket: bucket.name, name }),
    remove: async (claim) => {
      await bucket.file(claim.claimData.key as string).delete();
    },
    close: async () => {
      await bucket.deleteFiles({ force: true });
      await bucket.delete();
      const [exists] = await bucket.exists();
      return !exists;
    },
  };
}

/** Azure Blob on Azurite (`bash scripts/services.sh env`), a fresh container. */
async function azureSubject(name: string): Promise<Subject> {
  const account = process.env.XSTORAGE_AZURITE_ACCOUNT_NAME ?? 'devstoreaccount1';
  const key =
    process.env.XSTORAGE_AZURITE_ACCOUNT_KEY ??
    // Azurite's public development account key (documented by Microsoft; not a secret).
    'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
  const endpoint = process.env.XSTORAGE_AZURITE_BLOB_ENDPOINT ?? `http://127.0.0.1:10010/${account}`;
  const service = BlobServiceClient.fromConnectionString(
    `DefaultEndpointsProtocol=http;AccountName=${account};AccountKey=${key};BlobEndpoint=${endpoint};`,
  );
  const container = service.getContainerClient(`otel-${unique()}`);
  await container.create();
  return {
    driver: new AzureBlobStorageDriver({ client: container, name }),
    remove: async (claim) => {
      await container.getBlockBlobClient(claim.claimData.key as string).delete();
    },
    close: async () => {
      await container.delete();
      return !(await container.exists());
    },
  };
}

/** Every bundled driver: those of `@x/test-backends`, then GCS and Azure Blob. */
const SUBJECTS: readonly [string, (name: string) => Promise<Subject>][] = [
  ...BACKEND_KINDS.map((kind): [string, (name: string) => Promise<Subject>] => [
    kind,
    async (name) => {
      const backend = await createBackend(kind, { name });
      const driver = backend.driver as StorageDriver & StorageDriverLifecycle;
      return {
        driver,
        remove: async (claim) => {
          await driver.delete?.([backend.storageKeyOfClaim(claim.claimData)]);
        },
        close: () => backend.close(),
      };
    },
  ]),
  ['gcs', gcsSubject],
  ['azure-blob', azureSubject],
];

describe.each(SUBJECTS)('%s driver, instrumented', (kind, create) => {
  let backend: Subject;
  let telemetry: Telemetry;
  beforeAll(async () => {
    backend = await create(`traced-${kind}`);
  });
  afterAll(async () => {
    expect(await backend.close()).toBe(true);
  });
  afterEach(async () => {
    await telemetry?.shutdown();
  });

  it('a known workload: spans (names, attributes, parentage, status) and metric values', async () => {
    telemetry = makeTelemetry();
    const { tracerProvider, meterProvider } = telemetry;
    const warnings: InstrumentationWarning[] = [];
    const driver = instrumentStorageDriver(backend.driver, {
      tracerProvider,
      meterProvider,
      onWarning: (w) => warnings.push(w),
    });
    const name = backend.driver.name;
    expect([driver.name, driver.type]).toEqual([name, backend.driver.type]);

    const [a, b] = [payload(`${kind}-a`, 300), payload(`${kind}-b`, 500)];
    const size = encodedPayloadSize(a) + encodedPayloadSize(b);

    // 1. A store with no active span (a worker's): a root span, marked as such. One duplicate.
    const claims = await driver.store({ target }, [a, b, a]);
    // 2. The same payloads again, inside a caller's span (a client's): its child; 2 backend hits.
    const parent = await telemetry.withParent('StartWorkflow:OrderWorkflow', async (span) => {
      await driver.store({ target }, [a, b]);
      return span.spanContext();
    });
    // 3. A retrieve of all three claims.
    const back = await driver.retrieve({}, claims);
    expect(back).toHaveLength(3);
    // 4. A retrieve that fails: a well-formed claim for an object that was never stored.
    const missing = payload(`${kind}-never-stored`);
    const [ghost] = await backend.driver.store({ target: { ...target, id: 'ghost' } }, [missing]);
    await backend.remove(ghost as StorageDriverClaim);
    await expect(driver.retrieve({}, [new StorageDriverClaim(ghost?.claimData ?? {})])).rejects.toMatchObject({
      code: 'E_NOT_FOUND',
    });

    const stores = telemetry.spansNamed(`StorePayloads:${name}`);
    const retrieves = telemetry.spansNamed(`RetrievePayloads:${name}`);
    expect(stores).toHaveLength(2);
    expect(retrieves).toHaveLength(2);
    const [first, second] = stores;
    expect(first?.kind).toBe(SpanKind.INTERNAL);
    expect(first?.status.code).toBe(SpanStatusCode.OK);
    expect(first?.attributes).toEqual({
      [A.DRIVER_NAME]: name,
      [A.DRIVER_TYPE]: backend.driver.type,
      [A.OPERATION]: 'store',
      [A.ROOT]: true,
      [A.NAMESPACE]: 'default',
      [A.TARGET_KIND]: 'workflow',
      [A.TARGET_TYPE]: 'OrderWorkflow',
      [WORKFLOW_ID_ATTR_KEY]: 'order-42',
      [RUN_ID_ATTR_KEY]: 'run-1',
      [A.PAYLOADS]: 3,
      [A.BYTES]: size + encodedPayloadSize(a),
      [A.OBJECTS]: 2,
      [A.OBJECT_BYTES]: size,
      [A.DEDUP_IN_BATCH]: 1,
      // Every bundled driver reports the objects its backend already held (`_putIfAbsent` outcomes).
      [A.DEDUP_EXISTING]: 0,
    });
    expect(parentId(first as never)).toBeUndefined();
    expect(second?.attributes[A.ROOT]).toBeUndefined();
    expect(parentId(second as never)).toBe(parent.spanId);
    expect(second?.spanContext().traceId).toBe(parent.traceId);
    expect(second?.attributes[A.DEDUP_EXISTING]).toBe(2);
    expect(second?.attributes[A.DEDUP_IN_BATCH]).toBe(0);

    const [read, failed] = retrieves;
    expect(read?.attributes).toMatchObject({
      [A.OPERATION]: 'retrieve',
      [A.ROOT]: true,
      [A.PAYLOADS]: 3,
      [A.BYTES]: size + encodedPayloadSize(a),
      [A.OBJECTS]: 2,
      [A.OBJECT_BYTES]: size,
    });
    expect(read?.attributes[WORKFLOW_ID_ATTR_KEY]).toBeUndefined(); // a retrieve carries no workflow identity
    expect(failed?.status).toEqual({
      code: SpanStatusCode.ERROR,
      message: expect.stringContaining('No stored object'),
    });
    expect(failed?.attributes).toMatchObject({
      [A.ERROR_TYPE]: 'E_NOT_FOUND',
      [A.ERROR_CODE]: 'E_NOT_FOUND',
      [A.ERROR_RETRYABLE]: false,
      [A.PAYLOADS]: 1,
    });
    expect(failed?.events.map((e) => e.name)).toEqual(['exception']);

    // Metrics: small attribute sets (driver name, operation, outcome), values of the workload.
    const store = { [A.DRIVER_NAME]: name, [A.OPERATION]: 'store', [A.OUTCOME]: 'success' };
    const retrieve = { [A.DRIVER_NAME]: name, [A.OPERATION]: 'retrieve', [A.OUTCOME]: 'success' };
    expect(await telemetry.sum(M.PAYLOADS, store)).toBe(5);
    expect(await telemetry.sum(M.BYTES, store)).toBe(2 * size + encodedPayloadSize(a));
    expect(await telemetry.sum(M.PAYLOADS, retrieve)).toBe(3);
    expect(await telemetry.sum(M.BYTES, retrieve)).toBe(size + encodedPayloadSize(a));
    expect(await telemetry.sum(M.PAYLOADS, { [A.OPERATION]: 'retrieve', [A.OUTCOME]: 'error' })).toBe(1);
    expect(await telemetry.sum(M.DEDUP_HITS, { [A.DEDUP_KIND]: 'in_batch' })).toBe(1);
    expect(await telemetry.sum(M.DEDUP_HITS, { [A.DEDUP_KIND]: 'existing' })).toBe(2);
    expect(await telemetry.points(M.ERRORS)).toEqual([
      { attributes: { [A.DRIVER_NAME]: name, [A.OPERATION]: 'retrieve', [A.ERROR_TYPE]: 'E_NOT_FOUND' }, value: 1 },
    ]);
    expect(await telemetry.sum(M.DURATION, store)).toBe(2); // a histogram: its count
    expect(await telemetry.sum(M.DURATION, retrieve)).toBe(1);
    for (const p of await telemetry.points(M.PAYLOADS)) {
      expect(Object.keys(p.attributes).sort()).toEqual([A.OPERATION, A.OUTCOME, A.DRIVER_NAME].sort());
    }

    // Lifecycle: delete what list() yields; the removal is counted with its bytes.
    const lifecycle = driver as typeof driver & StorageDriverLifecycle;
    expect(lifecycle.capabilities).toEqual(backend.driver.capabilities);
    const listed: StoredObject[] = [];
    for await (const o of lifecycle.list?.({ prefix: 'v0/ns/default/wt/OrderWorkflow/wi/order-42/' }) ?? []) {
      listed.push(o);
    }
    expect(listed).toHaveLength(2);
    expect(listed.map((o) => o.id).sort()).toEqual(
      [claims[0], claims[1]].map((c) => lifecycle.objectIdOf?.(c as StorageDriverClaim)).sort(),
    );
    const removed = await lifecycle.delete?.(listed);
    expect(removed).toMatchObject({ deleted: 2, deletedBytes: size });
    const [del] = telemetry.spansNamed(`DeletePayloads:${name}`);
    expect(del?.attributes).toMatchObject({
      [A.OPERATION]: 'delete',
      [A.OBJECTS]: 2,
      [A.REMOVED]: 2,
      [A.REMOVED_BYTES]: size,
      [A.MISSING]: 0,
      [A.KEPT]: 0,
      [A.ITEM_ERRORS]: 0,
    });
    expect(await telemetry.sum(M.REMOVED, { [A.DRIVER_NAME]: name, [A.OPERATION]: 'delete' })).toBe(2);
    expect(await telemetry.sum(M.REMOVED_BYTES, { [A.DRIVER_NAME]: name })).toBe(size);
    // A bundled driver reports everything: no `no-operation-report` / `no-dedup-report` warning.
    expect(warnings).toEqual([]);
  });
});
