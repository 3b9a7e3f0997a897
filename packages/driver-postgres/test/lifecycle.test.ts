/**
 * Lifecycle on PostgreSQL beyond the conformance group: keyset pagination and its collation, prefix
 * and age filters in SQL, one statement per 1,000 deletions (counted with pg_stat_statements),
 * FOR UPDATE SKIP LOCKED against concurrent stores, concurrent sweepers, surfaced errors.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import type { StoredObject } from '@x/storage-driver-core';
import { captureStorageDriverError } from '@x/storage-driver-test-suite';
import type { Pool } from 'pg';
import { POSTGRES_LIFECYCLE_BATCH_SIZE, PostgresStorageDriver, resolvePostgresTable } from '../src';
import { PostgresStatements, prefixUpperBound } from '../src/statements';
import { release0Statements } from './fixtures/release-0';
import {
  collect,
  countRows,
  diffCalls,
  dropSchema,
  errorCode,
  makeDriver,
  makePool,
  meteredPool,
  payload,
  rowTimes,
  seededKey,
  seedRows,
  statementCalls,
  statementStats,
  text,
  uniqueSchema,
} from './helpers';

const HOUR = 3_600_000;
let pool: Pool;
let schema: string;
let driver: PostgresStorageDriver;
/** A pool on a login role of its own, whose statements pg_stat_statements counts. */
let metered: Awaited<ReturnType<typeof meteredPool>>;

beforeAll(() => {
  pool = makePool({ max: 8 });
});
afterAll(async () => {
  await pool.end();
});
beforeEach(async () => {
  schema = uniqueSchema('life');
  driver = await makeDriver(pool, schema, { ttl: HOUR });
  metered = await meteredPool(pool, { max: 2 });
});
afterEach(async () => {
  await metered.dispose();
  await dropSchema(pool, schema);
});

/** Keys are listed in strictly increasing order of the key column's collation (checked by the server). */
async function inServerOrder(keys: string[], collation: string): Promise<boolean> {
  const r = await pool.query<{ ok: boolean }>(
    `SELECT bool_and(k > lag) AS ok FROM (
       SELECT k COLLATE "${collation}" AS k, lag(k COLLATE "${collation}") OVER (ORDER BY i) AS lag
         FROM unnest($1::text[]) WITH ORDINALITY AS u(k, i)) s WHERE lag IS NOT NULL`,
    [keys],
  );
  return r.rows[0]?.ok === true;
}

describe('list', () => {
  it('pages by key, 1,000 rows a SELECT, and filters by age in SQL (only matching rows leave the server)', async () => {
    await seedRows(pool, driver, { n: 2500, namespace: 'old', age: '2 hours' });
    await seedRows(pool, driver, { n: 700, namespace: 'new' });
    const d = new PostgresStorageDriver({ pool: metered.pool, schema });
    expect(POSTGRES_LIFECYCLE_BATCH_SIZE).toBe(1000);
    const s0 = await statementStats(pool, metered.role);
    const all = await collect(d.list());
    const s1 = await statementStats(pool, metered.role);
    expect(all).toHaveLength(3200);
    expect(new Set(all.map((o) => o.key)).size).toBe(3200);
    expect(
      await inServerOrder(
        all.map((o) => o.key),
        'C',
      ),
    ).toBe(true);
    // 3,200 rows: pages of 1,000, 1,000, 1,000 and 200 (a short page ends the listing).
    expect(s1.get('SELECT')).toEqual({
      calls: (s0.get('SELECT')?.calls ?? 0) + 4,
      rows: (s0.get('SELECT')?.rows ?? 0) + 3200,
    });
    const old = await collect(d.list({ olderThan: HOUR }));
    const s2 = await statementStats(pool, metered.role);
    expect(old).toHaveLength(2500);
    expect(old.every((o) => o.key.startsWith('v0/ns/old/') && o.size === 10)).toBe(true);
    expect(old.every((o) => (o.lastReferenced?.getTime() ?? Number.POSITIVE_INFINITY) < Date.now() - HOUR)).toBe(true);
    // Only the 2,500 old rows were sent: the age filter ran in SQL.
    expect((s2.get('SELECT')?.rows ?? 0) - (s1.get('SELECT')?.rows ?? 0)).toBe(2500);
    expect((s2.get('SELECT')?.calls ?? 0) - (s1.get('SELECT')?.calls ?? 0)).toBe(3);
  });

  it('a prefix matches literally (% and _ are no wildcards) in SQL, as an index range on the COLLATE "C" key', async () => {
    // Namespaces whose keys a LIKE pattern built from the prefix would confuse: `_` matches any
    // character, `%` any run (`%25` is how the key spec writes a literal %).
    for (const namespace of ['a_c', 'abc', 'a%25c', 'a%25', 'a', 'ab'])
      await seedRows(pool, driver, { n: 5, namespace });
    const d = new PostgresStorageDriver({ pool: metered.pool, schema });
    const keysOf = async (prefix: string) => (await collect(d.list({ prefix }))).map((o) => o.key);
    const s0 = await statementStats(pool, metered.role);
    const underscore = await keysOf('v0/ns/a_c/');
    const percent = await keysOf('v0/ns/a%25');
    const s1 = await statementStats(pool, metered.role);
    expect(underscore.sort()).toEqual(Array.from({ length: 5 }, (_, i) => seededKey('a_c', i + 1)).sort());
    expect(new Set(percent.map((k) => k.split('/')[2]))).toEqual(new Set(['a%25c', 'a%25']));
    expect(percent).toHaveLength(10);
    expect((s1.get('SELECT')?.rows ?? 0) - (s0.get('SELECT')?.rows ?? 0)).toBe(15); // nothing else was read
    expect(await keysOf('v0/ns/a')).toHaveLength(30);
    expect(await keysOf('v0/ns/a\u0000')).toEqual([]); // no NUL in a PostgreSQL text: nothing to find
    expect(await keysOf('v0/ns/é/')).toEqual([]);
    // The byte-order upper bound of a prefix.
    expect(prefixUpperBound('v0/ns/a/')).toBe('v0/ns/a0');
    expect(prefixUpperBound('v0/ns/aé')).toBe('v0/ns/b');
    expect(prefixUpperBound('é\u007f')).toBeUndefined();
  });

  it('a prefix page is an index range scan in key order on a COLLATE "C" key (no sort of every match)', async () => {
    // More matches than a page: on every page but the last, the LIMIT stops the range scan early.
    for (let ns = 0; ns < 10; ns++) await seedRows(pool, driver, { n: 2500, namespace: `ns${ns}` });
    await pool.query(`ANALYZE ${driver.qualifiedTable}`);
    const plan = async (prefix: string, after?: string) => {
      const q = new PostgresStatements(resolvePostgresTable(driver)).listPage(
        prefix,
        undefined,
        after,
        POSTGRES_LIFECYCLE_BATCH_SIZE,
      );
      const r = await pool.query<{ 'QUERY PLAN': string }>({ text: `EXPLAIN ${q.text}`, values: q.values });
      return { sql: q.text, plan: r.rows.map((row) => row['QUERY PLAN']).join('\n') };
    };
    for (const after of [undefined, seededKey('ns7', 1250)]) {
      const { sql, plan: p } = await plan('v0/ns/ns7/', after);
      expect(sql).not.toContain('starts_with'); // the range is exact for an ASCII prefix
      expect(p).toMatch(/Index (Only )?Scan using \S+_pkey/);
      expect(p).toMatch(/Index Cond: .*key >= 'v0\/ns\/ns7\/'.*key < 'v0\/ns\/ns70'/);
      expect(p).not.toContain('Sort');
    }
    expect((await plan('v0/ns/é')).sql).toContain('starts_with'); // not exact: the range only bounds it
    expect(await collect(driver.list({ prefix: 'v0/ns/ns7/' }))).toHaveLength(2500);
  });

  it('keyset order and `key > $last` agree on a key column of another collation (a table of an earlier release)', async () => {
    // A table made by the previous release's DDL on a database whose default collation is
    // linguistic (ICU): it sorts `_`, `-` and `.` before letters and interleaves cases (a < A < b),
    // unlike byte order (A < B < _ < a). Pages must still meet exactly, and a prefix must still
    // match only its own keys.
    const legacy = uniqueSchema('icu');
    try {
      for (const statement of release0Statements(legacy)) await pool.query(statement);
      await pool.query(`ALTER TABLE "${legacy}".temporal_payloads ALTER COLUMN key TYPE text COLLATE "en-x-icu"`);
      const d = await makeDriver(pool, legacy);
      const namespaces = ['A', 'a', '_x', 'B', 'b', '-', '.', 'a-b', 'ab', 'a.b', 'Z'];
      for (const namespace of namespaces) await seedRows(pool, d, { n: 210, namespace });
      const all = await collect(d.list());
      expect(all).toHaveLength(namespaces.length * 210); // 2,310 rows: 3 pages, none lost or repeated
      expect(new Set(all.map((o) => o.key)).size).toBe(all.length);
      expect(
        await inServerOrder(
          all.map((o) => o.key),
          'en-x-icu',
        ),
      ).toBe(true);
      expect(
        await inServerOrder(
          all.map((o) => o.key),
          'C',
        ),
      ).toBe(false); // so the orders really differ
      const a = await collect(d.list({ prefix: 'v0/ns/a/' }));
      expect(new Set(a.map((o) => o.key.split('/')[2]))).toEqual(new Set(['a']));
      expect(a).toHaveLength(210);
    } finally {
      await dropSchema(pool, legacy);
    }
  });

  it('rows written by hand whose key is not a storage key are not listed and do not break a sweep', async () => {
    const [claim] = await driver.store({}, [payload('real')]);
    await pool.query(
      `INSERT INTO ${driver.qualifiedTable} (key, data, size, last_referenced) VALUES
         ('not a storage key', '\\x00', 1, now() - interval '1 day'),
         ('v0/ns/x/d/sha256/XYZ', '\\x00', 1, now() - interval '1 day')`,
    );
    await pool.query(`UPDATE ${driver.qualifiedTable} SET last_referenced = now() - interval '1 day'`);
    expect((await collect(driver.list())).map((o) => o.key)).toEqual([claim?.claimData.key]);
    expect(await driver.deleteExpired()).toMatchObject({ removed: 1, errors: [] });
    expect(await countRows(pool, driver)).toBe(2);
  });

  it('with the clock option, ages are measured from the clock (no SQL aging needed)', async () => {
    let clock = Date.now();
    const d = new PostgresStorageDriver({ pool, schema, ttl: HOUR, clock: () => clock });
    const claims = await d.store({}, [payload('aging'), payload('refreshed')]);
    clock += 2 * HOUR;
    await d.store({}, [payload('refreshed')]);
    expect((await collect(d.list({ olderThan: HOUR }))).map((o) => o.key)).toEqual([claims[0]?.claimData.key]);
    expect(await d.deleteExpired()).toMatchObject({ scanned: 1, removed: 1 });
    expect(text((await d.retrieve({}, [claims[1]!]))[0])).toBe('refreshed');
  });
});

describe('delete and deleteExpired', () => {
  it('one statement per 1,000 keys, which also tells deleted, kept and missing apart', async () => {
    await seedRows(pool, driver, { n: 2500, namespace: 'old', age: '2 hours' });
    // Ten of them re-referenced since: kept by a conditional delete.
    await pool.query(`UPDATE ${driver.qualifiedTable} SET last_referenced = now() WHERE key = ANY($1::text[])`, [
      Array.from({ length: 10 }, (_, i) => seededKey('old', i + 1)),
    ]);
    const d = new PostgresStorageDriver({ pool: metered.pool, schema });
    const keys = [
      ...Array.from({ length: 2500 }, (_, i) => seededKey('old', i + 1)),
      ...Array.from({ length: 100 }, (_, i) => seededKey('never', i + 1)),
    ];
    const before = await statementCalls(pool, metered.role);
    const conditional = await d.delete(keys, { referencedBefore: new Date(Date.now() - HOUR) });
    const afterConditional = await statementCalls(pool, metered.role);
    expect(conditional).toEqual({ deleted: 2490, deletedBytes: 0, kept: 10, missing: 100, errors: [] });
    expect(diffCalls(before, afterConditional)).toEqual({ WITH: 3 }); // 2,600 keys: 3 statements
    const unconditional = await d.delete(keys);
    expect(unconditional).toEqual({ deleted: 10, deletedBytes: 0, kept: 0, missing: 2590, errors: [] });
    expect(diffCalls(afterConditional, await statementCalls(pool, metered.role))).toEqual({ DELETE: 3 });
    expect(await countRows(pool, driver)).toBe(0);
  });

  it('deleteExpired over 2,500 expired rows: 3 list SELECTs and 3 conditional DELETEs, bytes reported', async () => {
    await seedRows(pool, driver, { n: 2500, namespace: 'old', age: '2 hours', size: 100 });
    await seedRows(pool, driver, { n: 300, namespace: 'live' });
    const d = new PostgresStorageDriver({ pool: metered.pool, schema, ttl: HOUR });
    const before = await statementCalls(pool, metered.role);
    const progress: number[] = [];
    const r = await d.deleteExpired({ onProgress: (p) => progress.push(p.removed) });
    expect(r).toEqual({ scanned: 2500, removed: 2500, removedBytes: 250_000, more: false, errors: [] });
    expect(progress).toEqual([1000, 2000, 2500]);
    expect(diffCalls(before, await statementCalls(pool, metered.role))).toEqual({ SELECT: 3, WITH: 3 });
    expect(await countRows(pool, driver)).toBe(300);
    const dry = await d.deleteExpired({ dryRun: true });
    expect(dry).toMatchObject({ scanned: 0, removed: 0 });
  });

  it('a conditional delete skips a row a concurrent store holds (FOR UPDATE SKIP LOCKED): kept, never waited for', async () => {
    const claims = await driver.store({}, [payload('being re-stored'), payload('abandoned')]);
    await pool.query(`UPDATE ${driver.qualifiedTable} SET last_referenced = now() - interval '2 hours'`);
    const [held, abandoned] = claims.map((c) => c.claimData.key as string) as [string, string];
    const store = await pool.connect();
    try {
      // A store's dedup hit mid-transaction: the row is locked and about to get a fresh time.
      await store.query('BEGIN');
      await store.query(`UPDATE ${driver.qualifiedTable} SET last_referenced = now() WHERE key = $1`, [held]);
      const started = Date.now();
      const r = await driver.delete([held, abandoned], { referencedBefore: new Date(Date.now() - HOUR) });
      expect(Date.now() - started).toBeLessThan(5000);
      expect(r).toMatchObject({ deleted: 1, kept: 1, missing: 0, errors: [] });
      await store.query('COMMIT');
    } finally {
      store.release();
    }
    expect(text((await driver.retrieve({}, [claims[0]!]))[0])).toBe('being re-stored');
    expect(await errorCode(() => driver.retrieve({}, [claims[1]!]))).toBe('E_NOT_FOUND');
    expect((await rowTimes(pool, driver, held)).lastReferenced).toBeGreaterThan(Date.now() - HOUR);
    expect(abandoned).toBeDefined();
  });

  it('two sweepers at once (separate pools) remove every expired row exactly once, without errors', async () => {
    await seedRows(pool, driver, { n: 6000, namespace: 'old', age: '2 hours' });
    await seedRows(pool, driver, { n: 100, namespace: 'live' });
    const p1 = makePool({ max: 1 });
    const p2 = makePool({ max: 1 });
    try {
      const a = new PostgresStorageDriver({ pool: p1, schema, ttl: HOUR });
      const b = new PostgresStorageDriver({ pool: p2, schema, ttl: HOUR });
      const [ra, rb] = await Promise.all([a.deleteExpired(), b.deleteExpired()]);
      expect([...(ra?.errors ?? []), ...(rb?.errors ?? [])]).toEqual([]);
      expect((ra?.removed ?? 0) + (rb?.removed ?? 0)).toBe(6000);
      expect(await countRows(pool, driver)).toBe(100);
    } finally {
      await Promise.all([p1.end(), p2.end()]);
    }
  });

  it('a store racing a sweeper that is deleting the same row waits for it and writes the row again', async () => {
    const [claim] = await driver.store({}, [payload('raced')]);
    const key = claim?.claimData.key ?? '';
    await pool.query(`UPDATE ${driver.qualifiedTable} SET last_referenced = now() - interval '2 hours'`);
    const sweeper = await pool.connect();
    try {
      // A sweeper mid-transaction: it has deleted the old row but not committed yet.
      await sweeper.query('BEGIN');
      const doomed = await sweeper.query(
        `DELETE FROM ${driver.qualifiedTable} WHERE last_referenced < now() - interval '1 hour' RETURNING key`,
      );
      expect(doomed.rows).toEqual([{ key }]);
      const storing = driver.store({}, [payload('raced')]); // a dedup hit on the row being deleted
      for (let i = 0; ; i++) {
        const r = await pool.query(
          `SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%INSERT INTO ${driver.qualifiedTable}%'`,
        );
        if (r.rows.length > 0) break;
        if (i > 200) throw new Error('the store never waited for the sweeper');
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      await sweeper.query('COMMIT');
      const [again] = await storing;
      expect(again).toEqual(claim);
    } finally {
      sweeper.release();
    }
    // The claim the store returned points at a row that exists, freshly referenced.
    expect(text((await driver.retrieve({}, [claim!]))[0])).toBe('raced');
    expect((await rowTimes(pool, driver, key)).lastReferenced).toBeGreaterThan(Date.now() - HOUR);
  });

  it('stores racing two concurrent sweepers: every claim a store returned stays readable', async () => {
    const payloads = Array.from({ length: 400 }, (_, i) => payload(`race ${i}`));
    await driver.store({}, payloads);
    await pool.query(`UPDATE ${driver.qualifiedTable} SET last_referenced = now() - interval '2 hours'`);
    const batches = Array.from({ length: 20 }, (_, i) => payloads.slice(i * 20, i * 20 + 20));
    const [claimed, r1, r2] = await Promise.all([
      Promise.all(batches.map((batch) => driver.store({}, batch))),
      driver.deleteExpired(),
      driver.deleteExpired(),
    ]);
    expect([...r1.errors, ...r2.errors]).toEqual([]);
    const back = await driver.retrieve({}, claimed.flat());
    expect(back.map(text)).toEqual(payloads.map(text));
    expect(await driver.deleteExpired()).toMatchObject({ removed: 0 });
  });

  it('surfaces errors: a statement timeout is E_BACKEND (retryable), a missing table E_CONFIG', async () => {
    await seedRows(pool, driver, { n: 10, namespace: 'old', age: '2 hours' });
    const impatient = makePool({ max: 1, statement_timeout: 300 });
    const holder = await pool.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(`LOCK TABLE ${driver.qualifiedTable} IN ACCESS EXCLUSIVE MODE`);
      const d = new PostgresStorageDriver({ pool: impatient, schema, ttl: HOUR });
      const err = await captureStorageDriverError(() => d.deleteExpired());
      expect([err.code, err.retryable]).toEqual(['E_BACKEND', true]);
      expect(err.message).toContain('57014');
      expect(impatient.idleCount).toBe(impatient.totalCount); // no connection leaked
      await holder.query('ROLLBACK');
      expect(await d.deleteExpired()).toMatchObject({ removed: 10 });
    } finally {
      holder.release();
      await impatient.end();
    }
    const missing = new PostgresStorageDriver({ pool, schema, table: 'missing', ttl: HOUR });
    expect(await errorCode(() => missing.deleteExpired())).toBe('E_CONFIG');
    expect(await errorCode(() => collect(missing.list()))).toBe('E_CONFIG');
    expect(await errorCode(() => missing.delete([seededKey('x', 1)]))).toBe('E_CONFIG');
  });

  it('an aborted signal is E_ABORTED and deletes nothing; a listing stopped early releases its connection', async () => {
    await seedRows(pool, driver, { n: 2500, namespace: 'old', age: '2 hours' });
    const ac = new AbortController();
    ac.abort();
    expect(await errorCode(() => driver.deleteExpired({ signal: ac.signal }))).toBe('E_ABORTED');
    expect(await errorCode(() => driver.delete([seededKey('old', 1)], { signal: ac.signal }))).toBe('E_ABORTED');
    expect(await countRows(pool, driver)).toBe(2500);
    const one = makePool({ max: 1 });
    try {
      const d = new PostgresStorageDriver({ pool: one, schema });
      let first: StoredObject | undefined;
      for await (const o of d.list()) {
        first = o;
        break;
      }
      expect(first?.key.startsWith('v0/ns/old/')).toBe(true);
      expect(one.idleCount).toBe(one.totalCount);
      // deleteExpired deletes between list pages on the same single-connection pool: no deadlock.
      expect(await d.deleteExpired({ olderThan: HOUR })).toMatchObject({ removed: 2500 });
    } finally {
      await one.end();
    }
  });
});
