/**
 * Selectors for composing several drivers in one `ExternalStorage`.
 *
 * @module
 */
import { StorageDriverError, StorageDriverErrorCode } from './errors';
import { encodedPayloadSize } from './proto';
import type { Payload, StorageDriver, StorageDriverSelectContext, StorageDriverSelector } from './types';

/**
 * A selector that also lists every driver it can return, so the same list can be handed to
 * `ExternalStorage({ drivers: selector.drivers, driverSelector: selector })`.
 */
export interface ComposedStorageDriverSelector extends StorageDriverSelector {
  /**
   * Every distinct driver this selector can return, in first-seen order. Each read returns a
   * fresh (mutable) copy, so it can be passed straight to `ExternalStorage({ drivers })`, whose
   * option type is a mutable `StorageDriver[]`.
   */
  readonly drivers: StorageDriver[];
}

/** What a band or rule routes to: a driver, `null` (keep inline), or a nested selector. */
export type SelectorTarget = StorageDriver | ComposedStorageDriverSelector | null;

function config(message: string): StorageDriverError {
  return new StorageDriverError(StorageDriverErrorCode.CONFIG, message);
}

function isDriver(x: unknown): x is StorageDriver {
  return (
    typeof x === 'object' &&
    x !== null &&
    typeof (x as StorageDriver).name === 'string' &&
    typeof (x as StorageDriver).type === 'string' &&
    typeof (x as StorageDriver).store === 'function' &&
    typeof (x as StorageDriver).retrieve === 'function'
  );
}

function collect(targets: SelectorTarget[], where: string): StorageDriver[] {
  const byName = new Map<string, StorageDriver>();
  const add = (d: StorageDriver) => {
    const seen = byName.get(d.name);
    if (seen !== undefined && seen !== d) throw config(`${where}: two different drivers are named '${d.name}'`);
    byName.set(d.name, d);
  };
  for (const t of targets) {
    if (t === null) continue;
    if (typeof t === 'function') {
      if (!Array.isArray((t as ComposedStorageDriverSelector).drivers)) {
        throw config(`${where}: a nested selector must be one built by this module (it lists its drivers)`);
      }
      for (const d of t.drivers) add(d);
    } else if (isDriver(t)) add(t);
    else throw config(`${where}: expected a StorageDriver, a selector from this module, or null`);
  }
  return [...byName.values()];
}

function resolve(target: SelectorTarget, context: StorageDriverSelectContext, payload: Payload): StorageDriver | null {
  if (target === null) return null;
  if (typeof target === 'function') return target(context, payload);
  return target;
}

function withDrivers(fn: StorageDriverSelector, drivers: StorageDriver[]): ComposedStorageDriverSelector {
  const list = [...drivers];
  return Object.defineProperty(fn, 'drivers', {
    get: () => [...list],
    enumerable: true,
  }) as ComposedStorageDriverSelector;
}

/** One band of {@link selectBySize}. */
export interface SizeBand {
  /**
   * Exclusive upper bound on the serialized payload size, in bytes. Omit on the last band only
   * (it then takes everything larger).
   */
  below?: number;
  /** Where payloads in this band go: a driver, `null` to keep them inline, or a nested selector. */
  use: SelectorTarget;
}

/**
 * Routes by serialized `Payload` size (the same measure the SDK compares with
 * `payloadSizeThreshold`) through ordered bands: the first band whose `below` exceeds the size
 * wins. Example: Redis below 1 MiB, S3 above:
 * `selectBySize([{ below: 1 << 20, use: redis }, { use: s3 }])`.
 *
 * @throws StorageDriverError `E_CONFIG` if bands are empty, not strictly ascending, or the last
 *   band has a bound (every size must be routed), or two different drivers share a name.
 */
export function selectBySize(bands: readonly SizeBand[]): ComposedStorageDriverSelector {
  if (!Array.isArray(bands) || bands.length === 0) throw config('selectBySize: at least one band is required');
  let previous = 0;
  const copy = bands.map((b, i) => {
    const last = i === bands.length - 1;
    if (typeof b !== 'object' || b === null || !('use' in b)) throw config(`selectBySize: band ${i} needs 'use'`);
    if (last) {
      if (b.below !== undefined)
        throw config('selectBySize: the last band must not set `below`, so every size is routed');
    } else {
      if (typeof b.below !== 'number' || !Number.isSafeInteger(b.below) || b.below <= previous) {
        throw config(`selectBySize: band ${i} needs an integer 'below' greater than ${previous}`);
      }
      previous = b.below;
    }
    return { below: b.below ?? Number.POSITIVE_INFINITY, use: b.use };
  });
  const drivers = collect(
    copy.map((b) => b.use),
    'selectBySize',
  );
  return withDrivers((context, payload) => {
    const size = encodedPayloadSize(payload);
    const band = copy.find((b) => size < b.below) ?? (copy[copy.length - 1] as { use: SelectorTarget });
    return resolve(band.use, context, payload);
  }, drivers);
}

/** Matches one target field: exact string, any of several strings, a RegExp, or a predicate. */
export type TargetMatcher = string | readonly string[] | RegExp | ((value: string | undefined) => boolean);

/** One rule of {@link selectByTarget}. A rule matches when every criterion it sets matches. */
export interface TargetRule {
  /** Matches `target.namespace`. */
  namespace?: TargetMatcher;
  /** Matches `target.type` of workflow targets only. */
  workflowType?: TargetMatcher;
  /** Matches `target.type` of activity targets only. */
  activityType?: TargetMatcher;
  /** Where matching payloads go: a driver, `null` to keep them inline, or a nested selector. */
  use: SelectorTarget;
}

/** Options of {@link selectByTarget}. */
export interface TargetSelectorOptions {
  /** Rules, tried in order; the first match wins. */
  rules: readonly TargetRule[];
  /** Used when no rule matches (including when the SDK gives no target). Required. */
  fallback: SelectorTarget;
}

function compileMatcher(m: TargetMatcher, where: string): (v: string | undefined) => boolean {
  if (typeof m === 'string') return (v) => v === m;
  if (Array.isArray(m)) {
    if (!m.every((x) => typeof x === 'string')) throw config(`${where}: string arrays only`);
    const set = new Set<string>(m);
    return (v) => v !== undefined && set.has(v);
  }
  if (m instanceof RegExp) {
    if (m.global || m.sticky) throw config(`${where}: RegExp must not use the g or y flag (it would be stateful)`);
    return (v) => v !== undefined && m.test(v);
  }
  if (typeof m === 'function') return (v) => m(v) === true;
  throw config(`${where}: matcher must be a string, string[], RegExp or function`);
}

/**
 * Routes by the workflow/activity that produced the payload: namespace, workflow type, activity
 * type. Example: keep the `billing` namespace in Postgres, everything else in S3:
 * `selectByTarget({ rules: [{ namespace: 'billing', use: postgres }], fallback: s3 })`.
 *
 * @throws StorageDriverError `E_CONFIG` if a rule sets no criterion, a matcher is invalid,
 *   `fallback` is missing, or two different drivers share a name.
 */
export function selectByTarget(options: TargetSelectorOptions): ComposedStorageDriverSelector {
  if (typeof options !== 'object' || options === null || !Array.isArray(options.rules)) {
    throw config('selectByTarget: options.rules must be an array');
  }
  if (!('fallback' in options)) throw config('selectByTarget: options.fallback is required (a driver or null)');
  const rules = options.rules.map((r, i) => {
    const where = `selectByTarget: rule ${i}`;
    if (typeof r !== 'object' || r === null || !('use' in r)) throw config(`${where} needs 'use'`);
    const checks: ((ctx: StorageDriverSelectContext) => boolean)[] = [];
    if (r.namespace !== undefined) {
      const m = compileMatcher(r.namespace, where);
      checks.push((c) => c.target !== undefined && m(c.target.namespace));
    }
    if (r.workflowType !== undefined) {
      const m = compileMatcher(r.workflowType, where);
      checks.push((c) => c.target?.kind === 'workflow' && m(c.target.type));
    }
    if (r.activityType !== undefined) {
      const m = compileMatcher(r.activityType, where);
      checks.push((c) => c.target?.kind === 'activity' && m(c.target.type));
    }
    if (checks.length === 0) throw config(`${where} sets no criterion; use 'fallback' for a catch-all`);
    return { matches: (c: StorageDriverSelectContext) => checks.every((f) => f(c)), use: r.use };
  });
  const drivers = collect([...rules.map((r) => r.use), options.fallback], 'selectByTarget');
  const fallback = options.fallback;
  return withDrivers((context, payload) => {
    const ctx = context ?? {};
    const rule = rules.find((r) => r.matches(ctx));
    return resolve(rule ? rule.use : fallback, ctx, payload);
  }, drivers);
}
