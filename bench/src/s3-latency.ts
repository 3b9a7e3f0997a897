/**
 * The S3 latency profile: the S3 implementations through a {@link LatencyProxy} in front of moto
 * (default +20 ms per request), our driver with default options and with the other existence
 * checks and the existence cache, against the official driver and the raw client, on `distinct`,
 * `dupes`, `small` and `parallel`; the requests each operation sends, counted at the proxy; and
 * the issue's targets for it.
 *
 * @module
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { S3_DRIVER_DEFAULT_CONCURRENCY } from '@x/storage-driver-s3';
import { randomPayload } from './env';
import { createImpl, type Impl } from './impls';
import { emptyStats, fetchProxyStats, LatencyProxy, type RequestStats } from './latency-proxy';
import { type Summary, summarize } from './report';
import { markdownTable, textTable } from './tables';
import type { RunProbe, RunResult, WorkloadName, WorkloadSpec } from './workloads';
import { workloadSpec } from './workloads';

/** Workloads of the latency profile, in display order. */
export const S3_LATENCY_WORKLOADS: readonly WorkloadName[] = ['distinct', 'dupes', 'small', 'parallel'];

/** Implementations measured by default (`s3`: our driver with default options). */
export const S3_LATENCY_IMPLS: readonly string[] = [
  's3',
  's3-head',
  's3-cput',
  's3-cache',
  's3-cput-cache',
  's3-official',
  's3-raw',
];

/** Every implementation the profile knows, in display order (`--impls=s3-c64` adds the others). */
export const S3_LATENCY_ALL_IMPLS: readonly string[] = [
  ...S3_LATENCY_IMPLS.slice(0, 5),
  's3-c16',
  's3-c64',
  's3-cput-c64',
  ...S3_LATENCY_IMPLS.slice(5),
];

/** What each implementation id means, for the tables. */
export const S3_LATENCY_IMPL_NOTES: Readonly<Record<string, string>> = {
  s3: 'our driver, default options',
  's3-head': "our driver, existenceCheck: 'head'",
  's3-cput': "our driver, existenceCheck: 'conditional-put'",
  's3-cache': 'our driver, existenceCache: {}',
  's3-cput-cache': "our driver, existenceCheck: 'conditional-put', existenceCache: {}",
  's3-c16': 'our driver, concurrency: 16 (the default before 50)',
  's3-c64': 'our driver, concurrency: 64',
  's3-cput-c64': "our driver, existenceCheck: 'conditional-put', concurrency: 64",
  's3-official': '@temporalio/external-storage-s3 (HeadObject, PutObject, GetObject; unbounded concurrency)',
  's3-raw': `PutObject / GetObject per payload, ${S3_DRIVER_DEFAULT_CONCURRENCY} in flight (the driver's default concurrency)`,
};

/** Measured batches per caller in the latency profile (fewer than on loopback: each request waits). */
const LATENCY_BATCHES: Partial<Record<WorkloadName, number>> = { distinct: 5, dupes: 6, small: 2, parallel: 2 };

/**
 * A workload's shape in the latency profile: the loopback shape with fewer measured batches; the
 * quick smoke test stores and reads back one batch of 4 payloads (2 callers for `parallel`).
 */
export function latencyWorkloadSpec(name: WorkloadName, quick: boolean): WorkloadSpec {
  const base = workloadSpec(name, false);
  if (quick) {
    return {
      ...base,
      description: `${base.description} [quick: 4 payloads, smoke test]`,
      batchSize: 4,
      batches: 1,
      callers: Math.min(base.callers, 2),
      warmups: 1,
    };
  }
  // One warm-up batch: at 20 ms per request a `small` batch takes seconds.
  return { ...base, batches: LATENCY_BATCHES[name] ?? base.batches, warmups: 1 };
}

/** A probe reading (and resetting) the proxy's counters around the measured part. */
export function proxyProbe(proxyUrl: string): RunProbe {
  return {
    begin: async () => {
      await fetchProxyStats(proxyUrl, undefined, true);
    },
    end: () => fetchProxyStats(proxyUrl),
  };
}

/** Requests of one operation, counted at the proxy. */
export interface S3RequestCount {
  readonly impl: string;
  /** What was done (`store: new payloads`, …). */
  readonly phase: string;
  /** Payloads in the operation. */
  readonly payloads: number;
  /** Wall time of the operation (ms). */
  readonly ms: number;
  readonly stats: RequestStats;
}

/** Size of the payloads {@link countS3Requests} stores (256 KiB). */
export const COUNT_PAYLOAD_SIZE = 256 * 1024;

/** The operations counted by {@link countS3Requests}, in order. */
export const S3_COUNT_PHASES = [
  'store new payloads',
  'store them again (same instance, later call)',
  'store them again (another instance)',
  'retrieve them',
  'store them after retrieving them (another instance)',
] as const;

/**
 * Requests per operation of implementation `id` (one batch of `count` × 256 KiB payloads each):
 * a first store, the same store again from the same driver instance and from another one (a
 * second worker), a retrieve, and a store of retrieved payloads by an instance that only read
 * them (a workflow passing its input on to an activity). Connections are warmed up first.
 */
export async function countS3Requests(id: string, proxyUrl: string, count = 64): Promise<S3RequestCount[]> {
  const impl = await createImpl(id, 's3-latency');
  const out: S3RequestCount[] = [];
  const measure = async (phase: string, fn: () => Promise<unknown>) => {
    await fetchProxyStats(proxyUrl, undefined, true);
    const t0 = performance.now();
    await fn();
    const ms = performance.now() - t0;
    out.push({ impl: id, phase, payloads: count, ms, stats: await fetchProxyStats(proxyUrl) });
  };
  try {
    await impl.retrieve(await impl.store(Array.from({ length: 4 }, () => randomPayload(1024))));
    const payloads = Array.from({ length: count }, () => randomPayload(COUNT_PAYLOAD_SIZE));
    const twin = (): Impl => {
      if (impl.twin === undefined) throw new Error(`${id} has no second instance`);
      return impl.twin();
    };
    let refs: unknown[] = [];
    const [first, again, another, retrieve, afterRetrieve] = S3_COUNT_PHASES;
    await measure(first, async () => {
      refs = await impl.store(payloads);
    });
    await measure(again, () => impl.store(payloads));
    await measure(another, () => twin().store(payloads));
    await measure(retrieve, () => impl.retrieve(refs));
    const reader = twin();
    await reader.retrieve(refs);
    await measure(afterRetrieve, () => reader.store(payloads));
  } finally {
    await impl.close();
  }
  return out;
}

/** Requests per stored payload of one run (`HEAD`, `PUT`, `GET`, …), from the proxy's counters. */
export interface PerPayload {
  readonly head: number;
  readonly put: number;
  /** `PUT`s with `If-None-Match`. */
  readonly conditionalPut: number;
  readonly get: number;
  /** 412 Precondition Failed answers (a conditional `PUT` of an existing object). */
  readonly status412: number;
  /** Request body bytes uploaded per payload, relative to the payload size (1 = each payload once). */
  readonly uploadRatio: number;
}

/** Per-payload request counts of one stats record for `payloads` payloads of `payloadSize` bytes. */
export function perPayload(stats: RequestStats, payloads: number, payloadSize: number): PerPayload {
  const per = (n: number | undefined) => (n ?? 0) / payloads;
  return {
    head: per(stats.methods['HEAD']),
    put: per(stats.methods['PUT']),
    conditionalPut: per(stats.conditionalPuts),
    get: per(stats.methods['GET']),
    status412: per(stats.statuses['412']),
    uploadRatio: stats.bytesUp / payloads / payloadSize,
  };
}

/** The median over repeated runs of one (implementation, workload) pair, with what the proxy counted. */
export interface LatencySummary extends Summary {
  /** Runs the medians are taken over. */
  readonly runs: number;
  /** Payloads per batch. */
  readonly payloadsPerBatch: number;
  /** Median requests per stored payload. */
  readonly perPayload: PerPayload;
  /** Median requests per measured batch (all methods). */
  readonly requestsPerBatch: number;
  /** Median store requests (`HEAD` + `PUT`) and retrieve requests (`GET`) per batch. */
  readonly storeRequestsPerBatch: number;
  readonly retrieveRequestsPerBatch: number;
  /** Highest number of requests in flight at once (median over runs). */
  readonly peakInFlight: number;
  /** Share of the measured wall time during which moto was working on a request (median). */
  readonly upstreamBusy: number;
}

function med(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const n = sorted.length;
  if (n === 0) return 0;
  return n % 2 === 1
    ? (sorted[(n - 1) / 2] as number)
    : ((sorted[n / 2 - 1] as number) + (sorted[n / 2] as number)) / 2;
}

/** Field-by-field medians of records with the same numeric fields. */
function medians<T extends object>(records: readonly T[]): T {
  const first = records[0] as T;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(first)) {
    out[key] =
      typeof value === 'number' ? med(records.map((r) => (r as Record<string, number>)[key] as number)) : value;
  }
  return out as T;
}

/** Field-by-field medians of the summaries of repeated runs (labels and shapes from the first). */
function medianSummary(summaries: readonly Summary[]): Summary {
  const first = summaries[0] as Summary;
  return { ...medians(summaries), batches: first.batches, bytesPerBatch: first.bytesPerBatch };
}

/** Field-by-field medians of the repeated runs of one (implementation, workload) pair. */
export function summarizeRepeats(runs: readonly RunResult[]): LatencySummary {
  const first = runs[0];
  if (first === undefined) throw new Error('no runs to summarize');
  const summary = medianSummary(runs.map(summarize));
  const stats = runs.map((r) => r.requests ?? emptyStats());
  const pp = runs.map((r, i) =>
    perPayload(stats[i] as RequestStats, r.batches.length * r.payloadsPerBatch, r.bytesPerBatch / r.payloadsPerBatch),
  );
  const perBatch = (f: (s: RequestStats) => number) =>
    med(runs.map((r, i) => f(stats[i] as RequestStats) / r.batches.length));
  return {
    ...summary,
    runs: runs.length,
    payloadsPerBatch: first.payloadsPerBatch,
    perPayload: medians(pp),
    requestsPerBatch: perBatch((s) => s.requests),
    storeRequestsPerBatch: perBatch((s) => (s.methods['HEAD'] ?? 0) + (s.methods['PUT'] ?? 0)),
    retrieveRequestsPerBatch: perBatch((s) => s.methods['GET'] ?? 0),
    peakInFlight: med(stats.map((s) => s.peakInFlight)),
    upstreamBusy: med(runs.map((r, i) => (stats[i] as RequestStats).upstreamBusyMs / r.wallMs)),
  };
}

/** One target of the latency profile. */
export interface LatencyTarget {
  readonly target: string;
  readonly value: string;
  readonly pass: boolean;
  /** What bounds it, from this run's numbers. */
  readonly note: string;
}

/** The issue's targets for our driver with default options at this latency. */
export function checkLatencyTargets(summaries: readonly LatencySummary[], delayMs: number): LatencyTarget[] {
  const find = (impl: string, w: WorkloadName) => summaries.find((s) => s.impl === impl && s.workload === w);
  const out: LatencyTarget[] = [];
  const goals: [WorkloadName, number, string][] = [
    ['distinct', 1.5, '≥ 1.5×'],
    ['dupes', 3, '≥ 3×'],
    ['parallel', 1, '≥ 1× (never slower)'],
  ];
  for (const [workload, min, label] of goals) {
    const ours = find('s3', workload);
    const official = find('s3-official', workload);
    if (ours === undefined || official === undefined) continue;
    const ratio = ours.mbPerSec / official.mbPerSec;
    out.push({
      target: `s3 (default options) ${label} s3-official on ${workload} at ${delayMs} ms per request`,
      value: `${ratio.toFixed(2)}×`,
      pass: ratio >= min,
      note: latencyNote(summaries, ours, official, delayMs),
    });
  }
  return out;
}

/** Rounds of requests a batch needs at the observed concurrency: ⌈store / in flight⌉ + ⌈retrieve / in flight⌉. */
function latencyRounds(s: LatencySummary): number {
  const inFlight = Math.max(1, s.peakInFlight);
  return Math.ceil(s.storeRequestsPerBatch / inFlight) + Math.ceil(s.retrieveRequestsPerBatch / inFlight);
}

/** New (never stored) payloads per batch of a workload: `dupes` repeats half of each batch. */
function newPerBatch(s: LatencySummary): number {
  return s.workload === 'dupes' ? s.payloadsPerBatch / 2 : s.payloadsPerBatch;
}

/**
 * What bounds a ratio against the official driver: the requests each sends per batch and the
 * latency rounds they need at the concurrency seen at the proxy; the ratio of request counts
 * (what a request-bound S3 allows at equal concurrency); the ceiling of any driver (one `PUT`
 * per new payload, one `GET` per payload read: nothing else); how busy moto was (its own
 * service time, not the injected latency, bounds a run where it is near 100%); the other
 * configurations' ratios.
 */
function latencyNote(
  summaries: readonly LatencySummary[],
  ours: LatencySummary,
  official: LatencySummary,
  delayMs: number,
): string {
  const total = (s: LatencySummary) => s.storeRequestsPerBatch + s.retrieveRequestsPerBatch;
  const describe = (s: LatencySummary) =>
    `${s.impl} ${fmt(s.storeRequestsPerBatch)}+${fmt(s.retrieveRequestsPerBatch)} requests/batch, ≤ ${s.peakInFlight} in flight (≥ ${latencyRounds(s)} × ${delayMs} ms), moto busy ${Math.round(s.upstreamBusy * 100)}%`;
  const fewest = newPerBatch(ours) + ours.retrieveRequestsPerBatch;
  const others = summaries
    .filter((s) => s.workload === ours.workload && s.impl !== 's3' && s.impl !== 's3-official')
    .map((s) => `${s.impl} ${(s.mbPerSec / official.mbPerSec).toFixed(2)}×`);
  return [
    `${describe(ours)}; ${describe(official)}`,
    `request-count ratio ${(total(official) / total(ours)).toFixed(2)}×; any driver's ceiling (1 PUT per new payload + the GETs) ${(total(official) / fewest).toFixed(2)}×`,
    ...(others.length > 0 ? [`others: ${others.join(', ')}`] : []),
  ].join('; ');
}

function fmt(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}

const HEAD = [
  'workload',
  'impl',
  'MB/s',
  'payloads/s',
  'store p50',
  'retrieve p50',
  'vs official',
  'HEAD/p',
  'PUT/p',
  'GET/p',
  '412/p',
  'upload×',
  'in flight',
  'moto busy',
];

function rows(summaries: readonly LatencySummary[]): string[][] {
  const out: string[][] = [];
  for (const w of S3_LATENCY_WORKLOADS) {
    const official = summaries.find((s) => s.impl === 's3-official' && s.workload === w);
    for (const id of S3_LATENCY_ALL_IMPLS) {
      const s = summaries.find((x) => x.impl === id && x.workload === w);
      if (s === undefined) continue;
      const p = s.perPayload;
      out.push([
        w,
        id,
        s.mbPerSec.toFixed(1),
        s.payloadsPerSec.toFixed(0),
        s.storeP50Ms.toFixed(0),
        s.retrieveP50Ms.toFixed(0),
        official === undefined || id === 's3-official' ? '' : `${(s.mbPerSec / official.mbPerSec).toFixed(2)}×`,
        p.head.toFixed(2),
        p.conditionalPut > 0 ? `${p.put.toFixed(2)} (${p.conditionalPut.toFixed(2)} cond.)` : p.put.toFixed(2),
        p.get.toFixed(2),
        p.status412.toFixed(2),
        p.uploadRatio.toFixed(2),
        String(s.peakInFlight),
        `${Math.round(s.upstreamBusy * 100)}%`,
      ]);
    }
  }
  return out;
}

/** The latency profile's results as a plain-text table (latencies in ms; request counts per stored payload). */
export function formatLatencyTable(summaries: readonly LatencySummary[]): string {
  return textTable(HEAD, rows(summaries));
}

/** The latency profile's results as Markdown. */
export function formatLatencyMarkdown(summaries: readonly LatencySummary[]): string {
  const head = HEAD.map((h) => (h === 'store p50' || h === 'retrieve p50' ? `${h} (ms)` : h));
  return markdownTable(head, rows(summaries));
}

/** Column titles of the operations of {@link S3_COUNT_PHASES}. */
const PHASE_TITLES: Readonly<Record<string, string>> = {
  'store new payloads': 'store new payloads',
  'store them again (same instance, later call)': 'store again (same instance)',
  'store them again (another instance)': 'store again (another instance)',
  'retrieve them': 'retrieve',
  'store them after retrieving them (another instance)': 'store after retrieving (another instance)',
};

/**
 * What one operation sent per payload, e.g. `1 HEAD + 1 PUT (If-None-Match), body ×1.00 (728 ms)`:
 * requests by method (conditional `PUT`s and their 412 answers), the request body bytes relative
 * to the payloads' bytes, and the operation's wall time.
 */
function countCell(c: S3RequestCount): string {
  const per = (n: number | undefined) => {
    const v = (n ?? 0) / c.payloads;
    return Number.isInteger(v) ? String(v) : v.toFixed(2);
  };
  const { methods, statuses, conditionalPuts, bytesUp } = c.stats;
  const parts: string[] = [];
  if (methods['HEAD']) parts.push(`${per(methods['HEAD'])} HEAD`);
  if (methods['PUT']) {
    const rejected = statuses['412'] ? `, ${per(statuses['412'])} × 412` : '';
    parts.push(`${per(methods['PUT'])} PUT${conditionalPuts > 0 ? ` (If-None-Match${rejected})` : ''}`);
  }
  if (methods['GET']) parts.push(`${per(methods['GET'])} GET`);
  const upload = bytesUp / c.payloads / COUNT_PAYLOAD_SIZE;
  return `${parts.join(' + ') || 'no request'}${upload >= 0.01 ? `, body ×${upload.toFixed(2)}` : ''} (${c.ms.toFixed(0)} ms)`;
}

/** One row per implementation, one column per operation. */
function countTable(counts: readonly S3RequestCount[]): [string[], string[][]] {
  const phases = [...new Set(counts.map((c) => c.phase))];
  const head = ['impl', ...phases.map((p) => PHASE_TITLES[p] ?? p)];
  const rows = [...new Set(counts.map((c) => c.impl))].map((impl) => [
    impl,
    ...phases.map((p) => {
      const c = counts.find((x) => x.impl === impl && x.phase === p);
      return c === undefined ? '' : countCell(c);
    }),
  ]);
  return [head, rows];
}

/** Requests per operation as a plain-text table (per payload). */
export function formatCountsTable(counts: readonly S3RequestCount[]): string {
  const [head, rows] = countTable(counts);
  return textTable(head, rows, head.length);
}

/** Requests per operation as Markdown (per payload). */
export function formatCountsMarkdown(counts: readonly S3RequestCount[]): string {
  const [head, rows] = countTable(counts);
  return markdownTable(head, rows, head.length);
}

/** Runs `node worker.js …args` in a fresh process with extra environment variables. */
export type RunChild = (args: string[], env?: Record<string, string>) => Promise<void>;

/** Options of {@link runS3LatencyGroup}. */
export interface S3LatencyGroupOptions {
  readonly quick: boolean;
  /** Implementations (default {@link S3_LATENCY_IMPLS}; quick: `s3`, `s3-official`, `s3-raw`). */
  readonly impls?: readonly string[];
  /** Workloads (default {@link S3_LATENCY_WORKLOADS}; quick: `distinct`). */
  readonly workloads?: readonly WorkloadName[];
  /** Runs of each pair, medians kept (default 3; quick 1). */
  readonly repeats?: number;
  /** Added latency per request, ms (default 20). */
  readonly delayMs?: number;
  /** Bandwidth cap per direction, MiB/s (default none). */
  readonly bandwidthMiBps?: number;
  /** The S3 server behind the proxy. */
  readonly upstream: string;
  /** Where the children write their results. */
  readonly tmpDir: string;
  readonly runChild: RunChild;
}

/** Everything the latency profile measured. */
export interface S3LatencyReport {
  /** A smoke test (`--quick`): a few requests, numbers not meaningful. */
  readonly quick: boolean;
  readonly delayMs: number;
  readonly bandwidthMiBps: number | null;
  readonly repeats: number;
  readonly workloads: WorkloadSpec[];
  readonly impls: Record<string, string>;
  readonly summaries: LatencySummary[];
  readonly requestCounts: S3RequestCount[];
  readonly targets: LatencyTarget[];
  /** Every run (all repeats), with its batches and proxy counts. */
  readonly runs: RunResult[];
}

/**
 * Starts a {@link LatencyProxy} in this process, runs every (implementation, workload) pair
 * `repeats` times in fresh child processes through it (interleaved: round 1 of every pair, then
 * round 2, …, so a busy spell of the shared machine does not hit one implementation's runs
 * only), counts requests per operation, and closes the proxy.
 */
export async function runS3LatencyGroup(options: S3LatencyGroupOptions): Promise<S3LatencyReport> {
  const { quick, runChild } = options;
  const impls = options.impls ?? (quick ? ['s3', 's3-official', 's3-raw'] : S3_LATENCY_IMPLS);
  const workloads = options.workloads ?? (quick ? ['distinct'] : S3_LATENCY_WORKLOADS);
  const repeats = options.repeats ?? (quick ? 1 : 3);
  const proxy = await LatencyProxy.start({
    upstream: options.upstream,
    delayMs: options.delayMs,
    bandwidthMiBps: options.bandwidthMiBps,
  });
  const env = {
    XSTORAGE_BENCH_PROFILE: 's3-latency',
    XSTORAGE_S3_ENDPOINT: proxy.url,
    XSTORAGE_BENCH_PROXY_URL: proxy.url,
  };
  const cap = proxy.bandwidthMiBps ? `, ${proxy.bandwidthMiBps} MiB/s each way` : '';
  console.log(
    `\nS3 latency profile: +${proxy.delayMs} ms per request${cap} (proxy ${proxy.url} → ${options.upstream}), ${repeats} run(s) each, medians`,
  );
  for (const w of workloads) {
    const spec = latencyWorkloadSpec(w, quick);
    console.log(`  ${w}: ${spec.description} (${spec.batches} batch(es) per caller)`);
  }
  const runs: RunResult[] = [];
  const requestCounts: S3RequestCount[] = [];
  try {
    for (let round = 1; round <= repeats; round++) {
      for (const w of workloads) {
        for (const id of impls) {
          const file = join(options.tmpDir, `latency-${id}-${w}-${round}.json`);
          const t0 = Date.now();
          await runChild([id, w, quick ? '1' : '0', file], env);
          const [run] = JSON.parse(await readFile(file, 'utf8')) as RunResult[];
          if (run === undefined) throw new Error(`${id} ${w}: no result`);
          // Sanity checks that hold on any machine: every request went through the proxy, and no
          // retrieve (at least one GET) came back faster than the injected delay.
          if (!run.requests || run.requests.requests === 0)
            throw new Error(`${id} ${w}: the proxy counted no requests`);
          const fastest = Math.min(...run.batches.map((b) => b.retrieveMs));
          if (fastest < proxy.delayMs)
            throw new Error(`${id} ${w}: a retrieve took ${fastest} ms, less than the ${proxy.delayMs} ms delay`);
          runs.push(run);
          const rate = summarize(run).mbPerSec.toFixed(1).padStart(7);
          console.log(
            `  run ${round}/${repeats} ${w.padEnd(9)} ${id.padEnd(14)} ${rate} MB/s  ${run.requests.requests} requests  (${((Date.now() - t0) / 1000).toFixed(1)} s)`,
          );
        }
      }
    }
    for (const id of impls) {
      const file = join(options.tmpDir, `latency-count-${id}.json`);
      await runChild(['s3requests', id, quick ? '1' : '0', file], env);
      requestCounts.push(...(JSON.parse(await readFile(file, 'utf8')) as S3RequestCount[]));
    }
  } finally {
    await proxy.close();
  }
  const summaries: LatencySummary[] = [];
  for (const w of workloads) {
    for (const id of impls) {
      const mine = runs.filter((r) => r.impl === id && r.workload === w);
      if (mine.length > 0) summaries.push(summarizeRepeats(mine));
    }
  }
  return {
    quick,
    delayMs: proxy.delayMs,
    bandwidthMiBps: proxy.bandwidthMiBps ?? null,
    repeats,
    workloads: workloads.map((w) => latencyWorkloadSpec(w, quick)),
    impls: Object.fromEntries(impls.map((id) => [id, S3_LATENCY_IMPL_NOTES[id] ?? id])),
    summaries,
    requestCounts,
    targets: checkLatencyTargets(summaries, proxy.delayMs),
    runs,
  };
}

/** Prints the latency profile's tables and targets. */
export function printS3Latency(report: S3LatencyReport): void {
  console.log(
    `\nS3 at ${report.delayMs} ms per request (medians of ${report.repeats} run(s); per stored payload: HEAD/p, PUT/p, GET/p, 412/p; upload× = body bytes sent / payload bytes):`,
  );
  console.log(formatLatencyTable(report.summaries));
  console.log('\nrequests per operation at the proxy:');
  console.log(formatCountsTable(report.requestCounts));
  console.log(`\ntargets (S3 latency profile)${report.quick ? ' (quick mode: a few requests; not meaningful)' : ''}:`);
  for (const t of report.targets) console.log(`  ${t.pass ? 'PASS' : 'FAIL'}  ${t.target}: ${t.value}  [${t.note}]`);
}

/** The latency profile as a Markdown section. */
export function s3LatencyMarkdown(report: S3LatencyReport): string {
  const cap = report.bandwidthMiBps ? `, bandwidth ${report.bandwidthMiBps} MiB/s each way` : '';
  return [
    `### S3 at ${report.delayMs} ms per request${cap}`,
    '',
    `Medians of ${report.repeats} run(s) in fresh processes. Request counts per stored payload, at the proxy; upload× = request body bytes / payload bytes; in flight = most requests at once; moto busy = share of the wall time moto was working on a request.`,
    '',
    '| impl | configuration |',
    '| --- | --- |',
    ...Object.entries(report.impls).map(([id, what]) => `| ${id} | ${what} |`),
    '',
    formatLatencyMarkdown(report.summaries),
    '',
    `Requests per operation, per payload (one batch of ${report.requestCounts[0]?.payloads ?? 0} × 256 KiB; body ×: request body bytes / payload bytes; the operation's wall time in parentheses):`,
    '',
    formatCountsMarkdown(report.requestCounts),
    '',
    markdownTable(
      ['target', 'value', 'result', 'bounded by'],
      report.targets.map((t) => [t.target, t.value, t.pass ? 'PASS' : 'FAIL', t.note]),
      { right: [1] },
    ),
  ].join('\n');
}
