/**
 * Plain-text and Markdown tables: the first `left` columns are labels (left-aligned), the
 * others numbers (right-aligned).
 *
 * @module
 */

/** A table as aligned plain text (two spaces between columns). */
export function textTable(head: readonly string[], rows: readonly (readonly string[])[], left = 2): string {
  const all = [head, ...rows];
  const widths = head.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  const line = (r: readonly string[]) =>
    r
      .map((c, i) => (i >= left ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return all.map(line).join('\n');
}

/** A table as Markdown (number columns right-aligned). */
export function markdownTable(head: readonly string[], rows: readonly (readonly string[])[], left = 2): string {
  return [
    `| ${head.join(' | ')} |`,
    `| ${head.map((_, i) => (i >= left ? '---:' : '---')).join(' | ')} |`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}
