/**
 * Symlinks planted in the store's own directories must never redirect writes, reads or sweeps
 * outside the root; a re-pointed root symlink takes effect without a restart.
 */
import { mkdir, readdir, rename, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { FsStorageDriver } from '../src';
import { cleanup, errorCode, keyOf, makeTempDir, payload, text } from './helpers';

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
  it('a .tmp symlink: store and sweep refuse with E_CONFIG and touch nothing outside', async () => {
    const root = path.join(dir, 'store');
    await mkdir(root);
    await symlink(outside, path.join(root, '.tmp'));
    const d = new FsStorageDriver({ root, ttl: HOUR });
    expect(await errorCode(() => d.store({}, [payload('x')]))).toBe('E_CONFIG');
    jest.spyOn(Date, 'now').mockReturnValue(Date.now() + 10 * HOUR);
    expect(await errorCode(() => d.sweep())).toBe('E_CONFIG');
    expect(await errorCode(() => d.sweep({ dryRun: true }))).toBe('E_CONFIG');
    expect(await readdir(outside)).toEqual(['id_rsa']);
  });

  it('a v0 symlink: store refuses with E_CONFIG and writes nothing outside', async () => {
    const root = path.join(dir, 'store');
    await mkdir(root);
    await symlink(outside, path.join(root, 'v0'));
    const d = new FsStorageDriver({ root });
    expect(await errorCode(() => d.store({}, [payload('x')]))).toBe('E_CONFIG');
    expect(await readdir(outside)).toEqual(['id_rsa']);
  });

  it('a symlinked directory inside v0: store refuses with E_CONFIG before writing through it', async () => {
    const root = path.join(dir, 'store');
    const d = new FsStorageDriver({ root });
    await d.store({}, [payload('creates v0')]);
    await rm(path.join(root, 'v0', 'd'), { recursive: true });
    await symlink(outside, path.join(root, 'v0', 'd'));
    expect(await errorCode(() => d.store({}, [payload('redirected?')]))).toBe('E_CONFIG');
    expect(await readdir(outside)).toEqual(['id_rsa']);
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

describe('a payload moved aside for a moment (a sweep re-checking a re-referenced file)', () => {
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
