/**
 * Workflows of the `x-storage gc` dev-server tests (bundled by `@temporalio/worker`: import only
 * `@temporalio/workflow` and pure code). Every workflow that must survive a gc holds its large
 * values until the test signals `release`, then returns whether each value arrived intact: with a
 * worker that caches nothing, that task replays the whole history and so retrieves every
 * offloaded payload again, after the gc.
 */
import {
  ApplicationFailure,
  condition,
  continueAsNew,
  defineSignal,
  defineUpdate,
  executeChild,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';

/** A large value (8 KiB, above the tests' 4 KiB threshold) determined by `label`. */
export function big(label: string): string {
  return `${label}:`.padEnd(8 * 1024, label.length % 2 === 0 ? 'ab' : 'cd');
}

/** Lets a held workflow finish. */
export const release = defineSignal('release');
/** A signal with a large argument. */
export const bigSignal = defineSignal<[string]>('bigSignal');
/** An update with a large argument (and a large result). */
export const bigUpdate = defineUpdate<string, [string]>('bigUpdate');

/** What a held workflow reports: one flag per value, `true` when it arrived intact. */
export type Checks = Record<string, boolean>;

function holdUntilReleased(): Promise<void> {
  let released = false;
  setHandler(release, () => {
    released = true;
  });
  return condition(() => released);
}

/** Running with an offloaded input until released. */
export async function holdWorkflow(tag: string, input: string): Promise<Checks> {
  await holdUntilReleased();
  return { input: input === big(`${tag}:input`) };
}

/** Completes at once with a large result: deleted afterwards, its objects are the orphans. */
export async function doneWorkflow(tag: string, input: string): Promise<string> {
  if (input !== big(`${tag}:input`)) throw ApplicationFailure.nonRetryable('input mismatch');
  return big(`${tag}:result`);
}

/** Continues as new twice with a large argument, then holds. */
export async function chainWorkflow(tag: string, step: number, input: string): Promise<Checks> {
  if (input !== big(`${tag}:step-${step}`)) return { [`step${step}`]: false };
  if (step < 2) return continueAsNew<typeof chainWorkflow>(tag, step + 1, big(`${tag}:step-${step + 1}`));
  await holdUntilReleased();
  return { step2: true };
}

/** Child: large input, large result. */
export async function childWorkflow(tag: string, input: string): Promise<string> {
  return input === big(`${tag}:child-in`) ? big(`${tag}:child-out`) : 'child input mismatch';
}

/** Runs a child (large input and result), then holds. */
export async function parentWorkflow(tag: string): Promise<Checks> {
  const out = await executeChild(childWorkflow, {
    args: [tag, big(`${tag}:child-in`)],
    workflowId: `${workflowInfo().workflowId}-child`,
  });
  await holdUntilReleased();
  return { child: out === big(`${tag}:child-out`) };
}

/** Receives a large signal and a large update, then holds. */
export async function messagesWorkflow(tag: string): Promise<Checks> {
  let signal: string | undefined;
  let update: string | undefined;
  setHandler(bigSignal, (value) => {
    signal = value;
  });
  setHandler(bigUpdate, (value) => {
    update = value;
    return big(`${tag}:update-out`);
  });
  await condition(() => signal !== undefined && update !== undefined);
  await holdUntilReleased();
  return { signal: signal === big(`${tag}:signal`), update: update === big(`${tag}:update-in`) };
}

/** Started by a schedule: checks the schedule's large input. */
export async function scheduledWorkflow(tag: string, input: string): Promise<Checks> {
  return { scheduleInput: input === big(`${tag}:schedule`) };
}

/** Holds until released; the test completes it, then resets it to its first workflow task. */
export async function resetWorkflow(tag: string, input: string): Promise<Checks> {
  await holdUntilReleased();
  return { resetInput: input === big(`${tag}:input`) };
}

/** Fails its first attempt; the retry (a new run with the first run's input) holds. */
export async function retryWorkflow(tag: string, input: string): Promise<Checks> {
  if (workflowInfo().attempt === 1) throw ApplicationFailure.retryable('first attempt fails');
  await holdUntilReleased();
  return { retryInput: input === big(`${tag}:input`) };
}

/**
 * Runs an activity on the task queue `activityQueue` that heartbeats large details and fails;
 * its retry reads the details back.
 */
export async function heartbeatWorkflow(activityQueue: string, tag: string): Promise<Checks> {
  const { heartbeatOnce: run } = proxyActivities<{ heartbeatOnce(tag: string): Promise<boolean> }>({
    taskQueue: activityQueue,
    startToCloseTimeout: '60s',
    retry: { initialInterval: '3s', backoffCoefficient: 1, maximumAttempts: 2 },
  });
  return { heartbeat: await run(tag) };
}

/** The live workload: a large input, an activity with a large argument and result, a large result. */
export async function liveWorkflow(tag: string, input: string): Promise<string> {
  const { echo } = proxyActivities<{ echo(value: string): Promise<string> }>({ startToCloseTimeout: '60s' });
  if (input !== big(`${tag}:input`)) throw ApplicationFailure.nonRetryable('input mismatch');
  const echoed = await echo(big(`${tag}:activity`));
  if (echoed !== big(`${tag}:activity`)) throw ApplicationFailure.nonRetryable('activity result mismatch');
  return big(`${tag}:result`);
}
