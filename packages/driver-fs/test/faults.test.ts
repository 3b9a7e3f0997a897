/**
 * Filesystem faults on real mounts and real permissions: a read-only root (a bind mount remounted
 * read-only), permission denied (EACCES, seen by a child process running as `nobody`, since root
 * bypasses permission bits), and a full disk (a small tmpfs). Each case shows a coded
 * StorageDriverError with the right `retryable` flag, no claim for a payload not durably
 * written, every key absent or exact afterwards with no torn file and no temp file left, and a
 * successful next call once the fault is gone. Cases needing `mount` are skipped (with the reason
 * printed) where the process may not mount.
 */
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { chmod, mkdir, readdir, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { type Payload, StorageDriverClaim } from '@x/storage-driver-core';
import {
  captureStorageDriverError,
  countPresentExact,
  expectedClaims,
  makePayload,
  pseudoRandomBytes,
} from '@x/storage-driver-test-suite';
import { FsStorageDriver } from '../src';
import { tornFiles } from './fault-checks';
import { nobody, runAsNobody } from './fault-unprivileged';
import { canMount, cleanup, makeTempDir, payload, tryRun } from './helpers';

const isRoot = process.getuid?.() === 0;
const hasNobody = tryRun('id', ['-u', 'nobody']);

/** `it`, or `it.skip` with the reason printed. */
function itIf(capable: boolean, reason: string): typeof it.skip {
  if (capable) return it;
  console.warn(`driver-fs faults: skipped: ${reason}`);
  return it.skip;
}

let dir: string;
let mounts: string[];
beforeEach(async () => {
  dir = await makeTempDir('driver-fs-faults-');
  mounts = [];
});
afterEach(async () => {
  for (const m of mounts.reverse()) tryRun('umount', [m]);
  await cleanup(dir);
});

/** `count` distinct binary payloads of `size` bytes. */
function binaryBatch(count: number, size: number, seed: number): Payload[] {
  return Array.from({ length: count }, (_, i) => makePayload(pseudoRandomBytes(size, seed + i)));
}

/** Mounts (recording it for afterEach) or fails the test. */
function mount(args: string[], target: string): void {
  expect(tryRun('mount', [...args, target])).toBe(true);
  mounts.push(target);
}

describe('read-only root (bind mount remounted read-only)', () => {
  itIf(canMount, 'mounting is not permitted (needs CAP_SYS_ADMIN)')(
    'store fails with E_CONFIG (EROFS, not retryable), no claim, nothing written; reads keep working; after remounting read-write the batch stores',
    async () => {
      const root = path.join(dir, 'store');
      const driver = new FsStorageDriver({ root });
      const kept = binaryBatch(3, 4096, 10);
      const keptClaims = await driver.store({}, kept);
      mount(['--bind', root], root);
      mount(['-o', 'remount,bind,ro', root], root);

      // New payloads and a dedup hit (whose mtime cannot be refreshed) in one batch.
      const batch = [...binaryBatch(5, 4096, 20), kept[0] as Payload];
      const error = await captureStorageDriverError(() => driver.store({}, batch));
      expect([error.code, error.retryable]).toEqual(['E_CONFIG', false]);
      expect(error.message).toContain('EROFS');
      expect(error.message).not.toContain(dir);
      const claims = await expectedClaims(driver, batch);
      expect(await countPresentExact(driver, claims.slice(0, 5), batch.slice(0, 5))).toBe(0);
      expect(await countPresentExact(driver, keptClaims, kept)).toBe(3);
      expect(await tornFiles(root)).toEqual([]);

      // Back to read-write (the bind mount goes away): the same batch stores.
      tryRun('umount', [root]);
      mounts.pop();
      mounts.pop();
      expect((await driver.store({}, batch)).map((c) => c.claimData)).toEqual(claims.map((c) => c.claimData));
      expect(await countPresentExact(driver, claims, batch)).toBe(batch.length);
      expect(await readdir(path.join(root, '.tmp'))).toEqual([]);
    },
  );
});

describe('permission denied (EACCES, a child process running as nobody)', () => {
  itIf(isRoot && hasNobody, 'needs root (to drop privileges to nobody) and a nobody user')(
    'store and retrieve fail with E_CONFIG (EACCES, not retryable), no claim, nothing written; after a chown to nobody both succeed',
    async () => {
      await chmod(dir, 0o755); // nobody may traverse the temp dir, not write into it
      const root = path.join(dir, 'store');
      const owner = new FsStorageDriver({ root }); // as root: root and files are root's, 0o700 / 0o600
      const kept = [payload('written by root')];
      const keptClaims = await owner.store({}, kept);
      const texts = ['denied 1', 'denied 2', 'denied 3'];
      const batch = texts.map((t) => payload(t));

      const [store, retrieve] = await runAsNobody(root, [
        { store: texts },
        { retrieve: keptClaims.map((c) => c.claimData) },
      ]);
      for (const result of [store, retrieve]) {
        expect(result).toMatchObject({ ok: false, code: 'E_CONFIG', retryable: false });
        expect(result?.ok === false && result.message).toContain('EACCES');
      }
      const claims = await expectedClaims(owner, batch);
      expect(await countPresentExact(owner, claims, batch)).toBe(0);
      expect(await tornFiles(root)).toEqual([]);

      // Recovery: the store belongs to nobody now.
      const { uid, gid } = nobody();
      execFileSync('chown', ['-R', `${uid}:${gid}`, root]);
      const [stored, read] = await runAsNobody(root, [
        { store: texts },
        { retrieve: keptClaims.map((c) => c.claimData) },
      ]);
      expect(read).toEqual({ ok: true, texts: ['"written by root"'] });
      expect(stored?.ok === true && stored.claims).toEqual(claims.map((c) => c.claimData));
      const back = (stored?.ok === true ? (stored.claims ?? []) : []).map((d) => new StorageDriverClaim(d));
      expect(await countPresentExact(owner, back, batch)).toBe(batch.length);
      expect(await readdir(path.join(root, '.tmp'))).toEqual([]);
    },
  );
});

describe('full disk (a 1 MiB tmpfs)', () => {
  itIf(canMount, 'mounting is not permitted (needs CAP_SYS_ADMIN)')(
    'store fails with E_BACKEND (ENOSPC, retryable), no claim, each payload absent or exact, no temp file; after freeing space the batch stores',
    async () => {
      const mnt = path.join(dir, 'tiny');
      await mkdir(mnt);
      mount(['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs'], mnt);
      const root = path.join(mnt, 'store');
      const driver = new FsStorageDriver({ root });
      const kept = binaryBatch(2, 4096, 30);
      const keptClaims = await driver.store({}, kept);
      const filler = path.join(mnt, 'filler');
      await writeFile(filler, new Uint8Array(512 * 1024));

      // 12 × 64 KiB = 768 KiB against ~500 KiB free: some files fit, the rest hit ENOSPC mid-write.
      const batch = binaryBatch(12, 64 * 1024, 40);
      const error = await captureStorageDriverError(() => driver.store({}, batch));
      expect([error.code, error.retryable]).toEqual(['E_BACKEND', true]);
      expect(error.message).toContain('ENOSPC');
      const claims = await expectedClaims(driver, batch);
      const present = await countPresentExact(driver, claims, batch);
      expect(present).toBeLessThan(batch.length);
      expect(await countPresentExact(driver, keptClaims, kept)).toBe(2);
      expect(await tornFiles(root)).toEqual([]);
      expect(await readdir(path.join(root, '.tmp'))).toEqual([]); // partial temp files removed

      rmSync(filler);
      expect((await driver.store({}, batch)).map((c) => c.claimData)).toEqual(claims.map((c) => c.claimData));
      expect(await countPresentExact(driver, claims, batch)).toBe(batch.length);
    },
  );
});
