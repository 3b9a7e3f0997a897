/**
 * The filesystem side of the lifecycle contract, beyond what the conformance suite checks: the
 * directories deletes leave empty, the temporary files of crashed writers, the quarantine of
 * conditional deletes racing real stores, foreign files and planted symlinks, per-file failures,
 * the clock option, and the bounded memory of `list` on a large tree.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, futimesSync, mkdirSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, readdir, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { buildStorageKey, type StorageDriverClaim, type StoredObject } from '@x/storage-driver-core';
import { FS_TEMP_FILE_MAX_AGE, type FsStorageDriver, keyToStoragePath } from '../src';
import {
  cleanup,
  errorCode,
  keyOf,
  listDirs,
  longestPathTarget,
  makeDriver,
  makeTempDir,
  payload,
  payloadFiles,
  text,
  tryRun,
  workflowTarget,
} from './helpers';

// The real module object (not an esModuleInterop copy), so spies reach the driver's calls.
const fsp: typeof import('node:fs/promises') = require('node:fs/promises');

const HOUR = 3600_000;
const DAY = 24 * HOUR;

let dir: string;
beforeEach(async () => {
  dir = await makeTempDir('fs-lifecycle-');
});
afterEach(async () => {
  jest.restoreAllMocks();
  await cleanup(dir);
});

/** Moves the mtime (last-referenced time) of the claims' files `ms` into the past. */
async function age(driver: FsStorageDriver, claims: (StorageDriverClaim | undefined)[], ms: number): Promise<void> {
  for (const claim of claims) {
    const t = new Date(Date.now() - ms);
    await utimes(driver.pathForKey(keyOf(claim)), t, t);
  }
}

async function collect(iterable: AsyncIterable<StoredObject>): Promise<StoredObject[]> {
  const out: StoredObject[] = [];
  for await (const o of iterable) out.push(o);
  return out;
}

const keysOf = async (d: FsStorageDriver, prefix?: string) =>
  (await collect(d.list(prefix === undefined ? {} : { prefix }))).map((o) => o.key).sort();

describe('deleteExpired on a filesystem', () => {
  it('removes expired payloads and the directories they leave empty, keeps fresh ones; a store recreates them', async () => {
    const d = makeDriver(dir, { ttl: DAY });
    const [oldClaim] = await d.store({ target: workflowTarget('old-wf') }, [payload('old')]);
    const [keptClaim] = await d.store({ target: workflowTarget('fresh-wf') }, [payload('fresh')]);
    const [oldFlat] = await d.store({}, [payload('old flat')]);
    await age(d, [oldClaim], 2 * DAY);
    await age(d, [oldFlat], 3 * DAY);
    const oldBytes = (await stat(d.pathForKey(keyOf(oldClaim)))).size + (await stat(d.pathForKey(keyOf(oldFlat)))).size;
    const listed = await collect(d.list({ olderThan: DAY }));
    expect(listed.map((o) => o.key).sort()).toEqual([keyOf(oldClaim), keyOf(oldFlat)].sort());
    for (const o of listed) expect(o.lastReferenced?.getTime()).toBeLessThan(Date.now() - DAY);

    const result = await d.deleteExpired();
    expect(result).toEqual({ scanned: 2, removed: 2, removedBytes: oldBytes, more: false, errors: [] });
    expect(await payloadFiles(d)).toEqual([keyOf(keptClaim)]);
    // The old workflow's directory chain and v0/d/sha256 are gone; v0 stays.
    const dirs = await listDirs(d.root);
    expect(dirs.some((x) => x.includes('old-wf'))).toBe(false);
    expect(dirs).not.toContain('v0/d');
    expect(dirs).toContain('v0');
    expect(dirs).toContain('v0/ns/default/wt/MyWorkflow/wi/fresh-wf/ri/run-1/d/sha256');

    expect(await errorCode(() => d.retrieve({}, [oldClaim as StorageDriverClaim]))).toBe('E_NOT_FOUND');
    expect(text((await d.retrieve({}, [keptClaim as StorageDriverClaim]))[0])).toBe('"fresh"');
    // Storing again after the run recreates the directories.
    await d.store({ target: workflowTarget('old-wf') }, [payload('old')]);
    expect(text((await d.retrieve({}, [oldClaim as StorageDriverClaim]))[0])).toBe('"old"');
  });

  it('an unconditional delete removes the file and its emptied directories, never v0', async () => {
    const d = makeDriver(dir);
    const claims = await d.store({ target: workflowTarget('wf') }, [payload('a'), payload('b')]);
    expect(await d.delete([keyOf(claims[0])])).toEqual({
      deleted: 1,
      deletedBytes: 0,
      missing: 0,
      kept: 0,
      errors: [],
    });
    expect((await listDirs(d.root)).some((x) => x.endsWith('wi/wf'))).toBe(true); // b is still there
    expect(await d.delete([keyOf(claims[1])])).toEqual({
      deleted: 1,
      deletedBytes: 0,
      missing: 0,
      kept: 0,
      errors: [],
    });
    expect((await listDirs(d.root)).sort()).toEqual(['.tmp', 'v0']);
  });

  it('a missing root: list, delete and deleteExpired (dry run or not) find nothing and create nothing', async () => {
    const d = makeDriver(dir, { ttl: HOUR });
    expect(await collect(d.list())).toEqual([]);
    expect(await d.deleteExpired({ dryRun: true })).toEqual({
      scanned: 0,
      removed: 0,
      removedBytes: 0,
      more: false,
      errors: [],
    });
    expect((await d.deleteExpired()).removed).toBe(0);
    const key = `v0/d/sha256/${'a'.repeat(64)}`;
    expect(await d.delete([key])).toMatchObject({ deleted: 0, missing: 1 });
    expect(await d.delete([key], { referencedBefore: new Date() })).toMatchObject({ deleted: 0, missing: 1 });
    expect(await readdir(dir)).toEqual([]);
  });

  it('temp files of crashed writers go after an hour (mtime and ctime), never in a dry run, never foreign ones', async () => {
    const d = makeDriver(dir, { ttl: DAY });
    await d.store({}, [payload('init')]);
    const tmp = path.join(d.root, '.tmp');
    const young = `put-${process.pid}-${'a'.repeat(24)}`;
    const live = `sweep-${process.pid}-${'b'.repeat(24)}`;
    await writeFile(path.join(tmp, young), 'partial');
    // A delete's quarantine file keeps the payload's old mtime, but its ctime (the move) is fresh.
    await writeFile(path.join(tmp, live), 'payload');
    const old = new Date(Date.now() - 2 * DAY);
    await utimes(path.join(tmp, live), old, old);
    // Files the driver never writes are never deleted from .tmp, however old: an operator's
    // note, and a symlink named like a temp file (not followed: its old target stays too).
    await writeFile(path.join(tmp, 'operator-notes.txt'), 'keep me');
    await utimes(path.join(tmp, 'operator-notes.txt'), old, old);
    const target = path.join(dir, 'outside-target');
    await writeFile(target, 'keep me too');
    await utimes(target, old, old);
    const link = `put-${process.pid}-${'c'.repeat(24)}`;
    await symlink(target, path.join(tmp, link));
    const all = ['operator-notes.txt', young, live, link].sort();
    expect((await d.deleteExpired()).removed).toBe(0);
    expect((await readdir(tmp)).sort()).toEqual(all);
    // Two hours later (ctime cannot be set back, so move the system clock the temp-file rule reads).
    const now = Date.now();
    jest.spyOn(Date, 'now').mockReturnValue(now + 2 * HOUR);
    expect(now + 2 * HOUR - FS_TEMP_FILE_MAX_AGE).toBeGreaterThan(now);
    await d.deleteExpired({ dryRun: true });
    expect((await readdir(tmp)).sort()).toEqual(all);
    await d.deleteExpired();
    expect((await readdir(tmp)).sort()).toEqual(['operator-notes.txt', link].sort());
    expect(await stat(target)).toBeTruthy();
  });

  it('leaves foreign files, symlinks and everything outside v0 alone, and never follows a symlink', async () => {
    const d = makeDriver(dir, { ttl: HOUR });
    const [claim] = await d.store({}, [payload('a')]);
    await age(d, [claim], 2 * HOUR);
    const old = new Date(Date.now() - 2 * DAY);
    const foreign = [
      path.join(d.root, 'README'),
      path.join(d.root, 'v0', 'notes.txt'),
      path.join(d.root, 'v0', 'd', 'sha256', 'not-a-hash'),
    ];
    for (const f of foreign) {
      await writeFile(f, 'x');
      await utimes(f, old, old);
    }
    const outside = path.join(dir, 'outside-file');
    await writeFile(outside, 'keep me');
    await utimes(outside, old, old);
    // A symlink at a valid payload path, and a symlinked directory holding a valid-looking layout.
    const linkedKey = `v0/d/sha256/${'e'.repeat(64)}`;
    await symlink(outside, path.join(d.root, ...linkedKey.split('/')));
    const outsideDir = path.join(dir, 'outside-dir');
    const planted = path.join(outsideDir, 'wt', 'T', 'wi', 'w', 'ri', 'r', 'd', 'sha256', 'f'.repeat(64));
    await mkdir(path.dirname(planted), { recursive: true });
    await writeFile(planted, 'secret');
    await utimes(planted, old, old);
    await mkdir(path.join(d.root, 'v0', 'ns'));
    await symlink(outsideDir, path.join(d.root, 'v0', 'ns', 'victim'));

    expect(await keysOf(d)).toEqual([keyOf(claim)]);
    expect(await keysOf(d, 'v0/ns/victim/')).toEqual([]);
    const result = await d.deleteExpired();
    expect(result).toMatchObject({ scanned: 1, removed: 1, errors: [] });
    for (const f of [...foreign, outside, planted]) await expect(stat(f)).resolves.toBeTruthy();
    // Deleting the symlink's key: refused per file, the link and its target stay.
    for (const options of [{}, { referencedBefore: new Date() }]) {
      const r = await d.delete([linkedKey], options);
      expect(r.deleted).toBe(0);
      expect(r.errors).toEqual([
        { key: linkedKey, code: 'E_INVALID_CLAIM', message: expect.stringContaining('regular file') },
      ]);
    }
    await expect(fsp.lstat(path.join(d.root, ...linkedKey.split('/')))).resolves.toBeTruthy();
    const plantedKey = `v0/ns/victim/wt/T/wi/w/ri/r/d/sha256/${'f'.repeat(64)}`;
    expect((await d.delete([plantedKey])).errors.map((e) => e.code)).toEqual(['E_INVALID_CLAIM']);
    expect(await stat(planted)).toBeTruthy();
  });

  it('a 1,024-character key with the longest path is listed with its key and deleted', async () => {
    const d = makeDriver(dir, { ttl: HOUR });
    const [claim] = await d.store({ target: longestPathTarget() }, [payload('long')]);
    await age(d, [claim], 2 * HOUR);
    expect(await keysOf(d)).toEqual([keyOf(claim)]);
    expect(await keysOf(d, 'v0/ns/../wt/../wi/')).toEqual([keyOf(claim)]);
    expect(await keysOf(d, `v0/ns/../wt/../wi/${'x'.repeat(300)}`)).toEqual([keyOf(claim)]);
    expect(await keysOf(d, `v0/ns/../wt/../wi/${'x'.repeat(300)}y`)).toEqual([]);
    expect(await d.deleteExpired()).toMatchObject({ removed: 1, errors: [] });
    expect((await listDirs(d.root)).sort()).toEqual(['.tmp', 'v0']);
  });

  it('files an earlier build folded into v0/~/ are neither listed nor deleted', async () => {
    const d = makeDriver(dir, { ttl: HOUR });
    await d.store({}, [payload('init')]);
    const folded = path.join(d.root, 'v0', '~', 'ab', `ab${'0'.repeat(62)}`);
    await mkdir(path.dirname(folded), { recursive: true });
    await writeFile(folded, 'old build');
    await utimes(folded, new Date(0), new Date(0));
    expect(await keysOf(d)).toHaveLength(1);
    await d.deleteExpired({ olderThan: 0 });
    expect(await stat(folded)).toBeTruthy();
  });

  it('honours an abort signal', async () => {
    const d = makeDriver(dir, { ttl: HOUR });
    await d.store({}, [payload('a')]);
    const controller = new AbortController();
    controller.abort();
    expect(await errorCode(() => d.deleteExpired({ signal: controller.signal }))).toBe('E_ABORTED');
    expect(await errorCode(() => d.delete([`v0/d/sha256/${'a'.repeat(64)}`], { signal: controller.signal }))).toBe(
      'E_ABORTED',
    );
  });
});

describe('per-file failures', () => {
  const canChattr = (() => {
    const probe = path.join(tmpdir(), `fs-chattr-probe-${process.pid}`);
    try {
      writeFileSync(probe, '');
      return tryRun('chattr', ['+i', probe]) && tryRun('chattr', ['-i', probe]);
    } finally {
      rmSync(probe, { force: true });
    }
  })();
  const itIf = canChattr ? it : it.skip;
  if (!canChattr) console.warn('driver-fs lifecycle: per-file failure test skipped: chattr +i is not permitted here');

  itIf('a file that cannot be removed is reported in errors and the run carries on with the others', async () => {
    const d = makeDriver(dir, { ttl: HOUR });
    const stuck = await d.store({ target: workflowTarget('immutable') }, [payload('stuck')]);
    const others = await d.store({ target: workflowTarget('fine') }, [payload('x'), payload('y')]);
    const flat = await d.store({}, [payload('z')]);
    await age(d, [...stuck, ...others, ...flat], 2 * HOUR);
    const immutableDir = path.dirname(d.pathForKey(keyOf(stuck[0])));
    execFileSync('chattr', ['+i', immutableDir]); // rename and unlink in it fail with EPERM
    try {
      const result = await d.deleteExpired();
      expect(result).toMatchObject({ scanned: 4, removed: 3, more: false });
      expect(result.errors).toEqual([
        { key: keyOf(stuck[0]), code: 'E_CONFIG', message: expect.stringContaining('EPERM') },
      ]);
      expect(result.errors[0]?.message).not.toContain(dir); // paths relative to the root only
      const unconditional = await d.delete([keyOf(stuck[0]), keyOf(others[0])]);
      expect(unconditional).toMatchObject({ deleted: 0, missing: 1 });
      expect(unconditional.errors.map((e) => [e.key, e.code])).toEqual([[keyOf(stuck[0]), 'E_CONFIG']]);
      expect(text((await d.retrieve({}, stuck))[0])).toBe('"stuck"');
    } finally {
      execFileSync('chattr', ['-i', immutableDir]);
    }
    expect(await d.deleteExpired()).toMatchObject({ removed: 1, errors: [] });
    expect(await payloadFiles(d)).toEqual([]);
  });
});

describe('conditional deletes racing stores', () => {
  it('puts back a payload refreshed between the age check and the move (same mode, same bytes)', async () => {
    const d = makeDriver(dir, { ttl: HOUR });
    const [claim] = await d.store({}, [payload('raced')]);
    await age(d, [claim], 2 * HOUR);
    const realRename = fsp.rename;
    let raced = false;
    jest.spyOn(fsp, 'rename').mockImplementation(async (from, to) => {
      if (!raced && String(to).includes(`${path.sep}sweep-`)) {
        raced = true;
        // A worker re-references the payload right after the delete decided it was stale.
        await d.store({}, [payload('raced')]);
      }
      return realRename(from, to);
    });
    const result = await d.deleteExpired();
    expect(raced).toBe(true);
    expect(result).toMatchObject({ scanned: 1, removed: 0, errors: [] });
    expect(text((await d.retrieve({}, [claim as StorageDriverClaim]))[0])).toBe('"raced"');
    expect(((await stat(d.pathForKey(keyOf(claim)))).mode & 0o777).toString(8)).toBe('600');
    expect(await readdir(path.join(d.root, '.tmp'))).toEqual([]);
  });

  it('puts back into a directory a concurrent delete removed meanwhile (recreated with mode 0o700)', async () => {
    const d = makeDriver(dir, { ttl: HOUR });
    const [claim] = await d.store({ target: workflowTarget('gone') }, [payload('raced')]);
    await age(d, [claim], 2 * HOUR);
    const file = d.pathForKey(keyOf(claim));
    const realRename = fsp.rename;
    let raced = false;
    jest.spyOn(fsp, 'rename').mockImplementation(async (from, to) => {
      const out = await realRename(from, to);
      if (!raced && String(to).includes(`${path.sep}sweep-`)) {
        raced = true;
        // The store refreshes the quarantined inode (as if its lutimes landed just before the
        // move), and another process's delete removes the emptied directory chain.
        const now = new Date();
        await fsp.utimes(String(to), now, now);
        await fsp.rmdir(path.dirname(file));
        await fsp.rmdir(path.dirname(path.dirname(file)));
      }
      return out;
    });
    expect(await d.deleteExpired()).toMatchObject({ removed: 0, errors: [] });
    expect(raced).toBe(true);
    expect(text((await d.retrieve({}, [claim as StorageDriverClaim]))[0])).toBe('"raced"');
    for (const p of [path.dirname(file), path.dirname(path.dirname(file))]) {
      expect(((await stat(p)).mode & 0o777).toString(8)).toBe('700');
    }
  });

  it('a store right after the delete moved the file away writes a fresh copy', async () => {
    const d = makeDriver(dir, { ttl: HOUR });
    const [claim] = await d.store({}, [payload('raced')]);
    await age(d, [claim], 2 * HOUR);
    const realUnlink = fsp.unlink;
    let raced = false;
    jest.spyOn(fsp, 'unlink').mockImplementation(async (p) => {
      if (!raced && String(p).includes(`${path.sep}sweep-`)) {
        raced = true;
        await d.store({}, [payload('raced')]);
      }
      return realUnlink(p);
    });
    const result = await d.deleteExpired();
    expect(raced).toBe(true);
    expect(result.removed).toBe(1); // the stale inode was removed…
    expect(text((await d.retrieve({}, [claim as StorageDriverClaim]))[0])).toBe('"raced"'); // …a fresh copy is there
  });

  it('a store whose directory a delete removes between mkdir and link retries', async () => {
    const d = makeDriver(dir, { ttl: HOUR });
    const target = workflowTarget('shared-dir');
    const realLink = fsp.link;
    let removedOnce = false;
    jest.spyOn(fsp, 'link').mockImplementation(async (from, to) => {
      if (!removedOnce) {
        removedOnce = true;
        await fsp.rmdir(path.dirname(String(to))); // what a concurrent delete does to an empty dir
      }
      return realLink(from, to);
    });
    await d.store({ target }, [payload('first')]); // creates the directory chain on first link
    const claims = await d.store({ target }, [payload('second')]);
    expect(removedOnce).toBe(true);
    expect(text((await d.retrieve({}, claims))[0])).toBe('"second"');
  });

  it('store loops and deleteExpired loops in shared directories lose nothing that was just stored', async () => {
    const writers = Array.from({ length: 4 }, () => makeDriver(dir, { ttl: 10_000 }));
    const sweeper = makeDriver(dir, { ttl: 10_000 });
    const ids = Array.from({ length: 6 }, (_, i) => `wf-${i}`);
    // Stale payloads in the directories the writers use; the shared ones get re-stored (dedup
    // hits racing the deletes), the others must disappear.
    const staleOnly: StorageDriverClaim[] = [];
    for (const [i, id] of ids.entries()) {
      const claims = await sweeper.store({ target: workflowTarget(id) }, [
        payload(`stale-${i}`),
        payload(`shared-${i % 3}`),
      ]);
      await age(sweeper, claims, DAY);
      staleOnly.push(claims[0] as StorageDriverClaim);
    }
    const stored: StorageDriverClaim[] = [];
    let storing = true;
    // Keeps producing stale files in directories the writers also use, so deletes keep emptying
    // and removing directories while stores create them.
    const seeder = (async () => {
      for (let k = 0; storing; k++) {
        const [c] = await sweeper.store({ target: workflowTarget(`churn-${k % 4}`) }, [payload(`churn-${k}`)]);
        await age(sweeper, [c], DAY).catch(() => {}); // may already be deleted
      }
    })();
    const writerLoops = writers.map(async (w, wi) => {
      for (let n = 0; n < 60; n++) {
        const batch = [payload(`w${wi}-${n}`), payload(`shared-${n % 3}`), payload(`hot-${n % 2}`)];
        stored.push(...(await w.store({ target: workflowTarget(ids[(n + wi) % ids.length] as string) }, batch)));
        stored.push(...(await w.store({ target: workflowTarget(`churn-${n % 4}`) }, [payload(`c${wi}-${n}`)])));
      }
    });
    const runs: number[] = [];
    const deleteLoop = (async () => {
      while (storing) {
        const r = await sweeper.deleteExpired();
        expect(r.errors).toEqual([]);
        runs.push(r.removed);
        await new Promise((res) => setImmediate(res));
      }
    })();
    await Promise.all(writerLoops);
    storing = false;
    await Promise.all([deleteLoop, seeder]);
    const final = await sweeper.deleteExpired();
    expect(final.errors).toEqual([]);
    expect(runs.length).toBeGreaterThan(1);
    expect(runs.reduce((a, b) => a + b, 0)).toBeGreaterThan(ids.length);
    // Every claim any store returned is still retrievable…
    expect(await sweeper.retrieve({}, stored)).toHaveLength(stored.length);
    // …and the stale payloads nobody re-stored are gone.
    for (const c of staleOnly) expect(await errorCode(() => sweeper.retrieve({}, [c]))).toBe('E_NOT_FOUND');
    expect(await readdir(path.join(sweeper.root, '.tmp'))).toEqual([]);
  });
});

describe('the clock option', () => {
  it("with a clock, new files and dedup hits take the clock's time; without one, the kernel's", async () => {
    let now = Date.parse('2030-01-01T00:00:00Z');
    const d = makeDriver(dir, { clock: () => now });
    const [claim] = await d.store({}, [payload('clocked')]);
    const file = d.pathForKey(keyOf(claim));
    expect((await stat(file)).mtimeMs).toBe(now);
    now += 5 * DAY;
    await d.store({}, [payload('clocked')]); // dedup hit
    expect((await stat(file)).mtimeMs).toBe(now);
    const [listed] = await collect(d.list());
    expect(listed?.lastReferenced?.getTime()).toBe(now);
    // Ages are measured on the clock too.
    now += HOUR;
    expect(await collect(d.list({ olderThan: HOUR - 1 }))).toHaveLength(1);
    expect(await collect(d.list({ olderThan: HOUR }))).toHaveLength(0);

    const plain = makeDriver(dir);
    const before = Date.now();
    const [fresh] = await plain.store({}, [payload('unclocked')]);
    const mtime = (await stat(plain.pathForKey(keyOf(fresh)))).mtimeMs;
    expect(mtime).toBeGreaterThanOrEqual(before - 1000); // the kernel's (coarse) clock
    expect(mtime).toBeLessThanOrEqual(Date.now() + 1000);
  });
});

describe('bounded memory', () => {
  /** A full garbage collection (V8's gc, exposed at run time), then the heap in use. */
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const heapAfterGc = () => {
    gc();
    return process.memoryUsage().heapUsed;
  };

  it('list and a dry-run deleteExpired over 20,000 objects keep the heap flat (streamed, never collected)', async () => {
    const d = makeDriver(dir, { ttl: HOUR });
    await d.store({}, [payload('creates the root')]);
    // 20,000 files in the driver's layout, written directly (the way scripts/measure-list.mjs
    // builds its 1,000,000): 10,000 in one flat directory (no target) and 10,000 under 200
    // workflow directories; every other one expired. Empty: a listing never reads them.
    const n = 20_000;
    const old = (Date.now() - DAY) / 1000;
    const made = new Set<string>();
    for (let i = 0; i < n; i++) {
      const hex = i.toString(16).padStart(64, '0');
      const key = i % 2 === 0 ? `v0/d/sha256/${hex}` : buildStorageKey(workflowTarget(`wf-${i % 200}`), hex);
      const file = path.join(d.root, ...keyToStoragePath(key).split('/'));
      const parent = path.dirname(file);
      if (!made.has(parent)) {
        mkdirSync(parent, { recursive: true, mode: 0o700 });
        made.add(parent);
      }
      const fd = openSync(file, 'wx', 0o600);
      if (i % 4 < 2) futimesSync(fd, old, old);
      closeSync(fd);
    }
    made.clear();

    const samples: number[] = [];
    let seen = 0;
    const baseline = heapAfterGc();
    for await (const _ of d.list()) {
      if (++seen % 5000 === 0) samples.push(heapAfterGc() - baseline);
    }
    expect(seen).toBe(n + 1);
    // 20,000 listed objects kept alive would take several MB (a StoredObject with its key,
    // location and Date is ~400 bytes); the walk holds one page and one open directory per level.
    const MIB = 1024 * 1024;
    expect(Math.max(...samples)).toBeLessThan(1.5 * MIB);

    const dry: number[] = [];
    const before = heapAfterGc();
    let batches = 0;
    const result = await d.deleteExpired({
      olderThan: HOUR,
      dryRun: true,
      onProgress: () => {
        if (++batches % 2 === 0) dry.push(heapAfterGc() - before);
      },
    });
    expect(result).toMatchObject({ scanned: n / 2, removed: n / 2, removedBytes: 0, errors: [] });
    expect(batches).toBe(n / 2 / 1000);
    // One batch of 1,000 candidates at most is held (by the base class) between deletes.
    expect(Math.max(...dry)).toBeLessThan(1.5 * MIB);
  }, 60_000);
});
