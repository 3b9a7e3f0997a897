/** Shared setup of the e2e test files: one dev server and one workflow bundle per file, and workers. */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll } from '@jest/globals';
import { Client } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import {
  bundleWorkflowCode,
  DefaultLogger,
  NativeConnection,
  Runtime,
  Worker,
  type WorkflowBundle,
} from '@temporalio/worker';
import { type DevServer, startTemporalDevServer } from '@x/test-servers';
import { activities, WORKFLOWS_PATH } from '../src';

/** What a test file shares: the server, a native connection for workers, the bundle. */
export interface TemporalEnv {
  server: DevServer;
  nativeConnection: NativeConnection;
  workflowBundle: WorkflowBundle;
}

/**
 * Starts one dev server and bundles the workflows once (in parallel) for the whole file; stops
 * everything in `afterAll`. Read the returned object's fields inside tests only.
 */
export function useTemporal(): TemporalEnv {
  const env = {} as TemporalEnv;
  beforeAll(async () => {
    quietWorkers();
    const [server, workflowBundle] = await Promise.all([
      startTemporalDevServer(),
      bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: new DefaultLogger('WARN') }),
    ]);
    env.server = server;
    env.workflowBundle = workflowBundle;
    env.nativeConnection = await NativeConnection.connect({ address: server.address });
  }, 180_000);
  afterAll(async () => {
    await env.nativeConnection?.close().catch(() => {});
    await env.server?.close();
  });
  return env;
}

/**
 * Worker logs at ERROR only: the activity failures and failed workflow tasks the tests provoke
 * on purpose would otherwise fill the output. The runtime is per process; a later file finds it
 * installed already.
 */
function quietWorkers(): void {
  try {
    Runtime.install({ logger: new DefaultLogger('ERROR') });
  } catch {
    // already installed in this process
  }
}

/** A unique suffix for task queues, workflow ids and tags. */
export function unique(): string {
  return `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

/** A client of the file's server with the given data converter. */
export function clientFor(env: TemporalEnv, dataConverter: DataConverter): Client {
  return new Client({ connection: env.server.connection, namespace: env.server.namespace, dataConverter });
}

/** A worker on a fresh task queue with our activities and the file's bundle. */
export async function workerFor(
  env: TemporalEnv,
  dataConverter: DataConverter,
  taskQueue = `e2e-${unique()}`,
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
