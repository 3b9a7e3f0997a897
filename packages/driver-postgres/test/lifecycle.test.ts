/** deleteExpired: bounded batches, SKIP LOCKED, concurrent sweepers, surfaced errors. */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import type { Pool } from 'pg';
import { PostgresStorageDriver } from '../src';
import {
  captureStorageDriverError,
  countRows,
  dropSchema,
  errorCode,
  expiresAt,
  makeDriver,
  makePool,
  payload,
  text,
  uniqueSchema,
} from './helpers';

let pool: Pool;
let schema: string;
let driver: PostgresStorageDriver;

beforeAll(() => {
  pool = makePool({ max: 8 });
});
afterAll(async () => {
  await pool.end();
});
beforeEach(async () => {
  schema = uniqueSchema('life');
  driver = await makeDriver(pool, schema, { ttl: 3_600_000 });
});
afterEach(async () => {
  await dropSchema(pool, schema);
});

/** Inserts `n` rows of `size` bytes whose expiry is `expiry` (an SQL expression), keys `<prefix>-<i>`. */
async function seed(n: number, expiry: string, prefix: string, size = 10): Promise<void> {
  await pool.query(
    `INSERT INTO ${driver.qualifiedTable} (key, data, size, expires_at)
     SELECT $1 || '-' || g, decode(repeat('ab', $2), 'hex'), $2, ${expiry} FROM generate_series(1, $3) g`,
    [prefix, size, n],
  );
}

describe('deleteExpired', () => {
  it('deletes only expired rows, in bounded batches, and reports counts and bytes', async () => {
    await seed(2500, "now() - interval '1 hour'", 'expired', 10);
    await seed(300, "now() + interval '1 hour'", 'live');
    await seed(200, 'NULL', 'forever');
    const r = await driver.deleteExpired({ batchSize: 1000 });
    expect(r).toEqual({ deleted: 2500, deletedBytes: 25_000, batches: 3, more: false });
    expect(await countRows(pool, driver)).toBe(500);
    expect(await driver.deleteExpired()).toEqual({ deleted: 0, deletedBytes: 0, batches: 1, more: false });
  });

  it('maxBatches bounds one call and says whether more is left', async () => {
    await seed(1200, "now() - interval '1 minute'", 'expired');
    expect(await driver.deleteExpired({ batchSize: 500, maxBatches: 2 })).toEqual({
      deleted: 1000,
      deletedBytes: 10_000,
      batches: 2,
      more: true,
    });
    expect(await driver.deleteExpired({ batchSize: 500, maxBatches: 2 })).toMatchObject({ deleted: 200, more: false });
    expect(await countRows(pool, driver)).toBe(0);
  });

  it('skips rows locked by another transaction instead of waiting for them (FOR UPDATE SKIP LOCKED)', async () => {
    await seed(100, "now() - interval '1 hour'", 'expired');
    const holder = await pool.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(`SELECT key FROM ${driver.qualifiedTable} WHERE key LIKE 'expired-1_' FOR UPDATE`);
      const r = await driver.deleteExpired({ batchSize: 30 });
      expect(r.deleted).toBe(90); // 'expired-10'..'expired-19' are locked
      await holder.query('COMMIT');
    } finally {
      holder.release();
    }
    expect(await driver.deleteExpired()).toMatchObject({ deleted: 10 });
  });

  it('two sweepers at once (separate pools) delete every expired row exactly once, without errors', async () => {
    await seed(6000, "now() - interval '1 hour'", 'expired');
    await seed(100, "now() + interval '1 hour'", 'live');
    const p1 = makePool({ max: 1 });
    const p2 = makePool({ max: 1 });
    try {
      const a = new PostgresStorageDriver({ pool: p1, schema });
      const b = new PostgresStorageDriver({ pool: p2, schema });
      const [ra, rb] = await Promise.all([a.deleteExpired({ batchSize: 100 }), b.deleteExpired({ batchSize: 100 })]);
      expect((ra?.deleted ?? 0) + (rb?.deleted ?? 0)).toBe(6000);
      expect(await countRows(pool, driver)).toBe(100);
    } finally {
      await Promise.all([p1.end(), p2.end()]);
    }
  });

  it('a payload re-stored after it expired is kept; an expired one not re-stored is deleted', async () => {
    const claims = await driver.store({}, [payload('re-stored'), payload('abandoned')]);
    await pool.query(`UPDATE ${driver.qualifiedTable} SET expires_at = now() - interval '1 hour'`);
    await driver.store({}, [payload('re-stored')]);
    expect(await driver.deleteExpired()).toMatchObject({ deleted: 1 });
    expect(text((await driver.retrieve({}, [claims[0]!]))[0])).toBe('re-stored');
    expect(await errorCode(() => driver.retrieve({}, [claims[1]!]))).toBe('E_NOT_FOUND');
    expect((await expiresAt(pool, driver, claims[0]?.claimData.key ?? '')) ?? 0).toBeGreaterThan(Date.now());
  });

  it('a store racing a sweeper that is deleting the same expired row waits for it and writes the row again', async () => {
    const [claim] = await driver.store({}, [payload('raced')]);
    const key = claim?.claimData.key ?? '';
    await pool.query(`UPDATE ${driver.qualifiedTable} SET expires_at = now() - interval '1 hour'`);
    const sweeper = await pool.connect();
    try {
      // A sweeper mid-transaction: it has deleted the expired row but not committed yet.
      await sweeper.query('BEGIN');
      const doomed = await sweeper.query(`DELETE FROM ${driver.qualifiedTable} WHERE expires_at < now() RETURNING key`);
      expect(doomed.rows).toEqual([{ key }]);
      const storing = driver.store({}, [payload('raced')]); // a dedup hit on the row being deleted
      for (let i = 0; ; i++) {
        const r = await pool.query(
          `SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'INSERT INTO ${driver.qualifiedTable}%'`,
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
    // The claim the store returned points at a row that exists, with a fresh expiry.
    expect(text((await driver.retrieve({}, [claim!]))[0])).toBe('raced');
    expect((await expiresAt(pool, driver, key)) ?? 0).toBeGreaterThan(Date.now());
  });

  it('stores racing concurrent sweepers: every claim a store returned stays readable', async () => {
    const payloads = Array.from({ length: 400 }, (_, i) => payload(`race ${i}`));
    await driver.store({}, payloads);
    await pool.query(`UPDATE ${driver.qualifiedTable} SET expires_at = now() - interval '1 hour'`);
    const batches = Array.from({ length: 20 }, (_, i) => payloads.slice(i * 20, i * 20 + 20));
    const [claimed] = await Promise.all([
      Promise.all(batches.map((batch) => driver.store({}, batch))),
      driver.deleteExpired({ batchSize: 7 }),
      driver.deleteExpired({ batchSize: 11 }),
    ]);
    const back = await driver.retrieve({}, claimed.flat());
    expect(back.map(text)).toEqual(payloads.map(text));
    expect(await driver.deleteExpired()).toMatchObject({ deleted: 0 });
  });

  it('surfaces errors: a statement timeout is E_BACKEND (retryable), a missing table E_CONFIG', async () => {
    await seed(10, "now() - interval '1 hour'", 'expired');
    const impatient = makePool({ max: 1, statement_timeout: 300 });
    const holder = await pool.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(`LOCK TABLE ${driver.qualifiedTable} IN ACCESS EXCLUSIVE MODE`);
      const d = new PostgresStorageDriver({ pool: impatient, schema });
      const err = await captureStorageDriverError(() => d.deleteExpired());
      expect(err.code).toBe('E_BACKEND');
      expect(err.retryable).toBe(true);
      expect(err.message).toContain('57014');
      expect(impatient.idleCount).toBe(impatient.totalCount); // no connection leaked
      await holder.query('ROLLBACK');
      expect(await d.deleteExpired()).toMatchObject({ deleted: 10 });
    } finally {
      holder.release();
      await impatient.end();
    }
    const missing = new PostgresStorageDriver({ pool, schema, table: 'missing' });
    expect(await errorCode(() => missing.deleteExpired())).toBe('E_CONFIG');
  });

  it('invalid options are E_CONFIG; an aborted signal is E_ABORTED and deletes nothing', async () => {
    await seed(10, "now() - interval '1 hour'", 'expired');
    for (const options of [
      { batchSize: 0 },
      { batchSize: 1.5 },
      { batchSize: 100_001 },
      { maxBatches: 0 },
      { maxBatches: Number.NaN },
    ]) {
      expect(await errorCode(() => driver.deleteExpired(options))).toBe('E_CONFIG');
    }
    const ac = new AbortController();
    ac.abort();
    expect(await errorCode(() => driver.deleteExpired({ signal: ac.signal }))).toBe('E_ABORTED');
    expect(await countRows(pool, driver)).toBe(10);
  });
});
