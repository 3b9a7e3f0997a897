/** Shared helpers for the driver-postgres tests: the shared server, isolated schemas, payloads. */
import { randomBytes } from 'node:crypto';
import {
  type BackendOperation,
  type Payload,
  type PutOutcome,
  StorageDriverClaim,
  type StorageDriverErrorCode,
  type StorageLocation,
  type StoreItem,
  sha256Hex,
} from '@x/storage-driver-core';
import { captureStorageDriverError } from '@x/storage-driver-test-suite';
import { SERVICES, uniqueName } from '@x/test-servers';
import { Pool, type PoolConfig } from 'pg';
import { PostgresStorageDriver, type PostgresStorageDriverOptions } from '../src';

/** A schema name no other test (or parallel run) uses: `xs_{prefix}_{pid}_{time}_{random}`, ≤ 63 characters. */
export function uniqueSchema(prefix: string): string {
  return uniqueName(`xs_${prefix}`, { separator: '_', lowerCase: true, maxLength: 63 });
}

/** A pool on the shared server with an `error` listener (idle connection errors don't crash jest). */
export function makePool(config: PoolConfig = {}): Pool {
  const pool = new Pool({ connectionString: SERVICES.postgresUrl, max: 4, ...config });
  pool.on('error', () => {});
  return pool;
}

/** Drops a test schema and everything in it. */
export async function dropSchema(pool: Pool, schema: string): Promise<void> {
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
}

/** A driver over `pool` in `schema` whose table exists. */
export async function makeDriver(
  pool: Pool,
  schema: string,
  options: Partial<PostgresStorageDriverOptions> = {},
): Promise<PostgresStorageDriver> {
  const driver = new PostgresStorageDriver({ pool, schema, ...options });
  await driver.ensureSchema();
  return driver;
}

/** Number of rows of the driver's table. */
export async function countRows(pool: Pool, driver: PostgresStorageDriver): Promise<number> {
  const r = await pool.query<{ n: number }>(`SELECT count(*)::integer AS n FROM ${driver.qualifiedTable}`);
  return r.rows[0]?.n ?? -1;
}

/** A JSON payload with the given text. */
export function payload(text: string): Payload {
  const encoder = new TextEncoder();
  return { metadata: { encoding: encoder.encode('json/plain') }, data: encoder.encode(JSON.stringify(text)) };
}

/** Decodes a payload's data as the JSON string it holds. */
export function text(p: Payload | undefined): string {
  return JSON.parse(new TextDecoder().decode(p?.data ?? new Uint8Array())) as string;
}

/** A claim with fields replaced (hash fields kept). */
export function withFields(claim: StorageDriverClaim | undefined, fields: Record<string, string>): StorageDriverClaim {
  return new StorageDriverClaim({ ...(claim?.claimData ?? {}), ...fields });
}

/** Runs `fn` and returns the StorageDriverError code it rejects with (fails if it resolves). */
export async function errorCode(fn: () => Promise<unknown>): Promise<StorageDriverErrorCode> {
  return (await captureStorageDriverError(fn)).code;
}

/** `last_referenced` and `created_at` of a row, in ms since the epoch. */
export async function rowTimes(
  pool: Pool,
  driver: PostgresStorageDriver,
  key: string,
): Promise<{ lastReferenced: number; createdAt: number }> {
  const r = await pool.query<{ l: Date; c: Date }>(
    `SELECT last_referenced AS l, created_at AS c FROM ${driver.qualifiedTable} WHERE key = $1`,
    [key],
  );
  const row = r.rows[0];
  if (row === undefined) throw new Error(`no row for ${key}`);
  return { lastReferenced: row.l.getTime(), createdAt: row.c.getTime() };
}

/** The server's clock, in ms since the epoch (`clock_timestamp()`, not the transaction's `now()`). */
export async function serverNow(pool: Pool): Promise<number> {
  const r = await pool.query<{ t: Date }>('SELECT clock_timestamp() AS t');
  return r.rows[0]?.t.getTime() ?? Number.NaN;
}

/**
 * Inserts `n` rows with valid storage keys `v0/ns/<namespace>/d/sha256/<sha256 of tag-i>` of `size`
 * bytes, last referenced `age` (an SQL interval) ago. Returns nothing; the keys are reproducible
 * with {@link seededKey}.
 */
export async function seedRows(
  pool: Pool,
  driver: PostgresStorageDriver,
  options: { n: number; namespace: string; age?: string; tag?: string; size?: number },
): Promise<void> {
  const { n, namespace, age = '0 seconds', tag = namespace, size = 10 } = options;
  await pool.query(
    `INSERT INTO ${driver.qualifiedTable} (key, data, size, last_referenced)
     SELECT 'v0/ns/' || $1 || '/d/sha256/' || encode(sha256(convert_to($2 || '-' || g, 'UTF8')), 'hex'),
            decode(repeat('ab', $3), 'hex'), $3, now() - $4::interval
       FROM generate_series(1, $5) g`,
    [namespace, tag, size, age, n],
  );
}

/** The key {@link seedRows} wrote for row `i` (1-based). */
export function seededKey(namespace: string, i: number, tag = namespace): string {
  return `v0/ns/${namespace}/d/sha256/${sha256Hex(new TextEncoder().encode(`${tag}-${i}`))}`;
}

/** Everything an async iterable yields. */
export async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

/**
 * A login role of its own (a member of the shared server's user, so it inherits its privileges on
 * the test's tables) and a pool that connects as it. pg_stat_statements records statements per
 * role, so {@link statementCalls} sees every statement this pool sends — `BEGIN`, `SET`, catalog
 * queries included — and nothing that other tests running in parallel send.
 */
export async function meteredPool(
  admin: Pool,
  config: PoolConfig = {},
): Promise<{ pool: Pool; role: string; dispose: () => Promise<void> }> {
  const role = uniqueName('xs_meter', { separator: '_' });
  const password = randomBytes(12).toString('hex');
  const url = new URL(SERVICES.postgresUrl);
  await admin.query(`CREATE ROLE "${role}" LOGIN INHERIT PASSWORD '${password}' IN ROLE "${url.username}"`);
  url.username = role;
  url.password = password;
  const pool = makePool({ ...config, connectionString: url.toString() });
  return {
    pool,
    role,
    async dispose() {
      await pool.end();
      await admin.query(`DROP ROLE IF EXISTS "${role}"`);
    },
  };
}

/**
 * Calls recorded by pg_stat_statements for every statement `role` sent (see {@link meteredPool}),
 * grouped by their first word (INSERT, SELECT, WITH, BEGIN, COPY, ...). Top-level statements only:
 * with `track = all` the query inside a `COPY (SELECT …) TO STDOUT` is recorded once more, nested.
 */
export async function statementCalls(pool: Pool, role: string): Promise<Map<string, number>> {
  const r = await pool.query<{ verb: string; calls: string }>(
    `SELECT upper(split_part(ltrim(query), ' ', 1)) AS verb, sum(calls)::bigint AS calls
       FROM pg_stat_statements
      WHERE userid = (SELECT oid FROM pg_roles WHERE rolname = $1) AND toplevel
      GROUP BY 1`,
    [role],
  );
  return new Map(r.rows.map((row) => [row.verb, Number(row.calls)]));
}

/**
 * Calls and rows returned (or affected) per statement of `role`, grouped by their first word, as
 * {@link statementCalls}: `{ calls, rows }`.
 */
export async function statementStats(pool: Pool, role: string): Promise<Map<string, { calls: number; rows: number }>> {
  const r = await pool.query<{ verb: string; calls: string; rows: string }>(
    `SELECT upper(split_part(ltrim(query), ' ', 1)) AS verb, sum(calls)::bigint AS calls, sum(rows)::bigint AS rows
       FROM pg_stat_statements
      WHERE userid = (SELECT oid FROM pg_roles WHERE rolname = $1) AND toplevel
      GROUP BY 1`,
    [role],
  );
  return new Map(r.rows.map((row) => [row.verb, { calls: Number(row.calls), rows: Number(row.rows) }]));
}

/** Per-verb difference `after - before`, omitting zeros. */
export function diffCalls(before: Map<string, number>, after: Map<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [verb, n] of after) {
    const d = n - (before.get(verb) ?? 0);
    if (d !== 0) out[verb] = d;
  }
  return out;
}

/** The driver, recording what each `_putIfAbsent` resolved to (one outcome per item of each store). */
export class RecordingDriver extends PostgresStorageDriver {
  readonly outcomes: (readonly PutOutcome[])[] = [];
  protected override async _putIfAbsent(items: StoreItem<StorageLocation>[], op: BackendOperation) {
    const outcomes = await super._putIfAbsent(items, op);
    this.outcomes.push(outcomes);
    return outcomes;
  }
}
