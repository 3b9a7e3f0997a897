/**
 * Small pieces every driver package needs and would otherwise write again: configuration errors,
 * the options-object check, lazy loading of a peer dependency, secret redaction with one
 * placeholder, zero-copy byte views, and reading an error's `code`.
 *
 * @module
 */
import { types } from 'node:util';
import { StorageDriverError, StorageDriverErrorCode } from './errors';

/**
 * A `StorageDriverError` with code `E_CONFIG` (never retryable): invalid options, or a permanent
 * refusal of the backend that only a configuration change can fix.
 */
export function configError(
  message: string,
  options: { cause?: unknown; driverName?: string } = {},
): StorageDriverError {
  return new StorageDriverError(StorageDriverErrorCode.CONFIG, message, { ...options, retryable: false });
}

/**
 * Checks that a driver's constructor got an options object, and returns it typed as `T`.
 *
 * @param what - what the options must hold, for the message: e.g. `RedisStorageDriver options
 *   must be an object with a client`.
 * @throws StorageDriverError `E_CONFIG` if `options` is not a non-null object (arrays neither).
 */
export function requireOptionsObject<T extends object>(options: unknown, what: string): T {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) throw configError(what);
  return options as T;
}

/**
 * Loads a peer dependency the caller only needs for an optional path (a static constructor that
 * creates its own client), with the caller's `require` so the module resolves from the driver
 * package, as a peer must.
 *
 * @param load - the calling module's `require`.
 * @param moduleName - e.g. `ioredis`.
 * @param packageName - the package whose peer it is, for the message (e.g. `@x/storage-driver-redis`).
 * @throws StorageDriverError `E_CONFIG` naming the install command if the module cannot be loaded.
 */
export function loadPeerDependency<T>(load: (id: string) => unknown, moduleName: string, packageName: string): T {
  try {
    return load(moduleName) as T;
  } catch (e) {
    throw configError(
      `${moduleName} is not installed: run \`npm install ${moduleName}\` (a peer dependency of ${packageName})`,
      { cause: e },
    );
  }
}

/** What every redacted secret is replaced with. */
export const REDACTED = '[redacted]';

/** `text` with every occurrence of every (non-empty) secret replaced by {@link REDACTED}. */
export function redactText(text: string, secrets: Iterable<string>): string {
  let out = text;
  for (const secret of secrets) if (secret.length > 0) out = out.split(secret).join(REDACTED);
  return out;
}

/** Property names under which client libraries nest errors (`cause`, a Cluster's `lastNodeError`, …). */
const NESTED_ERROR_KEYS = ['cause', 'lastNodeError', 'previousErrors', 'errors'];
const MAX_DEPTH = 8;

/**
 * An error object, also from another realm (a `vm` context such as jest's, where errors Node
 * creates, e.g. an `ENOENT` from `fs`, are not `instanceof` the context's `Error`).
 */
function isError(value: object): boolean {
  return value instanceof Error || types.isNativeError(value);
}

/**
 * What an own property holds: a data property's value; for an error, also what an own accessor
 * reads (`stack` is a getter over the error's internal slot on Node 24), which a copy must
 * hold as a value since the getter does not work on it. `undefined` for any other accessor.
 */
function ownValue(owner: object, key: PropertyKey, d: PropertyDescriptor): unknown {
  if ('value' in d) return d.value;
  if (d.get === undefined || !isError(owner)) return undefined;
  try {
    return Reflect.get(owner, key, owner);
  } catch {
    return undefined;
  }
}

function mentions(value: unknown, secrets: readonly string[], depth: number, seen: Set<object>): boolean {
  if (typeof value === 'string') return secrets.some((s) => s.length > 0 && value.includes(s));
  if (depth > MAX_DEPTH || typeof value !== 'object' || value === null || seen.has(value)) return false;
  if (value instanceof Uint8Array) return false;
  seen.add(value);
  for (const k of Reflect.ownKeys(value)) {
    const d = Object.getOwnPropertyDescriptor(value, k);
    if (d !== undefined && mentions(ownValue(value, k, d), secrets, depth + 1, seen)) return true;
  }
  if (isError(value)) {
    for (const k of NESTED_ERROR_KEYS)
      if (mentions((value as unknown as Record<string, unknown>)[k], secrets, depth + 1, seen)) return true;
  }
  return false;
}

/**
 * `value` (typically a client library's error, about to become a `cause`) with every secret
 * removed, for errors that must never carry credentials. Returns `value` itself when it mentions
 * none of `secrets`; otherwise a deep copy — same prototypes, every own property including
 * `message` and `stack`, nested errors and plain objects/arrays to a depth of 8 — whose strings
 * have each secret replaced by {@link REDACTED}. The original is left alone (a client may emit it
 * to the application's own listeners too).
 */
export function redactSecrets<T>(value: T, secrets: readonly string[]): T {
  const list = secrets.filter((s) => typeof s === 'string' && s.length > 0);
  if (list.length === 0 || !mentions(value, list, 0, new Set())) return value;
  const copies = new Map<object, unknown>();
  const copy = (v: unknown, depth: number): unknown => {
    if (typeof v === 'string') return redactText(v, list);
    if (depth > MAX_DEPTH || v === null || typeof v !== 'object' || v instanceof Uint8Array) return v;
    const done = copies.get(v);
    if (done !== undefined) return done;
    if (Array.isArray(v)) {
      const out: unknown[] = [];
      copies.set(v, out);
      for (const item of v) out.push(copy(item, depth + 1));
      return out;
    }
    const proto = Object.getPrototypeOf(v) as object | null;
    // Errors and plain objects are copied; class instances (sockets, clients) are left as they are.
    if (!isError(v) && proto !== Object.prototype && proto !== null) return v;
    const out = Object.create(proto) as Record<PropertyKey, unknown>;
    copies.set(v, out);
    for (const k of Reflect.ownKeys(v)) {
      const d = Object.getOwnPropertyDescriptor(v, k) as PropertyDescriptor;
      if ('value' in d) d.value = copy(d.value, depth + 1);
      else if (d.get !== undefined && isError(v)) {
        const value = copy(ownValue(v, k, d), depth + 1);
        Object.defineProperty(out, k, { value, writable: true, enumerable: d.enumerable, configurable: true });
        continue;
      }
      Object.defineProperty(out, k, d);
    }
    return out;
  };
  return copy(value, 0) as T;
}

/**
 * A zero-copy Node `Buffer` view of `bytes` (client libraries send Buffers binary-safe but
 * strings as UTF-8; some copy plain Uint8Arrays).
 */
export function byteView(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The string `code` property of an error-like value (`ENOENT`, a SQLSTATE, `WRONGPASS`…), if any. */
export function errorCodeOf(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}
