/**
 * `x-storage gc` as a function: checks the namespaces, marks every reference Temporal can still
 * need, and sweeps each driver's unmarked objects last referenced before the grace period.
 *
 * @module
 */
import type { temporal } from '@temporalio/proto';
import type { StoredObject } from '@x/storage-driver-core';
import { RefusedError } from '../command';
import { DigestSet } from './digest-set';
import {
  type GcDriver,
  type GcNamespace,
  MarkError,
  type MarkProgress,
  MarkSets,
  markNamespace,
  type NamespaceMark,
} from './mark';
import { type GcConnection, GRPC_NOT_FOUND, grpcCode, RpcRunner } from './rpc';
import { type DriverSweep, gcSkipReason, type SweepProgress, sweepDriver } from './sweep';

/** The smallest grace period allowed without {@link CollectGarbageOptions.allowShortGrace}: 1 hour. */
export const GC_MIN_GRACE_MS = 3_600_000;
/** The default grace period: 7 days. */
export const GC_DEFAULT_GRACE_MS = 7 * 86_400_000;

/** ArchivalState.ARCHIVAL_STATE_ENABLED of `temporal.api.enums.v1`. */
const ARCHIVAL_STATE_ENABLED = 2;

/** Progress of a gc run. */
export type GcProgress =
  | ({ readonly phase: 'mark' } & MarkProgress)
  | ({ readonly phase: 'sweep'; readonly driverId: string } & SweepProgress);

/** Options of {@link collectGarbage}. */
export interface CollectGarbageOptions {
  /** The Temporal frontend (`Connection` of `@temporalio/client`). */
  connection: GcConnection;
  /** The namespaces to scan, each with the drivers its references may name. At least one. */
  namespaces: readonly GcNamespace[];
  /** The drivers to sweep. */
  drivers: readonly GcDriver[];
  /**
   * Unmarked objects are deleted only if last referenced longer ago than this, counted from the
   * start of the mark phase. Default: 7 days ({@link GC_DEFAULT_GRACE_MS}).
   */
  graceMs?: number;
  /** Allow a grace period under 1 hour ({@link GC_MIN_GRACE_MS}): tests only. Default: `false`. */
  allowShortGrace?: boolean;
  /** Delete the orphans. Default: `false` (a dry run: report them). */
  delete?: boolean;
  /** Scan namespaces whose history or visibility archival is enabled. Default: `false` (refuse). */
  allowArchival?: boolean;
  /** Read every closed execution, not only those with `TemporalExternalPayloadCount > 0`. Default: `false`. */
  allClosed?: boolean;
  /**
   * Every namespace that uses these drivers' stores was scanned: objects of other namespaces and
   * objects without a namespace may be deleted too. Default: `false` (they are reported only).
   */
  allNamespacesScanned?: boolean;
  /**
   * Sweep even where references could not be resolved (a driver name the config lacks, a
   * reference that cannot be read, a claim a driver rejects). Default: `false`: such a namespace
   * (or driver) is not swept, because gc cannot tell which objects those references hold on to.
   */
  ignoreUnresolved?: boolean;
  /** Executions (or schedules, activities) read at once per namespace. Default: 8. */
  concurrency?: number;
  /** Most RPCs per second to the frontend. Default: 100. */
  ratePerSecond?: number;
  /** Deadline of one RPC in milliseconds. Default: 30,000. */
  rpcTimeoutMs?: number;
  /** Attempts of an RPC failing with a transient error. Default: 5. */
  rpcAttempts?: number;
  /** Executions, schedules or activities per listing page. Default: 1,000. */
  listPageSize?: number;
  /** Events per history page. Default: 1,000. */
  historyPageSize?: number;
  /** Objects per delete call. Default: 1,000. */
  deleteBatchSize?: number;
  /** Stops the run (the mark phase fails; a sweep stops between batches). */
  signal?: AbortSignal;
  /** Called as the run advances. */
  onProgress?: (progress: GcProgress) => void;
  /** Called for every orphan found (dry run or not), before it is deleted. */
  onOrphan?: (driverId: string, namespace: string, object: StoredObject) => void;
}

/** What a gc run did: the mark per namespace and the sweep per driver. */
export interface GcReport {
  /** `true` unless `delete` was set. */
  dryRun: boolean;
  /** The grace period in milliseconds. */
  graceMs: number;
  /** When the mark phase started (ISO time). */
  markStartedAt: string;
  /** Unmarked objects last referenced before this (ISO time: mark start − grace) are orphans. */
  cutoff: string;
  /** The mark phase, per namespace. */
  namespaces: NamespaceMark[];
  /** Distinct objects marked (over all drivers) and the memory of the mark sets in bytes. */
  marked: { objects: number; bytes: number };
  /** RPCs made (every attempt) and retries of transient errors. */
  rpc: { calls: number; retries: number };
  /** Milliseconds of the mark phase. */
  markDurationMs: number;
  /** The sweep, per driver. */
  drivers: DriverSweep[];
}

function check(condition: boolean, message: string): void {
  if (!condition) throw new RangeError(message);
}

/**
 * Runs a gc: refuses namespaces with archival enabled (unless allowed), marks every reference in
 * every namespace, then — only if the whole mark phase succeeded — sweeps each driver.
 *
 * @throws RefusedError (the CLI's exit 2) for a namespace that does not exist or has archival enabled.
 * @throws MarkError when the mark phase failed (nothing was deleted).
 * @throws RangeError for invalid options (grace under the minimum, no namespace, …).
 */
export async function collectGarbage(options: CollectGarbageOptions): Promise<GcReport> {
  const graceMs = options.graceMs ?? GC_DEFAULT_GRACE_MS;
  check(Number.isSafeInteger(graceMs) && graceMs >= 0, 'graceMs must be a non-negative integer');
  check(
    graceMs >= GC_MIN_GRACE_MS || options.allowShortGrace === true,
    `the grace period must be at least 1 hour (${GC_MIN_GRACE_MS} ms); a shorter one is only for tests`,
  );
  check(options.namespaces.length > 0, 'at least one namespace is required');
  const concurrency = options.concurrency ?? 8;
  check(Number.isInteger(concurrency) && concurrency >= 1, 'concurrency must be a positive integer');
  const signal = options.signal ?? new AbortController().signal;
  const rpc = new RpcRunner(options.connection, {
    ratePerSecond: options.ratePerSecond,
    timeoutMs: options.rpcTimeoutMs,
    attempts: options.rpcAttempts,
    signal,
  });

  // Namespaces first: a missing one or one with archival is refused before anything is read.
  const standalone = new Map<string, boolean>();
  for (const { name } of options.namespaces) {
    let described: temporal.api.workflowservice.v1.IDescribeNamespaceResponse;
    try {
      described = await rpc.call((s) => s.describeNamespace({ namespace: name }));
    } catch (error) {
      if (grpcCode(error) === GRPC_NOT_FOUND)
        throw new RefusedError(`namespace ${JSON.stringify(name)} does not exist`);
      throw new MarkError(`namespace ${JSON.stringify(name)}: describeNamespace failed: ${String(error)}`, {
        cause: error,
      });
    }
    const history = described.config?.historyArchivalState === ARCHIVAL_STATE_ENABLED;
    const visibility = described.config?.visibilityArchivalState === ARCHIVAL_STATE_ENABLED;
    if ((history || visibility) && options.allowArchival !== true) {
      throw new RefusedError(
        `namespace ${JSON.stringify(name)} has ${history ? 'history' : 'visibility'} archival enabled: archived ` +
          'histories and visibility records can hold references that no scan sees, and gc would delete their ' +
          'payloads. Pass --allow-archival if archived executions never need their payloads.',
      );
    }
    standalone.set(name, described.namespaceInfo?.capabilities?.standaloneActivities === true);
  }

  const markStarted = Date.now();
  const cutoff = new Date(markStarted - graceMs);
  const marks = new MarkSets();
  const scannedRuns = new DigestSet();
  const namespaces: NamespaceMark[] = [];
  for (const namespace of options.namespaces) {
    namespaces.push(
      await markNamespace(rpc, namespace, marks, scannedRuns, {
        concurrency,
        listPageSize: options.listPageSize ?? 1000,
        historyPageSize: options.historyPageSize ?? 1000,
        allClosed: options.allClosed === true,
        standaloneActivities: standalone.get(namespace.name) === true,
        signal,
        onProgress: (p) => options.onProgress?.({ phase: 'mark', ...p }),
      }),
    );
  }
  const markDurationMs = Date.now() - markStarted;

  const skippedNamespaces = new Map<string, string>();
  const invalidByDriver = new Map<string, number>();
  for (const m of namespaces) {
    const unknown = Object.entries(m.unknownDrivers);
    const why: string[] = [];
    if (unknown.length > 0) {
      why.push(
        `references to driver${unknown.length === 1 ? '' : 's'} ${unknown.map(([n]) => JSON.stringify(n)).join(', ')} ` +
          'that the config does not have for this namespace',
      );
    }
    if (m.unreadableReferences > 0) why.push(`${m.unreadableReferences} unreadable reference payload(s)`);
    if (why.length > 0 && options.ignoreUnresolved !== true) skippedNamespaces.set(m.namespace, why.join('; '));
    for (const [id, n] of Object.entries(m.invalidClaims)) invalidByDriver.set(id, (invalidByDriver.get(id) ?? 0) + n);
  }

  const drivers: DriverSweep[] = [];
  const namespaceNames = options.namespaces.map((n) => n.name);
  for (const { id, driver } of options.drivers) {
    let reason = gcSkipReason(driver);
    const invalid = invalidByDriver.get(id) ?? 0;
    if (reason === undefined && invalid > 0 && options.ignoreUnresolved !== true) {
      reason = `${invalid} reference(s) name this driver with a claim it rejects, so gc cannot tell which objects they hold on to`;
    }
    if (reason !== undefined) {
      drivers.push(skipped(id, driver.name, driver.type, reason, options.delete !== true, cutoff));
      continue;
    }
    drivers.push(
      await sweepDriver(id, driver, marks.of(id), {
        cutoff,
        delete: options.delete === true,
        namespaces: namespaceNames,
        skippedNamespaces,
        allNamespacesScanned: options.allNamespacesScanned === true,
        batchSize: options.deleteBatchSize ?? 1000,
        signal,
        onProgress: (p) => options.onProgress?.({ phase: 'sweep', driverId: id, ...p }),
        onOrphan: options.onOrphan && ((ns, o) => options.onOrphan?.(id, ns, o)),
      }),
    );
    if (signal.aborted) break;
  }
  return {
    dryRun: options.delete !== true,
    graceMs,
    markStartedAt: new Date(markStarted).toISOString(),
    cutoff: cutoff.toISOString(),
    namespaces,
    marked: { objects: marks.size, bytes: marks.byteLength },
    rpc: { calls: rpc.calls, retries: rpc.retries },
    markDurationMs,
    drivers,
  };
}

function skipped(
  id: string,
  driverName: string,
  driverType: string,
  reason: string,
  dryRun: boolean,
  cutoff: Date,
): DriverSweep {
  return {
    id,
    driverName,
    driverType,
    status: 'skipped',
    reason,
    dryRun,
    cutoff: cutoff.toISOString(),
    listed: 0,
    listedBytes: 0,
    namespaces: {},
    otherNamespaces: {},
    withoutNamespace: { objects: 0, bytes: 0 },
    unrecognizedKeys: { objects: 0, bytes: 0 },
    errors: [],
    durationMs: 0,
  };
}
