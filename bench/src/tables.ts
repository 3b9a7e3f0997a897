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

/**
 * A table as Markdown: the first `left` columns left-aligned, the others right-aligned, or
 * `right` lists the right-aligned columns by index.
 */
export function markdownTable(
  head: readonly string[],
  rows: readonly (readonly string[])[],
  left: number | { readonly right: readonly number[] } = 2,
): string {
  const isRight = (i: number) => (typeof left === 'number' ? i >= left : left.right.includes(i));
  return [
    `| ${head.join(' | ')} |`,
    `| ${head.map((_, i) => (isRight(i) ? '---:' : '---')).join(' | ')} |`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}
