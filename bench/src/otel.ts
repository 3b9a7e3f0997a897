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
import { context, type TracerProvider } from '@opentelemetry/api';
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
import { type RunResult, type WorkloadName, workloadSpec } from './workloads';

/** The instrumentation modes measured. */
export const OTEL_MODES = ['off', 'noop', 'sdk'] as const;
/** One mode. */
export type OtelMode = (typeof OTEL_MODES)[number];
/** Drivers of the group (full run; `--quick` measures the in-memory driver only). */
export const OTEL_BACKENDS = ['memory', 'fs', 'redis'] as const;
/** Workloads of the group. */
export const OTEL_WORKLOADS: readonly WorkloadName[] = ['small', 'distinct'];

/** Implementation id of a driver in a mode: `redis`, `redis+otel-noop`, `redis+otel`. */
export function otelImplId(backend: string, mode: OtelMode): string {
  return mode === 'off' ? backend : mode === 'noop' ? `${backend}+otel-noop` : `${backend}+otel`;
}

/** The base implementation id and the mode of an id made by {@link otelImplId}. */
export function parseOtelImplId(id: string): { base: string; mode: OtelMode } {
  if (id.endsWith('+otel-noop')) return { base: id.slice(0, -'+otel-noop'.length), mode: 'noop' };
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
  return (driver) => instrumentStorageDriver(driver, { tracerProvider, meterProvider });
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
  readonly workload: WorkloadName;
  /** Payloads per batch (a store and a retrieve call each). */
  readonly payloadsPerBatch: number;
  /** Median MB/s (data stored and read back) per mode. */
  readonly mbPerSec: Record<OtelMode, number>;
  /** Median milliseconds of one batch (store + retrieve) per mode. */
  readonly batchMs: Record<OtelMode, number>;
  /** Median CPU milliseconds of this process per batch, per mode. */
  readonly cpuMsPerBatch: Record<OtelMode, number>;
}

/** What the group measured. */
export interface OtelReport {
  /** A `--quick` smoke run (one batch per run: its numbers mean nothing). */
  readonly quick: boolean;
  readonly repeats: number;
  readonly rows: OtelRow[];
  readonly runs: RunResult[];
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
    `\notel: instrumentation off / no-op provider / real SDK on ${backends.join(', ')}, ${OTEL_WORKLOADS.join(' and ')}, ${repeats} run(s) each`,
  );
  for (let r = 0; r < repeats; r++) {
    for (const backend of backends) {
      for (const mode of OTEL_MODES) {
        const id = otelImplId(backend, mode);
        const file = join(tmpDir, `otel-${id}-${r}.json`);
        await runChild([id, OTEL_WORKLOADS.join(','), quick ? '1' : '0', file]);
        runs.push(...(JSON.parse(await readFile(file, 'utf8')) as RunResult[]));
      }
    }
  }
  const rows: OtelRow[] = [];
  for (const backend of backends) {
    for (const workload of OTEL_WORKLOADS) {
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
      const payloadsPerBatch = workloadSpec(workload, quick).batchSize;
      rows.push({ backend, workload, payloadsPerBatch, mbPerSec, batchMs, cpuMsPerBatch });
    }
  }
  return { quick, repeats, rows, runs, targets: otelTargets(rows) };
}

/** Throughput lost to a mode, in percent of `off` (negative: faster, i.e. noise). */
export function overheadPercent(row: OtelRow, mode: OtelMode): number {
  return (1 - row.mbPerSec[mode] / row.mbPerSec.off) * 100;
}

/** CPU time added per call (a store or a retrieve) in microseconds: half the per-batch difference. */
export function addedCpuMicrosPerCall(row: OtelRow, mode: OtelMode): number {
  return ((row.cpuMsPerBatch[mode] - row.cpuMsPerBatch.off) / 2) * 1000;
}

/** CPU time added, in percent of the plain driver's. */
export function cpuOverheadPercent(row: OtelRow, mode: OtelMode): number {
  return (row.cpuMsPerBatch[mode] / row.cpuMsPerBatch.off - 1) * 100;
}

/**
 * The target: the real SDK adds at most 100 µs of CPU per call, measured where nothing else hides
 * it (the in-memory driver). On the real backends the same microseconds are a few percent of a
 * call at most; their wall-time MB/s moves more than that from run to run on a shared machine.
 */
function otelTargets(rows: readonly OtelRow[]): TargetCheck[] {
  return rows
    .filter((row) => row.backend === 'memory')
    .map((row) => {
      const added = addedCpuMicrosPerCall(row, 'sdk');
      return {
        target: `otel ${row.workload}: the real SDK adds ≤ 100 µs CPU per store/retrieve call (in-memory driver)`,
        value: `${added.toFixed(0)} µs (no-op provider ${addedCpuMicrosPerCall(row, 'noop').toFixed(0)} µs)`,
        pass: added <= 100,
        note: `${cpuOverheadPercent(row, 'sdk').toFixed(1)} % of the call's CPU`,
      };
    });
}

function signed(value: number, digits: number): string {
  return `${value >= 0 ? '+' : ''}${value.toFixed(digits)}`;
}

function rowCells(row: OtelRow): string[] {
  const mb = (mode: OtelMode) => `${row.mbPerSec[mode].toFixed(1)} (${signed(-overheadPercent(row, mode), 1)} %)`;
  const cpu = (mode: OtelMode) =>
    `${row.cpuMsPerBatch[mode].toFixed(2)} (${signed(addedCpuMicrosPerCall(row, mode), 0)} µs/call)`;
  return [
    row.backend,
    `${row.workload} (${row.payloadsPerBatch}/batch)`,
    row.mbPerSec.off.toFixed(1),
    mb('noop'),
    mb('sdk'),
    row.cpuMsPerBatch.off.toFixed(2),
    cpu('noop'),
    cpu('sdk'),
  ];
}

const HEADERS = [
  'driver',
  'workload',
  'MB/s off',
  'MB/s no-op provider',
  'MB/s real SDK',
  'CPU ms/batch off',
  'CPU ms/batch no-op provider',
  'CPU ms/batch real SDK',
];

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
    `Medians of ${report.repeats} run(s) per mode, modes interleaved, each in a fresh process. off: the plain driver; no-op provider: instrumented, \`@opentelemetry/api\` without an SDK; real SDK: instrumented, AsyncLocalStorage context manager, batch span processor and periodic metric reader (every second) into in-memory exporters. MB/s: data stored and read back per second (wall time; in parentheses the change against off, within run-to-run noise on a shared machine). CPU ms/batch: CPU time of the benchmark process per batch (a store and a retrieve call); in parentheses the CPU added per call. \`memory\` is the in-memory driver of \`@x/storage-driver-test-suite\` (core's mechanics without a backend): there nothing hides the instrumentation's own cost.`,
    '',
    line(HEADERS),
    line(HEADERS.map((_, i) => (i < 2 ? '---' : '---:'))),
    ...report.rows.map((r) => line(rowCells(r))),
  ].join('\n');
}
