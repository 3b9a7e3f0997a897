/**
 * {@link instrumentStorageDriver}: a storage driver with the same name and type whose every call
 * makes a span and records metrics, for any driver — bundled or third-party.
 *
 * @module
 */
import {
  type Attributes,
  INVALID_SPAN_CONTEXT,
  isSpanContextValid,
  context as otelContext,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';
import {
  type DeleteExpiredOptions,
  type DeleteExpiredResult,
  type DeleteStoredObjectsOptions,
  type DeleteStoredObjectsResult,
  encodedPayloadSize,
  isStorageDriverError,
  type LifecycleItemError,
  type Payload,
  STORAGE_OPERATION_REPORT,
  type StorageDriver,
  type StorageDriverClaim,
  type StorageDriverLifecycle,
  type StorageDriverRetrieveContext,
  type StorageDriverStoreContext,
  type StorageDriverTargetInfo,
  type StorageOperationReport,
  type StorageOperationReporter,
  type StoredObjectTarget,
} from '@x/storage-driver-core';
import {
  StorageAttributes as A,
  ACTIVITY_ID_ATTR_KEY,
  RUN_ID_ATTR_KEY,
  type StorageOperation,
  StorageSpanName,
  spanName,
  WORKFLOW_ID_ATTR_KEY,
} from './conventions';
import {
  checkTelemetryOptions,
  type StorageInstruments,
  storageInstrumentsOf,
  type TelemetryOptions,
  tracerOf,
  Warnings,
} from './telemetry';

/** Options of {@link instrumentStorageDriver}. */
export interface InstrumentStorageDriverOptions extends TelemetryOptions {}

/** The members of the lifecycle surface (DESIGN §8) the wrapper forwards, where the driver has them. */
export type StorageDriverLifecycleMember = keyof StorageDriverLifecycle;

/**
 * What {@link instrumentStorageDriver} returns: a `StorageDriver` with the wrapped driver's `name`
 * and `type`, and exactly the lifecycle members the wrapped driver has (`capabilities`, `list`,
 * `objectIdOf`, `delete`, `deleteExpired`, `close`), so `lifecycleCapabilities()` and the CLI see the
 * same driver.
 */
export type InstrumentedStorageDriver<D extends StorageDriver = StorageDriver> = StorageDriver &
  Pick<D, Extract<keyof D, StorageDriverLifecycleMember>> & {
    /** The wrapped driver (for its own methods, e.g. `ensureSchema`; calls made on it are not instrumented). */
    readonly instrumented: D;
  };

const INSTRUMENTED = Symbol.for('@x/storage-driver-otel/instrumented');

/** `success`, `error`, or `aborted` (`E_ABORTED`: the caller or a failing sibling aborted it). */
type Outcome = 'success' | 'error' | 'aborted';

/** What the wrapper knows about a failed call. */
interface Failure {
  readonly type: string;
  readonly code: string | undefined;
  readonly retryable: boolean | undefined;
  readonly message: string;
  readonly aborted: boolean;
}

function failureOf(error: unknown): Failure {
  if (isStorageDriverError(error)) {
    return {
      type: error.code,
      code: error.code,
      retryable: error.retryable,
      message: error.message,
      aborted: error.code === 'E_ABORTED',
    };
  }
  const name = error instanceof Error ? error.constructor.name || error.name : undefined;
  return {
    type: name && name !== 'Object' ? name : '_OTHER',
    code: undefined,
    retryable: undefined,
    message: error instanceof Error ? error.message : String(error),
    aborted: false,
  };
}

function reporterOf(context: unknown): StorageOperationReporter | undefined {
  if (typeof context !== 'object' || context === null) return undefined;
  const reporter = (context as Record<symbol, unknown>)[STORAGE_OPERATION_REPORT];
  return typeof reporter === 'function' ? (reporter as StorageOperationReporter) : undefined;
}

/** Span attributes of a store context's target: Temporal's keys for ids, ours for the rest. */
function targetAttributes(target: StorageDriverTargetInfo | undefined, into: Attributes): void {
  if (typeof target !== 'object' || target === null) return;
  if (typeof target.namespace === 'string') into[A.NAMESPACE] = target.namespace;
  if (target.kind === 'workflow' || target.kind === 'activity') into[A.TARGET_KIND] = target.kind;
  if (typeof target.type === 'string') into[A.TARGET_TYPE] = target.type;
  if (target.kind === 'workflow') {
    if (typeof target.id === 'string') into[WORKFLOW_ID_ATTR_KEY] = target.id;
    if (typeof target.runId === 'string') into[RUN_ID_ATTR_KEY] = target.runId;
  } else if (target.kind === 'activity') {
    if (typeof target.id === 'string') into[ACTIVITY_ID_ATTR_KEY] = target.id;
    if (typeof target.runId === 'string') into[A.ACTIVITY_RUN_ID] = target.runId;
  }
}

/** Serialized size of payloads the wrapper measures itself (a third-party driver); malformed ones count 0. */
function sizeOf(payloads: unknown): number {
  if (!Array.isArray(payloads)) return 0;
  let total = 0;
  for (const p of payloads) {
    try {
      total += encodedPayloadSize(p as Payload);
    } catch {
      // Not a Payload: the driver rejects it; nothing to count.
    }
  }
  return total;
}

/** What a lifecycle call's result means for telemetry: removals to count, span attributes. */
interface LifecycleSummary {
  readonly removed: number;
  readonly removedBytes: number;
  readonly errors: readonly LifecycleItemError[];
  readonly attributes: Attributes;
}

/** One instrumented call in flight: its span, its start, and the telemetry it records into. */
interface Call {
  readonly span: Span;
  readonly started: number;
  readonly instruments: StorageInstruments;
  readonly operation: StorageOperation;
}

/**
 * Wraps a storage driver — bundled (built on core's `ContentAddressedStorageDriver`) or
 * third-party (any object with `name`, `type`, `store` and `retrieve`) — so that every `store`,
 * `retrieve`, `delete` and `deleteExpired` call makes an OpenTelemetry span and records metrics
 * (see the README for names and attributes). The span is the active context while the driver
 * calls its backend client, so the client's own auto-instrumentation (AWS SDK, ioredis, pg)
 * nests under it; its parent is the active context of the caller (a Temporal client call's
 * span), or none, and then it is a root span marked `temporal.storage.root`. Everything else
 * (`list`, `objectIdOf`, `capabilities`, `close`) is forwarded as it is. Results and errors are
 * the wrapped driver's, unchanged; telemetry that fails never changes them.
 *
 * Pass the returned driver where the wrapped one went (`ExternalStorage({ drivers })`, a codec
 * server's namespace, an `x-storage` JS config). Drivers built on core also report distinct
 * objects and dedup hits; for others the wrapper counts payloads and serialized bytes itself.
 *
 * @param driver - the driver to instrument.
 * @param options - providers (default: the global ones) and the warning hook.
 * @returns a driver with the same `name` and `type`, and the same lifecycle members.
 * @throws TypeError if `driver` is not a storage driver, is already instrumented (every call would
 *   be counted twice), or an option has the wrong type.
 */
export function instrumentStorageDriver<D extends StorageDriver>(
  driver: D,
  options: InstrumentStorageDriverOptions = {},
): InstrumentedStorageDriver<D> {
  if (
    typeof driver !== 'object' ||
    driver === null ||
    typeof driver.store !== 'function' ||
    typeof driver.retrieve !== 'function' ||
    typeof driver.name !== 'string' ||
    typeof driver.type !== 'string'
  ) {
    throw new TypeError('instrumentStorageDriver: driver must be a StorageDriver (name, type, store, retrieve)');
  }
  if ((driver as unknown as Record<symbol, unknown>)[INSTRUMENTED] === true) {
    throw new TypeError(`instrumentStorageDriver: driver ${driver.name} is already instrumented`);
  }
  return new InstrumentedDriver(
    driver,
    checkTelemetryOptions(options, 'instrumentStorageDriver'),
  ) as unknown as InstrumentedStorageDriver<D>;
}

/** Whether `driver` was returned by {@link instrumentStorageDriver}. */
export function isInstrumentedStorageDriver(driver: unknown): driver is InstrumentedStorageDriver {
  return typeof driver === 'object' && driver !== null && (driver as Record<symbol, unknown>)[INSTRUMENTED] === true;
}

class InstrumentedDriver<D extends StorageDriver> implements StorageDriver {
  readonly name: string;
  readonly type: string;
  readonly instrumented: D;
  readonly #options: TelemetryOptions;
  readonly #warnings: Warnings;
  /** Attributes every span and metric point of this driver carries. */
  readonly #metricBase: Attributes;

  constructor(driver: D, options: TelemetryOptions) {
    this.name = driver.name;
    this.type = driver.type;
    this.instrumented = driver;
    this.#options = options;
    this.#warnings = new Warnings(options.onWarning);
    this.#metricBase = { [A.DRIVER_NAME]: driver.name };
    Object.defineProperty(this, INSTRUMENTED, { value: true });
    this.#forwardLifecycle(driver as D & Partial<StorageDriverLifecycle>);
  }

  store(context: StorageDriverStoreContext, payloads: Payload[]): Promise<StorageDriverClaim[]> {
    const attributes: Attributes = {};
    targetAttributes(context?.target, attributes);
    return this.#payloadCall('store', StorageSpanName.STORE, context, attributes, payloads, (ctx) =>
      this.instrumented.store(ctx as StorageDriverStoreContext, payloads),
    );
  }

  retrieve(context: StorageDriverRetrieveContext, claims: StorageDriverClaim[]): Promise<Payload[]> {
    return this.#payloadCall('retrieve', StorageSpanName.RETRIEVE, context, {}, claims, (ctx) =>
      this.instrumented.retrieve(ctx as StorageDriverRetrieveContext, claims),
    );
  }

  /** A `store` or `retrieve` through a span, with the operation report asked for and recorded. */
  async #payloadCall<T>(
    operation: 'store' | 'retrieve',
    verb: string,
    context: StorageDriverStoreContext | StorageDriverRetrieveContext,
    attributes: Attributes,
    input: readonly unknown[],
    run: (context: object) => Promise<T[]>,
  ): Promise<T[]> {
    let report: StorageOperationReport | undefined;
    const outer = reporterOf(context);
    const ctx = {
      ...context,
      [STORAGE_OPERATION_REPORT]: (r: StorageOperationReport) => {
        report = r;
        outer?.(r);
      },
    };
    const call = this.#start(operation, verb, attributes);
    let result: T[];
    try {
      result = await otelContext.with(trace.setSpan(otelContext.active(), call.span), run, undefined, ctx);
    } catch (error) {
      this.#finishPayloadCall(call, report, input, undefined, error);
      throw error;
    }
    this.#finishPayloadCall(call, report, input, result, undefined);
    return result;
  }

  /** Starts a span (child of the active context, or a marked root), never throwing. */
  #start(operation: StorageOperation, verb: string, attributes: Attributes): Call {
    const started = performance.now();
    let span: Span;
    let instruments: StorageInstruments;
    try {
      instruments = storageInstrumentsOf(this.#options.meterProvider);
      const parent = trace.getSpan(otelContext.active());
      attributes[A.DRIVER_NAME] = this.name;
      attributes[A.DRIVER_TYPE] = this.type;
      attributes[A.OPERATION] = operation;
      if (parent === undefined || !isSpanContextValid(parent.spanContext())) attributes[A.ROOT] = true;
      span = tracerOf(this.#options.tracerProvider).startSpan(spanName(verb, this.name), {
        kind: SpanKind.INTERNAL,
        attributes,
      });
    } catch (error) {
      this.#telemetryFailed(error);
      span = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);
      instruments = NOOP_INSTRUMENTS;
    }
    return { span, started, instruments, operation };
  }

  #finishPayloadCall(
    call: Call,
    report: StorageOperationReport | undefined,
    input: readonly unknown[],
    output: readonly unknown[] | undefined,
    error: unknown,
  ): void {
    try {
      const { span, instruments, operation } = call;
      const failure = error === undefined ? undefined : failureOf(error);
      const payloads = report?.payloads ?? (Array.isArray(input) ? input.length : 0);
      // Bytes: the driver's report, else measured here — a store's input, a retrieve's output.
      let bytes: number;
      if (report !== undefined) bytes = report.bytes;
      else if (operation === 'store') bytes = sizeOf(input);
      else bytes = output === undefined ? 0 : sizeOf(output);
      const attributes: Attributes = { [A.PAYLOADS]: payloads, [A.BYTES]: bytes };
      if (report !== undefined) {
        attributes[A.OBJECTS] = report.objects;
        attributes[A.OBJECT_BYTES] = report.objectBytes;
        if (operation === 'store') attributes[A.DEDUP_IN_BATCH] = report.inBatchDuplicates;
        if (report.existing !== undefined) attributes[A.DEDUP_EXISTING] = report.existing;
      }
      span.setAttributes(attributes);
      const outcome = this.#endSpan(span, failure);
      const point = { ...this.#metricBase, [A.OPERATION]: operation, [A.OUTCOME]: outcome };
      instruments.payloads.add(payloads, point);
      instruments.bytes.add(bytes, point);
      instruments.duration.record((performance.now() - call.started) / 1000, point);
      if (failure !== undefined) {
        instruments.errors.add(1, { ...this.#metricBase, [A.OPERATION]: operation, [A.ERROR_TYPE]: failure.type });
      } else if (operation === 'store' && report !== undefined) {
        instruments.dedupHits.add(report.inBatchDuplicates, { ...this.#metricBase, [A.DEDUP_KIND]: 'in_batch' });
        if (report.existing !== undefined) {
          instruments.dedupHits.add(report.existing, { ...this.#metricBase, [A.DEDUP_KIND]: 'existing' });
        }
      }
      if (failure === undefined && payloads > 0) this.#noticeReport(operation === 'store', report);
    } catch (e) {
      this.#telemetryFailed(e);
    }
  }

  /** Sets the span's status (and error attributes) and ends it; returns the metric outcome. */
  #endSpan(span: Span, failure: Failure | undefined): Outcome {
    if (failure === undefined) {
      span.setStatus({ code: SpanStatusCode.OK });
      span.end();
      return 'success';
    }
    const attributes: Attributes = { [A.ERROR_TYPE]: failure.type };
    if (failure.code !== undefined) attributes[A.ERROR_CODE] = failure.code;
    if (failure.retryable !== undefined) attributes[A.ERROR_RETRYABLE] = failure.retryable;
    span.setAttributes(attributes);
    span.recordException({ name: failure.type, message: failure.message });
    // An abort is the caller's (or a failing sibling driver's) doing, not this driver's failure:
    // the span keeps status UNSET, as Temporal's interceptors do for benign failures.
    if (failure.aborted) {
      span.end();
      return 'aborted';
    }
    span.setStatus({ code: SpanStatusCode.ERROR, message: failure.message });
    span.end();
    return 'error';
  }

  #noticeReport(store: boolean, report: StorageOperationReport | undefined): void {
    if (report === undefined) {
      this.#warnings.once({
        code: 'no-operation-report',
        driverName: this.name,
        message: `Storage driver ${this.name} (${this.type}) does not report its calls (it is not built on @x/storage-driver-core's ContentAddressedStorageDriver): its spans and metrics carry payload counts, serialized sizes and errors, but no distinct objects or dedup hits`,
      });
    } else if (store && report.existing === undefined) {
      this.#warnings.once({
        code: 'no-dedup-report',
        driverName: this.name,
        message: `Storage driver ${this.name} (${this.type}) does not report which objects its backend already held: no dedup hits of kind "existing" are recorded for it`,
      });
    }
  }

  #telemetryFailed(error: unknown): void {
    this.#warnings.once({
      code: 'telemetry-failed',
      driverName: this.name,
      cause: error,
      message: `Recording telemetry for storage driver ${this.name} failed (the storage call is unaffected): ${error instanceof Error ? error.message : String(error)}`,
    });
  }

  /** Defines the lifecycle members the wrapped driver has, and only those. */
  #forwardLifecycle(driver: D & Partial<StorageDriverLifecycle>): void {
    const define = (name: StorageDriverLifecycleMember, descriptor: PropertyDescriptor) =>
      Object.defineProperty(this, name, { configurable: true, enumerable: false, ...descriptor });
    if ('capabilities' in driver) define('capabilities', { get: () => driver.capabilities });
    if (typeof driver.list === 'function') {
      const list = driver.list;
      define('list', { value: (options?: Parameters<typeof list>[0]) => list.call(driver, options) });
    }
    if (typeof driver.objectIdOf === 'function') {
      const objectIdOf = driver.objectIdOf;
      define('objectIdOf', {
        value: (claim: Parameters<typeof objectIdOf>[0]) => objectIdOf.call(driver, claim),
      });
    }
    if (typeof driver.close === 'function') {
      const close = driver.close;
      define('close', { value: () => close.call(driver) });
    }
    if (typeof driver.delete === 'function') {
      const del = driver.delete;
      define('delete', {
        value: (targets: readonly StoredObjectTarget[], options?: DeleteStoredObjectsOptions) =>
          this.#lifecycleCall(
            'delete',
            StorageSpanName.DELETE,
            { [A.OBJECTS]: Array.isArray(targets) ? targets.length : 0 },
            () => del.call(driver, targets, options),
            (r: DeleteStoredObjectsResult) => ({
              removed: r.deleted,
              removedBytes: r.deletedBytes,
              errors: r.errors,
              attributes: {
                [A.REMOVED]: r.deleted,
                [A.REMOVED_BYTES]: r.deletedBytes,
                [A.MISSING]: r.missing,
                [A.KEPT]: r.kept,
                [A.ITEM_ERRORS]: r.errors.length,
              },
            }),
          ),
      });
    }
    if (typeof driver.deleteExpired === 'function') {
      const deleteExpired = driver.deleteExpired;
      define('deleteExpired', {
        value: (options?: DeleteExpiredOptions) => {
          const dryRun = options?.dryRun === true;
          return this.#lifecycleCall(
            'deleteExpired',
            StorageSpanName.DELETE_EXPIRED,
            { [A.DRY_RUN]: dryRun },
            () => deleteExpired.call(driver, options),
            (r: DeleteExpiredResult) => ({
              removed: dryRun ? 0 : r.removed,
              removedBytes: dryRun ? 0 : r.removedBytes,
              errors: r.errors,
              attributes: {
                [A.SCANNED]: r.scanned,
                [A.REMOVED]: r.removed,
                [A.REMOVED_BYTES]: r.removedBytes,
                [A.MORE]: r.more,
                [A.ITEM_ERRORS]: r.errors.length,
              },
            }),
          );
        },
      });
    }
  }

  /** A `delete` or `deleteExpired` through a span; what it removed goes to the removal counters. */
  async #lifecycleCall<R>(
    operation: 'delete' | 'deleteExpired',
    verb: string,
    attributes: Attributes,
    run: () => Promise<R>,
    summarize: (result: R) => LifecycleSummary,
  ): Promise<R> {
    const call = this.#start(operation, verb, attributes);
    let result: R;
    try {
      result = await otelContext.with(trace.setSpan(otelContext.active(), call.span), run);
    } catch (error) {
      this.#finishLifecycleCall(call, undefined, error);
      throw error;
    }
    this.#finishLifecycleCall(call, summarize, result);
    return result;
  }

  #finishLifecycleCall<R>(
    call: Call,
    summarize: ((result: R) => LifecycleSummary) | undefined,
    resultOrError: R | unknown,
  ): void {
    try {
      const { span, instruments, operation } = call;
      const base = { ...this.#metricBase, [A.OPERATION]: operation };
      let failure: Failure | undefined;
      if (summarize === undefined) {
        failure = failureOf(resultOrError);
        instruments.errors.add(1, { ...base, [A.ERROR_TYPE]: failure.type });
      } else {
        const summary = summarize(resultOrError as R);
        span.setAttributes(summary.attributes);
        instruments.removed.add(summary.removed, base);
        instruments.removedBytes.add(summary.removedBytes, base);
        for (const e of summary.errors) instruments.errors.add(1, { ...base, [A.ERROR_TYPE]: e.code });
      }
      const outcome = this.#endSpan(span, failure);
      instruments.duration.record((performance.now() - call.started) / 1000, { ...base, [A.OUTCOME]: outcome });
    } catch (e) {
      this.#telemetryFailed(e);
    }
  }
}

const noop = { add() {}, record() {} } as unknown as StorageInstruments['payloads'] & StorageInstruments['duration'];
/** Instruments that record nothing: what a call uses when creating the real ones threw. */
const NOOP_INSTRUMENTS: StorageInstruments = {
  payloads: noop,
  bytes: noop,
  dedupHits: noop,
  errors: noop,
  duration: noop,
  removed: noop,
  removedBytes: noop,
};
