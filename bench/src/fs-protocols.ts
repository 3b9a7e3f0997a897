/**
 * `node dist/fs-protocols.js [rounds]`: the disk under the fs rows. Stores one batch of 1,000 ×
 * 1 KiB new files (8 in flight, a `sync` before each batch, one directory fsync after it) with each
 * per-file protocol in turn, `rounds` times (default 8), and prints every batch's time:
 *
 * - `rename`: temp file, fsync, `rename` into place (`fs-raw`'s protocol);
 * - `link`: temp file, fsync, `link` into place, `unlink` the temp file;
 * - `driver`: `lstat` of the final path first (the dedup check), then as `link` — the fs driver's
 *   put-if-absent (`packages/driver-fs/src/atomic-write.ts`), without core.
 *
 * Interleaved, so that each round compares the protocols on the disk of that moment: on this
 * project's 2-core VM the same batch slowed down 3.6× over eight consecutive rounds (174 → 627 ms),
 * and moved between 174 and 910 ms within an hour, while the driver's protocol measured 0–34 %
 * above `rename` in the median of four runs.
 *
 * @module
 */
import { hash, randomBytes } from 'node:crypto';
import { fsync } from 'node:fs';
import { type FileHandle, link, lstat, mkdir, open, rename, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mapBounded } from '@x/storage-driver-core';
import { FS_DRIVER_DEFAULT_CONCURRENCY } from '@x/storage-driver-fs';
import { flushFilesystems, median } from './env';

/** Files per batch and their size: the `small` workload's. */
const FILES = 1000;
const FILE_BYTES = 1024;

const syncHandle = (handle: FileHandle) =>
  new Promise<void>((resolve, reject) => fsync(handle.fd, (e) => (e ? reject(e) : resolve())));

/** Writes `data` to a fresh temp file in `tmp`, fsynced; returns its path. */
async function writeTemp(tmp: string, n: number, data: Uint8Array): Promise<string> {
  const file = join(tmp, `${n}`);
  const handle = await open(file, 'wx', 0o600);
  try {
    await handle.writev([data]);
    await syncHandle(handle);
  } finally {
    await handle.close();
  }
  return file;
}

/** One file's store: `dir` is the final directory, `tmp` the temp directory, `n` a unique number. */
type Protocol = (dir: string, tmp: string, n: number, name: string, data: Uint8Array) => Promise<void>;

const PROTOCOLS: Record<string, Protocol> = {
  rename: async (dir, tmp, n, name, data) => {
    await rename(await writeTemp(tmp, n, data), join(dir, name));
  },
  link: async (dir, tmp, n, name, data) => {
    const temp = await writeTemp(tmp, n, data);
    await link(temp, join(dir, name));
    await unlink(temp);
  },
  driver: async (dir, tmp, n, name, data) => {
    const final = join(dir, name);
    const exists = await lstat(final).then(
      () => true,
      () => false,
    );
    if (exists) return;
    const temp = await writeTemp(tmp, n, data);
    await link(temp, final);
    await unlink(temp);
  },
};

async function main(rounds: number): Promise<void> {
  const root = join(tmpdir(), `xs-fs-protocols-${process.pid}`);
  const times: Record<string, number[]> = Object.fromEntries(Object.keys(PROTOCOLS).map((p) => [p, []]));
  let n = 0;
  try {
    for (let round = 1; round <= rounds; round++) {
      const line: string[] = [];
      for (const [name, protocol] of Object.entries(PROTOCOLS)) {
        await rm(root, { recursive: true, force: true });
        const dir = join(root, 'v0', 'd', 'sha256');
        const tmp = join(root, '.tmp');
        await mkdir(dir, { recursive: true });
        await mkdir(tmp, { recursive: true });
        const files = Array.from({ length: FILES }, () => randomBytes(FILE_BYTES));
        flushFilesystems();
        const started = performance.now();
        await mapBounded(files, FS_DRIVER_DEFAULT_CONCURRENCY, (data) =>
          protocol(dir, tmp, n++, hash('sha256', data, 'hex'), data),
        );
        const handle = await open(dir, 'r');
        try {
          await syncHandle(handle);
        } finally {
          await handle.close();
        }
        const ms = performance.now() - started;
        times[name]?.push(ms);
        line.push(`${name} ${ms.toFixed(0).padStart(5)} ms`);
      }
      console.log(`round ${round}: ${line.join('   ')}`);
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
  const medians = Object.entries(times).map(([name, t]) => `${name} ${median(t).toFixed(0)} ms`);
  console.log(`median per batch of ${FILES} × ${FILE_BYTES} B: ${medians.join(', ')}`);
}

main(Number(process.argv[2] ?? 8)).catch((e) => {
  console.error(e);
  process.exit(1);
});
