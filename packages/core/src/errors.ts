/**
 * The one error class every driver throws, with stable codes.
 *
 * @module
 */

/**
 * Stable error codes. Switch on these, never on messages.
 *
 * | code | meaning | retryable |
 * |---|---|---|
 * | `E_NOT_FOUND` | the claimed object does not exist (never stored, expired, swept) | no |
 * | `E_INTEGRITY` | stored bytes do not match the claim's hash, or are not a Payload | no |
 * | `E_TOO_LARGE` | a serialized payload exceeds `maxPayloadSize`; nothing of the batch was written | no |
 * | `E_INVALID_CLAIM` | a claim is malformed or hostile (bad key, traversal, missing/unknown hash) | no |
 * | `E_ABORTED` | the operation's abort signal fired | no |
 * | `E_BACKEND` | a transient backend failure (connection lost, 5xx, timeout) | yes |
 * | `E_CONFIG` | invalid driver configuration, or a permanent backend refusal (permissions, missing bucket/table) | no |
 */
export const StorageDriverErrorCode = {
  NOT_FOUND: 'E_NOT_FOUND',
  INTEGRITY: 'E_INTEGRITY',
  TOO_LARGE: 'E_TOO_LARGE',
  INVALID_CLAIM: 'E_INVALID_CLAIM',
  ABORTED: 'E_ABORTED',
  BACKEND: 'E_BACKEND',
  CONFIG: 'E_CONFIG',
} as const;

/** One of the {@link StorageDriverErrorCode} values. */
export type StorageDriverErrorCode = (typeof StorageDriverErrorCode)[keyof typeof StorageDriverErrorCode];

const ALL_CODES: ReadonlySet<string> = new Set(Object.values(StorageDriverErrorCode));

/** Options of {@link StorageDriverError}. */
export interface StorageDriverErrorOptions {
  /** Name of the driver instance that failed. */
  driverName?: string;
  /** Whether retrying the same call may succeed. Default: `true` for `E_BACKEND`, else `false`. */
  retryable?: boolean;
  /** Storage key the failure concerns, when known. Never contains credentials. */
  key?: string;
  /** Index of the payload or claim in the batch the failure concerns, when known. */
  index?: number;
  /** The underlying error (backend client error, I/O error, ...). */
  cause?: unknown;
}

const BRAND = Symbol.for('@x/storage-driver-core/StorageDriverError');

/**
 * Error thrown by storage drivers. Carries a stable {@link StorageDriverErrorCode}, a
 * `retryable` flag, the driver name, the key/index it concerns, and the backend error as
 * `cause`. Use {@link isStorageDriverError} rather than `instanceof` across package copies.
 */
export class StorageDriverError extends Error {
  /** Stable machine-readable code. */
  readonly code: StorageDriverErrorCode;
  /** Whether retrying the same call may succeed (transient backend failures). */
  readonly retryable: boolean;
  /** Name of the driver instance that raised the error, if known. */
  readonly driverName: string | undefined;
  /** Storage key the error concerns, if known. */
  readonly key: string | undefined;
  /** Index in the batch the error concerns, if known. */
  readonly index: number | undefined;

  /**
   * @throws TypeError if `code` is not one of {@link StorageDriverErrorCode}.
   */
  constructor(code: StorageDriverErrorCode, message: string, options: StorageDriverErrorOptions = {}) {
    if (!ALL_CODES.has(code)) throw new TypeError(`Unknown StorageDriverError code: ${String(code)}`);
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'StorageDriverError';
    this.code = code;
    this.retryable = options.retryable ?? code === StorageDriverErrorCode.BACKEND;
    this.driverName = options.driverName;
    this.key = options.key;
    this.index = options.index;
    Object.defineProperty(this, BRAND, { value: true });
  }
}

/**
 * Brand check that works across duplicated copies of core (no `instanceof`).
 * Optionally narrows to a code.
 */
export function isStorageDriverError(error: unknown, code?: StorageDriverErrorCode): error is StorageDriverError {
  if (typeof error !== 'object' || error === null) return false;
  if ((error as Record<symbol, unknown>)[BRAND] !== true) return false;
  return code === undefined || (error as StorageDriverError).code === code;
}

/** Context {@link withErrorContext} fills in. */
export interface StorageDriverErrorContext {
  /** Name of the driver instance. */
  driverName?: string;
  /** Index in the batch. */
  index?: number;
  /** Storage key. */
  key?: string;
}

/**
 * `error` with `driverName`, `index` and `key` filled in where it has none: the error itself when
 * nothing is missing, otherwise a new `StorageDriverError` with the same code, message,
 * `retryable`, cause and stack (errors are immutable: helpers such as `parseStorageKey` throw
 * without knowing the claim's position or the driver's name, and the driver adds them).
 */
export function withErrorContext(error: StorageDriverError, context: StorageDriverErrorContext): StorageDriverError {
  const driverName = error.driverName ?? context.driverName;
  const index = error.index ?? context.index;
  const key = error.key ?? context.key;
  if (driverName === error.driverName && index === error.index && key === error.key) return error;
  const copy = new StorageDriverError(error.code, error.message, {
    driverName,
    index,
    key,
    retryable: error.retryable,
    cause: error.cause,
  });
  if (error.stack !== undefined) copy.stack = error.stack;
  return copy;
}
