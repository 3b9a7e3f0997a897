import * as path from 'node:path';
import { buildStorageKey, isStorageDriverError, type StorageDriverTargetInfo } from '@x/storage-driver-core';
import {
  isFoldedStoragePath,
  keyToRelativePath,
  keyToStoragePath,
  MAX_DIRECT_PATH_BYTES,
  relativePathToKey,
  storagePathToKey,
} from '../src';
import fc from './fast-check';

const HEX = 'ab'.repeat(32);
const ROOT = '/srv/temporal/payloads';

/** Any id the spec must handle: unicode, the dangerous constants, and 1,000/10,000-char ids. */
const hostileConstant = fc.constantFrom(
  '.',
  '..',
  '...',
  '',
  '/',
  '//',
  '\0',
  '~',
  '%',
  '%2E',
  '%2E%2E',
  '../../etc/passwd',
  '/etc/passwd',
  'C:\\Windows',
  'a\\b',
  ' ',
  'é',
  '😀',
  '\uD800',
);
const hugeId = fc
  .tuple(fc.string({ unit: 'binary', minLength: 1, maxLength: 4 }), fc.constantFrom(1000, 10_000))
  .map(([s, n]) => s.repeat(Math.ceil(n / s.length)).slice(0, n));
const anyId = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 300 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary-ascii', minLength: 150, maxLength: 700 }) },
  { weight: 2, arbitrary: hostileConstant },
  { weight: 1, arbitrary: hugeId },
);
const optionalId = fc.oneof(anyId, fc.constant(undefined));
const target: fc.Arbitrary<StorageDriverTargetInfo | undefined> = fc.oneof(
  fc.constant(undefined),
  fc.record({
    kind: fc.constantFrom('workflow' as const, 'activity' as const),
    namespace: anyId,
    type: optionalId,
    id: optionalId,
    runId: optionalId,
  }),
);
const sha = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('hex'));
const specKey = fc.tuple(target, sha).map(([t, h]) => buildStorageKey(t, h));

function componentsOk(rel: string): void {
  expect(rel.startsWith('/')).toBe(false);
  for (const c of rel.split('/')) {
    expect(c.length).toBeGreaterThan(0);
    expect(Buffer.byteLength(c, 'utf8')).toBeLessThanOrEqual(255);
    expect(c === '.' || c === '..').toBe(false);
    expect(c.includes('\0')).toBe(false);
    expect(c.includes('\\')).toBe(false);
  }
}

function insideRoot(rel: string): void {
  const abs = path.resolve(ROOT, ...rel.split('/'));
  expect(abs.startsWith(ROOT + path.sep)).toBe(true);
  expect(path.relative(ROOT, abs).split(path.sep).join('/')).toBe(rel);
}

describe('key ↔ path mapping', () => {
  it('maps the spec examples readably', () => {
    const key = buildStorageKey(
      { kind: 'workflow', namespace: 'payments prod', type: 'ChargeWorkflow', id: 'order+123=abc', runId: 'r1' },
      HEX,
    );
    expect(keyToRelativePath(key)).toBe(key);
    expect(keyToRelativePath(`v0/d/sha256/${HEX}`)).toBe(`v0/d/sha256/${HEX}`);
  });

  it('escapes ".", ".." and empty segments', () => {
    const dot = buildStorageKey({ kind: 'workflow', namespace: '.', type: '..', id: 'x', runId: '...' }, HEX);
    expect(dot).toBe(`v0/ns/./wt/../wi/x/ri/.../d/sha256/${HEX}`);
    const rel = keyToRelativePath(dot);
    expect(rel).toBe(`v0/ns/%2E/wt/%2E%2E/wi/x/ri/.../d/sha256/${HEX}`);
    expect(relativePathToKey(rel)).toBe(dot);
    insideRoot(rel);
    // Empty segments: buildStorageKey writes `null` for empty values, but keys from other
    // writers may still carry them, and they must map inside the root too.
    const empty = `v0/ns/a/wt/b/wi//ri/c/d/sha256/${HEX}`;
    expect(keyToRelativePath(empty)).toBe(`v0/ns/a/wt/b/wi/%/ri/c/d/sha256/${HEX}`);
    expect(relativePathToKey(keyToRelativePath(empty))).toBe(empty);
  });

  it('splits segments longer than 200 bytes into ~-prefixed components', () => {
    const id = 'x'.repeat(450);
    const key = buildStorageKey(workflow(id), HEX);
    const rel = keyToRelativePath(key);
    expect(rel).toContain(`/wi/~${'x'.repeat(200)}/~${'x'.repeat(200)}/${'x'.repeat(50)}/ri/`);
    expect(relativePathToKey(rel)).toBe(key);
    componentsOk(rel);
  });

  it('keeps adjacent long segments apart and escapes a "." tail chunk', () => {
    // 200 + 1 characters whose tail chunk is "." and a long type right before a long id.
    const key = buildStorageKey(workflow(`${'y'.repeat(200)}.`, { type: 'z'.repeat(401) }), HEX);
    const rel = keyToRelativePath(key);
    expect(rel).toContain(`/~${'y'.repeat(200)}/%2E/`);
    expect(relativePathToKey(rel)).toBe(key);
  });

  it('rejects keys outside the spec', () => {
    for (const bad of [
      '../../etc/passwd',
      '/etc/passwd',
      `/v0/d/sha256/${HEX}`,
      `v0/d/sha256/${HEX}/`,
      `v0\\d\\sha256\\${HEX}`,
      `v0/d/sha256/${HEX}\0`,
      `v0/ns/~x/wt/t/wi/i/ri/r/d/sha256/${HEX}`,
      `v0/ns/%2e/wt/t/wi/i/ri/r/d/sha256/${HEX}`,
      `v0/d/sha256/${HEX.toUpperCase()}`,
      '',
    ]) {
      let err: unknown;
      try {
        keyToRelativePath(bad);
      } catch (e) {
        err = e;
      }
      expect(isStorageDriverError(err, 'E_INVALID_CLAIM')).toBe(true);
    }
  });

  it('does not invert foreign or non-canonical paths', () => {
    for (const p of [
      '',
      'v0',
      `.tmp/put-1`,
      `v0/d/sha256/${HEX}.tmp`,
      `v0/d/sha256/${'~'}${HEX}`,
      `v0/ns/~${'x'.repeat(10)}/wt/t/wi/i/ri/r/d/sha256/${HEX}`, // chunk shorter than 200: not canonical
      `v0/ns/~${'x'.repeat(200)}/wt/t/wi/i/ri/r/d/sha256/${HEX}`, // chunk followed by a fixed word: re-encodes differently
      `v0/ns/./wt/t/wi/i/ri/r/d/sha256/${HEX}`,
      `v0/ns/a/wt/t/wi/i/ri/r/d/sha256/~${'a'.repeat(200)}`,
      `v0/~/ab/${HEX}`,
    ]) {
      expect(relativePathToKey(p)).toBeUndefined();
    }
  });

  it('round-trips every key buildStorageKey can produce, inside the root, components ≤ 255 bytes', () => {
    fc.assert(
      fc.property(specKey, (key) => {
        const rel = keyToRelativePath(key);
        expect(relativePathToKey(rel)).toBe(key);
        componentsOk(rel);
        insideRoot(rel);
      }),
      { numRuns: 600 },
    );
  });

  it('is injective', () => {
    fc.assert(
      fc.property(specKey, specKey, (a, b) => {
        if (a !== b) {
          expect(keyToRelativePath(a)).not.toBe(keyToRelativePath(b));
          expect(keyToStoragePath(a)).not.toBe(keyToStoragePath(b));
        }
      }),
      { numRuns: 500 },
    );
    // Near-collisions built on purpose.
    const keys = [
      '.',
      '..',
      '',
      '%',
      '%2E',
      '~',
      'x'.repeat(200),
      'x'.repeat(201),
      'x'.repeat(400),
      'x'.repeat(401),
    ].map((id) => buildStorageKey(workflow(id), HEX));
    expect(new Set(keys.map(keyToRelativePath)).size).toBe(keys.length);
  });

  it('storage paths are bounded: direct below MAX_DIRECT_PATH_BYTES, folded above', () => {
    fc.assert(
      fc.property(specKey, (key) => {
        const rel = keyToStoragePath(key);
        const direct = keyToRelativePath(key);
        expect(Buffer.byteLength(rel)).toBeLessThanOrEqual(MAX_DIRECT_PATH_BYTES);
        componentsOk(rel);
        insideRoot(rel);
        if (direct.length <= MAX_DIRECT_PATH_BYTES) {
          expect(rel).toBe(direct);
          expect(storagePathToKey(rel)).toEqual({ key });
        } else {
          expect(isFoldedStoragePath(rel)).toBe(true);
          expect(storagePathToKey(rel)).toEqual({ key: null });
          expect(relativePathToKey(rel)).toBeUndefined();
        }
      }),
      { numRuns: 500 },
    );
  });

  it('folds a 10,000-character id deterministically', () => {
    const key = buildStorageKey(workflow('é'.repeat(10_000)), HEX);
    expect(keyToRelativePath(key).length).toBeGreaterThan(60_000);
    const rel = keyToStoragePath(key);
    expect(rel).toMatch(/^v0\/~\/[0-9a-f]{2}\/[0-9a-f]{64}$/);
    expect(keyToStoragePath(key)).toBe(rel);
  });
});

function workflow(id: string, overrides: Partial<StorageDriverTargetInfo> = {}): StorageDriverTargetInfo {
  return { kind: 'workflow', namespace: 'default', type: 'T', id, runId: 'r', ...overrides };
}
