/**
 * The error the codec server answers with: an HTTP status and a stable code, never a stack trace.
 *
 * @module
 */
import { StorageDriverError, StorageDriverErrorCode } from '@x/storage-driver-core';

/**
 * Stable error codes of codec-server responses (`{"code": "...", "message": "..."}`). Storage
 * failures answer with the driver's own `StorageDriverError` code (`E_NOT_FOUND`, `E_INTEGRITY`,
 * `E_INVALID_CLAIM`, `E_TOO_LARGE`, `E_BACKEND`, `E_CONFIG`, `E_ABORTED`) and status 502.
 *
 * | code | status | meaning |
 * |---|---|---|
 * | `E_BAD_REQUEST` | 400 | the body is not JSON, or not `{"payloads":[...]}` in proto3 JSON |
 * | `E_INVALID_REFERENCE` | 400 | a payload claims to be an External Storage reference but is malformed |
 * | `E_NOT_A_REFERENCE` | 400 | `/download` got a payload that is not a reference |
 * | `E_UNAUTHORIZED` | 401 | the auth hook rejected the request (no or bad credentials) |
 * | `E_FORBIDDEN` | 403 | the auth hook rejected the request (credentials lack permission) |
 * | `E_READ_ONLY` | 403 | `/encode` on a server configured `readOnly` |
 * | `E_ORIGIN_NOT_ALLOWED` | 403 | the request's `Origin` is not one of the configured CORS origins |
 * | `E_NO_ROUTE` | 404 | no such path (only `/encode`, `/decode`, `/download` exist) |
 * | `E_UNKNOWN_NAMESPACE` | 404 | no configuration for the `X-Namespace` namespace |
 * | `E_UNKNOWN_DRIVER` | 404 | a reference names a driver the namespace does not configure |
 * | `E_METHOD_NOT_ALLOWED` | 405 | a method other than `POST` (or `OPTIONS` preflight) |
 * | `E_BODY_TOO_LARGE` | 413 | the body exceeds `maxBodyBytes` |
 * | `E_TOO_MANY_PAYLOADS` | 413 | the body holds more than `maxPayloads` payloads or `maxMetadataEntries` metadata entries |
 * | `E_UNSUPPORTED_MEDIA_TYPE` | 415 | a `Content-Type` other than JSON |
 * | `E_STORAGE` | 502 | a driver failed with an error that is not a `StorageDriverError` |
 * | `E_CODEC` | 502 | a payload codec failed |
 * | `E_BUSY` | 503 | `maxConcurrentRequests` or `maxConcurrentDownloadBytes` reached; retry later (`Retry-After`) |
 * | `E_INTERNAL` | 500 | anything else (details go to `onError`, never to the client) |
 */
export const CodecServerErrorCode = {
  BAD_REQUEST: 'E_BAD_REQUEST',
  INVALID_REFERENCE: 'E_INVALID_REFERENCE',
  NOT_A_REFERENCE: 'E_NOT_A_REFERENCE',
  UNAUTHORIZED: 'E_UNAUTHORIZED',
  FORBIDDEN: 'E_FORBIDDEN',
  READ_ONLY: 'E_READ_ONLY',
  ORIGIN_NOT_ALLOWED: 'E_ORIGIN_NOT_ALLOWED',
  NO_ROUTE: 'E_NO_ROUTE',
  UNKNOWN_NAMESPACE: 'E_UNKNOWN_NAMESPACE',
  UNKNOWN_DRIVER: 'E_UNKNOWN_DRIVER',
  METHOD_NOT_ALLOWED: 'E_METHOD_NOT_ALLOWED',
  BODY_TOO_LARGE: 'E_BODY_TOO_LARGE',
  TOO_MANY_PAYLOADS: 'E_TOO_MANY_PAYLOADS',
  UNSUPPORTED_MEDIA_TYPE: 'E_UNSUPPORTED_MEDIA_TYPE',
  STORAGE: 'E_STORAGE',
  CODEC: 'E_CODEC',
  BUSY: 'E_BUSY',
  INTERNAL: 'E_INTERNAL',
} as const;

/** One of the {@link CodecServerErrorCode} values. */
export type CodecServerErrorCode = (typeof CodecServerErrorCode)[keyof typeof CodecServerErrorCode];

/** Options of {@link CodecServerError}. */
export interface CodecServerErrorOptions {
  /** Index of the payload in the request the error concerns, when known. */
  index?: number;
  /** Name of the storage driver involved, when known. */
  driverName?: string;
  /** Whether retrying the same request may succeed. Default: `false`. */
  retryable?: boolean;
  /** The underlying error; passed to `onError`, never sent to the client. */
  cause?: unknown;
}

/** The JSON body of every error response. */
export interface CodecServerErrorBody {
  /** A {@link CodecServerErrorCode}, or a storage driver's `StorageDriverError` code. */
  code: string;
  /** A short, human-readable reason without stack traces or credentials. */
  message: string;
  /** Index of the payload in the request the error concerns, when known. */
  index?: number;
  /** Name of the storage driver involved, when known. */
  driverName?: string;
  /** Whether retrying may succeed (present for storage failures, 502, and for 503 `E_BUSY`). */
  retryable?: boolean;
}

/**
 * An error with an HTTP status and a stable code. Thrown by the payload processing functions
 * ({@link NamespaceCodec}) and turned into a JSON error response by the handler.
 */
export class CodecServerError extends Error {
  /** HTTP status the handler answers with. */
  readonly status: number;
  /** Stable machine-readable code (a {@link CodecServerErrorCode} or a storage error code). */
  readonly code: string;
  /** Index of the payload the error concerns, when known. */
  readonly index: number | undefined;
  /** Name of the storage driver involved, when known. */
  readonly driverName: string | undefined;
  /** Whether retrying may succeed. */
  readonly retryable: boolean;

  /**
   * @param status - HTTP status (400–599).
   * @param code - stable code.
   * @param message - short reason, sent to the client.
   */
  constructor(status: number, code: string, message: string, options: CodecServerErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CodecServerError';
    this.status = status;
    this.code = code;
    this.index = options.index;
    this.driverName = options.driverName;
    this.retryable = options.retryable ?? false;
  }

  /** The JSON body sent to the client. */
  toJSON(): CodecServerErrorBody {
    const body: CodecServerErrorBody = { code: this.code, message: this.message };
    if (this.index !== undefined) body.index = this.index;
    if (this.driverName !== undefined) body.driverName = this.driverName;
    if (this.status === 502 || this.status === 503) body.retryable = this.retryable;
    return body;
  }
}

/** A 400 `E_BAD_REQUEST`. */
export function badRequest(message: string, index?: number): CodecServerError {
  return new CodecServerError(400, CodecServerErrorCode.BAD_REQUEST, message, { index });
}

/** An `E_CONFIG` `StorageDriverError` for invalid codec-server or namespace options (internal). */
export function configError(message: string): StorageDriverError {
  return new StorageDriverError(StorageDriverErrorCode.CONFIG, message);
}
