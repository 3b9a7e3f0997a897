/**
 * Classification of AWS SDK (and network) errors into coded `StorageDriverError`s.
 *
 * @module
 */

/** What the driver makes of an error thrown by `client.send`. */
export type S3ErrorKind =
  /** 404 `NoSuchKey` / `NotFound`: the object does not exist. */
  | 'not-found'
  /** 412 `PreconditionFailed` on a conditional PUT (409 `ConditionalRequestConflict` is `transient`). */
  | 'exists'
  /** 404 `NoSuchBucket`. */
  | 'no-bucket'
  /** 403 and other credential/permission refusals. */
  | 'access-denied'
  /**
   * 403 `InvalidObjectState` (read) or `ObjectNotInActiveTierError` (copy): the object is archived
   * (GLACIER, DEEP_ARCHIVE) and not restored.
   */
  | 'archived'
  /** 501 `NotImplemented` (e.g. a server without conditional writes). */
  | 'not-implemented'
  /** Throttling, 5xx, timeouts, connection failures: worth retrying later. */
  | 'transient'
  /** Any other refusal (400 `InvalidArgument`, `InvalidStorageClass`, KMS errors...). */
  | 'permanent';

/** The fields of an AWS SDK v3 service exception the driver reads (all optional). */
interface SdkErrorShape {
  name?: unknown;
  code?: unknown;
  Code?: unknown;
  $fault?: unknown;
  $retryable?: unknown;
  $metadata?: { httpStatusCode?: unknown };
}

const NOT_FOUND = new Set(['NoSuchKey', 'NotFound']);
const EXISTS = new Set(['PreconditionFailed']);
const ACCESS_DENIED = new Set([
  'AccessDenied',
  'Forbidden',
  'AllAccessDisabled',
  'AccountProblem',
  'InvalidAccessKeyId',
  'InvalidSecurity',
  'SignatureDoesNotMatch',
  'KMS.AccessDeniedException',
  'KMS.DisabledException',
  'CredentialsProviderError',
]);
const TRANSIENT = new Set([
  // 409 on a conditional PUT: a concurrent write or delete of the key is in flight, so the
  // object may not exist; AWS says to retry.
  'ConditionalRequestConflict',
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'TooManyRequests',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'RequestThrottled',
  'RequestThrottledException',
  'ProvisionedThroughputExceededException',
  'BandwidthLimitExceeded',
  'ServiceUnavailable',
  'InternalError',
  'RequestTimeout',
  'RequestTimeoutException',
  'TimeoutError',
  'ExpiredToken',
  'ExpiredTokenException',
  'TokenRefreshRequired',
  'PriorRequestNotComplete',
  'KMS.ThrottlingException',
  'KMS.KMSInternalException',
]);
/** Node socket errors (`error.code`). */
const NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'EADDRNOTAVAIL',
  'UND_ERR_SOCKET',
]);

/**
 * Whether `error` was raised by the SDK before any HTTP exchange for a reason that is not
 * transient (no HTTP status, not a socket/DNS failure, not a timeout or throttling name, not
 * marked retryable): e.g. the SDK refusing to build an endpoint for an access point ARN.
 */
export function isClientSideRefusal(error: unknown): boolean {
  if (typeof error !== 'object' || error === null || s3HttpStatus(error) !== undefined) return false;
  const e = error as SdkErrorShape;
  if (typeof e.code === 'string' && NETWORK_CODES.has(e.code)) return false;
  const name = s3ErrorName(error);
  if (name !== undefined && (TRANSIENT.has(name) || name === 'AbortError')) return false;
  return e.$retryable === undefined || e.$retryable === null || e.$retryable === false;
}

/** Error name (`name`, `Code` or `code`) of an SDK or Node error, if any. */
export function s3ErrorName(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const e = error as SdkErrorShape;
  for (const v of [e.Code, e.name, e.code]) {
    if (typeof v === 'string' && v !== 'Error' && v !== '') return v;
  }
  return undefined;
}

/** HTTP status of an SDK service exception, if any. */
export function s3HttpStatus(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const status = (error as SdkErrorShape).$metadata?.httpStatusCode;
  return typeof status === 'number' ? status : undefined;
}

/** Classifies an error thrown by `client.send` (after the SDK's own retries). */
export function classifyS3Error(error: unknown): S3ErrorKind {
  const name = s3ErrorName(error);
  const status = s3HttpStatus(error);
  const code = typeof error === 'object' && error !== null ? (error as SdkErrorShape).code : undefined;
  if (name === 'NoSuchBucket') return 'no-bucket';
  // InvalidObjectState on a read, ObjectNotInActiveTierError on a copy of an archived source.
  if (name === 'InvalidObjectState' || name === 'ObjectNotInActiveTierError') return 'archived';
  if (name !== undefined && NOT_FOUND.has(name)) return 'not-found';
  if ((name !== undefined && EXISTS.has(name)) || status === 412) return 'exists';
  if (name === 'NotImplemented' || status === 501) return 'not-implemented';
  if (name !== undefined && TRANSIENT.has(name)) return 'transient';
  if (typeof code === 'string' && NETWORK_CODES.has(code)) return 'transient';
  if (name !== undefined && ACCESS_DENIED.has(name)) return 'access-denied';
  if (status === 403 || status === 401) return 'access-denied';
  if (status === 404) return 'not-found';
  if (status !== undefined) {
    if (status >= 500 || status === 429 || status === 408) return 'transient';
    return 'permanent';
  }
  if (typeof error === 'object' && error !== null && (error as SdkErrorShape).$retryable) return 'transient';
  // No HTTP response at all: a network failure, a DNS error, a socket timeout.
  return 'transient';
}

/**
 * Properties some S3 error bodies carry that echo request-signing material
 * (`SignatureDoesNotMatch` returns the access key id, the string to sign and the signature).
 */
const SIGNING_FIELDS = [
  'AWSAccessKeyId',
  'StringToSign',
  'StringToSignBytes',
  'SignatureProvided',
  'CanonicalRequest',
  'CanonicalRequestBytes',
];

/**
 * Removes request-signing material from an SDK error so the `cause` never carries it: the echoes
 * above, and the raw HTTP body stream of `$response` (a hidden, non-configurable property), whose
 * socket still references the sent request with its `authorization` header — the access key id in
 * `Credential=…` — reachable with `inspect(error, { showHidden: true })`. Status, headers and
 * request id stay (`$response.statusCode`, `$metadata`).
 */
export function redactSigningFields(error: unknown): unknown {
  if (typeof error !== 'object' || error === null) return error;
  const e = error as Record<string, unknown>;
  const response = e['$response'];
  if (typeof response === 'object' && response !== null) {
    const r = response as { body?: unknown };
    if (typeof r.body === 'object' && r.body !== null) {
      try {
        r.body = undefined;
      } catch {
        // a frozen response: leave it
      }
    }
  }
  for (const field of SIGNING_FIELDS) {
    if (Object.hasOwn(e, field)) {
      try {
        delete e[field];
      } catch {
        // frozen error: leave it (cause is still only reachable by the caller)
      }
    }
  }
  return error;
}
