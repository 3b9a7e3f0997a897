/**
 * Classification of Redis and ioredis errors into `StorageDriverError` codes, and removal of the
 * credentials ioredis attaches to them.
 *
 * @module
 */
import {
  isStorageDriverError,
  redactSecrets,
  type StorageDriverError,
  StorageDriverErrorCode,
} from '@x/storage-driver-core';
import { isRedisClusterClient, type RedisClientLike } from './client';

/** Redis error prefixes that mean a permanent refusal (fix the configuration). */
export const CONFIG_ERRORS = /^(?:NOAUTH|WRONGPASS|NOPERM|ERR unknown command|ERR syntax error)/;

/** What Redis before 7.0 answers to `PEXPIRE key ms GT` (the option arrived in 7.0): not retryable. */
const OLD_SERVER_ERROR = /^ERR wrong number of arguments for 'pexpire' command/i;

/** Commands whose arguments carry credentials: `AUTH [user] password`, `HELLO 3 AUTH user password`. */
const CREDENTIAL_COMMANDS = new Set(['auth', 'hello']);
/** Error properties ioredis nests errors under (`cause`, `lastNodeError` of a Cluster, `errors`). */
const NESTED_ERROR_KEYS = ['cause', 'lastNodeError', 'previousErrors', 'errors'];
/** How deep nested errors are searched for credentials (as deep as core's `redactSecrets` copies). */
const MAX_DEPTH = 8;

/** The password a client was configured with, if any (`Redis` options, a `Cluster`'s `redisOptions`). */
function clientSecrets(client: RedisClientLike): string[] {
  type Auth = { password?: unknown };
  const options = (client as { options?: Auth & { redisOptions?: Auth } }).options;
  const found = [options?.password, options?.redisOptions?.password];
  return found.filter((s): s is string => typeof s === 'string' && s.length > 0);
}

/**
 * The arguments of a failed `AUTH`/`HELLO … AUTH` command attached to `error` or to any error
 * nested in it. ioredis rejects the commands queued behind a failed handshake with that command's
 * reply error, whose `command.args` hold the password; a Cluster nests such errors as
 * `lastNodeError`.
 */
function handshakeSecrets(error: unknown, found: Set<string>, depth = 0): Set<string> {
  if (!(error instanceof Error) || depth > MAX_DEPTH) return found;
  const command = (error as { command?: { name?: unknown; args?: unknown } }).command;
  const name = typeof command?.name === 'string' ? command.name.toLowerCase() : undefined;
  if (name !== undefined && CREDENTIAL_COMMANDS.has(name) && Array.isArray(command?.args)) {
    const args: unknown[] = command.args;
    // AUTH [username] password; HELLO protover [AUTH username password] [SETNAME name].
    const at = name === 'hello' ? args.findIndex((a) => String(a).toUpperCase() === 'AUTH') : -1;
    const secrets = name === 'auth' ? args : at >= 0 ? args.slice(at + 1, at + 3) : [];
    for (const a of secrets) if (typeof a === 'string' && a.length > 0) found.add(a);
  }
  for (const k of NESTED_ERROR_KEYS) {
    const nested = (error as unknown as Record<string, unknown>)[k];
    for (const n of Array.isArray(nested) ? nested : [nested]) handshakeSecrets(n, found, depth + 1);
  }
  return found;
}

/**
 * Every credential `error` can carry (DESIGN: errors never carry credentials): the password the
 * client was configured with, and the arguments of a failed handshake anywhere in the error. Core's
 * `redactSecrets` then scrubs them from a copy of the error (the original, which ioredis also
 * emits to the application's `error` listeners, is left alone).
 */
export function redisSecrets(error: unknown, client: RedisClientLike): string[] {
  return [...handshakeSecrets(error, new Set(clientSecrets(client)))];
}

/** What classification needs from the driver. */
export interface RedisErrorContext {
  /** The driver's client: its configured password is redacted, and a plain client explains `MOVED`. */
  readonly client: RedisClientLike;
  /** The driver's error factory (adds its name). */
  createError(
    code: StorageDriverErrorCode,
    message: string,
    options: { key?: string | undefined; cause?: unknown; retryable?: boolean },
  ): StorageDriverError;
}

/**
 * Classifies a Redis or ioredis error (of the Redis key `key`, where known): authentication and
 * permission refusals, a server older than 7.0, and a cluster node behind a plain client
 * (`MOVED`, `ASK`, `CROSSSLOT`) are `E_CONFIG`; `WRONGTYPE` on a key is `E_INTEGRITY`; everything
 * else (connection lost, `OOM`, `READONLY`, `LOADING`, ...) is `E_BACKEND`, retryable. The cause
 * never carries a credential.
 */
export function classifyRedisError(
  raw: unknown,
  kind: string,
  key: string | undefined,
  context: RedisErrorContext,
): StorageDriverError {
  const { client, createError } = context;
  if (isStorageDriverError(raw)) return raw;
  const error = redactSecrets(raw, redisSecrets(raw, client));
  const message = error instanceof Error ? error.message : String(error);
  const where = key === undefined ? '' : ` (key ${key})`;
  if (OLD_SERVER_ERROR.test(message)) {
    return createError(
      StorageDriverErrorCode.CONFIG,
      `${kind} refused by Redis${where}: ${message} (this driver needs Redis 7.0 or later for PEXPIRE … GT)`,
      { key, cause: error },
    );
  }
  if (CONFIG_ERRORS.test(message)) {
    return createError(StorageDriverErrorCode.CONFIG, `${kind} refused by Redis${where}: ${message}`, {
      key,
      cause: error,
    });
  }
  if (/^(?:MOVED|ASK|CROSSSLOT)\b/.test(message) && !isRedisClusterClient(client)) {
    return createError(
      StorageDriverErrorCode.CONFIG,
      `${kind} failed: the server is a Redis Cluster node; pass an ioredis Cluster as the client (${message})`,
      { key, cause: error },
    );
  }
  if (/^WRONGTYPE\b/.test(message) && key !== undefined) {
    return createError(StorageDriverErrorCode.INTEGRITY, `Redis key ${key} does not hold a string value`, {
      key,
      cause: error,
    });
  }
  const hint = /^OOM\b/.test(message) ? ' (Redis is out of memory: raise maxmemory or lower the TTL)' : '';
  return createError(StorageDriverErrorCode.BACKEND, `${kind} failed${where}: ${message}${hint}`, {
    key,
    cause: error,
    retryable: true,
  });
}
