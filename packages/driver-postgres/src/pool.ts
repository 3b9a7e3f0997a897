/**
 * Structural types of the `pg` objects the driver uses, so the published declarations do not
 * depend on `@types/pg`. A `pg.Pool` satisfies {@link PostgresPool}.
 *
 * @module
 */

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
 * Settings of the pool {@link PostgresStorageDriver.fromConnectionString} creates; passed to
 * `new pg.Pool()` together with the connection string.
 */
export interface PostgresOwnedPoolConfig {
  /** Largest number of connections. Default: 10 (pg's default). */
  max?: number;
  /** How long a call waits for a connection before failing with `E_BACKEND`, in ms. Default: 10000. */
  connectionTimeoutMillis?: number;
  /** How long an idle connection is kept, in ms. Default: 10000 (pg's default). */
  idleTimeoutMillis?: number;
  /** Server-side statement timeout, in ms. Default: none (the server's setting). */
  statement_timeout?: number;
  /** Name shown in `pg_stat_activity`. Default: `x-storage-driver-postgres`. */
  application_name?: string;
  /** TLS settings, as `pg` accepts them (`true` or a `tls.ConnectionOptions` object). Default: from the URL. */
  ssl?: boolean | Record<string, unknown>;
}
