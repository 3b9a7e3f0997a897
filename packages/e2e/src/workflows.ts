/**
 * Workflows of the e2e tests (bundled by `@temporalio/worker`'s bundler: import only
 * `@temporalio/workflow`, types, and pure modules).
 */
import {
  allHandlersFinished,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  defineUpdate,
  executeChild,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type * as activities from './activities';
import { bigValue } from './values';

/** Signal with a large argument. */
export const bigSignal = defineSignal<[string]>('bigSignal');
/** Query with a large result. */
export const bigQuery = defineQuery<string>('bigQuery');
/** Update with a large argument and a large result. */
export const bigUpdate = defineUpdate<string, [string]>('bigUpdate');

/** What the scenario workflow saw: one flag per scenario, `true` when the value arrived intact. */
export type ScenarioChecks = Record<string, boolean>;

/** Result of {@link scenarioWorkflow}: the checks and a large value. */
export interface ScenarioResult {
  checks: ScenarioChecks;
  big: string;
}

const { echoActivity, heartbeatActivity } = proxyActivities<typeof activities>({
  startToCloseTimeout: '60s',
  retry: { initialInterval: '100ms', backoffCoefficient: 1, maximumAttempts: 3 },
});

/** Child workflow: large input, large result. */
export async function childWorkflow(tag: string, input: string): Promise<string> {
  return input === bigValue(`${tag}:child-in`) ? bigValue(`${tag}:child-out`) : 'child input mismatch';
}

/**
 * Every payload path of the issue in one workflow. First run (`carried` undefined): checks its
 * large input and memo, runs an activity (large in/out) and a heartbeating one, a child (large
 * in/out), answers {@link bigQuery}, waits for {@link bigSignal} and {@link bigUpdate}, then
 * continues as new with a large argument. Second run: checks that argument and returns every
 * check with a large value. `tag` is small and stays inline.
 */
export async function scenarioWorkflow(tag: string, input: string, carried?: ScenarioChecks): Promise<ScenarioResult> {
  if (carried !== undefined) {
    return {
      checks: { ...carried, continueAsNew: input === bigValue(`${tag}:continue-as-new`) },
      big: bigValue(`${tag}:result`),
    };
  }
  const checks: ScenarioChecks = {};
  let signal: string | undefined;
  let update: string | undefined;
  setHandler(bigSignal, (value) => {
    signal = value;
  });
  setHandler(bigQuery, () => bigValue(`${tag}:query`));
  setHandler(bigUpdate, (value) => {
    update = value;
    return bigValue(`${tag}:update-out`);
  });
  checks.input = input === bigValue(`${tag}:input`);
  checks.memo = workflowInfo().memo?.big === bigValue(`${tag}:memo`) && workflowInfo().memo?.small === tag;
  checks.activity = (await echoActivity(tag, bigValue(`${tag}:activity-in`))) === bigValue(`${tag}:activity-out`);
  checks.heartbeat = await heartbeatActivity(tag);
  const child = await executeChild(childWorkflow, {
    args: [tag, bigValue(`${tag}:child-in`)],
    workflowId: `${workflowInfo().workflowId}-child`,
  });
  checks.child = child === bigValue(`${tag}:child-out`);
  await condition(() => signal !== undefined && update !== undefined);
  checks.signal = signal === bigValue(`${tag}:signal`);
  checks.update = update === bigValue(`${tag}:update-in`);
  await condition(allHandlersFinished);
  return continueAsNew<typeof scenarioWorkflow>(tag, bigValue(`${tag}:continue-as-new`), checks);
}

/**
 * Receives values made by `bigValue(`${tag}:${i}`, size)` (one payload each), checks them, and
 * returns a value of `resultSize`: used by the codec, selector and fault tests.
 */
export async function valuesWorkflow(
  tag: string,
  resultSize: number,
  ...values: string[]
): Promise<{ ok: boolean; sizes: number[]; result: string }> {
  const ok = values.every((v, i) => v === bigValue(`${tag}:${i}`, v.length));
  return { ok, sizes: values.map((v) => v.length), result: bigValue(`${tag}:result`, resultSize) };
}
