/** Test vectors: exact keys and claims (DESIGN §4.4), other SDKs' key spellings, claim-key validation. */
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { encodePayload, StorageDriverClaim, type StorageDriverTargetInfo, sha256Hex } from '@x/storage-driver-core';
import { S3_MAX_KEY_BYTES, S3StorageDriver, validateClaimKey } from '../src';
import { createBucket, deleteBucket, errorCode, makeClient, payload } from './helpers';

const client = makeClient();
let bucket: string;
beforeAll(async () => {
  bucket = await createBucket(client, 'vectors');
});
afterAll(async () => {
  await deleteBucket(client, bucket);
  client.destroy();
});

/** `{"metadata":{"encoding":"json/plain"},"data":"\"hello\""}` serialized, and its SHA-256. */
const HELLO = payload('hello');
const HELLO_BYTES = '0a160a08656e636f64696e67120a6a736f6e2f706c61696e12072268656c6c6f22';
const HELLO_SHA256 = '1b8435174847de88db3a8c5a764295d62add152743b3a9a730796a4c090caf8c';
const RUN = '5a1e6b7c-1d2e-4f30-9a4b-5c6d7e8f9012';

const vectors: [string, StorageDriverTargetInfo | undefined, string][] = [
  ['no target', undefined, `v0/d/sha256/${HELLO_SHA256}`],
  [
    'DESIGN §4.4 workflow example',
    { kind: 'workflow', namespace: 'payments prod', type: 'ChargeWorkflow', id: 'order+123=abc', runId: RUN },
    `v0/ns/payments%20prod/wt/ChargeWorkflow/wi/order%2B123%3Dabc/ri/${RUN}/d/sha256/${HELLO_SHA256}`,
  ],
  [
    'DESIGN §4.4 activity example',
    { kind: 'activity', namespace: 'payments prod', type: 'Capture/Charge', id: 'activity id+42', runId: RUN },
    `v0/ns/payments%20prod/at/Capture%2FCharge/ai/activity%20id%2B42/ri/${RUN}/d/sha256/${HELLO_SHA256}`,
  ],
  [
    "missing values are null; ~ and é escaped; !*'() kept",
    { kind: 'workflow', namespace: 'default', type: "W!*'()", id: '~é' },
    `v0/ns/default/wt/W!*'()/wi/%7E%C3%A9/ri/null/d/sha256/${HELLO_SHA256}`,
  ],
];

describe('test vectors', () => {
  it('the serialized payload and its digest are pinned', () => {
    expect(Buffer.from(encodePayload(HELLO)).toString('hex')).toBe(HELLO_BYTES);
    expect(sha256Hex(encodePayload(HELLO))).toBe(HELLO_SHA256);
  });

  it.each(vectors)('%s: exact key and claim, stored at that key', async (_name, target, key) => {
    const driver = new S3StorageDriver({ client, bucket });
    const [claim] = await driver.store(target ? { target } : {}, [HELLO]);
    expect(claim?.claimData).toStrictEqual({ bucket, key, hash_algorithm: 'sha256', hash_value: HELLO_SHA256 });
    // The object is at exactly that key and holds exactly the serialized Payload.
    const [back] = await driver.retrieve({}, [
      new StorageDriverClaim({ bucket, key, hash_algorithm: 'sha256', hash_value: HELLO_SHA256 }),
    ]);
    expect(Buffer.from(encodePayload(back as never)).toString('hex')).toBe(HELLO_BYTES);
  });

  it('keyPrefix is put in front of the key and the claim carries the full key', async () => {
    const driver = new S3StorageDriver({ client, bucket, keyPrefix: 'temporal/payloads/' });
    const [claim] = await driver.store({}, [HELLO]);
    expect(claim?.claimData.key).toBe(`temporal/payloads/v0/d/sha256/${HELLO_SHA256}`);
    // A driver without the prefix reads it too (claims are self-describing).
    const plain = new S3StorageDriver({ client, bucket });
    await expect(plain.retrieve({}, [claim as StorageDriverClaim])).resolves.toHaveLength(1);
  });
});

describe('keys written by other SDKs are retrievable', () => {
  const bytes = encodePayload(HELLO);
  const h = HELLO_SHA256;
  it.each([
    // Python urllib.parse.quote(safe=''): `~` raw, `!*'()` escaped, ns omitted when empty.
    ['python quote', `v0/ns/default/wt/W%21%2A%27%28%29/wi/~home%2Fx/ri/${RUN}/d/sha256/${h}`],
    ['python, empty namespace', `v0/wt/MyWorkflow/wi/wf-1/ri/${RUN}/d/sha256/${h}`],
    ['python activity, empty namespace', `v0/at/MyActivity/ai/1/ri/null/d/sha256/${h}`],
    // Go url.PathEscape leaves `:@&=+$` raw; Java URLEncoder writes spaces as `+`.
    ['go PathEscape', `v0/ns/default/wt/W/wi/a:b@c&d=e+f$g/ri/${RUN}/d/sha256/${h}`],
    ['java URLEncoder', `v0/ns/payments+prod/wt/W/wi/order%2b123/ri/${RUN}/d/sha256/${h}`],
    ['empty segment (older writers)', `v0/ns//wt/W/wi/x/ri//d/sha256/${h}`],
    // The official drivers do not shorten keys; a server without S3's 1024-byte limit (moto)
    // stores their keys for 1000-character ASCII namespace, type and id as they are.
    [
      'python, 1000-character ids on a lenient server (3133 bytes)',
      `v0/ns/${'n'.repeat(1000)}/wt/${'t'.repeat(1000)}/wi/${'i'.repeat(1000)}/ri/${RUN}/d/sha256/${h}`,
    ],
    ['4096 bytes', `v0/ns/${'a'.repeat(4096 - 95)}/wt/W/wi/I/ri/R/d/sha256/${h}`],
  ])('%s', async (_name, key) => {
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes }));
    const driver = new S3StorageDriver({ client, bucket });
    const [back] = await driver.retrieve({}, [
      new StorageDriverClaim({ bucket, key, hash_algorithm: 'sha256', hash_value: h }),
    ]);
    expect(new TextDecoder().decode(back?.data ?? undefined)).toBe('"hello"');
  });
});

describe('validateClaimKey', () => {
  const h = HELLO_SHA256;
  it.each([
    `v0/d/sha256/${h}`,
    `v0/ns/../wt/./wi/../ri/../d/sha256/${h}`,
    `prefix/x/v0/d/sha256/${h}`,
    `v0/v0/v0/v0/d/sha256/${h}`.replace('v0/v0/v0/v0', 'v0/ns/v0/wt/v0/wi/v0/ri/v0'),
  ])('accepts %s', (key) => {
    expect(validateClaimKey(key)).toBe(key);
  });
  it.each([
    ['empty', ''],
    ['not a string', 42],
    ['over 4096 bytes', `v0/ns/${'a'.repeat(4100)}/wt/W/wi/I/ri/R/d/sha256/${h}`],
    ['4097 bytes', `v0/ns/${'a'.repeat(4097 - 95)}/wt/W/wi/I/ri/R/d/sha256/${h}`],
    ['control character', `v0/ns/a\u0001/wt/W/wi/I/ri/R/d/sha256/${h}`],
    ['NUL', `v0/d/sha256/${h}\u0000`],
    ['CRLF', `v0/ns/a\r\n/wt/W/wi/I/ri/R/d/sha256/${h}`],
    ['backslashes', `v0\\d\\sha256\\${h}`],
    ['leading slash', `/v0/d/sha256/${h}`],
    ['dot-dot prefix', `../v0/d/sha256/${h}`],
    ['dot-dot in the structure', `v0/../d/sha256/${h}`],
    ['prefix with dot-dot', `a/../v0/d/sha256/${h}`],
    ['upper-case digest', `v0/d/sha256/${h.toUpperCase()}`],
    ['other algorithm', `v0/d/md5/${h}`],
    ['raw space', `v0/ns/a b/wt/W/wi/I/ri/R/d/sha256/${h}`],
    ['raw non-ASCII', `v0/ns/é/wt/W/wi/I/ri/R/d/sha256/${h}`],
    ['query string', `v0/ns/a?x=1/wt/W/wi/I/ri/R/d/sha256/${h}`],
    ['fragment', `v0/ns/a#x/wt/W/wi/I/ri/R/d/sha256/${h}`],
    ['malformed escape', `v0/ns/%G1/wt/W/wi/I/ri/R/d/sha256/${h}`],
    ['mixed labels', `v0/ns/a/wt/W/ai/I/ri/R/d/sha256/${h}`],
    ['extra segments', `v0/ns/a/wt/W/wi/I/ri/R/x/d/sha256/${h}`],
    ['trailing slash', `v0/d/sha256/${h}/`],
  ])('rejects %s with E_INVALID_CLAIM', async (_name, key) => {
    expect(await errorCode(async () => validateClaimKey(key))).toBe('E_INVALID_CLAIM');
  });
});

describe('keys over S3’s 1024-byte limit', () => {
  it('accepts the official long-key fallback v0/ns/{namespace}/d/sha256/{hex} (Python 1.35), under any prefix', () => {
    const h = HELLO_SHA256;
    for (const key of [
      `v0/ns/default/d/sha256/${h}`,
      `v0/ns/null/d/sha256/${h}`,
      `tenant/a/v0/ns/p%20q/d/sha256/${h}`,
    ]) {
      expect(validateClaimKey(key)).toBe(key);
    }
  });
  it('still reads the ~-folded keys this driver wrote before it followed the official rule', () => {
    const folded = `v0/ns/default/wt/W/wi/~${sha256Hex(new TextEncoder().encode('%C3%A9'.repeat(200)))}/ri/R/d/sha256/${HELLO_SHA256}`;
    expect(validateClaimKey(folded)).toBe(folded);
  });
  it('writes the full key up to 1024 bytes and the namespace digest key above, prefix included', async () => {
    const prefix = 'tenant/';
    const driver = new S3StorageDriver({ client, bucket, keyPrefix: prefix });
    const base: StorageDriverTargetInfo = { kind: 'workflow', namespace: 'default', type: 'W', id: '', runId: 'R' };
    const fullLength = (id: string) =>
      prefix.length + `v0/ns/default/wt/W/wi/${id}/ri/R/d/sha256/${HELLO_SHA256}`.length;
    const fits = 'i'.repeat(1024 - fullLength(''));
    expect(fullLength(fits)).toBe(1024);
    const [atLimit, over] = await Promise.all([
      driver.store({ target: { ...base, id: fits } }, [HELLO]),
      driver.store({ target: { ...base, id: `${fits}i` } }, [HELLO]),
    ]);
    expect(atLimit[0]?.claimData.key).toBe(`${prefix}v0/ns/default/wt/W/wi/${fits}/ri/R/d/sha256/${HELLO_SHA256}`);
    expect(over[0]?.claimData.key).toBe(`${prefix}v0/ns/default/d/sha256/${HELLO_SHA256}`);
  });
  it('1000-character ids in every field round-trip with a key under 1024 bytes', async () => {
    const driver = new S3StorageDriver({ client, bucket, keyPrefix: `${'p'.repeat(500)}/` });
    const id = 'é'.repeat(1000);
    const target: StorageDriverTargetInfo = { kind: 'activity', namespace: id, type: id, id, runId: id };
    const [claim] = await driver.store({ target }, [HELLO]);
    const key = claim?.claimData.key as string;
    expect(Buffer.byteLength(key)).toBeLessThanOrEqual(S3_MAX_KEY_BYTES);
    // The namespace itself (6,000 encoded bytes) is over any limit: folded to %7E + its SHA-256.
    expect(key).toMatch(/^p{500}\/v0\/ns\/%7E[0-9a-f]{64}\/d\/sha256\/[0-9a-f]{64}$/);
    const [back] = await driver.retrieve({}, [claim as StorageDriverClaim]);
    expect(new TextDecoder().decode(back?.data ?? undefined)).toBe('"hello"');
  });
});
