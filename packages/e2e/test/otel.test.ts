/**
 * OpenTelemetry end to end on a real Temporal dev server, with `@temporalio/interceptors-opentelemetry`
 * on the client and an instrumented driver (`@x/storage-driver-otel`) on both sides: a client
 * start that offloads its input makes a `StorePayloads` span inside the client's
 * `StartWorkflow:<type>` span (same trace, its child), carrying Temporal's workflow-id key; the
 * worker's storage calls, which run outside any Temporal span, are root spans marked as such and
 * carry the run id.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { context, propagation } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { Client } from '@temporalio/client';
import { ExternalStorage } from '@temporalio/common';
import { OpenTelemetryWorkflowClientInterceptor } from '@temporalio/interceptors-opentelemetry';
// Temporal's attribute keys (not re-exported by the package's index).
import {
  RUN_ID_ATTR_KEY as TEMPORAL_RUN_ID,
  WORKFLOW_ID_ATTR_KEY as TEMPORAL_WORKFLOW_ID,
} from '@temporalio/interceptors-opentelemetry/lib/instrumentation';
import {
  StorageAttributes as A,
  instrumentStorageDriver,
  RUN_ID_ATTR_KEY,
  WORKFLOW_ID_ATTR_KEY,
} from '@x/storage-driver-otel';
import { createBackend, type TestBackend } from '@x/test-backends';
import { bigValue, PAYLOAD_SIZE_THRESHOLD } from '../src';
import { valuesWorkflow } from '../src/workflows';
import { unique, useTemporal, workerFor } from './helpers';

const env = useTemporal();
const exporter = new InMemorySpanExporter();
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
let backend: TestBackend;

beforeAll(async () => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  backend = await createBackend('redis', { name: 'redis' });
});
afterAll(async () => {
  await tracerProvider.shutdown();
  context.disable();
  propagation.disable();
  expect(await backend.close()).toBe(true);
});
afterEach(() => exporter.reset());

describe('OpenTelemetry with @temporalio/interceptors-opentelemetry', () => {
  it('our attribute keys for workflow id and run id are Temporal’s', () => {
    expect([WORKFLOW_ID_ATTR_KEY, RUN_ID_ATTR_KEY]).toEqual([TEMPORAL_WORKFLOW_ID, TEMPORAL_RUN_ID]);
  });

  it("a client start that offloads its input: StorePayloads inside the client's StartWorkflow span", async () => {
    const tracer = tracerProvider.getTracer('e2e');
    const driver = instrumentStorageDriver(backend.driver, { tracerProvider });
    const externalStorage = new ExternalStorage({ drivers: [driver], payloadSizeThreshold: PAYLOAD_SIZE_THRESHOLD });
    const client = new Client({
      connection: env.server.connection,
      namespace: env.server.namespace,
      dataConverter: { externalStorage },
      interceptors: { workflow: [new OpenTelemetryWorkflowClientInterceptor({ tracer })] },
    });
    const worker = await workerFor(env, { externalStorage });
    const tag = `otel-${unique()}`;
    const workflowId = `otel-${unique()}`;
    const { result, runId } = await worker.runUntil(async () => {
      const handle = await client.workflow.start(valuesWorkflow, {
        taskQueue: worker.options.taskQueue,
        workflowId,
        args: [tag, 8 * 1024, bigValue(`${tag}:0`)],
      });
      return { result: await handle.result(), runId: handle.firstExecutionRunId };
    });
    expect(result.ok).toBe(true);

    const spans = exporter.getFinishedSpans();
    const start = spans.find((s) => s.name === 'StartWorkflow:valuesWorkflow');
    expect(start?.attributes).toMatchObject({ [TEMPORAL_WORKFLOW_ID]: workflowId, [TEMPORAL_RUN_ID]: runId });

    // The client's store: a child of StartWorkflow, in its trace, with the start's target.
    const stores = spans.filter((s) => s.name === 'StorePayloads:redis');
    const clientStore = stores.find((s) => s.parentSpanContext?.spanId === start?.spanContext().spanId);
    expect(clientStore).toBeDefined();
    expect(clientStore?.spanContext().traceId).toBe(start?.spanContext().traceId);
    expect(clientStore?.attributes).toMatchObject({
      [A.OPERATION]: 'store',
      [A.DRIVER_TYPE]: 'redis',
      [A.NAMESPACE]: env.server.namespace,
      [A.TARGET_KIND]: 'workflow',
      [A.TARGET_TYPE]: 'valuesWorkflow',
      [TEMPORAL_WORKFLOW_ID]: workflowId,
      [A.PAYLOADS]: 1,
      [A.DEDUP_EXISTING]: 0,
    });
    expect(clientStore?.attributes[A.ROOT]).toBeUndefined();
    // The client knows no run id before the start returns.
    expect(clientStore?.attributes[TEMPORAL_RUN_ID]).toBeUndefined();
    expect(clientStore?.endTime[0] ?? 0).toBeLessThanOrEqual(start?.endTime[0] ?? 0);

    // The worker's storage runs outside any Temporal span: root spans, marked, with the run id.
    const workerStore = stores.find((s) => s !== clientStore);
    expect(workerStore?.attributes).toMatchObject({
      [A.ROOT]: true,
      [TEMPORAL_WORKFLOW_ID]: workflowId,
      [TEMPORAL_RUN_ID]: runId,
    });
    expect(workerStore?.parentSpanContext).toBeUndefined();
    const retrieves = spans.filter((s) => s.name === 'RetrievePayloads:redis');
    expect(retrieves.length).toBeGreaterThanOrEqual(2); // the worker's (input) and the client's (result)
    expect(retrieves.every((s) => s.attributes[A.ROOT] === true)).toBe(true);
  });
});
