/**
 * Security review: what the filesystem driver creates is private to its owner whatever the
 * process umask — directories 0o700, payload and temp files 0o600 — including the longest paths
 * and the moves of conditional deletes (quarantine and put-back).
 */
import { stat } from 'node:fs/promises';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from '@jest/globals';
import {
  cleanup,
  listDirs,
  listFiles,
  longestPathTarget,
  makeDriver,
  makeTempDir,
  payload,
  workflowTarget,
} from './helpers';

let dir: string | undefined;
let umask: number | undefined;
afterEach(async () => {
  if (umask !== undefined) process.umask(umask);
  umask = undefined;
  await cleanup(dir);
  dir = undefined;
});

async function modes(root: string): Promise<Map<string, number>> {
  const out = new Map<string, number>([['.', (await stat(root)).mode & 0o777]]);
  for (const rel of [...(await listDirs(root)), ...(await listFiles(root))]) {
    out.set(rel, (await stat(path.join(root, rel))).mode & 0o777);
  }
  return out;
}

describe('file and directory modes', () => {
  it('with a permissive umask (000): every directory is 0o700 and every file 0o600', async () => {
    umask = process.umask(0o000);
    dir = await makeTempDir('fs-security-');
    const d = makeDriver(dir);
    await d.store({}, [payload('no target')]);
    await d.store({ target: workflowTarget('wf-1') }, [payload('scoped'), payload('scoped 2')]);
    // The longest path a key can map to (more directories, `~` chunks).
    await d.store({ target: longestPathTarget() }, [payload('longest')]);
    expect((await d.deleteExpired({ olderThan: 3_600_000 })).removed).toBe(0);
    const found = await modes(d.root);
    const files = await listFiles(d.root);
    expect(files.filter((f) => f.startsWith('v0/')).length).toBe(4);
    expect(files.some((f) => f.includes('/~x'))).toBe(true);
    for (const [rel, mode] of found) {
      const isFile = files.includes(rel);
      expect([rel, mode.toString(8)]).toEqual([rel, (isFile ? 0o600 : 0o700).toString(8)]);
    }
  });

  it('with a restrictive umask (077) the modes are the same (the driver never relies on the umask)', async () => {
    umask = process.umask(0o077);
    dir = await makeTempDir('fs-security-');
    const d = makeDriver(dir);
    await d.store({ target: workflowTarget('wf-2') }, [payload('x')]);
    const files = await listFiles(d.root);
    for (const [rel, mode] of await modes(d.root))
      expect([rel, mode]).toEqual([rel, files.includes(rel) ? 0o600 : 0o700]);
  });
});
