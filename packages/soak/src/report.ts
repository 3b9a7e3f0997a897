/**
 * Output of a soak: one table row per driver, and the full results as JSON under `.tmp/soak/`.
 *
 * @module
 */
import { mkdir, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { mib } from './memory';
import type { SoakOptions, SoakResult } from './runner';

const COLUMNS = [
  'driver',
  'ops',
  'payloads st/rt',
  'MiB st/rt',
  'dedup',
  'claims',
  'objects',
  'errors',
  'integrity',
  'lost',
  'RSS MiB start→end',
  'heap MiB start/warm/end',
  'Δheap',
  'ΔAB',
  'result',
] as const;

const m = (bytes: number, digits = 1) => mib(bytes).toFixed(digits);

/** The summary table: one row per driver (see the README for how to read it). */
export function formatTable(results: readonly SoakResult[]): string {
  const rows: string[][] = results.map((r) => {
    const mem = r.memory;
    return [
      r.driver,
      String(r.storeCalls + r.retrieveCalls),
      `${r.payloadsStored}/${r.payloadsRetrieved}`,
      `${m(r.bytesStored, 0)}/${m(r.bytesRetrieved, 0)}`,
      String(r.dedupHits),
      String(r.distinctClaims),
      String(r.objects),
      String(r.errors),
      String(r.integrityFailures),
      String(r.lost),
      `${m(mem.start.rss, 0)}→${m(mem.end.rss, 0)}`,
      `${m(mem.start.heapUsed)}/${m(mem.warm.heapUsed)}/${m(mem.end.heapUsed)}`,
      `${mem.heapGrowth >= 0 ? '+' : ''}${m(mem.heapGrowth)}`,
      `${mem.arrayBuffersGrowth >= 0 ? '+' : ''}${m(mem.arrayBuffersGrowth)}`,
      r.passed ? 'PASS' : 'FAIL',
    ];
  });
  const widths = COLUMNS.map((c, i) => Math.max(c.length, ...rows.map((row) => (row[i] as string).length)));
  const line = (cells: readonly string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join('  ');
  const out = [line(COLUMNS), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
  for (const r of results) {
    for (const f of r.failures) out.push(`${r.driver}: FAIL ${f}`);
    for (const e of r.errorSamples) out.push(`${r.driver}:   error ${e.op} ${e.code}: ${e.message}`);
    for (const s of r.integritySamples) out.push(`${r.driver}:   integrity ${s}`);
    for (const [name, n] of Object.entries(r.warnings)) {
      out.push(
        `${r.driver}: note: ${n} process warning(s) ${name} (not a failure), e.g. ${r.warningSamples.find((w) => w.startsWith(name))}`,
      );
    }
  }
  return out.join('\n');
}

/** The JSON document a soak run writes. */
export interface SoakReport {
  /** When the run started (ISO 8601). */
  readonly startedAt: string;
  /** When it finished (ISO 8601). */
  readonly finishedAt: string;
  /** `process.version`. */
  readonly node: string;
  /** Whether the heap readings followed a forced GC. */
  readonly gcForced: boolean;
  /** The options used. */
  readonly options: SoakOptions;
  /** One result per driver. */
  readonly results: readonly SoakResult[];
  /** Whether every driver passed. */
  readonly passed: boolean;
}

/** The repository's `.tmp/soak/` directory (gitignored). */
export const DEFAULT_OUTPUT_DIR = path.resolve(__dirname, '..', '..', '..', '.tmp', 'soak');

/** Writes `report` as JSON to `file` (default `.tmp/soak/soak-<timestamp>.json`); resolves to the path. */
export async function writeReport(report: SoakReport, file?: string): Promise<string> {
  const target = file ?? path.join(DEFAULT_OUTPUT_DIR, `soak-${report.startedAt.replace(/[:.]/g, '-')}.json`);
  await mkdir(path.dirname(target), { recursive: true });
  await writeFile(target, `${JSON.stringify(report, null, 2)}\n`);
  return target;
}
