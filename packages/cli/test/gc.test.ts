/**
 * `x-storage gc` (the built command, as a child process) against a real Temporal dev server with
 * real workers, once per driver (fs, Redis, PostgreSQL, S3 on moto), each on its own namespace.
 *
 * Phase 1 builds every case of issue 15 with a worker: executions that must keep their payloads
 * (running with an offloaded input, a continue-as-new chain, a child, a big signal and update, a
 * schedule whose run has not started, a reset run, a retried run, a pending activity's heartbeat
 * details) and completed executions deleted as retention would, whose objects become orphans; plus
 * old objects of a namespace that is not scanned and one without a namespace. Once every object is
 * older than the (test-only, 3 s) grace period, a fresh unreferenced object is stored, then a dry
 * run and a `--delete` run. Phase 2 releases every held execution on a worker that caches nothing
 * (so each task replays its history and retrieves every payload again), triggers the schedule,
 * lets the activity retry read its heartbeat details, and retrieves every reference left in any
 * history of the namespace.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { Context } from '@temporalio/activity';
import { Client, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure, ExternalStorage } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { encodeKeySegment, type StorageDriver } from '@x/storage-driver-core';
import { findReferences } from '../src/gc/references';
import {
  createGcStore,
  deleteExecution,
  GC_KINDS,
  type GcKind,
  type GcStore,
  runGc,
  unique,
  useGcTemporal,
  waitFor,
} from './gc-helpers';
import {
  big,
  bigSignal,
  bigUpdate,
  type Checks,
  chainWorkflow,
  doneWorkflow,
  heartbeatWorkflow,
  holdWorkflow,
  liveWorkflow,
  messagesWorkflow,
  parentWorkflow,
  release,
  resetWorkflow,
  retryWorkflow,
  scheduledWorkflow,
} from './gc-workflows';

const LIVE_KIND: GcKind = (process.env.GC_LIVE_KIND as GcKind | undefined) ?? 'postgres';
const namespaceOf = (kind: GcKind) => `gc-${kind}`;
const env = useGcTemporal([...GC_KINDS.map(namespaceOf), 'gc-live']);
const stores: GcStore[] = [];
afterAll(async () => {
  await Promise.all(stores.map((s) => s.close().catch(() => {})));
});

const GRACE = ['--grace', '3s', '--unsafe-short-grace'];
const THRESHOLD = 4 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A payload stored outside any workflow (what a client stores before a start that never happens). */
async function storeLoose(store: GcStore, namespace: string | undefined, label: string): Promise<string> {
  const target = namespace === undefined ? undefined : ({ kind: 'workflow', namespace, id: label, type: 'T' } as const);
  const payload = { metadata: { encoding: Buffer.from('json/plain') }, data: Buffer.from(JSON.stringify(big(label))) };
  const [claim] = await store.driver.store({ target }, [payload]);
  return store.backend.storageKeyOfClaim(claim?.claimData ?? {});
}

/** Every reference in every history of `namespace`, retrieved through `driver` (throws on a missing one). */
async function retrieveEveryReference(client: Client, driver: StorageDriver, namespace: string): Promise<number> {
  let retrieved = 0;
  for await (const info of client.workflow.list()) {
    const history = await client.workflow.getHandle(info.workflowId, info.runId).fetchHistory();
    const claims: { claimData: Record<string, string> }[] = [];
    await findReferences(history.events, (r) => {
      if (r.valid && r.reference.driverName === driver.name) claims.push({ claimData: r.reference.claimData });
    });
    if (claims.length > 0) await driver.retrieve({}, claims);
    retrieved += claims.length;
  }
  expect(namespace).toBe(client.options.namespace);
  return retrieved;
}

async function scenario(kind: GcKind): Promise<void> {
  const store = await createGcStore(kind);
  stores.push(store);
  const namespace = namespaceOf(kind);
  const { driver, backend } = store;
  const externalStorage = new ExternalStorage({ drivers: [driver], payloadSizeThreshold: THRESHOLD });
  const client = new Client({ connection: env.server.connection, namespace, dataConverter: { externalStorage } });
  const tag = `${kind}-${unique()}`;
  const taskQueue = `gc-${tag}`;
  const activityQueue = `gc-${tag}-activities`;
  const workerOptions = {
    connection: env.nativeConnection,
    namespace,
    workflowBundle: env.workflowBundle,
    dataConverter: { externalStorage },
  };
  const id = (name: string) => `${tag}-${name}`;

  // ---- Phase 1: every case, with a worker.
  const firstActivityWorker = await Worker.create({
    ...workerOptions,
    taskQueue: activityQueue,
    activities: {
      async heartbeatOnce(t: string) {
        Context.current().heartbeat(big(`${t}:heartbeat`));
        throw ApplicationFailure.retryable('the first attempt fails; its retry reads the heartbeat details');
      },
    },
  });
  const worker = await Worker.create({ ...workerOptions, taskQueue });
  const handles: Record<string, WorkflowHandle> = {};
  const doomed: { workflowId: string; runId: string }[] = [];
  let scheduleWorkflowId = '';
  const activityRun = firstActivityWorker.run();
  await worker.runUntil(async () => {
    const start = (name: string, fn: Parameters<typeof client.workflow.start>[0], args: unknown[], extra = {}) =>
      client.workflow.start(fn, { taskQueue, workflowId: id(name), args, ...extra });
    // Completed executions, deleted below as retention would: their objects are the orphans.
    for (const name of ['done-1', 'done-2']) {
      const h = await start(name, doneWorkflow, [`${tag}:${name}`, big(`${tag}:${name}:input`)]);
      expect(await h.result()).toBe(big(`${tag}:${name}:result`));
      const execution = { workflowId: h.workflowId, runId: (await h.describe()).runId };
      doomed.push(execution);
    }
    handles.hold = await start('hold', holdWorkflow, [tag, big(`${tag}:input`)]);
    const chain = await start('chain', chainWorkflow, [tag, 0, big(`${tag}:step-0`)]);
    handles.chain = chain;
    handles.parent = await start('parent', parentWorkflow, [tag]);
    handles.messages = await start('messages', messagesWorkflow, [tag]);
    await handles.messages.signal(bigSignal, big(`${tag}:signal`));
    expect(await handles.messages.executeUpdate(bigUpdate, { args: [big(`${tag}:update-in`)] })).toBe(
      big(`${tag}:update-out`),
    );
    const retry = await start('retry', retryWorkflow, [tag, big(`${tag}:input`)], {
      retry: { maximumAttempts: 2, initialInterval: '1s' },
    });
    handles.retry = retry;
    handles.heartbeat = await start('heartbeat', heartbeatWorkflow, [activityQueue, tag]);
    const schedule = await client.schedule.create({
      scheduleId: id('schedule'),
      spec: { intervals: [{ every: '3650d' }] },
      state: { paused: true },
      action: {
        type: 'startWorkflow',
        workflowType: scheduledWorkflow,
        args: [tag, big(`${tag}:schedule`)],
        taskQueue,
        workflowId: id('scheduled'),
      },
    });
    scheduleWorkflowId = schedule.scheduleId;

    // A reset run reading the old run's input: complete the run, then reset it to its first
    // workflow task (signals not reapplied), so the new run holds with the copied input.
    const reset = await start('reset', resetWorkflow, [tag, big(`${tag}:input`)]);
    await waitFor('the first workflow task of the run to reset', async () => {
      const { events: e } = await reset.fetchHistory();
      return e?.some((x) => x.workflowTaskCompletedEventAttributes) ? true : undefined;
    });
    await reset.signal(release);
    await reset.result();
    const { events } = await reset.fetchHistory();
    const firstTask = events?.find((e) => e.workflowTaskCompletedEventAttributes)?.eventId;
    const { runId } = await env.server.connection.workflowService.resetWorkflowExecution({
      namespace,
      workflowExecution: { workflowId: id('reset'), runId: reset.firstExecutionRunId },
      reason: 'gc test',
      workflowTaskFinishEventId: firstTask,
      requestId: unique(),
      resetReapplyExcludeTypes: [temporal.api.enums.v1.ResetReapplyExcludeType.RESET_REAPPLY_EXCLUDE_TYPE_SIGNAL],
    });
    handles.reset = client.workflow.getHandle(id('reset'), runId);

    // Wait for the held states: the retry's second run, the chain's third run, the child, the heartbeat.
    await waitFor('the retry run', async () => {
      const d = await client.workflow.getHandle(id('retry')).describe();
      return d.runId !== retry.firstExecutionRunId && d.status.name === 'RUNNING' ? true : undefined;
    });
    await waitFor('the third run of the chain, holding', async () => {
      const { events: e } = await client.workflow.getHandle(id('chain')).fetchHistory();
      const previous = e?.[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId;
      const holding = e?.some((x) => x.workflowTaskCompletedEventAttributes);
      return previous && previous !== chain.firstExecutionRunId && holding ? true : undefined;
    });
    await waitFor('the child to complete', async () => {
      const { events: e } = await (handles.parent as WorkflowHandle).fetchHistory();
      return e?.some((x) => x.childWorkflowExecutionCompletedEventAttributes) ? true : undefined;
    });
    // The first attempt failed with its heartbeat details recorded; stop its worker before the
    // retry (3 s later) is dispatched, so the retry runs after the gc.
    await waitFor('the heartbeat details on the pending activity', async () => {
      const d = await (handles.heartbeat as WorkflowHandle).describe();
      const pending = d.raw.pendingActivities?.[0];
      return pending?.attempt === 2 && pending.heartbeatDetails?.payloads?.length ? true : undefined;
    });
    await firstActivityWorker.shutdown();
  });
  await activityRun;
  await Promise.all(doomed.map((d) => deleteExecution(env.server.connection, namespace, d)));
  // Old objects gc must leave alone: another namespace's, and one stored without a target.
  const elsewhere = await storeLoose(store, 'gc-elsewhere', `${tag}:elsewhere`);
  const namespaceLess = await storeLoose(store, undefined, `${tag}:no-namespace`);

  const before = await backend.keys();
  const doomedSegments = doomed.map((d) => `/wi/${encodeKeySegment(d.workflowId)}/`);
  const expectedOrphans = before.filter((k) => doomedSegments.some((s) => k.includes(s))).sort();
  // Each deleted execution stored its input and its result.
  expect(expectedOrphans).toHaveLength(4);
  expect(before).toEqual(expect.arrayContaining([elsewhere, namespaceLess]));

  // ---- gc, once every object is older than the grace period.
  await sleep(3500);
  const args = ['--config', store.config, '--namespace', namespace, ...GRACE];
  const fresh = await storeLoose(store, namespace, `${tag}:fresh`);
  const dry = await runGc(env.server, args);
  expect([dry.code, dry.stderr]).toEqual([0, expect.not.stringContaining('x-storage')]);
  const dryReport = dry.report as NonNullable<typeof dry.report>;
  const [mark] = dryReport.namespaces;
  expect(mark).toMatchObject({ namespace, unknownDrivers: {}, invalidClaims: {}, unreadableReferences: 0 });
  // Open: hold, chain, parent, messages, retry, heartbeat, reset; closed with payloads: the chain's
  // two runs, the child, the retry's and the reset's first runs.
  expect(mark?.openExecutions).toBe(7);
  expect(mark?.closedExecutions).toBe(5);
  expect(mark?.schedules).toBe(1);
  expect(dryReport.orphans.map((o) => o.key).sort()).toEqual(expectedOrphans);
  const [dryDriver] = dryReport.drivers;
  expect(dryDriver?.namespaces[namespace]).toMatchObject({ orphans: 4, deleted: 0 });
  expect(dryDriver?.namespaces[namespace]?.inGrace).toBeGreaterThanOrEqual(1);
  expect(dryDriver?.otherNamespaces).toEqual({ 'gc-elsewhere': { objects: 1, bytes: expect.any(Number) } });
  expect(dryDriver?.withoutNamespace.objects).toBe(1);
  expect(await backend.keys()).toEqual([...before, fresh].sort());

  await storeLoose(store, namespace, `${tag}:fresh`); // referenced again: still within the grace period
  const real = await runGc(env.server, [...args, '--delete']);
  expect([real.code, real.stderr]).toEqual([0, expect.not.stringContaining('x-storage')]);
  const realReport = real.report as NonNullable<typeof real.report>;
  expect(realReport.orphans.map((o) => o.key).sort()).toEqual(expectedOrphans);
  expect(realReport.drivers[0]?.namespaces[namespace]).toMatchObject({ orphans: 4, deleted: 4, kept: 0 });
  const after = await backend.keys();
  const removed = [...before, fresh].filter((k) => !after.includes(k)).sort();
  // The dry run reported exactly the set the real run removed.
  expect(removed).toEqual(expectedOrphans);

  // ---- Phase 2: every kept payload is retrieved again, after the gc.
  const replayer = await Worker.create({ ...workerOptions, taskQueue, maxCachedWorkflows: 0 });
  const secondActivityWorker = await Worker.create({
    ...workerOptions,
    taskQueue: activityQueue,
    activities: {
      async heartbeatOnce(t: string) {
        return Context.current().info.heartbeatDetails === big(`${t}:heartbeat`);
      },
    },
  });
  const results = await Promise.all([
    secondActivityWorker.runUntil(() =>
      replayer.runUntil(async () => {
        const held = ['hold', 'chain', 'parent', 'messages', 'retry', 'reset'];
        for (const name of held) await client.workflow.getHandle(id(name)).signal(release);
        const scheduleHandle = client.schedule.getHandle(scheduleWorkflowId);
        await scheduleHandle.trigger();
        const started = await waitFor('the scheduled run', async () => {
          const d = await scheduleHandle.describe();
          return d.info.recentActions[0]?.action.workflow;
        });
        const scheduled = client.workflow.getHandle(started.workflowId, undefined, {
          firstExecutionRunId: started.firstExecutionRunId,
        });
        const outcomes: Checks[] = await Promise.all([
          ...held.map((name) => client.workflow.getHandle(id(name)).result() as Promise<Checks>),
          handles.heartbeat?.result() as Promise<Checks>,
          scheduled.result() as Promise<Checks>,
        ]);
        await scheduleHandle.delete();
        return Object.assign({}, ...outcomes) as Checks;
      }),
    ),
  ]);
  expect(results[0]).toEqual({
    input: true,
    step2: true,
    child: true,
    signal: true,
    update: true,
    retryInput: true,
    resetInput: true,
    heartbeat: true,
    scheduleInput: true,
  });
  // And every reference in every history left in the namespace still retrieves (all those the
  // mark found but the schedule's and the heartbeat details, plus the scheduled run's).
  expect(await retrieveEveryReference(client, driver, namespace)).toBeGreaterThanOrEqual((mark?.references ?? 0) - 1);
}

describe('x-storage gc on a real Temporal server', () => {
  it.each(GC_KINDS)(
    '%s: deletes exactly the orphans of deleted executions, keeps every payload Temporal can still need',
    async (kind) => {
      await scenario(kind);
    },
    180_000,
  );
});

describe('a live workload while x-storage gc --delete runs', () => {
  it(`${LIVE_KIND}: every workflow completes with every payload intact; gc deletes the deleted executions' objects meanwhile`, async () => {
    const store = await createGcStore(LIVE_KIND);
    stores.push(store);
    const namespace = 'gc-live';
    const externalStorage = new ExternalStorage({ drivers: [store.driver], payloadSizeThreshold: THRESHOLD });
    const client = new Client({ connection: env.server.connection, namespace, dataConverter: { externalStorage } });
    const taskQueue = `gc-live-${unique()}`;
    const tag = unique();
    // Caching nothing, every workflow task replays the history and retrieves every payload again.
    const worker = await Worker.create({
      connection: env.nativeConnection,
      namespace,
      taskQueue,
      workflowBundle: env.workflowBundle,
      dataConverter: { externalStorage },
      maxCachedWorkflows: 0,
      activities: { echo: async (value: string) => value },
    });
    const durationMs = 15_000;
    const gcRuns: Awaited<ReturnType<typeof runGc>>[] = [];
    let completed = 0;
    let skipped = 0;
    await worker.runUntil(async () => {
      let stop = false;
      const gcLoop = (async () => {
        while (!stop) {
          gcRuns.push(
            await runGc(env.server, ['--config', store.config, '--namespace', namespace, ...GRACE, '--delete']),
          );
        }
      })();
      /**
       * One workflow: start, result, then deleted as retention would (so its objects become
       * orphans). Every 12th reuses one of two workflow ids (each every 3.6 s, longer than the
       * grace) with the same input: that start stores an object gc may be deleting right then
       * again (written anew, or refreshed by a dedup hit the conditional delete then respects).
       */
      const one = async (i: number): Promise<void> => {
        const reused = i % 12 === 0;
        const label = reused ? `${tag}:reused-${(i / 12) % 2}` : `${tag}:${i}`;
        let handle: WorkflowHandle;
        try {
          handle = await client.workflow.start(liveWorkflow, {
            taskQueue,
            workflowId: `live-${label}`,
            args: [label, big(`${label}:input`)],
            workflowExecutionTimeout: '60s',
          });
        } catch (error) {
          // The previous run of a reused id is still running.
          if ((error as Error).name === 'WorkflowExecutionAlreadyStartedError') {
            skipped++;
            return;
          }
          throw error;
        }
        expect(await handle.result()).toBe(big(`${label}:result`));
        completed++;
        const { runId } = await handle.describe();
        await deleteExecution(env.server.connection, namespace, { workflowId: handle.workflowId, runId });
      };
      const runs: Promise<void>[] = [];
      const started = Date.now();
      for (let i = 0; Date.now() - started < durationMs; i++) {
        runs.push(one(i));
        await sleep(150);
      }
      await Promise.all(runs);
      stop = true;
      await gcLoop;
    });
    const failed = gcRuns.filter((r) => r.code !== 0);
    expect(failed.map((r) => r.stderr)).toEqual([]);
    const sweeps = gcRuns.map((r) => r.report?.drivers[0]?.namespaces[namespace]);
    const deleted = sweeps.reduce((n, s) => n + (s?.deleted ?? 0), 0);
    const kept = sweeps.reduce((n, s) => n + (s?.kept ?? 0), 0);
    process.stdout.write(
      `live workload (${LIVE_KIND}): ${completed} workflows completed (${skipped} starts skipped: id still running), ${gcRuns.length} gc runs deleted ${deleted} objects, ${kept} kept by the conditional delete\n`,
    );
    expect(completed).toBeGreaterThan(40);
    expect(gcRuns.length).toBeGreaterThanOrEqual(3);
    expect(deleted).toBeGreaterThan(0);
  }, 180_000);
});
