/**
 * The COPY paths of large payloads: `COPY … FROM STDIN (FORMAT binary)` for the ones a store
 * writes, `COPY (…) TO STDOUT (FORMAT binary)` for rows over 8 MiB a retrieve reads. Times and bytes
 * are exact, a COPY that fails (before, during or after its rows, or with its connection) writes
 * nothing and leaves the pool usable, and the binary format is read right however it is split.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { isStorageDriverError } from '@x/storage-driver-core';
import { captureStorageDriverError, makePayload, pseudoRandomBytes } from '@x/storage-driver-test-suite';
import type { Pool, PoolClient } from 'pg';
import { type PostgresPoolClient, PostgresStorageDriver } from '../src';
import { binaryCopyRow, copyToStdout, type PostgresCopyClient } from '../src/copy';
import { countRows, dropSchema, makeDriver, makePool, meteredPool, rowTimes, serverNow, uniqueSchema } from './helpers';

const MiB = 1024 * 1024;

let pool: Pool;
let schema: string;
beforeAll(() => {
  pool = makePool({ max: 4 });
});
afterAll(async () => {
  await pool.end();
});
beforeEach(() => {
  schema = uniqueSchema('copy');
});
afterEach(async () => {
  await dropSchema(pool, schema);
});

const big = (size: number, seed: number) => makePayload(pseudoRandomBytes(size, seed));

/**
 * Runs `hook` with the text of every COPY (a custom query) a client of `pool` submits, and sends
 * the COPY once it has settled: to watch the driver's COPYs, or to act between its statements.
 */
function beforeCopies(pool: Pool, hook: (text: string) => void | Promise<void>): void {
  const wrapped = new WeakSet<object>();
  pool.on('acquire', (client: PoolClient) => {
    if (wrapped.has(client)) return;
    wrapped.add(client);
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
      const config = args[0] as { text?: string; submit?: unknown };
      if (typeof config.submit !== 'function') return query(...args);
      return Promise.resolve(hook(config.text ?? '')).then(() => query(...args));
    };
  });
}
const sameBytes = (a: { data?: Uint8Array | null } | undefined, b: { data?: Uint8Array | null } | undefined) =>
  Buffer.from(a?.data ?? []).equals(Buffer.from(b?.data ?? []));

describe('COPY FROM STDIN (store)', () => {
  it("records the server's now() without a clock option, the clock's time (to the millisecond) with one", async () => {
    const d = await makeDriver(pool, schema);
    const before = await serverNow(pool);
    const [c1] = await d.store({}, [big(2 * MiB, 1)]);
    const after = await serverNow(pool);
    const t1 = await rowTimes(pool, d, c1?.claimData.key ?? '');
    expect(t1.lastReferenced).toBeGreaterThanOrEqual(before - 1);
    expect(t1.lastReferenced).toBeLessThanOrEqual(after + 1);
    expect(t1.createdAt).toBe(t1.lastReferenced);
    // Before and after the PostgreSQL epoch (2000-01-01), with milliseconds.
    for (const clock of [Date.UTC(2031, 4, 6, 7, 8, 9, 123), Date.UTC(1999, 11, 31, 23, 59, 59, 999)]) {
      const clocked = new PostgresStorageDriver({ pool, schema, clock: () => clock });
      const [c] = await clocked.store({}, [big(MiB + 7, clock % 1000)]);
      expect(await rowTimes(pool, d, c?.claimData.key ?? '')).toEqual({ lastReferenced: clock, createdAt: clock });
    }
    const sizes = await pool.query<{ ok: boolean }>(
      `SELECT bool_and(size = octet_length(data)) AS ok FROM ${d.qualifiedTable}`,
    );
    expect(sizes.rows[0]?.ok).toBe(true);
  });

  it('a row refused mid-COPY (a trigger) writes none of the batch, and the connection is reused cleanly', async () => {
    const single = makePool({ max: 1 });
    try {
      const d = await makeDriver(single, schema);
      await pool.query(
        `CREATE FUNCTION "${schema}".refuse_big() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN IF NEW.size > 5000000 THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$`,
      );
      await pool.query(
        `CREATE TRIGGER refuse_big BEFORE INSERT ON ${d.qualifiedTable} FOR EACH ROW EXECUTE FUNCTION "${schema}".refuse_big()`,
      );
      // Several rows around the refused one, so the server fails while rows are still arriving.
      const batch = [2, 3, 6, 2.5, 3.5].map((n, i) => big(Math.round(n * MiB), 10 + i));
      const error = await captureStorageDriverError(() => d.store({}, batch));
      expect(isStorageDriverError(error)).toBe(true);
      expect(error.message).toContain('refused');
      expect(await countRows(pool, d)).toBe(0);
      // The one connection of the pool: the next statements run normally on it.
      await pool.query(`DROP TRIGGER refuse_big ON ${d.qualifiedTable}`);
      const claims = await d.store({}, batch);
      const back = await d.retrieve({}, claims);
      expect(back.every((p, i) => sameBytes(p, batch[i]))).toBe(true);
      expect(await countRows(pool, d)).toBe(5);
    } finally {
      await single.end();
    }
  });

  it('a connection terminated while a COPY streams fails the store, writes nothing, and the pool recovers', async () => {
    const d = await makeDriver(pool, schema);
    const p = big(48 * MiB, 20);
    const stored = d.store({}, [p]);
    let terminated = false;
    for (let i = 0; i < 400 && !terminated; i++) {
      const r = await pool.query<{ done: boolean }>(
        `SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity
          WHERE query LIKE 'COPY %' AND query LIKE '%' || $1 || '%' AND state = 'active' AND pid <> pg_backend_pid()`,
        [schema],
      );
      terminated = r.rows[0]?.done === true;
      if (!terminated) await new Promise((r) => setTimeout(r, 2));
    }
    expect(terminated).toBe(true);
    const error = await captureStorageDriverError(() => stored);
    expect(error.code).toBe('E_BACKEND');
    expect(await countRows(pool, d)).toBe(0);
    const [claim] = await d.store({}, [p]);
    const [back] = await d.retrieve({}, [claim as NonNullable<typeof claim>]);
    expect(sameBytes(back, p)).toBe(true);
  });
});

describe('a table COPY FROM cannot write (row-level security)', () => {
  it('the first large store falls back to the INSERT, later ones go straight to it; rows over 8 MiB still read with COPY', async () => {
    const d0 = await makeDriver(pool, schema);
    // RLS forced on the owner too (and on its members), which superusers still bypass: the driver
    // connects as a login role of its own, a member of the owner's.
    await pool.query(`ALTER TABLE ${d0.qualifiedTable} ENABLE ROW LEVEL SECURITY`);
    await pool.query(`ALTER TABLE ${d0.qualifiedTable} FORCE ROW LEVEL SECURITY`);
    await pool.query(`CREATE POLICY everything ON ${d0.qualifiedTable} USING (true) WITH CHECK (true)`);
    const metered = await meteredPool(pool, { max: 2 });
    // Every COPY the driver submits on that pool: 'in' (FROM STDIN) or 'out' (TO STDOUT).
    const submitted: string[] = [];
    beforeCopies(metered.pool, (text) => {
      submitted.push(text.includes('FROM STDIN') ? 'in' : 'out');
    });
    try {
      const d = new PostgresStorageDriver({ pool: metered.pool, schema });
      const [a, b] = [big(2 * MiB, 70), big(9 * MiB, 71)];
      const [ca] = await d.store({}, [a]);
      expect(submitted).toEqual(['in']); // refused (0A000), then the INSERT
      const [cb] = await d.store({}, [b]);
      expect(submitted).toEqual(['in']); // no second attempt
      const back = await d.retrieve({}, [ca, cb] as NonNullable<typeof ca>[]);
      expect(submitted).toEqual(['in', 'out']);
      expect(sameBytes(back[0], a) && sameBytes(back[1], b)).toBe(true);
      expect(await countRows(pool, d0)).toBe(2);
    } finally {
      await metered.dispose();
    }
  });
});

describe('COPY TO STDOUT (retrieve of rows over 8 MiB)', () => {
  it('reads several large rows and a small one of one batch exactly', async () => {
    const d = await makeDriver(pool, schema);
    const batch = [9 * MiB, 1024, 17 * MiB + 3, 8 * MiB + 1].map((n, i) => big(n, 30 + i));
    const claims = await d.store({}, batch);
    const back = await d.retrieve({}, claims);
    expect(back.every((p, i) => sameBytes(p, batch[i]))).toBe(true);
  });

  it('a large row deleted between the SELECT and its COPY is missing (E_NOT_FOUND), not empty', async () => {
    const single = makePool({ max: 1 });
    try {
      const d = await makeDriver(single, schema);
      const [claim] = await d.store({}, [big(9 * MiB, 40)]);
      // Delete the row from another session once the driver's SELECT has run, before its COPY.
      let deleted = false;
      beforeCopies(single, async (text) => {
        if (deleted || !text.startsWith('COPY (SELECT')) return;
        deleted = true;
        await pool.query(`DELETE FROM ${d.qualifiedTable}`);
      });
      const error = await captureStorageDriverError(() => d.retrieve({}, [claim as NonNullable<typeof claim>]));
      expect(deleted).toBe(true);
      expect(error.code).toBe('E_NOT_FOUND');
    } finally {
      await single.end();
    }
  });

  it('the binary COPY reader gives the same bytes however the stream is split into messages', async () => {
    const data = [pseudoRandomBytes(70_000, 1), new Uint8Array(0), pseudoRandomBytes(3, 2)];
    const header = Buffer.from([
      0x50, 0x47, 0x43, 0x4f, 0x50, 0x59, 0x0a, 0xff, 0x0d, 0x0a, 0x00, 0, 0, 0, 0, 0, 0, 0, 5,
    ]);
    const stream = Buffer.concat([
      header,
      Buffer.from('ext!!'), // a header extension (skipped)
      ...data.flatMap((d) => binaryCopyRow([[d.subarray(0, 10), d.subarray(10)]])),
      Buffer.from([0xff, 0xff]),
    ]);
    const expected = Buffer.concat(data);
    for (const size of [1, 2, 3, 7, 19, 4096, stream.length]) {
      const received: Buffer[] = [];
      const client = {
        query(copy: {
          handleCopyData(m: { chunk: Uint8Array }): void;
          handleCommandComplete(m: { text: string }): void;
          handleReadyForQuery(): void;
        }) {
          for (let at = 0; at < stream.length; at += size)
            copy.handleCopyData({ chunk: stream.subarray(at, at + size) });
          copy.handleCommandComplete({ text: `COPY ${data.length}` });
          copy.handleReadyForQuery();
        },
      } as unknown as PostgresCopyClient;
      const rows = await copyToStdout(client, 'COPY', (chunk) => received.push(Buffer.from(chunk)));
      expect(rows).toBe(3);
      expect(Buffer.concat(received).equals(expected)).toBe(true);
    }
    // A stream cut inside a row is an error, not a short payload.
    const cut = {
      query(copy: { handleCopyData(m: { chunk: Uint8Array }): void; handleReadyForQuery(): void }) {
        copy.handleCopyData({ chunk: stream.subarray(0, 100) });
        copy.handleReadyForQuery();
      },
    } as unknown as PostgresCopyClient;
    await expect(copyToStdout(cut, 'COPY', () => {})).rejects.toThrow('ended inside a row');
  });

  it('a client that is not pg (no connection to stream through) reads large rows in base64 slices instead', async () => {
    const d0 = await makeDriver(pool, schema);
    const heads: string[] = [];
    const structural = {
      async connect(): Promise<PostgresPoolClient> {
        const client = await pool.connect();
        return {
          query: (config) => {
            heads.push(config.text.split(' ')[0] ?? '');
            return client.query(config);
          },
          release: (destroy) => client.release(destroy),
          on: (event, listener) => client.on(event, listener),
          removeListener: (event, listener) => client.removeListener(event, listener),
        };
      },
    };
    const d = new PostgresStorageDriver({ pool: structural, schema });
    const p = big(9 * MiB, 50);
    const [claim] = await d.store({}, [p]);
    heads.length = 0;
    const [back] = await d.retrieve({}, [claim as NonNullable<typeof claim>]);
    expect(sameBytes(back, p)).toBe(true);
    expect(heads).toEqual(['SELECT', ...Array(10).fill('SELECT')]);
    expect(await countRows(pool, d0)).toBe(1);
  });
});
