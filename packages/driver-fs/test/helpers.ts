/** Shared helpers for the driver-fs tests: temp roots, payloads, claims. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  type Payload,
  StorageDriverClaim,
  type StorageDriverErrorCode,
  type StorageDriverTargetInfo,
} from '@x/storage-driver-core';
import { captureStorageDriverError } from '@x/storage-driver-test-suite';
import { FsStorageDriver, type FsStorageDriverOptions } from '../src';

const encoder = new TextEncoder();

/** A fresh temp directory under os.tmpdir(); remember to `cleanup()` it. */
export async function makeTempDir(prefix = 'driver-fs-'): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), prefix));
}

/** Removes a temp directory (ignores errors). */
export async function cleanup(dir: string | undefined): Promise<void> {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true }).catch(() => {});
}

/** A driver over `<dir>/store` (the root itself does not exist yet). */
export function makeDriver(dir: string, options: Partial<FsStorageDriverOptions> = {}): FsStorageDriver {
  return new FsStorageDriver({ root: path.join(dir, 'store'), ...options });
}

/** A JSON payload with the given text. */
export function payload(text: string, extraMetadata: Record<string, string> = {}): Payload {
  const metadata: Record<string, Uint8Array> = { encoding: encoder.encode('json/plain') };
  for (const [k, v] of Object.entries(extraMetadata)) metadata[k] = encoder.encode(v);
  return { metadata, data: encoder.encode(JSON.stringify(text)) };
}

/** A workflow target. */
export function workflowTarget(id: string, overrides: Partial<StorageDriverTargetInfo> = {}): StorageDriverTargetInfo {
  return { kind: 'workflow', namespace: 'default', type: 'MyWorkflow', id, runId: 'run-1', ...overrides };
}

/**
 * A target whose key is exactly 1,024 characters (the longest core writes) and maps to the longest
 * path any such key can (`MAX_DIRECT_PATH_BYTES`, 1,044 bytes): `..` as namespace and type (each
 * `%2E%2E`), an id of 802 characters ending in `..` (four `~` chunks and an escaped tail) and a
 * 126-character run id.
 */
export function longestPathTarget(): StorageDriverTargetInfo {
  return workflowTarget(`${'x'.repeat(800)}..`, { namespace: '..', type: '..', runId: 'r'.repeat(126) });
}

/** A claim with `key` replaced (hash fields kept). */
export function withKey(claim: StorageDriverClaim, key: string): StorageDriverClaim {
  return new StorageDriverClaim({ ...claim.claimData, key });
}

/** Runs `fn` and returns the StorageDriverError code it rejects with (fails if it resolves). */
export async function errorCode(fn: () => Promise<unknown>): Promise<StorageDriverErrorCode> {
  return (await captureStorageDriverError(fn)).code;
}

/** Walks `dir` recursively; returns `/`-separated relative paths of files or of directories. */
async function walkTree(dir: string, want: 'files' | 'dirs'): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string, rel: string): Promise<void> => {
    let entries: import('node:fs').Dirent[];
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const r = rel === '' ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory()) {
        if (want === 'dirs') out.push(r);
        await walk(path.join(d, e.name), r);
      } else if (want === 'files') out.push(r);
    }
  };
  await walk(dir, '');
  return out.sort();
}

/** Every non-directory entry under `dir`, as `/`-separated paths relative to it. */
export function listFiles(dir: string): Promise<string[]> {
  return walkTree(dir, 'files');
}

/** Every directory under `dir` (not `dir` itself), as relative paths. */
export function listDirs(dir: string): Promise<string[]> {
  return walkTree(dir, 'dirs');
}

/** Payload files (under `v0/`) of a driver's root. */
export async function payloadFiles(driver: FsStorageDriver): Promise<string[]> {
  return (await listFiles(path.join(driver.root, 'v0'))).map((f) => `v0/${f}`);
}

/** Decodes a payload's data as UTF-8. */
export function text(p: Payload | undefined): string {
  return new TextDecoder().decode(p?.data ?? new Uint8Array());
}

/** The `key` of a claim (fails the test if the claim is missing). */
export function keyOf(claim: StorageDriverClaim | undefined): string {
  const key = claim?.claimData.key;
  if (key === undefined) throw new Error('claim has no key');
  return key;
}

/** Runs a command; false if it fails (not privileged, tool missing, ...). */
export function tryRun(cmd: string, args: string[]): boolean {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether this process may mount (tmpfs, read-only bind: CAP_SYS_ADMIN), probed once with a
 * 64 KiB tmpfs. Tests that need it are reported as skipped where it is missing, never as passed.
 */
export const canMount: boolean = (() => {
  const probe = mkdtempSync(path.join(os.tmpdir(), 'fs-caps-'));
  try {
    return tryRun('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', probe]) && tryRun('umount', [probe]);
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
})();
