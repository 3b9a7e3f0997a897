/**
 * The Redis / Redis Cluster storage driver: the class and its hooks. The commands live in
 * `batches.ts` (store, retrieve, per-node pipelines) and `lifecycle.ts` (list, delete), the
 * clients in `client.ts`, the options in `options.ts`, error classification in `errors.ts`.
 *
 * @module
 */
import {
  type BackendOperation,
  ContentAddressedStorageDriver,
  configError,
  type DeleteEntry,
  type DeleteOutcome,
  isSha256Hex,
  type ListedObject,
  type ListQuery,
  type PutOutcome,
  parseStorageKey,
  requireClaimField,
  type StorageDriverCapabilities,
  type StorageDriverError,
  StorageDriverErrorCode,
  type StorageLocation,
  type StoreItem,
} from '@x/storage-driver-core';
import { createRedisBackend, type RedisBackend, retrieveBatch, storeBatch } from './batches';
import {
  closeOwnedClient,
  type OwnedRedisClient,
  openClusterClient,
  openRedisClient,
  type RedisClientLike,
} from './client';
import { deleteRedisObjects, listRedisObjects } from './lifecycle';
import {
  checkOptions,
  OWNED,
  REDIS_DRIVER_DEFAULT_NAME,
  REDIS_DRIVER_TYPE,
  REDIS_NO_TTL_HORIZON,
  type RedisClusterNode,
  type RedisStorageDriverConnectOptions,
  type RedisStorageDriverOptions,
  validateKeyPrefix,
} from './options';

/** Most claim-key prefixes remembered as valid (see `RedisStorageDriver._parseClaim`). */
const MAX_VALID_PREFIXES = 1024;

/** Where one payload lives in Redis. */
export interface RedisStorageLocation extends StorageLocation {
  /** The full Redis key, as written into the claim: `{keyPrefix}:{storage key with ":"}`. */
  readonly key: string;
  /** The core storage key (`v0/...`, `/`-separated). */
  readonly storageKey: string;
}

/**
 * Stores payloads in Redis or Redis Cluster (DESIGN §5, type `redis`): a payload lives at
 * `{keyPrefix}:{storage key with "/" replaced by ":"}` as its serialized `Payload` bytes. One round
 * trip per batch (`store`: `PEXPIRE … GT` + `SET … NX PX` per payload, `retrieve`: `MGET`; one
 * pipeline per master node on a Cluster), an expiry that a store extends and never shortens and
 * from which the lifecycle (DESIGN §8) derives last-referenced times, and every call bounded by
 * `operationTimeout`, so a call made while Redis is down fails instead of waiting in ioredis'
 * offline queue. The package README has the details.
 *
 * Errors (all `StorageDriverError`): the constructor throws `E_CONFIG` for invalid options;
 * `store` throws `E_TOO_LARGE`, `E_ABORTED`, `E_BACKEND` (connection lost, timeout, `OOM`,
 * `READONLY`, ... — retryable), `E_CONFIG` (`NOAUTH`/`WRONGPASS`/`NOPERM`, a plain `Redis`
 * client pointed at a cluster node, or a call after `close()`); `retrieve` additionally throws
 * `E_INVALID_CLAIM`, `E_NOT_FOUND` (never stored, expired, evicted or deleted; the message names
 * the key), `E_INTEGRITY`; `list`, `delete` and `deleteExpired` throw `E_ABORTED`, `E_BACKEND`,
 * `E_CONFIG` (and `delete` `E_INVALID_CLAIM` for a target that is not one of this driver's keys).
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis';
 * const driver = new RedisStorageDriver({ client: new Redis('redis://127.0.0.1:6379'), ttl: 30 * 24 * 3600_000 });
 * const dataConverter = { externalStorage: new ExternalStorage({ drivers: [driver] }) };
 * ```
 */
export class RedisStorageDriver extends ContentAddressedStorageDriver<RedisStorageLocation> {
  /** Per-implementation identifier: `redis` (as Temporal's Python Redis sample). */
  readonly type = REDIS_DRIVER_TYPE;
  /** The ioredis client (injected, or created by `fromUrl`/`fromClusterNodes`). */
  readonly client: RedisClientLike;
  /** Prefix of every Redis key (without the trailing `:`). */
  readonly keyPrefix: string;
  /** Upper bound on one backend call (`store`, `retrieve`, a `list` page, a `delete` batch), in milliseconds. */
  readonly operationTimeout: number;
  /** Whether the driver created the client and closes it in `close()`. */
  readonly ownsClient: boolean;

  /** `{keyPrefix}:`, the start of every payload key. */
  readonly #keyStart: string;
  /** What the batch and lifecycle modules need from this driver. */
  readonly #backend: RedisBackend;
  /**
   * The last storage-key prefix `_locate` converted (everything up to the digest) and its Redis
   * spelling: a batch's keys share it, so each key costs one concatenation.
   */
  #located: { storage: string; redis: string } | undefined;
  /**
   * Redis-key prefixes (everything up to the digest) of claims that parsed as valid: a claim with
   * one of them and a well-formed digest is valid, so a batch's keys are parsed in full once.
   * Bounded (cleared when full).
   */
  readonly #validPrefixes = new Map<string, string>();

  /**
   * @throws StorageDriverError `E_CONFIG` if `options` is not an object, `client` is missing or
   *   not an ioredis client, or `keyPrefix`, `name`, `maxPayloadSize`, `ttl` or `operationTimeout`
   *   is invalid. Does no I/O.
   */
  constructor(options: RedisStorageDriverOptions) {
    const resolved = checkOptions(options);
    super(REDIS_DRIVER_DEFAULT_NAME, resolved);
    this.client = resolved.client;
    this.keyPrefix = resolved.keyPrefix;
    this.operationTimeout = resolved.operationTimeout;
    this.ownsClient = resolved.ownsClient;
    this.#keyStart = `${this.keyPrefix}:`;
    this.#backend = createRedisBackend({
      client: this.client,
      keyStart: this.#keyStart,
      ttl: this.ttl,
      operationTimeout: this.operationTimeout,
      createError: (code, message, opts) => this.createError(code, message, opts),
      now: () => this.now(),
      parseKey: (key) => this._parseClaim({ key }, 0),
    });
  }

  /**
   * Creates a driver over a new ioredis `Redis` client for `url` (`redis://[[user]:password@]host:port[/db]`
   * or `rediss://...` for TLS). The driver owns that client: call {@link RedisStorageDriver.close}
   * when done. ioredis is loaded at runtime (a peer dependency).
   *
   * @throws StorageDriverError `E_CONFIG` if `url` is not a non-empty string, ioredis is not
   *   installed, or an option is invalid (the URL is never echoed: it may hold a password).
   */
  static fromUrl(url: string, options: RedisStorageDriverConnectOptions = {}): RedisStorageDriver {
    if (typeof url !== 'string' || url.length === 0) throw configError('url must be a non-empty string');
    const { clientOptions, ...driverOptions } = options;
    validateKeyPrefix(driverOptions.keyPrefix); // fail before opening a connection
    return RedisStorageDriver.#owning(openRedisClient(url, clientOptions), driverOptions);
  }

  /**
   * Creates a driver over a new ioredis `Cluster` client for the given startup nodes. The driver
   * owns that client: call {@link RedisStorageDriver.close} when done.
   *
   * @throws StorageDriverError `E_CONFIG` if `nodes` is empty, ioredis is not installed, or an
   *   option is invalid.
   */
  static fromClusterNodes(
    nodes: readonly RedisClusterNode[],
    options: RedisStorageDriverConnectOptions = {},
  ): RedisStorageDriver {
    if (!Array.isArray(nodes) || nodes.length === 0) throw configError('nodes must be a non-empty array');
    const { clientOptions, ...driverOptions } = options;
    validateKeyPrefix(driverOptions.keyPrefix);
    return RedisStorageDriver.#owning(openClusterClient(nodes, clientOptions), driverOptions);
  }

  /** Maps a content-addressed key to its Redis key under the prefix. */
  protected override _locate(storageKey: string): RedisStorageLocation {
    const cut = storageKey.lastIndexOf('/') + 1;
    const prefix = storageKey.slice(0, cut);
    let located = this.#located;
    if (located === undefined || located.storage !== prefix) {
      located = { storage: prefix, redis: `${this.#keyStart}${prefix.replaceAll('/', ':')}` };
      this.#located = located;
    }
    return { key: located.redis + storageKey.slice(cut), storageKey };
  }

  /**
   * Validates an (untrusted) claim: `key` is required and must be `{keyPrefix}:` followed by a
   * well-formed storage key whose `/` separators are written as `:`. Other SDKs' spellings and
   * shapes are accepted: a raw `~` and escaped `!*'()` (Python's `urllib.parse.quote`), keys
   * without `ns:{namespace}` (the Python Redis sample, empty namespace) and the namespace digest
   * key `v0:ns:{ns}:d:sha256:{hex}`; another prefix, a raw `/`, or any character the key grammar
   * excludes is not.
   *
   * @throws StorageDriverError `E_INVALID_CLAIM`
   */
  protected override _parseClaim(claimData: Record<string, string>, index: number): RedisStorageLocation {
    const key = requireClaimField(claimData, 'key', index);
    // A prefix already validated plus a well-formed digest: the same verdict as a full parse.
    const cut = key.lastIndexOf(':') + 1;
    const known = this.#validPrefixes.get(key.slice(0, cut));
    if (known !== undefined && isSha256Hex(key.slice(cut))) return { key, storageKey: known + key.slice(cut) };
    const invalid = (why: string) =>
      this.createError(StorageDriverErrorCode.INVALID_CLAIM, `Invalid Redis key in claim ${index}: ${why}`, { index });
    if (!key.startsWith(this.#keyStart)) throw invalid(`must start with the driver's prefix "${this.#keyStart}"`);
    const rest = key.slice(this.#keyStart.length);
    if (rest.includes('/')) throw invalid('segments must be separated by ":"');
    const storageKey = rest.split(':').join('/');
    parseStorageKey(storageKey, { canonical: false });
    if (this.#validPrefixes.size >= MAX_VALID_PREFIXES) this.#validPrefixes.clear();
    this.#validPrefixes.set(key.slice(0, cut), storageKey.slice(0, storageKey.length - (key.length - cut)));
    return { key, storageKey };
  }

  /**
   * No length limit: keys are written in full whatever their length, as Temporal's Python Redis
   * sample does (it has no long-key fallback), so both store one object for the same payload.
   */
  protected override _maxKeyLength(): number {
    return Number.POSITIVE_INFINITY;
  }

  /**
   * One pipeline per batch (per master node on a Cluster): `PEXPIRE key ttl GT` then
   * `SET key value NX PX ttl` for each item; without a `ttl`, `PEXPIRE key H` then
   * `SET key value NX PX H`, H being {@link REDIS_NO_TTL_HORIZON} (100 years). Either way every
   * store, first write or dedup hit, leaves the key with at least its horizon left, from which
   * `list` derives its last-referenced time. Resolves to one outcome per item: `existed` where
   * `SET NX` answered nil (a dedup hit, reported to instrumentation), else `written`.
   */
  protected override async _putIfAbsent(
    items: StoreItem<RedisStorageLocation>[],
    op: BackendOperation,
  ): Promise<PutOutcome[]> {
    return this.#backend.bounded(op.kind, () => storeBatch(this.#backend, items));
  }

  /** One `MGET` per batch, or one pipeline of `GET`s per master node on a Cluster. */
  protected override async _get(
    locations: RedisStorageLocation[],
    op: BackendOperation,
  ): Promise<(Uint8Array | undefined)[]> {
    return this.#backend.bounded(op.kind, () => retrieveBatch(this.#backend, locations));
  }

  /**
   * Classifies Redis and ioredis errors (see `classifyRedisError`): authentication/permission
   * refusals and a cluster node behind a plain client are `E_CONFIG`; everything else (connection
   * lost, `OOM`, `READONLY`, `LOADING`, ...) is `E_BACKEND`, retryable. Never carries a credential.
   */
  protected override _wrapError(error: unknown, op: BackendOperation): StorageDriverError {
    return this.#backend.classify(error, op.kind);
  }

  /**
   * Lifecycle capabilities: last-referenced times for every key with an expiry (`partial`: keys
   * other tools wrote without one have none), native expiry with a `ttl`, one pipeline per batch.
   */
  protected override _capabilities(): Partial<StorageDriverCapabilities> {
    return { lastReferenced: 'partial', expiry: this.ttl === undefined ? 'none' : 'native', batchedWrites: true };
  }

  /**
   * `SCAN MATCH {keyPrefix}:v0:… COUNT 1000` on every master (the one server otherwise), each page
   * followed by one pipeline of `TIME` + `PTTL` + `STRLEN` per key; last-referenced times are
   * derived from the remaining expiry on the server's clock.
   */
  protected override _list(query: ListQuery): AsyncIterable<ListedObject<RedisStorageLocation>> {
    return listRedisObjects(this.#backend, query);
  }

  /**
   * Pipelined `UNLINK` per node; with `referencedBefore`, a Lua script per key (`EVALSHA`, `EVAL`
   * on `NOSCRIPT`) that unlinks the key only if its age, read on the server, is still over the
   * cutoff's.
   */
  protected override _delete(
    entries: DeleteEntry<RedisStorageLocation>[],
    options: { readonly referencedBefore: Date | undefined },
    op: BackendOperation,
  ): Promise<DeleteOutcome[]> {
    return this.#backend.bounded(op.kind, () => deleteRedisObjects(this.#backend, entries, options.referencedBefore));
  }

  /**
   * Location of a bare storage key given to `delete`: its Redis key under `keyPrefix`.
   *
   * @throws StorageDriverError `E_INVALID_CLAIM` if `key` is not a well-formed storage key
   */
  protected override _locateKey(key: string, index: number): RedisStorageLocation {
    // The grammar has no ":", so "/" → ":" names exactly this key and parses back to it.
    parseStorageKey(key, { canonical: false });
    return this._parseClaim({ key: `${this.#keyStart}${key.split('/').join(':')}` }, index);
  }

  /**
   * Releases the client if the driver created it (`fromUrl`/`fromClusterNodes`): `QUIT` and wait
   * for the connection to end, falling back to a hard disconnect after 2 s (at once when the client
   * is not connected, which also cancels a pending reconnection). Never touches an injected client.
   * Run once by `close()`, which makes every later call fail with `E_CONFIG`. Never throws.
   */
  protected override async _close(): Promise<void> {
    if (this.ownsClient) await closeOwnedClient(this.client as OwnedRedisClient);
  }

  /**
   * The Redis key for a core storage key (`v0/...`): `{keyPrefix}:{storageKey with "/" → ":"}`.
   *
   * @throws StorageDriverError `E_INVALID_CLAIM` if `storageKey` is not a well-formed storage key.
   */
  redisKey(storageKey: string): string {
    const parsed = parseStorageKey(storageKey, { canonical: false });
    return `${this.#keyStart}${parsed.segments.join(':')}`;
  }

  /** Creates a driver over a client it created, which it then owns (and closes in `close()`). */
  static #owning(client: OwnedRedisClient, options: Omit<RedisStorageDriverOptions, 'client'>): RedisStorageDriver {
    // Connection errors surface through the calls that hit them (as E_BACKEND); without a
    // listener ioredis would also print every reconnect failure as an unhandled error event.
    client.on('error', () => {});
    try {
      return new RedisStorageDriver({ ...options, client, [OWNED]: true } as RedisStorageDriverOptions);
    } catch (e) {
      client.disconnect();
      throw e;
    }
  }
}
