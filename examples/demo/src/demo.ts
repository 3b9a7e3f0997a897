/**
 * Demo: our drivers composed through `@temporalio/common`'s own External Storage path, as a
 * Temporal client or worker runs it (payload converter → ExternalStorage → drivers), with the
 * filesystem driver as the default so no server is needed.
 *
 * Run: `pnpm demo` (from the repository root). Flags: `--quiet` (summary only), `--keep`
 * (keep the storage directory and print its path).
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { defaultPayloadConverter, ExternalStorage, type StorageDriverTargetInfo } from '@temporalio/common';
import {
  decodeReferencePayload,
  ExternalStorageRunner,
  isReferencePayload,
} from '@temporalio/common/lib/internal-non-workflow';
import { temporal } from '@temporalio/proto';
import { selectBySize } from '@x/storage-driver-core';
import { FsStorageDriver } from '@x/storage-driver-fs';

const KiB = 1024;
const MiB = 1024 * KiB;
const quiet = process.argv.includes('--quiet');
const keep = process.argv.includes('--keep');
const log = (line = '') => {
  if (!quiet) console.log(line);
};

const protoSize = (p: temporal.api.common.v1.IPayload) => temporal.api.common.v1.Payload.encode(p).finish().length;
const human = (n: number) =>
  n >= MiB ? `${(n / MiB).toFixed(2)} MiB` : n >= KiB ? `${(n / KiB).toFixed(1)} KiB` : `${n} B`;

async function countFiles(dir: string): Promise<{ files: number; bytes: number }> {
  let files = 0;
  let bytes = 0;
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) {
        if (e.name !== '.tmp') await walk(p);
      } else if (e.isFile()) {
        files++;
        bytes += (await stat(p)).size;
      }
    }
  };
  await walk(dir);
  return { files, bytes };
}

async function main(): Promise<void> {
  const root = await mkdtemp(path.join(tmpdir(), 'storage-driver-demo-'));
  // Two filesystem drivers composed by size: medium payloads on a "hot" volume, big ones on an
  // "archive" volume. In production the second would typically be Redis/S3.
  const hot = new FsStorageDriver({ root: path.join(root, 'hot'), name: 'fs-hot' });
  const archive = new FsStorageDriver({ root: path.join(root, 'archive'), name: 'fs-archive' });
  const selector = selectBySize([{ below: 1 * MiB, use: hot }, { use: archive }]);
  const externalStorage = new ExternalStorage({
    drivers: selector.drivers,
    driverSelector: selector,
    payloadSizeThreshold: 64 * KiB,
  });

  const big = 'x'.repeat(300 * KiB);
  const values: [string, unknown][] = [
    ['small JSON object', { orderId: 'order-42', amount: 1999, currency: 'EUR' }],
    ['just under the threshold', 'a'.repeat(64 * KiB - 64)],
    ['300 KiB string', big],
    ['same 300 KiB string again', big],
    [
      '800 KiB array of records',
      Array.from({ length: 8_000 }, (_, i) => ({ i, sku: `SKU-${i}`, note: 'n'.repeat(60) })),
    ],
    ['3 MiB binary', new Uint8Array(3 * MiB).map((_, i) => (i * 31) & 0xff)],
  ];
  const payloads = values.map(([, v]) => defaultPayloadConverter.toPayload(v));
  const target: StorageDriverTargetInfo = {
    kind: 'workflow',
    namespace: 'default',
    id: 'order-42',
    runId: '0193b6c4-7d2e-7b8a-9c1d-5e6f7a8b9c0d',
    type: 'OrderWorkflow',
  };

  // The SDK's own store path: threshold, selector, one store() per driver per batch, references.
  const runner = new ExternalStorageRunner(externalStorage);
  const inHistory = await runner.store(payloads, { target });

  log(`External Storage demo — threshold ${human(externalStorage.payloadSizeThreshold)}, storage in ${root}`);
  log();
  log(`  #  ${'value'.padEnd(28)} ${'payload'.padStart(10)} ${'in history'.padStart(10)}  where`);
  let before = 0;
  let after = 0;
  let offloaded = 0;
  inHistory.forEach((p, i) => {
    const original = protoSize(payloads[i] as temporal.api.common.v1.IPayload);
    const stored = protoSize(p);
    before += original;
    after += stored;
    let where = 'inline';
    if (isReferencePayload(p)) {
      offloaded++;
      const ref = decodeReferencePayload(p);
      where = `${ref.driverName}  key=${ref.claimData['key']?.replace(/\/ri\/[^/]+\//, '/ri/…/').replace(/[0-9a-f]{52}$/, '…')}`;
    }
    log(
      `  ${i}  ${(values[i]?.[0] ?? '').padEnd(28)} ${human(original).padStart(10)} ${human(stored).padStart(10)}  ${where}`,
    );
  });

  // The SDK's own retrieve path, then the payload converter: every value must come back equal.
  const back = await runner.retrieve(inHistory);
  back.forEach((p, i) => {
    const payload = payloads[i] as temporal.api.common.v1.IPayload;
    assert.deepEqual(Buffer.from(p.data ?? []), Buffer.from(payload.data ?? []), `payload ${i} data`);
    assert.deepEqual(defaultPayloadConverter.fromPayload(p), values[i]?.[1], `value ${i}`);
  });

  const hotFiles = await countFiles(path.join(root, 'hot'));
  const archiveFiles = await countFiles(path.join(root, 'archive'));
  log();
  log(`  fs-hot:     ${hotFiles.files} object(s), ${human(hotFiles.bytes)} on disk`);
  log(`  fs-archive: ${archiveFiles.files} object(s), ${human(archiveFiles.bytes)} on disk`);
  log(`  (the repeated 300 KiB value was stored once: content addressing dedups it)`);
  console.log(
    `demo: ${payloads.length} payloads, ${offloaded} offloaded, ${payloads.length - offloaded} inline; ` +
      `history ${human(before)} → ${human(after)} (saved ${human(before - after)}, ${((100 * (before - after)) / before).toFixed(1)}%); ` +
      `all ${back.length} round trips verified`,
  );
  assert.equal(offloaded, 4, 'four payloads are at or above the threshold');
  assert.equal(hotFiles.files + archiveFiles.files, 3, 'three distinct offloaded payloads');
  if (keep) console.log(`kept ${root}`);
  else await rm(root, { recursive: true, force: true });
}

main().catch((err) => {
  console.error('demo failed:', err);
  process.exit(1);
});
