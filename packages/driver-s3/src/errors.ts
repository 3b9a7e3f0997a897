/**
 * Classification of AWS SDK (and network) errors into coded `StorageDriverError`s, and removal of
 * the request-signing material some S3 errors carry.
 *
 * @module
 */
import {
  displayKey,
  errorCodeOf,
  isNetworkError,
  isStorageDriverError,
  redactSecrets,
  StorageDriverError,
  StorageDriverErrorCode,
  type StorageDriverErrorOptions,
} from '@x/storage-driver-core';
import { isAccessPointArn, type S3StorageLocation } from './keys';

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
/**
 * Whether `error` was raised by the SDK before any HTTP exchange for a reason that is not
 * transient (no HTTP status, not a socket/DNS failure, not a timeout or throttling name, not
 * marked retryable): e.g. the SDK refusing to build an endpoint for an access point ARN.
 */
export function isClientSideRefusal(error: unknown): boolean {
  if (typeof error !== 'object' || error === null || s3HttpStatus(error) !== undefined) return false;
  const e = error as SdkErrorShape;
  if (isNetworkError(error)) return false;
  const name = s3ErrorName(error);
  if (name !== undefined && (TRANSIENT.has(name) || name === 'AbortError')) return false;
  return e.$retryable === undefined || e.$retryable === null || e.$retryable === false;
}

/** Error name (`name`, `Code` or `code`) of an SDK or Node error, if any. */
export function s3ErrorName(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const e = error as SdkErrorShape;
  for (const v of [e.Code, e.name, errorCodeOf(error)]) {
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
  if (name === 'NoSuchBucket') return 'no-bucket';
  // InvalidObjectState on a read, ObjectNotInActiveTierError on a copy of an archived source.
  if (name === 'InvalidObjectState' || name === 'ObjectNotInActiveTierError') return 'archived';
  if (name !== undefined && NOT_FOUND.has(name)) return 'not-found';
  if ((name !== undefined && EXISTS.has(name)) || status === 412) return 'exists';
  if (name === 'NotImplemented' || status === 501) return 'not-implemented';
  if (name !== undefined && TRANSIENT.has(name)) return 'transient';
  if (isNetworkError(error)) return 'transient';
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
 * (`SignatureDoesNotMatch` returns the access key id, the string to sign and the signature;
 * `InvalidAccessKeyId` the access key id).
 */
const SIGNING_FIELDS = [
  'AWSAccessKeyId',
  'StringToSign',
  'StringToSignBytes',
  'SignatureProvided',
  'CanonicalRequest',
  'CanonicalRequestBytes',
];

/** Of those, the ones whose values are credentials wherever else they appear. */
const SECRET_FIELDS = ['AWSAccessKeyId', 'SignatureProvided'];

/**
 * `error` without request-signing material, for the `cause` of a `StorageDriverError`:
 * - the echoed fields above are removed, and every other mention of the access key id or the
 *   signature they echo (in the message, in any nested field) becomes core's `[redacted]`, on a
 *   copy made by core's `redactSecrets` (the SDK error itself is left as it is);
 * - the raw HTTP body stream of `$response` (a hidden, non-configurable property, shared by the
 *   copy) is dropped: its socket still references the sent request with its `authorization`
 *   header — the access key id in `Credential=…` — reachable with
 *   `inspect(error, { showHidden: true })`. Status, headers and request id stay
 *   (`$response.statusCode`, `$metadata`).
 */
export function redactSigningFields<T>(error: T): T {
  if (typeof error !== 'object' || error === null) return error;
  dropResponseBody((error as Record<string, unknown>)['$response']);
  if (!SIGNING_FIELDS.some((field) => Object.hasOwn(error, field))) return error;
  const echoed = SECRET_FIELDS.flatMap((field) => {
    const value = (error as Record<string, unknown>)[field];
    return typeof value === 'string' ? [value] : [];
  });
  const redacted = redactSecrets(error, echoed) as Record<string, unknown>;
  for (const field of SIGNING_FIELDS) {
    try {
      delete redacted[field];
    } catch {
      // A frozen error (and nothing echoed to copy it for): its fields stay.
    }
  }
  return redacted as T;
}

function dropResponseBody(response: unknown): void {
  if (typeof response !== 'object' || response === null) return;
  const r = response as { body?: unknown };
  if (typeof r.body !== 'object' || r.body === null) return;
  try {
    r.body = undefined;
  } catch {
    // a frozen response: leave it
  }
}

/** Whether `error` is an abort (`AbortError`, as the SDK and Node raise it for an aborted signal). */
export function isAbortError(error: unknown): boolean {
  return s3ErrorName(error) === 'AbortError';
}

/** The kinds of driver call an error message names. */
export type S3CallKind = 'store' | 'retrieve' | 'list' | 'delete';

/** What {@link toStorageDriverError} needs from the driver. */
export interface S3ErrorContext {
  /** Name of the driver instance. */
  readonly driverName: string;
  /** Fields every `PutObject` carries (`Tagging`, `ServerSideEncryption`): what a store needs permission for. */
  readonly putFields: Readonly<Record<string, string | boolean>>;
}

/**
 * Converts an error thrown by `client.send` into a coded `StorageDriverError` naming bucket and
 * key (see {@link classifyS3Error}); its `cause` is the SDK error without signing material.
 * A `StorageDriverError` is returned as it is.
 */
export function toStorageDriverError(
  error: unknown,
  kind: S3CallKind,
  location: S3StorageLocation | undefined,
  context: S3ErrorContext,
): StorageDriverError {
  const createError = (code: StorageDriverErrorCode, message: string, options: StorageDriverErrorOptions) =>
    new StorageDriverError(code, message, { ...options, driverName: context.driverName });
  if (isStorageDriverError(error)) return error;
  if (isAbortError(error)) {
    return createError(StorageDriverErrorCode.ABORTED, 'Operation aborted', { cause: error });
  }
  const cause = redactSigningFields(error);
  // The SDK's message, shortened, after redaction.
  const detail = cause instanceof Error && cause.message !== '' ? `: ${cause.message.slice(0, 200)}` : '';
  const name = s3ErrorName(error) ?? 'Error';
  const status = s3HttpStatus(error);
  const where = location === undefined ? '' : ` s3://${location.bucket}/${displayKey(location.key)}`;
  const what = `${kind}${where} failed: ${name}${status === undefined ? '' : ` (HTTP ${status})`}`;
  const key = location?.key;
  const errorKind = classifyS3Error(error);
  if (location !== undefined && isAccessPointArn(location.bucket) && isClientSideRefusal(error)) {
    // The SDK refused to build a request for the ARN (path-style client, partition or region
    // mismatch, an endpoint it cannot prefix): configuration, not a transient failure.
    return createError(
      StorageDriverErrorCode.CONFIG,
      `${what}${detail}; the S3 client cannot address access point ${location.bucket} (it needs virtual-hosted addressing: no forcePathStyle, a host-name endpoint, and the ARN's partition and region or useArnRegion)`,
      { key, cause, retryable: false },
    );
  }
  switch (errorKind) {
    case 'archived':
      return createError(
        StorageDriverErrorCode.CONFIG,
        `${what}: the object is archived (storage class GLACIER or DEEP_ARCHIVE, or an archive tier of INTELLIGENT_TIERING) and cannot be read until it is restored; restore it (RestoreObject), and do not store payloads with, or transition them by lifecycle rule to, a storage class that archives`,
        { key, cause, retryable: false },
      );
    case 'no-bucket':
      return createError(
        StorageDriverErrorCode.CONFIG,
        `${what}: bucket ${location?.bucket ?? '?'} does not exist (check the bucket name, region and endpoint)`,
        { key, cause, retryable: false },
      );
    case 'access-denied':
      return createError(
        StorageDriverErrorCode.CONFIG,
        `${what}: access denied; the credentials need ${
          kind === 'store'
            ? `s3:PutObject${context.putFields['Tagging'] !== undefined ? ' and s3:PutObjectTagging' : ''}${
                context.putFields['ServerSideEncryption'] === 'aws:kms' ? ' (and kms:GenerateDataKey on the key)' : ''
              }, and s3:GetObject to see existing objects and to refresh old ones by an in-place copy (with s3:GetObjectTagging and s3:PutObjectTagging for tagged objects, kms:Decrypt for SSE-KMS ones)`
            : PERMISSIONS[kind]
        } on this bucket`,
        { key, cause, retryable: false },
      );
    case 'transient':
      return createError(StorageDriverErrorCode.BACKEND, `${what}${detail}`, { key, cause, retryable: true });
    default:
      return createError(StorageDriverErrorCode.CONFIG, `${what}${detail}`, { key, cause, retryable: false });
  }
}

/** What an access-denied message says each kind of call needs. */
const PERMISSIONS = {
  retrieve: 's3:GetObject (and kms:Decrypt for SSE-KMS objects)',
  list: 's3:ListBucket',
  delete: 's3:DeleteObject (and s3:GetObject: HeadObject and conditional deletes)',
} as const;
