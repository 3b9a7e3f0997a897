/**
 * Classification of `@google-cloud/storage` (and network) errors into coded
 * `StorageDriverError`s, and the removal of credentials from the errors kept as `cause`.
 *
 * @module
 */
import {
  displayKey,
  errorCodeOf,
  isNetworkError,
  isStorageDriverError,
  StorageDriverError,
  StorageDriverErrorCode,
} from '@x/storage-driver-core';
import type { GcsStorageLocation } from './names';

/** What the driver makes of an error thrown by a client call. */
export type GcsErrorKind =
  /** 404: the object (or the generation asked for) does not exist. */
  | 'not-found'
  /** 412 `conditionNotMet`: a generation precondition failed. */
  | 'precondition'
  /** 404 naming a missing bucket. */
  | 'no-bucket'
  /** 401, 403: credentials or permissions. */
  | 'access-denied'
  /**
   * 408, 429, 5xx, timeouts, connection failures, an answer whose body failed after a 2xx/3xx
   * status: worth retrying later.
   */
  | 'transient'
  /** Any other refusal (400 `invalid`, a declared MD5 that does not match the bytes, ...). */
  | 'permanent';

/** The fields of a `@google-cloud/storage` `ApiError` (or a gaxios / Node error) the driver reads. */
interface ClientErrorShape {
  code?: unknown;
  status?: unknown;
  message?: unknown;
  errors?: unknown;
  response?: { statusCode?: unknown; status?: unknown };
}

/** Messages of google-auth-library when it has no usable credentials (no HTTP status). */
const CREDENTIALS =
  /could not load the default credentials|could not refresh access token|invalid_grant|unauthorized_client|no access, refresh token/i;

/** HTTP status of a client error, if any. */
export function gcsHttpStatus(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const e = error as ClientErrorShape;
  for (const v of [e.code, e.status, e.response?.statusCode, e.response?.status]) {
    if (typeof v === 'number' && v >= 100 && v < 600) return v;
  }
  return undefined;
}

/** The first `reason` of a JSON API error (`notFound`, `conditionNotMet`, `rateLimitExceeded`, ...). */
export function gcsReason(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const errors = (error as ClientErrorShape).errors;
  const first: unknown = Array.isArray(errors) ? errors[0] : undefined;
  const reason = typeof first === 'object' && first !== null ? (first as { reason?: unknown }).reason : undefined;
  return typeof reason === 'string' ? reason : undefined;
}

function messageOf(error: unknown): string {
  if (typeof error !== 'object' || error === null) return String(error);
  const m = (error as ClientErrorShape).message;
  return typeof m === 'string' ? m : '';
}

/** Classifies an error thrown by a client call (after the client's own retries). */
export function classifyGcsError(error: unknown): GcsErrorKind {
  const status = gcsHttpStatus(error);
  if (status === 404) return /bucket does not exist/i.test(messageOf(error)) ? 'no-bucket' : 'not-found';
  if (status === 412) return 'precondition';
  if (status === 401 || status === 403) return 'access-denied';
  // Below 400: the answer began, then its body failed (cut, timed out): the transfer, not the request.
  if (status !== undefined) {
    return status < 400 || status >= 500 || status === 429 || status === 408 ? 'transient' : 'permanent';
  }
  if (isNetworkError(error)) return 'transient';
  if (CREDENTIALS.test(messageOf(error))) return 'access-denied';
  // No HTTP answer at all: a network failure, a DNS error, a socket timeout.
  return 'transient';
}

/**
 * Removes what could carry credentials from a client error kept as `cause`: the raw `response`
 * (teeny-request puts the request's headers, `Authorization: Bearer …` included, under
 * `response.request`; gaxios under `response.config`), `config` and `request`. The status, the
 * JSON API `errors` and the message stay (`response` keeps only its status).
 */
export function redactClientError(error: unknown): unknown {
  if (typeof error !== 'object' || error === null) return error;
  const e = error as Record<string, unknown>;
  const status = gcsHttpStatus(error);
  for (const field of ['response', 'config', 'request']) {
    if (!Object.hasOwn(e, field)) continue;
    try {
      if (field === 'response') e[field] = status === undefined ? undefined : { statusCode: status };
      else delete e[field];
    } catch {
      // a frozen error: leave it
    }
  }
  return error;
}

function isAbortError(error: unknown): boolean {
  const name = typeof error === 'object' && error !== null ? (error as { name?: unknown }).name : undefined;
  return name === 'AbortError' || errorCodeOf(error) === 'ABORT_ERR';
}

/** The kinds of driver call an error message names. */
export type GcsCallKind = 'store' | 'retrieve' | 'list' | 'delete';

/** What each kind of call needs (for access-denied messages). */
const PERMISSIONS: Record<GcsCallKind, string> = {
  store:
    'storage.objects.create and storage.objects.get (the existence check), and storage.objects.delete to refresh old objects by a rewrite in place (roles/storage.objectUser has all three)',
  retrieve: 'storage.objects.get',
  list: 'storage.objects.list',
  delete: 'storage.objects.delete and storage.objects.get',
};

/**
 * Converts an error thrown by a client call into a coded `StorageDriverError` naming the bucket and
 * object (see {@link classifyGcsError}); its `cause` is the client error without credentials
 * ({@link redactClientError}). A `StorageDriverError` is returned as it is.
 */
export function toStorageDriverError(
  error: unknown,
  kind: GcsCallKind,
  location: GcsStorageLocation | undefined,
  driverName: string,
): StorageDriverError {
  if (isStorageDriverError(error)) return error;
  const create = (code: StorageDriverErrorCode, message: string, retryable: boolean) =>
    new StorageDriverError(code, message, {
      driverName,
      key: location?.key,
      cause: redactClientError(error),
      retryable,
    });
  if (isAbortError(error)) return create(StorageDriverErrorCode.ABORTED, 'Operation aborted', false);
  const status = gcsHttpStatus(error);
  const reason = gcsReason(error) ?? errorCodeOf(error) ?? (error instanceof Error ? error.name : 'Error');
  const where = location === undefined ? '' : ` gs://${location.bucket}/${displayKey(location.key)}`;
  const detail = messageOf(error).slice(0, 200);
  const what = `${kind}${where} failed: ${reason}${status === undefined ? '' : ` (HTTP ${status})`}${
    detail === '' || detail === reason ? '' : `: ${detail}`
  }`;
  let errorKind = classifyGcsError(error);
  // An upload or a listing answered 404 has no object to miss: the bucket is missing.
  if (errorKind === 'not-found' && (kind === 'store' || kind === 'list')) errorKind = 'no-bucket';
  switch (errorKind) {
    case 'no-bucket':
      return create(
        StorageDriverErrorCode.CONFIG,
        `${what}; bucket ${location?.bucket ?? '?'} does not exist (check the bucket name and the client's project and endpoint)`,
        false,
      );
    case 'access-denied':
      return create(
        StorageDriverErrorCode.CONFIG,
        `${what}; access denied: the credentials need ${PERMISSIONS[kind]} on this bucket`,
        false,
      );
    case 'transient':
      return create(StorageDriverErrorCode.BACKEND, what, true);
    default:
      return create(StorageDriverErrorCode.CONFIG, what, false);
  }
}
