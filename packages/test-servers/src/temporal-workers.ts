/**
 * What a test file with Temporal workers shares: a private dev server, the file's workflows
 * bundled once (while the server starts), and a native connection for its workers.
 *
 * @module
 */
import { bundleWorkflowCode, DefaultLogger, NativeConnection, Runtime, type WorkflowBundle } from '@temporalio/worker';
import { type DevServer, type DevServerOptions, startTemporalDevServer } from './temporal';

/** Options of {@link startTemporalWorkerEnv}: the dev server's, plus the workflows to bundle. */
export interface TemporalWorkerEnvOptions extends DevServerOptions {
  /** Absolute path of the workflows module (`require.resolve('./workflows')`). */
  workflowsPath: string;
}

/** A dev server, a bundle of the file's workflows and a native connection for workers. */
export interface TemporalWorkerEnv {
  readonly server: DevServer;
  readonly nativeConnection: NativeConnection;
  readonly workflowBundle: WorkflowBundle;
  /** Closes the native connection, then stops the server. */
  close(): Promise<void>;
}

/**
 * Starts a dev server and bundles `workflowsPath` in parallel, then connects. Worker logs go
 * at ERROR only: the activity failures and failed workflow tasks tests provoke on purpose would
 * otherwise fill the output (the runtime is per process; a later file finds it installed).
 */
export async function startTemporalWorkerEnv(options: TemporalWorkerEnvOptions): Promise<TemporalWorkerEnv> {
  try {
    Runtime.install({ logger: new DefaultLogger('ERROR') });
  } catch {
    // installed by an earlier file of this process
  }
  const { workflowsPath, ...serverOptions } = options;
  const [server, workflowBundle] = await Promise.all([
    startTemporalDevServer(serverOptions),
    bundleWorkflowCode({ workflowsPath, logger: new DefaultLogger('WARN') }),
  ]);
  let nativeConnection: NativeConnection;
  try {
    nativeConnection = await NativeConnection.connect({ address: server.address });
  } catch (error) {
    await server.close();
    throw error;
  }
  return {
    server,
    nativeConnection,
    workflowBundle,
    close: async () => {
      await nativeConnection.close().catch(() => {});
      await server.close();
    },
  };
}
