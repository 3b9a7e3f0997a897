/**
 * Summaries, targets, the printed table, and the SVG chart.
 *
 * @module
 */
import { median, percentile } from './env';
import { describeImpl, IMPL_IDS } from './impls';
import type { RoundTripCount } from './roundtrips';
import { type RunResult, WORKLOADS, type WorkloadName } from './workloads';

const MB = 1e6;
const MiB = 1024 * 1024;

/** Headline numbers of one run. */
export interface Summary {
  readonly impl: string;
  readonly workload: WorkloadName;
  /** Payload data stored and read back per second (MB = 10^6 bytes), from the median batch (aggregate for `parallel`). */
  readonly mbPerSec: number;
  /** Payloads stored and read back per second. */
  readonly payloadsPerSec: number;
  readonly storeP50Ms: number;
  readonly storeP99Ms: number;
  readonly retrieveP50Ms: number;
  readonly retrieveP99Ms: number;
  /** Peak RSS above the idle RSS, bytes. */
  readonly rssAboveIdle: number;
  readonly peakRss: number;
  readonly batches: number;
  /** Data bytes per batch. */
  readonly bytesPerBatch: number;
}

/** Summarises one run. */
export function summarize(r: RunResult): Summary {
  const store = r.batches.map((b) => b.storeMs);
  const retrieve = r.batches.map((b) => b.retrieveMs);
  const roundTrip = r.batches.map((b) => b.storeMs + b.retrieveMs);
  // One caller: the median batch (robust on a noisy machine). Several: aggregate over the wall time.
  const seconds = r.workload === 'parallel' ? r.wallMs / 1000 / r.batches.length : median(roundTrip) / 1000;
  return {
    impl: r.impl,
    workload: r.workload,
    mbPerSec: r.bytesPerBatch / MB / seconds,
    payloadsPerSec: r.payloadsPerBatch / seconds,
    storeP50Ms: percentile(store, 50),
    storeP99Ms: percentile(store, 99),
    retrieveP50Ms: percentile(retrieve, 50),
    retrieveP99Ms: percentile(retrieve, 99),
    rssAboveIdle: r.peakRss - r.idleRss,
    peakRss: r.peakRss,
    batches: r.batches.length,
    bytesPerBatch: r.bytesPerBatch,
  };
}

/** One target check. */
export interface TargetCheck {
  readonly target: string;
  readonly value: string;
  readonly pass: boolean;
  /** What bounds the value on this machine (the hashing floor, the raw client's own number). */
  readonly note?: string;
}

/** Machine measurements the target notes are computed from. */
export interface TargetContext {
  /** SHA-256 throughput of this process (MB/s, 10^6 bytes), measured in the same run. */
  readonly sha256MBPerSec?: number;
  /**
   * Core alone (`src/core-alone.ts`: every mechanic of core — envelope, hashing, keys, claims and
   * their validation, decoding — over a Map, no backend) on the same workloads, in the same run.
   */
  readonly coreAlone?: readonly Summary[];
  /**
   * The raw clients storing under the contract's keys (`redis-raw-keys`, `postgres-raw-keys`: the
   * storage keys of DESIGN §4.4, 125 characters, instead of `raw/{n}`) on the same workloads, in
   * the same run.
   */
  readonly rawKeys?: readonly Summary[];
}

function find(summaries: readonly Summary[], impl: string, workload: WorkloadName): Summary | undefined {
  return summaries.find((s) => s.impl === impl && s.workload === workload);
}

/**
 * How far a driver's peak RSS above idle may lie above its raw client's and still count as "not
 * above" it: peak RSS moves by about this much between runs of the same code (fs, which reads and
 * writes exactly as its raw client does: 2.00× against 2.01×, 2.01× against 2.00×, 2.00× against
 * 2.00× in three full runs), so a smaller difference measures nothing.
 */
const RSS_TOLERANCE_MIB = 1;

/** The targets, evaluated on this run's numbers. */
export function checkTargets(
  summaries: readonly Summary[],
  roundTrips: readonly RoundTripCount[],
  context: TargetContext = {},
): TargetCheck[] {
  const checks: TargetCheck[] = [];
  // Against the raw client: at least 85 % of the SHA-256 floor (see ratioNote), which a driver that
  // hashes every byte both ways can approach but not pass.
  const floorShare = (impl: string, base: string, workload: WorkloadName, sha256MBPerSec: number) => {
    const a = find(summaries, impl, workload);
    const b = find(summaries, base, workload);
    if (a === undefined || b === undefined) return;
    const r = a.mbPerSec / b.mbPerSec;
    const floor = hashingFloor(b, sha256MBPerSec);
    const share = r / floor;
    checks.push({
      target: `${impl} ≥ 85% of its SHA-256 floor against ${base} on ${workload}`,
      value: `${Math.round(100 * share)}% (${r.toFixed(2)}× raw)`,
      pass: share >= 0.85,
      note: ratioNote(summaries, b, r, context, roundTrips),
    });
  };
  const ratio = (impl: string, base: string, workload: WorkloadName, min: number) => {
    const a = find(summaries, impl, workload);
    const b = find(summaries, base, workload);
    if (a === undefined || b === undefined) return;
    const r = a.mbPerSec / b.mbPerSec;
    const check = { target: `${impl} ≥ ${min}× ${base} on ${workload}`, value: `${r.toFixed(2)}×`, pass: r >= min };
    checks.push({ ...check, note: ratioNote(summaries, b, r, context, roundTrips) });
  };
  for (const backend of ['fs', 'redis', 'postgres', 's3']) {
    for (const w of ['distinct', 'small'] as const) {
      if (context.sha256MBPerSec === undefined) ratio(backend, `${backend}-raw`, w, 0.8);
      else floorShare(backend, `${backend}-raw`, w, context.sha256MBPerSec);
    }
  }
  ratio('s3', 's3-official', 'distinct', 1.5);
  ratio('s3', 's3-official', 'dupes', 3);
  for (const c of roundTrips.filter((c) => describeImpl(c.impl).kind === 'driver')) {
    checks.push({
      target: `${c.impl}: one round trip per batch (${c.batch})`,
      value: `store ${c.store}, retrieve ${c.retrieve}`,
      pass: c.store === 1 && c.retrieve === 1,
    });
  }
  for (const s of summaries.filter((s) => s.workload === 'big' && describeImpl(s.impl).kind === 'driver')) {
    const x = s.rssAboveIdle / s.bytesPerBatch;
    const raw = find(summaries, `${s.impl}-raw`, 'big');
    const rawX = raw === undefined ? undefined : raw.rssAboveIdle / raw.bytesPerBatch;
    const overRaw = raw === undefined ? 0 : (s.rssAboveIdle - raw.rssAboveIdle) / MiB;
    checks.push({
      target: `${s.impl} big: peak RSS ≤ 3× payload above idle, and not above its raw client's (by more than ${RSS_TOLERANCE_MIB} MiB)`,
      value: `${x.toFixed(2)}×`,
      pass: x <= 3 && overRaw <= RSS_TOLERANCE_MIB,
      note:
        rawX === undefined
          ? undefined
          : `the raw client alone: ${rawX.toFixed(2)}× (${overRaw >= 0 ? '+' : ''}${overRaw.toFixed(1)} MiB against it)`,
    });
  }
  return checks;
}

/** Milliseconds of one batch (store + retrieve) at a summary's rate. */
function batchMs(s: Summary): number {
  return (s.bytesPerBatch / MB / s.mbPerSec) * 1000;
}

function fmtMs(ms: number): string {
  return ms < 10 ? ms.toFixed(1) : Math.round(ms).toString();
}

/** Milliseconds to SHA-256 a batch's bytes twice (out and back in) at `sha256MBPerSec`. */
function hashingMs(s: Summary, sha256MBPerSec: number): number {
  return ((2 * s.bytesPerBatch) / MB / sha256MBPerSec) * 1000;
}

/** raw time / (raw time + hashing the batch's bytes twice): the best ratio to the raw client a hashing driver can reach. */
function hashingFloor(raw: Summary, sha256MBPerSec: number): number {
  const rawMs = batchMs(raw);
  return rawMs / (rawMs + hashingMs(raw, sha256MBPerSec));
}

/**
 * The server's own time per batch for a driver and its raw client (see `roundtrips.ts`), when
 * the run measured it for a batch of the workload's shape.
 */
function serverTimes(
  roundTrips: readonly RoundTripCount[],
  raw: Summary,
): { driverMs: number; rawMs: number; method: string } | undefined {
  // Only a round-trip batch of the workload's size (not for the smaller batches of a quick run).
  const of = (impl: string) => roundTrips.find((c) => c.impl === impl && c.bytesPerBatch === raw.bytesPerBatch);
  const driver = of(raw.impl.replace(/-raw$/, ''));
  const base = of(raw.impl);
  if (driver?.serverMs === undefined || base?.serverMs === undefined) return undefined;
  return { driverMs: driver.serverMs, rawMs: base.serverMs, method: driver.serverMethod ?? '' };
}

/**
 * What bounds a ratio on this machine. Against a raw client: every driver must SHA-256 each byte
 * on the way out (the key) and on the way back (integrity), which the raw client does not; the
 * best ratio a driver can reach is raw time / (raw time + hashing the batch twice). With core
 * alone measured: raw time / (raw time + core's own time), and where the server's own time per
 * batch was measured (Redis, PostgreSQL), the server's extra time for what the driver stores
 * (its keys, its expiry or lifecycle columns) added to that. Against the official S3 driver: the
 * raw client's own ratio to it (the same requests cannot go faster).
 */
function ratioNote(
  summaries: readonly Summary[],
  base: Summary,
  r: number,
  context: TargetContext,
  roundTrips: readonly RoundTripCount[],
): string | undefined {
  if (base.impl.endsWith('-raw') && context.sha256MBPerSec !== undefined) {
    const floor = hashingFloor(base, context.sha256MBPerSec);
    const hashing = `SHA-256 floor ${floor.toFixed(2)}× (raw + hashing every byte out and back in at ${Math.round(context.sha256MBPerSec)} MB/s): ${Math.round((100 * r) / floor)}% of it`;
    const core = context.coreAlone?.find((s) => s.workload === base.workload);
    if (core === undefined) return hashing;
    // Driver time ≥ raw time + core's own time: the best ratio a driver built on this core reaches.
    const rawMs = batchMs(base);
    const coreMs = batchMs(core);
    const hashMs = hashingMs(base, context.sha256MBPerSec);
    const ceiling = rawMs / (rawMs + coreMs);
    const withCore = `${hashing}; core alone (same run) ${fmtMs(coreMs)} ms per batch against raw ${fmtMs(rawMs)} ms, ${fmtMs(hashMs)} ms of it hashing: raw + core = ${ceiling.toFixed(2)}× raw, ${Math.round((100 * r) / ceiling)}% of it`;
    const notes = [withCore];
    const server = serverTimes(roundTrips, base);
    if (server !== undefined) {
      // One caller waits for the server: its extra time for the driver's commands adds to the wall time.
      const extraMs = Math.max(0, server.driverMs - server.rawMs);
      const withServer = rawMs / (rawMs + coreMs + extraMs);
      notes.push(
        `the server's own time per batch (${server.method}): ${fmtMs(server.driverMs)} ms for the driver against ${fmtMs(server.rawMs)} ms for raw: raw + core + the server's extra = ${withServer.toFixed(2)}× raw, ${Math.round((100 * r) / withServer)}% of it`,
      );
    }
    if (base.impl === 'fs-raw') {
      // Every store waits for its files' fsyncs: how far the raw client's own stores spread in the
      // same run says how much of any ratio the disk decides (see the README's fs A/B).
      notes.push(
        `the raw client's own stores in this run: p50 ${fmtMs(base.storeP50Ms)} ms, p99 ${fmtMs(base.storeP99Ms)} ms (${(base.storeP99Ms / base.storeP50Ms).toFixed(1)}× apart: the disk's fsyncs; \`node dist/fs-protocols.js\` compares the driver's file protocol with raw's on the disk of one moment)`,
      );
    }
    const keyed = context.rawKeys?.find((s) => s.impl === `${base.impl}-keys` && s.workload === base.workload);
    if (keyed !== undefined) {
      const keyedMs = batchMs(keyed);
      const withKeys = rawMs / (keyedMs + coreMs);
      notes.push(
        `the raw client with the contract's keys (DESIGN §4.4, 125 characters; same run) ${fmtMs(keyedMs)} ms per batch: that + core = ${withKeys.toFixed(2)}× raw, ${Math.round((100 * r) / withKeys)}% of it`,
      );
    }
    return notes.join('; ');
  }
  if (base.impl === 's3-official') {
    const raw = find(summaries, 's3-raw', base.workload);
    if (raw) return `the raw client's own ratio to it on this server: ${(raw.mbPerSec / base.mbPerSec).toFixed(2)}×`;
  }
  return undefined;
}

/** The target checks as a Markdown table. */
export function formatTargetsMarkdown(targets: readonly TargetCheck[]): string {
  const lines = ['| target | value | result | bounded by |', '| --- | ---: | --- | --- |'];
  for (const t of targets) lines.push(`| ${t.target} | ${t.value} | ${t.pass ? 'PASS' : 'FAIL'} | ${t.note ?? ''} |`);
  return lines.join('\n');
}

function pad(s: string, n: number, right = false): string {
  return right ? s.padStart(n) : s.padEnd(n);
}

const HEAD = [
  'workload',
  'impl',
  'MB/s',
  'payloads/s',
  'store p50',
  'p99',
  'retrieve p50',
  'p99',
  'RSS+ MiB',
  'vs raw',
];

/** One table row per (workload, implementation) measured, in display order. */
function rows(summaries: readonly Summary[]): string[][] {
  const out: string[][] = [];
  for (const w of WORKLOADS) {
    for (const id of IMPL_IDS) {
      const s = find(summaries, id, w);
      if (s === undefined) continue;
      const { backend, kind } = describeImpl(id);
      const raw = kind === 'raw' ? undefined : find(summaries, `${backend}-raw`, w);
      out.push([
        w,
        id,
        s.mbPerSec.toFixed(1),
        s.payloadsPerSec.toFixed(0),
        s.storeP50Ms.toFixed(1),
        s.storeP99Ms.toFixed(1),
        s.retrieveP50Ms.toFixed(1),
        s.retrieveP99Ms.toFixed(1),
        (s.rssAboveIdle / 2 ** 20).toFixed(0),
        raw === undefined ? '' : `${(s.mbPerSec / raw.mbPerSec).toFixed(2)}×`,
      ]);
    }
  }
  return out;
}

/** The results table (plain text; latencies in ms). */
export function formatTable(summaries: readonly Summary[]): string {
  const widths = [9, 12, 8, 11, 10, 8, 13, 8, 9, 7];
  const line = (cells: string[]) => cells.map((c, i) => pad(c, widths[i] as number, i >= 2)).join(' ');
  return [line(HEAD), ...rows(summaries).map(line)].join('\n');
}

/** The table as Markdown (for the README; latencies in ms). */
export function formatMarkdown(summaries: readonly Summary[]): string {
  const head = HEAD.map((h, i) => (i >= 4 && i <= 7 ? `${h} (ms)` : h));
  return [
    `| ${head.join(' | ')} |`,
    `| ${head.map((_, i) => (i >= 2 ? '---:' : '---')).join(' | ')} |`,
    ...rows(summaries).map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}

const COLORS: Record<string, string> = { driver: '#2b6cb0', raw: '#a0aec0', official: '#dd6b20' };

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * A hand-rolled SVG: one panel per workload, one horizontal bar per implementation (MB/s stored
 * and read back), drivers in blue, raw-client baselines in grey, the official S3 driver in orange.
 */
export function renderSvg(summaries: readonly Summary[], subtitle: string): string {
  const panelW = 460;
  const barH = 16;
  const labelW = 100;
  const rows = IMPL_IDS.length;
  const panelH = 40 + rows * (barH + 4) + 10;
  const cols = 2;
  const width = cols * panelW + 20;
  const panels = WORKLOADS.length;
  const height = 60 + Math.ceil(panels / cols) * panelH + 30;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12" role="img" aria-label="Benchmark throughput per workload: drivers, raw-client baselines and the official S3 driver">`,
    '<title>Benchmark throughput per workload: drivers, raw-client baselines and the official S3 driver</title>',
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="10" y="22" font-size="16" font-weight="bold">Throughput: payload MB/s stored and read back (higher is better)</text>`,
    `<text x="10" y="42" fill="#4a5568">${escapeXml(subtitle)}</text>`,
  ];
  WORKLOADS.forEach((w, p) => {
    const x0 = 10 + (p % cols) * panelW;
    const y0 = 60 + Math.floor(p / cols) * panelH;
    const mine = IMPL_IDS.map((id) => find(summaries, id, w));
    const max = Math.max(1, ...mine.map((s) => s?.mbPerSec ?? 0));
    out.push(`<text x="${x0}" y="${y0 + 16}" font-size="14" font-weight="bold">${w}</text>`);
    IMPL_IDS.forEach((id, i) => {
      const s = mine[i];
      const y = y0 + 28 + i * (barH + 4);
      const barMax = panelW - labelW - 70;
      const len = s === undefined ? 0 : Math.max(1, (s.mbPerSec / max) * barMax);
      const color = COLORS[describeImpl(id).kind] ?? '#718096';
      out.push(`<text x="${x0 + labelW - 6}" y="${y + barH - 4}" text-anchor="end">${id}</text>`);
      out.push(`<rect x="${x0 + labelW}" y="${y}" width="${len.toFixed(1)}" height="${barH}" fill="${color}"/>`);
      out.push(
        `<text x="${x0 + labelW + len + 4}" y="${y + barH - 4}" fill="#2d3748">${s === undefined ? 'n/a' : s.mbPerSec.toFixed(1)}</text>`,
      );
    });
  });
  const ly = height - 14;
  let lx = 10;
  for (const [kind, label] of [
    ['driver', 'our driver'],
    ['raw', 'raw client baseline'],
    ['official', 'official @temporalio/external-storage-s3'],
  ] as const) {
    out.push(`<rect x="${lx}" y="${ly - 10}" width="12" height="12" fill="${COLORS[kind]}"/>`);
    out.push(`<text x="${lx + 16}" y="${ly}">${label}</text>`);
    lx += 40 + label.length * 6.5;
  }
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
