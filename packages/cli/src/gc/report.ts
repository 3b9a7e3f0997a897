/**
 * The text summary of `x-storage gc`: one table for the mark phase (per namespace) and one for
 * the sweep (per driver and namespace), then what was left alone and why.
 *
 * @module
 */
import { formatBytes } from '../commands/sweep';
import type { GcReport } from './collect';
import type { DriverSweep } from './sweep';

/** Renders rows as left-aligned text columns separated by two spaces (numbers right-aligned). */
function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const numeric = header.map((_, i) => rows.length > 0 && rows.every((r) => /^[\d,.]+( \S+)?$|^-$/.test(r[i] ?? '')));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (numeric[i] && i > 0 ? c.padStart(widths[i] as number) : c.padEnd(widths[i] as number)))
      .join('  ')
      .trimEnd();
  return `${[line(header), ...rows.map(line)].join('\n')}\n`;
}

const n = (value: number) => value.toLocaleString('en-US');

/** Renders a duration in milliseconds as `850 ms`, `12.3 s`, `4.2 min`, `36 h`, `7 d`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${(ms / 60_000).toFixed(1)} min`;
  if (ms < 86_400_000) return `${Number((ms / 3_600_000).toFixed(1))} h`;
  return `${Number((ms / 86_400_000).toFixed(1))} d`;
}

function sweepRows(d: DriverSweep): string[][] {
  const rows: string[][] = [];
  const label = d.id;
  for (const [ns, s] of Object.entries(d.namespaces)) {
    if (s.skipped !== undefined) {
      rows.push([label, ns, n(s.objects), '-', '-', '-', '-', '-', '-', '-']);
      continue;
    }
    rows.push([
      label,
      ns,
      n(s.objects),
      n(s.referenced),
      n(s.inGrace),
      n(s.unknownAge),
      n(s.orphans),
      formatBytes(s.orphanBytes),
      d.dryRun ? '-' : n(s.deleted),
      d.dryRun ? '-' : formatBytes(s.freedBytes),
    ]);
  }
  return rows;
}

/** The summary `x-storage gc` prints (without `--json`). */
export function renderGcReport(report: GcReport): string {
  let text = `Mark: ${report.namespaces.length} namespace(s) in ${formatDuration(report.markDurationMs)}, ${n(report.rpc.calls)} RPCs (${n(report.rpc.retries)} retried); ${n(report.marked.objects)} distinct objects marked (mark set ${formatBytes(report.marked.bytes)})\n`;
  text += table(
    ['namespace', 'open', 'closed', 'gone', 'schedules', 'activities', 'events', 'references', 'unresolved'],
    report.namespaces.map((m) => {
      const unresolved =
        Object.values(m.unknownDrivers).reduce((a, b) => a + b, 0) +
        Object.values(m.invalidClaims).reduce((a, b) => a + b, 0) +
        m.unreadableReferences;
      return [
        m.namespace,
        n(m.openExecutions),
        n(m.closedExecutions),
        n(m.vanishedExecutions),
        n(m.schedules),
        n(m.standaloneActivities),
        n(m.historyEvents),
        n(m.references),
        n(unresolved),
      ];
    }),
  );
  for (const m of report.namespaces) {
    for (const [name, count] of Object.entries(m.unknownDrivers)) {
      text += `  ${m.namespace}: ${n(count)} reference(s) to driver ${JSON.stringify(name)}, which the config does not have for this namespace\n`;
    }
    for (const [id, count] of Object.entries(m.invalidClaims)) {
      text += `  ${m.namespace}: ${n(count)} reference(s) with a claim driver ${id} rejects\n`;
    }
    if (m.unreadableReferences > 0) {
      text += `  ${m.namespace}: ${n(m.unreadableReferences)} reference payload(s) that cannot be read\n`;
    }
    if (m.closedFilter === 'all') text += `  ${m.namespace}: every closed execution was read (--all-closed)\n`;
  }

  text += `\nSweep${report.dryRun ? ' (dry run: nothing deleted; run again with --delete to delete the orphans)' : ''}: orphans are objects no reference marks, last referenced before ${report.cutoff} (mark start − grace ${formatDuration(report.graceMs)})\n`;
  const rows = report.drivers.flatMap(sweepRows);
  if (rows.length > 0) {
    text += table(
      [
        'driver',
        'namespace',
        'objects',
        'referenced',
        'in grace',
        'unknown age',
        'orphans',
        'orphan bytes',
        'deleted',
        'freed',
      ],
      rows,
    );
  }
  for (const d of report.drivers) {
    const head = `  ${d.id} (${d.driverName}, ${d.driverType})`;
    if (d.status === 'skipped') {
      text += `${head}: not swept: ${d.reason}\n`;
      continue;
    }
    if (d.error !== undefined) {
      text += `${head}: failed: ${d.error.code ? `${d.error.code} ` : ''}${d.error.message}\n`;
    }
    text += `${head}: listed ${n(d.listed)} objects (${formatBytes(d.listedBytes)}) in ${formatDuration(d.durationMs)}\n`;
    for (const [ns, s] of Object.entries(d.namespaces)) {
      if (s.skipped !== undefined) text += `    ${ns}: not swept: ${s.skipped}\n`;
      else if (s.kept > 0 || s.missing > 0) {
        text += `    ${ns}: ${n(s.kept)} kept (stored again during the run), ${n(s.missing)} already gone\n`;
      }
    }
    const others = Object.entries(d.otherNamespaces);
    if (others.length > 0) {
      text += `    not scanned, left alone: ${others.map(([ns, c]) => `${ns} ${n(c.objects)} (${formatBytes(c.bytes)})`).join(', ')}\n`;
    }
    if (d.withoutNamespace.objects > 0) {
      text += `    without a namespace, left alone: ${n(d.withoutNamespace.objects)} (${formatBytes(d.withoutNamespace.bytes)})\n`;
    }
    if (d.unrecognizedKeys.objects > 0) {
      text += `    not storage keys, left alone: ${n(d.unrecognizedKeys.objects)} (${formatBytes(d.unrecognizedKeys.bytes)})\n`;
    }
    for (const e of d.errors.slice(0, 20)) text += `    error ${e.code} ${e.key}: ${e.message}\n`;
    if (d.errors.length > 20) text += `    … and ${d.errors.length - 20} more errors (--json lists them all)\n`;
  }
  return text;
}
