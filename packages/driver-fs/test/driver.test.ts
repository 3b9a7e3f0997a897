import { lstat, mkdir, readdir, readFile, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import {
  buildStorageKey,
  encodePayload,
  isStorageDriverError,
  type Payload,
  StorageDriverClaim,
  sha256Hex,
} from '@x/storage-driver-core';
import { FsStorageDriver, keyToStoragePath, MAX_DIRECT_PATH_BYTES } from '../src';
import {
  cleanup,
  errorCode,
  keyOf,
  listFiles,
  longestPathTarget,
  makeDriver,
  makeTempDir,
  payload,
  payloadFiles,
  text,
  withKey,
  workflowTarget,
} from './helpers';

let dir: string;
beforeEach(async () => {
  dir = await makeTempDir();
});
afterEach(async () => {
  await cleanup(dir);
});

describe('FsStorageDriver options', () => {
  it('has type local.fsdriver, default name fs, and accepts a custom name', () => {
    const d = makeDriver(dir);
    expect(d.type).toBe('local.fsdriver');
    expect(d.name).toBe('fs');
    expect(makeDriver(dir, { name: 'fs-archive' }).name).toBe('fs-archive');
    expect(d.concurrency).toBe(8);
    expect(d.ttl).toBeUndefined();
    expect(d.maxPayloadSize).toBe(50 * 1024 * 1024);
  });

  it('normalises the root', () => {
    expect(new FsStorageDriver({ root: `${dir}/a/../store/` }).root).toBe(path.join(dir, 'store'));
  });

  it.each([
    ['no options', undefined],
    ['null', null],
    ['missing root', {}],
    ['empty root', { root: '' }],
    ['relative root', { root: 'payloads' }],
    ['dot root', { root: './payloads' }],
    ['NUL in root', { root: '/tmp/a\0b' }],
    ['overlong root', { root: `/${'a'.repeat(3000)}` }],
    ['root not a string', { root: 42 }],
    ['bad ttl', { root: '/tmp/x', ttl: -1 }],
    ['fractional ttl', { root: '/tmp/x', ttl: 1.5 }],
    ['bad concurrency', { root: '/tmp/x', concurrency: 0 }],
    ['bad maxPayloadSize', { root: '/tmp/x', maxPayloadSize: 0 }],
    ['bad name', { root: '/tmp/x', name: '' }],
  ])('rejects %s with E_CONFIG', (_label, options) => {
    let err: unknown;
    try {
      new FsStorageDriver(options as never);
    } catch (e) {
      err = e;
    }
    expect(isStorageDriverError(err, 'E_CONFIG')).toBe(true);
  });

  it('does not touch the filesystem until the first store; creates the root with mode 0o700', async () => {
    const d = makeDriver(dir);
    await expect(lstat(d.root)).rejects.toMatchObject({ code: 'ENOENT' });
    // A retrieve on a missing root is simply "not found" and creates nothing.
    const claim = new StorageDriverClaim({
      key: `v0/d/sha256/${'a'.repeat(64)}`,
      hash_algorithm: 'sha256',
      hash_value: 'a'.repeat(64),
    });
    expect(await errorCode(() => d.retrieve({}, [claim]))).toBe('E_NOT_FOUND');
    await expect(lstat(d.root)).rejects.toMatchObject({ code: 'ENOENT' });
    await d.store({}, [payload('x')]);
    expect((await stat(d.root)).mode & 0o777).toBe(0o700);
    expect((await stat(path.join(d.root, '.tmp'))).mode & 0o777).toBe(0o700);
    const [file] = await payloadFiles(d);
    expect((await stat(path.join(d.root, file as string))).mode & 0o777).toBe(0o600);
    for (const sub of ['v0', 'v0/d', 'v0/d/sha256']) {
      expect((await stat(path.join(d.root, sub))).mode & 0o777).toBe(0o700);
    }
  });
});

describe('store / retrieve', () => {
  it('round-trips payloads byte for byte, in order, with claims { key, hash_algorithm, hash_value }', async () => {
    const d = makeDriver(dir);
    const target = workflowTarget('order-1');
    const payloads: Payload[] = [payload('a'), payload('b', { extra: 'x' }), { metadata: {}, data: new Uint8Array() }];
    const claims = await d.store({ target }, payloads);
    expect(claims).toHaveLength(3);
    const first = claims[0] as StorageDriverClaim;
    const bytes = encodePayload(payloads[0] as Payload);
    expect(first.claimData).toEqual({
      key: `v0/ns/default/wt/MyWorkflow/wi/order-1/ri/run-1/d/sha256/${sha256Hex(bytes)}`,
      hash_algorithm: 'sha256',
      hash_value: sha256Hex(bytes),
    });
    const file = path.join(d.root, ...(first.claimData.key as string).split('/'));
    expect(new Uint8Array(await readFile(file))).toEqual(bytes);
    const back = await d.retrieve({}, claims);
    expect(back.map((p) => encodePayload(p))).toEqual(payloads.map((p) => encodePayload(p)));
    expect(text(back[1])).toBe('"b"');
    // Claims never hold the root.
    for (const c of claims) expect(JSON.stringify(c.claimData)).not.toContain(dir);
  });

  it('returns [] for empty input without touching the filesystem', async () => {
    const d = makeDriver(dir);
    expect(await d.store({}, [])).toEqual([]);
    expect(await d.retrieve({}, [])).toEqual([]);
    await expect(lstat(d.root)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('a second instance (another process) reads what the first stored', async () => {
    const a = makeDriver(dir);
    const claims = await a.store({ target: workflowTarget('w') }, [payload('shared')]);
    const b = makeDriver(dir, { name: 'other' });
    expect(text((await b.retrieve({}, claims))[0])).toBe('"shared"');
  });

  it('stores identical payloads once (in one batch and across batches)', async () => {
    const d = makeDriver(dir);
    const claims = await d.store({}, [payload('same'), payload('same'), payload('other')]);
    expect(claims[0]?.claimData).toEqual(claims[1]?.claimData);
    expect(await payloadFiles(d)).toHaveLength(2);
    await d.store({}, [payload('same')]);
    expect(await payloadFiles(d)).toHaveLength(2);
    expect(await readdir(path.join(d.root, '.tmp'))).toEqual([]);
  });

  it('50 concurrent stores of the same payload leave exactly one file and no temp files', async () => {
    const d = makeDriver(dir);
    const others = Array.from({ length: 5 }, () => makeDriver(dir));
    const target = workflowTarget('hot');
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        (i % 6 === 0 ? d : (others[i % 5] as FsStorageDriver)).store({ target }, [payload('hot')]),
      ),
    );
    const keys = new Set(results.map((c) => keyOf(c[0])));
    expect(keys.size).toBe(1);
    expect(await payloadFiles(d)).toHaveLength(1);
    expect(await readdir(path.join(d.root, '.tmp'))).toEqual([]);
    expect(text((await d.retrieve({}, results[0] as StorageDriverClaim[]))[0])).toBe('"hot"');
  });

  it('refreshes the mtime of an existing payload on a dedup hit', async () => {
    const d = makeDriver(dir);
    const [claim] = await d.store({}, [payload('old')]);
    const file = path.join(d.root, ...keyOf(claim).split('/'));
    const old = new Date(Date.now() - 30 * 24 * 3600 * 1000);
    await utimes(file, old, old);
    expect((await stat(file)).mtimeMs).toBeLessThan(Date.now() - 29 * 24 * 3600 * 1000);
    const before = Date.now();
    await d.store({}, [payload('old')]);
    expect((await stat(file)).mtimeMs).toBeGreaterThanOrEqual(before - 1000);
  });

  it('stores and retrieves a key with a segment longer than 255 bytes', async () => {
    const d = makeDriver(dir);
    const id = `${'é'.repeat(120)}/..${'x'.repeat(100)}`; // ~830 bytes once percent-encoded
    const target = workflowTarget(id, { namespace: '..', type: '.' });
    const claims = await d.store({ target }, [payload('long')]);
    const key = keyOf(claims[0]);
    expect(key).toContain('/ns/../wt/./wi/%C3%A9');
    expect(text((await d.retrieve({}, claims))[0])).toBe('"long"');
    const [file] = await payloadFiles(d);
    expect(file).toBe(keyToStoragePath(key));
    for (const c of (file as string).split('/')) expect(Buffer.byteLength(c)).toBeLessThanOrEqual(255);
    expect(file).toContain('/ns/%2E%2E/wt/%2E/wi/~%C3%A9');
  });

  it('stores and retrieves a 10,000-character id under the namespace digest key', async () => {
    const d = makeDriver(dir);
    const claims = await d.store({ target: workflowTarget('界'.repeat(10_000)) }, [payload('long')]);
    expect(keyOf(claims[0])).toMatch(/^v0\/ns\/default\/d\/sha256\/[0-9a-f]{64}$/);
    expect(text((await d.retrieve({}, claims))[0])).toBe('"long"');
    const [file] = await payloadFiles(d);
    expect(file).toBe(keyOf(claims[0]));
  });

  it('stores, lists and retrieves a 1,024-character key at its direct path of MAX_DIRECT_PATH_BYTES bytes', async () => {
    const d = makeDriver(dir);
    const claims = await d.store({ target: longestPathTarget() }, [payload('longest')]);
    expect(keyOf(claims[0])).toHaveLength(1024);
    expect(text((await d.retrieve({}, claims))[0])).toBe('"longest"');
    const [file] = await payloadFiles(d);
    expect(file).toBe(keyToStoragePath(keyOf(claims[0])));
    expect(file).toHaveLength(MAX_DIRECT_PATH_BYTES);
    const listed = [];
    for await (const o of d.list()) listed.push(o.key);
    expect(listed).toEqual([keyOf(claims[0])]);
  });

  it('a claim whose key is longer than 1,024 characters is E_INVALID_CLAIM', async () => {
    const d = makeDriver(dir);
    const [claim] = await d.store({}, [payload('x')]);
    const hash = claim?.claimData.hash_value as string;
    const long = buildStorageKey(workflowTarget('x'.repeat(1100)), hash);
    expect(await errorCode(() => d.retrieve({}, [withKey(claim as StorageDriverClaim, long)]))).toBe('E_INVALID_CLAIM');
    expect(await errorCode(() => d.delete([long]))).toBe('E_INVALID_CLAIM');
  });

  it('accepts camelCase hash fields written by the official TS S3 driver', async () => {
    const d = makeDriver(dir);
    const [claim] = await d.store({}, [payload('camel')]);
    const data = claim?.claimData as Record<string, string>;
    const camel = new StorageDriverClaim({
      key: data.key as string,
      hashAlgorithm: data.hash_algorithm as string,
      hashValue: data.hash_value as string,
    });
    expect(text((await d.retrieve({}, [camel]))[0])).toBe('"camel"');
  });

  it('rejects a batch over maxPayloadSize before writing anything', async () => {
    const d = makeDriver(dir, { maxPayloadSize: 100 });
    expect(await errorCode(() => d.store({}, [payload('small'), payload('x'.repeat(200))]))).toBe('E_TOO_LARGE');
    expect(await listFiles(dir)).toEqual([]);
  });
});

describe('integrity and missing payloads', () => {
  it('a tampered file fails with E_INTEGRITY', async () => {
    const d = makeDriver(dir);
    const [claim] = await d.store({}, [payload('genuine')]);
    const file = d.pathForKey(keyOf(claim));
    const forged = encodePayload(payload('forged!'));
    await writeFile(file, forged);
    expect(await errorCode(() => d.retrieve({}, [claim as StorageDriverClaim]))).toBe('E_INTEGRITY');
  });

  it('a truncated file is detected on read and replaced by the next store of the same payload', async () => {
    const d = makeDriver(dir);
    const [claim] = await d.store({}, [payload('repair me')]);
    const file = d.pathForKey(keyOf(claim));
    await writeFile(file, Buffer.from([0x0a]));
    expect(await errorCode(() => d.retrieve({}, [claim as StorageDriverClaim]))).toBe('E_INTEGRITY');
    await d.store({}, [payload('repair me')]);
    expect(text((await d.retrieve({}, [claim as StorageDriverClaim]))[0])).toBe('"repair me"');
  });

  it('a missing file or directory fails with E_NOT_FOUND', async () => {
    const d = makeDriver(dir);
    await d.store({}, [payload('present')]); // the root and v0 exist
    // Well-formed claims (each key names its hash) for objects never stored.
    const zero = '0'.repeat(64);
    const claimOf = (key: string) => new StorageDriverClaim({ key, hash_algorithm: 'sha256', hash_value: zero });
    const other = claimOf(`v0/ns/x/wt/y/wi/z/ri/r/d/sha256/${zero}`);
    expect(await errorCode(() => d.retrieve({}, [other]))).toBe('E_NOT_FOUND');
    const missingFile = claimOf(`v0/d/sha256/${zero}`);
    expect(await errorCode(() => d.retrieve({}, [missingFile]))).toBe('E_NOT_FOUND');
  });

  it('a wrong or missing hash fails', async () => {
    const d = makeDriver(dir);
    const [claim] = await d.store({}, [payload('h')]);
    const data = claim?.claimData as Record<string, string>;
    const wrong = new StorageDriverClaim({ ...data, hash_value: '0'.repeat(64) });
    expect(await errorCode(() => d.retrieve({}, [wrong]))).toBe('E_INTEGRITY');
    const { hash_value: _v, ...noHash } = data;
    expect(await errorCode(() => d.retrieve({}, [new StorageDriverClaim(noHash)]))).toBe('E_INVALID_CLAIM');
    const md5 = new StorageDriverClaim({ ...data, hash_algorithm: 'md5' });
    expect(await errorCode(() => d.retrieve({}, [md5]))).toBe('E_INVALID_CLAIM');
  });
});

describe('hostile claims', () => {
  const SECRET = encodePayload(payload('top secret'));
  const secretHash = sha256Hex(SECRET);

  function hostile(key: string): StorageDriverClaim {
    return new StorageDriverClaim({ key, hash_algorithm: 'sha256', hash_value: secretHash });
  }

  it.each([
    ['traversal', '../../etc/passwd'],
    ['traversal to a planted file', `../outside/d/sha256/${'a'.repeat(64)}`],
    ['absolute path', '/etc/passwd'],
    ['absolute key-shaped path', `/v0/d/sha256/${'a'.repeat(64)}`],
    ['backslash', `v0\\d\\sha256\\${'a'.repeat(64)}`],
    ['backslash traversal', `v0/ns/..\\..\\x/wt/t/wi/i/ri/r/d/sha256/${'a'.repeat(64)}`],
    ['NUL', `v0/d/sha256/${'a'.repeat(64)}\0`],
    ['tilde', `v0/ns/~/wt/t/wi/i/ri/r/d/sha256/${'a'.repeat(64)}`],
    ['empty', ''],
    ['root of the store', 'v0'],
    ['temp dir', `.tmp/put-1`],
  ])('rejects %s with E_INVALID_CLAIM', async (_label, key) => {
    const d = makeDriver(dir);
    await d.store({}, [payload('x')]);
    expect(await errorCode(() => d.retrieve({}, [hostile(key)]))).toBe('E_INVALID_CLAIM');
  });

  it('an encoded-slash segment is a literal name inside the root: merely not found', async () => {
    const d = makeDriver(dir);
    await d.store({}, [payload('x')]);
    const key = `v0/ns/..%2F..%2Fetc/wt/t/wi/i/ri/r/d/sha256/${secretHash}`;
    expect(await errorCode(() => d.retrieve({}, [hostile(key)]))).toBe('E_NOT_FOUND');
  });

  it('rejects a claim without a key, or with a non-string key', async () => {
    const d = makeDriver(dir);
    const noKey = new StorageDriverClaim({ hash_algorithm: 'sha256', hash_value: secretHash });
    expect(await errorCode(() => d.retrieve({}, [noKey]))).toBe('E_INVALID_CLAIM');
    const numeric = new StorageDriverClaim({ key: 42, hash_algorithm: 'sha256', hash_value: secretHash } as never);
    expect(await errorCode(() => d.retrieve({}, [numeric]))).toBe('E_INVALID_CLAIM');
  });

  it('a key of ".." segments stays inside the root', async () => {
    const d = makeDriver(dir);
    // Plant the secret where naive path.join(root, key) would land: <dir>/store/v0/ns/.. -> <dir>/store/v0
    const target = { kind: 'workflow' as const, namespace: '..', type: '..', id: '..', runId: '..' };
    const claims = await d.store({ target }, [payload('dots')]);
    expect(keyOf(claims[0])).toMatch(/^v0\/ns\/\.\.\/wt\/\.\.\/wi\/\.\.\/ri\/\.\.\/d\/sha256\//);
    expect(text((await d.retrieve({}, claims))[0])).toBe('"dots"');
    const files = await listFiles(dir);
    expect(files).toEqual([`store/${keyToStoragePath(keyOf(claims[0]))}`]);
    expect(files[0]).toContain('v0/ns/%2E%2E/wt/%2E%2E/wi/%2E%2E/ri/%2E%2E/d/sha256/');
  });

  it('one object has one key: a non-canonical spelling (%2E for ".") is rejected, not aliased', async () => {
    const d = makeDriver(dir);
    const target = { kind: 'workflow' as const, namespace: '.', type: 'T', id: 'id', runId: 'r' };
    const claims = await d.store({ target }, [payload('dot namespace')]);
    const key = keyOf(claims[0]);
    expect(key.startsWith('v0/ns/./')).toBe(true);
    const alias = withKey(claims[0] as StorageDriverClaim, key.replace('v0/ns/./', 'v0/ns/%2E/'));
    expect(await errorCode(() => d.retrieve({}, [alias]))).toBe('E_INVALID_CLAIM');
    const upper = withKey(claims[0] as StorageDriverClaim, key.replace('/wt/T/', '/wt/%54/'));
    expect(await errorCode(() => d.retrieve({}, [upper]))).toBe('E_INVALID_CLAIM');
  });

  it('does not follow a symlinked directory out of the root (and never reads the planted file)', async () => {
    const d = makeDriver(dir);
    await d.store({}, [payload('x')]);
    // Plant the secret outside the root, at the path the claim would reach through the link.
    const outside = path.join(dir, 'outside');
    const plantedDir = path.join(outside, 'wt', 't', 'wi', 'i', 'ri', 'r', 'd', 'sha256');
    await mkdir(plantedDir, { recursive: true });
    await writeFile(path.join(plantedDir, secretHash), SECRET);
    await mkdir(path.join(d.root, 'v0', 'ns'), { recursive: true });
    await symlink(outside, path.join(d.root, 'v0', 'ns', 'evil'));
    const claim = hostile(`v0/ns/evil/wt/t/wi/i/ri/r/d/sha256/${secretHash}`);
    expect(await errorCode(() => d.retrieve({}, [claim]))).toBe('E_INVALID_CLAIM');
    // Control: the planted bytes really are the payload that claim asks for.
    expect(sha256Hex(new Uint8Array(await readFile(path.join(plantedDir, secretHash))))).toBe(secretHash);
  });

  it('does not follow a symlink at the final path (even one pointing inside the root)', async () => {
    const d = makeDriver(dir);
    const outsideFile = path.join(dir, 'secret.bin');
    await writeFile(outsideFile, SECRET);
    await mkdir(path.join(d.root, 'v0', 'd', 'sha256'), { recursive: true });
    await symlink(outsideFile, path.join(d.root, 'v0', 'd', 'sha256', secretHash));
    expect(await errorCode(() => d.retrieve({}, [hostile(`v0/d/sha256/${secretHash}`)]))).toBe('E_INVALID_CLAIM');
  });

  it('a symlinked root is fine (realpath of the root is the reference)', async () => {
    const real = path.join(dir, 'real');
    await mkdir(real);
    await symlink(real, path.join(dir, 'link'));
    const d = new FsStorageDriver({ root: path.join(dir, 'link') });
    const claims = await d.store({}, [payload('via link')]);
    expect(text((await d.retrieve({}, claims))[0])).toBe('"via link"');
    expect(await listFiles(real)).toHaveLength(1);
  });

  it('a store over a planted symlink at the final path replaces the link, not its target', async () => {
    const d = makeDriver(dir);
    const bytes = encodePayload(payload('victim'));
    const hash = sha256Hex(bytes);
    const outsideFile = path.join(dir, 'victim.txt');
    await writeFile(outsideFile, 'do not touch');
    await mkdir(path.join(d.root, 'v0', 'd', 'sha256'), { recursive: true });
    await symlink(outsideFile, path.join(d.root, 'v0', 'd', 'sha256', hash));
    const claims = await d.store({}, [payload('victim')]);
    expect(await readFile(outsideFile, 'utf8')).toBe('do not touch');
    expect((await lstat(d.pathForKey(keyOf(claims[0])))).isFile()).toBe(true);
    expect(text((await d.retrieve({}, claims))[0])).toBe('"victim"');
  });
});

describe('filesystems without hard links', () => {
  // The real module object (not an esModuleInterop copy), so spies reach the driver's calls.
  const fsp: typeof import('node:fs/promises') = require('node:fs/promises');
  afterEach(() => jest.restoreAllMocks());

  function linkFails(code: string): jest.SpyInstance {
    return jest.spyOn(fsp, 'link').mockImplementation(async () => {
      const e: NodeJS.ErrnoException = new Error(`${code}: link`);
      e.code = code;
      throw e;
    });
  }

  it.each(['EPERM', 'ENOTSUP', 'ENOSYS'])('falls back to rename() when link() fails with %s', async (code) => {
    const spy = linkFails(code);
    const d = makeDriver(dir);
    const claims = await d.store({}, [payload('a')]);
    expect(spy).toHaveBeenCalledTimes(1);
    await d.store({}, [payload('b')]); // remembered: no second link attempt
    expect(spy).toHaveBeenCalledTimes(1);
    expect(text((await d.retrieve({}, claims))[0])).toBe('"a"');
    expect(await payloadFiles(d)).toHaveLength(2);
    expect(await readdir(path.join(d.root, '.tmp'))).toEqual([]);
  });

  it('does not treat a real permission error as missing hard-link support', async () => {
    linkFails('EPERM');
    jest.spyOn(fsp, 'rename').mockImplementation(async () => {
      const e: NodeJS.ErrnoException = new Error('EPERM: rename');
      e.code = 'EPERM';
      throw e;
    });
    const d = makeDriver(dir);
    expect(await errorCode(() => d.store({}, [payload('a')]))).toBe('E_CONFIG');
    jest.restoreAllMocks();
    const link = jest.spyOn(fsp, 'link');
    const rename = jest.spyOn(fsp, 'rename');
    await d.store({}, [payload('a')]);
    expect(link).toHaveBeenCalled(); // still prefers link()
    expect(rename).not.toHaveBeenCalled();
  });
});

describe('atomicity', () => {
  it('never exposes a partial file at a final path while a large payload is written', async () => {
    const d = makeDriver(dir);
    const big: Payload = { metadata: {}, data: new Uint8Array(16 * 1024 * 1024).fill(7) };
    const bytes = encodePayload(big);
    const file = d.pathForKey(`v0/d/sha256/${sha256Hex(bytes)}`);
    let sawPartial = false;
    let polling = true;
    const poll = (async () => {
      while (polling) {
        try {
          const s = await stat(file);
          if (s.size !== bytes.length) sawPartial = true;
        } catch {
          // not there yet
        }
        await new Promise((r) => setImmediate(r));
      }
    })();
    await d.store({}, [big]);
    polling = false;
    await poll;
    expect(sawPartial).toBe(false);
    expect((await stat(file)).size).toBe(bytes.length);
    expect(await readdir(path.join(d.root, '.tmp'))).toEqual([]);
  });

  it('an aborted store leaves no file at a final path and no temp file', async () => {
    const d = makeDriver(dir);
    const controller = new AbortController();
    controller.abort(new Error('stop'));
    expect(await errorCode(() => d.store({ abortSignal: controller.signal }, [payload('a')]))).toBe('E_ABORTED');
    const c2 = new AbortController();
    const many = Array.from({ length: 64 }, (_, i) => payload(`p${i}`.repeat(20_000)));
    const p = d.store({ abortSignal: c2.signal }, many);
    setImmediate(() => c2.abort(new Error('stop')));
    expect(await errorCode(() => p)).toBe('E_ABORTED');
    // Let in-flight writes settle, then check that every final file is complete and .tmp is empty.
    await new Promise((r) => setTimeout(r, 200));
    for (const f of await payloadFiles(d)) {
      const content = new Uint8Array(await readFile(path.join(d.root, f)));
      expect(sha256Hex(content)).toBe(path.basename(f));
    }
    expect(await readdir(path.join(d.root, '.tmp'))).toEqual([]);
  });

  it('an aborted retrieve rejects with E_ABORTED', async () => {
    const d = makeDriver(dir);
    const claims = await d.store({}, [payload('r')]);
    const controller = new AbortController();
    controller.abort();
    expect(await errorCode(() => d.retrieve({ abortSignal: controller.signal }, claims))).toBe('E_ABORTED');
  });

  it('a dedup hit leaves the existing file untouched (same inode, no extra hard link)', async () => {
    const d = makeDriver(dir);
    const [claim] = await d.store({}, [payload('inode')]);
    const file = d.pathForKey(keyOf(claim));
    const before = await stat(file);
    await d.store({}, [payload('inode')]);
    const after = await stat(file);
    expect(after.ino).toBe(before.ino);
    expect(after.nlink).toBe(1);
  });
});
