/**
 * The connection pool: structural types of the `pg` objects the driver uses (so the published
 * declarations do not depend on `@types/pg`; a `pg.Pool` satisfies {@link PostgresPool}), the
 * pool `fromConnectionString` creates, and checking a connection out for a call.
 *
 * @module
 */
import { loadPeerDependency, raceAbort, throwIfAborted } from '@x/storage-driver-core';
import { breaksConnection } from './errors';
import { OWNED_POOL_DEFAULTS, type PostgresOwnedPoolConfig } from './options';

/** A query as the driver sends it: SQL text with `$n` placeholders and their values. */
export interface PostgresQueryConfig {
  /** SQL text; every value is a `$n` bind parameter. */
  text: string;
  /** Values of the bind parameters, in order. */
  values?: unknown[];
}

/** The part of a `pg` query result the driver reads. */
export interface PostgresQueryResult {
  /** Result rows as objects keyed by column name. */
  rows: unknown[];
  /** Rows affected or returned; `null` for utility statements. */
  rowCount: number | null;
}

/** A connection checked out of a {@link PostgresPool} (a `pg.PoolClient`). */
export interface PostgresPoolClient {
  /** Runs one statement on this connection. */
  query(config: PostgresQueryConfig): Promise<PostgresQueryResult>;
  /**
   * Returns the connection to its pool. Passing an `Error` (or `true`) destroys the connection
   * instead of reusing it.
   */
  release(destroy?: Error | boolean): void;
  /** Subscribes to connection errors (the driver listens while it holds a connection). */
  on(event: 'error', listener: (error: Error) => void): unknown;
  /** Removes an `error` listener added with `on`. */
  removeListener(event: 'error', listener: (error: Error) => void): unknown;
}

/**
 * A connection pool: `pg.Pool` or anything with the same `connect()`. The driver checks out one
 * connection per call and never ends a pool it was given.
 */
export interface PostgresPool {
  /** Checks out a connection; waits while the pool is exhausted. */
  connect(): Promise<PostgresPoolClient>;
}

/** A pool the driver created itself (from a connection string) and therefore ends in `close()`. */
export interface OwnedPostgresPool extends PostgresPool {
  /** Closes every connection of the pool. */
  end(): Promise<void>;
  /** Subscribes to errors of idle connections (a server restart ends them). */
  on(event: 'error', listener: (error: Error) => void): unknown;
}

/**
 * Creates the `pg.Pool` of {@link PostgresStorageDriver.fromConnectionString} (loading `pg` at
 * runtime) with {@link OWNED_POOL_DEFAULTS} (a 10 s connect timeout, an `application_name`) unless
 * `poolConfig` says otherwise, and an `error` listener.
 *
 * @throws StorageDriverError `E_CONFIG` if `pg` is not installed.
 */
export function createOwnedPool(
  connectionString: string,
  poolConfig: PostgresOwnedPoolConfig | undefined,
): OwnedPostgresPool {
  const pg = loadPeerDependency<{ Pool: new (config: Record<string, unknown>) => OwnedPostgresPool }>(
    require,
    'pg',
    '@x/storage-driver-postgres',
  );
  const pool = new pg.Pool({ ...OWNED_POOL_DEFAULTS, ...poolConfig, connectionString });
  // Idle connections error out when the server restarts; pg removes them from the pool and
  // the next call connects afresh. Without a listener the 'error' event would end the process.
  pool.on('error', () => {});
  return pool;
}

/**
 * Checks out a connection, honouring `signal` while waiting (a connection handed over after an
 * abort is released unused), runs `fn`, and releases the connection once `fn` settles — even
 * if the caller stopped waiting. Connections whose statement failed at the connection level
 * are destroyed instead of reused.
 */
export async function withClient<T>(
  pool: PostgresPool,
  signal: AbortSignal | undefined,
  fn: (client: PostgresPoolClient) => Promise<T>,
): Promise<T> {
  throwIfAborted(signal);
  let pending: Promise<PostgresPoolClient>;
  try {
    pending = Promise.resolve(pool.connect());
  } catch (e) {
    pending = Promise.reject(e);
  }
  let client: PostgresPoolClient;
  try {
    client = await raceAbort(pending, signal);
  } catch (e) {
    // Aborted while waiting: give the connection back the moment the pool hands it over.
    pending.then(
      (c) => c.release(),
      () => {},
    );
    throw e;
  }
  // Errors of a connection in use surface through its active query; this listener only keeps
  // an 'error' event emitted between statements from ending the process.
  const onError = () => {};
  client.on('error', onError);
  let destroy: Error | undefined;
  try {
    throwIfAborted(signal);
    return await fn(client);
  } catch (e) {
    if (breaksConnection(e)) destroy = e instanceof Error ? e : new Error(String(e));
    throw e;
  } finally {
    client.removeListener('error', onError);
    client.release(destroy);
  }
}

/** Runs one statement on a connection checked out for it (see {@link withClient}). */
export function runStatement(
  pool: PostgresPool,
  signal: AbortSignal | undefined,
  query: PostgresQueryConfig,
): Promise<PostgresQueryResult> {
  return withClient(pool, signal, (client) => client.query(query));
}
