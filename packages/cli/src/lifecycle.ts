/**
 * Running a driver's lifecycle (expiry) method, found by duck typing so that any driver can
 * take part without this package depending on it.
 *
 * The contract (a driver implements one of them):
 * - `sweep({ olderThan?, signal?, dryRun? }) => Promise<result>` — the filesystem driver's
 *   shape: remove payloads last stored more than `olderThan` ms ago (default: the driver's TTL);
 *   `dryRun` reports without removing.
 * - `deleteExpired({ batchSize?, maxBatches?, signal? }) => Promise<result>` — the shape of
 *   drivers that record an expiry time per payload (PostgreSQL `expires_at`): delete expired
 *   rows in batches. It has no dry run.
 *
 * `result` is any JSON-like object; numbers, booleans, strings, dates and array lengths are
 * summarized by {@link summarizeLifecycleResult}, and an `errors` array with entries counts as
 * a partial failure. Drivers whose backend expires by itself (Redis `PX`, S3 lifecycle rules)
 * implement neither and are reported as skipped.
 *
 * @module
 */
import type { StorageDriver } from '@x/storage-driver-core';

/** Options of {@link runDriverLifecycle}. */
export interface LifecycleOptions {
  /** Passed to `sweep` as `olderThan` (milliseconds). Default: the driver's own default (its TTL). */
  olderThan?: number;
  /** Passed to `sweep`; a driver with only `deleteExpired` is skipped in a dry run. Default: `false`. */
  dryRun?: boolean;
  /** Passed to `deleteExpired`. Default: the driver's own. */
  batchSize?: number;
  /** Passed to `deleteExpired`. Default: the driver's own. */
  maxBatches?: number;
  /** Aborts the run. */
  signal?: AbortSignal;
}

/** The outcome of {@link runDriverLifecycle} for one driver. */
export interface LifecycleOutcome {
  /** The driver's `name`. */
  driverName: string;
  /** The driver's `type`. */
  driverType: string;
  /** The method that ran, or `null` if skipped. */
  method: 'sweep' | 'deleteExpired' | null;
  /** What the method returned. */
  result?: unknown;
  /** Why the driver was skipped. */
  skipped?: string;
  /** The error the method threw. */
  error?: unknown;
}

type SweepFn = (options: { olderThan?: number; signal?: AbortSignal; dryRun?: boolean }) => Promise<unknown>;
type DeleteExpiredFn = (options: { batchSize?: number; maxBatches?: number; signal?: AbortSignal }) => Promise<unknown>;

/**
 * Runs `sweep` or `deleteExpired` (see the module documentation) on `driver`. Never throws: a
 * failure is returned in `error`.
 */
export async function runDriverLifecycle(
  driver: StorageDriver,
  options: LifecycleOptions = {},
): Promise<LifecycleOutcome> {
  const base = { driverName: driver.name, driverType: driver.type };
  const candidate = driver as unknown as { sweep?: unknown; deleteExpired?: unknown };
  try {
    if (typeof candidate.sweep === 'function') {
      const args: Parameters<SweepFn>[0] = { dryRun: options.dryRun === true };
      if (options.olderThan !== undefined) args.olderThan = options.olderThan;
      if (options.signal !== undefined) args.signal = options.signal;
      return { ...base, method: 'sweep', result: await (candidate.sweep as SweepFn).call(driver, args) };
    }
    if (typeof candidate.deleteExpired === 'function') {
      if (options.dryRun === true) {
        return { ...base, method: null, skipped: 'deleteExpired() has no dry run' };
      }
      const args: Parameters<DeleteExpiredFn>[0] = {};
      if (options.batchSize !== undefined) args.batchSize = options.batchSize;
      if (options.maxBatches !== undefined) args.maxBatches = options.maxBatches;
      if (options.signal !== undefined) args.signal = options.signal;
      return {
        ...base,
        method: 'deleteExpired',
        result: await (candidate.deleteExpired as DeleteExpiredFn).call(driver, args),
      };
    }
  } catch (error) {
    return { ...base, method: typeof candidate.sweep === 'function' ? 'sweep' : 'deleteExpired', error };
  }
  return {
    ...base,
    method: null,
    skipped: 'no sweep() or deleteExpired() (the backend expires payloads itself, or has no lifecycle)',
  };
}

/**
 * Flattens a lifecycle result into `key=value` pairs: numbers, booleans, strings and bigints
 * as they are, dates as ISO strings, arrays as their length. Nested objects are skipped.
 */
export function summarizeLifecycleResult(result: unknown): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  if (typeof result === 'number' || typeof result === 'bigint') return { removed: result.toString() };
  if (typeof result !== 'object' || result === null) return out;
  for (const [key, value] of Object.entries(result)) {
    if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'string') out[key] = value;
    else if (typeof value === 'bigint') out[key] = value.toString();
    else if (value instanceof Date) out[key] = value.toISOString();
    else if (Array.isArray(value)) out[key] = value.length;
  }
  return out;
}

/** True when a lifecycle result reports per-item failures (a non-empty `errors` array). */
export function lifecycleResultHasErrors(result: unknown): boolean {
  const errors = (result as { errors?: unknown } | null)?.errors;
  return Array.isArray(errors) && errors.length > 0;
}
