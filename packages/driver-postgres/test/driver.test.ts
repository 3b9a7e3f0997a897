/** Options, schema, one statement per batch, last-referenced times and hostile claims on the shared server. */

import { constants as bufferConstants } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, jest } from '@jest/globals';
import {
  defaultPayloadConverter,
  ExternalStorage,
  type Payload as SdkPayload,
  type StorageDriver as SdkStorageDriver,
} from '@temporalio/common';
import { ExternalStorageRunner } from '@temporalio/common/lib/internal-non-workflow/external-storage-runner';
import { encodePayload, StorageDriverClaim, StorageDriverErrorCode, sha256Hex } from '@x/storage-driver-core';
import { makePayload, pseudoRandomBytes } from '@x/storage-driver-test-suite';
import { SERVICES, uniqueName } from '@x/test-servers';
import type { Pool } from 'pg';
import {
  POSTGRES_MAX_PAYLOAD_SIZE_LIMIT,
  type PostgresPool,
  PostgresStorageDriver,
  type PostgresStorageDriverOptions,
  schemaSql,
  schemaStatements,
} from '../src';
import {
  countRows,
  diffCalls,
  dropSchema,
  errorCode,
  makeDriver,
  makePool,
  meteredPool,
  payload,
  rowTimes,
  serverNow,
  statementCalls,
  statementStats,
  text,
  uniqueSchema,
  withFields,
} from './helpers';

const MiB = 1024 * 1024;
const MAX_STRING_LENGTH = bufferConstants.MAX_STRING_LENGTH;
let pool: Pool;
let schema: string;

beforeAll(() => {
  pool = makePool({ max: 10 });
});
afterAll(async () => {
  await pool.end();
});
beforeEach(() => {
  schema = uniqueSchema('drv');
});
afterEach(async () => {
  await dropSchema(pool, schema);
});

describe('options', () => {
  it('a pg.Pool is a PostgresPool (compile-time) and defaults are as documented', () => {
    const typed: PostgresPool = pool;
    const d = new PostgresStorageDriver({ pool: typed });
    expect(d.type).toBe('postgres.pgdriver');
    expect(d.name).toBe('postgres');
    expect(d.schema).toBe('public');
    expect(d.table).toBe('temporal_payloads');
    expect(d.qualifiedTable).toBe('"public"."temporal_payloads"');
    expect(d.maxPayloadSize).toBe(50 * MiB);
    expect(d.ttl).toBeUndefined();
    expect(d.ownsPool).toBe(false);
  });

  it('identifier-injection attempts in schema/table are E_CONFIG, and nothing is created', async () => {
    const hostile = [
      'x"; DROP TABLE t; --',
      'public"."pg_class',
      'a.b',
      'with space',
      'Upper',
      '1starts_with_digit',
      '',
      'x'.repeat(64),
      'tbl\u0000',
      'é',
      "o'brien",
    ];
    for (const bad of hostile) {
      for (const field of ['schema', 'table'] as const) {
        const options = { pool, [field]: bad } as PostgresStorageDriverOptions;
        expect(() => new PostgresStorageDriver(options)).toThrow(
          expect.objectContaining({ code: 'E_CONFIG' }) as unknown as Error,
        );
      }
    }
    expect(() => new PostgresStorageDriver({ pool, table: 'x'.repeat(49) })).toThrow(/1–48/);
    expect(() => new PostgresStorageDriver({ pool, schema: 'pg_catalog' })).toThrow(/pg_/);
    expect(() => new PostgresStorageDriver({ pool, schema: 42 } as unknown as PostgresStorageDriverOptions)).toThrow(
      expect.objectContaining({ code: 'E_CONFIG' }) as unknown as Error,
    );
    expect(() => schemaSql({ table: 'a"b' })).toThrow(
      expect.objectContaining({ code: 'E_CONFIG' }) as unknown as Error,
    );
    const r = await pool.query(`SELECT count(*)::integer AS n FROM pg_namespace WHERE nspname LIKE '%DROP%'`);
    expect(r.rows[0].n).toBe(0);
  });

  it('invalid pool, ttl, maxPayloadSize and name are E_CONFIG', () => {
    const bad: unknown[] = [
      undefined,
      null,
      {},
      { pool: {} },
      { pool, ttl: 0 },
      { pool, ttl: 1.5 },
      { pool, ttl: 101 * 365 * 24 * 3600_000 },
      { pool, maxPayloadSize: 257 * MiB },
      { pool, maxPayloadSize: 256 * MiB },
      { pool, maxPayloadSize: -1 },
      { pool, name: '' },
    ];
    for (const options of bad) {
      expect(() => new PostgresStorageDriver(options as PostgresStorageDriverOptions)).toThrow(
        expect.objectContaining({ code: 'E_CONFIG' }) as unknown as Error,
      );
    }
  });

  it('the maxPayloadSize limit is retrievable: its bytea hex text fits a V8 string', () => {
    // pg reads bytea as '\\x' + 2 hex characters per byte in one JS string. At 256 MiB that string
    // exceeds V8's limit: pg-protocol throws in its socket handler and the retrieve hangs forever.
    expect(2 * POSTGRES_MAX_PAYLOAD_SIZE_LIMIT + 2).toBeLessThanOrEqual(MAX_STRING_LENGTH);
    const d = new PostgresStorageDriver({ pool, maxPayloadSize: POSTGRES_MAX_PAYLOAD_SIZE_LIMIT });
    expect(d.maxPayloadSize).toBe(POSTGRES_MAX_PAYLOAD_SIZE_LIMIT);
  });
});

describe('schema', () => {
  it('schemaSql is the DDL ensureSchema runs, with the documented columns and last_referenced index', async () => {
    const sql = schemaSql({ schema, table: 'payloads' });
    expect(sql).toContain(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
    expect(sql).toContain(`CREATE TABLE IF NOT EXISTS "${schema}"."payloads"`);
    expect(sql).toContain(
      `CREATE INDEX IF NOT EXISTS "payloads_last_ref_idx" ON "${schema}"."payloads" (last_referenced)`,
    );
    expect(sql).not.toContain('expires_at');
    expect(schemaSql()).not.toContain('CREATE SCHEMA');
    // Running the script as a migration tool would, then ensureSchema, is a no-op second time.
    await pool.query(sql);
    await pool.query(sql);
    const d = new PostgresStorageDriver({ pool, schema, table: 'payloads' });
    await d.ensureSchema();
    const cols = await pool.query<{ column_name: string; data_type: string; is_nullable: string; c: string | null }>(
      `SELECT column_name, data_type, is_nullable, collation_name AS c FROM information_schema.columns
        WHERE table_schema = $1 AND table_name = 'payloads' ORDER BY ordinal_position`,
      [schema],
    );
    expect(cols.rows.map((c) => `${c.column_name}:${c.data_type}:${c.is_nullable}:${c.c ?? ''}`)).toEqual([
      'key:text:NO:C', // byte order: a key-prefix listing is an index range
      'data:bytea:NO:',
      'size:integer:NO:',
      'created_at:timestamp with time zone:NO:',
      'last_referenced:timestamp with time zone:NO:',
    ]);
    const claims = await d.store({}, [payload('after migration')]);
    expect(text((await d.retrieve({}, claims))[0])).toBe('after migration');
  });

  it('ensureSchema is idempotent and safe from 8 connections at once', async () => {
    const pools = Array.from({ length: 8 }, () => makePool({ max: 1 }));
    try {
      const drivers = pools.map((p) => new PostgresStorageDriver({ pool: p, schema }));
      const results = await Promise.allSettled(drivers.map((d) => d.ensureSchema()));
      expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
      await Promise.all(drivers.map((d) => d.ensureSchema()));
      const claims = await drivers[0]?.store({}, [payload('x')]);
      expect(text((await drivers[7]?.retrieve({}, claims ?? []))?.[0])).toBe('x');
    } finally {
      await Promise.all(pools.map((p) => p.end()));
    }
    expect(schemaStatements({ schema })).toHaveLength(3);
  });

  it('ensureSchema works for a role that may create tables in an existing schema but not schemas', async () => {
    // The usual split: a DBA creates the schema and grants USAGE + CREATE on it; the application's
    // role has no CREATE on the database, where even CREATE SCHEMA IF NOT EXISTS is refused.
    const role = uniqueName('xs_app', { separator: '_', maxLength: 63 });
    const password = randomBytes(12).toString('hex');
    await pool.query(`CREATE ROLE "${role}" LOGIN NOINHERIT PASSWORD '${password}'`);
    await pool.query(`CREATE SCHEMA "${schema}"`);
    await pool.query(`GRANT USAGE, CREATE ON SCHEMA "${schema}" TO "${role}"`);
    const url = new URL(SERVICES.postgresUrl);
    url.username = role;
    url.password = password;
    const appPool = makePool({ connectionString: url.toString(), max: 1 });
    try {
      const d = new PostgresStorageDriver({ pool: appPool, schema });
      // The trap: refused although the schema exists.
      await expect(appPool.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`)).rejects.toMatchObject({ code: '42501' });
      await d.ensureSchema();
      await d.ensureSchema();
      const claims = await d.store({}, [payload('app role')]);
      expect(text((await d.retrieve({}, claims))[0])).toBe('app role');
    } finally {
      await appPool.end();
      await dropSchema(pool, schema);
      await pool.query(`DROP ROLE IF EXISTS "${role}"`);
    }
  });

  it('a missing table is E_CONFIG (not retryable) and store/retrieve never create it', async () => {
    const d = new PostgresStorageDriver({ pool, schema });
    const err = await errorCode(() => d.store({}, [payload('no table')]));
    expect(err).toBe(StorageDriverErrorCode.CONFIG);
    const claim = new StorageDriverClaim({
      key: `v0/d/sha256/${'a'.repeat(64)}`,
      hash_algorithm: 'sha256',
      hash_value: 'a'.repeat(64),
    });
    expect(await errorCode(() => d.retrieve({}, [claim]))).toBe(StorageDriverErrorCode.CONFIG);
    const r = await pool.query('SELECT to_regclass($1) AS t', [d.qualifiedTable]);
    expect(r.rows[0].t).toBeNull();
  });
});

describe('one statement per batch (measured with pg_stat_statements)', () => {
  // The driver's pool connects as a role of its own: every statement it sends is counted (a
  // BEGIN/COMMIT or SET around the batch would show), and nothing from tests running in parallel.
  let metered: Awaited<ReturnType<typeof meteredPool>>;
  beforeEach(async () => {
    metered = await meteredPool(pool, { max: 2 });
  });
  afterEach(async () => {
    await metered.dispose();
  });
  /** Rows sent by the COPY statements of `role` (one per slice of a large row). */
  const copiedRows = async (role: string) => (await statementStats(pool, role)).get('COPY')?.rows ?? 0;

  it('store of 100 payloads (with duplicates) is 1 INSERT; retrieve of 100 claims is 1 SELECT; no DDL', async () => {
    await makeDriver(pool, schema, { ttl: 3_600_000 });
    const d = new PostgresStorageDriver({ pool: metered.pool, schema, ttl: 3_600_000 });
    const payloads = Array.from({ length: 100 }, (_, i) => payload(`p${i % 90}`));
    const before = await statementCalls(pool, metered.role);
    const claims = await d.store({}, payloads);
    const afterStore = await statementCalls(pool, metered.role);
    const back = await d.retrieve({}, claims);
    const afterRetrieve = await statementCalls(pool, metered.role);
    // A second store of the same batch (all dedup hits) is again one statement.
    await d.store({}, payloads);
    const afterRestore = await statementCalls(pool, metered.role);
    expect(back.map(text)).toEqual(payloads.map(text));
    // The store statement is `WITH written AS (INSERT …) SELECT …` (it reports the dedup hits).
    expect(diffCalls(before, afterStore)).toEqual({ WITH: 1 });
    expect(diffCalls(afterStore, afterRetrieve)).toEqual({ SELECT: 1 });
    expect(diffCalls(afterRetrieve, afterRestore)).toEqual({ WITH: 1 });
    expect(await countRows(pool, d)).toBe(90);
  });

  it('1,000 payloads of 1 KiB are still 1 INSERT (WITH … INSERT) and 1 SELECT', async () => {
    await makeDriver(pool, schema);
    const d = new PostgresStorageDriver({ pool: metered.pool, schema });
    const payloads = Array.from({ length: 1000 }, (_, i) => makePayload(pseudoRandomBytes(1024, i)));
    const before = await statementCalls(pool, metered.role);
    const claims = await d.store({}, payloads);
    await d.retrieve({}, claims);
    expect(diffCalls(before, await statementCalls(pool, metered.role))).toEqual({ WITH: 1, SELECT: 1 });
  });

  it('rows over 8 MiB are read as 64 KiB slices of one binary COPY (no hex copy of a whole payload); smaller ones come with the SELECT', async () => {
    await makeDriver(pool, schema);
    const d = new PostgresStorageDriver({ pool: metered.pool, schema });
    const payloads = [8 * MiB - 64, 8 * MiB + 1, 3 * MiB].map((n, i) => makePayload(pseudoRandomBytes(n, 60 + i)));
    const claims = await d.store({}, payloads);
    const keys = claims.map((c) => c.claimData.key ?? '').sort();
    const before = await statementCalls(pool, metered.role);
    const copiedBefore = await copiedRows(metered.role);
    const back = await d.retrieve({}, claims);
    const calls = diffCalls(before, await statementCalls(pool, metered.role));
    const copied = (await copiedRows(metered.role)) - copiedBefore;
    back.forEach((p, i) => {
      expect(Buffer.from(p.data ?? []).equals(Buffer.from(payloads[i]?.data ?? []))).toBe(true);
    });
    // Only the row over 8 MiB (serialized: 8 MiB + 1 byte of data and its metadata) is read
    // apart: one binary COPY of its ⌈size / 64 KiB⌉ = 129 slices.
    const sizes = await pool.query<{ n: number }>(
      `SELECT octet_length(data) AS n FROM ${d.qualifiedTable} WHERE key = ANY($1) ORDER BY n`,
      [keys],
    );
    expect(sizes.rows.map((r) => r.n > 8 * MiB)).toEqual([false, false, true]);
    expect(calls).toEqual({ SELECT: 1, COPY: 1 });
    expect(copied).toBe(Math.ceil((sizes.rows[2]?.n ?? 0) / (64 * 1024)));
  });

  it('a large row stored compressed (TOAST) is read as 8 slices, not 64 KiB ones (each slice decompresses from the start)', async () => {
    await makeDriver(pool, schema);
    const d = new PostgresStorageDriver({ pool: metered.pool, schema });
    const json = JSON.stringify(Array.from({ length: 800_000 }, (_, i) => ({ i, v: `x${i % 977}` })));
    const p = makePayload(new TextEncoder().encode(json.slice(0, 20 * MiB)));
    const claims = await d.store({}, [p]);
    const stored = await pool.query<{ size: number; stored: number }>(
      `SELECT octet_length(data) AS size, pg_column_size(data) AS stored FROM ${d.qualifiedTable}`,
    );
    expect(stored.rows[0]?.stored).toBeLessThan((stored.rows[0]?.size ?? 0) / 2); // compressed
    const before = await statementCalls(pool, metered.role);
    const copiedBefore = await copiedRows(metered.role);
    const [back] = await d.retrieve({}, claims);
    expect(diffCalls(before, await statementCalls(pool, metered.role))).toEqual({ SELECT: 1, COPY: 1 });
    expect((await copiedRows(metered.role)) - copiedBefore).toBe(8);
    expect(Buffer.from(back?.data ?? []).equals(Buffer.from(p.data ?? []))).toBe(true);
  });
});

describe('last_referenced', () => {
  it("every store records the server's now() (no clock option); the clock option's time when given", async () => {
    const d = await makeDriver(pool, schema, { ttl: 3_600_000 });
    const before = await serverNow(pool);
    const [c1] = await d.store({}, [payload('server clock')]);
    const after = await serverNow(pool);
    const t1 = await rowTimes(pool, d, c1?.claimData.key ?? '');
    expect(t1.lastReferenced).toBeGreaterThanOrEqual(before - 1);
    expect(t1.lastReferenced).toBeLessThanOrEqual(after + 1);
    expect(t1.createdAt).toBe(t1.lastReferenced);
    // The server's clock, not this process's: with Date.now() years off, the row still records now().
    const skewed = jest.spyOn(Date, 'now').mockReturnValue(Date.UTC(1999, 0, 1));
    let c3: StorageDriverClaim | undefined;
    try {
      [c3] = await new PostgresStorageDriver({ pool, schema }).store({}, [payload('process clock skewed')]);
    } finally {
      skewed.mockRestore();
    }
    expect((await rowTimes(pool, d, c3?.claimData.key ?? '')).lastReferenced).toBeGreaterThanOrEqual(before - 1);
    // An injected clock far from the server's: its time is what the row records.
    let clock = Date.UTC(2001, 0, 2, 3, 4, 5, 678);
    const clocked = new PostgresStorageDriver({ pool, schema, clock: () => clock });
    const [c2] = await clocked.store({}, [payload('injected clock')]);
    expect(await rowTimes(pool, d, c2?.claimData.key ?? '')).toEqual({ lastReferenced: clock, createdAt: clock });
    clock += 60_000;
    await clocked.store({}, [payload('injected clock')]);
    expect(await rowTimes(pool, d, c2?.claimData.key ?? '')).toEqual({
      lastReferenced: clock,
      createdAt: clock - 60_000,
    });
  });

  it('a dedup hit refreshes last_referenced and rewrites nothing else: corrupt bytes, size and created_at stay', async () => {
    const d = await makeDriver(pool, schema, { ttl: 60_000 });
    const [claim] = await d.store({}, [payload('shared')]);
    const key = claim?.claimData.key ?? '';
    // Age the row and corrupt it in place: a store that rewrote data (or size, or created_at) from
    // the payload it was given would repair what is checked below.
    await pool.query(
      `UPDATE ${d.qualifiedTable}
          SET last_referenced = now() - interval '2 days', created_at = now() - interval '3 days',
              data = set_byte(data, length(data) - 1, get_byte(data, length(data) - 1) # 255), size = size + 1000
        WHERE key = $1`,
      [key],
    );
    const read = async () =>
      (
        await pool.query<{ data: Buffer; size: number; created_at: Date }>(
          `SELECT data, size, created_at FROM ${d.qualifiedTable} WHERE key = $1`,
          [key],
        )
      ).rows[0];
    const corrupt = await read();
    const before = await serverNow(pool);
    const [again] = await d.store({}, [payload('shared')]); // a dedup hit
    expect(again).toEqual(claim);
    const after = await read();
    expect(after?.data.equals(corrupt?.data ?? Buffer.alloc(0))).toBe(true); // the corrupt bytes, not the payload's
    expect(after?.size).toBe(corrupt?.size);
    expect(after?.created_at.getTime()).toBe(corrupt?.created_at.getTime());
    expect((await rowTimes(pool, d, key)).lastReferenced).toBeGreaterThanOrEqual(before - 1);
    // The row was not rewritten, so it still fails the claim's check.
    expect(await errorCode(() => d.retrieve({}, [claim as StorageDriverClaim]))).toBe('E_INTEGRITY');
  });

  it('a dedup hit never moves last_referenced back (a later time already recorded wins)', async () => {
    const d = await makeDriver(pool, schema);
    const [claim] = await d.store({}, [payload('ahead')]);
    const key = claim?.claimData.key ?? '';
    await pool.query(`UPDATE ${d.qualifiedTable} SET last_referenced = now() + interval '1 day' WHERE key = $1`, [key]);
    const ahead = (await rowTimes(pool, d, key)).lastReferenced;
    await d.store({}, [payload('ahead')]);
    expect((await rowTimes(pool, d, key)).lastReferenced).toBe(ahead);
  });

  it('a row older than the ttl that was not swept yet is still returned (nothing expires by itself)', async () => {
    const d = await makeDriver(pool, schema, { ttl: 1000 });
    const claims = await d.store({}, [payload('stale but here')]);
    await pool.query(`UPDATE ${d.qualifiedTable} SET last_referenced = now() - interval '1 hour'`);
    expect(text((await d.retrieve({}, claims))[0])).toBe('stale but here');
    expect(d.capabilities).toMatchObject({ expiry: 'sweep', lastReferenced: 'exact', batchedWrites: true });
    expect(new PostgresStorageDriver({ pool }).capabilities.expiry).toBe('none');
  });
});

describe('claims pointing elsewhere', () => {
  it('a valid key that exists only in another table or schema is E_NOT_FOUND; extra claim fields are ignored', async () => {
    const other = uniqueSchema('other');
    try {
      const d = await makeDriver(pool, schema);
      const elsewhere = await makeDriver(pool, other);
      const sameSchemaOtherTable = await makeDriver(pool, schema, { table: 'secrets' });
      const [claimOther] = await elsewhere.store({}, [payload('other schema')]);
      const [claimTable] = await sameSchemaOtherTable.store({}, [payload('other table')]);
      expect(await errorCode(() => d.retrieve({}, [claimOther as StorageDriverClaim]))).toBe('E_NOT_FOUND');
      expect(await errorCode(() => d.retrieve({}, [claimTable as StorageDriverClaim]))).toBe('E_NOT_FOUND');
      const redirected = withFields(claimOther, {
        table: 'secrets',
        schema: other,
        bucket: other,
        qualifiedTable: `"${other}"."temporal_payloads"`,
      });
      expect(await errorCode(() => d.retrieve({}, [redirected]))).toBe('E_NOT_FOUND');
      // SQL in the key never reaches the server as SQL.
      for (const key of [
        `${claimOther?.claimData.key}' OR 'x'='x`,
        `v0/d/sha256/${'a'.repeat(64)}' UNION SELECT key, data FROM "${other}"."temporal_payloads"--`,
        `"${other}"."temporal_payloads"/${claimOther?.claimData.key}`,
      ]) {
        expect(await errorCode(() => d.retrieve({}, [withFields(claimOther, { key })]))).toBe('E_INVALID_CLAIM');
      }
      expect(await countRows(pool, elsewhere)).toBe(1);
    } finally {
      await dropSchema(pool, other);
    }
  });
});

describe('payload sizes', () => {
  it('a 50 MiB payload (default maxPayloadSize) round-trips; one byte more is E_TOO_LARGE', async () => {
    const d = await makeDriver(pool, schema);
    const probe = makePayload(new Uint8Array(0));
    const overhead = encodePayload(probe).length + 8;
    const big = makePayload(pseudoRandomBytes(50 * MiB - overhead, 50));
    const size = encodePayload(big).length;
    expect(size).toBeLessThanOrEqual(50 * MiB);
    const claims = await d.store({}, [big]);
    const [back] = await d.retrieve({}, claims);
    expect(sha256Hex(encodePayload(back as SdkPayload))).toBe(claims[0]?.claimData.hash_value);
    const r = await pool.query<{ size: number }>(`SELECT size FROM ${d.qualifiedTable}`);
    expect(r.rows[0]?.size).toBe(size);
    const tooBig = makePayload(pseudoRandomBytes(50 * MiB - overhead + 64, 51));
    expect(await errorCode(() => d.store({}, [tooBig]))).toBe('E_TOO_LARGE');
  });
});

describe('with @temporalio/common ExternalStorage', () => {
  it('is an SDK StorageDriver and round-trips through the SDK runner', async () => {
    const driver: SdkStorageDriver = await makeDriver(pool, schema);
    const externalStorage = new ExternalStorage({ drivers: [driver], payloadSizeThreshold: 1024 });
    expect(externalStorage.getDriver('postgres')).toBe(driver);
    const runner = new ExternalStorageRunner(externalStorage);
    const small = defaultPayloadConverter.toPayload('inline');
    const big = defaultPayloadConverter.toPayload('x'.repeat(10_000));
    const target = {
      kind: 'workflow' as const,
      namespace: 'default',
      id: "o'brien; DROP TABLE x",
      runId: 'r',
      type: 'W',
    };
    const stored: SdkPayload[] = await runner.store([small, big, big], { target });
    expect(stored[0]).toEqual(small);
    const reference = JSON.parse(new TextDecoder().decode(stored[1]?.data ?? undefined)) as {
      driverName: string;
      claimData: Record<string, string>;
    };
    expect(reference.driverName).toBe('postgres');
    expect(Object.keys(reference.claimData).sort()).toEqual(['hash_algorithm', 'hash_value', 'key']);
    expect(await countRows(pool, driver as PostgresStorageDriver)).toBe(1);
    const back = await runner.retrieve(stored);
    expect(back.map((p) => defaultPayloadConverter.fromPayload(p))).toEqual([
      'inline',
      'x'.repeat(10_000),
      'x'.repeat(10_000),
    ]);
  });
});
