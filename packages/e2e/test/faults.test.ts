/**
 * A driver failure during a workflow task: the workflow's large input lives in a private Redis
 * that is down when the worker picks the task up. The task fails (WorkflowTaskFailed in history,
 * naming the driver error), the server retries it, and once Redis is back the workflow completes
 * with every value intact.
 */
import { afterAll, expect, it } from '@jest/globals';
import { ExternalStorage } from '@temporalio/common';
import { RedisStorageDriver } from '@x/storage-driver-redis';
import { type PrivateRedis, startRedis } from '@x/test-servers';
import { Redis } from 'ioredis';
import {
  bigValue,
  historyPayloads,
  PAYLOAD_SIZE_THRESHOLD,
  referenceInfo,
  type WorkflowTaskFailure,
  workflowTaskFailures,
} from '../src';
import { valuesWorkflow } from '../src/workflows';
import { clientFor, unique, useTemporal, workerFor } from './helpers';

const env = useTemporal();
let server: PrivateRedis | undefined;
let redis: Redis | undefined;
afterAll(async () => {
  redis?.disconnect();
  await server?.stop();
});

it('a workflow task fails while Redis is down and the workflow completes once it is back', async () => {
  // Durable: every write fsynced to the append-only file, so the SIGKILL below loses nothing.
  server = await startRedis({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] });
  redis = new Redis(server.url);
  redis.on('error', () => {}); // connection errors while the server is down are expected
  const driver = new RedisStorageDriver({
    client: redis,
    keyPrefix: `e2e-faults-${unique()}`,
    operationTimeout: 2_000,
  });
  const externalStorage = new ExternalStorage({ drivers: [driver], payloadSizeThreshold: PAYLOAD_SIZE_THRESHOLD });
  const client = clientFor(env, { externalStorage });
  const tag = `faults-${unique()}`;
  const sizes = [20_000, 8_000];

  // Started (input offloaded) before any worker runs, then Redis goes down.
  const handle = await client.workflow.start(valuesWorkflow, {
    taskQueue: `e2e-faults-${unique()}`,
    workflowId: `e2e faults ${tag}`,
    args: [tag, 30_000, ...sizes.map((size, i) => bigValue(`${tag}:${i}`, size))],
  });
  const keysBefore = await redis.keys(`${driver.keyPrefix}:*`);
  expect(keysBefore).toHaveLength(2);
  await server.kill();

  const worker = await workerFor(env, { externalStorage }, (await handle.describe()).taskQueue);
  const result = await worker.runUntil(async () => {
    // The worker cannot retrieve the input: the task fails and history records it.
    const deadline = Date.now() + 60_000;
    let failures: WorkflowTaskFailure[] = [];
    while (failures.length === 0) {
      if (Date.now() > deadline) throw new Error('no WorkflowTaskFailed while Redis was down');
      await new Promise((r) => setTimeout(r, 200));
      failures = workflowTaskFailures(await handle.fetchHistory());
    }
    // The driver's own error, retryable E_BACKEND, failed the task (not the workflow).
    expect(failures[0]?.stackTrace).toMatch(/^StorageDriverError: /);
    expect(failures[0]?.stackTrace).toContain('RedisStorageDriver');
    expect((await handle.describe()).status.name).toBe('RUNNING');
    await server?.restart();
    return handle.result();
  });

  // Nothing lost: the workflow saw both values, the result came back through Redis.
  expect(result).toEqual({ ok: true, sizes, result: bigValue(`${tag}:result`, 30_000) });
  const history = await handle.fetchHistory();
  const completed = historyPayloads(history).find((p) => p.where === 'WorkflowExecutionCompleted.result[0]');
  expect(referenceInfo(completed?.payload ?? {}).driverName).toBe('redis');
  expect(await redis.keys(`${driver.keyPrefix}:*`)).toEqual(expect.arrayContaining(keysBefore));
  expect(await redis.keys(`${driver.keyPrefix}:*`)).toHaveLength(3);
});
