/**
 * Byte compatibility with `@temporalio/common` 1.24: a reference written by the SDK's own
 * external-storage runner decodes through /decode, and a reference written by /encode is
 * retrieved by the SDK runner; the reference bytes are identical.
 */
import * as path from 'node:path';
import {
  defaultPayloadConverter,
  ExternalStorage,
  StorageDriverClaim as SdkClaim,
  type PayloadCodec as SdkPayloadCodec,
} from '@temporalio/common';
import { ExternalStorageRunner } from '@temporalio/common/lib/internal-non-workflow/external-storage-runner';
import { encodeReferencePayload as sdkEncodeReference } from '@temporalio/common/lib/internal-non-workflow/extstore-helpers';
import type { Payload } from '@x/storage-driver-core';
import { FsStorageDriver } from '@x/storage-driver-fs';
import fc from 'fast-check';
import {
  type CodecNamespaceConfig,
  type CodecStorageConfig,
  decodeReferencePayload,
  encodeReferencePayload,
  payloadFromJson,
  payloadToJson,
  type RunningCodecServer,
  startCodecServer,
} from '../src';
import { body, cleanup, makeTempDir, payloadsOf, post } from './helpers';

let dir: string;
let driver: FsStorageDriver;
let storage: ExternalStorage;
let server: RunningCodecServer;

beforeAll(async () => {
  dir = await makeTempDir();
  driver = new FsStorageDriver({ root: path.join(dir, 'payloads') });
  storage = new ExternalStorage({ drivers: [driver], payloadSizeThreshold: 1024 });
  // An SDK ExternalStorage instance is accepted as the namespace's storage config.
  const config: CodecNamespaceConfig = { storage };
  server = await startCodecServer({ port: 0, namespaces: { default: config } });
});

afterAll(async () => {
  await server?.close();
  await cleanup(dir);
});

it('accepts SDK types at compile time', () => {
  const codec: SdkPayloadCodec = { encode: async (p) => p, decode: async (p) => p };
  const config: CodecNamespaceConfig = { storage, payloadCodecs: [codec] };
  const s: CodecStorageConfig = storage;
  expect(config.storage).toBe(s);
});

it('decodes a reference written by the SDK runner, and the SDK retrieves one written by /encode', async () => {
  const runner = new ExternalStorageRunner(storage);
  const value = { order: 42, note: 'é'.repeat(1000) };
  const original = defaultPayloadConverter.toPayload(value);
  const target = { kind: 'workflow' as const, namespace: 'default', id: 'wf', runId: 'r', type: 'W' };
  const [sdkRef] = await runner.store([original], { target });
  // SDK → codec server
  const [decoded] = payloadsOf(await post(server.url, '/decode', body(sdkRef as Payload)));
  expect(defaultPayloadConverter.fromPayload(decoded as Payload)).toEqual(value);
  // preserveStorageRefs returns the SDK's reference byte for byte
  const [kept] = payloadsOf(await post(server.url, '/decode?preserveStorageRefs=true', body(sdkRef as Payload)));
  expect(payloadToJson(kept as Payload)).toEqual(payloadToJson(sdkRef as Payload));

  // codec server → SDK: the same payload stored through /encode gives the same claim (no target
  // → different key) and the SDK retrieves it.
  const [ourRef] = payloadsOf(await post(server.url, '/encode', body(original)));
  const [back] = await runner.retrieve([ourRef as Payload]);
  expect(defaultPayloadConverter.fromPayload(back as Payload)).toEqual(value);
  const ours = decodeReferencePayload(ourRef as Payload);
  const theirs = decodeReferencePayload(sdkRef as Payload);
  expect(ours.sizeBytes).toBe(theirs.sizeBytes);
  expect(ours.claimData.hash_value).toBe(theirs.claimData.hash_value);
});

it('encodes references byte-identical to the SDK (any driver name, claim and size)', () => {
  fc.assert(
    fc.property(
      fc.string({ minLength: 1 }),
      fc.dictionary(fc.string(), fc.string(), { maxKeys: 5 }),
      fc.nat(),
      (driverName, claimData, sizeBytes) => {
        const sdk = sdkEncodeReference({ driverName, claim: new SdkClaim(claimData), sizeBytes }) as Payload;
        const ours = encodeReferencePayload({ driverName, claimData, sizeBytes });
        expect(payloadToJson(ours)).toEqual(payloadToJson(sdk));
        const parsed = decodeReferencePayload(payloadFromJson(payloadToJson(sdk)));
        expect(parsed).toEqual({ driverName, claimData, sizeBytes });
      },
    ),
    { numRuns: 200 },
  );
});

it('round-trips any payload through proto3 JSON', () => {
  const bytes = fc.uint8Array({ maxLength: 64 });
  fc.assert(
    fc.property(
      fc.dictionary(fc.string(), bytes, { maxKeys: 4 }),
      bytes,
      fc.array(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), { maxLength: 3 }),
      (metadata, data, sizes) => {
        const json = payloadToJson({
          metadata,
          data,
          externalPayloads: sizes.map((s) => ({ sizeBytes: (Number(s) === 0 ? 0 : s.toString()) as never })),
        });
        const back = payloadFromJson(JSON.parse(JSON.stringify(json)));
        expect(payloadToJson(back)).toEqual(json);
        expect(Buffer.from(back.data ?? [])).toEqual(Buffer.from(data));
      },
    ),
    { numRuns: 200 },
  );
});
