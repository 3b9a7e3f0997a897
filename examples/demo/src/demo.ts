/**
 * Demo: our drivers composed through `@temporalio/common`'s own External Storage path, as a
 * Temporal client or worker runs it (payload converter → ExternalStorage → drivers), with the
 * filesystem driver as the default so no server is needed.
 *
 * Run: `bash scripts/demo.sh` (from the repository root). Flags: `--quiet` (summary only),
 * `--keep` (keep the storage directory and print its path), `--gzip` (compose a gzip payload
 * codec: as in the SDK, codecs run before External Storage on the way out and after it on the
 * way in, so the stored objects are the codec's output).
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import {
  defaultPayloadConverter,
  ExternalStorage,
  type Payload,
  type PayloadCodec,
  StorageDriverClaim,
  type StorageDriverTargetInfo,
} from '@temporalio/common';
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
const gzip = process.argv.includes('--gzip');
const utf8 = (s: string) => new TextEncoder().encode(s);

/** A payload codec that gzips whole payloads (the kind of codec users compose with storage). */
class GzipCodec implements PayloadCodec {
  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => ({
      metadata: { encoding: utf8('binary/gzip') },
      data: gzipSync(temporal.api.common.v1.Payload.encode(p).finish()),
    }));
  }
  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) =>
      new TextDecoder().decode(p.metadata?.['encoding']) === 'binary/gzip'
        ? temporal.api.common.v1.Payload.decode(gunzipSync(p.data ?? new Uint8Array(0)))
        : p,
    );
  }
}
const codecs: PayloadCodec[] = gzip ? [new GzipCodec()] : [];
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
    ['3 MiB binary', new Uint8Array(3 * MiB).map((_, i) => (i * 2654435761) >>> 24)],
  ];
  const converted = values.map(([, v]) => defaultPayloadConverter.toPayload(v));
  // The SDK's order on the way out: payload converter → payload codecs → External Storage.
  let payloads = converted;
  for (const codec of codecs) payloads = await codec.encode(payloads);
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

  log(
    `External Storage demo — threshold ${human(externalStorage.payloadSizeThreshold)}${gzip ? ', gzip codec' : ''}, storage in ${root}`,
  );
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

  // The way in: External Storage (the SDK's own retrieve path) → codecs → payload converter.
  const back = await runner.retrieve(inHistory);
  let decoded = back;
  for (const codec of [...codecs].reverse()) decoded = await codec.decode(decoded);
  back.forEach((p, i) => {
    const payload = payloads[i] as temporal.api.common.v1.IPayload;
    assert.deepEqual(Buffer.from(p.data ?? []), Buffer.from(payload.data ?? []), `payload ${i} data`);
    assert.deepEqual(defaultPayloadConverter.fromPayload(decoded[i] as Payload), values[i]?.[1], `value ${i}`);
  });
  if (gzip) {
    // What the drivers hold is the codec's output, never the plain value.
    for (const p of inHistory.filter(isReferencePayload)) {
      const ref = decodeReferencePayload(p);
      const driver = ref.driverName === hot.name ? hot : archive;
      const [stored] = await driver.retrieve({}, [new StorageDriverClaim(ref.claimData)]);
      assert.equal(new TextDecoder().decode(stored?.metadata?.['encoding']), 'binary/gzip');
    }
    log('  every stored object is gzip codec output (encoding binary/gzip)');
  }

  const hotFiles = await countFiles(path.join(root, 'hot'));
  const archiveFiles = await countFiles(path.join(root, 'archive'));
  log();
  log(`  fs-hot:     ${hotFiles.files} object(s), ${human(hotFiles.bytes)} on disk`);
  log(`  fs-archive: ${archiveFiles.files} object(s), ${human(archiveFiles.bytes)} on disk`);
  if (!gzip) log('  (the repeated 300 KiB value was stored once: content addressing dedups it)');
  console.log(
    `demo: ${payloads.length} payloads, ${offloaded} offloaded, ${payloads.length - offloaded} inline; ` +
      `history ${human(before)} → ${human(after)} (saved ${human(before - after)}, ${((100 * (before - after)) / before).toFixed(1)}%); ` +
      `all ${back.length} round trips verified`,
  );
  if (!gzip) {
    assert.equal(offloaded, 4, 'four payloads are at or above the threshold');
    assert.equal(hotFiles.files + archiveFiles.files, 3, 'three distinct offloaded payloads');
  }
  if (keep) console.log(`kept ${root}`);
  else await rm(root, { recursive: true, force: true });
}

main().catch((err) => {
  console.error('demo failed:', err);
  process.exit(1);
});
