/**
 * The end-to-end workload's workflow (bundled by `@temporalio/worker`'s bundler: imports only
 * `@temporalio/workflow` and types).
 *
 * @module
 */
import { proxyActivities } from '@temporalio/workflow';
import type * as activities from './e2e-activities';

const { transformActivity } = proxyActivities<typeof activities>({
  startToCloseTimeout: '5 minutes',
  retry: { maximumAttempts: 1 },
});

/**
 * One round trip: the workflow's input goes to an activity, whose result (as large, other bytes)
 * is the workflow's result. Four payloads of the input's size cross the server: the workflow's
 * input, the activity's input, the activity's result and the workflow's result.
 */
export async function roundTripWorkflow(input: Uint8Array): Promise<Uint8Array> {
  return transformActivity(input);
}
