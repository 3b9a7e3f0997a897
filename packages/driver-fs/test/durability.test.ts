/**
 * The durability promise of the README, observed: a new payload's bytes are fsynced before
 * `link()` (or `rename()`) puts the file in place; every directory that gained an entry — the
 * file's directory, each directory the store created, and the directory that gained the first of
 * them — is fsynced after the links and before `store` resolves, once per batch; a dedup hit
 * writes and fsyncs nothing.
 *
 * The fsyncs are observed where the driver makes them: `FileHandle.prototype.sync`/`datasync`
 * and the callback and sync forms of `fs.fsync`/`fdatasync` are wrapped (the real call still
 * runs), and each fsynced descriptor is named by `/proc/self/fd` at the moment of the call, so
 * the test does not depend on how the driver opened it. `link()` and `rename()` are wrapped the
 * same way to check the order.
 */
import type * as fs from 'node:fs';
import { existsSync, readlinkSync, realpathSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it, jest } from '@jest/globals';
import type { FsStorageDriver } from '../src';
import { cleanup, keyOf, listDirs, makeDriver, makeTempDir, payload, workflowTarget } from './helpers';

// The real module objects (not esModuleInterop copies), so the wrappers reach the driver's calls.
const fsp: typeof import('node:fs/promises') = require('node:fs/promises');
const fsCallbacks: typeof import('node:fs') = require('node:fs');

/** One observed call: an fsync of a path, or a `link`/`rename` from one path to another. */
type FsCall =
  | { readonly call: 'fsync'; readonly path: string }
  | { readonly call: 'link' | 'rename'; readonly from: string; readonly to: string };

const hasProcFds = existsSync('/proc/self/fd');

/** The path a descriptor of this process is open on. */
function pathOfFd(fd: number): string {
  return readlinkSync(`/proc/self/fd/${fd}`);
}

let fileHandlePrototype: FileHandle;
beforeAll(async () => {
  const handle = await fsp.open(__filename, 'r');
  fileHandlePrototype = Object.getPrototypeOf(handle) as FileHandle;
  await handle.close();
});

/** Starts recording fsyncs, links and renames (until `jest.restoreAllMocks()`). */
function recordFsCalls(): FsCall[] {
  const calls: FsCall[] = [];
  const fsync = (fd: number) => calls.push({ call: 'fsync', path: pathOfFd(fd) });
  for (const method of ['sync', 'datasync'] as const) {
    const real = fileHandlePrototype[method];
    jest.spyOn(fileHandlePrototype, method).mockImplementation(async function (this: FileHandle) {
      fsync(this.fd);
      return real.call(this);
    });
  }
  for (const method of ['fsync', 'fdatasync'] as const) {
    const real = fsCallbacks[method];
    jest.spyOn(fsCallbacks, method).mockImplementation(((fd: number, callback: fs.NoParamCallback) => {
      fsync(fd);
      real(fd, callback);
    }) as typeof real);
  }
  for (const method of ['fsyncSync', 'fdatasyncSync'] as const) {
    const real = fsCallbacks[method];
    jest.spyOn(fsCallbacks, method).mockImplementation((fd: number) => {
      fsync(fd);
      real(fd);
    });
  }
  for (const method of ['link', 'rename'] as const) {
    const real = fsp[method];
    jest.spyOn(fsp, method).mockImplementation(async (from, to) => {
      calls.push({ call: method, from: String(from), to: String(to) });
      return real(from, to);
    });
  }
  return calls;
}

/** Paths fsynced, in order. */
function fsynced(calls: FsCall[]): string[] {
  return calls.flatMap((c) => (c.call === 'fsync' ? [c.path] : []));
}

/** Index of the first call matching `match` (fails the test when there is none). */
function indexOf(calls: FsCall[], match: (c: FsCall) => boolean, what: string): number {
  const i = calls.findIndex(match);
  if (i < 0) throw new Error(`no ${what} among ${JSON.stringify(calls)}`);
  return i;
}

/** Absolute paths of every directory below `<root>/v0`, and `v0` itself. */
async function payloadDirectories(driver: FsStorageDriver): Promise<string[]> {
  const v0 = path.join(driver.root, 'v0');
  return [v0, ...(await listDirs(v0)).map((d) => path.join(v0, ...d.split('/')))];
}

let dir: string;
let driver: FsStorageDriver;
beforeEach(async () => {
  // The real path, so that paths named by /proc/self/fd compare equal to the driver's.
  dir = realpathSync(await makeTempDir('driver-fs-durability-'));
  driver = makeDriver(dir);
});
afterEach(async () => {
  jest.restoreAllMocks();
  await cleanup(dir);
});

(hasProcFds ? describe : describe.skip)('fsync of a store (names descriptors by /proc/self/fd)', () => {
  it("fsyncs a new payload's temp file once, before link() puts it in place", async () => {
    const calls = recordFsCalls();
    const [claim] = await driver.store({ target: workflowTarget('wf-1') }, [payload('a')]);
    const final = driver.pathForKey(keyOf(claim));
    const linked = indexOf(calls, (c) => c.call === 'link' && c.to === final, 'link() to the final path');
    const temp = (calls[linked] as { from: string }).from;
    expect(path.dirname(temp)).toBe(path.join(driver.root, '.tmp'));
    const files = fsynced(calls).filter((p) => p.startsWith(path.join(driver.root, '.tmp')));
    expect(files).toEqual([temp]);
    expect(indexOf(calls, (c) => c.call === 'fsync' && c.path === temp, 'fsync of the temp file')).toBeLessThan(linked);
  });

  it('fsyncs every directory a store created, and v0 that gained the first, once per batch, after the links', async () => {
    const calls = recordFsCalls();
    const target = { target: workflowTarget('wf-1') };
    await driver.store(target, [payload('a'), payload('b'), payload('c')]);
    const directories = await payloadDirectories(driver);
    expect(directories.length).toBeGreaterThan(3); // v0, the workflow's directories, d/sha256
    const syncedDirectories = fsynced(calls).filter((p) => p.startsWith(path.join(driver.root, 'v0')));
    expect([...syncedDirectories].sort()).toEqual([...directories].sort()); // each exactly once
    const lastLink = calls.map((c) => c.call).lastIndexOf('link');
    const firstDirectorySync = calls.findIndex((c) => c.call === 'fsync' && directories.includes(c.path));
    expect(firstDirectorySync).toBeGreaterThan(lastLink);
    // The three temp files: one fsync each.
    expect(fsynced(calls).filter((p) => p.startsWith(path.join(driver.root, '.tmp')))).toHaveLength(3);
  });

  it('the first store into a fresh root fsyncs the root and the directory that gained it; later stores do not', async () => {
    const root = driver.root;
    const calls = recordFsCalls();
    await driver.store({}, [payload('first')]);
    const outside = fsynced(calls).filter((p) => !p.startsWith(`${root}/`));
    expect(outside.sort()).toEqual([root, path.dirname(root)].sort());
    calls.length = 0;
    await driver.store({}, [payload('second')]);
    expect(fsynced(calls).filter((p) => !p.startsWith(`${root}/`))).toEqual([]);
  });

  it('a store into an existing directory fsyncs its file and that directory only', async () => {
    const target = { target: workflowTarget('wf-1') };
    await driver.store(target, [payload('a')]);
    const calls = recordFsCalls();
    const [claim] = await driver.store(target, [payload('b')]);
    const final = driver.pathForKey(keyOf(claim));
    const temp = (calls[indexOf(calls, (c) => c.call === 'link' && c.to === final, 'link()')] as { from: string }).from;
    expect(fsynced(calls)).toEqual([temp, path.dirname(final)]);
  });

  it("a new workflow's directories are fsynced, and the existing directory that gained the first of them", async () => {
    await driver.store({ target: workflowTarget('wf-1') }, [payload('a')]);
    const before = new Set(await payloadDirectories(driver));
    const calls = recordFsCalls();
    await driver.store({ target: workflowTarget('wf-2') }, [payload('a')]);
    const created = (await payloadDirectories(driver)).filter((d) => !before.has(d));
    expect(created.length).toBeGreaterThan(1);
    const topmost = created.reduce((a, b) => (a.length <= b.length ? a : b));
    expect(before.has(path.dirname(topmost))).toBe(true);
    const syncedDirectories = fsynced(calls).filter((p) => !p.startsWith(path.join(driver.root, '.tmp')));
    expect([...syncedDirectories].sort()).toEqual([...created, path.dirname(topmost)].sort());
  });

  it('a dedup hit writes nothing and fsyncs nothing', async () => {
    const target = { target: workflowTarget('wf-1') };
    await driver.store(target, [payload('a'), payload('b')]);
    const calls = recordFsCalls();
    const opens = jest.spyOn(fsp, 'open');
    await driver.store(target, [payload('a'), payload('b'), payload('a')]);
    expect(calls).toEqual([]);
    expect(opens).not.toHaveBeenCalled();
  });

  it('a damaged file is replaced: the new bytes are fsynced before the rename, its directory after', async () => {
    const [claim] = await driver.store({}, [payload('a')]);
    const final = driver.pathForKey(keyOf(claim));
    await writeFile(final, 'torn');
    const calls = recordFsCalls();
    await driver.store({}, [payload('a')]);
    const renamed = indexOf(calls, (c) => c.call === 'rename' && c.to === final, 'rename() over the damaged file');
    const temp = (calls[renamed] as { from: string }).from;
    expect(fsynced(calls)).toEqual([temp, path.dirname(final)]);
    expect(indexOf(calls, (c) => c.call === 'fsync' && c.path === temp, 'fsync of the temp file')).toBeLessThan(
      renamed,
    );
  });
});
