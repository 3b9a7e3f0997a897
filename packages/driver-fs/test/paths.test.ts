import * as path from 'node:path';
import {
  buildStorageKey,
  fitStorageKey,
  isStorageDriverError,
  MAX_STORAGE_KEY_LENGTH,
  type StorageDriverTargetInfo,
} from '@x/storage-driver-core';
import {
  keyToRelativePath,
  keyToStoragePath,
  MAX_DIRECT_PATH_BYTES,
  relativePathToKey,
  storagePathToKey,
} from '../src';
import { MAX_PATH_COMPONENTS, prefixDirectory } from '../src/paths';
import fc from './fast-check';
import { longestPathTarget } from './helpers';

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

  it('every key core writes maps to its direct path, at most MAX_DIRECT_PATH_BYTES bytes and MAX_PATH_COMPONENTS components', () => {
    fc.assert(
      fc.property(target, sha, (t, h) => {
        const key = fitStorageKey(t, h); // what core writes: at most 1,024 characters
        const rel = keyToStoragePath(key);
        expect(rel).toBe(keyToRelativePath(key));
        expect(Buffer.byteLength(rel)).toBeLessThanOrEqual(MAX_DIRECT_PATH_BYTES);
        expect(rel.split('/').length).toBeLessThanOrEqual(MAX_PATH_COMPONENTS);
        expect(storagePathToKey(rel)).toBe(key);
        componentsOk(rel);
        insideRoot(rel);
      }),
      { numRuns: 500 },
    );
  });

  it('MAX_DIRECT_PATH_BYTES is the longest path of a key of at most 1,024 characters (every key shape, every split)', () => {
    // A key's fixed segments map unchanged; each dynamic segment (namespace, type, id, run id) maps
    // to components that depend only on its length and on whether its last 200-byte chunk is `.`
    // or `..` (the only other escape is the empty segment). So the real mapping, measured on those
    // few candidates per length, gives each segment's longest mapping, and the longest path of a
    // shape is the best split of the characters its fixed segments leave among its segments.
    const candidates = (n: number) =>
      n === 0 ? [''] : ['x'.repeat(n), `${'x'.repeat(n - 1)}.`, ...(n >= 2 ? [`${'x'.repeat(n - 2)}..`] : [])];
    const namespaceKey = (segment: string) => `v0/ns/${segment}/d/sha256/${HEX}`;
    const longest = (n: number) =>
      Math.max(...candidates(n).map((c) => keyToRelativePath(namespaceKey(c)).length - namespaceKey('').length));
    const extraChunks = (n: number) => Math.max(0, Math.ceil(n / 200) - 1);
    const noTarget = `v0/d/sha256/${HEX}`.length;
    const namespaceFixed = namespaceKey('').length;
    const scopedFixed = buildStorageKey(workflow('x', { namespace: 'x', type: 'x', runId: 'x' }), HEX).length - 4;
    const perLength = Array.from({ length: MAX_STORAGE_KEY_LENGTH - namespaceFixed + 1 }, (_, n) => longest(n));
    /** Best total of `value(n)` over `segments` segments sharing at most `budget` characters. */
    const bestSplit = (segments: number, budget: number, value: (n: number) => number) => {
      let best = Array.from({ length: budget + 1 }, (_, b) => (b === 0 ? 0 : Number.NEGATIVE_INFINITY));
      for (let s = 0; s < segments; s++) {
        const next = new Array<number>(budget + 1).fill(Number.NEGATIVE_INFINITY);
        for (let used = 0; used <= budget; used++) {
          if (best[used] === Number.NEGATIVE_INFINITY) continue;
          for (let n = 0; used + n <= budget; n++) {
            const v = (best[used] as number) + value(n);
            if (v > (next[used + n] as number)) next[used + n] = v;
          }
        }
        best = next;
      }
      return Math.max(...best);
    };
    const scopedBudget = MAX_STORAGE_KEY_LENGTH - scopedFixed;
    const longestPath = Math.max(
      noTarget,
      namespaceFixed + bestSplit(1, MAX_STORAGE_KEY_LENGTH - namespaceFixed, (n) => perLength[n] as number),
      scopedFixed + bestSplit(4, scopedBudget, (n) => perLength[n] as number),
    );
    expect(longestPath).toBe(MAX_DIRECT_PATH_BYTES);
    // Components: 12 segments plus the extra chunks of the longest split.
    expect(12 + bestSplit(4, scopedBudget, extraChunks)).toBe(MAX_PATH_COMPONENTS);
    // The bound is reached, by a key core writes in full.
    const key = buildStorageKey(longestPathTarget(), HEX);
    expect(key).toHaveLength(MAX_STORAGE_KEY_LENGTH);
    expect(fitStorageKey(longestPathTarget(), HEX)).toBe(key);
    expect(keyToStoragePath(key)).toHaveLength(MAX_DIRECT_PATH_BYTES);
    // …and with 200-byte chunks on every dynamic segment, the component bound too.
    const chunky = buildStorageKey(
      workflow('i'.repeat(201), { namespace: 'n'.repeat(201), type: 't'.repeat(201), runId: 'r'.repeat(201) }),
      HEX,
    );
    expect(keyToStoragePath(chunky).split('/')).toHaveLength(MAX_PATH_COMPONENTS);
  });

  it('a key longer than 1,024 characters is E_INVALID_CLAIM (the driver never writes one)', () => {
    const key = buildStorageKey(workflow('é'.repeat(10_000)), HEX);
    expect(keyToRelativePath(key).length).toBeGreaterThan(60_000);
    let err: unknown;
    try {
      keyToStoragePath(key);
    } catch (e) {
      err = e;
    }
    expect(isStorageDriverError(err, 'E_INVALID_CLAIM')).toBe(true);
    const base = buildStorageKey(workflow('x'), HEX).length - 1;
    const just = buildStorageKey(workflow('x'.repeat(MAX_STORAGE_KEY_LENGTH + 1 - base)), HEX);
    expect(just).toHaveLength(MAX_STORAGE_KEY_LENGTH + 1);
    expect(() => keyToStoragePath(just)).toThrow(/longer than 1024/);
    expect(storagePathToKey(keyToRelativePath(just))).toBeUndefined();
  });

  it('prefixDirectory: the directory that holds every key under a prefix', () => {
    expect(prefixDirectory(undefined)).toBe('v0');
    expect(prefixDirectory('')).toBe('v0');
    expect(prefixDirectory('v')).toBe('v0');
    expect(prefixDirectory('v0/')).toBe('v0');
    expect(prefixDirectory('v0/ns/payments/')).toBe('v0/ns/payments');
    expect(prefixDirectory('v0/ns/pay')).toBe('v0/ns');
    expect(prefixDirectory('v0/ns/../wt/')).toBe('v0/ns/%2E%2E/wt');
    expect(prefixDirectory('v0/ns//')).toBe('v0/ns/%');
    expect(prefixDirectory(`v0/ns/${'a'.repeat(450)}/`)).toBe(
      `v0/ns/~${'a'.repeat(200)}/~${'a'.repeat(200)}/${'a'.repeat(50)}`,
    );
    for (const none of ['x', 'v1/', 'V0/ns/', 'v0/ns/é/', 'v0/ns/a b/', 'v0/\0/', 'v'.repeat(2000)]) {
      expect([none, prefixDirectory(none)]).toEqual([none, undefined]);
    }
    // Every key under a prefix lives under its directory.
    fc.assert(
      fc.property(specKey, fc.nat(), (key, cut) => {
        if (key.length > MAX_STORAGE_KEY_LENGTH) return;
        const prefix = key.slice(0, cut % (key.length + 1));
        const dir = prefixDirectory(prefix) as string;
        expect(`${keyToStoragePath(key)}/`.startsWith(`${dir}/`)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });
});

function workflow(id: string, overrides: Partial<StorageDriverTargetInfo> = {}): StorageDriverTargetInfo {
  return { kind: 'workflow', namespace: 'default', type: 'T', id, runId: 'r', ...overrides };
}
