/**
 * Classification of `@azure/storage-blob` (and network) errors into coded `StorageDriverError`s,
 * and what of them may travel in a `cause`.
 *
 * @module
 */
import {
  displayKey,
  errorCodeOf,
  isStorageDriverError,
  REDACTED,
  StorageDriverError,
  StorageDriverErrorCode,
  type StorageDriverErrorOptions,
} from '@x/storage-driver-core';
import type { AzureBlobStorageLocation } from './names';

/** What the driver makes of an error a client call rejected with (after the client's own retries). */
export type AzureErrorKind =
  /** 404 `BlobNotFound`: the blob does not exist. */
  | 'not-found'
  /** 404 `ContainerNotFound`, 409 `ContainerBeingDeleted` / `ContainerDisabled`. */
  | 'no-container'
  /** 409 `BlobArchived`: the blob is in the Archive tier (or being rehydrated). */
  | 'archived'
  /** 401, 403 (`AuthenticationFailed`, `AuthorizationPermissionMismatch`...). */
  | 'access-denied'
  /** 409 `BlobAlreadyExists` (a create-only upload found a blob). */
  | 'exists'
  /** 412 `ConditionNotMet` (an `If-Match` on an ETag that is not the blob's any more). */
  | 'condition-not-met'
  /** Throttling (`ServerBusy`, 429, 503), 5xx, timeouts, connection failures: worth retrying. */
  | 'transient'
  /** Any other refusal (400 `InvalidHeaderValue`, 412 `LeaseIdMissing`, an unknown tier...). */
  | 'permanent';

const TRANSIENT_CODES = new Set(['ServerBusy', 'InternalError', 'OperationTimedOut']);
const NO_CONTAINER = new Set(['ContainerNotFound', 'ContainerBeingDeleted', 'ContainerDisabled']);

/**
 * Whether a 400 is a checksum mismatch: `Md5Mismatch` / `Crc64Mismatch` from Azure, or Azurite's
 * `InvalidOperation` "Provided contentMD5 doesn't match." (Azurite 3.35 has no code of its own).
 */
function isChecksumMismatch(error: unknown, code: string | undefined): boolean {
  if (code === 'Md5Mismatch' || code === 'Crc64Mismatch') return true;
  const message = (error as { message?: unknown }).message;
  return code === 'InvalidOperation' && typeof message === 'string' && /contentMD5 doesn't match/i.test(message);
}

/** HTTP status of a client error, if any. */
export function azureStatus(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const status = (error as { statusCode?: unknown }).statusCode;
  return typeof status === 'number' ? status : undefined;
}

/**
 * The service's error code (`x-ms-error-code`) or the socket error code of a client error:
 * `error.code`, else `error.details.errorCode` (12.0 clients leave `code` unset, and 12.5 ones
 * leave it unset for a `HEAD`, which has no body; the header is always in `details`).
 */
export function azureErrorCode(error: unknown): string | undefined {
  const code = errorCodeOf(error);
  if (code !== undefined) return code;
  const details = typeof error === 'object' && error !== null ? (error as { details?: unknown }).details : undefined;
  const fromHeader =
    typeof details === 'object' && details !== null ? (details as { errorCode?: unknown }).errorCode : undefined;
  return typeof fromHeader === 'string' && fromHeader !== '' ? fromHeader : undefined;
}

/**
 * Whether `error` is the client's `AbortError`: the caller's abort, a client timeout, or a
 * response body whose connection was cut (the client's download stream reports that as an
 * abort). Which of these it was is only known from the caller's signal: core turns the error
 * into `E_ABORTED` when the caller aborted.
 */
function isAbortError(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { name?: unknown }).name === 'AbortError';
}

/** Classifies an error a client call rejected with. */
export function classifyAzureError(error: unknown): AzureErrorKind {
  const status = azureStatus(error);
  const code = azureErrorCode(error);
  if (status === 404) {
    if (code !== undefined && NO_CONTAINER.has(code)) return 'no-container';
    return 'not-found';
  }
  if (status === 409) {
    if (code === 'BlobArchived') return 'archived';
    if (code === 'BlobAlreadyExists') return 'exists';
    if (code !== undefined && NO_CONTAINER.has(code)) return 'no-container';
    return 'permanent';
  }
  if (status === 412) return code === undefined || code === 'ConditionNotMet' ? 'condition-not-met' : 'permanent';
  if (status === 401 || status === 403) return 'access-denied';
  // Content-MD5 did not match the body the service received: damaged on the way, send it again.
  if (status === 400 && isChecksumMismatch(error, code)) return 'transient';
  if (status !== undefined) {
    if (status >= 500 || status === 429 || status === 408) return 'transient';
    if (code !== undefined && TRANSIENT_CODES.has(code)) return 'transient';
    return 'permanent';
  }
  // No HTTP response at all: a network failure (core's NETWORK_ERROR_CODES, the client's
  // REQUEST_SEND_ERROR and PARSE_ERROR), a DNS error, a socket timeout.
  return 'transient';
}

/** A `sig=` (SAS signature) in a URL or text. */
const SAS_SIGNATURE = /([?&;]sig=)[^&;\s"']+/gi;

/** `text` without SAS signatures. */
function withoutSignatures(text: string): string {
  return text.replace(SAS_SIGNATURE, `$1${REDACTED}`);
}

/**
 * What of a client error may travel as a `cause`: a new `Error` with its first message line (SAS
 * signatures redacted), `name`, `code` and `statusCode`. Not the error itself: its `request`
 * holds the URL (with the SAS token of a SAS-authenticated client) and the signed headers, its
 * `response` the raw exchange.
 */
export function sanitizeCause(error: unknown): unknown {
  if (typeof error !== 'object' || error === null) return error;
  const e = error as { message?: unknown; name?: unknown; statusCode?: unknown };
  const message = typeof e.message === 'string' ? withoutSignatures(e.message.split('\n')[0] ?? '') : String(error);
  const copy = new Error(message);
  if (typeof e.name === 'string') copy.name = e.name;
  const code = azureErrorCode(error);
  return Object.assign(copy, {
    ...(code === undefined ? {} : { code }),
    ...(typeof e.statusCode === 'number' ? { statusCode: e.statusCode } : {}),
  });
}

/** The kinds of driver call an error message names. */
export type AzureCallKind = 'store' | 'retrieve' | 'list' | 'delete';

/** What an access-denied message says each kind of call needs. */
const PERMISSIONS: Readonly<Record<AzureCallKind, string>> = {
  store:
    'write (Put Blob), read (Get Blob Properties) and, to refresh old blobs, write of metadata: the Storage Blob Data Contributor role, or a SAS with r and w',
  retrieve: 'read (Get Blob): Storage Blob Data Reader, or a SAS with r',
  list: 'list (List Blobs): Storage Blob Data Reader, or a SAS with l',
  delete: 'delete (Delete Blob, Blob Batch) and read: Storage Blob Data Contributor, or a SAS with d and r',
};

/**
 * Converts an error a client call rejected with into a coded `StorageDriverError` naming the
 * container and blob (see {@link classifyAzureError}); its `cause` is {@link sanitizeCause}'s copy.
 * A `StorageDriverError` is returned as it is.
 */
export function toStorageDriverError(
  error: unknown,
  kind: AzureCallKind,
  location: AzureBlobStorageLocation | undefined,
  driverName: string,
): StorageDriverError {
  if (isStorageDriverError(error)) return error;
  const create = (code: StorageDriverErrorCode, message: string, options: StorageDriverErrorOptions) =>
    new StorageDriverError(code, message, { ...options, driverName });
  const cause = sanitizeCause(error);
  const code = azureErrorCode(error) ?? (error instanceof Error ? error.name : 'Error');
  const status = azureStatus(error);
  const where = location === undefined ? '' : ` of blob ${location.container}/${displayKey(location.key)}`;
  const what = `${kind}${where} failed: ${code}${status === undefined ? '' : ` (HTTP ${status})`}`;
  const key = location?.key;
  const detail = (cause as Error).message === '' ? '' : `: ${(cause as Error).message.slice(0, 200)}`;
  if (isAbortError(error)) {
    // Not the caller's abort (core reports that as E_ABORTED): a cut connection or a timeout.
    return create(
      StorageDriverErrorCode.BACKEND,
      `${what}: the request was aborted before it completed (connection cut, or a client timeout)`,
      { key, cause, retryable: true },
    );
  }
  switch (classifyAzureError(error)) {
    case 'archived':
      return create(
        StorageDriverErrorCode.CONFIG,
        `${what}: the blob is in the Archive tier and cannot be read until it is rehydrated (Set Blob Tier to Hot, Cool or Cold, which takes hours); do not move payloads to Archive (lifecycle management rule tierToArchive)`,
        { key, cause, retryable: false },
      );
    case 'no-container':
      return create(
        StorageDriverErrorCode.CONFIG,
        `${what}: container ${location?.container ?? '?'} does not exist or is being deleted (check the container name, account and endpoint)`,
        { key, cause, retryable: false },
      );
    case 'access-denied':
      return create(
        StorageDriverErrorCode.CONFIG,
        `${what}: access denied; the credentials need ${PERMISSIONS[kind]}`,
        {
          key,
          cause,
          retryable: false,
        },
      );
    case 'transient':
      return create(StorageDriverErrorCode.BACKEND, `${what}${detail}`, { key, cause, retryable: true });
    default:
      return create(StorageDriverErrorCode.CONFIG, `${what}${detail}`, { key, cause, retryable: false });
  }
}
