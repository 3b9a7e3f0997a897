#!/usr/bin/env node
/**
 * Measures the memory and speed of FsStorageDriver's lifecycle walk on a large store (issue 14:
 * "memory stays bounded on a store of 1,000,000 objects"). Not a test: it prints numbers.
 *
 *   pnpm exec tsc -b packages/driver-fs
 *   node --expose-gc packages/driver-fs/scripts/measure-list.mjs [--objects 1000000] [--root DIR]
 *        [--bytes 0] [--delete] [--collect] [--keep]
 *
 * 1. Creates `--objects` payload files directly in the driver's layout (keyToStoragePath): half in
 *    one flat directory (`v0/d/sha256/`, payloads stored without a target), half in workflow
 *    directories of 100 files each; every other file is given an mtime two days old. Files hold
 *    `--bytes` bytes (default 0: a listing never reads them, and empty files are created fast).
 * 2. Iterates `list()` and runs `deleteExpired({ dryRun: true, olderThan: 1 day })`, sampling
 *    `process.memoryUsage()` every 10,000 objects (and, with --expose-gc, the heap retained after
 *    a full GC every 100,000), and prints objects/s and peak heap/RSS.
 * 3. With --delete, runs the real `deleteExpired` (removes the old half) and prints its rate.
 * 4. With --collect, also collects `list()` into an array, to show what an unbounded listing
 *    would hold.
 *
 * The store is created under a fresh directory in /tmp (or --root, which must not exist) and
 * removed at the end unless --keep.
 */
import { closeSync, existsSync, futimesSync, mkdirSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

const require = createRequire(import.meta.url);
const { FsStorageDriver, keyToStoragePath } = require('../dist/index.js');

const { values } = parseArgs({
  options: {
    objects: { type: 'string', default: '1000000' },
    root: { type: 'string' },
    bytes: { type: 'string', default: '0' },
    delete: { type: 'boolean', default: false },
    collect: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
  },
});
const n = Number(values.objects);
const bytes = Buffer.alloc(Number(values.bytes), 0x78);
const DAY = 24 * 3600_000;
const MIB = 1024 * 1024;
const gc = globalThis.gc;
if (values.root !== undefined && existsSync(values.root)) {
  console.error(`--root ${values.root} exists; give a path that does not (it is removed at the end)`);
  process.exit(2);
}
const base = values.root ?? path.join(mkdtempSync(path.join(os.tmpdir(), 'fs-measure-')), 'store');
const mib = (b) => `${(b / MIB).toFixed(1)} MiB`;

/** Peak heap/RSS sampler; `retained()` is the heap after a full GC (when --expose-gc). */
function sampler() {
  gc?.();
  const s = { heap: 0, rss: 0, retained: [], start: process.memoryUsage() };
  return {
    sample() {
      const m = process.memoryUsage();
      s.heap = Math.max(s.heap, m.heapUsed);
      s.rss = Math.max(s.rss, m.rss);
    },
    retained() {
      if (!gc) return;
      gc();
      s.retained.push(process.memoryUsage().heapUsed);
    },
    report(label, count, ms) {
      const r = s.retained;
      const retained =
        r.length > 0 ? `, heap after GC ${mib(Math.min(...r))}..${mib(Math.max(...r))} over ${r.length} samples` : '';
      console.log(
        `${label}: ${count} objects in ${(ms / 1000).toFixed(1)} s = ${Math.round(count / (ms / 1000))} objects/s; ` +
          `peak heapUsed ${mib(s.heap)} (start ${mib(s.start.heapUsed)}), peak RSS ${mib(s.rss)} (start ${mib(s.start.rss)})${retained}`,
      );
    },
  };
}

function create() {
  const t0 = Date.now();
  const old = (Date.now() - 2 * DAY) / 1000;
  const made = new Set();
  for (let i = 0; i < n; i++) {
    const hex = i.toString(16).padStart(64, '0');
    const key =
      i % 2 === 0
        ? `v0/d/sha256/${hex}`
        : `v0/ns/bench/wt/BenchWorkflow/wi/wf-${Math.floor(i / 200)}/ri/run-1/d/sha256/${hex}`;
    const file = path.join(base, ...keyToStoragePath(key).split('/'));
    const dir = path.dirname(file);
    if (!made.has(dir)) {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      made.add(dir);
    }
    const fd = openSync(file, 'wx', 0o600);
    if (bytes.length > 0) writeSync(fd, bytes);
    if (i % 4 < 2) futimesSync(fd, old, old); // half of each layout is two days old
    closeSync(fd);
  }
  mkdirSync(path.join(base, '.tmp'), { mode: 0o700 });
  console.log(
    `created ${n} files (${made.size} directories) in ${((Date.now() - t0) / 1000).toFixed(1)} s under ${base}`,
  );
}

async function main() {
  console.log(
    `node ${process.version}, ${os.cpus().length} CPUs, load ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
  );
  create();
  const driver = new FsStorageDriver({ root: base });

  {
    const s = sampler();
    const t0 = Date.now();
    let count = 0;
    for await (const _ of driver.list()) {
      if (++count % 10_000 === 0) s.sample();
      if (count % 100_000 === 0) s.retained();
    }
    s.report('list()', count, Date.now() - t0);
  }
  {
    const s = sampler();
    const t0 = Date.now();
    let batches = 0;
    const result = await driver.deleteExpired({
      olderThan: DAY,
      dryRun: true,
      onProgress: () => {
        s.sample();
        if (++batches % 100 === 0) s.retained();
      },
    });
    s.report(`deleteExpired dry run (scanned ${result.scanned}, would remove ${result.removed})`, n, Date.now() - t0);
  }
  if (values.delete) {
    const s = sampler();
    const t0 = Date.now();
    let batches = 0;
    const result = await driver.deleteExpired({
      olderThan: DAY,
      onProgress: () => {
        s.sample();
        if (++batches % 100 === 0) s.retained();
      },
    });
    s.report(
      `deleteExpired (removed ${result.removed}, errors ${result.errors.length}); rate counts removed objects`,
      result.removed,
      Date.now() - t0,
    );
  }
  if (values.collect) {
    const s = sampler();
    const t0 = Date.now();
    const all = [];
    for await (const o of driver.list()) {
      all.push(o);
      if (all.length % 10_000 === 0) s.sample();
    }
    s.retained();
    s.report('list() collected into an array (what a listing that collects would hold)', all.length, Date.now() - t0);
  }
}

try {
  await main();
} finally {
  if (!values.keep) rmSync(values.root ?? path.dirname(base), { recursive: true, force: true });
}
