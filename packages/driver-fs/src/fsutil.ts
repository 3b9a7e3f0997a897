/**
 * Small filesystem helpers shared by the driver's store/retrieve path and its lifecycle code.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import * as path from 'node:path';
import { isStorageDriverError } from '@x/storage-driver-core';

/** Retries of the mkdir+link loops when a concurrent delete keeps removing an empty directory. */
export const MAX_PUT_ATTEMPTS = 8;

/** errno codes of `link()` on filesystems without hard links; the driver then uses `rename()`. */
export const LINK_UNSUPPORTED_CODES: ReadonlySet<string> = new Set([
  'EPERM',
  'ENOTSUP',
  'EOPNOTSUPP',
  'ENOSYS',
  'EMLINK',
]);

/**
 * Names of the files the driver writes in `.tmp`: `put-…` (a store's temp file) and `sweep-…`
 * (a conditional delete's quarantine). The only files its housekeeping ever deletes there.
 */
export const TEMP_FILE_NAME = /^(?:put|sweep)-\d+-[0-9a-f]{24}$/;

/** A fresh, unguessable name for a file in `.tmp` (matches {@link TEMP_FILE_NAME}). */
export function tempFileName(kind: 'put' | 'sweep'): string {
  return `${kind}-${process.pid}-${randomBytes(12).toString('hex')}`;
}

/** The errno code of a Node.js filesystem error, if it is one. */
export function errnoCode(error: unknown): string | undefined {
  if (isStorageDriverError(error)) return undefined;
  if (typeof error !== 'object' || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/** `ENOENT` or `ENOTDIR`: nothing there. */
export function isMissing(error: unknown): boolean {
  const code = errnoCode(error);
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** Whether `child` is `parent` or lies below it (both absolute, normalised). */
export function isInside(parent: string, child: string): boolean {
  if (child === parent) return true;
  const prefix = parent.endsWith(path.sep) ? parent : parent + path.sep;
  return child.startsWith(prefix);
}

/** `mkdir -p` with mode 0o700; returns the first directory created, if any. */
export async function mkdirs(dir: string): Promise<string | undefined> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await mkdir(dir, { recursive: true, mode: 0o700 });
    } catch (e) {
      // A concurrent delete removed a parent between two steps of the recursive mkdir.
      if (errnoCode(e) !== 'ENOENT' || attempt >= MAX_PUT_ATTEMPTS) throw e;
    }
  }
}
