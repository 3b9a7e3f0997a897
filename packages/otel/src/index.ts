/**
 * `@x/storage-driver-otel`: OpenTelemetry traces and metrics for any Temporal External Storage
 * driver — bundled or third-party — and for `@x/storage-codec-server`, with span names and
 * attribute keys aligned with `@temporalio/interceptors-opentelemetry`. `@opentelemetry/api` is
 * its only peer besides core; an application without OpenTelemetry does not install this package
 * and pays nothing.
 *
 * @packageDocumentation
 */
export {
  CodecServerAttributes,
  type CodecServerInstrumentationHook,
  type CodecServerInstrumentationOptions,
  CodecServerMetrics,
  type CodecServerRequestOutcomeLike,
  type CodecServerRequestStartLike,
  codecServerInstrumentation,
  OTHER_NAMESPACE,
} from './codec-server';
export {
  ACTIVITY_ID_ATTR_KEY,
  DURATION_BUCKETS,
  RUN_ID_ATTR_KEY,
  SPAN_DELIMITER,
  StorageAttributes,
  StorageMetrics,
  type StorageOperation,
  StorageSpanName,
  spanName,
  WORKFLOW_ID_ATTR_KEY,
} from './conventions';
export {
  type InstrumentedStorageDriver,
  type InstrumentStorageDriverOptions,
  instrumentStorageDriver,
  isInstrumentedStorageDriver,
  type StorageDriverLifecycleMember,
} from './driver';
export {
  INSTRUMENTATION_SCOPE,
  type InstrumentationWarning,
  type InstrumentationWarningCode,
  type TelemetryOptions,
} from './telemetry';
