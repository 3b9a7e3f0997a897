/**
 * The lifecycle statements of the PostgreSQL driver (DESIGN §8): keyset-paginated listing and
 * batched, conditional deletes. The driver's `_list` / `_delete` hooks delegate here.
 *
 * @module
 */
import {
  type DeleteOutcome,
  type ListedObject,
  type ListQuery,
  type StorageDriverError,
  StorageDriverErrorCode,
  type StorageLocation,
  throwIfAborted,
} from '@x/storage-driver-core';
import type { PostgresQueryConfig, PostgresQueryResult } from './pool';

/**
 * Rows per `list` page (one `SELECT … ORDER BY key LIMIT 1000` each), and keys per delete
 * statement: memory stays bounded by one page whatever the table's size.
 */
export const POSTGRES_LIFECYCLE_BATCH_SIZE = 1000;

/** Runs one statement on a pooled connection checked out for it (honouring `signal` while waiting). */
export type RunStatement = (signal: AbortSignal, query: PostgresQueryConfig) => Promise<PostgresQueryResult>;

/** What the lifecycle statements need from the driver. */
export interface LifecycleTarget {
  /** `"schema"."table"`. */
  readonly table: string;
  /** Runs one statement. */
  readonly run: RunStatement;
  /** The location of a listed key (what `_parseClaim({ key })` returns), or `undefined` to skip the row. */
  readonly locate: (key: string) => StorageLocation | undefined;
  /** Error factory carrying the driver's name. */
  readonly error: (code: StorageDriverErrorCode, message: string) => StorageDriverError;
}

/** Collects bind parameters, returning the `$n` placeholder of each. */
class Params {
  readonly values: unknown[] = [];
  add(value: unknown, type: 'text' | 'timestamptz'): string {
    this.values.push(value);
    return `$${this.values.length}::${type}`;
  }
}

/**
 * The byte-order (`COLLATE "C"`) range of keys that start with `prefix`: `[prefix, upper)`, where
 * `upper` is `prefix` cut after its last character below U+007F, that character incremented (UTF-8
 * byte order is code point order, so every string starting with `prefix` is below it); `undefined`
 * when there is no such character. When that character is the last one, the range is exactly the
 * keys starting with `prefix`.
 */
export function prefixUpperBound(prefix: string): string | undefined {
  for (let i = prefix.length - 1; i >= 0; i--) {
    const c = prefix.charCodeAt(i);
    if (c < 0x7f) return prefix.slice(0, i) + String.fromCharCode(c + 1);
  }
  return undefined;
}

/**
 * One page of the keyset-paginated listing. `ORDER BY key` and `key > $after` both use the key
 * column's own collation, so they agree whatever it is (PostgreSQL's deterministic collations
 * are total orders) and the primary key index serves both. The prefix is matched as its byte-order
 * range (`key COLLATE "C" >= $prefix AND key COLLATE "C" < $upper`; no `LIKE` pattern, so `%` and
 * `_` in keys are plain characters), an index range when the column is `COLLATE "C"` (tables
 * created by this release) and an exact filter otherwise; `starts_with` is added only where the
 * range is not exact (a prefix ending in a non-ASCII character), because its default selectivity
 * makes the planner sort every match on every page. The age filter is `last_referenced < $before`.
 *
 * @internal exported for the plan tests
 */
export function listPageQuery(
  table: string,
  prefix: string | undefined,
  before: Date | undefined,
  after: string | undefined,
): PostgresQueryConfig {
  const p = new Params();
  const where: string[] = [];
  if (after !== undefined) where.push(`key > ${p.add(after, 'text')}`);
  if (prefix !== undefined && prefix.length > 0) {
    const start = p.add(prefix, 'text');
    where.push(`key COLLATE "C" >= ${start}`);
    const upper = prefixUpperBound(prefix);
    if (upper !== undefined) where.push(`key COLLATE "C" < ${p.add(upper, 'text')}`);
    if (upper === undefined || upper.length < prefix.length) where.push(`starts_with(key, ${start})`);
  }
  if (before !== undefined) where.push(`last_referenced < ${p.add(before, 'timestamptz')}`);
  return {
    text: [
      // Milliseconds as float8: independent of any timestamptz type parser installed on the pool.
      `SELECT key, size, (extract(epoch FROM last_referenced) * 1000)::float8 AS referenced_ms FROM ${table}`,
      ...(where.length > 0 ? [`WHERE ${where.join(' AND ')}`] : []),
      `ORDER BY key LIMIT ${POSTGRES_LIFECYCLE_BATCH_SIZE}`,
    ].join('\n'),
    values: p.values,
  };
}

/**
 * Streams the table's rows page by page (keyset pagination, {@link POSTGRES_LIFECYCLE_BATCH_SIZE}
 * rows a statement, a connection checked out per page and released before the page is yielded),
 * filtered in SQL by `query.prefix` and `query.referencedBefore`. Rows whose key is not a storage
 * key (written by hand) are skipped.
 *
 * @throws StorageDriverError `E_CONFIG` if rows come back with other types (a custom type parser);
 *   whatever `run` throws (raw `pg` errors, for the base class to wrap).
 */
export async function* listRows(target: LifecycleTarget, query: ListQuery): AsyncIterable<ListedObject> {
  const { prefix, referencedBefore, signal } = query;
  // PostgreSQL text cannot hold NUL: no key starts with such a prefix (and the server would refuse it).
  if (prefix?.includes('\u0000')) return;
  let after: string | undefined;
  for (;;) {
    throwIfAborted(signal);
    const result = await target.run(signal, listPageQuery(target.table, prefix, referencedBefore, after));
    const rows = result.rows as { key?: unknown; size?: unknown; referenced_ms?: unknown }[];
    for (const row of rows) {
      const { key, size, referenced_ms: ms } = row;
      if (typeof key !== 'string' || typeof size !== 'number' || typeof ms !== 'number' || !Number.isFinite(ms)) {
        throw target.error(
          StorageDriverErrorCode.CONFIG,
          'list got a row without a text key, an integer size and a time: is a custom type parser installed on the pool?',
        );
      }
      after = key;
      const location = target.locate(key);
      if (location === undefined) continue;
      yield { location, key, size, lastReferenced: new Date(Math.floor(ms)) };
    }
    if (rows.length < POSTGRES_LIFECYCLE_BATCH_SIZE) return;
  }
}

/**
 * Deletes rows by key, {@link POSTGRES_LIFECYCLE_BATCH_SIZE} keys per statement, one statement per
 * batch:
 *
 * - unconditional: `DELETE … WHERE key = ANY($1) RETURNING key`; the others are `missing`;
 * - with `referencedBefore`: the rows still last referenced before it are locked with
 *   `FOR UPDATE SKIP LOCKED` and deleted (a row a concurrent store holds is being re-referenced:
 *   skipped, never waited for), and the same statement reports which keys existed when it started
 *   (its snapshot still shows the rows it deletes): existing but not deleted is `kept`, absent is
 *   `missing`.
 *
 * @throws whatever `run` throws (raw `pg` errors, for the base class to wrap); `E_ABORTED` between
 *   batches.
 */
export async function deleteRows(
  target: LifecycleTarget,
  keys: readonly string[],
  referencedBefore: Date | undefined,
  signal: AbortSignal,
): Promise<DeleteOutcome[]> {
  const outcomes: DeleteOutcome[] = [];
  for (let i = 0; i < keys.length; i += POSTGRES_LIFECYCLE_BATCH_SIZE) {
    throwIfAborted(signal);
    const batch = keys.slice(i, i + POSTGRES_LIFECYCLE_BATCH_SIZE);
    const deleted = new Set<string>();
    const present = new Set<string>();
    if (referencedBefore === undefined) {
      const r = await target.run(signal, {
        text: `DELETE FROM ${target.table} WHERE key = ANY($1::text[]) RETURNING key`,
        values: [batch],
      });
      for (const row of r.rows as { key?: unknown }[]) if (typeof row.key === 'string') deleted.add(row.key);
    } else {
      const t = target.table;
      const r = await target.run(signal, {
        text: [
          'WITH doomed AS (',
          `  SELECT key FROM ${t} WHERE key = ANY($1::text[]) AND last_referenced < $2::timestamptz`,
          '  FOR UPDATE SKIP LOCKED',
          '), deleted AS (',
          `  DELETE FROM ${t} AS target USING doomed`,
          '  WHERE target.key = doomed.key AND target.last_referenced < $2::timestamptz',
          '  RETURNING target.key',
          ')',
          'SELECT item.key, deleted.key IS NOT NULL AS deleted,',
          `  EXISTS (SELECT 1 FROM ${t} AS existing WHERE existing.key = item.key) AS present`,
          'FROM unnest($1::text[]) AS item(key) LEFT JOIN deleted ON deleted.key = item.key',
        ].join('\n'),
        values: [batch, referencedBefore],
      });
      for (const row of r.rows as { key?: unknown; deleted?: unknown; present?: unknown }[]) {
        if (typeof row.key !== 'string') continue;
        if (row.deleted === true) deleted.add(row.key);
        else if (row.present === true) present.add(row.key);
      }
    }
    for (const key of batch) outcomes.push(deleted.has(key) ? 'deleted' : present.has(key) ? 'kept' : 'missing');
  }
  return outcomes;
}
