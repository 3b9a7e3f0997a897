/**
 * The PostgreSQL storage driver.
 *
 * @module
 */
import {
  abortedError,
  type BackendOperation,
  ContentAddressedStorageDriver,
  type ContentAddressedStorageDriverOptions,
  type DeleteEntry,
  type DeleteOutcome,
  isStorageDriverError,
  type ListedObject,
  type ListQuery,
  raceAbort,
  type StorageDriverCapabilities,
  StorageDriverError,
  StorageDriverErrorCode,
  type StorageLocation,
  type StoreItem,
  throwIfAborted,
} from '@x/storage-driver-core';
import { wrapPostgresError } from './errors';
import { deleteRows, type LifecycleTarget, listRows } from './lifecycle';
import type {
  OwnedPostgresPool,
  PostgresOwnedPoolConfig,
  PostgresPool,
  PostgresPoolClient,
  PostgresQueryConfig,
} from './pool';
import {
  ensureSchemaStatements,
  type PostgresSchemaState,
  type PostgresTableName,
  type ResolvedPostgresTable,
  resolvePostgresTable,
} from './schema';

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
/**
 * Most payload bytes sent in one `INSERT`. A batch above it (only possible with several large
 * payloads) is written with one statement per 256 MiB; every batch below it is one statement.
 */
export const POSTGRES_MAX_STATEMENT_BYTES = 256 * 1024 * 1024;
/** First key of the advisory lock `ensureSchema` holds (the second is `hashtext('"schema"."table"')`). */
export const POSTGRES_SCHEMA_LOCK_ID = 0x58535044; // 'XSPD'

/** SQLSTATEs of a concurrent CREATE racing ours on the catalogs; `ensureSchema` retries once. */
const DDL_RACE_SQLSTATES: ReadonlySet<string> = new Set(['23505', '42P07', '42P06', '42710']);

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
   * Default: `public`.
   */
  schema?: string;
  /** Name of the payload table: 1–48 characters of `a-z`, `0-9`, `_`. Default: `temporal_payloads`. */
  table?: string;
  /**
   * Per-instance routing key written into workflow history; override it to run several instances
   * side by side. Default: `postgres`.
   */
  name?: string;
  /**
   * Largest serialized payload accepted, in bytes, checked for the whole batch before any write.
   * At most 267386880 (255 MiB). Default: 52428800 (50 MiB).
   */
  maxPayloadSize?: number;
  /**
   * How long a payload lives after its last reference (the latest store that returned a claim
   * for it, recorded in `last_referenced`), in milliseconds: the default `olderThan` of
   * `deleteExpired`. Nothing expires by itself: rows stay readable until `deleteExpired` (a cron
   * job, `x-storage sweep`) removes them. At most 100 years. Default: none.
   */
  ttl?: number;
  /**
   * The clock, in milliseconds since the epoch. When given, every store records its time as the
   * row's `last_referenced` (and `created_at`) instead of the database's `now()`, and ages are
   * measured from it; for tests that age rows without waiting. Default: the database's `now()` for
   * the times recorded, `Date.now` for the cutoffs of `list({ olderThan })` and `deleteExpired`.
   */
  clock?: () => number;
}

/** Options of {@link PostgresStorageDriver.fromConnectionString}. */
export interface PostgresConnectionStringOptions extends Omit<PostgresStorageDriverOptions, 'pool'> {
  /** Settings of the pool the driver creates (and ends in `close()`). Default: `{}`. */
  poolConfig?: PostgresOwnedPoolConfig;
}

/** Options of {@link PostgresStorageDriver.ensureSchema}. */
export interface PostgresEnsureSchemaOptions {
  /** Honoured while waiting for a connection and between statements. */
  signal?: AbortSignal;
}

/** Names the password (and its encoded form) of a connection string, for scrubbing. */
function connectionSecrets(connectionString: string): string[] {
  let url: URL;
  try {
    url = new URL(connectionString);
  } catch {
    // No cause: the URL parser's error carries the whole input, password included.
    throw new StorageDriverError(
      StorageDriverErrorCode.CONFIG,
      'connectionString must be a URL such as postgres://user:password@host:5432/database',
    );
  }
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
function injectedPoolSecrets(pool: PostgresPool): string[] {
  const options = (pool as { options?: unknown }).options;
  if (typeof options !== 'object' || options === null) return [];
  const { password, connectionString } = options as { password?: unknown; connectionString?: unknown };
  const secrets: string[] = [];
  if (typeof password === 'string' && password.length > 0) secrets.push(password);
  if (typeof connectionString === 'string') {
    try {
      secrets.push(...connectionSecrets(connectionString));
    } catch {
      // not a URL: nothing to extract
    }
  }
  return secrets;
}

function loadPg(): { Pool: new (config: Record<string, unknown>) => OwnedPostgresPool } {
  try {
    return require('pg') as { Pool: new (config: Record<string, unknown>) => OwnedPostgresPool };
  } catch (e) {
    throw new StorageDriverError(
      StorageDriverErrorCode.CONFIG,
      'fromConnectionString needs the pg package: npm i pg (or pass an injected pool)',
      { cause: e },
    );
  }
}

function config(message: string): StorageDriverError {
  return new StorageDriverError(StorageDriverErrorCode.CONFIG, message);
}

function checkOptions(options: unknown): PostgresStorageDriverOptions {
  if (typeof options !== 'object' || options === null) {
    throw config('PostgresStorageDriver options must be an object with a pool');
  }
  const pool = (options as { pool?: unknown }).pool;
  if (typeof pool !== 'object' || pool === null || typeof (pool as { connect?: unknown }).connect !== 'function') {
    throw config('pool must be a pg.Pool (an object with a connect() method)');
  }
  const max = (options as { maxPayloadSize?: unknown }).maxPayloadSize;
  if (typeof max === 'number' && max > POSTGRES_MAX_PAYLOAD_SIZE_LIMIT) {
    throw config(`maxPayloadSize must be at most ${POSTGRES_MAX_PAYLOAD_SIZE_LIMIT} bytes, got ${max}`);
  }
  return options as PostgresStorageDriverOptions;
}

/** SQLSTATE of a pg error, if any. */
function sqlState(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/** Whether a failed statement leaves its connection unusable (it is then destroyed, not reused). */
function breaksConnection(error: unknown): boolean {
  if (isStorageDriverError(error)) return false;
  const state = sqlState(error);
  return state === undefined || state.startsWith('08') || state.startsWith('57');
}

/** Splits sorted items into runs of at most {@link POSTGRES_MAX_STATEMENT_BYTES} (one item minimum). */
function chunkByBytes<T extends { bytes: Uint8Array }>(items: T[]): T[][] {
  const chunks: T[][] = [];
  let current: T[] = [];
  let size = 0;
  for (const item of items) {
    if (current.length > 0 && size + item.bytes.byteLength > POSTGRES_MAX_STATEMENT_BYTES) {
      chunks.push(current);
      current = [];
      size = 0;
    }
    current.push(item);
    size += item.bytes.byteLength;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

/**
 * A plain `Uint8Array` over `data` (a `Buffer` from `pg`), copied when it shares its memory with
 * other bytes (Node's Buffer pool), so a retrieved payload never keeps a pooled slab alive or
 * aliases another row's bytes, and callers get a plain `Uint8Array` rather than a `Buffer`
 * (whose `slice()` is a view, not a copy).
 */
function ownBytes(data: Uint8Array): Uint8Array {
  if (data.byteOffset === 0 && data.byteLength === data.buffer.byteLength) {
    return new Uint8Array(data.buffer, 0, data.byteLength);
  }
  return new Uint8Array(data);
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * Stores payloads as rows of one PostgreSQL table (DESIGN §5, type `postgres.pgdriver`).
 *
 * - Content-addressed: the primary key is the core storage key; identical payloads share a row.
 * - One statement per batch: `store` is one `INSERT ... SELECT FROM unnest(...) ON CONFLICT (key)`
 *   (the payload bytes travel as one binary parameter), `retrieve` one `SELECT ... WHERE key =
 *   ANY($1)`. No DDL ever runs on these paths; see {@link PostgresStorageDriver.ensureSchema}.
 * - Claims carry only `key` plus `hash_algorithm`/`hash_value`; the table is configuration, never
 *   claim data, and keys are parsed strictly and bound as parameters.
 * - Lifecycle (DESIGN §8): every store, first write or dedup hit, sets the row's `last_referenced`
 *   (the database's `now()`, or the `clock` option's time); `list` pages through the table by key
 *   (1,000 rows a statement), `delete` and `deleteExpired` delete 1,000 rows a statement, the
 *   conditional deletes with `FOR UPDATE SKIP LOCKED` so a row a concurrent store re-references
 *   is kept.
 *
 * Errors (all `StorageDriverError`): the constructor throws `E_CONFIG` for invalid options;
 * `store` throws `E_TOO_LARGE`, `E_ABORTED`, `E_BACKEND` (connection lost, server down,
 * `pg_terminate_backend`, timeouts: retryable), `E_CONFIG` (missing table, privileges,
 * authentication); `retrieve` additionally throws `E_INVALID_CLAIM`, `E_NOT_FOUND`,
 * `E_INTEGRITY`; `list`, `delete` and `deleteExpired` throw `E_CONFIG` (invalid options, missing
 * table or `last_referenced` column), `E_ABORTED`, `E_BACKEND`; after `close()` every call throws
 * `E_CONFIG`. A table created by an earlier release fails with `E_CONFIG` (`42703`) until
 * {@link PostgresStorageDriver.ensureSchema} (or {@link schemaUpgradeSql}) upgrades it. Messages and
 * causes never contain the connection password. API misuse (non-array arguments) throws
 * `TypeError`.
 *
 * @example
 * ```ts
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
 * const driver = new PostgresStorageDriver({ pool, ttl: 30 * 24 * 3600_000 });
 * await driver.ensureSchema();
 * const dataConverter = { externalStorage: new ExternalStorage({ drivers: [driver] }) };
 * ```
 */
export class PostgresStorageDriver extends ContentAddressedStorageDriver<StorageLocation> {
  /** Per-implementation identifier: `postgres.pgdriver`. */
  readonly type = POSTGRES_DRIVER_TYPE;
  /** Schema of the payload table. */
  readonly schema: string;
  /** Name of the payload table. */
  readonly table: string;
  /** `"schema"."table"` as used in SQL. */
  readonly qualifiedTable: string;
  /** The pool the driver uses (injected, or created by `fromConnectionString`). */
  readonly pool: PostgresPool;

  private readonly names: ResolvedPostgresTable;
  private readonly sql: { store: string; retrieve: string };
  private readonly lifecycle: LifecycleTarget;
  /** Whether the `clock` option was given (stores then record its time, not the server's). */
  private readonly clockInjected: boolean;
  private secrets: string[];
  private ownedPool: OwnedPostgresPool | undefined;
  /** Set by `_close`; only `ensureSchema` (not a base-class method) reads it. */
  private closed = false;

  /**
   * Creates a driver over an injected pool. Does no I/O.
   *
   * @throws StorageDriverError `E_CONFIG` if `options` is not an object, `pool` has no
   *   `connect()`, `schema` or `table` is not a plain lower-case identifier, or `name`,
   *   `maxPayloadSize` (also: above 255 MiB) or `ttl` (also: above 100 years) is invalid.
   */
  constructor(options: PostgresStorageDriverOptions) {
    const checked = checkOptions(options);
    super(POSTGRES_DRIVER_DEFAULT_NAME, checked);
    this.names = resolvePostgresTable(checked);
    this.schema = this.names.schema;
    this.table = this.names.table;
    this.qualifiedTable = this.names.qualifiedTable;
    if (this.ttl !== undefined && this.ttl > POSTGRES_MAX_TTL) {
      throw this.createError(StorageDriverErrorCode.CONFIG, `ttl must be at most ${POSTGRES_MAX_TTL} ms (100 years)`);
    }
    this.pool = checked.pool;
    this.secrets = injectedPoolSecrets(checked.pool);
    this.clockInjected = checked.clock !== undefined;
    const t = this.qualifiedTable;
    this.sql = {
      // Rows arrive sorted by key (no lock-order deadlocks between concurrent batches). A dedup
      // hit only moves last_referenced forward; data, size and created_at are never rewritten.
      // The conflicting row is locked even when the WHERE skips the update, so a conditional
      // delete (FOR UPDATE SKIP LOCKED) never removes a row a store is re-referencing.
      store: [
        `INSERT INTO ${t} AS existing (key, data, size, created_at, last_referenced)`,
        'SELECT item.key, substring($2::bytea FROM item.start FOR item.length), item.length,',
        '  coalesce($5::timestamptz, now()), coalesce($5::timestamptz, now())',
        'FROM unnest($1::text[], $3::integer[], $4::integer[]) AS item(key, start, length)',
        'ON CONFLICT (key) DO UPDATE SET last_referenced = EXCLUDED.last_referenced',
        'WHERE existing.last_referenced < EXCLUDED.last_referenced',
      ].join('\n'),
      retrieve: `SELECT key, data FROM ${t} WHERE key = ANY($1::text[])`,
    };
    this.lifecycle = {
      table: t,
      run: (signal, query) => this.withClient(signal, (client) => client.query(query)),
      locate: (key) => {
        try {
          return this._parseClaim({ key }, 0);
        } catch {
          return undefined; // a row written by hand, not by a driver: not listed
        }
      },
      error: (code, message) => this.createError(code, message),
    };
  }

  /**
   * Creates a driver that owns its pool: loads `pg` at runtime and creates a `pg.Pool` for
   * `connectionString` (plus `options.poolConfig`). Call {@link PostgresStorageDriver.close} to
   * end it. The password never appears in the driver's errors. Does no I/O.
   *
   * @example
   * ```ts
   * const driver = PostgresStorageDriver.fromConnectionString(process.env.DATABASE_URL!, { ttl: 30 * DAY });
   * ```
   * @throws StorageDriverError `E_CONFIG` if `connectionString` is not a URL, `pg` is not
   *   installed, or any option is invalid (as for the constructor).
   */
  static fromConnectionString(
    connectionString: string,
    options: PostgresConnectionStringOptions = {},
  ): PostgresStorageDriver {
    if (typeof connectionString !== 'string' || connectionString.length === 0) {
      throw config('connectionString must be a non-empty string');
    }
    if (typeof options !== 'object' || options === null) throw config('options must be an object');
    const secrets = connectionSecrets(connectionString);
    const { poolConfig, ...rest } = options;
    resolvePostgresTable(rest); // fail before creating a pool
    const pg = loadPg();
    const pool = new pg.Pool({
      application_name: 'x-storage-driver-postgres',
      connectionTimeoutMillis: 10_000,
      ...poolConfig,
      connectionString,
    });
    // Idle connections error out when the server restarts; pg removes them from the pool and
    // the next call connects afresh. Without a listener the 'error' event would end the process.
    pool.on('error', () => {});
    let driver: PostgresStorageDriver;
    try {
      driver = new PostgresStorageDriver({ ...rest, pool });
    } catch (e) {
      void pool.end().catch(() => {});
      throw e;
    }
    driver.ownedPool = pool;
    driver.secrets = [...new Set([...secrets, ...driver.secrets])];
    return driver;
  }

  /** `true` if the driver created its pool (`fromConnectionString`) and ends it in `close()`. */
  get ownsPool(): boolean {
    return this.ownedPool !== undefined;
  }

  /**
   * Creates the schema (unless `public`), the payload table and its `last_referenced` index if
   * they do not exist, and upgrades a table created by an earlier release in place (adds
   * `last_referenced`, whose value for existing rows is the time of the upgrade, and its index;
   * see {@link schemaUpgradeStatements}). Idempotent and safe to run from several processes at
   * once: the catalogs are checked first, and when anything is missing the DDL runs under a
   * transaction-scoped advisory lock
   * (`pg_advisory_xact_lock(POSTGRES_SCHEMA_LOCK_ID, hashtext('"schema"."table"'))`), re-checked
   * once the lock is held, in two short transactions: the table and column (catalog-only), then
   * the index (its build blocks writes, not reads). A CREATE outside that lock racing it is
   * retried once. When everything exists it runs one catalog query and no DDL; an existing schema
   * is never re-created (`CREATE SCHEMA IF NOT EXISTS` would need `CREATE` on the database), so a
   * role with `CREATE` on a provisioned schema suffices. An index left invalid by a failed
   * `CREATE INDEX CONCURRENTLY` is rebuilt. Never called implicitly: `store`/`retrieve` run no
   * DDL. The same DDL is available as {@link schemaSql} and {@link schemaUpgradeSql} for
   * migration tools.
   *
   * @throws StorageDriverError `E_CONFIG` (no privilege to create, authentication, driver
   *   closed), `E_BACKEND` (connection failures), `E_ABORTED` if `signal` fires.
   */
  async ensureSchema(options: PostgresEnsureSchemaOptions = {}): Promise<void> {
    const signal = options.signal;
    if (this.closed) {
      throw this.createError(StorageDriverErrorCode.CONFIG, 'ensureSchema failed: the driver is closed', {
        retryable: false,
      });
    }
    for (let attempt = 0; ; attempt++) {
      try {
        await this.withClient(signal, async (client) => {
          const found = ensureSchemaStatements(this.names, await this.inspectSchema(client));
          if (found.definitions.length === 0 && found.index.length === 0) return;
          // Table and column first (catalog-only DDL under a short ACCESS EXCLUSIVE lock), then
          // the index in a transaction of its own, so its build blocks writes but not reads.
          for (const step of ['definitions', 'index'] as const) {
            throwIfAborted(signal, this.name);
            await client.query({ text: 'BEGIN' });
            try {
              await client.query({
                text: 'SELECT pg_advisory_xact_lock($1::integer, hashtext($2))',
                values: [POSTGRES_SCHEMA_LOCK_ID, this.names.qualifiedTable],
              });
              // Another process may have done it while this one waited for the lock.
              const todo = ensureSchemaStatements(this.names, await this.inspectSchema(client))[step];
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
        const state = sqlState(e);
        if (attempt === 0 && state !== undefined && DDL_RACE_SQLSTATES.has(state)) continue;
        throw this.wrap(e, 'ensureSchema', signal);
      }
    }
  }

  // Claims are `{ key }` with the canonical storage key, which is also the row's primary key (at
  // most 1024 characters: longer keys become `v0/ns/{namespace}/d/sha256/{hex}`, so a key always
  // fits the btree's 2.7 KB entries): the base class's key-only `_locate`, `_claimFields` and
  // `_parseClaim` are exactly that. The table is configuration, never read from a claim.

  /** Writes the batch with one `INSERT ... ON CONFLICT` statement (one per 256 MiB of data). */
  protected async _putIfAbsent(items: StoreItem<StorageLocation>[], op: BackendOperation): Promise<void> {
    const sorted = [...items].sort((a, b) =>
      a.location.key < b.location.key ? -1 : a.location.key > b.location.key ? 1 : 0,
    );
    const chunks = chunkByBytes(sorted);
    await this.withClient(op.signal, async (client) => {
      for (const chunk of chunks) {
        throwIfAborted(op.signal, this.name);
        await client.query(this.storeQuery(chunk));
      }
    });
  }

  /** Reads the batch with one `SELECT ... WHERE key = ANY($1)`; rows are mapped back by key. */
  protected async _get(locations: StorageLocation[], op: BackendOperation): Promise<(Uint8Array | undefined)[]> {
    const keys = locations.map((l) => l.key);
    const result = await this.withClient(op.signal, (client) =>
      client.query({ text: this.sql.retrieve, values: [keys] }),
    );
    const found = new Map<string, Uint8Array>();
    for (const row of result.rows as { key?: unknown; data?: unknown }[]) {
      if (typeof row.key !== 'string' || !(row.data instanceof Uint8Array)) {
        throw this.createError(
          StorageDriverErrorCode.CONFIG,
          'retrieve got a row without a text key and bytea data: is a custom type parser installed on the pool?',
        );
      }
      found.set(row.key, ownBytes(row.data));
    }
    return keys.map((k) => found.get(k));
  }

  /** Last-referenced times are exact (every store sets them); a batch is one statement. */
  protected override _capabilities(): Partial<StorageDriverCapabilities> {
    return { lastReferenced: 'exact', batchedWrites: true };
  }

  /**
   * Pages through the table by key, 1,000 rows a `SELECT` (a connection per page, released before
   * the page is yielded), filtered by `query.prefix` (its byte-order range: an index range on a
   * `COLLATE "C"` key) and `query.referencedBefore` (`last_referenced < $n`) in SQL.
   */
  protected override _list(query: ListQuery): AsyncIterable<ListedObject> {
    return listRows(this.lifecycle, query);
  }

  /**
   * One statement per 1,000 keys: `DELETE … WHERE key = ANY($1) RETURNING key`; with
   * `referencedBefore`, only rows still last referenced before it, locked `FOR UPDATE SKIP LOCKED`
   * (a row a concurrent store holds is kept), in a statement that also tells `kept` from `missing`.
   */
  protected override _delete(
    entries: DeleteEntry[],
    options: { readonly referencedBefore: Date | undefined },
    op: BackendOperation,
  ): Promise<DeleteOutcome[]> {
    return deleteRows(
      this.lifecycle,
      entries.map((e) => e.location.key),
      options.referencedBefore,
      op.signal,
    );
  }

  /** Ends the pool if the driver created it (`fromConnectionString`); an injected pool is left alone. */
  protected override async _close(): Promise<void> {
    this.closed = true;
    await this.ownedPool?.end();
  }

  /** Classifies `pg` errors (see `wrapPostgresError`); never exposes the connection password. */
  protected override _wrapError(error: unknown, op: BackendOperation): StorageDriverError {
    return wrapPostgresError(error, op.kind, this.name, this.secrets);
  }

  // ---------------------------------------------------------------------------------------------

  /** One catalog query: what of the schema, table, column and index exists. */
  private async inspectSchema(client: PostgresPoolClient): Promise<PostgresSchemaState> {
    const r = await client.query({
      text: [
        'SELECT to_regnamespace($3) IS NOT NULL AS has_schema, to_regclass($1) IS NOT NULL AS has_table,',
        '  EXISTS (SELECT 1 FROM pg_catalog.pg_attribute WHERE attrelid = to_regclass($1)',
        "    AND attname = 'last_referenced' AND NOT attisdropped) AS has_column,",
        '  (SELECT indisvalid FROM pg_catalog.pg_index WHERE indexrelid = to_regclass($2)) AS index_valid',
      ].join('\n'),
      values: [this.names.qualifiedTable, this.names.qualifiedLastReferencedIndex, `"${this.names.schema}"`],
    });
    const row = (r.rows[0] ?? {}) as Record<string, unknown>;
    return {
      hasSchema: row['has_schema'] === true,
      hasTable: row['has_table'] === true,
      hasColumn: row['has_column'] === true,
      indexValid: typeof row['index_valid'] === 'boolean' ? row['index_valid'] : undefined,
    };
  }

  private storeQuery(items: StoreItem<StorageLocation>[]): PostgresQueryConfig {
    const keys: string[] = [];
    const starts: number[] = [];
    const lengths: number[] = [];
    let offset = 1; // substring() positions are 1-based
    for (const item of items) {
      keys.push(item.location.key);
      starts.push(offset);
      lengths.push(item.bytes.byteLength);
      offset += item.bytes.byteLength;
    }
    // One binary parameter for all payload bytes (a bytea[] would travel as hex text, twice the size).
    const data =
      items.length === 1 ? asBuffer((items[0] as StoreItem).bytes) : Buffer.concat(items.map((i) => i.bytes));
    // The injected clock's time, or NULL for the server's now() (one clock for every writer).
    const at = this.clockInjected ? new Date(this.now()) : null;
    return { text: this.sql.store, values: [keys, data, starts, lengths, at] };
  }

  private wrap(error: unknown, what: string, signal: AbortSignal | undefined): StorageDriverError {
    if (signal?.aborted && !isStorageDriverError(error, StorageDriverErrorCode.ABORTED)) {
      return abortedError(signal, this.name);
    }
    const wrapped = wrapPostgresError(error, what, this.name, this.secrets);
    if (wrapped.driverName === undefined) (wrapped as { driverName: string | undefined }).driverName = this.name;
    return wrapped;
  }

  /**
   * Checks out a connection, honouring `signal` while waiting (a connection handed over after an
   * abort is released unused), runs `fn`, and releases the connection once `fn` settles — even
   * if the caller stopped waiting. Connections whose statement failed at the connection level
   * are destroyed instead of reused.
   */
  private async withClient<T>(
    signal: AbortSignal | undefined,
    fn: (client: PostgresPoolClient) => Promise<T>,
  ): Promise<T> {
    throwIfAborted(signal, this.name);
    let pending: Promise<PostgresPoolClient>;
    try {
      pending = Promise.resolve(this.pool.connect());
    } catch (e) {
      pending = Promise.reject(e);
    }
    let client: PostgresPoolClient;
    try {
      client = await raceAbort(pending, signal, this.name);
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
      throwIfAborted(signal, this.name);
      return await fn(client);
    } catch (e) {
      if (breaksConnection(e)) destroy = e instanceof Error ? e : new Error(String(e));
      throw e;
    } finally {
      client.removeListener('error', onError);
      client.release(destroy);
    }
  }
}
