/**
 * The mark phase of `x-storage gc`: every External Storage reference that Temporal can still
 * need in one namespace, found through the frontend's raw RPCs, into per-driver mark sets.
 *
 * What is read, in this order (the order matters: an execution that closes while the open ones
 * are listed has its closed visibility record by the time the closed ones are listed):
 * 1. every open execution (any status but the six closed ones, so `Paused` and statuses a later
 *    server adds count as open): its whole history, page by page, and its description (pending
 *    activities' heartbeat details and last failures, pending children, the memo, …);
 * 2. closed executions still within retention: those with `TemporalExternalPayloadCount > 0`
 *    (visibility receives that count only when an execution closes), or every closed one with
 *    `allClosed`: their histories;
 * 3. schedules: each one's description (the action's input, memo, headers);
 * 4. standalone activities, where the namespace has them: each one's input, heartbeat details,
 *    last failure and outcome.
 *
 * @module
 */
import type { PayloadCodec } from '@x/storage-codec-server';
import {
  mapBounded,
  type StorageDriver,
  StorageDriverErrorCode,
  type StorageDriverLifecycle,
} from '@x/storage-driver-core';
import { DigestSet } from './digest-set';
import { type FoundReference, findReferences } from './references';
import { GRPC_NOT_FOUND, grpcCode, type RpcRunner } from './rpc';

/** A configured driver: its id in the config file and the instance. */
export interface GcDriver {
  /** Id in the config file's `drivers` (how the summary names it). */
  readonly id: string;
  /** The driver; references name it by `driver.name`. */
  readonly driver: StorageDriver;
}

/** One namespace to scan and the drivers its workers use (as the config file lists them for it). */
export interface GcNamespace {
  /** The Temporal namespace. */
  readonly name: string;
  /** The drivers references in this namespace may name (matched by `driver.name`). */
  readonly drivers: readonly GcDriver[];
  /** Codecs outside storage (a wire codec that also encodes references); default none. */
  readonly outerCodecs?: readonly PayloadCodec[];
}

/** What the mark phase found in one namespace. */
export interface NamespaceMark {
  /** The namespace. */
  namespace: string;
  /** Open executions whose history and description were read. */
  openExecutions: number;
  /** Closed executions whose history was read. */
  closedExecutions: number;
  /** Executions listed but gone (deleted, past retention) before their history was read. */
  vanishedExecutions: number;
  /** Which closed executions were read: those with `TemporalExternalPayloadCount > 0`, or all. */
  closedFilter: 'payload-count' | 'all';
  /** Schedules whose description was read. */
  schedules: number;
  /** Standalone activities whose description was read. */
  standaloneActivities: number;
  /** History events read. */
  historyEvents: number;
  /** Payloads looked at (inline and references). */
  payloads: number;
  /** References to a configured driver with a valid claim (the same object may be counted often). */
  references: number;
  /**
   * References naming a driver this namespace's configuration does not have, by driver name (an
   * object without a prototype: the names come from history).
   */
  unknownDrivers: Record<string, number>;
  /** References whose claim a configured driver rejects (`objectIdOf` failed), by driver id. */
  invalidClaims: Record<string, number>;
  /** Reference payloads that are not a readable `ExternalStorageReference`. */
  unreadableReferences: number;
  /** Milliseconds the namespace took. */
  durationMs: number;
}

/** Progress of the mark phase, reported after each execution, schedule or activity. */
export interface MarkProgress {
  /** The namespace being scanned. */
  readonly namespace: string;
  /** Executions, schedules and activities read so far in it. */
  readonly items: number;
  /** History events read so far in it. */
  readonly historyEvents: number;
  /** Valid references found so far in it. */
  readonly references: number;
}

/** Options of {@link markNamespace}. */
export interface MarkOptions {
  /** Executions (or schedules, activities) read at once. */
  readonly concurrency: number;
  /** Executions per visibility page. */
  readonly listPageSize: number;
  /** Events per history page. */
  readonly historyPageSize: number;
  /** Read every closed execution, not only those with `TemporalExternalPayloadCount > 0`. */
  readonly allClosed: boolean;
  /** Read standalone activities (when the namespace has them). */
  readonly standaloneActivities: boolean;
  /** Stops the phase. */
  readonly signal: AbortSignal;
  /** Called as the phase advances. */
  readonly onProgress?: (progress: MarkProgress) => void;
}

/** The statuses of closed executions (visibility query values). */
const CLOSED_STATUSES = ['Completed', 'Failed', 'Canceled', 'Terminated', 'ContinuedAsNew', 'TimedOut'];
const CLOSED_LIST = CLOSED_STATUSES.map((s) => `'${s}'`).join(', ');

/** Visibility query of every open execution: any status that is not a closed one. */
export const OPEN_EXECUTIONS_QUERY = `ExecutionStatus NOT IN (${CLOSED_LIST})`;
/** Visibility query of the closed executions that hold offloaded payloads. */
export const CLOSED_WITH_PAYLOADS_QUERY = `ExecutionStatus IN (${CLOSED_LIST}) AND TemporalExternalPayloadCount > 0`;
/** Visibility query of every closed execution. */
export const ALL_CLOSED_QUERY = `ExecutionStatus IN (${CLOSED_LIST})`;

/**
 * The mark sets: per driver id, the digests of the object ids ({@link StorageDriverLifecycle.objectIdOf})
 * of every reference found.
 */
export class MarkSets {
  readonly #sets = new Map<string, DigestSet>();

  /** The set of a driver id (created empty on first use). */
  of(driverId: string): DigestSet {
    let set = this.#sets.get(driverId);
    if (set === undefined) {
      set = new DigestSet();
      this.#sets.set(driverId, set);
    }
    return set;
  }

  /** Distinct objects marked, over all drivers. */
  get size(): number {
    let n = 0;
    for (const set of this.#sets.values()) n += set.size;
    return n;
  }

  /** Bytes the sets take. */
  get byteLength(): number {
    let n = 0;
    for (const set of this.#sets.values()) n += set.byteLength;
    return n;
  }
}

/** An error of the mark phase (after retries): the sweep must not run. */
export class MarkError extends Error {
  /** @param message - what failed; @param options - the underlying error. */
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MarkError';
  }
}

function describeError(error: unknown): string {
  const e = error as { code?: unknown; details?: unknown; message?: unknown } | null;
  const details = typeof e?.details === 'string' && e.details !== '' ? e.details : String(e?.message ?? error);
  return typeof e?.code === 'number' ? `gRPC status ${e.code}: ${details}` : details;
}

/** Pages through a listing RPC; `next` returns the page's items and its next page token. */
async function* pages<T>(
  next: (token: Uint8Array | undefined) => Promise<{ items: T[]; token: Uint8Array | null | undefined }>,
): AsyncGenerator<T[]> {
  let token: Uint8Array | undefined;
  do {
    const page = await next(token);
    yield page.items;
    token = page.token !== null && page.token !== undefined && page.token.length > 0 ? page.token : undefined;
  } while (token !== undefined);
}

/**
 * Runs `fn` on every item of every page with at most `concurrency` at once; the next page is
 * fetched while the current one is processed (so memory holds two pages at most).
 */
async function forEachItem<T>(
  source: AsyncGenerator<T[]>,
  concurrency: number,
  signal: AbortSignal,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let pending = source.next();
  for (;;) {
    const page = await pending;
    if (page.done) return;
    pending = source.next();
    // A rejected prefetch is reported when it is awaited (next turn), not as unhandled.
    pending.catch(() => {});
    await mapBounded(page.value, concurrency, (item) => fn(item), signal);
  }
}

/**
 * Reads one namespace and adds the object id of every reference to `marks` (per driver id).
 * `NOT_FOUND` for an execution, schedule or activity that was listed means it is gone, which is
 * fine; any other error (after the runner's retries) is thrown as a {@link MarkError}.
 *
 * @throws MarkError for an RPC that failed, an outer codec that failed, or an abort.
 */
export async function markNamespace(
  rpc: RpcRunner,
  namespace: GcNamespace,
  marks: MarkSets,
  scannedRuns: DigestSet,
  options: MarkOptions,
): Promise<NamespaceMark> {
  const started = Date.now();
  const ns = namespace.name;
  const result: NamespaceMark = {
    namespace: ns,
    openExecutions: 0,
    closedExecutions: 0,
    vanishedExecutions: 0,
    closedFilter: options.allClosed ? 'all' : 'payload-count',
    schedules: 0,
    standaloneActivities: 0,
    historyEvents: 0,
    payloads: 0,
    references: 0,
    unknownDrivers: Object.create(null),
    invalidClaims: Object.create(null),
    unreadableReferences: 0,
    durationMs: 0,
  };
  const byName = new Map<string, GcDriver>();
  for (const d of namespace.drivers) byName.set(d.driver.name, d);
  const outerCodecs = namespace.outerCodecs ?? [];
  let items = 0;
  const progress = () =>
    options.onProgress?.({
      namespace: ns,
      items,
      historyEvents: result.historyEvents,
      references: result.references,
    });

  const onReference = (found: FoundReference): void => {
    if (!found.valid) {
      result.unreadableReferences++;
      return;
    }
    const { driverName, claimData } = found.reference;
    const entry = byName.get(driverName);
    if (entry === undefined) {
      result.unknownDrivers[driverName] = (result.unknownDrivers[driverName] ?? 0) + 1;
      return;
    }
    const objectIdOf = (entry.driver as Partial<StorageDriverLifecycle>).objectIdOf;
    if (typeof objectIdOf !== 'function') {
      // A driver that cannot list is never swept; the reference needs no mark.
      result.references++;
      return;
    }
    let id: string;
    try {
      id = objectIdOf.call(entry.driver, claimData);
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (code !== StorageDriverErrorCode.INVALID_CLAIM) throw error;
      result.invalidClaims[entry.id] = (result.invalidClaims[entry.id] ?? 0) + 1;
      return;
    }
    marks.of(entry.id).add(id);
    result.references++;
  };
  const scan = async (message: unknown): Promise<void> => {
    result.payloads += await findReferences(message, onReference, outerCodecs);
  };

  const readHistory = async (workflowId: string, runId: string): Promise<boolean> => {
    let token: Uint8Array | undefined;
    do {
      const response = await rpc.call((s) =>
        s.getWorkflowExecutionHistory({
          namespace: ns,
          execution: { workflowId, runId },
          maximumPageSize: options.historyPageSize,
          nextPageToken: token,
          skipArchival: true,
        }),
      );
      const events = response.history?.events ?? [];
      result.historyEvents += events.length;
      await scan(events);
      token = response.nextPageToken?.length ? response.nextPageToken : undefined;
    } while (token !== undefined);
    return true;
  };

  /** Runs `read`; a NOT_FOUND means the item is gone (returns false). */
  const ifExists = async (read: () => Promise<unknown>): Promise<boolean> => {
    try {
      await read();
      return true;
    } catch (error) {
      if (grpcCode(error) === GRPC_NOT_FOUND) return false;
      throw error;
    }
  };

  const executions = (query: string) =>
    pages(async (token) => {
      const r = await rpc.call((s) =>
        s.listWorkflowExecutions({ namespace: ns, pageSize: options.listPageSize, nextPageToken: token, query }),
      );
      return { items: r.executions ?? [], token: r.nextPageToken };
    });

  const readExecutions = async (query: string, open: boolean): Promise<void> => {
    await forEachItem(executions(query), options.concurrency, options.signal, async (info) => {
      const workflowId = info.execution?.workflowId ?? '';
      const runId = info.execution?.runId ?? '';
      // An execution that closed while the open ones were listed is also listed as closed.
      if (!scannedRuns.add(`${ns}\u0000${workflowId}\u0000${runId}`)) return;
      await scan(info);
      const execution = { workflowId, runId };
      const found =
        (await ifExists(() => readHistory(workflowId, runId))) &&
        (!open ||
          (await ifExists(async () =>
            scan(await rpc.call((s) => s.describeWorkflowExecution({ namespace: ns, execution }))),
          )));
      if (!found) result.vanishedExecutions++;
      else if (open) result.openExecutions++;
      else result.closedExecutions++;
      items++;
      progress();
    });
  };

  try {
    await readExecutions(OPEN_EXECUTIONS_QUERY, true);
    await readExecutions(options.allClosed ? ALL_CLOSED_QUERY : CLOSED_WITH_PAYLOADS_QUERY, false);

    const schedules = pages(async (token) => {
      const r = await rpc.call((s) =>
        s.listSchedules({ namespace: ns, maximumPageSize: options.listPageSize, nextPageToken: token }),
      );
      return { items: r.schedules ?? [], token: r.nextPageToken };
    });
    await forEachItem(schedules, options.concurrency, options.signal, async (entry) => {
      await scan(entry);
      const scheduleId = entry.scheduleId ?? '';
      if (await ifExists(async () => scan(await rpc.call((s) => s.describeSchedule({ namespace: ns, scheduleId }))))) {
        result.schedules++;
      }
      items++;
      progress();
    });

    if (options.standaloneActivities) {
      const activities = pages(async (token) => {
        const r = await rpc.call((s) =>
          s.listActivityExecutions({ namespace: ns, pageSize: options.listPageSize, nextPageToken: token, query: '' }),
        );
        return { items: r.executions ?? [], token: r.nextPageToken };
      });
      await forEachItem(activities, options.concurrency, options.signal, async (entry) => {
        await scan(entry);
        const request = {
          namespace: ns,
          activityId: entry.activityId ?? '',
          runId: entry.runId ?? '',
          includeInput: true,
          includeOutcome: true,
          includeHeartbeatDetails: true,
          includeLastFailure: true,
        };
        if (await ifExists(async () => scan(await rpc.call((s) => s.describeActivityExecution(request))))) {
          result.standaloneActivities++;
        }
        items++;
        progress();
      });
    }
  } catch (error) {
    if (error instanceof MarkError) throw error;
    throw new MarkError(`namespace ${JSON.stringify(ns)}: ${describeError(error)}`, { cause: error });
  }
  result.durationMs = Date.now() - started;
  return result;
}
