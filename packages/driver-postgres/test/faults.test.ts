/**
 * Faults: a backend terminated mid-batch, an exhausted pool with an abort, secrets in errors, and
 * a server restart (on a PRIVATE PostgreSQL this file starts; the shared one is never touched).
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { REDACTED, type StorageDriverClaim, type StorageDriverError } from '@x/storage-driver-core';
import { captureStorageDriverError, countPresentExact, expectedClaims } from '@x/storage-driver-test-suite';
import { type PrivatePostgres, SERVICES, startPostgres } from '@x/test-servers';
import { Client, type Pool } from 'pg';
import { PostgresStorageDriver } from '../src';
import { countRows, dropSchema, errorCode, makeDriver, makePool, payload, text, uniqueSchema } from './helpers';

let pool: Pool;
let schema: string;

beforeAll(() => {
  pool = makePool({ max: 8 });
});
afterAll(async () => {
  await pool.end();
});
beforeEach(() => {
  schema = uniqueSchema('fault');
});
afterEach(async () => {
  await dropSchema(pool, schema);
});

/** Waits until a backend runs `verb` on the schema's table while waiting for a lock; returns its pid. */
async function blockedBackend(verb: string, qualifiedTable: string): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const r = await pool.query<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1 || '%' AND query LIKE '%' || $2 || '%'`,
      [verb, qualifiedTable],
    );
    if (r.rows[0] !== undefined) return r.rows[0].pid;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`no backend blocked on ${verb}`);
}

/**
 * Slows every INSERT into the driver's table down to 50 ms per row, and counts the rows an INSERT
 * reached in a sequence (sequences are not transactional: the count survives a rollback).
 */
async function slowInserts(
  driver: PostgresStorageDriver,
): Promise<{ reached(): Promise<number>; remove(): Promise<void> }> {
  await pool.query(`CREATE SEQUENCE "${schema}".rows_reached`);
  await pool.query(
    `CREATE FUNCTION "${schema}".slow_row() RETURNS trigger LANGUAGE plpgsql AS $$
     BEGIN PERFORM nextval('"${schema}".rows_reached'); PERFORM pg_sleep(0.05); RETURN NEW; END $$`,
  );
  await pool.query(
    `CREATE TRIGGER slow_row BEFORE INSERT ON ${driver.qualifiedTable} FOR EACH ROW EXECUTE FUNCTION "${schema}".slow_row()`,
  );
  return {
    async reached() {
      const r = await pool.query<{ n: string; called: boolean }>(
        `SELECT last_value AS n, is_called AS called FROM "${schema}".rows_reached`,
      );
      return r.rows[0]?.called ? Number(r.rows[0].n) : 0;
    },
    async remove() {
      await pool.query(`DROP TRIGGER slow_row ON ${driver.qualifiedTable}`);
    },
  };
}

describe('terminated connection (pg_terminate_backend) mid-batch', () => {
  it('store and retrieve fail with E_BACKEND (retryable); the next call succeeds on a fresh connection', async () => {
    const driverPool = makePool({ max: 1 });
    try {
      const driver = await makeDriver(driverPool, schema);
      const [kept] = await driver.store({}, [payload('before')]);
      const payloads = Array.from({ length: 50 }, (_, i) => payload(`batch ${i}`));
      for (const op of ['store', 'retrieve'] as const) {
        const holder = await pool.connect();
        let err: StorageDriverError;
        try {
          await holder.query('BEGIN');
          await holder.query(`LOCK TABLE ${driver.qualifiedTable} IN ACCESS EXCLUSIVE MODE`);
          const pending =
            op === 'store'
              ? captureStorageDriverError(() => driver.store({}, payloads))
              : captureStorageDriverError(() => driver.retrieve({}, [kept!]));
          // The store statement is `WITH written AS (INSERT …) SELECT …`.
          const pid = await blockedBackend(op === 'store' ? 'WITH' : 'SELECT', driver.qualifiedTable);
          await pool.query('SELECT pg_terminate_backend($1)', [pid]);
          err = await pending;
        } finally {
          await holder.query('ROLLBACK');
          holder.release();
        }
        expect(err.code).toBe('E_BACKEND');
        expect(err.retryable).toBe(true);
        expect(err.driverName).toBe('postgres');
        // The terminated connection was destroyed, not returned to the pool or leaked.
        expect(driverPool.idleCount).toBe(driverPool.totalCount);
        expect(driverPool.totalCount).toBe(0);
      }
      expect(await countRows(pool, driver)).toBe(1); // the terminated INSERT wrote nothing
      const expected = await expectedClaims(driver, payloads);
      expect(await countPresentExact(driver, expected, payloads)).toBe(0);
      const claims = await driver.store({}, payloads);
      expect(claims.map((c) => c.claimData)).toEqual(expected.map((c) => c.claimData));
      expect((await driver.retrieve({}, [kept!, ...claims])).map(text)).toEqual([
        'before',
        ...payloads.map((p) => text(p)),
      ]);
    } finally {
      await driverPool.end();
    }
  });
});

describe('terminated connection (pg_terminate_backend) mid-INSERT, after some rows were written', () => {
  it('E_BACKEND (retryable), no claim, none of the rows visible; the batch stores on the next call', async () => {
    const driverPool = makePool({ max: 1 });
    try {
      const driver = await makeDriver(driverPool, schema);
      const slow = await slowInserts(driver);
      const batch = Array.from({ length: 50 }, (_, i) => payload(`half-written ${i}`));
      const pending = captureStorageDriverError(() => driver.store({}, batch));
      for (let i = 0; (await slow.reached()) < 3; i++) {
        if (i > 1000) throw new Error('the INSERT never reached its third row');
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      const target = await pool.query<{ pid: number }>(
        `SELECT pid FROM pg_stat_activity WHERE query LIKE '%INSERT INTO ' || $1 || '%' AND pid <> pg_backend_pid()`,
        [driver.qualifiedTable],
      );
      expect(target.rows).toHaveLength(1);
      await pool.query('SELECT pg_terminate_backend($1)', [target.rows[0]?.pid]);
      const err = await pending;
      expect([err.code, err.retryable]).toEqual(['E_BACKEND', true]);
      const reached = await slow.reached();
      expect(reached).toBeGreaterThanOrEqual(3);
      expect(reached).toBeLessThan(batch.length);
      expect(await countRows(pool, driver)).toBe(0); // the rows it had inserted were rolled back
      const expected = await expectedClaims(driver, batch);
      expect(await countPresentExact(driver, expected, batch)).toBe(0);
      await slow.remove();
      await driver.store({}, batch);
      expect(await countPresentExact(driver, expected, batch)).toBe(batch.length);
    } finally {
      await driverPool.end();
    }
  });
});

describe('exhausted pool', () => {
  it('a call waiting for a connection rejects with E_ABORTED when its signal fires, and never runs later', async () => {
    const small = makePool({ max: 1 });
    try {
      const driver = await makeDriver(small, schema);
      const claims = await driver.store({}, [payload('stored')]);
      const held = await small.connect();
      let released = false;
      try {
        const ac = new AbortController();
        const retrieving = captureStorageDriverError(() => driver.retrieve({ abortSignal: ac.signal }, claims));
        const storing = captureStorageDriverError(() => driver.store({ abortSignal: ac.signal }, [payload('never')]));
        const sweeping = captureStorageDriverError(() => driver.deleteExpired({ olderThan: 1000, signal: ac.signal }));
        const ensuring = captureStorageDriverError(() => driver.ensureSchema({ signal: ac.signal }));
        // All four queue for the held connection (polled: no fixed sleep racing a loaded machine).
        for (let i = 0; i < 500 && small.waitingCount < 4; i++) await new Promise((r) => setTimeout(r, 10));
        expect(small.waitingCount).toBe(4);
        ac.abort(new Error('caller gave up'));
        // All reject while the only connection is still held by the test.
        const errors = await Promise.all([retrieving, storing, sweeping, ensuring]);
        expect(released).toBe(false);
        expect(errors.map((e) => [e.code, e.retryable])).toEqual(Array(4).fill(['E_ABORTED', false]));
      } finally {
        held.release();
        released = true;
      }
      // The connections handed over after the abort are released unused.
      for (let i = 0; i < 100 && (small.waitingCount > 0 || small.idleCount !== small.totalCount); i++) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      expect(small.idleCount).toBe(small.totalCount);
      expect(await countRows(pool, driver)).toBe(1); // the aborted store never ran
      const never = [payload('never')];
      expect(await countPresentExact(driver, await expectedClaims(driver, never), never)).toBe(0);
      expect(text((await driver.retrieve({}, claims))[0])).toBe('stored');
      expect(text((await driver.retrieve({}, await driver.store({}, never)))[0])).toBe('never');
    } finally {
      await small.end();
    }
  });
});

describe('statement timeout (pool statement_timeout 300 ms)', () => {
  it('store: a slow row trigger cancels the INSERT part-way; E_BACKEND (retryable, 57014), no claim, no row of the batch; succeeds once the trigger is gone', async () => {
    const impatient = makePool({ max: 1, statement_timeout: 300 });
    try {
      const driver = await makeDriver(impatient, schema);
      const kept = [payload('before the timeout')];
      const keptClaims = await driver.store({}, kept);
      const slow = await slowInserts(driver);
      const batch = Array.from({ length: 50 }, (_, i) => payload(`slow ${i}`));
      const err = await captureStorageDriverError(() => driver.store({}, batch));
      expect([err.code, err.retryable]).toEqual(['E_BACKEND', true]);
      expect(err.message).toContain('57014');
      const reached = await slow.reached();
      expect(reached).toBeGreaterThan(1); // cancelled after inserting some rows…
      expect(reached).toBeLessThan(batch.length);
      expect(await countRows(pool, driver)).toBe(1); // …none of which is visible: the statement rolled back
      const expected = await expectedClaims(driver, batch);
      expect(await countPresentExact(driver, expected, batch)).toBe(0);

      await slow.remove();
      const claims = await driver.store({}, batch);
      expect(await countPresentExact(driver, [...keptClaims, ...claims], [...kept, ...batch])).toBe(51);
    } finally {
      await impatient.end();
    }
  });

  it('retrieve: a lock held by another session; E_BACKEND (retryable, 57014); succeeds once the lock is released', async () => {
    const impatient = makePool({ max: 1, statement_timeout: 300 });
    try {
      const driver = await makeDriver(impatient, schema);
      const stored = [payload('locked away')];
      const claims = await driver.store({}, stored);
      const holder = await pool.connect();
      try {
        await holder.query('BEGIN');
        await holder.query(`LOCK TABLE ${driver.qualifiedTable} IN ACCESS EXCLUSIVE MODE`);
        const err = await captureStorageDriverError(() => driver.retrieve({}, claims));
        expect([err.code, err.retryable]).toEqual(['E_BACKEND', true]);
        expect(err.message).toContain('57014');
        // A store waits for the same lock and times out the same way: no claim.
        const storeErr = await captureStorageDriverError(() => driver.store({}, [payload('blocked')]));
        expect([storeErr.code, storeErr.retryable]).toEqual(['E_BACKEND', true]);
      } finally {
        await holder.query('ROLLBACK');
        holder.release();
      }
      expect(await countPresentExact(driver, claims, stored)).toBe(1);
      const blocked = [payload('blocked')];
      expect(await countPresentExact(driver, await expectedClaims(driver, blocked), blocked)).toBe(0);
      expect(text((await driver.retrieve({}, await driver.store({}, blocked)))[0])).toBe('blocked');
    } finally {
      await impatient.end();
    }
  });
});

describe('owned pool and secrets', () => {
  const url = new URL(SERVICES.postgresUrl);
  const password = decodeURIComponent(url.password);

  /** Every text an error exposes: message, stack, JSON, and its cause's. */
  function exposed(err: StorageDriverError): string {
    const cause = err.cause as Record<string, unknown> | undefined;
    return [
      err.message,
      err.stack,
      JSON.stringify(err),
      String(cause),
      typeof cause === 'object' && cause !== null ? JSON.stringify(cause) : '',
      typeof cause === 'object' && cause !== null ? String(cause.stack) : '',
      ...(typeof cause === 'object' && cause !== null ? Object.values(cause).map(String) : []),
    ].join('\n');
  }

  it('fromConnectionString owns its pool: works, close() ends it (idempotent); later calls are E_CONFIG, an injected pool stays open', async () => {
    const driver = PostgresStorageDriver.fromConnectionString(SERVICES.postgresUrl, {
      schema,
      ttl: 60_000,
      poolConfig: { max: 2 },
    });
    expect(driver.ownsPool).toBe(true);
    await driver.ensureSchema();
    const claims = await driver.store({}, [payload('owned')]);
    expect(text((await driver.retrieve({}, claims))[0])).toBe('owned');
    const owned = driver.pool as Pool;
    await driver.close();
    await driver.close();
    expect(owned.ending).toBe(true);
    expect(await errorCode(() => driver.retrieve({}, claims))).toBe('E_CONFIG');
    expect(await errorCode(() => driver.ensureSchema())).toBe('E_CONFIG');
    // close() of a driver over an injected pool closes the driver, never the pool.
    const injected = new PostgresStorageDriver({ pool, schema });
    await injected.close();
    expect(await errorCode(() => injected.retrieve({}, claims))).toBe('E_CONFIG');
    expect(await errorCode(() => injected.ensureSchema())).toBe('E_CONFIG');
    expect(pool.ending).toBe(false);
    expect(text((await new PostgresStorageDriver({ pool, schema }).retrieve({}, claims))[0])).toBe('owned');
  });

  it('the password never appears in errors, even when the server or pg echo it (it reads [redacted])', async () => {
    const variants: [string, string, boolean][] = [
      // The server echoes an invalid setting's value: here the password itself.
      [`${SERVICES.postgresUrl}?options=${encodeURIComponent(`-c statement_timeout=${password}`)}`, 'E_BACKEND', true],
      // pg reads sslcert at connect time and reports the path (which holds the password).
      [`${SERVICES.postgresUrl}?sslmode=require&sslcert=/nonexistent/${password}/cert.pem`, 'E_BACKEND', true],
      // Wrong password of the right user (the server does not echo it).
      [SERVICES.postgresUrl.replace(`:${url.password}@`, `:${url.password}-wrong@`), 'E_CONFIG', false],
    ];
    for (const [connectionString, code, echoed] of variants) {
      const driver = PostgresStorageDriver.fromConnectionString(connectionString, { schema });
      try {
        const err = await captureStorageDriverError(() => driver.store({}, [payload('x')]));
        expect(err.code).toBe(code);
        expect(exposed(err)).not.toContain(password);
        expect(exposed(err)).not.toContain(`${password}-wrong`);
        // Where the password was echoed, message and cause hold core's placeholder in its place.
        if (echoed) {
          expect(err.message).toContain(REDACTED);
          expect(String((err.cause as Error).message)).toContain(REDACTED);
          expect(String((err.cause as Error).stack)).toContain(REDACTED);
        }
        const sweepErr = await captureStorageDriverError(() => driver.deleteExpired({ olderThan: 1 }));
        expect(sweepErr.code).toBe(code); // it reached the server, as the store did
        expect(exposed(sweepErr)).not.toContain(password);
        if (echoed) expect(sweepErr.message).toContain(REDACTED);
      } finally {
        await driver.close();
      }
    }
    // A malformed URL never reaches pg; the error carries no cause (URL errors hold the input).
    const err = await captureStorageDriverError(async () =>
      PostgresStorageDriver.fromConnectionString(`postgres://xstorage:${password}@127.0.0.1:99999/x`),
    );
    expect(err.code).toBe('E_CONFIG');
    expect(err.cause).toBeUndefined();
    expect(exposed(err)).not.toContain(password);
  });
});

describe('server restart (private PostgreSQL)', () => {
  let server: PrivatePostgres | undefined;
  afterAll(() => {
    server?.destroy();
  });

  it('stopped (immediate: a crash) while a batch is in flight: E_BACKEND (retryable), no claim, no row of it after the restart; the batch then stores', async () => {
    server = await startPostgres();
    const options = { schema: 'crash', ttl: 60_000, poolConfig: { max: 2, connectionTimeoutMillis: 3000 } };
    const driver = PostgresStorageDriver.fromConnectionString(server.url, options);
    const holder = new Client({ connectionString: server.url });
    holder.on('error', () => {});
    try {
      await driver.ensureSchema();
      const kept = [payload('committed before the crash')];
      const keptClaims = await driver.store({}, kept);
      const batch = Array.from({ length: 50 }, (_, i) => payload(`in flight ${i}`));
      // The INSERT is held on a table lock, so it is surely in flight when the server dies.
      await holder.connect();
      await holder.query('BEGIN');
      await holder.query(`LOCK TABLE ${driver.qualifiedTable} IN ACCESS EXCLUSIVE MODE`);
      const pending = captureStorageDriverError(() => driver.store({}, batch));
      for (let i = 0; ; i++) {
        const r = await holder.query(
          `SELECT count(*)::integer AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%INSERT INTO%'`,
        );
        if (r.rows[0]?.n === 1) break;
        if (i > 400) throw new Error('the INSERT never blocked');
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      server.stop('immediate');
      const err = await pending;
      expect([err.code, err.retryable]).toEqual(['E_BACKEND', true]);

      server.start();
      const expected = await expectedClaims(driver, batch);
      expect(await countPresentExact(driver, keptClaims, kept)).toBe(1); // committed data survived
      expect(await countPresentExact(driver, expected, batch)).toBe(0); // the in-flight batch left nothing
      await driver.store({}, batch);
      expect(await countPresentExact(driver, expected, batch)).toBe(batch.length);
    } finally {
      await holder.end().catch(() => {});
      await driver.close();
    }
  });

  it('calls fail with E_BACKEND (retryable) while it is down and succeed after it is back', async () => {
    if (server === undefined) {
      server = await startPostgres();
    }
    const driver = PostgresStorageDriver.fromConnectionString(server.url, {
      ttl: 60_000,
      poolConfig: { max: 2, connectionTimeoutMillis: 3000 },
    });
    try {
      await driver.ensureSchema();
      const claims = await driver.store({}, [payload('survives the restart')]);
      server.stop('fast');
      for (const call of [() => driver.store({}, [payload('while down')]), () => driver.retrieve({}, claims)]) {
        const err = await captureStorageDriverError(call);
        expect(err.code).toBe('E_BACKEND');
        expect(err.retryable).toBe(true);
      }
      server.start();
      const more = await driver.store({}, [payload('after restart')]);
      const back = await driver.retrieve({}, [...(claims as StorageDriverClaim[]), ...more]);
      expect(back.map(text)).toEqual(['survives the restart', 'after restart']);
      expect(await driver.deleteExpired()).toMatchObject({ removed: 0, errors: [] });
    } finally {
      await driver.close();
    }
  });
});
