#!/usr/bin/env node
/**
 * Measures `x-storage gc` (issue 15): executions/s of the mark phase and objects/s of the sweep
 * with a few thousand executions, peak memory, and the mark set's memory per million references.
 * Not a test (not run by `bash scripts/test.sh`): it prints numbers for the README.
 *
 *   bash scripts/services.sh start && pnpm exec tsc -b tsconfig.all.json
 *   node --expose-gc packages/cli/scripts/gc-measure.mjs [--driver fs|postgres] [--completed 1000]
 *        [--running 2000] [--orphans 20000] [--concurrency 8] [--rps 100]
 *
 * 1. Starts a private Temporal dev server (`@x/test-servers`) and a store (`@x/test-backends`).
 * 2. Runs `--completed` executions of e2e's `valuesWorkflow` to completion on a worker (two large
 *    inputs and a large result each: 3 references, ~11 events), and starts `--running` more that
 *    no worker picks up (open, one large input each).
 * 3. Stores `--orphans` unreferenced objects in the namespace (old enough to be orphans).
 * 4. Runs gc (dry run, grace 1 s) in this process with the given concurrency and RPC rate,
 *    sampling `process.memoryUsage()` every 50 ms, and prints executions/s (mark), objects/s
 *    (sweep: list + classification) and peak RSS / heap over the run's baseline.
 * 5. Runs the same dry run with the built `x-storage gc` in a child process (fs and postgres) and
 *    prints its wall time and peak RSS (`process.resourceUsage().maxRSS` at exit).
 * 6. Fills a mark set with 1,000,000 object ids and prints its table size per reference.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

const require = createRequire(import.meta.url);
const here = path.dirname(new URL(import.meta.url).pathname);
const cliDist = (file) => path.join(here, '..', 'dist', file);
const { collectGarbage } = require(cliDist('gc/collect.js'));
const { DigestSet } = require(cliDist('gc/digest-set.js'));
const e2e = require(path.join(here, '../../e2e/dist/index.js'));
const { createBackend } = require(path.join(here, '../../test-backends/dist/index.js'));
const { SERVICES, startTemporalDevServer } = require(path.join(here, '../../test-servers/dist/index.js'));
const { Client } = require('@temporalio/client');
const { ExternalStorage } = require('@temporalio/common');
const { bundleWorkflowCode, DefaultLogger, NativeConnection, Runtime, Worker } = require('@temporalio/worker');

const { values: args } = parseArgs({
  options: {
    driver: { type: 'string', default: 'fs' },
    completed: { type: 'string', default: '1000' },
    running: { type: 'string', default: '2000' },
    orphans: { type: 'string', default: '20000' },
    concurrency: { type: 'string', default: '8' },
    rps: { type: 'string', default: '100' },
  },
});
const completed = Number(args.completed);
const running = Number(args.running);
const orphans = Number(args.orphans);
const MiB = 1024 * 1024;
const mib = (n) => `${(n / MiB).toFixed(1)} MiB`;

/** Runs `fn` over 0..n-1 with `limit` at once. */
async function pool(n, limit, fn) {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < n) await fn(next++);
    }),
  );
}

async function main() {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const namespace = 'gc-measure';
  const server = await startTemporalDevServer({ namespaces: [namespace] });
  const backend = await createBackend(args.driver, { ttl: 3_600_000 });
  try {
    const driver = backend.driver;
    const externalStorage = new ExternalStorage({
      drivers: [driver],
      payloadSizeThreshold: e2e.PAYLOAD_SIZE_THRESHOLD,
    });
    const client = new Client({ connection: server.connection, namespace, dataConverter: { externalStorage } });
    const taskQueue = 'gc-measure';
    const started = Date.now();
    const worker = await Worker.create({
      connection: await NativeConnection.connect({ address: server.address }),
      namespace,
      taskQueue,
      workflowBundle: await bundleWorkflowCode({
        workflowsPath: e2e.WORKFLOWS_PATH,
        logger: new DefaultLogger('WARN'),
      }),
      dataConverter: { externalStorage },
    });
    await worker.runUntil(() =>
      pool(completed, 32, async (i) => {
        const tag = `done-${i}`;
        await client.workflow.execute('valuesWorkflow', {
          taskQueue,
          workflowId: `measure-${tag}`,
          args: [tag, e2e.BIG_VALUE_SIZE, e2e.bigValue(`${tag}:0`), e2e.bigValue(`${tag}:1`)],
        });
      }),
    );
    await pool(running, 32, async (i) => {
      const tag = `open-${i}`;
      await client.workflow.start('valuesWorkflow', {
        taskQueue: 'nobody-polls',
        workflowId: `measure-${tag}`,
        args: [tag, 0, e2e.bigValue(`${tag}:0`)],
      });
    });
    const payload = (i) => ({
      metadata: { encoding: Buffer.from('json/plain') },
      data: Buffer.from(JSON.stringify(e2e.bigValue(`orphan-${i}`, 1024))),
    });
    await pool(Math.ceil(orphans / 100), 8, async (batch) => {
      const target = { kind: 'workflow', namespace, id: `orphan-${batch}`, type: 'T' };
      const n = Math.min(100, orphans - batch * 100);
      await driver.store(
        { target },
        Array.from({ length: n }, (_, j) => payload(batch * 100 + j)),
      );
    });
    console.log(
      `setup: ${completed} completed + ${running} running executions, ${orphans} unreferenced objects (${args.driver}) in ${((Date.now() - started) / 1000).toFixed(0)} s`,
    );
    await new Promise((r) => setTimeout(r, 3000)); // visibility catches up; objects age past the grace

    global.gc?.();
    const base = process.memoryUsage();
    let peakRss = base.rss;
    let peakHeap = base.heapUsed;
    const sampler = setInterval(() => {
      const m = process.memoryUsage();
      peakRss = Math.max(peakRss, m.rss);
      peakHeap = Math.max(peakHeap, m.heapUsed);
    }, 50);
    const t0 = Date.now();
    const report = await collectGarbage({
      connection: server.connection,
      namespaces: [{ name: namespace, drivers: [{ id: args.driver, driver }] }],
      drivers: [{ id: args.driver, driver }],
      graceMs: 1000,
      allowShortGrace: true,
      concurrency: Number(args.concurrency),
      ratePerSecond: Number(args.rps),
    });
    const total = Date.now() - t0;
    clearInterval(sampler);
    const [mark] = report.namespaces;
    const [sweep] = report.drivers;
    const executions = mark.openExecutions + mark.closedExecutions;
    console.log(
      `mark: ${executions} executions (${mark.openExecutions} open, ${mark.closedExecutions} closed), ${mark.historyEvents} events, ${mark.references} references, ${report.rpc.calls} RPCs in ${(report.markDurationMs / 1000).toFixed(1)} s = ${(executions / (report.markDurationMs / 1000)).toFixed(0)} executions/s (concurrency ${args.concurrency}, ${args.rps} RPC/s)`,
    );
    console.log(
      `sweep (${args.driver}, dry run): ${sweep.listed} objects in ${(sweep.durationMs / 1000).toFixed(1)} s = ${(sweep.listed / (sweep.durationMs / 1000)).toFixed(0)} objects/s; orphans ${sweep.namespaces[namespace].orphans}`,
    );
    console.log(
      `whole run ${(total / 1000).toFixed(1)} s; peak RSS ${mib(peakRss)} (+${mib(peakRss - base.rss)} over the start), peak heap +${mib(peakHeap - base.heapUsed)}; mark set ${report.marked.objects} objects in ${mib(report.marked.bytes)}`,
    );

    if (args.driver === 'fs' || args.driver === 'postgres') {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'gc-measure-'));
      const config = path.join(dir, 'x-storage.json');
      const spec =
        args.driver === 'fs'
          ? {
              module: '@x/storage-driver-fs',
              export: 'FsStorageDriver',
              options: { root: driver.root, ttl: 3_600_000 },
            }
          : {
              module: '@x/storage-driver-postgres',
              export: 'PostgresStorageDriver',
              factory: 'fromConnectionString',
              args: [SERVICES.postgresUrl, { schema: driver.schema, ttl: 3_600_000 }],
            };
      writeFileSync(config, JSON.stringify({ drivers: { [args.driver]: spec } }));
      const preload = path.join(dir, 'maxrss.cjs');
      writeFileSync(
        preload,
        "process.on('exit', () => process.stderr.write('maxRSS ' + process.resourceUsage().maxRSS + ' '));",
      );
      const t2 = Date.now();
      // Asynchronously: a blocked event loop would stop draining the dev server's log pipe (and so the server).
      const stderr = await new Promise((resolve) => {
        const child = spawn(
          process.execPath,
          [
            '--require',
            preload,
            cliDist('bin.js'),
            'gc',
            '--config',
            config,
            '--namespace',
            namespace,
            '--address',
            server.address,
            '--grace',
            '1s',
            '--unsafe-short-grace',
            '--json',
            '--concurrency',
            args.concurrency,
            '--rps',
            args.rps,
          ],
          { stdio: ['ignore', 'ignore', 'pipe'] },
        );
        let text = '';
        child.stderr.on('data', (d) => {
          text += d;
        });
        child.on('close', () => resolve(text));
      });
      const maxRss = /maxRSS (\d+)/.exec(stderr || '')?.[1];
      console.log(
        `x-storage gc (child process, dry run): ${((Date.now() - t2) / 1000).toFixed(1)} s wall, peak RSS ${maxRss ? mib(Number(maxRss) * 1024) : 'see stderr'}`,
      );
      rmSync(dir, { recursive: true, force: true });
    }
  } finally {
    await backend.close();
    await server.close();
  }

  const set = new DigestSet();
  const t1 = Date.now();
  for (let i = 0; i < 1_000_000; i++) set.add(`v0/ns/default/wt/OrderWorkflow/wi/order-${i}/ri/null/d/sha256/${i}`);
  const addMs = Date.now() - t1;
  console.log(
    `mark set: 1,000,000 references → table ${mib(set.byteLength)} (${(set.byteLength / 1_000_000).toFixed(1)} bytes per reference; 8 bytes per slot, 35–70 % full); ${(1_000_000 / (addMs / 1000)).toFixed(0)} adds/s (SHA-256 of the id)`,
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
