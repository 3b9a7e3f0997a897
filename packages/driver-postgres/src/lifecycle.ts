/**
 * The lifecycle of the PostgreSQL driver (DESIGN §8): keyset-paginated listing and batched,
 * conditional deletes (their SQL is in `statements.ts`). The driver's `_list` / `_delete` hooks
 * delegate here.
 *
 * @module
 */
import {
  configError,
  type DeleteOutcome,
  type ListedObject,
  type ListQuery,
  type StorageLocation,
  throwIfAborted,
} from '@x/storage-driver-core';
import { type PostgresPool, runStatement } from './pool';
import type { PostgresStatements } from './statements';

/**
 * Rows per `list` page (one `SELECT … ORDER BY key LIMIT 1000` each), and keys per delete
 * statement: memory stays bounded by one page whatever the table's size.
 */
export const POSTGRES_LIFECYCLE_BATCH_SIZE = 1000;

/** What the lifecycle statements need from the driver. */
export interface LifecycleTarget {
  /** The statements of the driver's table. */
  readonly statements: PostgresStatements;
  /** The pool; each statement runs on a connection checked out for it. */
  readonly pool: PostgresPool;
  /** The location of a listed key (what `_parseClaim({ key })` returns), or `undefined` to skip the row. */
  readonly locate: (key: string) => StorageLocation | undefined;
}

/**
 * Streams the table's rows page by page (keyset pagination, {@link POSTGRES_LIFECYCLE_BATCH_SIZE}
 * rows a statement, a connection checked out per page and released before the page is yielded),
 * filtered in SQL by `query.prefix` and `query.referencedBefore`. Rows whose key is not a storage
 * key (written by hand) are skipped.
 *
 * @throws StorageDriverError `E_CONFIG` if rows come back with other types (a custom type parser);
 *   whatever the statements throw (raw `pg` errors, for the base class to wrap).
 */
export async function* listRows(target: LifecycleTarget, query: ListQuery): AsyncIterable<ListedObject> {
  const { prefix, referencedBefore, signal } = query;
  // PostgreSQL text cannot hold NUL: no key starts with such a prefix (and the server would refuse it).
  if (prefix?.includes('\u0000')) return;
  let after: string | undefined;
  for (;;) {
    throwIfAborted(signal);
    const result = await runStatement(
      target.pool,
      signal,
      target.statements.listPage(prefix, referencedBefore, after, POSTGRES_LIFECYCLE_BATCH_SIZE),
    );
    const rows = result.rows as { key?: unknown; size?: unknown; referenced_ms?: unknown }[];
    for (const row of rows) {
      const { key, size, referenced_ms: ms } = row;
      if (typeof key !== 'string' || typeof size !== 'number' || typeof ms !== 'number' || !Number.isFinite(ms)) {
        throw configError(
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
 * @throws whatever the statements throw (raw `pg` errors, for the base class to wrap); `E_ABORTED` between
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
      const r = await runStatement(target.pool, signal, target.statements.delete(batch));
      for (const row of r.rows as { key?: unknown }[]) if (typeof row.key === 'string') deleted.add(row.key);
    } else {
      const r = await runStatement(
        target.pool,
        signal,
        target.statements.deleteReferencedBefore(batch, referencedBefore),
      );
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
