/**
 * Child process of the end-to-end workload: `node e2e-worker.js <config JSON>` runs one Temporal
 * worker (the round-trip workflow and its activity, External Storage over the store of the
 * config, or none for `inline`) and measures its own CPU time between the parent's `begin` and
 * `end` messages (`process.cpuUsage()`: every thread of this process, i.e. the workflow threads,
 * the activity, the SDK core and the driver). Messages (IPC): `{ type: 'ready' }` once polling;
 * `begin` → `{ type: 'begun' }`; `end` → `{ type: 'cpu', userMicros, systemMicros }`; `stop`
 * shuts the worker down and exits.
 *
 * @module
 */
import { ExternalStorage } from '@temporalio/common';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import * as activities from './e2e-activities';
import { openStore, type StoreSpec } from './e2e-stores';

/** Configuration of one worker process. */
export interface E2eWorkerConfig {
  readonly address: string;
  readonly namespace: string;
  readonly taskQueue: string;
  /** Path of the bundled workflow code. */
  readonly bundlePath: string;
  readonly store: StoreSpec;
}

/** Messages from the parent. */
export type E2eParentMessage = { type: 'begin' } | { type: 'end' } | { type: 'stop' };
/** Messages to the parent. */
export type E2eWorkerMessage =
  | { type: 'ready' }
  | { type: 'begun' }
  | { type: 'cpu'; userMicros: number; systemMicros: number };

function send(message: E2eWorkerMessage): void {
  process.send?.(message);
}

async function main(config: E2eWorkerConfig): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const store = openStore(config.store);
  const connection = await NativeConnection.connect({ address: config.address });
  try {
    const dataConverter =
      store.driver === undefined ? {} : { externalStorage: new ExternalStorage({ drivers: [store.driver] }) };
    const worker = await Worker.create({
      connection,
      namespace: config.namespace,
      taskQueue: config.taskQueue,
      workflowBundle: { codePath: config.bundlePath },
      activities,
      dataConverter,
    });
    let start: NodeJS.CpuUsage | undefined;
    process.on('message', (message: E2eParentMessage) => {
      if (message.type === 'begin') {
        start = process.cpuUsage();
        send({ type: 'begun' });
      } else if (message.type === 'end') {
        const used = process.cpuUsage(start);
        send({ type: 'cpu', userMicros: used.user, systemMicros: used.system });
      } else if (message.type === 'stop') {
        worker.shutdown();
      }
    });
    const running = worker.run();
    send({ type: 'ready' });
    await running;
  } finally {
    await connection.close().catch(() => {});
    await store.close();
  }
}

main(JSON.parse(process.argv[2] ?? '{}') as E2eWorkerConfig).then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
