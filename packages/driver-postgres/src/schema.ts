/**
 * Table names, identifier validation and the DDL of the payload table.
 *
 * @module
 */
import { StorageDriverError, StorageDriverErrorCode } from '@x/storage-driver-core';

/** Default schema of the payload table. */
export const POSTGRES_DEFAULT_SCHEMA = 'public';
/** Default name of the payload table. */
export const POSTGRES_DEFAULT_TABLE = 'temporal_payloads';
/** Longest accepted schema name (PostgreSQL's identifier limit, `NAMEDATALEN - 1`). */
export const POSTGRES_MAX_SCHEMA_LENGTH = 63;
/**
 * Longest accepted table name: 63 minus the `_expires_at_idx` suffix of the expiry index, so the
 * index name is never silently truncated by the server.
 */
export const POSTGRES_MAX_TABLE_LENGTH = 48;

/** Lower-case letters, digits and `_`, not starting with a digit: identical quoted and unquoted. */
const IDENTIFIER = /^[a-z_][a-z0-9_]*$/;

/** Where the payload table lives. */
export interface PostgresTableName {
  /** Schema name. Default: `public`. */
  schema?: string;
  /** Table name. Default: `temporal_payloads`. */
  table?: string;
}

/** A validated, quoted table reference. */
export interface ResolvedPostgresTable {
  /** Schema name as given (validated). */
  readonly schema: string;
  /** Table name as given (validated). */
  readonly table: string;
  /** Name of the expiry index: `<table>_expires_at_idx`. */
  readonly expiryIndex: string;
  /** `"schema"."table"`, ready to splice into SQL. */
  readonly qualifiedTable: string;
  /** `"schema"."<table>_expires_at_idx"`, ready to splice into SQL. */
  readonly qualifiedExpiryIndex: string;
}

function validateIdentifier(value: unknown, what: 'schema' | 'table', maxLength: number): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > maxLength || !IDENTIFIER.test(value)) {
    const shown = typeof value === 'string' ? JSON.stringify(value.slice(0, 80)) : typeof value;
    throw new StorageDriverError(
      StorageDriverErrorCode.CONFIG,
      `${what} must be 1–${maxLength} characters of a-z, 0-9 and _, not starting with a digit; got ${shown}`,
    );
  }
  if (what === 'schema' && value.startsWith('pg_')) {
    throw new StorageDriverError(StorageDriverErrorCode.CONFIG, 'schema must not start with pg_ (reserved)');
  }
  return value;
}

/** Double-quotes a validated identifier. */
function quoteIdentifier(identifier: string): string {
  return `"${identifier}"`;
}

/**
 * Validates `schema` and `table` (lower-case letters, digits and `_`, not starting with a digit;
 * schema at most 63 characters and not `pg_*`, table at most 48) and returns quoted references.
 * Nothing else is ever spliced into SQL; every value is a bind parameter.
 *
 * @throws StorageDriverError `E_CONFIG` for anything else (quotes, dots, spaces, upper case, ...).
 */
export function resolvePostgresTable(name: PostgresTableName = {}): ResolvedPostgresTable {
  if (typeof name !== 'object' || name === null) {
    throw new StorageDriverError(StorageDriverErrorCode.CONFIG, 'table name options must be an object');
  }
  const schema = validateIdentifier(name.schema ?? POSTGRES_DEFAULT_SCHEMA, 'schema', POSTGRES_MAX_SCHEMA_LENGTH);
  const table = validateIdentifier(name.table ?? POSTGRES_DEFAULT_TABLE, 'table', POSTGRES_MAX_TABLE_LENGTH);
  const expiryIndex = `${table}_expires_at_idx`;
  return {
    schema,
    table,
    expiryIndex,
    qualifiedTable: `${quoteIdentifier(schema)}.${quoteIdentifier(table)}`,
    qualifiedExpiryIndex: `${quoteIdentifier(schema)}.${quoteIdentifier(expiryIndex)}`,
  };
}

/**
 * The DDL statements of the payload table, in order: the schema (unless it is `public`), the
 * table, and a partial index on `expires_at` that makes expiry sweeps cheap. Every statement is
 * idempotent (`IF NOT EXISTS`).
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
      '  key text PRIMARY KEY,',
      '  data bytea NOT NULL,',
      '  size integer NOT NULL,',
      '  created_at timestamptz NOT NULL DEFAULT now(),',
      '  expires_at timestamptz',
      ')',
    ].join('\n'),
    `CREATE INDEX IF NOT EXISTS ${quoteIdentifier(t.expiryIndex)} ON ${t.qualifiedTable} (expires_at) WHERE expires_at IS NOT NULL`,
  );
  return statements;
}

/**
 * The DDL of the payload table as one SQL script (statements separated by `;`), for migration
 * tools. Columns: `key text PRIMARY KEY` (the claim key), `data bytea` (the serialized Payload),
 * `size integer` (bytes), `created_at timestamptz`, `expires_at timestamptz` (NULL = never), plus
 * the partial index `<table>_expires_at_idx`. Equivalent to what
 * {@link PostgresStorageDriver.ensureSchema} runs.
 *
 * @example
 * ```ts
 * fs.writeFileSync('migrations/001_temporal_payloads.sql', schemaSql({ schema: 'temporal' }));
 * ```
 * @throws StorageDriverError `E_CONFIG` if `schema` or `table` is not a valid identifier.
 */
export function schemaSql(name: PostgresTableName = {}): string {
  return `${schemaStatements(name).join(';\n\n')};\n`;
}
