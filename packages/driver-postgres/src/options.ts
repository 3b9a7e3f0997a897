/**
 * Options of the PostgreSQL driver: their types, the defaults and limits, the table names they
 * resolve to, and their validation.
 *
 * @module
 */
import { type ContentAddressedStorageDriverOptions, configError, requireOptionsObject } from '@x/storage-driver-core';
import type { PostgresPool } from './pool';

/** `type` of {@link PostgresStorageDriver}. */
export const POSTGRES_DRIVER_TYPE = 'postgres.pgdriver';
/** Default `name` of {@link PostgresStorageDriver}. */
export const POSTGRES_DRIVER_DEFAULT_NAME = 'postgres';
/**
 * Largest accepted `maxPayloadSize`: 255 MiB (267386880 bytes). `pg` reads a `bytea` value as one
 * hex string (2 characters per byte); above 268435443 bytes that string exceeds V8's maximum
 * string length (536870888 characters), and a stored value could never be read back.
 */
export const POSTGRES_MAX_PAYLOAD_SIZE_LIMIT = 255 * 1024 * 1024;
/** Longest accepted `ttl`: 100 years, in milliseconds. */
export const POSTGRES_MAX_TTL = 100 * 365 * 24 * 60 * 60 * 1000;
/** Default schema of the payload table. */
export const POSTGRES_DEFAULT_SCHEMA = 'public';
/** Default name of the payload table. */
export const POSTGRES_DEFAULT_TABLE = 'temporal_payloads';
/** Longest accepted schema name (PostgreSQL's identifier limit, `NAMEDATALEN - 1`). */
export const POSTGRES_MAX_SCHEMA_LENGTH = 63;
/**
 * Longest accepted table name: 63 minus the 15 characters of the longest index-name suffix
 * (`_expires_at_idx`, the index of tables created by earlier releases; `_last_ref_idx` is shorter),
 * so no index name is ever silently truncated by the server.
 */
export const POSTGRES_MAX_TABLE_LENGTH = 48;

/**
 * What {@link PostgresStorageDriver.fromConnectionString} sets on the pool it creates unless
 * `poolConfig` says otherwise.
 *
 * @internal
 */
export const OWNED_POOL_DEFAULTS: Readonly<PostgresOwnedPoolConfig> = Object.freeze({
  application_name: 'x-storage-driver-postgres',
  connectionTimeoutMillis: 10_000,
});

/** Where the payload table lives. */
export interface PostgresTableName {
  /**
   * Schema name.
   *
   * @default 'public' ({@link POSTGRES_DEFAULT_SCHEMA})
   */
  schema?: string;
  /**
   * Table name.
   *
   * @default 'temporal_payloads' ({@link POSTGRES_DEFAULT_TABLE})
   */
  table?: string;
}

/** Options of {@link PostgresStorageDriver}. */
export interface PostgresStorageDriverOptions extends ContentAddressedStorageDriverOptions, PostgresTableName {
  /**
   * Connection pool, typically a `pg.Pool` (any object with a compatible `connect()`). Required.
   * The driver checks out one connection per call and never ends this pool. Attach your own
   * `pool.on('error', ...)` handler: `pg` emits errors of idle connections there (a server
   * restart), and an unhandled `error` event ends the process.
   */
  pool: PostgresPool;
  /**
   * Schema of the payload table: 1–63 characters of `a-z`, `0-9`, `_`, not starting with a digit
   * or `pg_`. Always quoted and schema-qualified in SQL (never depends on `search_path`).
   *
   * @default 'public' ({@link POSTGRES_DEFAULT_SCHEMA})
   */
  schema?: string;
  /**
   * Name of the payload table: 1–48 characters of `a-z`, `0-9`, `_`, not starting with a digit.
   *
   * @default 'temporal_payloads' ({@link POSTGRES_DEFAULT_TABLE})
   */
  table?: string;
  /**
   * Per-instance routing key written into workflow history; override it to run several instances
   * side by side.
   *
   * @default 'postgres' ({@link POSTGRES_DRIVER_DEFAULT_NAME})
   */
  name?: string;
  /**
   * Largest serialized payload accepted, in bytes, checked for the whole batch before any write.
   * At most 267386880 (255 MiB, {@link POSTGRES_MAX_PAYLOAD_SIZE_LIMIT}).
   *
   * @default 52428800 (50 MiB)
   */
  maxPayloadSize?: number;
  /**
   * How long a payload lives after its last reference (the latest store that returned a claim
   * for it, recorded in `last_referenced`), in milliseconds: the default `olderThan` of
   * `deleteExpired`. Nothing expires by itself: rows stay readable until `deleteExpired` (a cron
   * job, `x-storage sweep`) removes them. At most 100 years ({@link POSTGRES_MAX_TTL}).
   *
   * @default undefined (`deleteExpired` then needs an explicit `olderThan`)
   */
  ttl?: number;
  /**
   * The clock, in milliseconds since the epoch. When given, every store records its time as the
   * row's `last_referenced` (and `created_at`) instead of the database's `now()`, and ages are
   * measured from it; for tests that age rows without waiting.
   *
   * @default undefined (the database's `now()` for the times recorded, `Date.now` for the cutoffs
   *   of `list({ olderThan })` and `deleteExpired`)
   */
  clock?: () => number;
}

/** Options of {@link PostgresStorageDriver.fromConnectionString}. */
export interface PostgresConnectionStringOptions extends Omit<PostgresStorageDriverOptions, 'pool'> {
  /**
   * Settings of the pool the driver creates (and ends in `close()`).
   *
   * @default {}
   */
  poolConfig?: PostgresOwnedPoolConfig;
}

/**
 * Settings of the pool {@link PostgresStorageDriver.fromConnectionString} creates; passed to
 * `new pg.Pool()` together with the connection string.
 */
export interface PostgresOwnedPoolConfig {
  /**
   * Largest number of connections.
   *
   * @default 10 (pg's default)
   */
  max?: number;
  /**
   * How long a call waits for a connection before failing with `E_BACKEND`, in ms.
   *
   * @default 10000 (pg's own default, 0, would wait forever)
   */
  connectionTimeoutMillis?: number;
  /**
   * How long an idle connection is kept, in ms.
   *
   * @default 10000 (pg's default)
   */
  idleTimeoutMillis?: number;
  /**
   * Server-side statement timeout, in ms.
   *
   * @default undefined (the server's setting)
   */
  statement_timeout?: number;
  /**
   * Name shown in `pg_stat_activity`.
   *
   * @default 'x-storage-driver-postgres'
   */
  application_name?: string;
  /**
   * TLS settings, as `pg` accepts them (`true` or a `tls.ConnectionOptions` object).
   *
   * @default undefined (from the URL's `sslmode`)
   */
  ssl?: boolean | Record<string, unknown>;
}

/** Options of {@link PostgresStorageDriver.ensureSchema}. */
export interface PostgresEnsureSchemaOptions {
  /**
   * Aborts the call: it rejects at once with `E_ABORTED`; a statement already sent finishes on the
   * server (a DDL transaction commits or rolls back as a whole), and nothing further is sent.
   *
   * @default undefined
   */
  signal?: AbortSignal;
}

/** A validated, quoted table reference. */
export interface ResolvedPostgresTable {
  /** Schema name as given (validated). */
  readonly schema: string;
  /** Table name as given (validated). */
  readonly table: string;
  /** Name of the index on `last_referenced`: `<table>_last_ref_idx`. */
  readonly lastReferencedIndex: string;
  /** `"schema"."table"`, ready to splice into SQL. */
  readonly qualifiedTable: string;
  /** `"schema"."<table>_last_ref_idx"`, ready to splice into SQL. */
  readonly qualifiedLastReferencedIndex: string;
  /**
   * `"schema"."<table>_expires_at_idx"`: the expiry index of tables created by earlier releases,
   * which {@link schemaCleanupStatements} drops.
   */
  readonly qualifiedLegacyExpiryIndex: string;
}

/** Lower-case letters, digits and `_`, not starting with a digit: identical quoted and unquoted. */
const IDENTIFIER = /^[a-z_][a-z0-9_]*$/;

function validateIdentifier(value: unknown, what: 'schema' | 'table', maxLength: number): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > maxLength || !IDENTIFIER.test(value)) {
    const shown = typeof value === 'string' ? JSON.stringify(value.slice(0, 80)) : typeof value;
    throw configError(
      `${what} must be 1–${maxLength} characters of a-z, 0-9 and _, not starting with a digit; got ${shown}`,
    );
  }
  if (what === 'schema' && value.startsWith('pg_')) throw configError('schema must not start with pg_ (reserved)');
  return value;
}

/** Double-quotes a validated identifier. */
export function quoteIdentifier(identifier: string): string {
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
  requireOptionsObject(name, 'table name options must be an object');
  const schema = validateIdentifier(name.schema ?? POSTGRES_DEFAULT_SCHEMA, 'schema', POSTGRES_MAX_SCHEMA_LENGTH);
  const table = validateIdentifier(name.table ?? POSTGRES_DEFAULT_TABLE, 'table', POSTGRES_MAX_TABLE_LENGTH);
  const lastReferencedIndex = `${table}_last_ref_idx`;
  return {
    schema,
    table,
    lastReferencedIndex,
    qualifiedTable: `${quoteIdentifier(schema)}.${quoteIdentifier(table)}`,
    qualifiedLastReferencedIndex: `${quoteIdentifier(schema)}.${quoteIdentifier(lastReferencedIndex)}`,
    qualifiedLegacyExpiryIndex: `${quoteIdentifier(schema)}.${quoteIdentifier(`${table}_expires_at_idx`)}`,
  };
}

/** What {@link checkOptions} returns: the options, validated, and what they resolve to. */
export interface ResolvedPostgresOptions {
  /** The options as given, for the base class (which validates `name`, `maxPayloadSize`, `ttl`, `clock`). */
  readonly options: PostgresStorageDriverOptions;
  /** The pool. */
  readonly pool: PostgresPool;
  /** The payload table. */
  readonly table: ResolvedPostgresTable;
  /** Whether the `clock` option was given (stores then record its time, not the server's). */
  readonly clockInjected: boolean;
}

/**
 * Validates the driver-specific options (the base class validates the others): `pool` has a
 * `connect()`, `maxPayloadSize` is at most {@link POSTGRES_MAX_PAYLOAD_SIZE_LIMIT}, `ttl` at most
 * {@link POSTGRES_MAX_TTL}, `schema` and `table` are plain identifiers.
 *
 * @throws StorageDriverError `E_CONFIG`
 */
export function checkOptions(options: unknown): ResolvedPostgresOptions {
  const o = requireOptionsObject<PostgresStorageDriverOptions>(
    options,
    'PostgresStorageDriver options must be an object with a pool',
  );
  const pool: unknown = o.pool;
  if (typeof pool !== 'object' || pool === null || typeof (pool as { connect?: unknown }).connect !== 'function') {
    throw configError('pool must be a pg.Pool (an object with a connect() method)');
  }
  const max: unknown = o.maxPayloadSize;
  if (typeof max === 'number' && max > POSTGRES_MAX_PAYLOAD_SIZE_LIMIT) {
    throw configError(`maxPayloadSize must be at most ${POSTGRES_MAX_PAYLOAD_SIZE_LIMIT} bytes, got ${max}`);
  }
  const ttl: unknown = o.ttl;
  if (typeof ttl === 'number' && ttl > POSTGRES_MAX_TTL) {
    throw configError(`ttl must be at most ${POSTGRES_MAX_TTL} ms (100 years)`);
  }
  return { options: o, pool: o.pool, table: resolvePostgresTable(o), clockInjected: o.clock !== undefined };
}

/**
 * Validates the arguments of {@link PostgresStorageDriver.fromConnectionString} before any pool
 * exists: a URL connection string, an options object, valid table names (the driver's constructor
 * validates the rest).
 *
 * @throws StorageDriverError `E_CONFIG`, never with the connection string in it (a URL parser's
 *   error carries the whole input, password included, so it is not the cause).
 */
export function checkConnectionStringOptions(
  connectionString: unknown,
  options: unknown,
): {
  connectionString: string;
  poolConfig: PostgresOwnedPoolConfig | undefined;
  rest: Omit<PostgresConnectionStringOptions, 'poolConfig'>;
} {
  if (typeof connectionString !== 'string' || connectionString.length === 0) {
    throw configError('connectionString must be a non-empty string');
  }
  const { poolConfig, ...rest } = requireOptionsObject<PostgresConnectionStringOptions>(
    options,
    'options must be an object',
  );
  if (!URL.canParse(connectionString)) {
    throw configError('connectionString must be a URL such as postgres://user:password@host:5432/database');
  }
  resolvePostgresTable(rest);
  return { connectionString, poolConfig, rest };
}
