/**
 * The sweep phase of `x-storage gc`: streams one driver's `list()` and deletes (or, in a dry
 * run, reports) the orphans: objects of a scanned namespace whose id is not marked and whose
 * last-referenced time is before the cutoff. Deletes are conditional on that cutoff
 * (`delete(…, { referencedBefore })`), so an object a worker stores again meanwhile is kept.
 *
 * @module
 */
import {
  encodeKeySegment,
  type LifecycleItemError,
  lifecycleCapabilities,
  parseStorageKey,
  type StorageDriver,
  type StorageDriverLifecycle,
  type StoredObject,
  sha256Hex,
} from '@x/storage-driver-core';
import type { DigestSet } from './digest-set';

/** Objects and their bytes. */
export interface ObjectCount {
  /** Number of objects. */
  objects: number;
  /** Their stored bytes. */
  bytes: number;
}

/** What the sweep of one driver saw and did in one namespace. */
export interface NamespaceSweep {
  /** Objects of the namespace listed. */
  objects: number;
  /** Their bytes. */
  bytes: number;
  /** Why this namespace's objects were left alone (unresolved references), if they were. */
  skipped?: string;
  /** Objects whose id was marked: Temporal still references them. */
  referenced: number;
  /** Unmarked objects last referenced after the cutoff (within the grace period): kept. */
  inGrace: number;
  /** Unmarked objects whose last-referenced time the driver cannot tell: never deleted. */
  unknownAge: number;
  /** Unmarked objects last referenced before the cutoff: deleted with `--delete`. */
  orphans: number;
  /** Their bytes. */
  orphanBytes: number;
  /** Orphans deleted. */
  deleted: number;
  /** Bytes freed (the sizes of the objects the driver reports deleted). */
  freedBytes: number;
  /** Orphans a store re-referenced during the run: kept by the conditional delete. */
  kept: number;
  /** Orphans already gone when deleted (expired, deleted by someone else). */
  missing: number;
}

/** The outcome of sweeping one driver. */
export interface DriverSweep {
  /** Driver id in the config file. */
  id: string;
  /** The driver's `name` (what references name). */
  driverName: string;
  /** The driver's `type`. */
  driverType: string;
  /** `done`, `skipped` (with `reason`) or `failed` (with `error`, or per-object `errors`). */
  status: 'done' | 'skipped' | 'failed';
  /** Why the driver was not swept. */
  reason?: string;
  /** Why the sweep failed. */
  error?: { code?: string; message: string };
  /** `true` for a dry run: `deleted`, `kept`, `missing` and `freedBytes` stay 0. */
  dryRun: boolean;
  /** Objects last referenced before this (ISO time) are orphans if unmarked. */
  cutoff: string;
  /** Objects listed in all. */
  listed: number;
  /** Their bytes. */
  listedBytes: number;
  /** Per scanned namespace (every namespace with `allNamespacesScanned`). */
  namespaces: Record<string, NamespaceSweep>;
  /** Objects of namespaces that were not scanned, by namespace: never deleted. */
  otherNamespaces: Record<string, ObjectCount>;
  /** Objects whose key has no namespace (stored without a target): never deleted unless every namespace was scanned. */
  withoutNamespace: ObjectCount;
  /** Objects whose key is not a storage key: never deleted. */
  unrecognizedKeys: ObjectCount;
  /** Per-object delete failures. */
  errors: LifecycleItemError[];
  /** Milliseconds the sweep took. */
  durationMs: number;
}

/** Progress of one driver's sweep. */
export interface SweepProgress {
  /** Objects listed so far. */
  readonly listed: number;
  /** Orphans found so far. */
  readonly orphans: number;
  /** Orphans deleted so far. */
  readonly deleted: number;
  /** Bytes freed so far. */
  readonly freedBytes: number;
}

/** Options of {@link sweepDriver}. */
export interface SweepOptions {
  /** Unmarked objects last referenced before this are orphans. */
  readonly cutoff: Date;
  /** Delete the orphans (otherwise a dry run). */
  readonly delete: boolean;
  /** The scanned namespaces. */
  readonly namespaces: readonly string[];
  /** Namespaces whose objects must be left alone, with the reason. */
  readonly skippedNamespaces: ReadonlyMap<string, string>;
  /** Every namespace using the store was scanned: other namespaces' and namespace-less keys are in scope. */
  readonly allNamespacesScanned: boolean;
  /** Objects per delete call. */
  readonly batchSize: number;
  /** Stops the sweep between batches. */
  readonly signal: AbortSignal;
  /** Called after each listed page of objects and each delete batch. */
  readonly onProgress?: (progress: SweepProgress) => void;
  /** Called for every orphan (before it is deleted). */
  readonly onOrphan?: (namespace: string, object: StoredObject) => void;
}

/** Why a driver cannot be swept by gc, from its capabilities; `undefined` if it can. */
export function gcSkipReason(driver: StorageDriver): string | undefined {
  const caps = lifecycleCapabilities(driver);
  const d = driver as Partial<StorageDriverLifecycle>;
  if (!caps.list || typeof d.list !== 'function' || typeof d.objectIdOf !== 'function') {
    return 'the driver cannot list its objects (capabilities.list)';
  }
  if (!caps.delete || typeof d.delete !== 'function') return 'the driver cannot delete objects (capabilities.delete)';
  if (caps.lastReferenced === 'none') return 'the driver cannot tell when an object was last referenced';
  return undefined;
}

/** The namespace segments a scanned namespace's keys may carry, mapped to the namespace. */
function namespaceSegments(namespaces: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const ns of namespaces) {
    const segment = encodeKeySegment(ns);
    out.set(segment, ns);
    // Keys of a namespace too long for the backend's key limit (core's fitStorageKey).
    out.set(`%7E${sha256Hex(new TextEncoder().encode(segment))}`, ns);
  }
  return out;
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

function emptyNamespace(): NamespaceSweep {
  return {
    objects: 0,
    bytes: 0,
    referenced: 0,
    inGrace: 0,
    unknownAge: 0,
    orphans: 0,
    orphanBytes: 0,
    deleted: 0,
    freedBytes: 0,
    kept: 0,
    missing: 0,
  };
}

const NO_NAMESPACE = '(no namespace)';

/**
 * Sweeps one driver against its mark set. Never throws for the driver's own failures: they are
 * the outcome's `error` (listing or a whole delete call failed) or `errors` (per object).
 */
export async function sweepDriver(
  id: string,
  driver: StorageDriver,
  marks: DigestSet,
  options: SweepOptions,
): Promise<DriverSweep> {
  const started = Date.now();
  const outcome: DriverSweep = {
    id,
    driverName: driver.name,
    driverType: driver.type,
    status: 'done',
    dryRun: !options.delete,
    cutoff: options.cutoff.toISOString(),
    listed: 0,
    listedBytes: 0,
    namespaces: Object.create(null),
    otherNamespaces: Object.create(null),
    withoutNamespace: { objects: 0, bytes: 0 },
    unrecognizedKeys: { objects: 0, bytes: 0 },
    errors: [],
    durationMs: 0,
  };
  for (const ns of options.namespaces) {
    outcome.namespaces[ns] = { ...emptyNamespace(), ...skipField(options.skippedNamespaces.get(ns)) };
  }
  const lifecycle = driver as StorageDriver & Required<Pick<StorageDriverLifecycle, 'list' | 'delete'>>;
  const segments = namespaceSegments(options.namespaces);
  const cutoff = options.cutoff.getTime();
  const batches = new Map<string, StoredObject[]>();
  let orphans = 0;
  let deleted = 0;
  let freedBytes = 0;
  const progress = () => options.onProgress?.({ listed: outcome.listed, orphans, deleted, freedBytes });
  const otherNamespace = (name: string): ObjectCount => {
    const count = outcome.otherNamespaces[name] ?? { objects: 0, bytes: 0 };
    outcome.otherNamespaces[name] = count;
    return count;
  };

  const flush = async (ns: string): Promise<void> => {
    const batch = batches.get(ns);
    if (batch === undefined || batch.length === 0) return;
    batches.set(ns, []);
    const stats = outcome.namespaces[ns] as NamespaceSweep;
    const result = await lifecycle.delete(batch, {
      referencedBefore: options.cutoff,
      signal: options.signal,
    });
    const bytes = result.deletedBytes;
    stats.deleted += result.deleted;
    stats.kept += result.kept;
    stats.missing += result.missing;
    stats.freedBytes += bytes;
    deleted += result.deleted;
    freedBytes += bytes;
    outcome.errors.push(...result.errors);
    progress();
  };

  try {
    for await (const object of lifecycle.list({ signal: options.signal })) {
      outcome.listed++;
      outcome.listedBytes += object.size;
      if (outcome.listed % 1000 === 0) progress();
      let segment: string | undefined;
      try {
        segment = parseStorageKey(object.key, { canonical: false }).namespace;
      } catch {
        outcome.unrecognizedKeys.objects++;
        outcome.unrecognizedKeys.bytes += object.size;
        continue;
      }
      let ns = segment === undefined ? undefined : segments.get(segment);
      if (ns === undefined) {
        if (!options.allNamespacesScanned) {
          const count = segment === undefined ? outcome.withoutNamespace : otherNamespace(decodeSegment(segment));
          count.objects++;
          count.bytes += object.size;
          continue;
        }
        ns = segment === undefined ? NO_NAMESPACE : decodeSegment(segment);
        outcome.namespaces[ns] ??= emptyNamespace();
      }
      const stats = outcome.namespaces[ns] as NamespaceSweep;
      stats.objects++;
      stats.bytes += object.size;
      if (stats.skipped !== undefined) continue;
      if (marks.has(object.id)) stats.referenced++;
      else if (object.lastReferenced === undefined) stats.unknownAge++;
      else if (object.lastReferenced.getTime() >= cutoff) stats.inGrace++;
      else {
        stats.orphans++;
        stats.orphanBytes += object.size;
        orphans++;
        options.onOrphan?.(ns, object);
        if (options.delete) {
          const batch = batches.get(ns) ?? [];
          batches.set(ns, batch);
          batch.push(object);
          if (batch.length >= options.batchSize) await flush(ns);
        }
      }
    }
    for (const ns of batches.keys()) await flush(ns);
    progress();
    if (outcome.errors.length > 0) outcome.status = 'failed';
  } catch (error) {
    const e = error as { code?: unknown; message?: unknown };
    outcome.status = 'failed';
    outcome.error = { ...(typeof e?.code === 'string' ? { code: e.code } : {}), message: String(e?.message ?? error) };
  }
  outcome.durationMs = Date.now() - started;
  return outcome;
}

function skipField(reason: string | undefined): { skipped?: string } {
  return reason === undefined ? {} : { skipped: reason };
}
