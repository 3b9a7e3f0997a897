/**
 * The scenario run and its checks, shared by the driver matrix: runs `scenarioWorkflow` (and a
 * standalone activity) with one driver and collects what history and the backend hold.
 */
import { expect } from '@jest/globals';
import type { Client } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import type { Worker } from '@temporalio/worker';
import { decodePayload, sha256Hex } from '@x/storage-driver-core';
import type { TestBackend } from '@x/test-backends';
import { bigValue, historyPayloads, isReference, metadataText, REFERENCE_MESSAGE_TYPE, referenceInfo } from '../src';
import { bigQuery, bigSignal, bigUpdate, type ScenarioResult, scenarioWorkflow } from '../src/workflows';
import { unique } from './helpers';

type IHistory = temporal.api.history.v1.IHistory;

/** What one scenario run produced. */
export interface ScenarioRun {
  tag: string;
  workflowId: string;
  activityId: string;
  runIds: { first: string; second: string; activity: string };
  result: ScenarioResult;
  activityResult: string;
  histories: { first: IHistory; second: IHistory; child: IHistory };
}

/**
 * Starts the scenario workflow (large input + memo), queries, signals and updates it while it
 * runs its activities and child, follows its continue-as-new to the result, runs a standalone
 * activity with a large input, and fetches every history.
 */
export async function runScenario(client: Client, worker: Worker, kind: string): Promise<ScenarioRun> {
  const tag = `${kind}-${unique()}`;
  // Characters the key spec must percent-encode (space, slash, plus, non-ASCII).
  const workflowId = `e2e ${kind}/wf+${unique()}-é`;
  const activityId = `e2e ${kind}/act+${unique()}`;
  const taskQueue = worker.options.taskQueue;
  return worker.runUntil(async () => {
    const handle = await client.workflow.start(scenarioWorkflow, {
      taskQueue,
      workflowId,
      args: [tag, bigValue(`${tag}:input`)],
      memo: { big: bigValue(`${tag}:memo`), small: tag },
    });
    expect(await handle.query(bigQuery)).toBe(bigValue(`${tag}:query`));
    await handle.signal(bigSignal, bigValue(`${tag}:signal`));
    expect(await handle.executeUpdate(bigUpdate, { args: [bigValue(`${tag}:update-in`)] })).toBe(
      bigValue(`${tag}:update-out`),
    );
    const result = await handle.result();
    const activity = await client.activity.start('echoActivity', {
      id: activityId,
      taskQueue,
      args: [`${tag}:standalone`, bigValue(`${tag}:standalone:activity-in`)],
      startToCloseTimeout: '60s',
    });
    const activityResult = (await activity.result()) as string;
    const second = (await client.workflow.getHandle(workflowId).describe()).runId;
    return {
      tag,
      workflowId,
      activityId,
      runIds: { first: handle.firstExecutionRunId, second, activity: activity.runId ?? 'null' },
      result,
      activityResult,
      histories: {
        first: await client.workflow.getHandle(workflowId, handle.firstExecutionRunId).fetchHistory(),
        second: await client.workflow.getHandle(workflowId, second).fetchHistory(),
        child: await client.workflow.getHandle(`${workflowId}-child`).fetchHistory(),
      },
    };
  });
}

/** `where: ref|inline` of every payload of a history, sorted. */
export function shapeOf(history: IHistory): string[] {
  return historyPayloads(history)
    .map((p) => `${p.where}: ${isReference(p.payload) ? 'ref' : 'inline'}`)
    .sort();
}

/** Expected shapes of the three histories (small tag/flags inline, every large value a reference). */
export const EXPECTED_SHAPES = {
  first: [
    'ActivityTaskCompleted.result[0]: inline', // heartbeatActivity's boolean
    'ActivityTaskCompleted.result[0]: ref', // echoActivity's result
    'ActivityTaskScheduled.input[0]: inline',
    'ActivityTaskScheduled.input[0]: inline',
    'ActivityTaskScheduled.input[1]: ref',
    'ChildWorkflowExecutionCompleted.result[0]: ref',
    'StartChildWorkflowExecutionInitiated.input[0]: inline',
    'StartChildWorkflowExecutionInitiated.input[1]: ref',
    'WorkflowExecutionContinuedAsNew.input[0]: inline',
    'WorkflowExecutionContinuedAsNew.input[1]: ref',
    'WorkflowExecutionContinuedAsNew.input[2]: inline',
    'WorkflowExecutionSignaled.input[0]: ref',
    'WorkflowExecutionStarted.input[0]: inline',
    'WorkflowExecutionStarted.input[1]: ref',
    'WorkflowExecutionStarted.memo.big: ref',
    'WorkflowExecutionStarted.memo.small: inline',
    'WorkflowExecutionUpdateAccepted.args[0]: ref',
    'WorkflowExecutionUpdateCompleted.result[0]: ref',
  ],
  second: [
    'WorkflowExecutionCompleted.result[0]: ref',
    'WorkflowExecutionStarted.input[0]: inline',
    'WorkflowExecutionStarted.input[1]: ref',
    'WorkflowExecutionStarted.input[2]: inline',
    'WorkflowExecutionStarted.memo.big: ref',
    'WorkflowExecutionStarted.memo.small: inline',
  ],
  child: [
    'WorkflowExecutionCompleted.result[0]: ref',
    'WorkflowExecutionStarted.input[0]: inline',
    'WorkflowExecutionStarted.input[1]: ref',
  ],
} as const;

/** Checks every reference of the run's histories; returns the storage keys they name. */
export async function checkReferences(run: ScenarioRun, backend: TestBackend): Promise<Set<string>> {
  const keys = new Set<string>();
  for (const history of Object.values(run.histories)) {
    for (const { where, payload } of historyPayloads(history)) {
      if (!isReference(payload)) {
        // Small values stay inline, as the SDK's converter wrote them.
        expect([where, metadataText(payload, 'encoding')]).toEqual([where, 'json/plain']);
        continue;
      }
      const ref = referenceInfo(payload);
      expect(ref).toMatchObject({ encoding: 'json/protobuf', messageType: REFERENCE_MESSAGE_TYPE });
      expect(ref.driverName).toBe(backend.driver.name);
      const key = backend.storageKeyOfClaim(ref.claimData ?? {});
      const stored = await backend.read(key);
      if (stored === undefined) throw new Error(`${where}: no object at ${key}`);
      // sizeBytes is the size of the payload the reference replaced: the stored Payload protobuf.
      expect([where, ref.sizeBytes]).toEqual([where, stored.length]);
      expect(ref.claimData?.hash_value).toBe(sha256Hex(stored));
      keys.add(key);
    }
  }
  return keys;
}

/**
 * Every object in the backend, by the label of the value it holds (`input`, `memo`, ... —
 * the labels `bigValue` was called with), mapped to its key's scope (`wt/.../wi/.../ri/...` or
 * `at/.../ai/.../ri/...`, with the run ids replaced by names). Checks each key's hash segment is
 * the SHA-256 of the stored bytes.
 */
export async function storedScopes(run: ScenarioRun, backend: TestBackend): Promise<Record<string, string>> {
  const names = new Map<string, string>([
    [backend.encodeSegment(run.workflowId), 'W'],
    [backend.encodeSegment(`${run.workflowId}-child`), 'C'],
    [backend.encodeSegment(run.activityId), 'A'],
    [run.runIds.first, 'R1'],
    [run.runIds.second, 'R2'],
    [run.runIds.activity, 'RA'],
  ]);
  const out: Record<string, string> = {};
  for (const key of await backend.keys()) {
    const bytes = (await backend.read(key)) as Uint8Array;
    const m = /^v0\/ns\/default\/((?:wt|at)\/[^/]+\/(?:wi|ai)\/[^/]+\/ri\/[^/]+)\/d\/sha256\/([0-9a-f]{64})$/.exec(key);
    if (m === null) throw new Error(`unexpected key shape: ${key}`);
    expect(m[2]).toBe(sha256Hex(bytes));
    const value: unknown = JSON.parse(new TextDecoder().decode(decodePayload(bytes).data));
    const text = typeof value === 'string' ? value : JSON.stringify(value);
    const label = text.startsWith(`${run.tag}:`)
      ? text.slice(run.tag.length + 1, text.lastIndexOf(':'))
      : text.includes(`"big":"${run.tag}:result:`)
        ? 'result'
        : `unknown ${text.slice(0, 40)}`;
    out[label] = (m[1] as string)
      .split('/')
      .map((segment) => names.get(segment) ?? segment)
      .join('/');
  }
  return out;
}

/**
 * Where each value is stored (DESIGN §4.4 keys as the SDK scopes them): values the client writes
 * have no run id yet (`ri/null`; signal and update arguments no workflow type either), values the
 * worker writes for a run carry its run id — including the workflow's activities' inputs, results
 * and heartbeat details, which the SDK scopes to the workflow — the child's input is scoped to
 * the child, its result (encoded for the parent) to the parent run, and a standalone activity's
 * payloads to the activity (`at/.../ai/...`).
 */
export const EXPECTED_SCOPES: Record<string, string> = {
  input: 'wt/scenarioWorkflow/wi/W/ri/null',
  memo: 'wt/scenarioWorkflow/wi/W/ri/null',
  signal: 'wt/null/wi/W/ri/null',
  'update-in': 'wt/null/wi/W/ri/null',
  'update-out': 'wt/scenarioWorkflow/wi/W/ri/R1',
  query: 'wt/scenarioWorkflow/wi/W/ri/R1',
  'activity-in': 'wt/scenarioWorkflow/wi/W/ri/R1',
  'activity-out': 'wt/scenarioWorkflow/wi/W/ri/R1',
  heartbeat: 'wt/scenarioWorkflow/wi/W/ri/R1',
  'child-in': 'wt/childWorkflow/wi/C/ri/null',
  'child-out': 'wt/null/wi/W/ri/R1',
  'continue-as-new': 'wt/scenarioWorkflow/wi/W/ri/null',
  result: 'wt/scenarioWorkflow/wi/W/ri/R2',
  'standalone:activity-in': 'at/echoActivity/ai/A/ri/null',
  'standalone:activity-out': 'at/echoActivity/ai/A/ri/RA',
};
