/**
 * Blob names: the segment encoder (the S3 key spec plus Azure's rules on dots), the validation of
 * claim keys, key prefixes and containers, and the client-side check that the client addresses
 * exactly the blob named (no server needed: the client computes the URL locally).
 */
import { ContainerClient } from '@azure/storage-blob';
import { describe, expect, it } from '@jest/globals';
import {
  buildStorageKey,
  encodeKeySegment,
  fitStorageKey,
  isStorageDriverError,
  type StorageDriverTargetInfo,
} from '@x/storage-driver-core';
import {
  encodeAzureKeySegment,
  isSpecKey,
  isValidContainerName,
  validateClaimContainer,
  validateClaimKey,
  validateKeyPrefix,
} from '../src';
import { blockBlob } from '../src/requests';

const H = 'a'.repeat(64);
const key = (id: string) => `v0/ns/default/wt/W/wi/${id}/ri/r/d/sha256/${H}`;

function code(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (e) {
    return isStorageDriverError(e) ? e.code : 'not a StorageDriverError';
  }
}

describe('encodeAzureKeySegment', () => {
  it.each([
    ['', 'null'],
    [undefined, 'null'],
    [null, 'null'],
    ['.', '%2E'],
    ['..', '%2E%2E'],
    ['...', '..%2E'],
    ['a.', 'a%2E'],
    ['a..', 'a.%2E'],
    ['.a', '.a'],
    ['a.b', 'a.b'],
    ['v1.2.3', 'v1.2.3'],
    ['a/b', 'a%2Fb'],
    ['a\\b', 'a%5Cb'],
    ['100%', '100%25'],
    ['a b', 'a%20b'],
    ['日本.', '%E6%97%A5%E6%9C%AC%2E'],
    ['nul\u0000', 'nul%00'],
    ["!-_.*'()", "!-_.*'()"],
  ])('%j → %s', (value, expected) => {
    expect(encodeAzureKeySegment(value)).toBe(expected);
  });

  it('is the S3 key spec for every value whose encoding does not end with a dot', () => {
    for (const value of ['default', 'my namespace', 'my/workflow', 'wf id+1', 'run=abc', '~home', 'üñí', '%2F', '.a']) {
      expect(encodeAzureKeySegment(value)).toBe(encodeKeySegment(value));
    }
    const target: StorageDriverTargetInfo = {
      kind: 'activity',
      namespace: 'payments prod',
      type: 'Capture/Charge',
      id: 'activity id+42',
      runId: 'r-1',
    };
    expect(fitStorageKey(target, H, 1024, encodeAzureKeySegment)).toBe(buildStorageKey(target, H));
  });

  it('never writes a segment the client would resolve or Azure advises against', () => {
    for (const value of ['.', '..', '...', 'x.', './', '../', '.\\', 'a/..', '%2e', '\\']) {
      const s = encodeAzureKeySegment(value);
      expect([s, s === '.' || s === '..' || s.endsWith('.') || s.includes('/') || s.includes('\\')]).toEqual([
        s,
        false,
      ]);
      expect(isSpecKey(key(s))).toBe(true);
    }
  });
});

describe('validateClaimKey', () => {
  it('accepts every key the encoder writes, with or without a key prefix', () => {
    for (const id of ['wf-1', '..', '.', 'a.', 'a/b', '日本語', '', 'x'.repeat(900)]) {
      expect(validateClaimKey(key(encodeAzureKeySegment(id)))).toBe(key(encodeAzureKeySegment(id)));
    }
    expect(validateClaimKey(`v0/d/sha256/${H}`)).toBe(`v0/d/sha256/${H}`);
    expect(validateClaimKey(`v0/ns/%2E%2E/d/sha256/${H}`)).toBe(`v0/ns/%2E%2E/d/sha256/${H}`);
    expect(validateClaimKey(`temporal/prod/v0/d/sha256/${H}`)).toBe(`temporal/prod/v0/d/sha256/${H}`);
  });

  it.each([
    ['a dot segment', key('.')],
    ['a dot-dot segment', key('..')],
    ['a trailing dot', key('a.')],
    ['a backslash', key('a\\b')],
    ['a lower-case escape', key('%2e%2e')],
    ['a needless escape', key('%41')],
    ['a raw space', key('a b')],
    ['raw non-ASCII', key('é')],
    ['a broken escape', key('a%2')],
    ['an escape that is not UTF-8', key('%FF')],
    ['an empty segment', key('')],
    ['CR LF', key('a\r\nb')],
    ['a wrong structure', `v0/ns/a/wt/T/ai/I/ri/R/d/sha256/${H}`],
    ['no namespace (older Python layout)', `v0/wt/T/wi/I/ri/R/d/sha256/${H}`],
    ['upper-case hex', `v0/d/sha256/${H.toUpperCase()}`],
    ['traversal in front', `../v0/d/sha256/${H}`],
    ['a dot prefix', `./v0/d/sha256/${H}`],
    ['an absolute name', `/v0/d/sha256/${H}`],
    ['a v0 segment inside the prefix', `v0/x/v0/d/sha256/${H}`],
    ['no v0 at all', `d/sha256/${H}`],
    ['over 1,024 characters', key('x'.repeat(1000))],
  ])('rejects %s with E_INVALID_CLAIM', (_label, value) => {
    expect(code(() => validateClaimKey(value))).toBe('E_INVALID_CLAIM');
  });

  it('accepts exactly 1,024 characters', () => {
    const base = key('');
    const id = 'x'.repeat(1024 - base.length);
    expect(key(id)).toHaveLength(1024);
    expect(validateClaimKey(key(id))).toBe(key(id));
  });
});

describe('validateKeyPrefix', () => {
  it.each(['temporal/', 'a/b/c/', "x!-_.*'()/", 'p%2F/'])('accepts %s', (prefix) => {
    expect(validateKeyPrefix(prefix)).toBe(prefix);
  });
  it.each(['a', '/a/', 'a//', './', '../', 'a./', 'v0/', 'x/v0/', 'a b/', 'é/', 'a%2f/', `${'x'.repeat(512)}/`])(
    'rejects %j with E_CONFIG',
    (prefix) => {
      expect(code(() => validateKeyPrefix(prefix))).toBe('E_CONFIG');
    },
  );
  it('rejects more than 240 segments', () => {
    expect(code(() => validateKeyPrefix('a/'.repeat(241)))).toBe('E_CONFIG');
    expect(validateKeyPrefix('a/'.repeat(240))).toBe('a/'.repeat(240));
  });
});

describe('containers', () => {
  it.each(['abc', 'payloads-1', 'a'.repeat(63), '1x1'])('accepts %s', (name) => {
    expect(isValidContainerName(name)).toBe(true);
    expect(validateClaimContainer(name)).toBe(name);
  });
  it.each(['ab', 'a'.repeat(64), 'Payloads', 'a--b', '-ab', 'ab-', '$root', 'a_b', 'a.b', 'a/..', ''])(
    'rejects %j',
    (name) => {
      expect(isValidContainerName(name)).toBe(false);
      expect(code(() => validateClaimContainer(name))).toBe('E_INVALID_CLAIM');
    },
  );
});

describe('the client addresses exactly the blob named', () => {
  const container = new ContainerClient('http://127.0.0.1:1/devstoreaccount1/payloads');

  it('for every name the driver writes, including escapes of dots, slashes and percent signs', () => {
    for (const id of ['.', '..', 'a.', 'a/b', '%2E', '100%', "!*'()"]) {
      const name = key(encodeAzureKeySegment(id));
      const blob = blockBlob(container, { container: 'payloads', key: name });
      expect(blob.name).toBe(name);
    }
  });

  it('refuses (E_CONFIG) a name the client would rewrite: dot segments, backslashes', () => {
    for (const name of [`v0/ns/a/wt/../d/sha256/${H}`, `v0/./d/sha256/${H}`, `v0\\d/sha256/${H}`]) {
      expect(code(() => blockBlob(container, { container: 'payloads', key: name }))).toBe('E_CONFIG');
    }
  });
});
