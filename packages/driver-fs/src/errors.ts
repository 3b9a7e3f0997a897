/**
 * Classification of filesystem errors into `StorageDriverError` codes, and how paths appear in
 * messages: relative to the root (`<root>/v0/...`), never the absolute root.
 *
 * @module
 */
import * as path from 'node:path';
import { errorCodeOf, isStorageDriverError, StorageDriverError, StorageDriverErrorCode } from '@x/storage-driver-core';
import { isInside } from './paths';

/** errno codes of transient failures: retrying later may succeed. */
const TRANSIENT_CODES: ReadonlySet<string> = new Set([
  'ENOSPC',
  'EDQUOT',
  'EIO',
  'EMFILE',
  'ENFILE',
  'EAGAIN',
  'EWOULDBLOCK',
  'EBUSY',
  'EINTR',
  'ETIMEDOUT',
  'ESTALE',
  'ENOMEM',
]);
/** errno codes of permanent refusals: fix the configuration (permissions, mount options). */
const CONFIG_CODES: ReadonlySet<string> = new Set(['EACCES', 'EPERM', 'EROFS']);

/** `ENOENT` or `ENOTDIR`: nothing there. */
export function isMissing(error: unknown): boolean {
  const code = errorCodeOf(error);
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/**
 * `<root>/relative/path` for messages; never more of the absolute path. A path under the root's
 * real path (reads open files through it) is named relative to that.
 */
export function displayPath(p: string, root: string, rootReal: string | undefined): string {
  const base = rootReal !== undefined && isInside(rootReal, p) ? rootReal : root;
  const rel = path.relative(base, p);
  if (rel === '') return '<root>';
  return `<root>/${rel.split(path.sep).join('/')}`;
}

/** What {@link fsError} needs from the driver. */
export interface FsErrorContext {
  /** Name of the driver instance. */
  readonly driverName: string;
  /** How a path appears in the message (see {@link displayPath}). */
  readonly displayPath: (p: string) => string;
}

/**
 * Converts an error from `fs` into a `StorageDriverError`: `ENOSPC`, `EDQUOT`, `EIO`, `EMFILE`,
 * `ENFILE`, `EAGAIN`, `EBUSY`, `EINTR`, `ETIMEDOUT`, `ESTALE`, `ENOMEM` → `E_BACKEND`
 * (retryable); `EACCES`, `EPERM`, `EROFS` → `E_CONFIG` (not retryable); any other errno →
 * `E_BACKEND` (not retryable); anything else → `E_BACKEND` (retryable). A `StorageDriverError`
 * is returned as it is.
 *
 * @param kind - the operation, first word of the message (`store failed: …`).
 */
export function fsError(error: unknown, kind: string, ctx: FsErrorContext): StorageDriverError {
  if (isStorageDriverError(error)) return error;
  const create = (code: StorageDriverErrorCode, message: string, retryable: boolean) =>
    new StorageDriverError(code, message, { driverName: ctx.driverName, cause: error, retryable });
  const code = errorCodeOf(error);
  if (code === undefined) {
    const message = error instanceof Error ? error.message : String(error);
    return create(StorageDriverErrorCode.BACKEND, `${kind} failed: ${message}`, true);
  }
  const e = error as NodeJS.ErrnoException;
  const where = typeof e.path === 'string' ? ` on ${ctx.displayPath(e.path)}` : '';
  const syscall = typeof e.syscall === 'string' ? ` (${e.syscall})` : '';
  const message = `${kind} failed: ${code}${syscall}${where}`;
  if (CONFIG_CODES.has(code)) {
    return create(
      StorageDriverErrorCode.CONFIG,
      `${message}: the driver cannot write or read its root; check permissions and mount options`,
      false,
    );
  }
  return create(StorageDriverErrorCode.BACKEND, message, TRANSIENT_CODES.has(code));
}
