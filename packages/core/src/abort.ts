/**
 * Abort-signal helpers shared by every driver.
 *
 * @module
 */
import { setMaxListeners } from 'node:events';
import { isStorageDriverError, StorageDriverError, StorageDriverErrorCode } from './errors';

/** Builds the `E_ABORTED` error for `signal`, keeping its reason as `cause`. */
export function abortedError(signal: AbortSignal | undefined, driverName?: string): StorageDriverError {
  return new StorageDriverError(StorageDriverErrorCode.ABORTED, 'Operation aborted', {
    driverName,
    cause: signal?.reason,
  });
}

/**
 * Throws `E_ABORTED` if `signal` has fired.
 *
 * @throws StorageDriverError `E_ABORTED`
 */
export function throwIfAborted(signal: AbortSignal | undefined, driverName?: string): void {
  if (signal?.aborted) throw abortedError(signal, driverName);
}

/**
 * A controller whose signal fires when it is aborted itself or when any of `parents` fires.
 * Call `dispose()` when done so no listener outlives the operation.
 */
export interface LinkedAbortController {
  /** Fires when `abort()` is called or any parent signal fires. */
  readonly signal: AbortSignal;
  /** Aborts `signal` with `reason`. */
  abort(reason?: unknown): void;
  /** Removes the listeners on the parent signals; call it when the operation is over. */
  dispose(): void;
}

/**
 * One `abort` listener per parent signal, fanned out to every linked controller. Callers often
 * share one signal across many concurrent calls; a listener per call would trip Node's
 * "possible EventTarget memory leak" warning past 10 calls (and `AbortSignal.any` retains memory
 * for long-lived parents on Node 20).
 */
const fanOut = new WeakMap<AbortSignal, { callbacks: Set<() => void>; handler: () => void }>();

function subscribe(parent: AbortSignal, callback: () => void): () => void {
  let entry = fanOut.get(parent);
  if (entry === undefined) {
    const callbacks = new Set<() => void>();
    const handler = () => {
      fanOut.delete(parent);
      for (const cb of [...callbacks]) cb();
    };
    entry = { callbacks, handler };
    fanOut.set(parent, entry);
    parent.addEventListener('abort', handler, { once: true });
  }
  const { callbacks, handler } = entry;
  callbacks.add(callback);
  return () => {
    callbacks.delete(callback);
    if (callbacks.size === 0 && fanOut.get(parent)?.callbacks === callbacks) {
      fanOut.delete(parent);
      parent.removeEventListener('abort', handler);
    }
  };
}

/** Creates a {@link LinkedAbortController} following `parents` (undefined entries are ignored). */
export function linkAbortSignals(...parents: (AbortSignal | undefined)[]): LinkedAbortController {
  const controller = new AbortController();
  // The linked signal is private to one driver call, which hands it to every backend request of a
  // batch (the AWS SDK adds one 'abort' listener per in-flight request): many listeners on it are
  // expected, not a leak, and must not print MaxListenersExceededWarning.
  setMaxListeners(0, controller.signal);
  const cleanups: (() => void)[] = [];
  for (const parent of parents) {
    if (!parent) continue;
    if (parent.aborted) {
      controller.abort(parent.reason);
      break;
    }
    cleanups.push(subscribe(parent, () => controller.abort(parent.reason)));
  }
  return {
    signal: controller.signal,
    abort: (reason?: unknown) => controller.abort(reason),
    dispose: () => {
      for (const c of cleanups.splice(0)) c();
    },
  };
}

/**
 * Races `promise` against `signal`: rejects with `E_ABORTED` as soon as the signal fires, even if
 * the underlying work cannot be cancelled (its eventual result is then ignored).
 *
 * @throws StorageDriverError `E_ABORTED`
 */
export function raceAbort<T>(promise: Promise<T>, signal: AbortSignal | undefined, driverName?: string): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) {
    promise.catch(() => {});
    return Promise.reject(abortedError(signal, driverName));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortedError(signal, driverName));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

/**
 * Runs `fn(item, index, signal)` for every item with at most `limit` in flight, preserving
 * result order. On the first failure (or when `signal` fires) the shared signal is aborted so
 * siblings stop early, no new items start, and the first error is rethrown once every started
 * call has settled (no work is left running behind the caller's back).
 *
 * @throws the first error thrown by `fn`, or StorageDriverError `E_ABORTED` if `signal` fired.
 * @throws TypeError if `limit` is not a positive integer.
 */
export async function mapBounded<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number, signal: AbortSignal) => Promise<R>,
  signal?: AbortSignal,
  driverName?: string,
): Promise<R[]> {
  if (!Number.isInteger(limit) || limit < 1) throw new TypeError('limit must be a positive integer');
  throwIfAborted(signal, driverName);
  const link = linkAbortSignals(signal);
  const results = new Array<R>(items.length);
  let next = 0;
  let firstError: unknown;
  let failed = false;
  const worker = async () => {
    while (!failed && next < items.length) {
      if (link.signal.aborted) {
        failed = true;
        firstError ??= abortedError(signal?.aborted ? signal : link.signal, driverName);
        return;
      }
      const i = next++;
      try {
        results[i] = await fn(items[i] as T, i, link.signal);
      } catch (e) {
        if (!failed) {
          failed = true;
          // Prefer the caller's abort over secondary errors it caused.
          firstError = signal?.aborted && !isStorageDriverError(e, 'E_ABORTED') ? abortedError(signal, driverName) : e;
          link.abort(e);
        }
        return;
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  } finally {
    link.dispose();
  }
  if (failed) throw firstError;
  return results;
}
