/**
 * The real OpenTelemetry SDK with in-memory exporters, for the tests: a tracer provider whose
 * spans land in an `InMemorySpanExporter`, a meter provider whose metrics are exported to an
 * `InMemoryMetricExporter` on demand, and the AsyncLocalStorage context manager (what
 * `@opentelemetry/sdk-node` installs), so that an active span follows `await`s.
 */
import { context, type Span, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  AggregationTemporality,
  DataPointType,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import type { Payload } from '@x/storage-driver-core';

let contextManagerInstalled = false;

/** Installs the AsyncLocalStorage context manager once per test file (jest gives each file its own globals). */
export function installContextManager(): void {
  if (contextManagerInstalled) return;
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  contextManagerInstalled = true;
}

/** One metric point: a counter's value, or a histogram's count and sum. */
export interface Point {
  readonly attributes: Record<string, unknown>;
  readonly value: number;
  readonly count?: number;
}

/** The SDK providers of one test and what they recorded. */
export interface Telemetry {
  readonly tracerProvider: BasicTracerProvider;
  readonly meterProvider: MeterProvider;
  /** Every ended span so far. */
  spans(): ReadableSpan[];
  /** The ended spans named `name`. */
  spansNamed(name: string): ReadableSpan[];
  /** The points of metric `name` (cumulative since the providers were made); `[]` if none. */
  points(name: string): Promise<Point[]>;
  /** The sum of metric `name`'s values over the points whose attributes include `match`. */
  sum(name: string, match?: Record<string, unknown>): Promise<number>;
  /** A tracer of this provider, for parent spans of a test. */
  withParent<T>(name: string, fn: (span: Span) => Promise<T>): Promise<T>;
  shutdown(): Promise<void>;
}

/** Fresh SDK providers with in-memory exporters (cumulative metrics, collected on demand). */
export function makeTelemetry(): Telemetry {
  installContextManager();
  const spanExporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spanExporter)] });
  const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 3_600_000 });
  const meterProvider = new MeterProvider({ readers: [reader] });
  const points = async (name: string): Promise<Point[]> => {
    await reader.forceFlush();
    const latest = metricExporter.getMetrics().at(-1);
    const out: Point[] = [];
    for (const scope of latest?.scopeMetrics ?? []) {
      for (const metric of scope.metrics) {
        if (metric.descriptor.name !== name) continue;
        for (const p of metric.dataPoints) {
          const attributes = { ...p.attributes };
          if (metric.dataPointType === DataPointType.HISTOGRAM) {
            const h = p.value as { count: number; sum?: number };
            out.push({ attributes, value: h.sum ?? 0, count: h.count });
          } else {
            out.push({ attributes, value: p.value as number });
          }
        }
      }
    }
    return out;
  };
  return {
    tracerProvider,
    meterProvider,
    spans: () => spanExporter.getFinishedSpans(),
    spansNamed: (name) => spanExporter.getFinishedSpans().filter((s) => s.name === name),
    points,
    async sum(name, match = {}) {
      let total = 0;
      for (const p of await points(name)) {
        if (Object.entries(match).every(([k, v]) => p.attributes[k] === v)) total += p.count ?? p.value;
      }
      return total;
    },
    withParent(name, fn) {
      return tracerProvider.getTracer('test').startActiveSpan(name, async (span) => {
        try {
          return await fn(span);
        } finally {
          span.end();
        }
      });
    },
    async shutdown() {
      await Promise.all([tracerProvider.shutdown(), meterProvider.shutdown()]);
    },
  };
}

/** The span id of `span`'s parent, if any. */
export function parentId(span: ReadableSpan): string | undefined {
  return span.parentSpanContext?.spanId;
}

/** `trace.getSpan(context.active())`'s id, for checks inside a parent. */
export function activeSpanId(): string | undefined {
  return trace.getSpan(context.active())?.spanContext().spanId;
}

const encoder = new TextEncoder();

/** A `json/plain` payload of about `size` bytes of data, distinct per `tag`. */
export function payload(tag: string, size = 64): Payload {
  const text = JSON.stringify(`${tag}:${'x'.repeat(Math.max(0, size - tag.length - 3))}`);
  return { metadata: { encoding: encoder.encode('json/plain') }, data: encoder.encode(text) };
}
