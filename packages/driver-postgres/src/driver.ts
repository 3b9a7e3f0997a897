/**
 * The PostgreSQL storage driver.
 *
 * @module
 */
import {
  type BackendOperation,
  ContentAddressedStorageDriver,
  type DeleteEntry,
  type DeleteOutcome,
  type ListedObject,
  type ListQuery,
  type PutOutcome,
  type StorageDriverCapabilities,
  type StorageDriverError,
  type StorageLocation,
  type StoreItem,
  throwIfAborted,
} from '@x/storage-driver-core';
import { copyFromStdin, copyToStdout, isCopyClient, type PostgresCopyClient } from './copy';
import { connectionSecrets, injectedPoolSecrets, isUniqueViolation, refusesCopy, wrapPostgresError } from './errors';
import { deleteRows, type LifecycleTarget, listRows } from './lifecycle';
import {
  checkConnectionStringOptions,
  checkOptions,
  POSTGRES_DRIVER_DEFAULT_NAME,
  POSTGRES_DRIVER_TYPE,
  type PostgresConnectionStringOptions,
  type PostgresEnsureSchemaOptions,
  type PostgresStorageDriverOptions,
  type ResolvedPostgresTable,
} from './options';
import {
  createOwnedPool,
  type OwnedPostgresPool,
  type PostgresPool,
  type PostgresPoolClient,
  withClient,
} from './pool';
import { ensureSchema } from './schema';
import { largeRowSlice, PostgresStatements, readCopied, readInSlices, readRetrieved } from './statements';

/**
 * Stores payloads as rows of one PostgreSQL table (DESIGN §5, type `postgres.pgdriver`).
 *
 * - Content-addressed: the primary key is the core storage key; identical payloads share a row.
 * - One statement per batch: `store` is one `INSERT ... SELECT FROM unnest(...) ON CONFLICT (key)`
 *   (the payload bytes travel as one binary parameter), `retrieve` one `SELECT ... WHERE key =
 *   ANY($1)`. A batch with payloads of 1 MiB or more first probes those by key (one more
 *   statement), and sends only the ones not stored yet. No DDL ever runs on these paths; see
 *   {@link PostgresStorageDriver.ensureSchema}.
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

  /** `true` if the driver created its pool (`fromConnectionString`) and ends it in `close()`. */
  get ownsPool(): boolean {
    return this.#ownedPool !== undefined;
  }

  readonly #names: ResolvedPostgresTable;
  readonly #statements: PostgresStatements;
  readonly #lifecycle: LifecycleTarget;
  /** Whether the `clock` option was given (stores then record its time, not the server's). */
  readonly #clockInjected: boolean;
  /** Whether large payloads are written with COPY: `false` once the server refused it (see `refusesCopy`). */
  #copyWrites = true;
  /** Whether rows over 8 MiB are read with COPY: `false` once the server refused it. */
  #copyReads = true;
  /** The connection password (and its forms), redacted from every error. */
  #secrets: string[];
  #ownedPool: OwnedPostgresPool | undefined;

  /**
   * Creates a driver over an injected pool. Does no I/O.
   *
   * @throws StorageDriverError `E_CONFIG` if `options` is not an object, `pool` has no
   *   `connect()`, `schema` or `table` is not a plain lower-case identifier, or `name`,
   *   `maxPayloadSize` (also: above 255 MiB) or `ttl` (also: above 100 years) is invalid.
   */
  constructor(options: PostgresStorageDriverOptions) {
    const checked = checkOptions(options);
    super(POSTGRES_DRIVER_DEFAULT_NAME, checked.options);
    this.#names = checked.table;
    this.schema = checked.table.schema;
    this.table = checked.table.table;
    this.qualifiedTable = checked.table.qualifiedTable;
    this.pool = checked.pool;
    this.#secrets = injectedPoolSecrets(checked.pool);
    this.#clockInjected = checked.clockInjected;
    this.#statements = new PostgresStatements(checked.table);
    this.#lifecycle = {
      statements: this.#statements,
      pool: this.pool,
      locate: (key) => {
        try {
          return this._parseClaim({ key }, 0);
        } catch {
          return undefined; // a row written by hand, not by a driver: not listed
        }
      },
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
    const { poolConfig, rest } = checkConnectionStringOptions(connectionString, options);
    const pool = createOwnedPool(connectionString, poolConfig);
    let driver: PostgresStorageDriver;
    try {
      driver = new PostgresStorageDriver({ ...rest, pool });
    } catch (e) {
      void pool.end().catch(() => {});
      throw e;
    }
    driver.#ownedPool = pool;
    driver.#secrets = [...new Set([...connectionSecrets(connectionString), ...driver.#secrets])];
    return driver;
  }

  // Claims are `{ key }` with the canonical storage key, which is also the row's primary key (at
  // most 1024 characters: longer keys become `v0/ns/{namespace}/d/sha256/{hex}`, so a key always
  // fits the btree's 2.7 KB entries): the base class's key-only `_locate`, `_claimFields` and
  // `_parseClaim` are exactly that. The table is configuration, never read from a claim.

  /**
   * Writes the batch with one `INSERT ... ON CONFLICT` statement (one per 256 MiB of data), which
   * also answers which items were already stored: one outcome per item, `existed` for those (a
   * dedup hit, reported to instrumentation), else `written`. Items of 1 MiB or more
   * (`POSTGRES_PROBE_MIN_BYTES`) are first probed by key with one statement that refreshes the
   * rows that exist (their outcome: `existed`), so a repeat store of a large payload never sends
   * its bytes again; the missing ones are written with one binary `COPY` from the payloads' own
   * memory (with `pg`'s client; through the `INSERT` with any other). A batch without such items is
   * one statement; concurrent deletes are handled in `statements.ts`.
   */
  protected override async _putIfAbsent(
    items: StoreItem<StorageLocation>[],
    op: BackendOperation,
  ): Promise<PutOutcome[]> {
    const at = this.#clockInjected ? new Date(this.now()) : null;
    const outcomes = new Array<PutOutcome>(items.length);
    await withClient(this.pool, op.signal, async (client) => {
      await this.#probe(client, items, at, outcomes, op.signal);
      if (this.#copyWrites && isCopyClient(client)) await this.#copy(client, items, at, outcomes, op.signal);
      for (const statement of this.#statements.store(items, at, outcomes)) {
        throwIfAborted(op.signal);
        const result = await client.query(statement.query);
        this.#statements.readStored(statement, result.rows, outcomes);
      }
    });
    return outcomes;
  }

  /** Probes the large items not settled yet (see `POSTGRES_PROBE_MIN_BYTES`), recording `existed`. */
  async #probe(
    client: PostgresPoolClient,
    items: StoreItem<StorageLocation>[],
    at: Date | null,
    outcomes: PutOutcome[],
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const probe = this.#statements.probe(items, at, outcomes);
    if (probe === undefined) return;
    throwIfAborted(signal);
    this.#statements.readProbed(probe, (await client.query(probe.query)).rows, outcomes);
  }

  /**
   * Writes the large items the probe found missing with one `COPY`, recording `written`. A key
   * another writer stored since the probe fails the COPY as a whole (`23505`, nothing written):
   * the items are probed again (those now stored are `existed`, and refreshed), and the rest are
   * left to the `INSERT`, whose `ON CONFLICT` settles any further race. A server that cannot COPY
   * into the table (row-level security) leaves them to the `INSERT`, now and from then on.
   */
  async #copy(
    client: PostgresCopyClient,
    items: StoreItem<StorageLocation>[],
    at: Date | null,
    outcomes: PutOutcome[],
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const copy = this.#statements.copy(items, at, outcomes);
    if (copy === undefined) return;
    throwIfAborted(signal);
    try {
      const copied = await copyFromStdin(client, copy.text, copy.rows);
      if (copied !== copy.rows.length) throw new Error(`COPY wrote ${copied} rows of ${copy.rows.length}`);
      for (const index of copy.indexes) outcomes[index] = 'written';
    } catch (e) {
      if (refusesCopy(e)) {
        this.#copyWrites = false; // the INSERT writes them, now and from now on
        return;
      }
      if (!isUniqueViolation(e)) throw e;
      await this.#probe(client, items, at, outcomes, signal);
    }
  }

  /**
   * Reads the batch with one `SELECT ... WHERE key = ANY($1)`; rows are mapped back by key. Rows
   * over 8 MiB (`POSTGRES_RETRIEVE_INLINE_BYTES`) are then read on the same connection, each with
   * one binary `COPY … TO STDOUT` of its 64 KiB slices straight into the row's buffer (with a client
   * other than `pg`'s: one base64 `SELECT` per slice).
   */
  protected override async _get(
    locations: StorageLocation[],
    op: BackendOperation,
  ): Promise<(Uint8Array | undefined)[]> {
    const keys = locations.map((l) => l.key);
    return withClient(this.pool, op.signal, async (client) => {
      const result = await client.query(this.#statements.retrieve(keys));
      const statements = this.#statements;
      return readRetrieved(result.rows, keys, (key, size, compressed) => {
        throwIfAborted(op.signal);
        const inSlices = () =>
          readInSlices(key, size, largeRowSlice(size, compressed, false), async (k, start, length) => {
            throwIfAborted(op.signal);
            return (await client.query(statements.retrieveSlice(k, start, length))).rows;
          });
        if (!this.#copyReads || !isCopyClient(client)) return inSlices();
        const slice = largeRowSlice(size, compressed, true);
        return readCopied(size, (sink) => copyToStdout(client, statements.retrieveCopy(key, size, slice), sink)).catch(
          (e: unknown) => {
            if (!refusesCopy(e)) throw e;
            this.#copyReads = false; // a server that cannot COPY a query out: slices from now on
            return inSlices();
          },
        );
      });
    });
  }

  /** Classifies `pg` errors (see `wrapPostgresError`); never exposes the connection password. */
  protected override _wrapError(error: unknown, op: BackendOperation): StorageDriverError {
    return wrapPostgresError(error, op.kind, this.name, this.#secrets);
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
    return listRows(this.#lifecycle, query);
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
    const keys = entries.map((e) => e.location.key);
    return deleteRows(this.#lifecycle, keys, options.referencedBefore, op.signal);
  }

  /** Ends the pool if the driver created it (`fromConnectionString`); an injected pool is left alone. */
  protected override async _close(): Promise<void> {
    await this.#ownedPool?.end();
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
    return this.runOperation('ensureSchema', options.signal, (op) =>
      ensureSchema(this.pool, this.#names, this.#statements, op.signal),
    );
  }
}
