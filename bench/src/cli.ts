/**
 * `pnpm bench [--quick] [--strict] [--workloads=a,b] [--impls=a,b]`: runs every (implementation, workload)
 * pair in a fresh child process against the shared loopback servers, counts round trips, prints
 * the table and the targets, and writes `results/latest.json` and `results/latest.svg`
 * (`results/quick/` with `--quick`, so a CI smoke run never overwrites the committed results).
 *
 * @module
 */

import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import { join } from 'node:path';
import { SERVICES } from '@x/test-backends';
import { Redis } from 'ioredis';
import pg from 'pg';

import { median } from './env';
import { IMPL_IDS } from './impls';
import { checkTargets, formatMarkdown, formatTable, formatTargetsMarkdown, renderSvg, summarize } from './report';
import type { RoundTripCount } from './roundtrips';
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

/** Runs `node worker.js ...args` in a fresh process; its stderr is shown only if it fails. */
function child(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--expose-gc', join(__dirname, 'worker.js'), ...args], {
      stdio: ['ignore', 'ignore', 'pipe'],
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

async function main(argv: string[]): Promise<number> {
  const quick = argv.includes('--quick');
  const workloads = (option(argv, 'workloads') ?? [...WORKLOADS]) as WorkloadName[];
  const impls = option(argv, 'impls') ?? IMPL_IDS;
  for (const w of workloads) if (!WORKLOADS.includes(w)) throw new Error(`unknown workload ${w}`);
  for (const i of impls) if (!IMPL_IDS.includes(i)) throw new Error(`unknown implementation ${i}`);

  // The shared loopback servers the tests use (idempotent: reuses running ones).
  if (process.env.XSTORAGE_BENCH_SKIP_SERVICES !== '1') {
    execFileSync('bash', [join(REPO, 'scripts', 'services.sh'), 'start', 'redis', 'postgres', 's3'], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
  }

  const started = Date.now();
  const tmp = await mkdtemp(join(os.tmpdir(), 'xs-bench-results-'));
  const results: RunResult[] = [];
  let roundTrips: RoundTripCount[] = [];
  try {
    // Full run: one fresh process per (workload, implementation). Quick run: one per
    // implementation for all workloads (process start-up dominates a smoke test).
    const groups = quick ? [workloads] : workloads.map((w) => [w]);
    for (const group of groups) {
      for (const w of group) {
        const spec = workloadSpec(w, quick);
        console.log(`${w}: ${spec.description} (${spec.batches} batch(es) per caller)`);
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
    if (impls.some((i) => i.startsWith('redis') || i.startsWith('postgres'))) {
      const file = join(tmp, 'roundtrips.json');
      await child(['roundtrips', file]);
      roundTrips = JSON.parse(await readFile(file, 'utf8')) as RoundTripCount[];
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }

  const summaries = results.map(summarize);
  const sha256MBPerSec = measureSha256MBPerSec();
  const targets = checkTargets(summaries, roundTrips, { sha256MBPerSec });
  console.log(`\n${formatTable(summaries)}\n`);
  console.log('round trips per batch:');
  for (const c of roundTrips) {
    console.log(`  ${c.impl.padEnd(13)} ${c.batch.padEnd(14)} store ${c.store}, retrieve ${c.retrieve}  [${c.method}]`);
  }
  console.log(quick ? '\ntargets (quick mode: 1 batch, one process for all workloads; not meaningful):' : '\ntargets:');
  for (const t of targets) {
    console.log(`  ${t.pass ? 'PASS' : 'FAIL'}  ${t.target}: ${t.value}${t.note ? `  [${t.note}]` : ''}`);
  }

  const machine = machineInfo();
  const versions: Record<string, string> = {};
  for (const name of [
    '@x/storage-driver-core',
    '@x/storage-driver-fs',
    '@x/storage-driver-redis',
    '@x/storage-driver-postgres',
    '@x/storage-driver-s3',
    '@temporalio/external-storage-s3',
    '@temporalio/common',
    '@aws-sdk/client-s3',
    'ioredis',
    'pg',
  ]) {
    versions[name] = packageVersion(name);
  }
  const report = {
    date: new Date().toISOString(),
    mode: quick ? 'quick' : 'full',
    durationSeconds: Math.round((Date.now() - started) / 1000),
    machine,
    packages: versions,
    servers: await serverVersions(),
    workloads: workloads.map((w) => workloadSpec(w, quick)),
    summaries,
    roundTrips,
    sha256MBPerSec,
    targets,
    runs: results,
  };
  const outDir = join(BENCH_DIR, 'results', ...(quick ? ['quick'] : []));
  await mkdir(outDir, { recursive: true });
  await writeFile(join(outDir, 'latest.json'), `${JSON.stringify(report, null, 2)}\n`);
  const subtitle = `${report.date.slice(0, 10)} · ${machine.cpuModel} × ${machine.cores} · Node ${machine.node} · Redis ${report.servers['redis']} · ${report.servers['postgres']?.split(' ').slice(0, 2).join(' ')} · moto ${report.servers['moto']}${quick ? ' · QUICK MODE' : ''}`;
  await writeFile(join(outDir, 'latest.svg'), renderSvg(summaries, subtitle));
  await writeFile(join(outDir, 'latest.md'), `${formatMarkdown(summaries)}\n\n${formatTargetsMarkdown(targets)}\n`);
  console.log(`\nwrote ${join(outDir, 'latest.json')}, latest.svg, latest.md (${report.durationSeconds} s)`);
  // Missed targets are reported, not fatal, unless --strict (quick mode never: its numbers are noise).
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
