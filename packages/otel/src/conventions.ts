/**
 * Span names, attribute keys and metric names: one place, exported so that dashboards, alerts and
 * tests can refer to them instead of repeating strings.
 *
 * Span names follow `@temporalio/interceptors-opentelemetry`: `Verb:target` with `:` as the
 * delimiter (`StartWorkflow:OrderWorkflow` there, `StorePayloads:redis` here; the target is the
 * driver's name, the only target a retrieve has). Where a store context carries a workflow or
 * activity, its id and run id go under Temporal's own attribute keys (`temporalWorkflowId`,
 * `run_id`, `temporalActivityId`), so a query for a workflow id finds the storage spans too.
 * Everything else is namespaced `temporal.storage.*`; `error.type` is OpenTelemetry's general
 * error attribute.
 *
 * @module
 */

/** Temporal's delimiter between a span's verb and its target (`SPAN_DELIMITER` of `@temporalio/interceptors-opentelemetry`). */
export const SPAN_DELIMITER = ':';

/** The verbs of the spans this package starts; a span's name is `{verb}:{driver name}`. */
export const StorageSpanName = {
  /** One `store` call of a driver. */
  STORE: 'StorePayloads',
  /** One `retrieve` call of a driver. */
  RETRIEVE: 'RetrievePayloads',
  /** One `delete` call of a driver (lifecycle). */
  DELETE: 'DeletePayloads',
  /** One `deleteExpired` call of a driver (lifecycle). */
  DELETE_EXPIRED: 'DeleteExpiredPayloads',
} as const;

/** One of the {@link StorageSpanName} verbs. */
export type StorageSpanName = (typeof StorageSpanName)[keyof typeof StorageSpanName];

/** What a driver call did: the `temporal.storage.operation` attribute. */
export type StorageOperation = 'store' | 'retrieve' | 'delete' | 'deleteExpired';

/**
 * Temporal's attribute key for a workflow id (`WORKFLOW_ID_ATTR_KEY` of
 * `@temporalio/interceptors-opentelemetry`): set from a store context's workflow target.
 */
export const WORKFLOW_ID_ATTR_KEY = 'temporalWorkflowId';
/**
 * Temporal's attribute key for a workflow run id (`RUN_ID_ATTR_KEY` of
 * `@temporalio/interceptors-opentelemetry`): set from a store context's workflow target.
 */
export const RUN_ID_ATTR_KEY = 'run_id';
/**
 * Temporal's attribute key for an activity id (`ACTIVITY_ID_ATTR_KEY` of
 * `@temporalio/interceptors-opentelemetry`): set from a store context's activity target.
 */
export const ACTIVITY_ID_ATTR_KEY = 'temporalActivityId';

/** Attribute keys of the spans and metrics of this package (besides Temporal's own, above). */
export const StorageAttributes = {
  /** The driver instance's `name` (its routing key in history). Spans and metrics. */
  DRIVER_NAME: 'temporal.storage.driver.name',
  /** The driver's `type` (e.g. `redis`, `aws.s3driver`). Spans. */
  DRIVER_TYPE: 'temporal.storage.driver.type',
  /** `store`, `retrieve`, `delete` or `deleteExpired`. Spans and metrics. */
  OPERATION: 'temporal.storage.operation',
  /** `success` or `error`. Metrics. */
  OUTCOME: 'temporal.storage.outcome',
  /** `true` on a span that had no parent (a worker's storage runs outside any Temporal span). Spans. */
  ROOT: 'temporal.storage.root',
  /** Payloads stored, or claims retrieved. Spans. */
  PAYLOADS: 'temporal.storage.payloads',
  /** Serialized bytes of those payloads. Spans. */
  BYTES: 'temporal.storage.bytes',
  /** Distinct objects written or read (drivers built on core only). Spans. */
  OBJECTS: 'temporal.storage.objects',
  /** Bytes of those distinct objects (drivers built on core only). Spans. */
  OBJECT_BYTES: 'temporal.storage.object_bytes',
  /** Payloads of a store batch that duplicated another of the same batch. Spans. */
  DEDUP_IN_BATCH: 'temporal.storage.dedup.in_batch',
  /** Objects the backend already held (dedup hits), where the driver reports them. Spans. */
  DEDUP_EXISTING: 'temporal.storage.dedup.existing',
  /** `in_batch` or `existing`: which kind of dedup hit a `temporal.storage.dedup_hits` point counts. Metrics. */
  DEDUP_KIND: 'temporal.storage.dedup.kind',
  /** The stable `StorageDriverError` code of a failed call (also in `error.type`). Spans. */
  ERROR_CODE: 'temporal.storage.error.code',
  /** Whether retrying the failed call may succeed. Spans. */
  ERROR_RETRYABLE: 'temporal.storage.error.retryable',
  /** The store context's namespace. Spans. */
  NAMESPACE: 'temporal.namespace',
  /** `workflow` or `activity`: what the store context's target is. Spans. */
  TARGET_KIND: 'temporal.storage.target.kind',
  /** The target's workflow or activity type. Spans. */
  TARGET_TYPE: 'temporal.storage.target.type',
  /** An activity target's run id (standalone activities). Spans. */
  ACTIVITY_RUN_ID: 'temporal.storage.activity.run_id',
  /** Lifecycle spans: objects a `deleteExpired` found expired. */
  SCANNED: 'temporal.storage.lifecycle.scanned',
  /** Lifecycle spans: objects deleted (for a dry run: that would be). */
  REMOVED: 'temporal.storage.lifecycle.removed',
  /** Lifecycle spans: bytes of those objects. */
  REMOVED_BYTES: 'temporal.storage.lifecycle.removed_bytes',
  /** Lifecycle spans: targets of a `delete` that did not exist. */
  MISSING: 'temporal.storage.lifecycle.missing',
  /** Lifecycle spans: targets kept because a store referenced them again. */
  KEPT: 'temporal.storage.lifecycle.kept',
  /** Lifecycle spans: per-object failures the call carried on after. */
  ITEM_ERRORS: 'temporal.storage.lifecycle.errors',
  /** Lifecycle spans: `true` for a dry run. */
  DRY_RUN: 'temporal.storage.lifecycle.dry_run',
  /** Lifecycle spans: `true` when `deleteExpired` stopped at its limit with candidates left. */
  MORE: 'temporal.storage.lifecycle.more',
  /** OpenTelemetry's general error attribute: the error code (or the error's class name). Spans and metrics. */
  ERROR_TYPE: 'error.type',
} as const;

/** Metric names of this package. Durations are in seconds, sizes in bytes (OpenTelemetry's units). */
export const StorageMetrics = {
  /** Counter `{payload}`: payloads stored or retrieved (driver name, operation, outcome). */
  PAYLOADS: 'temporal.storage.payloads',
  /** Counter `By`: serialized bytes stored or retrieved (driver name, operation, outcome). */
  BYTES: 'temporal.storage.bytes',
  /** Counter `{payload}`: dedup hits of stores (driver name, `temporal.storage.dedup.kind`). */
  DEDUP_HITS: 'temporal.storage.dedup_hits',
  /** Counter `{error}`: failed calls (driver name, operation, `error.type`). */
  ERRORS: 'temporal.storage.errors',
  /** Histogram `s`: duration of a call (driver name, operation, outcome). */
  DURATION: 'temporal.storage.duration',
  /** Counter `{object}`: objects removed by `delete` / `deleteExpired` (driver name, operation); dry runs count nothing. */
  REMOVED: 'temporal.storage.removed',
  /** Counter `By`: bytes of those objects (driver name, operation). */
  REMOVED_BYTES: 'temporal.storage.removed_bytes',
} as const;

/**
 * Bucket boundaries (seconds) of the duration histograms: from 1 ms (a Redis hit on loopback)
 * to 60 s (a 50 MiB payload over a slow link).
 */
export const DURATION_BUCKETS: readonly number[] = Object.freeze([
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
]);

/** `{verb}:{target}`, Temporal's span name format. */
export function spanName(verb: string, target: string): string {
  return `${verb}${SPAN_DELIMITER}${target}`;
}
