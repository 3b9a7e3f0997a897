/**
 * Every statement the driver sends on its store, retrieve, list, delete and `ensureSchema` paths,
 * built once from the resolved table names, with their bind parameters (and the reading of the
 * rows `retrieve` returns). Identifiers come only from
 * {@link ResolvedPostgresTable} (validated and quoted); every value is a `$n` parameter. The DDL
 * itself is in `schema.ts`.
 *
 * @module
 */
import { byteView, configError, type PutOutcome, type StorageLocation, type StoreItem } from '@x/storage-driver-core';
import { binaryCopyRow } from './copy';
import type { ResolvedPostgresTable } from './options';
import type { PostgresQueryConfig } from './pool';

/**
 * Most payload bytes sent in one `INSERT`. A batch above it (only possible with several large
 * payloads) is written with one statement per 256 MiB; every batch below it is one statement.
 */
export const POSTGRES_MAX_STATEMENT_BYTES = 256 * 1024 * 1024;
/**
 * Smallest payload (serialized bytes) that `store` looks up before sending it. Such an item is
 * first probed with one statement that refreshes `last_referenced` of the rows that exist and
 * returns their keys, so storing a large payload that is already stored (a workflow passing its
 * input on to an activity, returning an activity's result) sends its key, not its bytes. The
 * missing ones are written with one `COPY … FROM STDIN (FORMAT binary)` straight from the
 * payloads' memory (through `pg`'s own client; any other client gets them in the `INSERT`).
 * Smaller items always go straight into the `INSERT`: a batch without large items is one
 * statement, as before; one with them is the probe, the `COPY` of the new ones, and the `INSERT`
 * of the small ones (if any).
 * Above 256 KiB (the SDK's default offload threshold, and the size of the benchmark's `distinct`
 * items) so that ordinary batches never pay the extra round trip; at 1 MiB the round trip (well
 * under a millisecond on a LAN) is small next to sending the bytes again (about 8 ms at 1 Gbit/s,
 * plus the client's and the server's CPU for copying, parsing and discarding them).
 *
 * @default 1048576 (1 MiB)
 */
export const POSTGRES_PROBE_MIN_BYTES = 1024 * 1024;
/** First key of the advisory lock `ensureSchema` holds (the second is `hashtext('"schema"."table"')`). */
export const POSTGRES_SCHEMA_LOCK_ID = 0x58535044; // 'XSPD'
/**
 * Largest row (payload bytes) the `retrieve` statement returns whole. `bytea` results travel as
 * hex text, which `pg` turns into a string and then into bytes: three copies of every byte at
 * once, six times the payload in memory. Larger rows are read in
 * {@link POSTGRES_RETRIEVE_CHUNK_BYTES} slices into one buffer of their final size, so a 50 MiB
 * payload never exists as 100 MiB of hex. (A per-row test, not a running total: a window over the
 * batch would sort every batch at the server.)
 */
export const POSTGRES_RETRIEVE_INLINE_BYTES = 8 * 1024 * 1024;
/**
 * Slice of a large row read by one base64 `SELECT` (see {@link POSTGRES_RETRIEVE_INLINE_BYTES}),
 * with a client that cannot COPY: a statement per slice.
 */
export const POSTGRES_RETRIEVE_CHUNK_BYTES = 1024 * 1024;
/**
 * Slice of a large row as one row of its `COPY … TO STDOUT` (one statement for all of them): each
 * slice is one protocol message, which `pg` gathers from the socket's 64 KiB reads into a buffer it
 * grows by doubling. Messages of 64 KiB keep that buffer small: peak RSS storing then retrieving a
 * 50 MiB payload 2.78–2.85× with 1 MiB slices, 2.64–2.75× with these (the benchmark's `big`), in
 * as little time.
 */
const COPY_SLICE_BYTES = 64 * 1024;
/**
 * Most slices of a large row stored compressed (TOAST `pglz`/`lz4`): the server decompresses a
 * compressed value from its start up to the end of each slice, so n slices cost n/2 times the
 * row in decompression; compressed rows are read in at most 8 slices.
 */
const MAX_COMPRESSED_SLICES = 8;

/** One `INSERT` of a store batch, and the positions in the batch of the items it writes. */
export interface PostgresStoreStatement {
  /** The statement and its bind parameters. */
  readonly query: PostgresQueryConfig;
  /** For each item of the statement, in its order, the item's position in the batch. */
  readonly indexes: readonly number[];
}

/**
 * The probe of a store batch's large items (see {@link POSTGRES_PROBE_MIN_BYTES}): the statement
 * and the positions in the batch of its items.
 */
export interface PostgresProbeStatement {
  /** The statement and its bind parameters. */
  readonly query: PostgresQueryConfig;
  /** For each key of the statement, in its order, the item's position in the batch. */
  readonly indexes: readonly number[];
}

/**
 * The `COPY` of a store batch's large items that the probe found missing (see
 * {@link PostgresStatements.copy}): the statement, its rows, and the positions in the batch of
 * their items.
 */
export interface PostgresCopyStatement {
  /** The `COPY … FROM STDIN (FORMAT binary)` statement. */
  readonly text: string;
  /** Each item's row in the binary COPY format (see {@link binaryCopyRow}), in the statement's order. */
  readonly rows: readonly (readonly Uint8Array[])[];
  /** For each row, in its order, the item's position in the batch. */
  readonly indexes: readonly number[];
}

/** The statements of one payload table. */
export class PostgresStatements {
  readonly #table: ResolvedPostgresTable;
  readonly #store: string;
  readonly #probe: string;
  readonly #retrieve: string;
  readonly #retrieveSlice: string;
  readonly #copy: string;
  readonly #copyAt: string;
  readonly #delete: string;
  readonly #deleteReferencedBefore: string;

  /** Builds the statement texts of `table` (validated, quoted names only). */
  constructor(table: ResolvedPostgresTable) {
    this.#table = table;
    const t = table.qualifiedTable;
    // Rows arrive sorted by key (no lock-order deadlocks between concurrent batches). A dedup
    // hit only moves last_referenced forward; data, size and created_at are never rewritten.
    // The conflicting row is locked even when the WHERE skips the update, so a conditional
    // delete (FOR UPDATE SKIP LOCKED) never removes a row a store is re-referencing.
    // The statement answers which items were already stored (dedup hits): their 0-based positions
    // in $1. A row the INSERT created has xmax = 0; a conflicting row it updated carries the
    // updating transaction's id, and one whose update the WHERE skipped is not returned at all;
    // both existed. Only those positions travel back (none in a batch of new payloads).
    this.#store = [
      'WITH written AS (',
      `  INSERT INTO ${t} AS existing (key, data, size, created_at, last_referenced)`,
      '  SELECT item.key, substring($2::bytea FROM item.start FOR item.length), item.length,',
      '    coalesce($5::timestamptz, now()), coalesce($5::timestamptz, now())',
      '  FROM unnest($1::text[], $3::integer[], $4::integer[]) AS item(key, start, length)',
      '  ON CONFLICT (key) DO UPDATE SET last_referenced = EXCLUDED.last_referenced',
      '  WHERE existing.last_referenced < EXCLUDED.last_referenced',
      '  RETURNING existing.key, existing.xmax = 0 AS inserted',
      ')',
      'SELECT (item.n - 1)::integer AS existed',
      'FROM unnest($1::text[]) WITH ORDINALITY AS item(key, n)',
      'LEFT JOIN written ON written.key = item.key',
      'WHERE written.inserted IS NOT TRUE',
    ].join('\n');
    // The probe of large items: the rows of $1 that exist are locked in the order of $1 (sorted by
    // key, as the INSERT's rows: no lock-order deadlocks between concurrent batches), their
    // last_referenced moved forward to $2 (or now()) exactly as a dedup hit of the INSERT does,
    // and their positions in $1 returned; data is never read.
    // Against a concurrent deleteExpired (which locks rows last referenced before its cutoff with
    // FOR UPDATE SKIP LOCKED, re-checks the cutoff and deletes them):
    // - the probe locks first: the sweep skips the row (as it skips a row the INSERT holds), and
    //   once the probe commits the row's last_referenced is the store's time, so a later sweep
    //   with an earlier cutoff keeps it;
    // - the sweep locks first: FOR UPDATE waits for it, and under READ COMMITTED a row the sweep
    //   deleted is then skipped: the probe does not return it, the item counts as missing, and the
    //   INSERT that follows writes it again (`written`). A row the sweep kept (refreshed meanwhile)
    //   is returned and refreshed.
    // A row deleted after the probe committed is a row deleted after the store: exactly what a
    // sweep after the single INSERT could do too, and only with a cutoff later than the store's
    // time. A row inserted by another writer between the probe and the INSERT conflicts in the
    // INSERT and is reported `existed` there. Outcomes are therefore exact: `existed` means the
    // row existed when this store referenced it, `written` that this store wrote it.
    this.#probe = [
      'WITH probed AS (',
      '  SELECT item.key, (item.n - 1)::integer AS existed',
      `  FROM unnest($1::text[]) WITH ORDINALITY AS item(key, n) JOIN ${t} AS existing ON existing.key = item.key`,
      '  ORDER BY item.n',
      '  FOR UPDATE OF existing',
      '), refreshed AS (',
      `  UPDATE ${t} AS existing SET last_referenced = coalesce($2::timestamptz, now())`,
      '  FROM probed WHERE existing.key = probed.key',
      '  AND existing.last_referenced < coalesce($2::timestamptz, now())',
      ')',
      'SELECT existed FROM probed',
    ].join('\n');
    // The rows' sizes come from the TOAST header (octet_length does not read the value); data is
    // returned for rows of at most $2 bytes, else left NULL.
    this.#retrieve = [
      'SELECT key, octet_length(data) AS size, pg_column_size(data) < octet_length(data) AS compressed,',
      '  CASE WHEN octet_length(data) <= $2::integer THEN data END AS data',
      `FROM ${t} WHERE key = ANY($1::text[])`,
    ].join('\n');
    // Slices travel as base64 text (4/3 of the bytes, decoded straight into the row's buffer), not
    // as bytea's hex text (twice the bytes, decoded into a string and a Buffer first): a third less
    // client CPU for a 10 MiB row.
    this.#retrieveSlice = `SELECT encode(substring(data FROM $2::integer FOR $3::integer), 'base64') AS data FROM ${t} WHERE key = $1::text`;
    // created_at and last_referenced default to now(): the server's clock, as the INSERT's.
    this.#copy = `COPY ${t} (key, data, size) FROM STDIN (FORMAT binary)`;
    this.#copyAt = `COPY ${t} (key, data, size, created_at, last_referenced) FROM STDIN (FORMAT binary)`;
    this.#delete = `DELETE FROM ${t} WHERE key = ANY($1::text[]) RETURNING key`;
    // The rows still last referenced before $2 are locked with FOR UPDATE SKIP LOCKED and deleted
    // (a row a concurrent store holds is being re-referenced: skipped, never waited for); the same
    // statement reports which keys existed when it started (its snapshot still shows the rows it
    // deletes).
    this.#deleteReferencedBefore = [
      'WITH doomed AS (',
      `  SELECT key FROM ${t} WHERE key = ANY($1::text[]) AND last_referenced < $2::timestamptz`,
      '  FOR UPDATE SKIP LOCKED',
      '), deleted AS (',
      `  DELETE FROM ${t} AS target USING doomed`,
      '  WHERE target.key = doomed.key AND target.last_referenced < $2::timestamptz',
      '  RETURNING target.key',
      ')',
      'SELECT item.key, deleted.key IS NOT NULL AS deleted,',
      `  EXISTS (SELECT 1 FROM ${t} AS existing WHERE existing.key = item.key) AS present`,
      'FROM unnest($1::text[]) AS item(key) LEFT JOIN deleted ON deleted.key = item.key',
    ].join('\n');
  }

  /**
   * The `INSERT … ON CONFLICT` statements that store `items`: sorted by key, one statement per
   * {@link POSTGRES_MAX_STATEMENT_BYTES} of payload bytes (one for every ordinary batch), all bytes
   * of a statement in one binary parameter (a `bytea[]` would travel as hex text, twice the size).
   * Each statement returns one row `{ existed }` per item of it that was already stored (see
   * {@link PostgresStatements.readStored}); `indexes` are the positions in `items` of its items,
   * in the statement's order.
   *
   * @param at - the time to record as `last_referenced` (and `created_at` of new rows); `null` for
   *   the server's `now()` (one clock for every writer).
   * @param settled - outcomes already known (from {@link PostgresStatements.probe}), by position in
   *   `items`: those items are left out (no statement at all when every item is settled).
   */
  store(
    items: readonly StoreItem<StorageLocation>[],
    at: Date | null,
    settled: readonly (PutOutcome | undefined)[] = [],
  ): PostgresStoreStatement[] {
    const sorted = sortByKey(items, (_, index) => settled[index] === undefined);
    return chunkByBytes(sorted).map((chunk) => {
      const keys: string[] = [];
      const starts: number[] = [];
      const lengths: number[] = [];
      let offset = 1; // substring() positions are 1-based
      for (const { item } of chunk) {
        keys.push(item.location.key);
        starts.push(offset);
        lengths.push(item.size);
        offset += item.size;
      }
      // One buffer for the statement, copied from each item's parts (a large payload's own data
      // included), never from a joined copy of them.
      const parts = chunk.flatMap((c) => c.item.parts);
      const data = parts.length === 1 ? byteView(parts[0] as Uint8Array) : Buffer.concat(parts);
      return {
        query: {
          text: this.#store,
          values: [textArrayLiteral(keys), data, integerArrayLiteral(starts), integerArrayLiteral(lengths), at],
        },
        indexes: chunk.map((c) => c.index),
      };
    });
  }

  /**
   * The probe of the large items of `items` (at least {@link POSTGRES_PROBE_MIN_BYTES}) whose
   * outcome `settled` does not already hold, sorted by key: one statement that refreshes
   * `last_referenced` of those that are stored (to `at`, or the server's `now()`, only ever
   * forward, as a dedup hit of the `INSERT` does) and returns one row `{ existed }` per such item
   * (its position in the statement); `undefined` when there is no such item. See
   * {@link PostgresStatements.readProbed}.
   */
  probe(
    items: readonly StoreItem<StorageLocation>[],
    at: Date | null,
    settled: readonly (PutOutcome | undefined)[] = [],
  ): PostgresProbeStatement | undefined {
    const large = largeUnsettled(items, settled);
    if (large.length === 0) return undefined;
    return {
      query: { text: this.#probe, values: [large.map((i) => i.item.location.key), at] },
      indexes: large.map((i) => i.index),
    };
  }

  /**
   * The `COPY … FROM STDIN (FORMAT binary)` of the large items of `items` (at least
   * {@link POSTGRES_PROBE_MIN_BYTES}) whose outcome `settled` does not already hold (the probe
   * found them missing), sorted by key (the order rows are locked in, as in the `INSERT`): their
   * bytes go to the socket from the items' own parts (see `copy.ts`); `undefined` when there is
   * no such item. A COPY has no `ON CONFLICT`: a key another writer stored since the probe fails
   * the whole statement with `23505` (nothing written), and the driver probes again.
   *
   * @param at - the time to record as `created_at` and `last_referenced`; `null` for the columns'
   *   default, the server's `now()`.
   */
  copy(
    items: readonly StoreItem<StorageLocation>[],
    at: Date | null,
    settled: readonly (PutOutcome | undefined)[],
  ): PostgresCopyStatement | undefined {
    const large = largeUnsettled(items, settled);
    if (large.length === 0) return undefined;
    return {
      text: at === null ? this.#copy : this.#copyAt,
      rows: large.map(({ item }) =>
        binaryCopyRow(
          at === null ? [item.location.key, item.parts, item.size] : [item.location.key, item.parts, item.size, at, at],
        ),
      ),
      indexes: large.map((i) => i.index),
    };
  }

  /** Records `existed` in `outcomes` for the items the probe found (its rows), at their batch positions. */
  readProbed(statement: PostgresProbeStatement, rows: readonly unknown[], outcomes: PutOutcome[]): void {
    for (const row of rows) {
      const index = statement.indexes[Number((row as { existed: unknown }).existed)];
      if (index !== undefined) outcomes[index] = 'existed';
    }
  }

  /**
   * The outcome of each item of a store statement from its rows: `existed` for the positions the
   * statement returned (the key was already stored: a dedup hit), `written` for the others.
   * Written into `outcomes` at the statement's `indexes`.
   */
  readStored(statement: PostgresStoreStatement, rows: readonly unknown[], outcomes: PutOutcome[]): void {
    const existed = new Set<number>();
    for (const row of rows) existed.add(Number((row as { existed: unknown }).existed));
    statement.indexes.forEach((index, position) => {
      outcomes[index] = existed.has(position) ? 'existed' : 'written';
    });
  }

  /**
   * `SELECT key, size, data … WHERE key = ANY($1)`: the rows of `keys` that exist, in no order;
   * `data` is NULL for the rows larger than `inlineBytes` (see {@link POSTGRES_RETRIEVE_INLINE_BYTES}),
   * to be read with {@link PostgresStatements.retrieveSlice}.
   */
  retrieve(keys: readonly string[], inlineBytes = POSTGRES_RETRIEVE_INLINE_BYTES): PostgresQueryConfig {
    return { text: this.#retrieve, values: [textArrayLiteral(keys), inlineBytes] };
  }

  /**
   * The `COPY (…) TO STDOUT (FORMAT binary)` that reads the row of `key` as rows of `slice`
   * bytes, in order, in one statement (see {@link readCopied}): the bytes travel as they are,
   * not as text. A COPY takes no bind parameters: the key is given as the hex of its UTF-8 bytes
   * (only `[0-9a-f]` reaches the SQL text, whatever the key), the numbers as validated integers.
   *
   * @throws StorageDriverError `E_CONFIG` if `size` or `slice` is not a non-negative safe integer
   *   (respectively positive).
   */
  retrieveCopy(key: string, size: number, slice: number): string {
    if (!Number.isSafeInteger(size) || size < 0 || !Number.isSafeInteger(slice) || slice <= 0) throw badRow();
    const hex = Buffer.from(key, 'utf8').toString('hex');
    return [
      `COPY (SELECT substring(data FROM part.start FOR ${slice}) FROM ${this.#table.qualifiedTable},`,
      `  generate_series(1, greatest(${size}, 1), ${slice}) AS part(start)`,
      `  WHERE key = convert_from(decode('${hex}', 'hex'), 'UTF8') ORDER BY part.start)`,
      'TO STDOUT (FORMAT binary)',
    ].join('\n');
  }

  /** `length` bytes of the row `key` from byte `start` (0-based), as base64 text; no row if the key is gone. */
  retrieveSlice(key: string, start: number, length: number): PostgresQueryConfig {
    return { text: this.#retrieveSlice, values: [key, start + 1, length] };
  }

  /**
   * One page of the keyset-paginated listing: `key`, `size` and `referenced_ms` (last_referenced
   * in milliseconds as float8, independent of any timestamptz type parser installed on the pool)
   * of at most `limit` rows after `after`, in key order. `ORDER BY key` and `key > $after` both use
   * the key column's own collation, so they agree whatever it is (PostgreSQL's deterministic
   * collations are total orders) and the primary key index serves both. The prefix is matched as
   * its byte-order range (`key COLLATE "C" >= $prefix AND key COLLATE "C" < $upper`; no `LIKE`
   * pattern, so `%` and `_` in keys are plain characters), an index range when the column is
   * `COLLATE "C"` (tables created by this release) and an exact filter otherwise; `starts_with` is
   * added only where the range is not exact (a prefix ending in a non-ASCII character), because
   * its default selectivity makes the planner sort every match on every page. The age filter is
   * `last_referenced < $before`.
   */
  listPage(
    prefix: string | undefined,
    before: Date | undefined,
    after: string | undefined,
    limit: number,
  ): PostgresQueryConfig {
    const p = new Params();
    const where: string[] = [];
    if (after !== undefined) where.push(`key > ${p.add(after, 'text')}`);
    if (prefix !== undefined && prefix.length > 0) {
      const start = p.add(prefix, 'text');
      where.push(`key COLLATE "C" >= ${start}`);
      const upper = prefixUpperBound(prefix);
      if (upper !== undefined) where.push(`key COLLATE "C" < ${p.add(upper, 'text')}`);
      if (upper === undefined || upper.length < prefix.length) where.push(`starts_with(key, ${start})`);
    }
    if (before !== undefined) where.push(`last_referenced < ${p.add(before, 'timestamptz')}`);
    return {
      text: [
        `SELECT key, size, (extract(epoch FROM last_referenced) * 1000)::float8 AS referenced_ms FROM ${this.#table.qualifiedTable}`,
        ...(where.length > 0 ? [`WHERE ${where.join(' AND ')}`] : []),
        `ORDER BY key LIMIT ${limit}`,
      ].join('\n'),
      values: p.values,
    };
  }

  /** `DELETE … WHERE key = ANY($1) RETURNING key`: the keys deleted. */
  delete(keys: readonly string[]): PostgresQueryConfig {
    return { text: this.#delete, values: [keys] };
  }

  /**
   * Deletes the rows of `keys` still last referenced before `before`, skipping rows another
   * transaction holds (`FOR UPDATE SKIP LOCKED`); returns one row per key with `deleted` and
   * `present` (the row existed when the statement started).
   */
  deleteReferencedBefore(keys: readonly string[], before: Date): PostgresQueryConfig {
    return { text: this.#deleteReferencedBefore, values: [keys, before] };
  }

  /**
   * One catalog query: `has_schema`, `has_table`, `has_column` (`last_referenced`) and
   * `index_valid` (`null` when the `last_referenced` index does not exist).
   */
  inspectSchema(): PostgresQueryConfig {
    return {
      text: [
        'SELECT to_regnamespace($3) IS NOT NULL AS has_schema, to_regclass($1) IS NOT NULL AS has_table,',
        '  EXISTS (SELECT 1 FROM pg_catalog.pg_attribute WHERE attrelid = to_regclass($1)',
        "    AND attname = 'last_referenced' AND NOT attisdropped) AS has_column,",
        '  (SELECT indisvalid FROM pg_catalog.pg_index WHERE indexrelid = to_regclass($2)) AS index_valid',
      ].join('\n'),
      values: [this.#table.qualifiedTable, this.#table.qualifiedLastReferencedIndex, `"${this.#table.schema}"`],
    };
  }

  /** The transaction-scoped advisory lock `ensureSchema` runs its DDL under. */
  schemaLock(): PostgresQueryConfig {
    return {
      text: 'SELECT pg_advisory_xact_lock($1::integer, hashtext($2))',
      values: [POSTGRES_SCHEMA_LOCK_ID, this.#table.qualifiedTable],
    };
  }
}

/**
 * Reads one large row (see {@link POSTGRES_RETRIEVE_INLINE_BYTES}) of `size` bytes (`compressed`:
 * stored compressed, see {@link largeRowSlice}); `undefined` if the row is gone.
 */
export type PostgresLargeRowReader = (
  key: string,
  size: number,
  compressed: boolean,
) => Promise<Uint8Array | undefined>;

/**
 * The slice a large row of `size` bytes is read in: `copy` ({@link COPY_SLICE_BYTES}, one COPY) or
 * not ({@link POSTGRES_RETRIEVE_CHUNK_BYTES}, a statement each); a compressed row in at most
 * {@link MAX_COMPRESSED_SLICES} slices, whichever is larger.
 */
export function largeRowSlice(size: number, compressed: boolean, copy: boolean): number {
  const slice = copy ? COPY_SLICE_BYTES : POSTGRES_RETRIEVE_CHUNK_BYTES;
  return compressed ? Math.max(slice, Math.ceil(size / MAX_COMPRESSED_SLICES)) : slice;
}

/**
 * The bytes of each of `keys` among the rows of {@link PostgresStatements.retrieve}, in the order
 * of `keys` (`undefined` where no row came back); rows the statement left out for their size are
 * read with `readLarge`, one after the other.
 *
 * @throws StorageDriverError `E_CONFIG` if rows come back with other types (a custom type parser).
 */
export async function readRetrieved(
  rows: readonly unknown[],
  keys: readonly string[],
  readLarge: PostgresLargeRowReader,
): Promise<(Uint8Array | undefined)[]> {
  const found = new Map<string, Uint8Array>();
  const deferred: { key: string; size: number; compressed: boolean }[] = [];
  const shared: { key: string; data: Uint8Array }[] = [];
  let sharedBytes = 0;
  for (const row of rows as { key?: unknown; data?: unknown; size?: unknown; compressed?: unknown }[]) {
    if (typeof row.key !== 'string' || !(row.data instanceof Uint8Array || row.data === null)) {
      throw badRow();
    }
    const data = row.data;
    if (data === null) deferred.push({ key: row.key, size: Number(row.size), compressed: row.compressed === true });
    else if (data.byteOffset === 0 && data.byteLength === data.buffer.byteLength) {
      found.set(row.key, new Uint8Array(data.buffer, 0, data.byteLength));
    } else {
      shared.push({ key: row.key, data });
      sharedBytes += data.byteLength;
    }
  }
  // Rows in memory shared with other bytes (Node's buffer pool: every row under 4 KiB) are copied
  // into one buffer for the whole batch rather than one each (an allocation costs about 1 µs, the
  // copy of 1 KiB a tenth of that): a payload never keeps a pooled slab alive nor shares memory
  // with anything but the other payloads of its own batch, and callers get plain `Uint8Array`s
  // (a `Buffer`'s `slice()` is a view, not a copy).
  if (shared.length > 0) {
    const arena = new Uint8Array(sharedBytes);
    let at = 0;
    for (const { key, data } of shared) {
      arena.set(data, at);
      found.set(key, arena.subarray(at, at + data.byteLength));
      at += data.byteLength;
    }
  }
  for (const { key, size, compressed } of deferred) {
    if (!Number.isSafeInteger(size) || size < 0) throw badRow();
    const bytes = await readLarge(key, size, compressed);
    if (bytes !== undefined) found.set(key, bytes);
  }
  return keys.map((k) => found.get(k));
}

/**
 * A large row read with one {@link PostgresStatements.retrieveSlice} statement per slice, each
 * straight into one buffer of its size (the reader for clients that cannot COPY); `undefined` if
 * the row is gone (deleted between the statements). A row that changed meanwhile is caught by
 * core's integrity check.
 */
export async function readInSlices(
  key: string,
  size: number,
  slice: number,
  readSlice: (key: string, start: number, length: number) => Promise<readonly unknown[]>,
): Promise<Uint8Array | undefined> {
  const out = Buffer.alloc(size);
  for (let start = 0; start < size; start += slice) {
    const length = Math.min(slice, size - start);
    const [row] = (await readSlice(key, start, length)) as { data?: unknown }[];
    if (row === undefined) return undefined;
    if (typeof row.data !== 'string') throw badRow();
    const written = out.write(row.data, start, length, 'base64');
    // A row that shrank meanwhile: return what there is; the integrity check refuses it.
    if (written !== length) return new Uint8Array(out.buffer, out.byteOffset, start + written);
  }
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/**
 * A large row read with its {@link PostgresStatements.retrieveCopy} statement (run by `copy`,
 * which passes the slices' bytes to its sink as they arrive), straight into one buffer of its
 * size; `undefined` if the row is gone. Bytes beyond `size` (a row that grew meanwhile) are
 * dropped and a row that shrank comes back short: core's integrity check refuses both.
 */
export async function readCopied(
  size: number,
  copy: (sink: (chunk: Uint8Array) => void) => Promise<number>,
): Promise<Uint8Array | undefined> {
  const out = new Uint8Array(size);
  let at = 0;
  const rows = await copy((chunk) => {
    const take = Math.min(chunk.byteLength, size - at);
    out.set(take === chunk.byteLength ? chunk : chunk.subarray(0, take), at);
    at += take;
  });
  if (rows === 0) return undefined;
  return at === size ? out : out.subarray(0, at);
}

function badRow(): Error {
  return configError(
    'retrieve got a row without a text key and bytea data: is a custom type parser installed on the pool?',
  );
}

/**
 * The byte-order (`COLLATE "C"`) range of keys that start with `prefix`: `[prefix, upper)`, where
 * `upper` is `prefix` cut after its last character below U+007F, that character incremented (UTF-8
 * byte order is code point order, so every string starting with `prefix` is below it); `undefined`
 * when there is no such character. When that character is the last one, the range is exactly the
 * keys starting with `prefix`.
 */
export function prefixUpperBound(prefix: string): string | undefined {
  for (let i = prefix.length - 1; i >= 0; i--) {
    const c = prefix.charCodeAt(i);
    if (c < 0x7f) return prefix.slice(0, i) + String.fromCharCode(c + 1);
  }
  return undefined;
}

/** Collects bind parameters, returning the `$n` placeholder of each. */
class Params {
  readonly values: unknown[] = [];
  add(value: unknown, type: 'text' | 'timestamptz'): string {
    this.values.push(value);
    return `$${this.values.length}::${type}`;
  }
}

/** Characters a text array element must escape (backslash-escaped inside its double quotes). */
const ARRAY_ELEMENT_ESCAPES = /["\\]/;

/**
 * A PostgreSQL array literal of `values` (`{"a","b"}`), as `pg` would send a `text[]` parameter,
 * built in one pass: `pg` escapes each element with two regular-expression replacements (a
 * thousand long keys per batch), where keys almost never hold a character to escape.
 */
export function textArrayLiteral(values: readonly string[]): string {
  let out = '{';
  for (let i = 0; i < values.length; i++) {
    const v = values[i] as string;
    out += `${i === 0 ? '' : ','}"${ARRAY_ELEMENT_ESCAPES.test(v) ? v.replace(/["\\]/g, '\\$&') : v}"`;
  }
  return `${out}}`;
}

/** A PostgreSQL array literal of integers (`{1,2}`). */
export function integerArrayLiteral(values: readonly number[]): string {
  return `{${values.join(',')}}`;
}

/** The items `include` picks, with their positions in `items`, sorted by key (the order rows are locked in). */
function sortByKey(
  items: readonly StoreItem<StorageLocation>[],
  include: (item: StoreItem<StorageLocation>, index: number) => boolean,
): { item: StoreItem<StorageLocation>; index: number }[] {
  const picked: { item: StoreItem<StorageLocation>; index: number }[] = [];
  items.forEach((item, index) => {
    if (include(item, index)) picked.push({ item, index });
  });
  return picked.sort((a, b) =>
    a.item.location.key < b.item.location.key ? -1 : a.item.location.key > b.item.location.key ? 1 : 0,
  );
}

/** The items of at least {@link POSTGRES_PROBE_MIN_BYTES} whose outcome is not settled, sorted by key. */
function largeUnsettled(
  items: readonly StoreItem<StorageLocation>[],
  settled: readonly (PutOutcome | undefined)[],
): { item: StoreItem<StorageLocation>; index: number }[] {
  return sortByKey(items, (item, index) => item.size >= POSTGRES_PROBE_MIN_BYTES && settled[index] === undefined);
}

/** Splits sorted items into runs of at most {@link POSTGRES_MAX_STATEMENT_BYTES} (one item minimum). */
function chunkByBytes<T extends { item: StoreItem<StorageLocation> }>(items: T[]): T[][] {
  const chunks: T[][] = [];
  let current: T[] = [];
  let size = 0;
  for (const item of items) {
    if (current.length > 0 && size + item.item.size > POSTGRES_MAX_STATEMENT_BYTES) {
      chunks.push(current);
      current = [];
      size = 0;
    }
    current.push(item);
    size += item.item.size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}
