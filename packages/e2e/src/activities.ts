/** Activities of the e2e scenario workflow (run by the test's worker). */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { bigValue } from './values';

/** Large input, large result: fails unless the input is the expected value. */
export async function echoActivity(tag: string, input: string): Promise<string> {
  if (input !== bigValue(`${tag}:activity-in`)) throw ApplicationFailure.nonRetryable('activity input mismatch');
  return bigValue(`${tag}:activity-out`);
}

/**
 * Heartbeats a large value on its first attempt and fails (retryably); the second attempt reads
 * the heartbeat details back and returns whether they are the value sent (a small, inline result).
 */
export async function heartbeatActivity(tag: string): Promise<boolean> {
  const ctx = Context.current();
  if (ctx.info.attempt === 1) {
    // The worker flushes the last heartbeat (stored externally first) before reporting a failure.
    ctx.heartbeat(bigValue(`${tag}:heartbeat`));
    throw ApplicationFailure.retryable('first attempt fails so the next one reads the heartbeat details');
  }
  return ctx.info.heartbeatDetails === bigValue(`${tag}:heartbeat`);
}
