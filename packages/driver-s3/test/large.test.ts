/** 8 MiB and 50 MiB payloads round-trip through the real server. */
import { encodePayload, type Payload } from '@x/storage-driver-core';
import { S3StorageDriver } from '../src';
import { bigPayload, createBucket, deleteBucket, listKeys, makeClient } from './helpers';

const MiB = 1024 * 1024;
const client = makeClient();
let bucket: string;
beforeAll(async () => {
  bucket = await createBucket(client, 'large');
});
afterAll(async () => {
  await deleteBucket(client, bucket);
  client.destroy();
});

function sameBytes(a: Payload | undefined, b: Payload): boolean {
  return a !== undefined && Buffer.from(encodePayload(a)).equals(Buffer.from(encodePayload(b)));
}

it('8 MiB round-trips and a repeat store finds it', async () => {
  const driver = new S3StorageDriver({ client, bucket });
  const p = bigPayload(8 * MiB, 81);
  const [claim] = await driver.store({}, [p]);
  await driver.store({}, [p]);
  expect(await listKeys(client, bucket)).toEqual([claim?.claimData.key]);
  const [back] = await driver.retrieve({}, [claim as never]);
  expect(sameBytes(back, p)).toBe(true);
});

it('a payload of exactly 50 MiB serialized (the default maxPayloadSize) round-trips', async () => {
  const driver = new S3StorageDriver({ client, bucket });
  const probe = bigPayload(0);
  const overhead = encodePayload({ ...probe, data: new Uint8Array(50 * MiB - 64) }).length - (50 * MiB - 64);
  const p = bigPayload(50 * MiB - overhead, 50);
  expect(encodePayload(p).length).toBe(50 * MiB);
  const [claim] = await driver.store({}, [p]);
  const [back] = await driver.retrieve({}, [claim as never]);
  expect(sameBytes(back, p)).toBe(true);
  // One byte more is refused before any upload.
  const over = bigPayload(50 * MiB - overhead + 1, 51);
  await expect(driver.store({}, [over])).rejects.toMatchObject({ code: 'E_TOO_LARGE' });
});
