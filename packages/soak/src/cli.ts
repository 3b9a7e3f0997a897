/**
 * `pnpm soak` — the bounded concurrency soak over every driver, against the loopback servers of
 * `scripts/services.sh`. Prints a table per driver, writes JSON under `.tmp/soak/`, exits 1 if
 * any driver failed.
 *
 * @module
 */
import { parseArgs } from 'node:util';
import { BACKEND_KINDS, type BackendKind, isBackendKind } from '@x/test-backends';
import { getGc } from './memory';
import { formatTable, writeReport } from './report';
import { resolveSoakOptions, runSoaks, type SoakOptions } from './runner';

const USAGE = `usage: pnpm soak [--duration 40s] [--drivers ${BACKEND_KINDS.join(',')}] [--concurrency 32]
                 [--seed 1] [--heap-bound-mib 64] [--out file.json]

  --duration        timed phase per driver: 40 (seconds), 40s, 2m, 1500ms (default 40s)
  --drivers         comma-separated subset of: ${BACKEND_KINDS.join(', ')} (default all)
  --concurrency     concurrent callers sharing one driver instance (default 32)
  --seed            seed of every random choice (default 1)
  --heap-bound-mib  allowed heap growth after warm-up, MiB (default 64)
  --out             JSON output file (default .tmp/soak/soak-<timestamp>.json)`;

/** Parses `40`, `40s`, `2m`, `1500ms` into milliseconds. */
export function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (!match) throw new Error(`invalid duration ${JSON.stringify(text)}`);
  const value = Number(match[1]);
  const unit = match[2] ?? 's';
  const ms = unit === 'ms' ? value : unit === 's' ? value * 1000 : value * 60_000;
  if (!(ms > 0)) throw new Error('duration must be positive');
  return Math.round(ms);
}

function positiveInt(name: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer`);
  return n;
}

/** Parsed command line. */
interface CliArgs {
  options: Partial<SoakOptions>;
  drivers: BackendKind[];
  out: string | undefined;
}

function parse(argv: string[]): CliArgs | 'help' {
  const { values } = parseArgs({
    args: argv.filter((a) => a !== '--'),
    options: {
      duration: { type: 'string' },
      drivers: { type: 'string' },
      concurrency: { type: 'string' },
      seed: { type: 'string' },
      'heap-bound-mib': { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return 'help';
  const options: { -readonly [K in keyof SoakOptions]?: SoakOptions[K] } = {};
  if (values.duration !== undefined) options.durationMs = parseDuration(values.duration);
  if (values.concurrency !== undefined) options.concurrency = positiveInt('concurrency', values.concurrency);
  if (values.seed !== undefined) options.seed = positiveInt('seed', values.seed);
  if (values['heap-bound-mib'] !== undefined) {
    options.heapBoundBytes = positiveInt('heap-bound-mib', values['heap-bound-mib']) * 1024 * 1024;
  }
  let drivers: BackendKind[] = [...BACKEND_KINDS];
  if (values.drivers !== undefined) {
    drivers = [];
    for (const d of values.drivers.split(',').map((s) => s.trim())) {
      if (!isBackendKind(d))
        throw new Error(`unknown driver ${JSON.stringify(d)} (one of ${BACKEND_KINDS.join(', ')})`);
      if (!drivers.includes(d)) drivers.push(d);
    }
    if (drivers.length === 0) throw new Error('--drivers names no driver');
  }
  return { options, drivers, out: values.out };
}

async function main(argv: string[]): Promise<number> {
  let args: CliArgs | 'help';
  try {
    args = parse(argv);
  } catch (e) {
    console.error(`soak: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (args === 'help') {
    console.log(USAGE);
    return 0;
  }
  const options = resolveSoakOptions(args.options);
  const gcForced = getGc() !== null;
  console.log(
    `soak: ${args.drivers.join(', ')}; ${options.durationMs / 1000}s each (warm-up ${options.warmupMs / 1000}s), ` +
      `${options.concurrency} callers, seed ${options.seed}, heap bound +${options.heapBoundBytes / 1048576} MiB` +
      (gcForced ? ', heap read after a forced GC' : ', no forced GC available: heap readings are noisy'),
  );
  const startedAt = new Date().toISOString();
  const results = await runSoaks(args.drivers, options, { onProgress: (line) => console.log(`  ${line}`) });
  const passed = results.every((r) => r.passed);
  console.log(`\n${formatTable(results)}\n`);
  const file = await writeReport(
    { startedAt, finishedAt: new Date().toISOString(), node: process.version, gcForced, options, results, passed },
    args.out,
  );
  console.log(`soak: ${passed ? 'PASS' : 'FAIL'}; results in ${file}`);
  return passed ? 0 : 1;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      console.error('soak: crashed', e);
      process.exitCode = 1;
    },
  );
}
