/**
 * {@link codecServerInstrumentation}: OpenTelemetry request spans and metrics for
 * `@x/storage-codec-server`, through its `instrumentation` option. The codec server has no
 * dependency on OpenTelemetry; this module implements its hook's shape structurally (a
 * compile-time test proves the two agree).
 *
 * @module
 */
import {
  type Attributes,
  type Context,
  type Counter,
  type Histogram,
  isSpanContextValid,
  type Meter,
  context as otelContext,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';
import {
  checkTelemetryOptions,
  durationHistogram,
  perMeter,
  type TelemetryOptions,
  tracerOf,
  Warnings,
} from './telemetry';

/** Attribute keys of the codec server's spans and metrics. */
export const CodecServerAttributes = {
  /** HTTP method (`POST`, `OPTIONS`; anything unusual as `_OTHER`). Spans and metrics. */
  METHOD: 'http.request.method',
  /** The route: `/encode`, `/decode` or `/download` (absent for any other path). Spans and metrics. */
  ROUTE: 'http.route',
  /** HTTP status of the response. Spans and metrics. */
  STATUS: 'http.response.status_code',
  /**
   * The request's namespace. On spans as sent; on metrics only a namespace of the `namespaces`
   * option, any other as `_other` (clients choose `X-Namespace`: it must not mint metric series).
   */
  NAMESPACE: 'temporal.namespace',
  /** The codec server's error code of a failed request (`E_UNKNOWN_NAMESPACE`, `E_NOT_FOUND`…). Spans. */
  ERROR_CODE: 'temporal.codec_server.error.code',
  /** OpenTelemetry's error attribute: the error code of a 5xx response. Spans. */
  ERROR_TYPE: 'error.type',
  /** Payloads in the request. Spans. */
  PAYLOADS: 'temporal.storage.payloads',
  /** Bytes of the payloads stored or retrieved. Spans. */
  BYTES: 'temporal.storage.bytes',
} as const;

/** Metric names of the codec server instrumentation. */
export const CodecServerMetrics = {
  /** Histogram `s`: request duration (method, route, status, namespace). */
  DURATION: 'temporal.codec_server.request.duration',
  /** Counter `{payload}`: payloads in requests (method, route, status, namespace). */
  PAYLOADS: 'temporal.codec_server.payloads',
} as const;

/** The namespace attribute of metric points for namespaces that are not configured. */
export const OTHER_NAMESPACE = '_other';

const KNOWN_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']);

/**
 * What the codec server tells the hook when a request arrives: `CodecServerRequestStart` of
 * `@x/storage-codec-server`, of which this module needs only these members.
 */
export interface CodecServerRequestStartLike {
  /** The request; its headers may carry a W3C `traceparent`. */
  readonly request: { readonly headers: Readonly<Record<string, string | string[] | undefined>> };
  /** HTTP method, upper case. */
  readonly method: string;
  /** The route, or `undefined`. */
  readonly route: string | undefined;
}

/** How a request ended: `CodecServerRequestOutcome` of `@x/storage-codec-server`. */
export interface CodecServerRequestOutcomeLike {
  /** HTTP status of the response. */
  readonly status: number;
  /** Error code of a failed request. */
  readonly code: string | undefined;
  /** The route, or `undefined`. */
  readonly route: string | undefined;
  /** The request's namespace, once known. */
  readonly namespace: string | undefined;
  /** Whether the namespace is one of the configured `namespaces`. */
  readonly namespaceConfigured: boolean;
  /** Payloads in the request body. */
  readonly payloads: number;
  /** Bytes stored or retrieved. */
  readonly bytes: number;
}

/** The codec server's `instrumentation` hook (`CodecServerInstrumentation` of `@x/storage-codec-server`). */
export type CodecServerInstrumentationHook = (
  request: CodecServerRequestStartLike,
  handle: () => Promise<CodecServerRequestOutcomeLike>,
) => Promise<void>;

/** Options of {@link codecServerInstrumentation}. */
export interface CodecServerInstrumentationOptions extends TelemetryOptions {}

interface CodecServerInstruments {
  readonly duration: Histogram;
  readonly payloads: Counter;
}

const instrumentsByMeter = new WeakMap<Meter, CodecServerInstruments>();

/**
 * OpenTelemetry for `@x/storage-codec-server`: pass the result as its `instrumentation` option.
 * Every request but `/healthz` gets a span named `{method} {route}` (`POST /decode`) with the
 * route, namespace, status, payload count and bytes; it is a child of the active span where an
 * HTTP server instrumentation made one (kind `INTERNAL`), else of a W3C `traceparent` the request
 * carries (kind `SERVER`), else a root (kind `SERVER`). The drivers' spans (drivers wrapped with
 * {@link instrumentStorageDriver}) nest under it. A 5xx response sets the status `ERROR`. Metrics:
 * the request duration histogram and a payload counter, by method, route, status and namespace
 * (only configured namespaces by name; any other as `_other`).
 *
 * @param options - providers (default: the global ones) and the warning hook.
 * @throws TypeError if an option has the wrong type.
 */
export function codecServerInstrumentation(
  options: CodecServerInstrumentationOptions = {},
): CodecServerInstrumentationHook {
  const opts = checkTelemetryOptions(options, 'codecServerInstrumentation');
  const warnings = new Warnings(opts.onWarning);
  const failed = (error: unknown) =>
    warnings.once({
      code: 'telemetry-failed',
      cause: error,
      message: `Recording codec server telemetry failed (the request is unaffected): ${error instanceof Error ? error.message : String(error)}`,
    });

  return async (request, handle) => {
    const started = performance.now();
    let span: Span | undefined;
    let parent: Context = otelContext.active();
    try {
      const method = KNOWN_METHODS.has(request.method) ? request.method : '_OTHER';
      const route = request.route === undefined ? undefined : `/${request.route}`;
      const active = trace.getSpan(parent);
      const nested = active !== undefined && isSpanContextValid(active.spanContext());
      if (!nested) parent = propagation.extract(ROOT_CONTEXT, request.request.headers);
      const attributes: Attributes = { [CodecServerAttributes.METHOD]: method };
      if (route !== undefined) attributes[CodecServerAttributes.ROUTE] = route;
      span = tracerOf(opts.tracerProvider).startSpan(
        route === undefined ? method : `${method} ${route}`,
        { kind: nested ? SpanKind.INTERNAL : SpanKind.SERVER, attributes },
        parent,
      );
    } catch (error) {
      failed(error);
    }
    let outcome: CodecServerRequestOutcomeLike;
    try {
      outcome = await (span === undefined ? handle() : otelContext.with(trace.setSpan(parent, span), handle));
    } catch (error) {
      span?.end(); // the codec server's handle() never rejects; a span must end all the same
      throw error;
    }
    try {
      record(opts, span, request.method, outcome, (performance.now() - started) / 1000);
    } catch (error) {
      failed(error);
    }
  };
}

function record(
  opts: TelemetryOptions,
  span: Span | undefined,
  requestMethod: string,
  outcome: CodecServerRequestOutcomeLike,
  seconds: number,
): void {
  const method = KNOWN_METHODS.has(requestMethod) ? requestMethod : '_OTHER';
  const point: Attributes = {
    [CodecServerAttributes.METHOD]: method,
    [CodecServerAttributes.STATUS]: outcome.status,
  };
  if (outcome.route !== undefined) point[CodecServerAttributes.ROUTE] = `/${outcome.route}`;
  if (outcome.namespace !== undefined) {
    point[CodecServerAttributes.NAMESPACE] = outcome.namespaceConfigured ? outcome.namespace : OTHER_NAMESPACE;
  }
  if (span !== undefined) {
    const attributes: Attributes = {
      [CodecServerAttributes.STATUS]: outcome.status,
      [CodecServerAttributes.PAYLOADS]: outcome.payloads,
      [CodecServerAttributes.BYTES]: outcome.bytes,
    };
    if (outcome.namespace !== undefined) attributes[CodecServerAttributes.NAMESPACE] = outcome.namespace;
    if (outcome.code !== undefined) attributes[CodecServerAttributes.ERROR_CODE] = outcome.code;
    if (outcome.status >= 500) {
      attributes[CodecServerAttributes.ERROR_TYPE] = outcome.code ?? String(outcome.status);
      span.setStatus({ code: SpanStatusCode.ERROR, message: outcome.code ?? `HTTP ${outcome.status}` });
    }
    span.setAttributes(attributes);
    span.end();
  }
  const instruments = codecServerInstrumentsOf(opts);
  instruments.duration.record(seconds, point);
  instruments.payloads.add(outcome.payloads, point);
}

function codecServerInstrumentsOf(opts: TelemetryOptions): CodecServerInstruments {
  return perMeter(opts.meterProvider, instrumentsByMeter, (meter) => ({
    duration: durationHistogram(meter, CodecServerMetrics.DURATION, 'Duration of codec server requests'),
    payloads: meter.createCounter(CodecServerMetrics.PAYLOADS, {
      description: 'Payloads in codec server requests',
      unit: '{payload}',
    }),
  }));
}
