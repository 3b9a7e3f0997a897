/**
 * Classification of `pg` and socket errors (into `StorageDriverError` codes, and whether a failed
 * connection is reused), and the connection secrets scrubbed from them.
 *
 * @module
 */
import {
  errorCodeOf,
  isStorageDriverError,
  redactSecrets,
  redactText,
  StorageDriverError,
  StorageDriverErrorCode,
} from '@x/storage-driver-core';
import type { PostgresPool } from './pool';

/**
 * SQLSTATEs that mean the configuration or the database setup is wrong (missing table or schema,
 * missing column, permissions, authentication, unknown database): retrying will not help.
 */
const CONFIG_SQLSTATES: ReadonlyMap<string, string> = new Map([
  ['42P01', 'the payload table does not exist: run ensureSchema() or apply schemaSql() with your migrations'],
  ['3F000', 'the schema does not exist: run ensureSchema() or apply schemaSql() with your migrations'],
  [
    '42703',
    'the payload table lacks a column the driver needs: a table created by an earlier release is upgraded by ensureSchema() or schemaUpgradeSql()',
  ],
  ['42501', 'the database role lacks a privilege (on the payload table, its schema or the database)'],
  ['28000', 'the server rejected the connection (authentication)'],
  ['28P01', 'the server rejected the connection (authentication)'],
  ['3D000', 'the database does not exist'],
]);

/** SQLSTATE classes / codes of transient failures: retrying later may succeed. */
const RETRYABLE_SQLSTATE_CLASSES: ReadonlySet<string> = new Set(['08', '53', '57', '40', '58']);
const RETRYABLE_SQLSTATES: ReadonlySet<string> = new Set(['55P03', '55006']);

/** SQLSTATEs of a concurrent CREATE racing ours on the catalogs; `ensureSchema` retries once. */
const DDL_RACE_SQLSTATES: ReadonlySet<string> = new Set(['23505', '42P07', '42P06', '42710']);

/** Node.js socket error codes: the connection failed or was lost. */
const SOCKET_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
  'ENOTFOUND',
  'EADDRNOTAVAIL',
]);

/** Message fragments of `pg` errors without a code that mean the connection is gone or unavailable. */
const CONNECTION_MESSAGES = [
  'Connection terminated',
  'timeout exceeded when trying to connect',
  'Client has encountered a connection error',
  'Connection ended',
  'connection was closed',
  'Client was closed',
];

/**
 * The password of a connection string (as written and decoded, and a `password` query parameter),
 * longest first, for scrubbing; none if it is not a URL.
 */
export function connectionSecrets(connectionString: string): string[] {
  if (!URL.canParse(connectionString)) return [];
  const url = new URL(connectionString);
  const secrets = new Set<string>();
  const add = (s: string | null) => {
    if (s) secrets.add(s);
  };
  add(url.password);
  try {
    add(decodeURIComponent(url.password));
  } catch {
    // malformed escape: the raw form is scrubbed already
  }
  add(url.searchParams.get('password'));
  return [...secrets].sort((a, b) => b.length - a.length);
}

/** Password of an injected `pg.Pool` (read defensively from `pool.options`), for scrubbing. */
export function injectedPoolSecrets(pool: PostgresPool): string[] {
  const options = (pool as { options?: unknown }).options;
  if (typeof options !== 'object' || options === null) return [];
  const { password, connectionString } = options as { password?: unknown; connectionString?: unknown };
  const secrets: string[] = [];
  if (typeof password === 'string' && password.length > 0) secrets.push(password);
  if (typeof connectionString === 'string') secrets.push(...connectionSecrets(connectionString));
  return secrets;
}

/** SQLSTATE of a pg error, if any. */
function sqlState(error: unknown): string | undefined {
  const code = errorCodeOf(error);
  return code !== undefined && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/** Whether a failed statement leaves its connection unusable (it is then destroyed, not reused). */
export function breaksConnection(error: unknown): boolean {
  if (isStorageDriverError(error)) return false;
  const state = sqlState(error);
  return state === undefined || state.startsWith('08') || state.startsWith('57');
}

/** Whether `error` is a unique violation (`23505`): a key another writer stored first. */
export function isUniqueViolation(error: unknown): boolean {
  return sqlState(error) === '23505';
}

/**
 * Whether `error` says the server cannot run such a COPY at all (`0A000` feature not supported:
 * `COPY FROM` into a table with row-level security; `42601` syntax error: a server that only
 * looks like PostgreSQL), rather than that this one statement failed: the driver then uses the
 * plain statements from then on.
 */
export function refusesCopy(error: unknown): boolean {
  const state = sqlState(error);
  return state === '0A000' || state === '42601';
}

/** Whether `error` is a concurrent CREATE racing ours on the catalogs (`ensureSchema` retries once). */
export function isSchemaRace(error: unknown): boolean {
  const state = sqlState(error);
  return state !== undefined && DDL_RACE_SQLSTATES.has(state);
}

/**
 * Replaces every secret in `text` with core's `REDACTED` placeholder (`[redacted]`; it was `***`).
 *
 * @deprecated Use `redactText` from `@x/storage-driver-core` (this is the same function).
 */
export const scrubSecrets: (text: string, secrets: readonly string[]) => string = redactText;

/**
 * Converts an error from `pg` (or the socket under it) into a {@link StorageDriverError}:
 * - SQLSTATE `42P01`, `3F000`, `42703` (table/schema/column missing), `42501` (privilege),
 *   `28000`/`28P01` (authentication), `3D000` (unknown database) → `E_CONFIG`, not retryable;
 * - SQLSTATE classes `08` (connection), `40` (serialization failure, deadlock), `53`
 *   (insufficient resources), `57` (operator intervention: `pg_terminate_backend`, shutdown,
 *   statement timeout), `58`, and `55P03`/`55006` (lock not available) → `E_BACKEND`, retryable;
 * - any other SQLSTATE → `E_BACKEND`, not retryable;
 * - socket errors (`ECONNREFUSED`, `ECONNRESET`, ...), `pg`'s "Connection terminated" and pool
 *   connect timeouts, and anything unknown → `E_BACKEND`, retryable.
 *
 * Messages and causes never contain `secrets` (the connection string's password): each is
 * replaced by `[redacted]` (core's `redactText`; a cause that mentions one is a redacted copy,
 * core's `redactSecrets`).
 */
export function wrapPostgresError(
  error: unknown,
  what: string,
  driverName: string,
  secrets: readonly string[],
): StorageDriverError {
  if (isStorageDriverError(error)) return error;
  const raw = error instanceof Error ? error.message : String(error);
  const message = redactText(raw, secrets);
  // The original may hold the password in `message`, `stack`, `input` or `path`: never the cause.
  const cause = redactSecrets(error, secrets);
  const code = errorCodeOf(error);
  const state = sqlState(error);
  const make = (c: StorageDriverErrorCode, text: string, retryable: boolean) =>
    new StorageDriverError(c, text, { driverName, cause, retryable });
  if (state !== undefined) {
    const hint = CONFIG_SQLSTATES.get(state);
    if (hint !== undefined)
      return make(StorageDriverErrorCode.CONFIG, `${what} failed: ${message} (${state}): ${hint}`, false);
    const retryable = RETRYABLE_SQLSTATE_CLASSES.has(state.slice(0, 2)) || RETRYABLE_SQLSTATES.has(state);
    return make(StorageDriverErrorCode.BACKEND, `${what} failed: ${message} (${state})`, retryable);
  }
  if (code !== undefined && SOCKET_CODES.has(code)) {
    return make(StorageDriverErrorCode.BACKEND, `${what} failed: cannot reach the server: ${message}`, true);
  }
  if (CONNECTION_MESSAGES.some((m) => raw.includes(m))) {
    return make(StorageDriverErrorCode.BACKEND, `${what} failed: connection lost or unavailable: ${message}`, true);
  }
  return make(StorageDriverErrorCode.BACKEND, `${what} failed: ${message}`, true);
}
