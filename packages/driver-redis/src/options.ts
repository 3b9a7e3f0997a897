/**
 * Options of the Redis driver: their types, the defaults and limits, and validation.
 *
 * @module
 */
import { type ContentAddressedStorageDriverOptions, configError, requireOptionsObject } from '@x/storage-driver-core';
import type { RedisClientLike } from './client';

/**
 * `type` of {@link RedisStorageDriver}: `redis`, what Temporal's Python Redis sample driver reports
 * (drivers that read each other's claims in different languages share a type).
 */
export const REDIS_DRIVER_TYPE = 'redis';
/** Default `name` of {@link RedisStorageDriver}. */
export const REDIS_DRIVER_DEFAULT_NAME = 'redis';
/** Default `keyPrefix`: the layout of Temporal's Python Redis sample driver. */
export const REDIS_DEFAULT_KEY_PREFIX = 'temporalio:payloads';
/** Default `operationTimeout`: 10 seconds per `store`/`retrieve` call (and `list` page, `delete` batch). */
export const REDIS_DEFAULT_OPERATION_TIMEOUT = 10_000;
/** Largest accepted `maxPayloadSize`: Redis' default `proto-max-bulk-len` (512 MiB). */
export const REDIS_MAX_VALUE_SIZE = 512 * 1024 * 1024;
/** Longest accepted `keyPrefix`, in characters. */
export const REDIS_MAX_KEY_PREFIX_LENGTH = 1024;
/**
 * Expiry, in milliseconds, of a payload stored by a driver without `ttl`: 100 years (36,525 days)
 * after its last reference. It gives every payload an expiry from which its last-referenced time
 * can be derived, as a `ttl` does; in practice it never expires.
 */
export const REDIS_NO_TTL_HORIZON = 36_525 * 24 * 60 * 60 * 1000;

/** Options of {@link RedisStorageDriver}. */
export interface RedisStorageDriverOptions extends ContentAddressedStorageDriverOptions {
  /**
   * An ioredis `Redis` or `Cluster` instance (ioredis 5 or 6), or anything structurally alike.
   * Required (no default). The driver never closes an injected client: its lifecycle stays with
   * the caller.
   */
  client: RedisClientLike;
  /**
   * Prefix of every Redis key: a payload lives at `{keyPrefix}:{storage key with "/" replaced by
   * ":"}`. Non-empty, at most 1024 characters, no control characters, must not end with `:`.
   * Claims carry the full Redis key; a claim whose key does not start with `{keyPrefix}:` is
   * rejected with `E_INVALID_CLAIM`.
   * @default 'temporalio:payloads' ({@link REDIS_DEFAULT_KEY_PREFIX})
   */
  keyPrefix?: string;
  /**
   * Per-instance routing key written into workflow history; override it to run several instances
   * side by side.
   * @default 'redis' ({@link REDIS_DRIVER_DEFAULT_NAME})
   */
  name?: string;
  /**
   * Largest serialized payload accepted, in bytes, checked for the whole batch before any write.
   * At most 536870912 (512 MiB, Redis' largest string).
   * @default 52428800 (50 MiB)
   */
  maxPayloadSize?: number;
  /**
   * Lifetime of a stored payload after its last reference, in milliseconds (`PX`): Redis removes
   * it by itself once no `store` has returned a claim for it for that long. A store of a payload
   * that already exists extends its expiry to at least `ttl` from now and never shortens it; the
   * payload's last-referenced time is derived from its remaining expiry (`ttl − PTTL`). Choose it
   * longer than your longest workflow run plus the namespace retention period. A positive integer.
   * @default undefined — payloads then expire 100 years ({@link REDIS_NO_TTL_HORIZON}) after their
   *   last reference, which keeps their last-referenced time known for `deleteExpired`.
   */
  ttl?: number;
  /**
   * Upper bound, in milliseconds, on one `store` or `retrieve` call against Redis (and on each
   * `list` page and `delete` batch), including time spent waiting in ioredis' offline queue while
   * the server is unreachable. When it elapses the call rejects with `E_BACKEND` (retryable).
   * Raise it for very large batches over slow links. A positive integer, at most 2147483647.
   * @default 10000 ({@link REDIS_DEFAULT_OPERATION_TIMEOUT})
   */
  operationTimeout?: number;
}

/** Options of {@link RedisStorageDriver.fromUrl} and {@link RedisStorageDriver.fromClusterNodes}. */
export interface RedisStorageDriverConnectOptions extends Omit<RedisStorageDriverOptions, 'client'> {
  /**
   * Options passed as they are to the ioredis constructor (`RedisOptions` for `fromUrl`,
   * `ClusterOptions` for `fromClusterNodes`); the driver adds none of its own.
   * @default {}
   */
  clientOptions?: Readonly<Record<string, unknown>>;
}

/** A cluster startup node: `'host:port'`, a port number, or `{ host, port }`. */
export type RedisClusterNode = string | number | { readonly host: string; readonly port: number };

/** Marks options built by the static constructors (the driver then owns and closes the client). */
export const OWNED = Symbol('RedisStorageDriver.ownsClient');

/** The options a driver runs with, validated, defaults applied. */
export interface ResolvedRedisOptions extends RedisStorageDriverOptions {
  readonly keyPrefix: string;
  readonly operationTimeout: number;
  /** Whether the driver created the client (`fromUrl`, `fromClusterNodes`) and closes it. */
  readonly ownsClient: boolean;
}

/**
 * `keyPrefix`, validated.
 *
 * @throws StorageDriverError `E_CONFIG`
 */
export function validateKeyPrefix(value: unknown): string {
  if (value === undefined) return REDIS_DEFAULT_KEY_PREFIX;
  if (typeof value !== 'string' || value.length === 0 || value.length > REDIS_MAX_KEY_PREFIX_LENGTH) {
    throw configError(`keyPrefix must be a non-empty string of at most ${REDIS_MAX_KEY_PREFIX_LENGTH} characters`);
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
  if (/[\u0000-\u001f\u007f]/.test(value)) throw configError('keyPrefix must not contain control characters');
  if (value.endsWith(':')) throw configError('keyPrefix must not end with ":" (the driver adds the separator)');
  return value;
}

function validateOperationTimeout(value: unknown): number {
  if (value === undefined) return REDIS_DEFAULT_OPERATION_TIMEOUT;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0 || value > 2 ** 31 - 1) {
    throw configError(`operationTimeout must be a positive integer number of milliseconds, got ${String(value)}`);
  }
  return value;
}

/**
 * Validates the driver's own options (`client`, `keyPrefix`, `operationTimeout`, the Redis limit
 * on `maxPayloadSize`) and applies their defaults; the base class validates the others.
 *
 * @throws StorageDriverError `E_CONFIG`
 */
export function checkOptions(options: unknown): ResolvedRedisOptions {
  const o = requireOptionsObject<RedisStorageDriverOptions & { [OWNED]?: boolean }>(
    options,
    'RedisStorageDriver options must be an object with a client',
  );
  const client: unknown = o.client;
  if (
    typeof client !== 'object' ||
    client === null ||
    typeof (client as RedisClientLike).pipeline !== 'function' ||
    typeof (client as RedisClientLike).callBuffer !== 'function'
  ) {
    throw configError('client must be an ioredis Redis or Cluster instance');
  }
  const maxPayloadSize: unknown = o.maxPayloadSize;
  if (typeof maxPayloadSize === 'number' && maxPayloadSize > REDIS_MAX_VALUE_SIZE) {
    throw configError(`maxPayloadSize must be at most ${REDIS_MAX_VALUE_SIZE} bytes (the largest Redis string)`);
  }
  return {
    ...o,
    keyPrefix: validateKeyPrefix(o.keyPrefix),
    operationTimeout: validateOperationTimeout(o.operationTimeout),
    ownsClient: o[OWNED] === true,
  };
}
