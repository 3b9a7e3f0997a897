/**
 * The schema of the payload table: its DDL, the upgrade of tables created by earlier releases, and
 * `ensureSchema`, which inspects the catalogs and applies what is missing.
 *
 * @module
 */
import { throwIfAborted } from '@x/storage-driver-core';
import { isSchemaRace } from './errors';
import {
  POSTGRES_DEFAULT_SCHEMA,
  type PostgresTableName,
  quoteIdentifier,
  type ResolvedPostgresTable,
  resolvePostgresTable,
} from './options';
import { type PostgresPool, type PostgresPoolClient, withClient } from './pool';
import type { PostgresStatements } from './statements';

/**
 * The DDL statements of a new payload table, in order: the schema (unless it is `public`), the
 * table, and the index on `last_referenced` that makes expiry sweeps cheap. Every statement is
 * idempotent (`IF NOT EXISTS`). For a table created by an earlier release (with `expires_at` and
 * no `last_referenced`) use {@link schemaUpgradeStatements}; `CREATE TABLE IF NOT EXISTS` leaves an
 * existing table as it is.
 *
 * Columns: `key text COLLATE "C" PRIMARY KEY` (the storage key; byte order, so a key-prefix listing
 * is an index range), `data bytea` (the serialized Payload), `size integer` (bytes),
 * `created_at timestamptz` (first store), `last_referenced timestamptz` (latest store that
 * returned a claim for the row: first write or dedup hit).
 *
 * @throws StorageDriverError `E_CONFIG` if `schema` or `table` is not a valid identifier.
 */
export function schemaStatements(name: PostgresTableName = {}): string[] {
  const t = resolvePostgresTable(name);
  const statements: string[] = [];
  if (t.schema !== POSTGRES_DEFAULT_SCHEMA) statements.push(`CREATE SCHEMA IF NOT EXISTS ${quoteIdentifier(t.schema)}`);
  statements.push(
    [
      `CREATE TABLE IF NOT EXISTS ${t.qualifiedTable} (`,
      '  key text COLLATE "C" PRIMARY KEY,',
      '  data bytea NOT NULL,',
      '  size integer NOT NULL,',
      '  created_at timestamptz NOT NULL DEFAULT now(),',
      '  last_referenced timestamptz NOT NULL DEFAULT now()',
      ')',
    ].join('\n'),
    lastReferencedIndexStatement(t),
  );
  return statements;
}

/**
 * The statements that upgrade a payload table created by an earlier release (`key`, `data`,
 * `size`, `created_at`, `expires_at`) in place, in order; idempotent, and no-ops on a table made
 * by {@link schemaStatements}:
 *
 * 1. `ALTER TABLE … ADD COLUMN IF NOT EXISTS last_referenced timestamptz NOT NULL DEFAULT now()`:
 *    catalog-only (PostgreSQL ≥ 11 stores the default once, no table rewrite); every existing row
 *    reads the time of the upgrade, so no row becomes deletable before a full `olderThan` has
 *    passed after it. The default stays, so rows inserted by a process still running an earlier
 *    release during a rolling upgrade get the time of their insert.
 * 2. `CREATE INDEX IF NOT EXISTS "<table>_last_ref_idx" … (last_referenced)`: blocks writes to the
 *    table while the index builds (about a second per million rows); on a large table create it
 *    yourself first with `CREATE INDEX CONCURRENTLY` (see the README).
 *
 * `expires_at` and its index stay (processes still running an earlier release write them) until
 * you run {@link schemaCleanupStatements}. The `key` column keeps its collation.
 *
 * @throws StorageDriverError `E_CONFIG` if `schema` or `table` is not a valid identifier.
 */
export function schemaUpgradeStatements(name: PostgresTableName = {}): string[] {
  const t = resolvePostgresTable(name);
  return [
    `ALTER TABLE ${t.qualifiedTable} ADD COLUMN IF NOT EXISTS last_referenced timestamptz NOT NULL DEFAULT now()`,
    lastReferencedIndexStatement(t),
  ];
}

/**
 * The statements that remove what earlier releases needed and this one does not: the
 * `<table>_expires_at_idx` index and the `expires_at` column. Run them once no process of an
 * earlier release writes to the table any more (their stores name `expires_at`). Idempotent;
 * never run by {@link PostgresStorageDriver.ensureSchema}.
 *
 * @throws StorageDriverError `E_CONFIG` if `schema` or `table` is not a valid identifier.
 */
export function schemaCleanupStatements(name: PostgresTableName = {}): string[] {
  const t = resolvePostgresTable(name);
  return [
    `DROP INDEX IF EXISTS ${t.qualifiedLegacyExpiryIndex}`,
    `ALTER TABLE ${t.qualifiedTable} DROP COLUMN IF EXISTS expires_at`,
  ];
}

function lastReferencedIndexStatement(t: ResolvedPostgresTable): string {
  return `CREATE INDEX IF NOT EXISTS ${quoteIdentifier(t.lastReferencedIndex)} ON ${t.qualifiedTable} (last_referenced)`;
}

/** Joins statements into one script. */
function script(statements: string[]): string {
  return `${statements.join(';\n\n')};\n`;
}

/**
 * The DDL of a new payload table ({@link schemaStatements}) as one SQL script (statements
 * separated by `;`), for migration tools. Equivalent to what
 * {@link PostgresStorageDriver.ensureSchema} runs when the table does not exist.
 *
 * @example
 * ```ts
 * fs.writeFileSync('migrations/001_temporal_payloads.sql', schemaSql({ schema: 'temporal' }));
 * ```
 * @throws StorageDriverError `E_CONFIG` if `schema` or `table` is not a valid identifier.
 */
export function schemaSql(name: PostgresTableName = {}): string {
  return script(schemaStatements(name));
}

/**
 * {@link schemaUpgradeStatements} as one SQL script, for migration tools: upgrades a table created
 * by an earlier release in place. Equivalent to what {@link PostgresStorageDriver.ensureSchema}
 * runs when the table lacks `last_referenced` or its index.
 *
 * @example
 * ```ts
 * fs.writeFileSync('migrations/002_temporal_payloads_last_referenced.sql', schemaUpgradeSql({ schema: 'temporal' }));
 * ```
 * @throws StorageDriverError `E_CONFIG` if `schema` or `table` is not a valid identifier.
 */
export function schemaUpgradeSql(name: PostgresTableName = {}): string {
  return script(schemaUpgradeStatements(name));
}

/**
 * {@link schemaCleanupStatements} as one SQL script: drops `expires_at` and its index once no
 * process of an earlier release writes to the table.
 *
 * @throws StorageDriverError `E_CONFIG` if `schema` or `table` is not a valid identifier.
 */
export function schemaCleanupSql(name: PostgresTableName = {}): string {
  return script(schemaCleanupStatements(name));
}

/** What {@link PostgresStorageDriver.ensureSchema} found in the catalogs. */
export interface PostgresSchemaState {
  /** The schema exists. */
  readonly hasSchema: boolean;
  /** The table exists. */
  readonly hasTable: boolean;
  /** The table has a `last_referenced` column. */
  readonly hasColumn: boolean;
  /** `true`/`false`: the `last_referenced` index exists and is valid/invalid; `undefined`: no index. */
  readonly indexValid: boolean | undefined;
}

/**
 * What {@link PostgresStorageDriver.ensureSchema} runs for a catalog state, in two transactions:
 * `definitions` — the schema (if missing), the table (new shape) and the `last_referenced` column
 * (for a table of an earlier release), all catalog-only; `index` — the `last_referenced` index,
 * after dropping one left invalid by a failed `CREATE INDEX CONCURRENTLY`. Empty where nothing is
 * missing.
 *
 * @internal
 */
export function ensureSchemaStatements(
  t: ResolvedPostgresTable,
  state: PostgresSchemaState,
): { definitions: string[]; index: string[] } {
  const fresh = schemaStatements(t);
  const [addColumn, createIndex] = schemaUpgradeStatements(t) as [string, string];
  const definitions: string[] = [];
  if (!state.hasTable || !state.hasColumn) {
    // CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when the schema exists, which
    // a role allowed to create tables only in its provisioned schema does not have.
    if (!state.hasSchema && t.schema !== POSTGRES_DEFAULT_SCHEMA) definitions.push(fresh[0] as string);
    definitions.push(fresh.at(-2) as string, addColumn); // CREATE TABLE IF NOT EXISTS, ADD COLUMN IF NOT EXISTS
  }
  const index: string[] = [];
  if (state.indexValid !== true) {
    if (state.indexValid === false) index.push(`DROP INDEX IF EXISTS ${t.qualifiedLastReferencedIndex}`);
    index.push(createIndex);
  }
  return { definitions, index };
}

/** What of the schema, table, column and index exists (one catalog query). */
async function inspectSchema(client: PostgresPoolClient, statements: PostgresStatements): Promise<PostgresSchemaState> {
  const r = await client.query(statements.inspectSchema());
  const row = (r.rows[0] ?? {}) as Record<string, unknown>;
  return {
    hasSchema: row['has_schema'] === true,
    hasTable: row['has_table'] === true,
    hasColumn: row['has_column'] === true,
    indexValid: typeof row['index_valid'] === 'boolean' ? row['index_valid'] : undefined,
  };
}

/**
 * What {@link PostgresStorageDriver.ensureSchema} does: inspects the catalogs and, when anything is
 * missing, runs {@link ensureSchemaStatements} under the schema's advisory lock, re-checked once
 * the lock is held, in two transactions; retries once when a CREATE outside that lock races it.
 *
 * @throws whatever the statements throw (raw `pg` errors, for the driver to classify); `E_ABORTED`.
 * @internal
 */
export async function ensureSchema(
  pool: PostgresPool,
  t: ResolvedPostgresTable,
  statements: PostgresStatements,
  signal: AbortSignal | undefined,
): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await withClient(pool, signal, async (client) => {
        const found = ensureSchemaStatements(t, await inspectSchema(client, statements));
        if (found.definitions.length === 0 && found.index.length === 0) return;
        // Table and column first (catalog-only DDL under a short ACCESS EXCLUSIVE lock), then
        // the index in a transaction of its own, so its build blocks writes but not reads.
        for (const step of ['definitions', 'index'] as const) {
          throwIfAborted(signal);
          await client.query({ text: 'BEGIN' });
          try {
            await client.query(statements.schemaLock());
            // Another process may have done it while this one waited for the lock.
            const todo = ensureSchemaStatements(t, await inspectSchema(client, statements))[step];
            for (const statement of todo) await client.query({ text: statement });
            await client.query({ text: 'COMMIT' });
          } catch (e) {
            await client.query({ text: 'ROLLBACK' }).catch(() => {});
            throw e;
          }
        }
      });
      return;
    } catch (e) {
      if (attempt === 0 && isSchemaRace(e)) continue;
      throw e;
    }
  }
}
