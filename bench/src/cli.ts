/**
 * `pnpm bench [--quick] [--strict] [--e2e] [--s3-latency] [--groups=…] [--workloads=a,b] [--impls=a,b]`:
 * runs the benchmark groups and writes their results.
 *
 * - `micro` (the loopback workloads): every (implementation, workload) pair in a fresh child
 *   process against the shared loopback servers, round trips counted, the chart.
 * - `s3-latency`: the S3 implementations through a latency-injecting proxy in front of moto
 *   (`--latency=20` ms per request, `--bandwidth=` MiB/s optional), 3 runs each, medians, and
 *   the requests each operation sends.
 * - `otel`: what `@x/storage-driver-otel` costs — `small` and `distinct` on fs and Redis, the
 *   driver plain, instrumented without an SDK (no-op provider) and with the real SDK.
 * - `e2e`: workflows on a Temporal dev server, inline vs every driver vs the official S3 driver.
 *
 * A plain `pnpm bench` runs all four and writes `results/latest.{json,md,svg}`; `--quick` runs
 * `micro`, a few requests of `s3-latency` and `otel` on the in-memory driver (never `e2e`) into
 * `results/quick/`; `--e2e`, `--s3-latency` or `--otel` (or `--groups=`) runs only those groups,
 * into `results/<groups>/`, so a partial
 * run never overwrites the full run's files.
 *
 * @module
 */

import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { SERVICES } from '@x/test-servers';
import { Redis } from 'ioredis';
import pg from 'pg';

import { type E2eReport, e2eMarkdown, printE2e, runE2eGroup } from './e2e';
import { E2E_IMPLS, type E2eImpl } from './e2e-stores';
import { flushFilesystems, median } from './env';
import { IMPL_IDS, RAW_KEYS_IMPL_IDS } from './impls';
import { type OtelReport, otelMarkdown, printOtel, runOtelGroup } from './otel';
import { checkTargets, formatMarkdown, formatTable, formatTargetsMarkdown, renderSvg, summarize } from './report';
import type { RoundTripCount } from './roundtrips';
import {
  printS3Latency,
  runS3LatencyGroup,
  S3_LATENCY_ALL_IMPLS,
  S3_LATENCY_WORKLOADS,
  type S3LatencyReport,
  s3LatencyMarkdown,
} from './s3-latency';
import { type RunResult, WORKLOADS, type WorkloadName, workloadSpec } from './workloads';

const BENCH_DIR = join(__dirname, '..');
const REPO = join(BENCH_DIR, '..');

function option(argv: string[], name: string): string[] | undefined {
  const arg = argv.find((a) => a.startsWith(`--${name}=`));
  return arg === undefined
    ? undefined
    : arg
        .slice(name.length + 3)
        .split(',')
        .filter(Boolean);
}

/** Runs `node worker.js ...args` in a fresh process (extra `env`); its stderr is shown only if it fails. */
function child(args: string[], env?: Record<string, string>): Promise<void> {
  flushFilesystems();
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--expose-gc', join(__dirname, 'worker.js'), ...args], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: env === undefined ? process.env : { ...process.env, ...env },
    });
    let stderr = '';
    p.stderr.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-8000);
    });
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`worker ${args.join(' ')} failed:\n${stderr}`))));
  });
}

function packageVersion(name: string): string {
  try {
    return JSON.parse(execFileSync('cat', [join(BENCH_DIR, 'node_modules', name, 'package.json')]).toString())
      .version as string;
  } catch {
    return 'unknown';
  }
}

async function serverVersions(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const redis = new Redis(SERVICES.redisUrl, { lazyConnect: true });
  try {
    await redis.connect();
    out['redis'] = /redis_version:(\S+)/.exec(await redis.info('server'))?.[1] ?? 'unknown';
  } finally {
    redis.disconnect();
  }
  const pool = new pg.Pool({ connectionString: SERVICES.postgresUrl, max: 1 });
  try {
    out['postgres'] = (await pool.query<{ v: string }>('SELECT version() AS v')).rows[0]?.v ?? 'unknown';
  } finally {
    await pool.end();
  }
  const python = process.env.XSTORAGE_PYTHON ?? '/tmp/x-storage-services/venv/bin/python';
  try {
    out['moto'] = execFileSync(python, ['-c', 'import moto; print(moto.__version__)']).toString().trim();
  } catch {
    out['moto'] = 'unknown';
  }
  return out;
}

/**
 * The commit measured (`git rev-parse HEAD`), with ` (+ uncommitted changes in packages/)` when
 * the drivers' sources differ from it; `XSTORAGE_BENCH_COMMIT` overrides (a build made elsewhere).
 */
function sourceCommit(): string {
  if (process.env.XSTORAGE_BENCH_COMMIT) return process.env.XSTORAGE_BENCH_COMMIT;
  try {
    const git = (...args: string[]) =>
      execFileSync('git', ['-C', REPO, ...args], { stdio: ['ignore', 'pipe', 'ignore'] })
        .toString()
        .trim();
    const head = git('rev-parse', 'HEAD');
    const dirty = git('status', '--porcelain', '--', 'packages');
    return dirty === '' ? head : `${head} (+ uncommitted changes in packages/)`;
  } catch {
    return 'unknown';
  }
}

function machineInfo() {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memoryBytes: os.totalmem(),
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    node: process.version,
  };
}

/** The benchmark groups, in run order. */
const GROUPS = ['micro', 's3-latency', 'otel', 'e2e'] as const;
type Group = (typeof GROUPS)[number];

/** Which groups a command line asks for (see the module documentation). */
function selectGroups(argv: string[], quick: boolean): Group[] {
  const named = option(argv, 'groups');
  const flags = GROUPS.filter((g) => g !== 'micro' && argv.includes(`--${g}`));
  const chosen = named ?? (flags.length > 0 ? flags : quick ? ['micro', 's3-latency', 'otel'] : [...GROUPS]);
  for (const g of chosen) if (!(GROUPS as readonly string[]).includes(g)) throw new Error(`unknown group ${g}`);
  if (quick && chosen.includes('e2e')) throw new Error('the e2e group does not run in --quick mode');
  return GROUPS.filter((g) => chosen.includes(g));
}

function numberOption(argv: string[], name: string): number | undefined {
  const value = option(argv, name)?.[0];
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a non-negative number, got ${value}`);
  return n;
}

/** Servers each group needs (`scripts/services.sh start` names). */
const SERVICES_OF: Record<Group, string[]> = {
  micro: ['redis', 'postgres', 's3'],
  's3-latency': ['s3'],
  otel: ['redis'],
  e2e: ['redis', 'redis-cluster', 'postgres', 's3', 'venv'],
};

/** The micro group's results. */
interface MicroReport {
  workloads: ReturnType<typeof workloadSpec>[];
  summaries: ReturnType<typeof summarize>[];
  roundTrips: RoundTripCount[];
  sha256MBPerSec: number;
  /** Core alone (`src/core-alone.ts`: core over a Map) on `distinct` and `small`: what every driver pays besides its backend. */
  coreAlone: ReturnType<typeof summarize>[];
  /**
   * The raw clients of Redis and PostgreSQL storing under the contract's keys (`redis-raw-keys`,
   * `postgres-raw-keys`) on `distinct` and `small`: what the key format alone costs (absent from older runs).
   */
  rawKeys?: ReturnType<typeof summarize>[];
  targets: ReturnType<typeof checkTargets>;
  runs: RunResult[];
}

async function runMicro(quick: boolean, workloads: WorkloadName[], impls: string[], tmp: string): Promise<MicroReport> {
  const results: RunResult[] = [];
  let roundTrips: RoundTripCount[] = [];
  // Full run: one fresh process per (workload, implementation). Quick run: one per
  // implementation for all workloads (process start-up dominates a smoke test).
  const groups = quick ? [workloads] : workloads.map((w) => [w]);
  for (const group of groups) {
    for (const w of group) {
      const spec = workloadSpec(w, quick);
      const s3 = workloadSpec(w, quick, 's3').batches;
      console.log(
        `${w}: ${spec.description} (${spec.batches} batch(es) per caller${s3 === spec.batches ? '' : `; S3: ${s3}`})`,
      );
    }
    for (const id of impls) {
      const file = join(tmp, `${id}-${group.join('-')}.json`);
      const t0 = Date.now();
      await child([id, group.join(','), quick ? '1' : '0', file]);
      const runs = JSON.parse(await readFile(file, 'utf8')) as RunResult[];
      results.push(...runs);
      const rates = runs.map((r) => `${summarize(r).mbPerSec.toFixed(1).padStart(8)} MB/s`).join(' ');
      console.log(`  ${id.padEnd(12)} ${rates}  (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    }
  }
  // For the targets' notes, on the workloads the hashing-floor targets use, one fresh process each
  // like the implementations: core alone (`src/core-alone.ts`: core over a Map), and the raw
  // clients measured with the contract's keys (`RawKeys` in `src/impls.ts`).
  const floorWorkloads = workloads.filter((w) => w === 'distinct' || w === 'small');
  const extra = async (id: string, label: string): Promise<RunResult[]> => {
    const out: RunResult[] = [];
    for (const w of floorWorkloads) {
      const file = join(tmp, `${id}-${w}.json`);
      await child([id, w, quick ? '1' : '0', file]);
      const runs = JSON.parse(await readFile(file, 'utf8')) as RunResult[];
      out.push(...runs);
      console.log(`  ${label}, ${w}: ${summarize(runs[0] as RunResult).mbPerSec.toFixed(1)} MB/s`);
    }
    return out;
  };
  const coreAlone = (await extra('core', 'core alone (core over a Map)')).map(summarize);
  const rawKeys: ReturnType<typeof summarize>[] = [];
  for (const id of RAW_KEYS_IMPL_IDS.filter((k) => impls.includes(k.replace(/-keys$/, '')))) {
    rawKeys.push(...(await extra(id, `${id} (the raw client with the contract's keys)`)).map(summarize));
  }
  if (impls.some((i) => i.startsWith('redis') || i.startsWith('postgres'))) {
    const file = join(tmp, 'roundtrips.json');
    await child(['roundtrips', file]);
    roundTrips = JSON.parse(await readFile(file, 'utf8')) as RoundTripCount[];
  }
  const summaries = results.map(summarize);
  const sha256MBPerSec = measureSha256MBPerSec();
  const targets = checkTargets(summaries, roundTrips, { sha256MBPerSec, coreAlone, rawKeys });
  console.log(`\n${formatTable(summaries)}\n`);
  console.log('round trips per batch:');
  for (const c of roundTrips) {
    const server = c.serverMs === undefined ? '' : `; server ${c.serverMs.toFixed(1)} ms per batch (${c.serverMethod})`;
    console.log(
      `  ${c.impl.padEnd(13)} ${c.batch.padEnd(14)} store ${c.store}, retrieve ${c.retrieve}  [${c.method}${server}]`,
    );
  }
  console.log(quick ? '\ntargets (quick mode: 1 batch, one process for all workloads; not meaningful):' : '\ntargets:');
  for (const t of targets) {
    console.log(`  ${t.pass ? 'PASS' : 'FAIL'}  ${t.target}: ${t.value}${t.note ? `  [${t.note}]` : ''}`);
  }
  return {
    workloads: workloads.map((w) => workloadSpec(w, quick)),
    summaries,
    roundTrips,
    sha256MBPerSec,
    coreAlone,
    rawKeys,
    targets,
    runs: results,
  };
}

/** What `results/…/latest.json` holds. */
interface Report extends Partial<MicroReport> {
  date: string;
  mode: string;
  groups: Group[];
  durationSeconds: number;
  /** The sources measured (see {@link sourceCommit}). */
  commit?: string;
  machine: ReturnType<typeof machineInfo>;
  packages: Record<string, string>;
  servers: Record<string, string>;
  s3Latency?: S3LatencyReport;
  otel?: OtelReport;
  e2e?: E2eReport;
}

/** Writes `latest.md` (and, with micro results, `latest.svg`) of a report into `outDir`. */
async function render(report: Report, outDir: string): Promise<string[]> {
  const { machine, servers } = report;
  const sections: string[] = [];
  const written = ['latest.md'];
  if (report.summaries !== undefined && report.targets !== undefined) {
    const subtitle = `${report.date.slice(0, 10)} · ${machine.cpuModel} × ${machine.cores} · Node ${machine.node} · Redis ${servers['redis']} · ${servers['postgres']?.split(' ').slice(0, 2).join(' ')} · moto ${servers['moto']}${report.mode === 'quick' ? ' · QUICK MODE' : ''}`;
    await writeFile(join(outDir, 'latest.svg'), renderSvg(report.summaries, subtitle));
    written.push('latest.svg');
    sections.push(formatMarkdown(report.summaries), formatTargetsMarkdown(report.targets));
  }
  if (report.s3Latency) sections.push(s3LatencyMarkdown(report.s3Latency));
  if (report.otel) sections.push(otelMarkdown(report.otel));
  if (report.e2e) sections.push(e2eMarkdown(report.e2e));
  await writeFile(join(outDir, 'latest.md'), `${sections.join('\n\n')}\n`);
  return written;
}

async function main(argv: string[]): Promise<number> {
  // `--render=results/e2e/latest.json`: rewrite the Markdown (and chart) of a run, measuring nothing;
  // the loopback targets are evaluated again from the run's numbers (and written back to the JSON),
  // so a change to how a target is judged or explained applies to a run already made.
  const renderFile = option(argv, 'render')?.[0];
  if (renderFile !== undefined) {
    const path = resolve(process.env.INIT_CWD ?? process.cwd(), renderFile);
    const report = JSON.parse(await readFile(path, 'utf8')) as Report;
    if (report.summaries !== undefined) {
      report.targets = checkTargets(report.summaries, report.roundTrips ?? [], {
        sha256MBPerSec: report.sha256MBPerSec,
        coreAlone: report.coreAlone,
        rawKeys: report.rawKeys,
      });
      await writeFile(path, `${JSON.stringify(report, null, 2)}\n`);
    }
    const written = await render(report, dirname(path));
    console.log(`wrote ${written.map((f) => join(dirname(path), f)).join(', ')}`);
    return 0;
  }
  const quick = argv.includes('--quick');
  const groups = selectGroups(argv, quick);
  const workloadsArg = option(argv, 'workloads') as WorkloadName[] | undefined;
  const implsArg = option(argv, 'impls');
  for (const w of workloadsArg ?? []) if (!WORKLOADS.includes(w)) throw new Error(`unknown workload ${w}`);
  const knownImpls = [...IMPL_IDS, ...S3_LATENCY_ALL_IMPLS];
  for (const i of implsArg ?? []) if (!knownImpls.includes(i)) throw new Error(`unknown implementation ${i}`);
  const e2eImpls = option(argv, 'e2e-impls') as E2eImpl[] | undefined;
  for (const i of e2eImpls ?? []) if (!E2E_IMPLS.includes(i)) throw new Error(`unknown e2e implementation ${i}`);
  const repeats = numberOption(argv, 'repeat');

  // The shared loopback servers (idempotent: reuses running ones).
  if (process.env.XSTORAGE_BENCH_SKIP_SERVICES !== '1') {
    const needed = [...new Set(groups.flatMap((g) => SERVICES_OF[g]))];
    execFileSync('bash', [join(REPO, 'scripts', 'services.sh'), 'start', ...needed], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
  }

  const started = Date.now();
  // At the start, right after the build the run measures (sources edited during a long run are not in it).
  const commit = sourceCommit();
  const tmp = await mkdtemp(join(os.tmpdir(), 'xs-bench-results-'));
  let micro: MicroReport | undefined;
  let s3Latency: S3LatencyReport | undefined;
  let otel: OtelReport | undefined;
  let e2e: E2eReport | undefined;
  try {
    if (groups.includes('micro')) {
      const workloads = workloadsArg ?? [...WORKLOADS];
      const impls = implsArg?.filter((i) => IMPL_IDS.includes(i)) ?? IMPL_IDS;
      micro = await runMicro(quick, workloads, impls, tmp);
    }
    if (groups.includes('s3-latency')) {
      const impls = implsArg?.filter((i) => S3_LATENCY_ALL_IMPLS.includes(i));
      const workloads = workloadsArg?.filter((w) => S3_LATENCY_WORKLOADS.includes(w));
      s3Latency = await runS3LatencyGroup({
        quick,
        impls: impls !== undefined && impls.length > 0 ? impls : undefined,
        workloads: workloads !== undefined && workloads.length > 0 ? workloads : undefined,
        repeats,
        delayMs: numberOption(argv, 'latency'),
        bandwidthMiBps: numberOption(argv, 'bandwidth'),
        upstream: SERVICES.s3Endpoint,
        tmpDir: tmp,
        runChild: child,
      });
      printS3Latency(s3Latency);
    }
    if (groups.includes('otel')) {
      otel = await runOtelGroup({ quick, repeats, tmpDir: tmp, runChild: child });
      printOtel(otel);
    }
    if (groups.includes('e2e')) {
      e2e = await runE2eGroup({
        impls: e2eImpls,
        sizesMiB: option(argv, 'e2e-sizes')?.map(Number),
        repeats,
        tmpDir: tmp,
      });
      printE2e(e2e);
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }

  const machine = machineInfo();
  const versions: Record<string, string> = {};
  for (const name of [
    '@x/storage-driver-core',
    '@x/storage-driver-fs',
    '@x/storage-driver-redis',
    '@x/storage-driver-postgres',
    '@x/storage-driver-s3',
    '@x/storage-driver-otel',
    '@opentelemetry/api',
    '@opentelemetry/sdk-trace-base',
    '@opentelemetry/sdk-metrics',
    '@temporalio/external-storage-s3',
    '@temporalio/common',
    '@temporalio/worker',
    '@aws-sdk/client-s3',
    'ioredis',
    'pg',
  ]) {
    versions[name] = packageVersion(name);
  }
  const servers = await serverVersions();
  if (e2e) servers['temporal'] = e2e.server;
  const report: Report = {
    date: new Date().toISOString(),
    mode: quick ? 'quick' : 'full',
    groups,
    durationSeconds: Math.round((Date.now() - started) / 1000),
    commit,
    machine,
    packages: versions,
    servers,
    ...(micro ?? {}),
    ...(s3Latency ? { s3Latency } : {}),
    ...(otel ? { otel } : {}),
    ...(e2e ? { e2e } : {}),
  };
  // Partial runs write next to, never over, the full run's files: some groups into
  // results/<groups>/, subsets (workloads, implementations, sizes) into results/<groups>-subset/.
  const subset = ['workloads', 'impls', 'e2e-impls', 'e2e-sizes'].some((o) => option(argv, o) !== undefined);
  const full = groups.length === GROUPS.length && !subset;
  const subdir = quick ? ['quick'] : full ? [] : [`${groups.join('+')}${subset ? '-subset' : ''}`];
  const outDir = join(BENCH_DIR, 'results', ...subdir);
  await mkdir(outDir, { recursive: true });
  await writeFile(join(outDir, 'latest.json'), `${JSON.stringify(report, null, 2)}\n`);
  const written = await render(report, outDir);
  console.log(`\nwrote ${join(outDir, 'latest.json')}, ${written.join(', ')} (${report.durationSeconds} s)`);
  // Missed targets are reported, not fatal, unless --strict (quick mode never: its numbers are noise).
  // An end-to-end implementation that should have run and did not is a failure.
  if (e2e && e2e.failures.length > 0) return 1;
  const targets = [
    ...(micro?.targets ?? []),
    ...(s3Latency?.targets ?? []),
    ...(otel?.targets ?? []),
    ...(e2e?.targets ?? []),
  ];
  const failed = targets.filter((t) => !t.pass).length;
  return argv.includes('--strict') && !quick && failed > 0 ? 1 : 0;
}

/** SHA-256 throughput of this machine (MB/s, median of 5 hashes of 16 MiB), for the target notes. */
function measureSha256MBPerSec(): number {
  const bytes = randomBytes(16 * 1024 * 1024);
  const rates: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = process.hrtime.bigint();
    createHash('sha256').update(bytes).digest();
    rates.push(bytes.length / 1e6 / (Number(process.hrtime.bigint() - t0) / 1e9));
  }
  return median(rates);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    console.error(e);
    process.exit(2);
  },
);
