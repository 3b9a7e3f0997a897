/**
 * One pipeline per batch, per master node on a Cluster: the round-trip machinery shared by
 * `store`, `retrieve` and the lifecycle operations (`delete`, conditional deletes), the list of
 * master nodes `list` scans, and the commands of a `store` and a `retrieve` batch. Internal to
 * the package.
 *
 * @module
 */
import {
  byteView,
  type PutOutcome,
  type StorageDriverError,
  StorageDriverErrorCode,
  type StoreItem,
} from '@x/storage-driver-core';
import {
  isRedisClusterClient,
  type RedisClientLike,
  type RedisClusterLike,
  type RedisPipelineLike,
  type RedisPipelineResult,
  redisClusterKeySlot,
  sendFromParts,
  withTimeout,
} from './client';
import type { RedisStorageLocation } from './driver';
import { CONFIG_ERRORS, classifyRedisError } from './errors';
import { REDIS_NO_TTL_HORIZON } from './options';

/** Cluster redirections and transient cluster states: retried once through ioredis' own routing. */
const REDIRECT_ERRORS = /^(?:MOVED|ASK|TRYAGAIN|CLUSTERDOWN)\b/;
/** ioredis rejects a pipeline whose keys span nodes (the slot map changed under us). */
const PIPELINE_SPANS_NODES = /slots allocation group|should belong to the same slot/;

/** The `node error` event of an ioredis `Cluster`: a startup node failed while loading the slot map. */
interface NodeErrorEvents {
  on(event: 'node error', listener: (error: unknown) => void): unknown;
  removeListener(event: 'node error', listener: (error: unknown) => void): unknown;
}

/** How the batches report errors: the driver's classification, with its name on every error. */
export interface BatchErrors {
  /** Classifies a Redis reply error or a client error (of the entry with Redis key `key`). */
  classify(error: unknown, kind: string, key?: string): StorageDriverError;
  /** A reply of the wrong shape (retryable `E_BACKEND`). */
  unexpected(message: string): StorageDriverError;
}

/** What the store, retrieve and lifecycle batches need from the driver. */
export interface RedisBackend extends BatchErrors {
  /** The driver's client (`Redis` or `Cluster`). */
  readonly client: RedisClientLike;
  /** `{keyPrefix}:`. */
  readonly keyStart: string;
  /** Expiry every `store` sets: `ttl`, or {@link REDIS_NO_TTL_HORIZON}. */
  readonly horizon: number;
  /** The driver's `ttl`: with one, a store never shortens a longer expiry (`PEXPIRE … GT`). */
  readonly ttl: number | undefined;
  /** One pipeline per batch, per master on a Cluster. */
  readonly batches: NodeBatches;
  /**
   * Whether store batches of small payloads go as one script call (standalone server): set to
   * `false` once the server refused the script and the pipeline worked (no `EVAL` permission,
   * scripting disabled).
   */
  storeScript: boolean;
  /** Runs one backend call bounded by `operationTimeout`. */
  bounded<T>(kind: string, work: () => Promise<T>): Promise<T>;
  /** The location of a Redis key under `keyStart`, or `undefined` if it is not a payload key. */
  parse(redisKey: string): RedisStorageLocation | undefined;
  /** The driver's error factory (adds its name). */
  createError(
    code: StorageDriverErrorCode,
    message: string,
    options: { key?: string | undefined; cause?: unknown; retryable?: boolean },
  ): StorageDriverError;
  /** The driver's clock (the base's `clock` option), ms since the epoch. */
  now(): number;
}

/** What {@link createRedisBackend} takes from the driver. */
export interface RedisBackendOptions {
  readonly client: RedisClientLike;
  /** `{keyPrefix}:`. */
  readonly keyStart: string;
  readonly ttl: number | undefined;
  readonly operationTimeout: number;
  /** The driver's error factory (adds its name). */
  createError: RedisBackend['createError'];
  /** The driver's clock. */
  now(): number;
  /** The location of a payload key (throws for anything else): the driver's `_parseClaim`. */
  parseKey(redisKey: string): RedisStorageLocation;
}

/**
 * The driver's backend: its client and key layout, errors classified by `classifyRedisError`
 * (never carrying a credential), and every call bounded by `operationTimeout` with a retryable
 * `E_BACKEND` (the base class already races the caller's signal and rejects calls once closed).
 */
export function createRedisBackend(o: RedisBackendOptions): RedisBackend {
  const { client, createError } = o;
  const errors: BatchErrors = {
    classify: (error, kind, key) => classifyRedisError(error, kind, key, { client, createError }),
    unexpected: (message) => createError(StorageDriverErrorCode.BACKEND, message, { retryable: true }),
  };
  return {
    ...errors,
    client,
    keyStart: o.keyStart,
    horizon: o.ttl ?? REDIS_NO_TTL_HORIZON,
    ttl: o.ttl,
    batches: new NodeBatches(client, errors),
    storeScript: true,
    bounded: (kind, work) =>
      withTimeout(work, o.operationTimeout, () =>
        createError(
          StorageDriverErrorCode.BACKEND,
          `${kind} timed out after ${o.operationTimeout} ms (Redis connection status: ${client.status})`,
          { retryable: true },
        ),
      ),
    parse: (key) => {
      try {
        return o.parseKey(key);
      } catch {
        return undefined; // not a payload key of this prefix
      }
    },
    createError,
    now: () => o.now(),
  };
}

/** Whether `error` is a Redis Cluster redirection or transient cluster state. */
function isRedirect(error: Error): boolean {
  return REDIRECT_ERRORS.test(error.message);
}

/** Per-command errors of one entry's replies; the first error, if any. */
function firstError(replies: RedisPipelineResult): Error | undefined {
  for (const [error] of replies) if (error) return error;
  return undefined;
}

/** Sends batches over one client (a `Redis`, or a `Cluster` grouped per master node). */
export class NodeBatches {
  /** The one in-flight wait for a Cluster's first slot map, shared by every concurrent call. */
  #slotsLoading: Promise<void> | undefined;

  readonly #client: RedisClientLike;
  readonly #errors: BatchErrors;

  constructor(client: RedisClientLike, errors: BatchErrors) {
    this.#client = client;
    this.#errors = errors;
  }

  /**
   * Sends `entries` in one pipeline (standalone), or one pipeline per master node in parallel
   * (Cluster), `perEntry` commands each; resolves to each entry's results. Entries whose commands
   * were redirected (`MOVED`/`ASK`/`TRYAGAIN`/`CLUSTERDOWN`) are retried once with `single`.
   *
   * An entry whose command failed otherwise makes the whole call throw (classified), unless
   * `failed` is given: then its error goes there (by entry index) and the other entries carry on.
   */
  async run<E>(
    entries: readonly E[],
    keyOf: (entry: E) => string,
    add: (pipeline: RedisPipelineLike, entry: E) => void,
    perEntry: number,
    single: (entry: E) => Promise<unknown[]>,
    failed?: Map<number, Error>,
  ): Promise<unknown[][]> {
    const results = new Array<unknown[]>(entries.length);
    const client = this.#client;
    const group = { entries, keyOf, add, perEntry, results, failed };
    if (!isRedisClusterClient(client)) {
      await this.#send(
        client,
        entries.map((_, i) => i),
        group,
        [],
      );
      return results;
    }
    const groups = await this.#groupByNode(client, entries, keyOf);
    const redirected: number[] = [];
    await Promise.all([...groups.values()].map((indexes) => this.#send(client, indexes, group, redirected)));
    if (redirected.length > 0) {
      client.refreshSlotsCache();
      await Promise.all(
        redirected.map(async (i) => {
          try {
            results[i] = await single(entries[i] as E);
          } catch (e) {
            if (failed !== undefined && e instanceof Error) failed.set(i, e);
            else throw this.#errors.classify(e, 'cluster command', keyOf(entries[i] as E));
          }
        }),
      );
    }
    return results;
  }

  /**
   * The master nodes to scan: the client itself, or every master of a Cluster (once its slot map
   * is loaded), each as a client of that node alone.
   */
  async masters(): Promise<RedisClientLike[]> {
    const client = this.#client;
    if (!isRedisClusterClient(client)) return [client];
    await this.#slots(client);
    return client.nodes('master');
  }

  /** Waits for a Cluster's slot map (shared by concurrent callers). */
  async #slots(client: RedisClusterLike): Promise<void> {
    if (client.slots.length > 0) return;
    // Concurrent first calls share one wait (and one `node error` listener) instead of adding one
    // each, which would trip Node's MaxListenersExceededWarning past 10 callers.
    this.#slotsLoading ??= waitForSlots(client).finally(() => {
      this.#slotsLoading = undefined;
    });
    await this.#slotsLoading;
  }

  /** Groups entry indexes by the nodes serving their slots (master first), as ioredis does. */
  async #groupByNode<E>(
    client: RedisClusterLike,
    entries: readonly E[],
    keyOf: (entry: E) => string,
  ): Promise<Map<string, number[]>> {
    await this.#slots(client);
    const groups = new Map<string, number[]>();
    for (let i = 0; i < entries.length; i++) {
      const slot = redisClusterKeySlot(keyOf(entries[i] as E));
      const nodes = client.slots[slot];
      const id = nodes && nodes.length > 0 ? nodes.join(';') : `slot:${slot}`;
      let group = groups.get(id);
      if (group === undefined) {
        group = [];
        groups.set(id, group);
      }
      group.push(i);
    }
    return groups;
  }

  async #send<E>(
    client: RedisClientLike,
    indexes: readonly number[],
    group: {
      entries: readonly E[];
      keyOf: (entry: E) => string;
      add: (pipeline: RedisPipelineLike, entry: E) => void;
      perEntry: number;
      results: unknown[][];
      failed: Map<number, Error> | undefined;
    },
    redirected: number[],
  ): Promise<void> {
    const { entries, keyOf, add, perEntry, results, failed } = group;
    const pipeline = client.pipeline();
    for (const i of indexes) add(pipeline, entries[i] as E);
    let replies: RedisPipelineResult | null;
    try {
      replies = await pipeline.exec();
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      if (isRedisClusterClient(client) && PIPELINE_SPANS_NODES.test(message)) {
        redirected.push(...indexes); // the slot map changed between grouping and sending
        return;
      }
      throw e;
    }
    if (!Array.isArray(replies) || replies.length !== indexes.length * perEntry) {
      throw this.#errors.unexpected('Redis pipeline returned an unexpected reply');
    }
    for (const [n, i] of indexes.entries()) {
      const own = replies.slice(n * perEntry, (n + 1) * perEntry);
      const error = firstError(own);
      if (error) {
        if (isRedisClusterClient(client) && isRedirect(error)) redirected.push(i);
        else if (failed !== undefined) failed.set(i, error);
        else throw this.#errors.classify(error, 'command', keyOf(entries[i] as E));
        continue;
      }
      results[i] = own.map(([, value]) => value);
    }
  }
}

/**
 * Waits until a Cluster that has not connected yet has its slot map (an empty pipeline waits for
 * it, sending nothing). When no startup node answers, ioredis rejects with a bare "None of
 * startup nodes is available" and reports why only through `node error` events; a refusal among
 * them (`WRONGPASS`, `NOAUTH`, `NOPERM`) is thrown instead, so that it reads as the permanent
 * configuration error it is rather than as a retryable outage.
 */
async function waitForSlots(client: RedisClusterLike): Promise<void> {
  const events = client as Partial<NodeErrorEvents>;
  let refusal: Error | undefined;
  const onNodeError = (error: unknown) => {
    if (error instanceof Error && CONFIG_ERRORS.test(error.message)) refusal = error;
  };
  const listening = typeof events.on === 'function' && typeof events.removeListener === 'function';
  if (listening) events.on?.('node error', onNodeError);
  try {
    await client.pipeline().exec();
  } catch (e) {
    throw refusal ?? e;
  } finally {
    if (listening) events.removeListener?.('node error', onNodeError);
  }
}

/**
 * A `store` batch: per item, `PEXPIRE key H GT` then `SET key value NX PX H` (H: the horizon;
 * without a `ttl`, `PEXPIRE` without `GT`), in one pipeline per batch, per master on a Cluster.
 * On a standalone server a batch of several items totalling at most 4 MiB sends the same commands
 * as one `EVAL` of a script instead (one command to build and parse instead of two per item);
 * a server that refuses the script gets the pipeline. Objects of at least 1 MiB are sent beside it
 * as commands of their own ({@link storeLarge}), in the same round trip. Resolves to one outcome
 * per item: `existed` where `SET NX` answered nil (the key was already there: a dedup hit),
 * `written` where it answered `OK`.
 */
export async function storeBatch(
  b: RedisBackend,
  items: readonly StoreItem<RedisStorageLocation>[],
): Promise<PutOutcome[]> {
  const small: number[] = [];
  const large: number[] = [];
  for (const [i, item] of items.entries()) (item.size < REDIS_DIRECT_STORE_MIN_BYTES ? small : large).push(i);
  if (large.length === 0) return storeSmall(b, items);
  // Large objects go as commands of their own, sent without waiting (the same round trip), not in
  // the pipeline: ioredis copies a pipeline's commands into one more buffer after each command's.
  const outcomes = new Array<PutOutcome>(items.length);
  await Promise.all([
    small.length === 0
      ? undefined
      : storeSmall(
          b,
          small.map((i) => items[i] as Item),
        ).then((own) => {
          for (const [n, i] of small.entries()) outcomes[i] = own[n] as PutOutcome;
        }),
    ...large.map(async (i) => {
      outcomes[i] = await storeLarge(b, items[i] as Item);
    }),
  ]);
  return outcomes;
}

type Item = StoreItem<RedisStorageLocation>;

/**
 * Objects (serialized payloads) of at least this many bytes (1 MiB) are stored each with its own
 * `PEXPIRE` and `SET … NX`, sent beside the batch's pipeline or script in the same round trip,
 * with the value written to the socket from the payload's own pieces (no joined copy, no copy in
 * ioredis' write buffers) when the client is ioredis'.
 */
export const REDIS_DIRECT_STORE_MIN_BYTES = 1024 * 1024;

/**
 * One large object: `PEXPIRE` then `SET … NX`, the pipeline's commands, sent as commands of their
 * own (in order, without waiting between them). ioredis copies a command into one write buffer
 * (the serialized payload once more), and a pipeline's commands into one more; the `SET` is
 * therefore sent with {@link sendFromParts}, which hands the socket the item's parts (core's
 * header, the caller's data, the trailer) as they are. Peak RSS storing then retrieving 50 MiB:
 * 5.95× the payload in the pipeline, 4.93× as commands of their own, 2.83× from the parts (the
 * rest is ioredis' reply: the received chunks and their concatenation). A client that is not
 * ioredis' gets the joined bytes through `call()`. (A script that `APPEND`s the data to the
 * header costs the server two more copies of the value: store of 50 MiB 87 → 255 ms.)
 */
async function storeLarge(b: RedisBackend, item: Item): Promise<PutOutcome> {
  const key = item.location.key;
  const extend = b.ttl === undefined ? [] : ['GT'];
  try {
    const [, set] = await Promise.all([
      b.client.call('pexpire', key, b.horizon, ...extend),
      sendFromParts(b.client, 'set', key, item, ['PX', b.horizon, 'NX']) ??
        b.client.call('set', key, byteView(item.bytes), 'PX', b.horizon, 'NX'),
    ]);
    return set === null ? 'existed' : 'written';
  } catch (e) {
    throw b.classify(e, 'command', key);
  }
}

/** {@link storeBatch} of objects under {@link REDIS_DIRECT_STORE_MIN_BYTES}: one script call or one pipeline. */
async function storeSmall(b: RedisBackend, items: readonly Item[]): Promise<PutOutcome[]> {
  let scripted = false;
  if (
    b.storeScript &&
    items.length > 1 &&
    !isRedisClusterClient(b.client) &&
    batchBytes(items) <= STORE_SCRIPT_MAX_BYTES
  ) {
    try {
      return await storeScripted(b, items);
    } catch (e) {
      // A refusal of the script (no EVAL permission, scripting disabled, an old server, OOM…):
      // the pipeline below runs the same commands, and its errors are the ones callers know.
      if (!(e instanceof Error && e.name === 'ReplyError')) throw e;
      scripted = true;
    }
  }
  const outcomes = await storePipelined(b, items);
  // The pipeline worked where the script did not: the script is what the server refuses.
  if (scripted) b.storeScript = false;
  return outcomes;
}

/** Most bytes of a store batch sent as one script call (Lua copies each argument once more on the server). */
const STORE_SCRIPT_MAX_BYTES = 4 * 1024 * 1024;

/**
 * The commands of {@link storePipelined}, run by the server for every key of the batch in one
 * call: ioredis builds and parses one command instead of two per payload (a third of the client
 * CPU of a batch of 1,000 × 1 KiB), and the two commands of a key run atomically. `ARGV[1]`: the
 * horizon; `ARGV[2]`: `GT` or empty; `ARGV[2 + i]`: the bytes of `KEYS[i]`. Replies 1 (written) or
 * 0 (existed) per key.
 */
const STORE_SCRIPT = [
  'local h = ARGV[1]',
  'local out = {}',
  'for i, key in ipairs(KEYS) do',
  "  if ARGV[2] == 'GT' then redis.call('pexpire', key, h, 'GT') else redis.call('pexpire', key, h) end",
  "  out[i] = redis.call('set', key, ARGV[i + 2], 'PX', h, 'NX') and 1 or 0",
  'end',
  'return out',
].join('\n');

function batchBytes(items: readonly StoreItem<RedisStorageLocation>[]): number {
  let n = 0;
  for (const item of items) n += item.size;
  return n;
}

/** A store batch as one `EVAL` of {@link STORE_SCRIPT} (standalone server, small payloads). */
async function storeScripted(
  b: RedisBackend,
  items: readonly StoreItem<RedisStorageLocation>[],
): Promise<PutOutcome[]> {
  const args: (string | number | Buffer)[] = [STORE_SCRIPT, items.length];
  for (const item of items) args.push(item.location.key);
  args.push(b.horizon, b.ttl === undefined ? '' : 'GT');
  for (const item of items) args.push(byteView(item.bytes));
  const reply = await b.client.call('eval', ...args);
  if (!Array.isArray(reply) || reply.length !== items.length) {
    throw b.unexpected('Redis store script returned an unexpected reply');
  }
  return reply.map((r) => (r === 0 ? 'existed' : 'written'));
}

/**
 * The pipelined store: per item `PEXPIRE` then `SET … NX` (see {@link storeBatch}); every batch on a
 * Cluster, batches of large payloads, and servers that refuse the script.
 */
async function storePipelined(
  b: RedisBackend,
  items: readonly StoreItem<RedisStorageLocation>[],
): Promise<PutOutcome[]> {
  const horizon = b.horizon;
  // With a ttl: never shorten a longer expiry (GT). Without: every key gets the horizon, keys of
  // other tools without any expiry included, so a dedup hit dates them too.
  const extend = b.ttl === undefined ? [] : ['GT'];
  const queue = (p: RedisPipelineLike | RedisClientLike, item: StoreItem<RedisStorageLocation>) => {
    const key = item.location.key;
    const value = byteView(item.bytes);
    return [p.call('pexpire', key, horizon, ...extend), p.call('set', key, value, 'PX', horizon, 'NX')];
  };
  const replies = await b.batches.run(
    items,
    (item) => item.location.key,
    (pipeline, item) => {
      queue(pipeline, item);
    },
    2,
    async (item) => {
      // Redirected during a resharding: through ioredis' routing, sent in order. Promise.all, not
      // two awaits: if the first command fails, the second's rejection must not go unhandled.
      return Promise.all(queue(b.client, item) as Promise<unknown>[]);
    },
  );
  // The reply of SET … NX: OK when it wrote, nil when the key existed.
  return replies.map((own) => (own?.[1] === null ? 'existed' : 'written'));
}

/**
 * A `retrieve` batch: one `MGET`, or one pipeline of `GET`s per master on a Cluster; `undefined`
 * where a key does not exist.
 */
export async function retrieveBatch(
  b: RedisBackend,
  locations: readonly RedisStorageLocation[],
): Promise<(Uint8Array | undefined)[]> {
  const values = await readValues(b, locations);
  return values.map((value, i) => {
    if (value === null || value === undefined) return undefined;
    if (!Buffer.isBuffer(value)) {
      const key = (locations[i] as RedisStorageLocation).key;
      throw b.createError(StorageDriverErrorCode.INTEGRITY, `Value at ${key} is not a string`, { key });
    }
    // Hand out a plain Uint8Array view, not the Buffer ioredis returned (no copy; core copies if two claims share it).
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  });
}

/** The raw replies for `locations`, in order: `MGET` on one server, `GET`s per master on a Cluster. */
async function readValues(b: RedisBackend, locations: readonly RedisStorageLocation[]): Promise<unknown[]> {
  if (!isRedisClusterClient(b.client)) {
    const reply = await b.client.callBuffer('mget', ...locations.map((l) => l.key));
    if (!Array.isArray(reply) || reply.length !== locations.length) {
      throw b.createError(StorageDriverErrorCode.BACKEND, 'MGET returned an unexpected reply', { retryable: false });
    }
    return reply as unknown[];
  }
  const replies = await b.batches.run(
    locations,
    (l) => l.key,
    (pipeline, l) => {
      pipeline.callBuffer('get', l.key);
    },
    1,
    async (l) => [await b.client.callBuffer('get', l.key)],
  );
  return replies.map((r) => r[0]);
}
