/**
 * Workflow of the Python worker interop test (bundled by `@temporalio/worker`: imports only
 * `@temporalio/workflow` and types). It hands a large value to an activity that a Python worker
 * serves on another task queue and returns what the activity returned.
 */
import { proxyActivities } from '@temporalio/workflow';

/** What the Python activity `py_transform` (python/worker.py) returns. */
export interface PyTransformResult {
  /** Length of the string the activity received. */
  seenLength: number;
  /** SHA-256 (hex) of the UTF-8 string the activity received. */
  seenSha256: string;
  /** A large value made in Python: the input reversed, after a unicode marker. */
  reply: string;
}

/** Calls the Python activity `py_transform` on `pythonTaskQueue` with `value` and returns its result. */
export async function pythonActivityWorkflow(pythonTaskQueue: string, value: string): Promise<PyTransformResult> {
  const { py_transform } = proxyActivities<{ py_transform(value: string): Promise<PyTransformResult> }>({
    taskQueue: pythonTaskQueue,
    startToCloseTimeout: '60s',
    retry: { maximumAttempts: 2 },
  });
  return await py_transform(value);
}
