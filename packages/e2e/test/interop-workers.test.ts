/**
 * A TypeScript worker and a Python worker on one dev server exchange large values through S3:
 * the TS workflow (our `S3StorageDriver`) calls the activity `py_transform` that a Python worker
 * (`python/worker.py`, the official Python S3 driver) serves on its own task queue. Both workers,
 * the TS client and the bucket are private to this file.
 */
import { createHash } from 'node:crypto';
import { Client } from '@temporalio/client';
import { ExternalStorage } from '@temporalio/common';
import { Worker } from '@temporalio/worker';
import { encodeKeySegment, sha256Hex } from '@x/storage-driver-core';
import { createBackend, type TestBackend } from '@x/test-backends';
import { SERVICES, startTemporalWorkerEnv, type TemporalWorkerEnv, uniqueSuffix } from '@x/test-servers';
import {
  bigValue,
  historyPayloads,
  PAYLOAD_SIZE_THRESHOLD,
  type PythonProcess,
  REFERENCE_MESSAGE_TYPE,
  referenceInfo,
  startPythonProcess,
} from '../src';
import type { pythonActivityWorkflow } from '../src/python-workflows';

jest.setTimeout(90_000);

const suffix = uniqueSuffix();
const pythonQueue = `interop-py-${suffix}`;
const tsQueue = `interop-ts-${suffix}`;

let env: TemporalWorkerEnv | undefined;
let backend: TestBackend | undefined;
let python: PythonProcess | undefined;

beforeAll(async () => {
  [env, backend] = await Promise.all([
    startTemporalWorkerEnv({ workflowsPath: require.resolve('../src/python-workflows') }),
    createBackend('s3'),
  ]);
  const { server } = env;
  const bucket = (backend.driver as unknown as { allowedBuckets: readonly string[] }).allowedBuckets[0] ?? '';
  python = await startPythonProcess(
    'worker.py',
    [server.address, server.namespace, pythonQueue, SERVICES.s3Endpoint, bucket, String(PAYLOAD_SIZE_THRESHOLD)],
    { readyLine: 'ready', timeoutMs: 60_000 },
  );
}, 120_000);

afterAll(async () => {
  await python?.stop();
  await env?.close();
  await backend?.close();
});

it('a TS workflow and a Python activity exchange large values through S3; history holds references', async () => {
  if (!env || !backend) throw new Error('setup failed');
  const { server, nativeConnection, workflowBundle } = env;
  const externalStorage = new ExternalStorage({
    drivers: [backend.driver],
    payloadSizeThreshold: PAYLOAD_SIZE_THRESHOLD,
  });
  const worker = await Worker.create({
    connection: nativeConnection,
    namespace: server.namespace,
    taskQueue: tsQueue,
    workflowBundle,
    dataConverter: { externalStorage },
  });
  const client = new Client({
    connection: server.connection,
    namespace: server.namespace,
    dataConverter: { externalStorage },
  });
  const value = bigValue('ts-to-python', 20_000);
  const workflowId = `interop python ${suffix}`;
  const handle = await client.workflow.start<typeof pythonActivityWorkflow>('pythonActivityWorkflow', {
    taskQueue: tsQueue,
    workflowId,
    args: [pythonQueue, value],
  });
  const result = await worker.runUntil(handle.result());
  // Python read the TS-stored input intact; TS read the Python-stored result intact.
  expect(result).toEqual({
    seenLength: value.length,
    seenSha256: createHash('sha256').update(value).digest('hex'),
    reply: `from Python 🐍 ${[...value].reverse().join('')}`,
  });

  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const found = new Map(historyPayloads(history).map((p) => [p.where, p.payload]));
  const keys = await backend.keys();
  // Every large value is scoped to the workflow (the client does not know the run id yet); the
  // activity result is the one the Python worker stored, under the same scope the TS side uses.
  const scope = `v0/ns/default/wt/pythonActivityWorkflow/wi/${encodeKeySegment(workflowId)}/ri/`;
  const expected: [string, string][] = [
    ['WorkflowExecutionStarted.input[1]', `${scope}null/`],
    ['ActivityTaskScheduled.input[0]', `${scope}${handle.firstExecutionRunId}/`],
    ['ActivityTaskCompleted.result[0]', `${scope}${handle.firstExecutionRunId}/`],
    ['WorkflowExecutionCompleted.result[0]', `${scope}${handle.firstExecutionRunId}/`],
  ];
  for (const [where, keyStart] of expected) {
    const payload = found.get(where);
    const ref = referenceInfo(payload ?? {});
    expect({ where, ...ref, claimData: undefined }).toMatchObject({
      where,
      encoding: 'json/protobuf',
      messageType: REFERENCE_MESSAGE_TYPE,
      driverName: 'aws.s3driver',
    });
    expect(ref.sizeBytes).toBeGreaterThan(20_000);
    const key = backend.storageKeyOfClaim(ref.claimData ?? {});
    expect(key).toBe(`${keyStart}d/sha256/${ref.claimData?.hash_value}`);
    expect(keys).toContain(key);
    const stored = await backend.read(key);
    expect(stored && sha256Hex(stored)).toBe(ref.claimData?.hash_value);
  }
  // The workflow input (ri/null) and the activity input (ri/<run>) are the same bytes in two scopes:
  // four references, four objects.
  expect(keys).toHaveLength(4);
  // The small argument (the Python task queue name) stayed inline.
  expect(referenceInfo(found.get('WorkflowExecutionStarted.input[0]') ?? {}).messageType).toBeUndefined();
});
