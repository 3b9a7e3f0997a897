/**
 * `@x/storage-driver-redis`: a Redis and Redis Cluster storage driver for Temporal External
 * Storage (claim-check pattern): one round trip per batch (per node on a Cluster), a TTL that is
 * extended and never shortened, integrity checks, bounded calls when the server is down, and the
 * lifecycle contract (last-referenced times from each key's expiry, `list`, `delete`,
 * `deleteExpired`, `close`).
 *
 * @packageDocumentation
 */

export { REDIS_DIRECT_STORE_MIN_BYTES } from './batches';
export {
  isRedisClusterClient,
  REDIS_CLUSTER_SLOTS,
  type RedisClientLike,
  type RedisClusterLike,
  type RedisCommandArgument,
  type RedisPipelineLike,
  type RedisPipelineResult,
  redisClusterKeySlot,
} from './client';
export { RedisStorageDriver, type RedisStorageLocation } from './driver';
export {
  REDIS_DEFAULT_KEY_PREFIX,
  REDIS_DEFAULT_OPERATION_TIMEOUT,
  REDIS_DRIVER_DEFAULT_NAME,
  REDIS_DRIVER_TYPE,
  REDIS_MAX_KEY_PREFIX_LENGTH,
  REDIS_MAX_VALUE_SIZE,
  REDIS_NO_TTL_HORIZON,
  type RedisClusterNode,
  type RedisStorageDriverConnectOptions,
  type RedisStorageDriverOptions,
} from './options';
