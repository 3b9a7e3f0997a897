import { mkdir, readdir, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { isStorageDriverError, type StorageDriverClaim } from '@x/storage-driver-core';
import type { FsStorageDriver } from '../src';
import {
  cleanup,
  errorCode,
  foldedPathTarget,
  keyOf,
  listDirs,
  makeDriver,
  makeTempDir,
  payload,
  payloadFiles,
  text,
  workflowTarget,
} from './helpers';

// The real module object (not an esModuleInterop copy), so spies reach the driver's calls.
const fsp: typeof import('node:fs/promises') = require('node:fs/promises');

const HOUR = 3600_000;
const DAY = 24 * HOUR;

let dir: string;
beforeEach(async () => {
  dir = await makeTempDir();
});
afterEach(async () => {
  jest.restoreAllMocks();
  await cleanup(dir);
});

async function age(driver: FsStorageDriver, claim: StorageDriverClaim | undefined, ms: number): Promise<void> {
  const file = driver.pathForKey(keyOf(claim));
  const t = new Date(Date.now() - ms);
  await utimes(file, t, t);
}

describe('sweep', () => {
  it('removes payloads older than the ttl, keeps fresh ones, reports them, and removes empty directories', async () => {
    const d = makeDriver(dir, { ttl: DAY });
    const [oldClaim] = await d.store({ target: workflowTarget('old-wf') }, [payload('old')]);
    const [keptClaim] = await d.store({ target: workflowTarget('fresh-wf') }, [payload('fresh')]);
    const [oldFlat] = await d.store({}, [payload('old flat')]);
    await age(d, oldClaim, 2 * DAY);
    await age(d, oldFlat, 3 * DAY);
    const oldSize = (await stat(d.pathForKey(keyOf(oldClaim)))).size;

    const result = await d.sweep();
    expect(result.dryRun).toBe(false);
    expect(result.scanned).toBe(3);
    expect(result.removed.map((r) => r.key).sort()).toEqual([keyOf(oldClaim), keyOf(oldFlat)].sort() as string[]);
    const entry = result.removed.find((r) => r.key === keyOf(oldClaim));
    expect(entry?.size).toBe(oldSize);
    expect(entry?.path).toBe(keyOf(oldClaim));
    expect(entry?.mtime.getTime()).toBeLessThan(Date.now() - DAY);
    expect(result.removedBytes).toBe(result.removed.reduce((n, r) => n + r.size, 0));
    expect(result.errors).toEqual([]);
    expect(result.cutoff.getTime()).toBeLessThanOrEqual(Date.now() - DAY);

    expect(await payloadFiles(d)).toEqual([keyOf(keptClaim)]);
    // The old workflow's directory chain and v0/d/sha256 are gone; v0 stays.
    const dirs = await listDirs(d.root);
    expect(dirs.some((x) => x.includes('old-wf'))).toBe(false);
    expect(dirs).not.toContain('v0/d');
    expect(dirs).toContain('v0');
    // …/wi/old-wf, …/old-wf/ri, …/ri/run-1, …/run-1/d, …/d/sha256 (5) plus v0/d and v0/d/sha256 (2).
    expect(result.removedDirectories).toBe(7);

    expect(await errorCode(() => d.retrieve({}, [oldClaim as StorageDriverClaim]))).toBe('E_NOT_FOUND');
    expect(text((await d.retrieve({}, [keptClaim as StorageDriverClaim]))[0])).toBe('"fresh"');
    // Storing again after a sweep recreates the directories.
    await d.store({ target: workflowTarget('old-wf') }, [payload('old')]);
    expect(text((await d.retrieve({}, [oldClaim as StorageDriverClaim]))[0])).toBe('"old"');
  });

  it('olderThan overrides the ttl; without either it is E_CONFIG', async () => {
    const noTtl = makeDriver(dir);
    expect(await errorCode(() => noTtl.sweep())).toBe('E_CONFIG');
    for (const bad of [-1, 1.5, Number.NaN, '1000' as unknown as number]) {
      expect(await errorCode(() => noTtl.sweep({ olderThan: bad }))).toBe('E_CONFIG');
    }
    const [claim] = await noTtl.store({}, [payload('a')]);
    await age(noTtl, claim, 2 * HOUR);
    expect((await noTtl.sweep({ olderThan: 3 * HOUR })).removed).toHaveLength(0);
    expect((await noTtl.sweep({ olderThan: HOUR })).removed).toHaveLength(1);
    const withTtl = makeDriver(dir, { ttl: DAY });
    const [c2] = await withTtl.store({}, [payload('b')]);
    await age(withTtl, c2, 2 * HOUR);
    expect((await withTtl.sweep()).removed).toHaveLength(0);
    expect((await withTtl.sweep({ olderThan: HOUR })).removed).toHaveLength(1);
  });

  it('a dry run reports without removing anything', async () => {
    const d = makeDriver(dir, { ttl: HOUR });
    const [claim] = await d.store({}, [payload('a')]);
    await age(d, claim, 2 * HOUR);
    const result = await d.sweep({ dryRun: true });
    expect(result.dryRun).toBe(true);
    expect(result.removed.map((r) => r.key)).toEqual([keyOf(claim)]);
    expect(result.removedDirectories).toBe(0);
    expect(await payloadFiles(d)).toHaveLength(1);
  });

  it('a re-referenced payload (dedup hit) is not swept', async () => {
    const d = makeDriver(dir, { ttl: DAY });
    const [claim] = await d.store({}, [payload('popular')]);
    await age(d, claim, 2 * DAY);
    await d.store({}, [payload('popular')]); // dedup hit refreshes the mtime
    expect((await d.sweep()).removed).toEqual([]);
    expect(text((await d.retrieve({}, [claim as StorageDriverClaim]))[0])).toBe('"popular"');
  });

  it('a missing root sweeps nothing and creates nothing', async () => {
    const d = makeDriver(dir, { ttl: HOUR });
    const result = await d.sweep();
    expect(result).toMatchObject({ scanned: 0, removed: [], removedBytes: 0, errors: [] });
    expect(await readdir(dir)).toEqual([]);
  });

  it('removes temp files older than one hour, keeps younger ones and live quarantine files', async () => {
    const d = makeDriver(dir, { ttl: DAY });
    await d.store({}, [payload('init')]);
    const tmp = path.join(d.root, '.tmp');
    const young = `put-${process.pid}-${'a'.repeat(24)}`;
    const live = `sweep-${process.pid}-${'b'.repeat(24)}`;
    await writeFile(path.join(tmp, young), 'partial');
    // A sweep's quarantine file keeps the payload's old mtime, but its ctime (the move) is fresh.
    await writeFile(path.join(tmp, live), 'payload');
    const old = new Date(Date.now() - 2 * DAY);
    await utimes(path.join(tmp, live), old, old);
    // A file the driver never writes is never deleted from .tmp, however old.
    await writeFile(path.join(tmp, 'operator-notes.txt'), 'keep me');
    await utimes(path.join(tmp, 'operator-notes.txt'), old, old);
    expect((await d.sweep()).removedTempFiles).toBe(0);
    expect((await readdir(tmp)).sort()).toEqual(['operator-notes.txt', young, live].sort());
    // Two hours later (ctime cannot be set back, so move the clock instead) both are leftovers.
    const now = Date.now();
    jest.spyOn(Date, 'now').mockReturnValue(now + 2 * HOUR);
    const later = await d.sweep();
    expect(later.removedTempFiles).toBe(2);
    expect(await readdir(tmp)).toEqual(['operator-notes.txt']);
  });

  it('leaves foreign files, symlinks and everything outside v0 alone', async () => {
    const d = makeDriver(dir, { ttl: HOUR });
    const [claim] = await d.store({}, [payload('a')]);
    await age(d, claim, 2 * HOUR);
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
    await symlink(outside, path.join(d.root, 'v0', 'd', 'sha256', 'f'.repeat(64).replace(/^f/, 'e')));
    await mkdir(path.join(dir, 'outside-dir'));
    await symlink(path.join(dir, 'outside-dir'), path.join(d.root, 'v0', 'ns'));
    const result = await d.sweep();
    expect(result.removed.map((r) => r.key)).toEqual([keyOf(claim)]);
    expect(result.skipped).toBe(4); // notes.txt, not-a-hash, the file symlink, the dir symlink
    for (const f of [...foreign, outside]) await expect(stat(f)).resolves.toBeTruthy();
  });

  it('reports folded (over-long) keys with key null and their path', async () => {
    const d = makeDriver(dir, { ttl: HOUR });
    const [claim] = await d.store({ target: foldedPathTarget() }, [payload('long')]);
    await age(d, claim, 2 * HOUR);
    const result = await d.sweep();
    expect(result.removed).toHaveLength(1);
    expect(result.removed[0]?.key).toBeNull();
    expect(result.removed[0]?.path).toMatch(/^v0\/~\/[0-9a-f]{2}\/[0-9a-f]{64}$/);
  });

  it('honours an abort signal', async () => {
    const d = makeDriver(dir, { ttl: HOUR });
    await d.store({}, [payload('a')]);
    const controller = new AbortController();
    controller.abort();
    let err: unknown;
    try {
      await d.sweep({ signal: controller.signal });
    } catch (e) {
      err = e;
    }
    expect(isStorageDriverError(err, 'E_ABORTED')).toBe(true);
  });
});

describe('sweep racing stores', () => {
  it('puts back a payload refreshed between the age check and the removal', async () => {
    const d = makeDriver(dir, { ttl: HOUR });
    const [claim] = await d.store({}, [payload('raced')]);
    await age(d, claim, 2 * HOUR);
    const realRename = fsp.rename;
    let raced = false;
    jest.spyOn(fsp, 'rename').mockImplementation(async (from, to) => {
      if (!raced && String(to).includes(`${path.sep}sweep-`)) {
        raced = true;
        // A worker re-references the payload right after the sweep decided it was stale.
        await d.store({}, [payload('raced')]);
      }
      return realRename(from, to);
    });
    const result = await d.sweep();
    expect(raced).toBe(true);
    expect(result.removed).toEqual([]);
    expect(text((await d.retrieve({}, [claim as StorageDriverClaim]))[0])).toBe('"raced"');
    expect((await readdir(path.join(d.root, '.tmp'))).length).toBe(0);
  });

  it('a store right after the sweep moved the file away writes a fresh copy', async () => {
    const d = makeDriver(dir, { ttl: HOUR });
    const [claim] = await d.store({}, [payload('raced')]);
    await age(d, claim, 2 * HOUR);
    const realUnlink = fsp.unlink;
    let raced = false;
    jest.spyOn(fsp, 'unlink').mockImplementation(async (p) => {
      if (!raced && String(p).includes(`${path.sep}sweep-`)) {
        raced = true;
        await d.store({}, [payload('raced')]);
      }
      return realUnlink(p);
    });
    const result = await d.sweep();
    expect(raced).toBe(true);
    expect(result.removed).toHaveLength(1); // the stale inode was removed…
    expect(text((await d.retrieve({}, [claim as StorageDriverClaim]))[0])).toBe('"raced"'); // …a fresh copy is there
  });

  it('a store whose directory is removed by a sweep between mkdir and link retries', async () => {
    const d = makeDriver(dir, { ttl: HOUR });
    const target = workflowTarget('shared-dir');
    const realLink = fsp.link;
    let removedOnce = false;
    jest.spyOn(fsp, 'link').mockImplementation(async (from, to) => {
      if (!removedOnce) {
        removedOnce = true;
        await fsp.rmdir(path.dirname(String(to))); // what a concurrent sweep does to an empty dir
      }
      return realLink(from, to);
    });
    await d.store({ target }, [payload('first')]); // creates the directory chain on first link
    const claims = await d.store({ target }, [payload('second')]);
    expect(removedOnce).toBe(true);
    expect(text((await d.retrieve({}, claims))[0])).toBe('"second"');
  });

  it('concurrent store loops and sweep loops lose nothing that was just stored', async () => {
    const writers = Array.from({ length: 4 }, () => makeDriver(dir, { ttl: 10_000 }));
    const sweeper = makeDriver(dir, { ttl: 10_000 });
    const ids = Array.from({ length: 6 }, (_, i) => `wf-${i}`);
    // Stale payloads in the directories the writers use; the shared ones get re-stored (dedup
    // hits racing the sweep), the others must disappear.
    const staleOnly: StorageDriverClaim[] = [];
    for (const [i, id] of ids.entries()) {
      const claims = await sweeper.store({ target: workflowTarget(id) }, [
        payload(`stale-${i}`),
        payload(`shared-${i % 3}`),
      ]);
      for (const c of claims) await age(sweeper, c, DAY);
      staleOnly.push(claims[0] as StorageDriverClaim);
    }
    const stored: StorageDriverClaim[] = [];
    let storing = true;
    // Keeps producing stale files in directories the writers also use, so sweeps keep emptying
    // and removing directories while stores create them.
    const seeder = (async () => {
      for (let k = 0; storing; k++) {
        const [c] = await sweeper.store({ target: workflowTarget(`churn-${k % 4}`) }, [payload(`churn-${k}`)]);
        await age(sweeper, c, DAY).catch(() => {}); // may already be swept
      }
    })();
    const writerLoops = writers.map(async (w, wi) => {
      for (let n = 0; n < 60; n++) {
        const batch = [payload(`w${wi}-${n}`), payload(`shared-${n % 3}`), payload(`hot-${n % 2}`)];
        stored.push(...(await w.store({ target: workflowTarget(ids[(n + wi) % ids.length] as string) }, batch)));
        stored.push(...(await w.store({ target: workflowTarget(`churn-${n % 4}`) }, [payload(`c${wi}-${n}`)])));
      }
    });
    const sweeps: number[] = [];
    const sweepLoop = (async () => {
      while (storing) {
        const r = await sweeper.sweep();
        expect(r.errors).toEqual([]);
        sweeps.push(r.removed.length);
        await new Promise((res) => setImmediate(res));
      }
    })();
    await Promise.all(writerLoops);
    storing = false;
    await Promise.all([sweepLoop, seeder]);
    const final = await sweeper.sweep();
    expect(final.errors).toEqual([]);
    expect(sweeps.length).toBeGreaterThan(1);
    expect(sweeps.reduce((a, b) => a + b, 0)).toBeGreaterThan(ids.length);
    // Every claim any store returned is still retrievable…
    expect(await sweeper.retrieve({}, stored)).toHaveLength(stored.length);
    // …and the stale payloads nobody re-stored are gone.
    for (const c of staleOnly) expect(await errorCode(() => sweeper.retrieve({}, [c]))).toBe('E_NOT_FOUND');
    expect(await readdir(path.join(sweeper.root, '.tmp'))).toEqual([]);
  });
});
