/**
 * Upgrading a payload table created by the previous release (test/fixtures/release-0.ts, its exact
 * DDL and store statement) in place: by ensureSchema (idempotent, concurrent, advisory-locked), or
 * by a migration tool with schemaUpgradeSql / schemaCleanupSql.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { encodePayload, type Payload, StorageDriverClaim, sha256Hex } from '@x/storage-driver-core';
import type { Pool } from 'pg';
import { PostgresStorageDriver, schemaCleanupSql, schemaUpgradeSql, schemaUpgradeStatements } from '../src';
import { release0Statements, release0StoreSql } from './fixtures/release-0';
import {
  collect,
  countRows,
  diffCalls,
  dropSchema,
  errorCode,
  makePool,
  meteredPool,
  payload,
  rowTimes,
  serverNow,
  statementCalls,
  text,
  uniqueSchema,
} from './helpers';

const HOUR = 3_600_000;
let pool: Pool;
let schema: string;
let table: string;

beforeAll(() => {
  pool = makePool({ max: 10 });
});
afterAll(async () => {
  await pool.end();
});
beforeEach(() => {
  schema = uniqueSchema('mig');
  table = `"${schema}"."temporal_payloads"`;
});
afterEach(async () => {
  await dropSchema(pool, schema);
});

/** The claim the driver returns for a payload stored without a target. */
function claimOf(p: Payload): StorageDriverClaim {
  const digest = sha256Hex(encodePayload(p));
  return new StorageDriverClaim({ key: `v0/d/sha256/${digest}`, hash_algorithm: 'sha256', hash_value: digest });
}

/** Stores payloads exactly as the previous release did (its statement, its parameters, sorted by key). */
async function release0Store(payloads: Payload[], ttl: number | null, on: Pool = pool): Promise<StorageDriverClaim[]> {
  const claims = payloads.map(claimOf);
  const items = claims
    .map((claim, i) => ({
      key: claim.claimData['key'] as string,
      bytes: Buffer.from(encodePayload(payloads[i] as Payload)),
    }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const starts: number[] = [];
  let offset = 1;
  for (const item of items) {
    starts.push(offset);
    offset += item.bytes.byteLength;
  }
  await on.query(release0StoreSql(table), [
    items.map((item) => item.key),
    Buffer.concat(items.map((item) => item.bytes)),
    starts,
    items.map((item) => item.bytes.byteLength),
    ttl,
  ]);
  return claims;
}

/** A table made by the previous release's ensureSchema, filled as that release filled it. */
async function previousReleaseTable(): Promise<{ claims: StorageDriverClaim[]; payloads: Payload[] }> {
  for (const statement of release0Statements(schema)) await pool.query(statement);
  const payloads = Array.from({ length: 6 }, (_, i) => payload(`stored by the previous release ${i}`));
  const claims = [
    ...(await release0Store(payloads.slice(0, 2), HOUR)), // with a ttl
    ...(await release0Store(payloads.slice(2, 4), null)), // without one (never expires)
    ...(await release0Store(payloads.slice(4), 1)), // already past expires_at, not swept yet
  ];
  await pool.query(`UPDATE ${table} SET created_at = now() - interval '30 days'`);
  return { claims, payloads };
}

async function columns(): Promise<string[]> {
  const r = await pool.query<{ c: string }>(
    `SELECT column_name || ':' || data_type || ':' || is_nullable || ':' || coalesce(column_default, '') AS c
       FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'temporal_payloads'
      ORDER BY ordinal_position`,
    [schema],
  );
  return r.rows.map((row) => row.c);
}

async function indexes(): Promise<string[]> {
  const r = await pool.query<{ d: string }>(
    `SELECT pg_get_indexdef(i.indexrelid) || CASE WHEN i.indisvalid THEN '' ELSE ' INVALID' END AS d
       FROM pg_index i WHERE i.indrelid = to_regclass($1) ORDER BY 1`,
    [table],
  );
  return r.rows.map((row) => row.d);
}

async function relfilenode(): Promise<number> {
  const r = await pool.query<{ n: number }>(
    'SELECT relfilenode::integer AS n FROM pg_class WHERE oid = to_regclass($1)',
    [table],
  );
  return r.rows[0]?.n ?? -1;
}

describe('a table created by the previous release', () => {
  it('before the upgrade the new release fails with E_CONFIG naming the fix', async () => {
    await previousReleaseTable();
    const d = new PostgresStorageDriver({ pool, schema });
    const err = await errorCode(() => d.store({}, [payload('too early')]));
    expect(err).toBe('E_CONFIG');
    const message = await d.store({}, [payload('too early')]).catch((e: Error) => e.message);
    expect(message).toMatch(/42703.*ensureSchema\(\) or schemaUpgradeSql\(\)/);
  });

  it('ensureSchema upgrades it in place: no rewrite, rows stay readable, get the upgrade time, and lifecycle works on them', async () => {
    const { claims, payloads } = await previousReleaseTable();
    const file = await relfilenode();
    const before = await serverNow(pool);
    const d = new PostgresStorageDriver({ pool, schema, ttl: HOUR });
    await d.ensureSchema();
    const after = await serverNow(pool);

    expect(await relfilenode()).toBe(file); // catalog-only: the table was not rewritten
    expect(await columns()).toEqual([
      'key:text:NO:',
      'data:bytea:NO:',
      'size:integer:NO:',
      'created_at:timestamp with time zone:NO:now()',
      'expires_at:timestamp with time zone:YES:', // kept for processes still on the previous release
      'last_referenced:timestamp with time zone:NO:now()',
    ]);
    expect(await indexes()).toEqual([
      `CREATE INDEX temporal_payloads_expires_at_idx ON ${schema}.temporal_payloads USING btree (expires_at) WHERE (expires_at IS NOT NULL)`,
      `CREATE INDEX temporal_payloads_last_ref_idx ON ${schema}.temporal_payloads USING btree (last_referenced)`,
      `CREATE UNIQUE INDEX temporal_payloads_pkey ON ${schema}.temporal_payloads USING btree (key)`,
    ]);
    // Every existing row reads the time of the upgrade (one value, stored once in the catalog).
    const times = await pool.query<{ t: Date; n: number }>(
      `SELECT last_referenced AS t, count(*)::integer AS n FROM ${table} GROUP BY 1`,
    );
    expect(times.rows).toHaveLength(1);
    expect(times.rows[0]?.n).toBe(6);
    const upgraded = times.rows[0]?.t.getTime() ?? 0;
    expect(upgraded).toBeGreaterThanOrEqual(before - 1);
    expect(upgraded).toBeLessThanOrEqual(after + 1);

    // Readable, including the row past its old expires_at.
    expect((await d.retrieve({}, claims)).map(text)).toEqual(payloads.map(text));
    // Listed with that time; nothing is old enough to go yet.
    const listed = await collect(d.list());
    expect(listed.map((o) => o.lastReferenced?.getTime())).toEqual(Array(6).fill(Math.floor(upgraded)));
    expect(await d.deleteExpired()).toMatchObject({ scanned: 0, removed: 0 });
    // A dedup hit refreshes a row; the others age past the ttl and are swept.
    await pool.query(`UPDATE ${table} SET last_referenced = last_referenced - interval '2 hours'`);
    const [again] = await d.store({}, [payloads[0] as Payload]);
    expect(again).toEqual(claims[0]);
    expect((await rowTimes(pool, d, claims[0]?.claimData['key'] ?? '')).createdAt).toBeLessThan(
      Date.now() - 29 * 24 * HOUR,
    );
    expect(await d.deleteExpired()).toMatchObject({ scanned: 5, removed: 5, errors: [] });
    expect((await d.retrieve({}, [claims[0] as StorageDriverClaim])).map(text)).toEqual([text(payloads[0])]);
    // New rows: last_referenced set, expires_at left NULL (the new release never writes it).
    const [fresh] = await d.store({}, [payload('after the upgrade')]);
    const row = await pool.query(`SELECT expires_at FROM ${table} WHERE key = $1`, [fresh?.claimData['key']]);
    expect(row.rows).toEqual([{ expires_at: null }]);
  });

  it('a process still on the previous release keeps storing during a rolling upgrade; its rows get their insert time', async () => {
    await previousReleaseTable();
    const d = new PostgresStorageDriver({ pool, schema, ttl: HOUR });
    await d.ensureSchema();
    await pool.query(`UPDATE ${table} SET last_referenced = now() - interval '1 day'`);
    const before = await serverNow(pool);
    const [claim] = await release0Store([payload('written by an old worker')], HOUR);
    const t = await rowTimes(pool, d, claim?.claimData['key'] ?? '');
    expect(t.lastReferenced).toBeGreaterThanOrEqual(before - 1); // the column default, now()
    expect(text((await d.retrieve({}, [claim as StorageDriverClaim]))[0])).toBe('written by an old worker');
    expect((await collect(d.list({ olderThan: HOUR }))).length).toBe(6); // the aged rows, not the new one
  });

  it('ensureSchema twice: the second run is one catalog query and no DDL', async () => {
    await previousReleaseTable();
    await new PostgresStorageDriver({ pool, schema }).ensureSchema();
    const metered = await meteredPool(pool, { max: 1 });
    try {
      const d = new PostgresStorageDriver({ pool: metered.pool, schema });
      const before = await statementCalls(pool, metered.role);
      await d.ensureSchema();
      expect(diffCalls(before, await statementCalls(pool, metered.role))).toEqual({ SELECT: 1 });
    } finally {
      await metered.dispose();
    }
  });

  it('8 processes upgrading at once while old-release writers store: all succeed, the DDL runs once', async () => {
    const { claims } = await previousReleaseTable();
    // Every upgrading process connects as one metered role, so its statements can be counted.
    const metered = await meteredPool(pool, { max: 1 });
    const url = (metered.pool as unknown as { options: { connectionString: string } }).options.connectionString;
    const pools = [metered.pool, ...Array.from({ length: 7 }, () => makePool({ connectionString: url, max: 1 }))];
    try {
      const drivers = pools.map((p) => new PostgresStorageDriver({ pool: p, schema }));
      const before = await statementCalls(pool, metered.role);
      const oldWriters = Array.from({ length: 4 }, (_, i) => release0Store([payload(`old writer ${i}`)], HOUR));
      const results = await Promise.allSettled([...drivers.map((d) => d.ensureSchema()), ...oldWriters]);
      expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
      const calls = diffCalls(before, await statementCalls(pool, metered.role));
      // One ADD COLUMN and one CREATE INDEX (plus the CREATE TABLE IF NOT EXISTS no-op before it).
      expect([calls['ALTER'], calls['CREATE']]).toEqual([1, 2]);
      const times = await pool.query(`SELECT DISTINCT last_referenced FROM ${table} WHERE key = ANY($1::text[])`, [
        claims.map((c) => c.claimData['key']),
      ]);
      expect(times.rows).toHaveLength(1);
      expect(await countRows(pool, drivers[0] as PostgresStorageDriver)).toBe(10);
      await Promise.all(drivers.map((d) => d.ensureSchema()));
      const stored = await drivers[0]?.store({}, [payload('after')]);
      expect(text((await drivers[7]?.retrieve({}, stored ?? []))?.[0])).toBe('after');
    } finally {
      await Promise.all(pools.slice(1).map((p) => p.end()));
      await metered.dispose();
    }
  });

  it('a migration tool applies schemaUpgradeSql (twice is fine), ensureSchema then does nothing; schemaCleanupSql drops expires_at', async () => {
    const { claims } = await previousReleaseTable();
    const script = schemaUpgradeSql({ schema });
    expect(script).toBe(`${schemaUpgradeStatements({ schema }).join(';\n\n')};\n`);
    await pool.query(script);
    await pool.query(script);
    const metered = await meteredPool(pool, { max: 1 });
    try {
      const d = new PostgresStorageDriver({ pool: metered.pool, schema, ttl: HOUR });
      const before = await statementCalls(pool, metered.role);
      await d.ensureSchema();
      expect(diffCalls(before, await statementCalls(pool, metered.role))).toEqual({ SELECT: 1 });
      // Once no process of the previous release is left: drop what only it needed.
      await pool.query(schemaCleanupSql({ schema }));
      await pool.query(schemaCleanupSql({ schema }));
      expect((await columns()).map((c) => c.split(':')[0])).toEqual([
        'key',
        'data',
        'size',
        'created_at',
        'last_referenced',
      ]);
      expect((await indexes()).some((i) => i.includes('expires_at'))).toBe(false);
      expect((await d.retrieve({}, claims)).length).toBe(6);
      await d.store({}, [payload('after cleanup')]);
      await pool.query(`UPDATE ${table} SET last_referenced = now() - interval '2 hours'`);
      expect(await d.deleteExpired()).toMatchObject({ removed: 7, errors: [] });
      expect(await countRows(pool, d)).toBe(0);
    } finally {
      await metered.dispose();
    }
  });

  it('an index left invalid by a failed CREATE INDEX CONCURRENTLY is rebuilt by ensureSchema', async () => {
    await previousReleaseTable();
    // The documented manual path for large tables, failing half-way: the column, then a
    // concurrent index build that errors out and leaves an INVALID index under the right name.
    await pool.query(schemaUpgradeStatements({ schema })[0] as string);
    await expect(
      pool.query(`CREATE INDEX CONCURRENTLY temporal_payloads_last_ref_idx ON ${table} ((1 / (size - size)))`),
    ).rejects.toMatchObject({ code: '22012' });
    expect((await indexes()).find((i) => i.includes('last_ref'))).toMatch(/INVALID$/);
    await new PostgresStorageDriver({ pool, schema }).ensureSchema();
    expect((await indexes()).find((i) => i.includes('last_ref'))).toBe(
      `CREATE INDEX temporal_payloads_last_ref_idx ON ${schema}.temporal_payloads USING btree (last_referenced)`,
    );
  });
});
