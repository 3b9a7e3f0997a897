/**
 * Symlinks planted in the store's own directories must never redirect writes, reads, listings or
 * deletes outside the root; a re-pointed root symlink takes effect without a restart.
 */
import { mkdir, readdir, rename, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { FsStorageDriver } from '../src';
import { cleanup, errorCode, keyOf, makeTempDir, payload, text } from './helpers';

async function listKeys(d: FsStorageDriver, prefix?: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const o of d.list(prefix === undefined ? {} : { prefix })) keys.push(o.key);
  return keys;
}

const HOUR = 3600_000;
let dir: string;
let outside: string;
beforeEach(async () => {
  dir = await makeTempDir('fs-contain-');
  outside = path.join(dir, 'outside');
  await mkdir(outside);
  await writeFile(path.join(outside, 'id_rsa'), 'secret');
  await utimes(path.join(outside, 'id_rsa'), new Date(0), new Date(0));
});
afterEach(async () => {
  jest.restoreAllMocks();
  await cleanup(dir);
});

describe('planted symlinks in the root', () => {
  it('a .tmp symlink: store, list, delete and deleteExpired (dry run too) refuse with E_CONFIG and touch nothing outside', async () => {
    const root = path.join(dir, 'store');
    await mkdir(root);
    await symlink(outside, path.join(root, '.tmp'));
    // A file named like the driver's temp files, old enough to be removed: outside the root.
    await writeFile(path.join(outside, `put-1-${'a'.repeat(24)}`), 'not yours');
    await utimes(path.join(outside, `put-1-${'a'.repeat(24)}`), new Date(0), new Date(0));
    const d = new FsStorageDriver({ root, ttl: HOUR });
    expect(await errorCode(() => d.store({}, [payload('x')]))).toBe('E_CONFIG');
    jest.spyOn(Date, 'now').mockReturnValue(Date.now() + 10 * HOUR);
    expect(await errorCode(() => d.deleteExpired())).toBe('E_CONFIG');
    expect(await errorCode(() => d.deleteExpired({ dryRun: true }))).toBe('E_CONFIG');
    expect(await errorCode(() => listKeys(d))).toBe('E_CONFIG');
    expect(await errorCode(() => d.delete([`v0/d/sha256/${'a'.repeat(64)}`]))).toBe('E_CONFIG');
    expect((await readdir(outside)).sort()).toEqual(['id_rsa', `put-1-${'a'.repeat(24)}`]);
  });

  it('a v0 symlink: store, list, delete and deleteExpired refuse with E_CONFIG and touch nothing outside', async () => {
    const root = path.join(dir, 'store');
    await mkdir(root);
    // What the symlink points at looks like a store with an expired payload.
    await mkdir(path.join(outside, 'd', 'sha256'), { recursive: true });
    const planted = path.join(outside, 'd', 'sha256', 'a'.repeat(64));
    await writeFile(planted, 'secret');
    await utimes(planted, new Date(0), new Date(0));
    await symlink(outside, path.join(root, 'v0'));
    const d = new FsStorageDriver({ root, ttl: HOUR });
    expect(await errorCode(() => d.store({}, [payload('x')]))).toBe('E_CONFIG');
    expect(await errorCode(() => listKeys(d))).toBe('E_CONFIG');
    expect(await errorCode(() => d.deleteExpired())).toBe('E_CONFIG');
    expect(await errorCode(() => d.deleteExpired({ dryRun: true }))).toBe('E_CONFIG');
    expect(await errorCode(() => d.delete([`v0/d/sha256/${'a'.repeat(64)}`]))).toBe('E_CONFIG');
    expect((await readdir(outside)).sort()).toEqual(['d', 'id_rsa']);
    expect(await readdir(path.join(outside, 'd', 'sha256'))).toEqual(['a'.repeat(64)]);
  });

  it('a symlinked directory inside v0: store refuses, list does not follow it, delete refuses per file, nothing outside is touched', async () => {
    const root = path.join(dir, 'store');
    const d = new FsStorageDriver({ root, ttl: HOUR });
    const [kept] = await d.store({ target: { kind: 'workflow', namespace: 'ns', type: 't', id: 'i', runId: 'r' } }, [
      payload('creates v0'),
    ]);
    await d.store({}, [payload('creates v0/d')]);
    await rm(path.join(root, 'v0', 'd'), { recursive: true });
    // The symlink leads to a tree that looks like v0/d/sha256/<hex>, with an expired file.
    await mkdir(path.join(outside, 'sha256'));
    const planted = path.join(outside, 'sha256', 'b'.repeat(64));
    await writeFile(planted, 'secret');
    await utimes(planted, new Date(0), new Date(0));
    await symlink(outside, path.join(root, 'v0', 'd'));
    expect(await errorCode(() => d.store({}, [payload('redirected?')]))).toBe('E_CONFIG');
    expect(await listKeys(d)).toEqual([keyOf(kept)]);
    expect(await listKeys(d, 'v0/d/')).toEqual([]);
    expect(await listKeys(d, 'v0/d/sha256/')).toEqual([]);
    const removed = await d.deleteExpired({ olderThan: 0 });
    expect(removed).toMatchObject({ removed: 1, errors: [] }); // the real payload, not the planted one
    for (const referencedBefore of [undefined, new Date()]) {
      const r = await d.delete([`v0/d/sha256/${'b'.repeat(64)}`], referencedBefore ? { referencedBefore } : {});
      expect(r.deleted).toBe(0);
      expect(r.errors.map((e) => e.code)).toEqual(['E_INVALID_CLAIM']);
      expect(r.errors[0]?.message).toContain('outside the root');
    }
    expect((await readdir(outside)).sort()).toEqual(['id_rsa', 'sha256']);
    expect(await readdir(path.join(outside, 'sha256'))).toEqual(['b'.repeat(64)]);
  });

  it('the root is a file: E_CONFIG', async () => {
    const root = path.join(dir, 'file');
    await writeFile(root, 'not a directory');
    expect(await errorCode(() => new FsStorageDriver({ root }).store({}, [payload('x')]))).toBe('E_CONFIG');
  });
});

describe('root symlink', () => {
  it('re-pointing the root symlink takes effect for the next call (no stale cached real path)', async () => {
    const a = path.join(dir, 'disk-a');
    const b = path.join(dir, 'disk-b');
    await mkdir(a);
    await mkdir(b);
    const current = path.join(dir, 'current');
    await symlink(a, current);
    const d = new FsStorageDriver({ root: current });
    const onA = await d.store({}, [payload('on a')]);
    expect(text((await d.retrieve({}, onA))[0])).toBe('"on a"');
    await rm(current);
    await symlink(b, current);
    const onB = await d.store({}, [payload('on b')]);
    expect(text((await d.retrieve({}, onB))[0])).toBe('"on b"');
    expect(await errorCode(() => d.retrieve({}, onA))).toBe('E_NOT_FOUND');
  });
});

describe('a payload moved aside for a moment (a conditional delete re-checking a re-referenced file)', () => {
  it('is read after one short retry instead of failing with E_NOT_FOUND', async () => {
    const root = path.join(dir, 'store');
    const d = new FsStorageDriver({ root });
    const claims = await d.store({}, [payload('blink')]);
    const file = d.pathForKey(keyOf(claims[0]));
    const aside = path.join(root, '.tmp', 'aside');
    await rename(file, aside);
    setTimeout(() => void rename(aside, file), 5);
    expect(text((await d.retrieve({}, claims))[0])).toBe('"blink"');
  });
});
