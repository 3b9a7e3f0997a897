/**
 * Classification of Redis and ioredis errors into `StorageDriverError` codes, and removal of the
 * credentials ioredis attaches to them.
 *
 * @module
 */
import { isStorageDriverError, type StorageDriverError, StorageDriverErrorCode } from '@x/storage-driver-core';
import { isRedisClusterClient, type RedisClientLike } from './client';

/** Redis error prefixes that mean a permanent refusal (fix the configuration). */
export const CONFIG_ERRORS = /^(?:NOAUTH|WRONGPASS|NOPERM|ERR unknown command|ERR syntax error)/;

/** What Redis before 7.0 answers to `PEXPIRE key ms GT` (the option arrived in 7.0): not retryable. */
const OLD_SERVER_ERROR = /^ERR wrong number of arguments for 'pexpire' command/i;

/** Commands whose arguments carry credentials: `AUTH [user] password`, `HELLO 3 AUTH user password`. */
const CREDENTIAL_COMMANDS = new Set(['auth', 'hello']);
/** Error properties ioredis nests errors under (`cause`, `lastNodeError` of a Cluster, `errors`). */
const NESTED_ERROR_KEYS = ['cause', 'lastNodeError', 'previousErrors', 'errors'];
const REDACTED = '[redacted]';

/** The password (and ACL username) a client was configured with, if any (Redis and Cluster options). */
function clientSecrets(client: RedisClientLike): string[] {
  type Auth = { password?: unknown; username?: unknown };
  const options = (client as { options?: Auth & { redisOptions?: Auth } }).options;
  const found = [options?.password, options?.redisOptions?.password];
  return found.filter((s): s is string => typeof s === 'string' && s.length > 0);
}

/**
 * `error` with every credential removed (DESIGN: errors never carry credentials). ioredis rejects
 * the commands queued behind a failed handshake with the `AUTH`/`HELLO` reply error itself, whose
 * `command.args` hold the password; a Cluster nests such errors as `lastNodeError`. Returns
 * `error` itself when there is nothing to remove, otherwise a copy (the original, which ioredis
 * also emits to the application's `error` listeners, is left alone).
 */
function redactCredentials(error: unknown, known: readonly string[]): unknown {
  if (!(error instanceof Error)) return error;
  const secrets = new Set(known);
  const collect = (e: unknown, depth: number) => {
    if (!(e instanceof Error) || depth > 8) return;
    const command = (e as { command?: { name?: unknown; args?: unknown } }).command;
    if (
      command &&
      typeof command.name === 'string' &&
      CREDENTIAL_COMMANDS.has(command.name.toLowerCase()) &&
      Array.isArray(command.args)
    ) {
      const args: unknown[] = command.args;
      const from =
        command.name.toLowerCase() === 'hello' ? args.findIndex((a) => String(a).toUpperCase() === 'AUTH') + 1 : 0;
      if (from >= 0) for (const a of args.slice(from)) if (typeof a === 'string' && a.length > 0) secrets.add(a);
    }
    for (const k of NESTED_ERROR_KEYS) {
      const nested = (e as unknown as Record<string, unknown>)[k];
      for (const n of Array.isArray(nested) ? nested : [nested]) collect(n, depth + 1);
    }
  };
  collect(error, 0);
  if (secrets.size === 0) return error;
  const scrub = (text: string) => {
    let out = text;
    for (const secret of secrets) out = out.split(secret).join(REDACTED);
    return out;
  };
  const copy = (value: unknown, depth: number): unknown => {
    if (typeof value === 'string') return scrub(value);
    if (depth > 8 || value === null || typeof value !== 'object' || Buffer.isBuffer(value)) return value;
    if (Array.isArray(value)) return value.map((v) => copy(v, depth + 1));
    const proto = Object.getPrototypeOf(value) as object | null;
    if (!(value instanceof Error) && proto !== Object.prototype && proto !== null) return value;
    const out = Object.create(proto) as Record<PropertyKey, unknown>;
    for (const k of Reflect.ownKeys(value)) {
      const d = Object.getOwnPropertyDescriptor(value, k) as PropertyDescriptor;
      if ('value' in d) d.value = copy(d.value, depth + 1);
      Object.defineProperty(out, k, d);
    }
    return out;
  };
  return copy(error, 0);
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
  const error = redactCredentials(raw, clientSecrets(client));
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
