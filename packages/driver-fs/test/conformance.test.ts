/** The shared conformance suite against a real temporary directory. */
import { mkdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, it } from '@jest/globals';
import { runStorageDriverConformance } from '@x/storage-driver-test-suite';
import { FsStorageDriver } from '../src';
import { cleanup, listFiles, makeTempDir } from './helpers';

/** Temp directories created per driver, removed after each test. */
const dirs = new Map<FsStorageDriver, string>();

runStorageDriverConformance(
  { describe, it, beforeEach, afterEach },
  {
    type: 'local.fsdriver',
    defaultName: 'fs',
    async create(options) {
      const dir = await makeTempDir('fs-conformance-');
      try {
        const driver = new FsStorageDriver({ root: path.join(dir, 'store'), ...options });
        dirs.set(driver, dir);
        return driver;
      } catch (e) {
        await cleanup(dir);
        throw e;
      }
    },
    reopen: (driver) => new FsStorageDriver({ root: driver.root, name: driver.name }),
    capabilities: {
      lifecycle: { list: true, delete: true, deleteExpired: true, close: true, lastReferenced: 'exact' },
      // New files and dedup hits take their mtime from the clock option.
      clock: true,
    },
    async destroy(driver) {
      const dir = dirs.get(driver);
      dirs.delete(driver);
      await cleanup(dir);
    },
    hooks: {
      async corrupt(driver, claim) {
        const file = driver.pathForKey(claim.claimData['key'] as string);
        const bytes = await readFile(file);
        bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 0xff;
        await writeFile(file, bytes);
      },
      async remove(driver, claim) {
        await rm(driver.pathForKey(claim.claimData['key'] as string));
      },
      async age(driver, claims, ms) {
        // The mtime is the last-referenced time: move it back (once per file).
        const files = new Set(claims.map((c) => driver.pathForKey(c.claimData['key'] as string)));
        for (const file of files) {
          const t = new Date((await stat(file)).mtimeMs - ms);
          await utimes(file, t, t);
        }
      },
      async countObjects(driver) {
        return (await listFiles(path.join(driver.root, 'v0')).catch(() => [])).length;
      },
      async plantOutside(driver, bytes) {
        // A valid-looking payload file next to the root and above it.
        const outside = path.join(path.dirname(driver.root), 'outside');
        await mkdir(outside, { recursive: true });
        await writeFile(path.join(outside, 'payload'), bytes);
        await writeFile(path.join(path.dirname(driver.root), 'payload'), bytes);
        return ['../outside/payload', '../payload', path.join(outside, 'payload'), 'v0/../../outside/payload'];
      },
    },
  },
);
