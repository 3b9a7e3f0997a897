/**
 * `x-storage sweep` records its removals through an instrumented driver of a JS config, as the
 * README shows: the config wraps its driver, owns a meter provider, and flushes it in its `close`
 * hook (which the CLI calls when it exits). Runs the built `x-storage` bin.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { encodedPayloadSize } from '@x/storage-driver-core';
import { FsStorageDriver } from '@x/storage-driver-fs';
import { StorageAttributes as A, StorageMetrics as M } from '../src';
import { payload } from './helpers';

const BIN = require.resolve('@x/storage-cli/package.json').replace(/package\.json$/, 'dist/bin.js');
const HOUR = 3_600_000;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'otel-cli-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The config file: an instrumented fs driver and a meter provider flushed to `out` at close. */
function config(root: string, out: string): string {
  // The built packages (jest maps our package names to their sources; the CLI runs plain Node.js).
  const r = (id: string) => {
    const manifest = require.resolve(`${id}/package.json`);
    const main = (require(manifest) as { main: string }).main;
    return JSON.stringify(path.join(path.dirname(manifest), main));
  };
  return `'use strict';
const { writeFileSync } = require('node:fs');
const { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } = require(${r('@opentelemetry/sdk-metrics')});
const { FsStorageDriver } = require(${r('@x/storage-driver-fs')});
const { instrumentStorageDriver } = require(${r('@x/storage-driver-otel')});

const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3600000 });
const meterProvider = new MeterProvider({ readers: [reader] });

module.exports = {
  drivers: {
    main: instrumentStorageDriver(new FsStorageDriver({ root: ${JSON.stringify(root)}, ttl: ${HOUR} }), { meterProvider }),
  },
  async close() {
    await reader.forceFlush();
    const points = exporter.getMetrics().at(-1).scopeMetrics.flatMap((s) => s.metrics)
      .flatMap((m) => m.dataPoints.map((p) => ({ name: m.descriptor.name, attributes: p.attributes, value: p.value })));
    writeFileSync(${JSON.stringify(out)}, JSON.stringify(points));
    await meterProvider.shutdown();
  },
};
`;
}

describe('x-storage sweep through an instrumented driver', () => {
  it('records the objects and bytes deleteExpired removed', async () => {
    const root = path.join(dir, 'store');
    // Two payloads last referenced two hours ago, one now.
    const old = [payload('old-1', 300), payload('old-2', 700)];
    await new FsStorageDriver({ root, clock: () => Date.now() - 2 * HOUR }).store({}, old);
    await new FsStorageDriver({ root }).store({}, [payload('fresh')]);
    const file = path.join(dir, 'x-storage.config.cjs');
    const out = path.join(dir, 'metrics.json');
    await writeFile(file, config(root, out));

    const { stdout } = await promisify(execFile)(process.execPath, [BIN, 'sweep', '--config', file, '--json'], {
      timeout: 30_000,
    });
    const [outcome] = JSON.parse(stdout) as { status: string; result: { removed: number; removedBytes: number } }[];
    const size = old.reduce((sum, p) => sum + encodedPayloadSize(p), 0);
    expect(outcome).toMatchObject({ status: 'done', result: { removed: 2, removedBytes: size } });

    const points = JSON.parse(await readFile(out, 'utf8')) as { name: string; attributes: object; value: unknown }[];
    const base = { [A.DRIVER_NAME]: 'fs', [A.OPERATION]: 'deleteExpired' };
    expect(points.filter((p) => p.name === M.REMOVED)).toEqual([{ name: M.REMOVED, attributes: base, value: 2 }]);
    expect(points.filter((p) => p.name === M.REMOVED_BYTES)).toEqual([
      { name: M.REMOVED_BYTES, attributes: base, value: size },
    ]);
    expect(points.find((p) => p.name === M.DURATION)?.attributes).toEqual({ ...base, [A.OUTCOME]: 'success' });
  });
});
