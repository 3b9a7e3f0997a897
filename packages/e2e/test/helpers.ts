/** Shared setup of the e2e test files: one dev server and one workflow bundle per file, and workers. */
import { afterAll, beforeAll } from '@jest/globals';
import { Client } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { Worker } from '@temporalio/worker';
import { startTemporalWorkerEnv, type TemporalWorkerEnv, uniqueSuffix } from '@x/test-servers';
import { activities, WORKFLOWS_PATH } from '../src';

export { uniqueSuffix as unique } from '@x/test-servers';

/** What a test file shares: the server, a native connection for workers, the bundle. */
export type TemporalEnv = TemporalWorkerEnv;

/**
 * Starts one dev server and bundles the workflows once (in parallel) for the whole file; stops
 * everything in `afterAll`. Read the returned object's fields inside tests only.
 */
export function useTemporal(): TemporalEnv {
  const env = {} as { -readonly [K in keyof TemporalEnv]: TemporalEnv[K] };
  beforeAll(async () => {
    Object.assign(env, await startTemporalWorkerEnv({ workflowsPath: WORKFLOWS_PATH }));
  }, 180_000);
  afterAll(async () => {
    await env.close?.();
  });
  return env;
}

/** A client of the file's server with the given data converter. */
export function clientFor(env: TemporalEnv, dataConverter: DataConverter): Client {
  return new Client({ connection: env.server.connection, namespace: env.server.namespace, dataConverter });
}

/** A worker on a fresh task queue with our activities and the file's bundle. */
export async function workerFor(
  env: TemporalEnv,
  dataConverter: DataConverter,
  taskQueue = `e2e-${uniqueSuffix()}`,
): Promise<Worker> {
  return Worker.create({
    connection: env.nativeConnection,
    namespace: env.server.namespace,
    taskQueue,
    workflowBundle: env.workflowBundle,
    activities,
    dataConverter,
  });
}
