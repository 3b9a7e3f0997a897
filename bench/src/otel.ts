/**
 * The `otel` group: what `@x/storage-driver-otel` costs. The `small` and `distinct` workloads on
 * the in-memory driver of `@x/storage-driver-test-suite` (built on core, no I/O: the cost per call
 * shows undiluted) and on the fs and Redis drivers (real backends), each in three modes: `off`
 * (the plain driver), `noop` (instrumented, `@opentelemetry/api` alone: no SDK, its no-op
 * providers) and `sdk` (instrumented, the real SDK: the AsyncLocalStorage context manager, a
 * tracer provider with a batch span processor into an in-memory exporter, a meter provider with a
 * periodic reader (every second) into an in-memory exporter — what an application runs, minus the
 * network). Fresh process per run, modes interleaved, `repeats` runs each, medians. Besides MB/s
 * (wall time, at the mercy of a shared machine) it reports the CPU time of the process per batch,
 * which is what instrumentation adds to.
 *
 * @module
 */

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { context, metrics, type TracerProvider, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, BatchSpanProcessor, InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import type { StorageDriver, StorageDriverClaim } from '@x/storage-driver-core';
import { instrumentStorageDriver } from '@x/storage-driver-otel';
import { InMemoryStorageDriver } from '@x/storage-driver-test-suite';
import { median } from './env';
import { type Backend, BENCH_TARGET, type Impl } from './impls';
import type { TargetCheck } from './report';
import { summarize } from './report';
import { type RunResult, type WorkloadSpec, workloadSpec } from './workloads';

/**
 * The modes measured: the plain driver; wrapped with `@opentelemetry/api` alone (no-op providers);
 * the real SDK set up but the driver not wrapped (what an application with OpenTelemetry pays
 * anyway: chiefly the AsyncLocalStorage context manager, per async operation); wrapped, real SDK.
 */
export const OTEL_MODES = ['off', 'noop', 'sdk-only', 'sdk'] as const;
/** One mode. */
export type OtelMode = (typeof OTEL_MODES)[number];
/** Drivers of the group (full run; `--quick` measures the in-memory driver only). */
export const OTEL_BACKENDS = ['memory', 'fs', 'redis'] as const;
/**
 * Workloads of the group: the benchmark's `small` and `distinct`, and `calls` — one 1 KiB payload
 * per batch, thousands of batches: the fixed cost per store/retrieve call, resolved to the
 * microsecond (in-memory driver only).
 */
export const OTEL_WORKLOADS = ['small', 'distinct', 'calls'] as const;
/** One workload of the group. */
export type OtelWorkload = (typeof OTEL_WORKLOADS)[number];

/** Workloads of the group on a driver: `calls` only on the in-memory driver. */
function workloadsOf(backend: string): readonly OtelWorkload[] {
  return backend === 'memory' ? OTEL_WORKLOADS : ['small', 'distinct'];
}

/**
 * The shape of a workload of the group (the worker's `otel-<workload>` names). On the in-memory
 * driver, whose batches take milliseconds, four times the benchmark's batches (less noise).
 */
export function otelWorkloadSpec(name: OtelWorkload, backend: string, quick: boolean): WorkloadSpec {
  if (name === 'calls') {
    const batches = quick ? 200 : 4000;
    // Shaped as `small` for the runner (plain fresh batches); reported as `calls`.
    return {
      name: 'small',
      description: 'one 1 KiB payload per batch (per-call cost)',
      batchSize: 1,
      payloadSize: 1024,
      batches,
      callers: 1,
      warmups: 1,
    };
  }
  const spec = workloadSpec(name, quick);
  return backend === 'memory' && !quick ? { ...spec, batches: spec.batches * 4 } : spec;
}

/** `otel-<workload>` (how the group names its workloads to the worker), or `undefined`. */
export function parseOtelWorkload(name: string): OtelWorkload | undefined {
  const w = name.startsWith('otel-') ? name.slice(5) : undefined;
  return (OTEL_WORKLOADS as readonly string[]).includes(w ?? '') ? (w as OtelWorkload) : undefined;
}

/** Implementation id of a driver in a mode: `redis`, `redis+otel-noop`, `redis+otel`. */
export function otelImplId(backend: string, mode: OtelMode): string {
  if (mode === 'off') return backend;
  return mode === 'sdk' ? `${backend}+otel` : `${backend}+otel-${mode}`;
}

/** The base implementation id and the mode of an id made by {@link otelImplId}. */
export function parseOtelImplId(id: string): { base: string; mode: OtelMode } {
  if (id.endsWith('+otel-noop')) return { base: id.slice(0, -'+otel-noop'.length), mode: 'noop' };
  if (id.endsWith('+otel-sdk-only')) return { base: id.slice(0, -'+otel-sdk-only'.length), mode: 'sdk-only' };
  if (id.endsWith('+otel')) return { base: id.slice(0, -'+otel'.length), mode: 'sdk' };
  return { base: id, mode: 'off' };
}

/**
 * In the worker process, before the driver is made: sets up the mode's OpenTelemetry and returns
 * how to wrap the driver (`undefined`: leave it alone).
 */
export function otelDriverWrapper(mode: OtelMode): ((driver: StorageDriver) => StorageDriver) | undefined {
  if (mode === 'off') return undefined;
  if (mode === 'noop') return (driver) => instrumentStorageDriver(driver);
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  const tracerProvider: TracerProvider = new BasicTracerProvider({
    spanProcessors: [new BatchSpanProcessor(new InMemorySpanExporter())],
  });
  const meterProvider = new MeterProvider({
    readers: [
      new PeriodicExportingMetricReader({
        exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE),
        exportIntervalMillis: 1000,
      }),
    ],
  });
  // Registered globally, as an application's SDK does (the wrapper then finds them).
  trace.setGlobalTracerProvider(tracerProvider);
  metrics.setGlobalMeterProvider(meterProvider);
  return mode === 'sdk-only' ? undefined : (driver) => instrumentStorageDriver(driver);
}

/**
 * The in-memory driver (core's content-addressed mechanics, no backend): `wrap` applied as the
 * other implementations get it.
 */
export function memoryImpl(id: string, wrap: ((driver: StorageDriver) => StorageDriver) | undefined): Impl {
  const plain = new InMemoryStorageDriver({ maxPayloadSize: 64 * 1024 * 1024 });
  const driver = wrap === undefined ? plain : wrap(plain);
  return {
    id,
    backend: 'memory' as Backend, // reported by the otel group only
    kind: 'driver',
    store: (payloads) => driver.store({ target: BENCH_TARGET }, payloads),
    async retrieve(refs) {
      const back = await driver.retrieve({}, refs as StorageDriverClaim[]);
      return back.reduce((n, p) => n + (p.data?.byteLength ?? 0), 0);
    },
    close: () => plain.close(),
  };
}

/** One (driver, workload) row: the median of each mode's runs. */
export interface OtelRow {
  readonly backend: string;
  readonly workload: OtelWorkload;
  /** Payloads per batch (a store and a retrieve call each). */
  readonly payloadsPerBatch: number;
  /** Median MB/s (data stored and read back) per mode. */
  readonly mbPerSec: Record<OtelMode, number>;
  /** Median milliseconds of one batch (store + retrieve) per mode. */
  readonly batchMs: Record<OtelMode, number>;
  /** Median CPU milliseconds of this process per batch, per mode. */
  readonly cpuMsPerBatch: Record<OtelMode, number>;
}

/** One run of the group, summarised. */
export interface OtelRun {
  readonly impl: string;
  readonly workload: string;
  readonly batches: number;
  readonly mbPerSec: number;
  readonly cpuMs: number | undefined;
}

/** What the group measured. */
export interface OtelReport {
  /** A `--quick` smoke run (one batch per run: its numbers mean nothing). */
  readonly quick: boolean;
  readonly repeats: number;
  readonly rows: OtelRow[];
  /** Every run, summarised (its batches' timings left out: the `calls` workload has thousands). */
  readonly runs: OtelRun[];
  readonly targets: TargetCheck[];
}

/** Runs the group: fresh worker process per (implementation, workload set), modes interleaved. */
export async function runOtelGroup(options: {
  quick: boolean;
  repeats?: number;
  tmpDir: string;
  runChild: (args: string[]) => Promise<void>;
}): Promise<OtelReport> {
  const { quick, tmpDir, runChild } = options;
  const repeats = quick ? 1 : (options.repeats ?? 3);
  const backends = quick ? (['memory'] as const) : OTEL_BACKENDS;
  const runs: RunResult[] = [];
  console.log(
    `\notel: instrumentation off / no-op provider / real SDK on ${backends.join(', ')}, ${OTEL_WORKLOADS.join(', ')}, ${repeats} run(s) each`,
  );
  for (let r = 0; r < repeats; r++) {
    for (const backend of backends) {
      for (const mode of OTEL_MODES) {
        const id = otelImplId(backend, mode);
        const file = join(tmpDir, `otel-${id}-${r}.json`);
        const names = workloadsOf(backend).map((w) => `otel-${w}`);
        await runChild([id, names.join(','), quick ? '1' : '0', file]);
        runs.push(...(JSON.parse(await readFile(file, 'utf8')) as RunResult[]));
      }
    }
  }
  const rows: OtelRow[] = [];
  for (const backend of backends) {
    for (const workload of workloadsOf(backend)) {
      const of = (mode: OtelMode) =>
        runs.filter((run) => run.impl === otelImplId(backend, mode) && run.workload === workload).map(summarize);
      const mbPerSec = {} as Record<OtelMode, number>;
      const batchMs = {} as Record<OtelMode, number>;
      const cpuMsPerBatch = {} as Record<OtelMode, number>;
      for (const mode of OTEL_MODES) {
        const mine = runs.filter((run) => run.impl === otelImplId(backend, mode) && run.workload === workload);
        const s = of(mode);
        mbPerSec[mode] = median(s.map((x) => x.mbPerSec));
        batchMs[mode] = median(s.map((x) => (x.bytesPerBatch / 1e6 / x.mbPerSec) * 1000));
        cpuMsPerBatch[mode] = median(mine.map((run) => (run.cpuMs ?? 0) / run.batches.length));
      }
      const payloadsPerBatch = otelWorkloadSpec(workload, backend, quick).batchSize;
      rows.push({ backend, workload, payloadsPerBatch, mbPerSec, batchMs, cpuMsPerBatch });
    }
  }
  const summaries = runs.map((run) => ({
    impl: run.impl,
    workload: run.workload,
    batches: run.batches.length,
    mbPerSec: summarize(run).mbPerSec,
    cpuMs: run.cpuMs,
  }));
  return { quick, repeats, rows, runs: summaries, targets: otelTargets(rows) };
}

/** Throughput lost to a mode, in percent of `off` (negative: faster, i.e. noise). */
export function overheadPercent(row: OtelRow, mode: OtelMode): number {
  return (1 - row.mbPerSec[mode] / row.mbPerSec.off) * 100;
}

/** CPU time added per call (a store or a retrieve) in microseconds: half the per-batch difference. */
export function addedCpuMicrosPerCall(row: OtelRow, mode: OtelMode, baseline: OtelMode = 'off'): number {
  return ((row.cpuMsPerBatch[mode] - row.cpuMsPerBatch[baseline]) / 2) * 1000;
}

/** CPU time added, in percent of the plain driver's. */
export function cpuOverheadPercent(row: OtelRow, mode: OtelMode): number {
  return (row.cpuMsPerBatch[mode] / row.cpuMsPerBatch.off - 1) * 100;
}

/**
 * The target: wrapping a driver adds at most 100 µs of CPU per call to an application that runs
 * the SDK, measured where nothing else hides it (the in-memory driver, one payload per call). On
 * the real backends the same microseconds are a few percent of a call at most; their wall-time
 * MB/s moves more than that from run to run on a shared machine.
 */
function otelTargets(rows: readonly OtelRow[]): TargetCheck[] {
  return rows
    .filter((row) => row.backend === 'memory' && row.workload === 'calls')
    .map((row) => {
      const added = addedCpuMicrosPerCall(row, 'sdk', 'sdk-only');
      return {
        target:
          'otel: wrapping adds ≤ 100 µs CPU per store/retrieve call to an application running the SDK (in-memory driver, 1-payload calls)',
        value: `${added.toFixed(1)} µs`,
        pass: added <= 100,
        note: `against no OpenTelemetry at all: SDK and wrapper ${addedCpuMicrosPerCall(row, 'sdk').toFixed(1)} µs, wrapper with the no-op provider ${addedCpuMicrosPerCall(row, 'noop').toFixed(1)} µs; the plain call ${((row.cpuMsPerBatch.off / 2) * 1000).toFixed(1)} µs`,
      };
    });
}

function signed(value: number, digits: number): string {
  return `${value >= 0 ? '+' : ''}${value.toFixed(digits)}`;
}

const MODE_HEADERS: Record<OtelMode, string> = {
  off: 'off',
  noop: 'wrapped, no-op provider',
  'sdk-only': 'SDK, not wrapped',
  sdk: 'SDK, wrapped',
};

function rowCells(row: OtelRow): string[] {
  const cell = (mode: OtelMode) => {
    const base = `${row.mbPerSec[mode].toFixed(1)} MB/s · ${row.cpuMsPerBatch[mode].toPrecision(3)} ms`;
    return mode === 'off' ? base : `${base} (${signed(addedCpuMicrosPerCall(row, mode), 0)} µs)`;
  };
  return [row.backend, `${row.workload} (${row.payloadsPerBatch}/batch)`, ...OTEL_MODES.map(cell)];
}

const HEADERS = ['driver', 'workload', ...OTEL_MODES.map((m) => MODE_HEADERS[m])];

/** Prints the group's table. */
export function printOtel(report: OtelReport): void {
  const rows = [HEADERS, ...report.rows.map(rowCells)];
  const widths = HEADERS.map((_, i) => Math.max(...rows.map((r) => (r[i] as string).length)));
  const mode = report.quick ? 'quick mode: one batch per run, not meaningful' : `medians of ${report.repeats} run(s)`;
  console.log(`\ninstrumentation overhead (@x/storage-driver-otel; ${mode}):`);
  for (const r of rows) console.log(`  ${r.map((c, i) => c.padEnd(widths[i] as number)).join('  ')}`);
  for (const t of report.targets) {
    console.log(`  ${t.pass ? 'PASS' : 'FAIL'}  ${t.target}: ${t.value}${t.note ? `  [${t.note}]` : ''}`);
  }
}

/** The group's Markdown section. */
export function otelMarkdown(report: OtelReport): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [
    '## Instrumentation overhead (`@x/storage-driver-otel`)',
    '',
    `Medians of ${report.repeats} run(s) per mode, modes interleaved, each in a fresh process. Each cell: MB/s (data stored and read back per second, wall time: it moves by several percent from run to run on a shared machine) · CPU milliseconds of the benchmark process per batch (a store and a retrieve call) (CPU added per call against off). off: the plain driver; wrapped, no-op provider: \`instrumentStorageDriver\` with \`@opentelemetry/api\` alone; SDK, not wrapped: the real SDK set up (AsyncLocalStorage context manager, tracer provider with a batch span processor, meter provider with a reader every second, in-memory exporters), the driver plain — what an application running OpenTelemetry pays anyway; SDK, wrapped: the same, instrumented. \`memory\` is the in-memory driver of \`@x/storage-driver-test-suite\` (core's mechanics without a backend); its \`calls\` workload (one 1 KiB payload per batch) resolves the cost per call.`,
    '',
    line(HEADERS),
    line(HEADERS.map((_, i) => (i < 2 ? '---' : '---:'))),
    ...report.rows.map((r) => line(rowCells(r))),
  ].join('\n');
}
