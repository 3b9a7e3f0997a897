/**
 * Large payloads (≥ POSTGRES_PROBE_MIN_BYTES) are probed by key before the INSERT: a repeat store
 * sends no payload bytes, outcomes stay exact, last_referenced moves forward as on the INSERT path
 * (server clock or the injected one), and a concurrent delete never loses a row a store reported.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import {
  type Payload,
  STORAGE_OPERATION_REPORT,
  type StorageDriverStoreContext,
  type StorageOperationReport,
} from '@x/storage-driver-core';
import { makePayload, pseudoRandomBytes } from '@x/storage-driver-test-suite';
import type { Pool } from 'pg';
import {
  POSTGRES_PROBE_MIN_BYTES,
  type PostgresPool,
  type PostgresPoolClient,
  type PostgresQueryConfig,
  PostgresStorageDriver,
  type PostgresStorageDriverOptions,
} from '../src';
import {
  countRows,
  diffCalls,
  dropSchema,
  makeDriver,
  makePool,
  meteredPool,
  RecordingDriver,
  rowTimes,
  serverNow,
  statementCalls,
  uniqueSchema,
} from './helpers';

const KiB = 1024;
const MiB = 1024 * KiB;

/** One statement a {@link RecordingPool} saw: its first line and the bytes of its parameters. */
interface SentStatement {
  readonly head: string;
  /** Bytes of every binary and text parameter (arrays summed): what travels besides the SQL. */
  readonly valueBytes: number;
  readonly config: PostgresQueryConfig;
}

/**
 * A pool wrapper that records every statement (and runs `beforeQuery`/`afterQuery` hooks around
 * each, to interleave other sessions at exact points). With `copy` (the default) its clients
 * expose `pg`'s connection, so the driver streams large payloads with COPY (recorded by their
 * first line, without their bytes); without it they are plain structural clients, which the
 * driver writes through the INSERT alone.
 */
class RecordingPool implements PostgresPool {
  readonly sent: SentStatement[] = [];
  beforeQuery: ((config: PostgresQueryConfig) => Promise<void>) | undefined;
  afterQuery: ((config: PostgresQueryConfig) => Promise<void>) | undefined;
  constructor(
    readonly inner: Pool,
    readonly copy = true,
  ) {}
  async connect(): Promise<PostgresPoolClient> {
    const client = await this.inner.connect();
    const wrapped: PostgresPoolClient = {
      query: async (config: PostgresQueryConfig) => {
        this.sent.push({ head: config.text.split('\n')[0] ?? '', valueBytes: valueBytes(config.values), config });
        await this.beforeQuery?.(config);
        const result = await client.query(config);
        await this.afterQuery?.(config);
        return result;
      },
      release: (destroy) => client.release(destroy),
      on: (event, listener) => client.on(event, listener),
      removeListener: (event, listener) => client.removeListener(event, listener),
    };
    if (!this.copy) return wrapped;
    return Object.assign(wrapped, { connection: (client as unknown as { connection: unknown }).connection });
  }
}

function valueBytes(values: readonly unknown[] | undefined): number {
  let n = 0;
  for (const v of values ?? []) {
    if (v instanceof Uint8Array) n += v.byteLength;
    else if (typeof v === 'string') n += Buffer.byteLength(v);
    else if (Array.isArray(v)) n += valueBytes(v);
  }
  return n;
}

/** How large payloads are written: the COPY (the default), or the INSERT for a client without it. */
const LARGE_WRITERS: [string, boolean][] = [
  ['COPY', true],
  ['INSERT (a client without COPY)', false],
];
const isProbe = (s: SentStatement) => s.head === 'WITH probed AS (';
const isInsert = (s: SentStatement) => s.head === 'WITH written AS (';
const isCopy = (s: SentStatement) => /^COPY \S+ \(key, data, size.*\) FROM STDIN \(FORMAT binary\)$/.test(s.head);
/** What each recorded statement is. */
const kinds = (sent: readonly SentStatement[]) =>
  sent.map((s) => (isProbe(s) ? 'probe' : isInsert(s) ? 'insert' : isCopy(s) ? 'copy' : s.head));

/** A payload whose serialized form is `size` bytes or a little more (random, so incompressible). */
function big(size: number, seed: number): Payload {
  return makePayload(pseudoRandomBytes(size, seed));
}

let pool: Pool;
let schema: string;
beforeAll(() => {
  pool = makePool({ max: 8 });
});
afterAll(async () => {
  await pool.end();
});
beforeEach(() => {
  schema = uniqueSchema('probe');
});
afterEach(async () => {
  await dropSchema(pool, schema);
});

async function recordingDriver(
  options: Partial<PostgresStorageDriverOptions> = {},
  copy = true,
): Promise<{ driver: RecordingDriver; recorder: RecordingPool }> {
  await makeDriver(pool, schema);
  const recorder = new RecordingPool(pool, copy);
  return { driver: new RecordingDriver({ pool: recorder, schema, ...options }), recorder };
}

/** The keys of a statement's `text[]` parameter: an array, or the array literal the INSERT sends. */
function keysParam(value: unknown): string[] {
  if (Array.isArray(value)) return value as string[];
  return [...String(value).matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => (m[1] ?? '').replace(/\\(.)/g, '$1'));
}

function keyOf(claim: { claimData: Record<string, string> } | undefined): string {
  return claim?.claimData.key ?? '';
}

describe('probe first for large payloads', () => {
  it('the threshold is 1 MiB: above the 256 KiB batches that must stay one statement', () => {
    expect(POSTGRES_PROBE_MIN_BYTES).toBe(MiB);
  });

  it.each(LARGE_WRITERS)(
    'a repeat store of a large payload sends its key only: one statement, no payload bytes (written by %s)',
    async (_, copy) => {
      const { driver, recorder } = await recordingDriver({}, copy);
      const p = big(10 * MiB, 1);
      const [claim] = await driver.store({}, [p]);
      // First store: the probe (nothing found), then the COPY (bytes in its rows) or the INSERT (in its parameters).
      expect(kinds(recorder.sent)).toEqual(['probe', copy ? 'copy' : 'insert']);
      expect(recorder.sent[0]?.valueBytes).toBeLessThan(KiB);
      if (!copy) expect(recorder.sent[1]?.valueBytes).toBeGreaterThan(10 * MiB);
      recorder.sent.length = 0;
      const [again] = await driver.store({}, [p]);
      expect(again).toEqual(claim);
      expect(recorder.sent.map(isProbe)).toEqual([true]);
      expect(recorder.sent[0]?.valueBytes).toBeLessThan(KiB);
      expect(driver.outcomes).toEqual([['written'], ['existed']]);
      expect(await countRows(pool, driver)).toBe(1);
      const [back] = await driver.retrieve({}, [claim as NonNullable<typeof claim>]);
      expect(Buffer.from(back?.data ?? []).equals(Buffer.from(p.data ?? []))).toBe(true);
    },
  );

  it('counted with pg_stat_statements: a repeat store of 2 MiB is 1 statement; 64 × 256 KiB stays 1 statement', async () => {
    const metered = await meteredPool(pool, { max: 2 });
    try {
      await makeDriver(pool, schema);
      const d = new PostgresStorageDriver({ pool: metered.pool, schema });
      const p = big(2 * MiB, 2);
      const t0 = await statementCalls(pool, metered.role);
      await d.store({}, [p]);
      const t1 = await statementCalls(pool, metered.role);
      await d.store({}, [p]);
      const t2 = await statementCalls(pool, metered.role);
      const distinct = Array.from({ length: 64 }, (_, i) => big(256 * KiB - 64, 100 + i));
      await d.store({}, distinct);
      const t3 = await statementCalls(pool, metered.role);
      expect(diffCalls(t0, t1)).toEqual({ WITH: 1, COPY: 1 }); // probe + COPY
      expect(diffCalls(t1, t2)).toEqual({ WITH: 1 }); // probe only
      expect(diffCalls(t2, t3)).toEqual({ WITH: 1 }); // no large item: the INSERT alone
    } finally {
      await metered.dispose();
    }
  });

  it.each(LARGE_WRITERS)(
    'outcomes are exact for a mixed batch: small new/existing, large new/existing, duplicates in the batch (large written by %s)',
    async (_, copy) => {
      const { driver, recorder } = await recordingDriver({}, copy);
      const reports: StorageOperationReport[] = [];
      const context = {
        [STORAGE_OPERATION_REPORT]: (r: StorageOperationReport) => reports.push(r),
      } as StorageDriverStoreContext;
      const smallOld = big(300 * KiB, 10); // below the threshold, though over the SDK's 256 KiB
      const smallNew = big(1 * KiB, 11);
      const bigOld = big(2 * MiB, 12);
      const bigNew = big(POSTGRES_PROBE_MIN_BYTES, 13); // exactly at the threshold (serialized: a bit more)
      const bigNew2 = big(3 * MiB, 14);
      await driver.store(context, [smallOld, bigOld]);
      const storedKeys = (await driver.store({}, [smallOld, bigOld])).map(keyOf);
      recorder.sent.length = 0;
      driver.outcomes.length = 0;
      const batch = [bigNew, smallOld, bigOld, smallNew, bigOld, bigNew2, bigNew, smallNew];
      const claims = await driver.store(context, batch);

      // Core passes each distinct payload once, in first-seen order.
      expect(driver.outcomes).toEqual([['written', 'existed', 'existed', 'written', 'written']]);
      expect(reports.at(-1)).toMatchObject({ payloads: 8, objects: 5, existing: 2 });
      // The probe asked for the three large ones; the two new large ones went into the COPY (or the
      // INSERT, without COPY), the small ones into the INSERT.
      expect(kinds(recorder.sent)).toEqual(copy ? ['probe', 'copy', 'insert'] : ['probe', 'insert']);
      const probe = recorder.sent[0];
      const insert = recorder.sent.at(-1);
      const probed = [...((probe?.config.values?.[0] as string[]) ?? [])].sort();
      const inserted = keysParam(insert?.config.values?.[0]).sort();
      const k = claims.map(keyOf);
      expect(probed).toEqual([k[0], k[2], k[5]].sort());
      expect(inserted).toEqual((copy ? [k[1], k[3]] : [k[0], k[1], k[3], k[5]]).sort());
      expect(inserted).not.toContain(storedKeys[1]);
      expect(await countRows(pool, driver)).toBe(5);
      const back = await driver.retrieve({}, claims);
      back.forEach((p, i) => {
        expect(Buffer.from(p.data ?? []).equals(Buffer.from(batch[i]?.data ?? []))).toBe(true);
      });

      // All large and all existing: the probe alone answers, nothing is inserted.
      recorder.sent.length = 0;
      await driver.store({}, [bigOld, bigNew2]);
      expect(recorder.sent.map(isProbe)).toEqual([true]);
      expect(driver.outcomes.at(-1)).toEqual(['existed', 'existed']);
    },
  );

  it('a probe hit refreshes last_referenced (server clock) and rewrites nothing else', async () => {
    const { driver } = await recordingDriver();
    const p = big(2 * MiB, 20);
    const [claim] = await driver.store({}, [p]);
    const key = keyOf(claim);
    await pool.query(
      `UPDATE ${driver.qualifiedTable}
          SET last_referenced = now() - interval '2 days', created_at = now() - interval '3 days'
        WHERE key = $1`,
      [key],
    );
    const aged = await rowTimes(pool, driver, key);
    const before = await serverNow(pool);
    await driver.store({}, [p]);
    const after = await serverNow(pool);
    const times = await rowTimes(pool, driver, key);
    expect(times.createdAt).toBe(aged.createdAt);
    expect(times.lastReferenced).toBeGreaterThanOrEqual(before - 1);
    expect(times.lastReferenced).toBeLessThanOrEqual(after + 1);
    expect(driver.outcomes.at(-1)).toEqual(['existed']);
    // A time already ahead is never moved back.
    await pool.query(`UPDATE ${driver.qualifiedTable} SET last_referenced = now() + interval '1 day' WHERE key = $1`, [
      key,
    ]);
    const ahead = (await rowTimes(pool, driver, key)).lastReferenced;
    await driver.store({}, [p]);
    expect((await rowTimes(pool, driver, key)).lastReferenced).toBe(ahead);
    expect(driver.outcomes.at(-1)).toEqual(['existed']);
  });

  it("with the clock option, a probe hit records the clock's time, only ever forward", async () => {
    let now = 1_700_000_000_000;
    const { driver } = await recordingDriver({ clock: () => now });
    const p = big(2 * MiB, 30);
    const [claim] = await driver.store({}, [p]);
    const key = keyOf(claim);
    expect(await rowTimes(pool, driver, key)).toEqual({ lastReferenced: now, createdAt: now });
    now += 60_000;
    await driver.store({}, [p]);
    expect(await rowTimes(pool, driver, key)).toEqual({ lastReferenced: now, createdAt: now - 60_000 });
    const latest = now;
    now -= 3_600_000; // a clock behind the recorded time
    await driver.store({}, [p]);
    expect((await rowTimes(pool, driver, key)).lastReferenced).toBe(latest);
    expect(driver.outcomes).toEqual([['written'], ['existed'], ['existed']]);
  });

  it('a sweep holding the row when the probe comes: the probe waits, the row is deleted, the store writes it again', async () => {
    const { driver } = await recordingDriver();
    const p = big(2 * MiB, 40);
    const [claim] = await driver.store({}, [p]);
    const key = keyOf(claim);
    const sweeper = await pool.connect();
    try {
      // What deleteExpired does, held open: lock the (old) row FOR UPDATE SKIP LOCKED and delete it.
      await sweeper.query('BEGIN');
      const locked = await sweeper.query(
        `SELECT key FROM ${driver.qualifiedTable} WHERE key = $1 FOR UPDATE SKIP LOCKED`,
        [key],
      );
      expect(locked.rowCount).toBe(1);
      await sweeper.query(`DELETE FROM ${driver.qualifiedTable} WHERE key = $1`, [key]);
      const storing = driver.store({}, [p]);
      // The probe is blocked on the sweeper's lock.
      await waitFor(async () => (await lockWaiters(pool)) > 0);
      await sweeper.query('COMMIT');
      expect(await storing).toEqual([claim]);
    } finally {
      sweeper.release();
    }
    expect(driver.outcomes).toEqual([['written'], ['written']]);
    const [back] = await driver.retrieve({}, [claim as NonNullable<typeof claim>]);
    expect(Buffer.from(back?.data ?? []).equals(Buffer.from(p.data ?? []))).toBe(true);
  });

  it('the probe holding the row: a concurrent deleteExpired skips it, and once refreshed it is no longer expired', async () => {
    const { driver, recorder } = await recordingDriver();
    const p = big(2 * MiB, 50);
    const [claim] = await driver.store({}, [p]);
    const key = keyOf(claim);
    await pool.query(`UPDATE ${driver.qualifiedTable} SET last_referenced = now() - interval '2 days' WHERE key = $1`, [
      key,
    ]);
    // Run the probe inside a transaction held open (as if the sweep came while it ran).
    const holder = await pool.connect();
    let swept: Awaited<ReturnType<PostgresStorageDriver['deleteExpired']>> | undefined;
    try {
      await holder.query('BEGIN');
      recorder.beforeQuery = async (config) => {
        const r = await holder.query(config);
        expect(r.rows).toEqual([{ existed: 0 }]);
        const sweeperDriver = new PostgresStorageDriver({ pool, schema });
        swept = await sweeperDriver.deleteExpired({ olderThan: 24 * 3_600_000 });
        await holder.query('COMMIT');
      };
      await driver.store({}, [p]); // the probe runs again (autocommit) after the hook: still found
    } finally {
      recorder.beforeQuery = undefined;
      holder.release();
    }
    expect(swept).toMatchObject({ removed: 0 });
    expect(await countRows(pool, driver)).toBe(1);
    // Refreshed by the probe: a sweep for rows older than a day keeps it.
    expect(
      await new PostgresStorageDriver({ pool, schema }).deleteExpired({ olderThan: 24 * 3_600_000 }),
    ).toMatchObject({ removed: 0 });
    expect(driver.outcomes.at(-1)).toEqual(['existed']);
  });

  it.each(LARGE_WRITERS)(
    'a row another writer inserts after the probe is reported existed (large written by %s)',
    async (_, copy) => {
      const { driver, recorder } = await recordingDriver({}, copy);
      const other = new PostgresStorageDriver({ pool, schema });
      const p = big(2 * MiB, 60);
      recorder.afterQuery = async (config) => {
        if (config.text.startsWith('WITH probed AS (')) await other.store({}, [p]);
      };
      try {
        await driver.store({}, [p]);
      } finally {
        recorder.afterQuery = undefined;
      }
      // The COPY fails as a whole on the duplicate key (nothing written); a second probe finds the row.
      expect(kinds(recorder.sent)).toEqual(copy ? ['probe', 'copy', 'probe'] : ['probe', 'insert']);
      expect(driver.outcomes).toEqual([['existed']]);
      expect(await countRows(pool, driver)).toBe(1);
    },
  );

  it('a COPY that fails on one key another writer stored: that one is existed, the others go to the INSERT', async () => {
    const { driver, recorder } = await recordingDriver();
    const other = new PostgresStorageDriver({ pool, schema });
    const [p, q] = [big(2 * MiB, 61), big(3 * MiB, 62)] as const;
    let raced = false;
    recorder.afterQuery = async (config) => {
      if (!raced && config.text.startsWith('WITH probed AS (')) {
        raced = true;
        await other.store({}, [q]);
      }
    };
    let claims: Awaited<ReturnType<typeof driver.store>>;
    try {
      claims = await driver.store({}, [p, q]);
    } finally {
      recorder.afterQuery = undefined;
    }
    expect(kinds(recorder.sent)).toEqual(['probe', 'copy', 'probe', 'insert']);
    expect(keysParam(recorder.sent.at(-1)?.config.values?.[0])).toEqual([keyOf(claims[0])]);
    expect(driver.outcomes).toEqual([['written', 'existed']]);
    const back = await driver.retrieve({}, claims);
    expect(back.map((b) => Buffer.from(b.data ?? []).length)).toEqual([2 * MiB, 3 * MiB]);
    expect(await countRows(pool, driver)).toBe(2);
  });

  it('concurrent stores of the same large payloads and sweeps: every store ends with its rows present', async () => {
    const { driver } = await recordingDriver();
    const payloads = Array.from({ length: 4 }, (_, i) => big(MiB + i, 70 + i));
    const sweeper = new PostgresStorageDriver({ pool, schema });
    for (let round = 0; round < 5; round++) {
      // Every row aged past the sweep's cutoff, then stores and a sweep race.
      await pool.query(`UPDATE ${driver.qualifiedTable} SET last_referenced = now() - interval '2 days'`);
      const [a, b] = await Promise.all([
        driver.store({}, payloads),
        driver.store({}, [...payloads].reverse()),
        sweeper.deleteExpired({ olderThan: 24 * 3_600_000 }),
      ]);
      // Whatever the sweep deleted, it deleted before the stores referenced the rows: they are back.
      const back = await driver.retrieve({}, [...(a ?? []), ...(b ?? [])]);
      expect(back).toHaveLength(8);
    }
  });
});

/** Sessions of the test database waiting for a lock. */
async function lockWaiters(admin: Pool): Promise<number> {
  const r = await admin.query<{ n: number }>(
    "SELECT count(*)::integer AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
  );
  return r.rows[0]?.n ?? 0;
}

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}
