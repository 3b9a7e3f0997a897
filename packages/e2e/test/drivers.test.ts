/**
 * Every payload path of the issue on a real Temporal dev server, once per driver (fs, Redis,
 * Redis Cluster, PostgreSQL, S3, GCS, Azure Blob): history holds a reference naming the driver for every large
 * payload and the small ones inline, the stored objects are the referenced ones and are scoped
 * per workflow/run/activity as DESIGN §4.4 says, and the histories replay with the driver
 * configured and fail with TMPRL1105 without it.
 */
import { gunzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from '@jest/globals';
import { type DataConverter, ExternalStorage } from '@temporalio/common';
import { Worker } from '@temporalio/worker';
import { decodePayload, selectBySize } from '@x/storage-driver-core';
import { BACKEND_KINDS, type BackendKind, createBackend, type TestBackend } from '@x/test-backends';
import {
  bigValue,
  GZIP_ENCODING,
  GzipPayloadCodec,
  historyPayloads,
  isReference,
  metadataText,
  PAYLOAD_SIZE_THRESHOLD,
  referenceInfo,
} from '../src';
import { valuesWorkflow } from '../src/workflows';
import { clientFor, unique, useTemporal, workerFor } from './helpers';
import { checkReferences, EXPECTED_SCOPES, EXPECTED_SHAPES, runScenario, shapeOf, storedScopes } from './scenario';

const env = useTemporal();
const backends: TestBackend[] = [];
afterAll(async () => {
  // Every key prefix, schema, bucket and directory is gone, as the server confirms.
  const cleaned = await Promise.all(backends.map(async (b) => [b.location, await b.close()]));
  expect(cleaned.filter(([, gone]) => !gone)).toEqual([]);
});

/** `E2E_KINDS=fs,s3` narrows the matrix when running by hand. */
const KINDS = (process.env.E2E_KINDS?.split(',') as BackendKind[] | undefined) ?? BACKEND_KINDS;

describe.each(KINDS)('the %s driver on a real Temporal server', (kind) => {
  it('carries every large payload as a reference, keeps small ones inline, scopes keys, replays', async () => {
    const backend = await createBackend(kind);
    backends.push(backend);
    const externalStorage = new ExternalStorage({
      drivers: [backend.driver],
      payloadSizeThreshold: PAYLOAD_SIZE_THRESHOLD,
    });
    const client = clientFor(env, { externalStorage });
    const run = await runScenario(client, await workerFor(env, { externalStorage }), kind);

    // The workflow, its activities and its child saw every value intact.
    expect(run.result).toEqual({
      checks: {
        input: true,
        memo: true,
        activity: true,
        heartbeat: true,
        child: true,
        signal: true,
        update: true,
        continueAsNew: true,
      },
      big: bigValue(`${run.tag}:result`),
    });
    expect(run.activityResult).toBe(bigValue(`${run.tag}:standalone:activity-out`));

    // History: references for the large payloads, inline for the small ones.
    expect(shapeOf(run.histories.first)).toEqual(EXPECTED_SHAPES.first);
    expect(shapeOf(run.histories.second)).toEqual(EXPECTED_SHAPES.second);
    expect(shapeOf(run.histories.child)).toEqual(EXPECTED_SHAPES.child);
    const referenced = await checkReferences(run, backend);

    // The backend holds exactly the referenced objects plus those that never reach history
    // (query result, heartbeat details, the standalone activity's input and result).
    const scopes = await storedScopes(run, backend);
    expect(scopes).toEqual(EXPECTED_SCOPES);
    const keys = await backend.keys();
    expect(keys).toEqual(expect.arrayContaining([...referenced]));
    expect(keys).toHaveLength(referenced.size + 4);

    // Replay: fine with the driver, TMPRL1105 without any External Storage.
    const { first, second, child } = run.histories;
    const replays = [
      [first, run.workflowId],
      [second, run.workflowId],
      [child, `${run.workflowId}-child`],
    ] as const;
    for (const [history, workflowId] of replays) {
      const options = { workflowBundle: env.workflowBundle, dataConverter: { externalStorage } };
      await Worker.runReplayHistory(options, history, workflowId);
    }
    await expect(
      Worker.runReplayHistory({ workflowBundle: env.workflowBundle }, first, run.workflowId),
    ).rejects.toThrow(/TMPRL1105/);
  });
});

/** Runs `valuesWorkflow(tag, resultSize, ...values)` and returns its run's history and result. */
async function runValues(dataConverter: DataConverter, tag: string, sizes: number[], resultSize: number) {
  const client = clientFor(env, dataConverter);
  const worker = await workerFor(env, dataConverter);
  const values = sizes.map((size, i) => bigValue(`${tag}:${i}`, size));
  const handle = await worker.runUntil(async () => {
    const h = await client.workflow.start(valuesWorkflow, {
      taskQueue: worker.options.taskQueue,
      workflowId: `e2e values ${tag}`,
      args: [tag, resultSize, ...values],
    });
    await h.result();
    return h;
  });
  return { result: await handle.result(), history: await handle.fetchHistory() };
}

describe('a gzip payload codec composed with External Storage (PostgreSQL)', () => {
  it('stores the codec output and the workflow sees the original values', async () => {
    const backend = await createBackend('postgres');
    backends.push(backend);
    const codec = new GzipPayloadCodec();
    const externalStorage = new ExternalStorage({
      drivers: [backend.driver],
      payloadSizeThreshold: PAYLOAD_SIZE_THRESHOLD,
    });
    const tag = `gzip-${unique()}`;
    const { result, history } = await runValues(
      { payloadCodecs: [codec], externalStorage },
      tag,
      [20_000, 100],
      30_000,
    );
    expect(result).toEqual({ ok: true, sizes: [20_000, 100], result: bigValue(`${tag}:result`, 30_000) });

    // The small ones are inline, gzipped; the large input and the result are references.
    const payloads = historyPayloads(history);
    expect(
      payloads.map((p) => [p.where, isReference(p.payload) ? 'ref' : metadataText(p.payload, 'encoding')]),
    ).toEqual([
      ['WorkflowExecutionStarted.input[0]', GZIP_ENCODING],
      ['WorkflowExecutionStarted.input[1]', GZIP_ENCODING],
      ['WorkflowExecutionStarted.input[2]', 'ref'],
      ['WorkflowExecutionStarted.input[3]', GZIP_ENCODING],
      ['WorkflowExecutionCompleted.result[0]', 'ref'],
    ]);
    // Each stored object is the codec's output: a gzip payload that unwraps to the original JSON.
    const expected = [JSON.stringify(bigValue(`${tag}:0`, 20_000)), JSON.stringify(result)];
    const seen: string[] = [];
    for (const { payload } of payloads.filter((p) => isReference(p.payload))) {
      const stored = await backend.read(backend.storageKeyOfClaim(referenceInfo(payload).claimData ?? {}));
      const outer = decodePayload(stored as Uint8Array);
      expect(new TextDecoder().decode(outer.metadata.encoding)).toBe(GZIP_ENCODING);
      const inner = decodePayload(new Uint8Array(gunzipSync(outer.data)));
      expect(new TextDecoder().decode(inner.metadata.encoding)).toBe('json/plain');
      seen.push(new TextDecoder().decode(inner.data));
      // Compressed: smaller than the JSON it holds.
      expect(outer.data.length).toBeLessThan(inner.data.length);
    }
    expect(seen).toEqual(expected);
    expect(await backend.keys()).toHaveLength(2);
    expect(codec.encoded).toBeGreaterThan(0);
  });
});

describe('selector routing across two drivers (Redis below 1 MiB, S3 above)', () => {
  it('routes each payload by size and reads everything back', async () => {
    const redis = await createBackend('redis');
    const s3 = await createBackend('s3');
    backends.push(redis, s3);
    const selector = selectBySize([{ below: 1024 * 1024, use: redis.driver }, { use: s3.driver }]);
    const externalStorage = new ExternalStorage({
      drivers: selector.drivers,
      driverSelector: selector,
      payloadSizeThreshold: PAYLOAD_SIZE_THRESHOLD,
    });
    const tag = `selector-${unique()}`;
    const sizes = [100, 200 * 1024, 1536 * 1024, 300 * 1024];
    const resultSize = 1200 * 1024;
    const { result, history } = await runValues({ externalStorage }, tag, sizes, resultSize);
    expect(result).toEqual({ ok: true, sizes, result: bigValue(`${tag}:result`, resultSize) });

    const where = historyPayloads(history).map((p) => [
      p.where,
      isReference(p.payload) ? referenceInfo(p.payload).driverName : 'inline',
    ]);
    expect(where).toEqual([
      ['WorkflowExecutionStarted.input[0]', 'inline'],
      ['WorkflowExecutionStarted.input[1]', 'inline'],
      ['WorkflowExecutionStarted.input[2]', 'inline'],
      ['WorkflowExecutionStarted.input[3]', 'redis'],
      ['WorkflowExecutionStarted.input[4]', 'aws.s3driver'],
      ['WorkflowExecutionStarted.input[5]', 'redis'],
      ['WorkflowExecutionCompleted.result[0]', 'aws.s3driver'],
    ]);
    expect(await redis.keys()).toHaveLength(2);
    expect(await s3.keys()).toHaveLength(2);
  });
});

describe('selector routing across the cloud blob drivers (Azure Blob below 1 MiB, GCS above)', () => {
  it('routes each payload by size and reads everything back', async () => {
    const azure = await createBackend('azure-blob');
    const gcs = await createBackend('gcs');
    backends.push(azure, gcs);
    const selector = selectBySize([{ below: 1024 * 1024, use: azure.driver }, { use: gcs.driver }]);
    const externalStorage = new ExternalStorage({
      drivers: selector.drivers,
      driverSelector: selector,
      payloadSizeThreshold: PAYLOAD_SIZE_THRESHOLD,
    });
    const tag = `cloud-selector-${unique()}`;
    const sizes = [100, 200 * 1024, 1536 * 1024, 300 * 1024];
    const resultSize = 1200 * 1024;
    const { result, history } = await runValues({ externalStorage }, tag, sizes, resultSize);
    expect(result).toEqual({ ok: true, sizes, result: bigValue(`${tag}:result`, resultSize) });

    const where = historyPayloads(history).map((p) => [
      p.where,
      isReference(p.payload) ? referenceInfo(p.payload).driverName : 'inline',
    ]);
    expect(where).toEqual([
      ['WorkflowExecutionStarted.input[0]', 'inline'],
      ['WorkflowExecutionStarted.input[1]', 'inline'],
      ['WorkflowExecutionStarted.input[2]', 'inline'],
      ['WorkflowExecutionStarted.input[3]', 'azure.blobdriver'],
      ['WorkflowExecutionStarted.input[4]', 'gcp.gcsdriver'],
      ['WorkflowExecutionStarted.input[5]', 'azure.blobdriver'],
      ['WorkflowExecutionCompleted.result[0]', 'gcp.gcsdriver'],
    ]);
    expect(await azure.keys()).toHaveLength(2);
    expect(await gcs.keys()).toHaveLength(2);
  });
});
