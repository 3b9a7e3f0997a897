/**
 * Where spans and metrics go: the tracer and meter of the configured (or global) providers, the
 * instruments created once per meter provider, and the warning hook.
 *
 * @module
 */
import {
  type Counter,
  type Histogram,
  type Meter,
  type MeterProvider,
  metrics,
  type Tracer,
  type TracerProvider,
  trace,
} from '@opentelemetry/api';
import { DURATION_BUCKETS, StorageMetrics } from './conventions';

/** Name of the tracer and meter this package uses (its instrumentation scope). */
export const INSTRUMENTATION_SCOPE = '@x/storage-driver-otel';

// The package's version, for the instrumentation scope (read from the package's own manifest).
const SCOPE_VERSION = (require('../package.json') as { version: string }).version;

/** Why {@link TelemetryOptions.onWarning} was called. */
export type InstrumentationWarningCode =
  /**
   * The driver does not report what its calls did (it is not built on core's
   * `ContentAddressedStorageDriver`): spans and metrics carry what the wrapper measures itself
   * (payload counts, serialized sizes, errors), without distinct objects and dedup hits. Once per
   * wrapped driver.
   */
  | 'no-operation-report'
  /**
   * The driver reports its calls but not which objects its backend already held: no
   * `existing` dedup hits for it. Once per wrapped driver.
   */
  | 'no-dedup-report'
  /**
   * Recording a span or a metric threw (a broken exporter or SDK); the storage call's outcome is
   * unchanged. Once per wrapped driver (or codec-server instrumentation).
   */
  | 'telemetry-failed';

/** One warning of the instrumentation (see {@link TelemetryOptions.onWarning}). */
export interface InstrumentationWarning {
  /** What happened. */
  readonly code: InstrumentationWarningCode;
  /** A sentence for a log line. */
  readonly message: string;
  /** The driver concerned, if any. */
  readonly driverName?: string;
  /** The error behind a `telemetry-failed` warning. */
  readonly cause?: unknown;
}

/** Options shared by {@link instrumentStorageDriver} and {@link codecServerInstrumentation}. */
export interface TelemetryOptions {
  /**
   * Where spans go.
   * @default the global tracer provider (`trace.getTracerProvider()`), looked up on every call, so
   *   a provider registered after wrapping is used
   */
  tracerProvider?: TracerProvider;
  /**
   * Where metrics go.
   * @default the global meter provider (`metrics.getMeterProvider()`), looked up on every call, so
   *   a provider registered after wrapping is used
   */
  meterProvider?: MeterProvider;
  /**
   * Receives the instrumentation's warnings (see {@link InstrumentationWarningCode}), e.g.
   * `(w) => logger.warn(w.message, w)`. Nothing is logged without it. A hook that throws is ignored.
   * @default none
   */
  onWarning?: (warning: InstrumentationWarning) => void;
}

/** The instruments of one meter (created once per meter provider). */
export interface StorageInstruments {
  readonly payloads: Counter;
  readonly bytes: Counter;
  readonly dedupHits: Counter;
  readonly errors: Counter;
  readonly duration: Histogram;
  readonly removed: Counter;
  readonly removedBytes: Counter;
}

const tracers = new WeakMap<TracerProvider, Tracer>();
const meters = new WeakMap<MeterProvider, Meter>();
const storageInstruments = new WeakMap<Meter, StorageInstruments>();

/** The tracer of `provider` (default: the global one), created once. */
export function tracerOf(provider: TracerProvider | undefined): Tracer {
  const p = provider ?? trace.getTracerProvider();
  let tracer = tracers.get(p);
  if (tracer === undefined) {
    tracer = p.getTracer(INSTRUMENTATION_SCOPE, SCOPE_VERSION);
    tracers.set(p, tracer);
  }
  return tracer;
}

/** The meter of `provider` (default: the global one), created once. */
export function meterOf(provider: MeterProvider | undefined): Meter {
  const p = provider ?? metrics.getMeterProvider();
  let meter = meters.get(p);
  if (meter === undefined) {
    meter = p.getMeter(INSTRUMENTATION_SCOPE, SCOPE_VERSION);
    meters.set(p, meter);
  }
  return meter;
}

/** `create(meter)` of `provider`'s meter, made once per meter and kept in `cache`. */
export function perMeter<T>(
  provider: MeterProvider | undefined,
  cache: WeakMap<Meter, T>,
  create: (meter: Meter) => T,
): T {
  const meter = meterOf(provider);
  let found = cache.get(meter);
  if (found === undefined) {
    found = create(meter);
    cache.set(meter, found);
  }
  return found;
}

/** A duration histogram in seconds with {@link DURATION_BUCKETS}. */
export function durationHistogram(meter: Meter, name: string, description: string): Histogram {
  return meter.createHistogram(name, {
    description,
    unit: 's',
    advice: { explicitBucketBoundaries: [...DURATION_BUCKETS] },
  });
}

/** The storage instruments of `provider`'s meter, created once. */
export function storageInstrumentsOf(provider: MeterProvider | undefined): StorageInstruments {
  return perMeter(provider, storageInstruments, (meter) => ({
    payloads: meter.createCounter(StorageMetrics.PAYLOADS, {
      description: 'Payloads stored or retrieved by External Storage drivers',
      unit: '{payload}',
    }),
    bytes: meter.createCounter(StorageMetrics.BYTES, {
      description: 'Serialized bytes of the payloads stored or retrieved by External Storage drivers',
      unit: 'By',
    }),
    dedupHits: meter.createCounter(StorageMetrics.DEDUP_HITS, {
      description: 'Payloads a store did not write: duplicates within the batch, or objects the backend already held',
      unit: '{payload}',
    }),
    errors: meter.createCounter(StorageMetrics.ERRORS, {
      description: 'Failed storage driver calls (and per-object failures of lifecycle calls), by error code',
      unit: '{error}',
    }),
    duration: durationHistogram(meter, StorageMetrics.DURATION, 'Duration of storage driver calls'),
    removed: meter.createCounter(StorageMetrics.REMOVED, {
      description: 'Stored objects removed by delete and deleteExpired (dry runs count nothing)',
      unit: '{object}',
    }),
    removedBytes: meter.createCounter(StorageMetrics.REMOVED_BYTES, {
      description: 'Bytes of the stored objects removed by delete and deleteExpired',
      unit: 'By',
    }),
  }));
}

/** Calls the warning hook at most once per code for one owner; never throws. */
export class Warnings {
  readonly #hook: ((warning: InstrumentationWarning) => void) | undefined;
  readonly #given = new Set<InstrumentationWarningCode>();

  /** @param hook - {@link TelemetryOptions.onWarning}. */
  constructor(hook: ((warning: InstrumentationWarning) => void) | undefined) {
    this.#hook = hook;
  }

  /** Reports `warning` unless one with its code was reported already. */
  once(warning: InstrumentationWarning): void {
    if (this.#hook === undefined || this.#given.has(warning.code)) return;
    this.#given.add(warning.code);
    try {
      this.#hook(warning);
    } catch {
      // A failing log hook must not change a storage call's outcome.
    }
  }
}

/** Checks the options shared by both entry points; returns them. */
export function checkTelemetryOptions(options: unknown, what: string): TelemetryOptions {
  if (options === undefined) return {};
  if (typeof options !== 'object' || options === null) throw new TypeError(`${what}: options must be an object`);
  const { tracerProvider, meterProvider, onWarning } = options as TelemetryOptions;
  if (tracerProvider !== undefined && typeof tracerProvider?.getTracer !== 'function') {
    throw new TypeError(`${what}: tracerProvider must be a TracerProvider`);
  }
  if (meterProvider !== undefined && typeof meterProvider?.getMeter !== 'function') {
    throw new TypeError(`${what}: meterProvider must be a MeterProvider`);
  }
  if (onWarning !== undefined && typeof onWarning !== 'function') {
    throw new TypeError(`${what}: onWarning must be a function`);
  }
  return options as TelemetryOptions;
}
