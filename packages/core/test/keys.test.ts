import fc from 'fast-check';
import {
  buildStorageKey,
  encodeKeySegment,
  fitStorageKey,
  MISSING_KEY_VALUE,
  parseStorageKey,
  type StorageDriverTargetInfo,
  sha256Hex,
} from '../src';
import { expectThrowsCode, thrown, utf8 } from './helpers';

const HEX = sha256Hex(utf8('hello'));
const RUN = '2d6c1b0e-3f4a-4b5c-8d9e-0f1a2b3c4d5e';
const NUM_RUNS = 200;

/**
 * Reference: encodeURIComponent leaves A-Za-z0-9 - _ . ! ~ * ' ( ); the spec also escapes ~, and an
 * empty value is missing (the literal `null`), as in Temporal's official drivers.
 */
const reference = (s: string): string => (s === '' ? 'null' : encodeURIComponent(s).replace(/~/g, '%7E'));

describe('DESIGN §4.4 examples', () => {
  it('workflow key', () => {
    const target: StorageDriverTargetInfo = {
      kind: 'workflow',
      namespace: 'payments prod',
      type: 'ChargeWorkflow',
      id: 'order+123=abc',
      runId: RUN,
    };
    expect(buildStorageKey(target, HEX)).toBe(
      `v0/ns/payments%20prod/wt/ChargeWorkflow/wi/order%2B123%3Dabc/ri/${RUN}/d/sha256/${HEX}`,
    );
  });

  it('activity key', () => {
    const target: StorageDriverTargetInfo = {
      kind: 'activity',
      namespace: 'payments prod',
      type: 'Capture/Charge',
      id: 'activity id+42',
      runId: RUN,
    };
    expect(buildStorageKey(target, HEX)).toBe(
      `v0/ns/payments%20prod/at/Capture%2FCharge/ai/activity%20id%2B42/ri/${RUN}/d/sha256/${HEX}`,
    );
  });

  it('no target', () => {
    expect(buildStorageKey(undefined, HEX)).toBe(`v0/d/sha256/${HEX}`);
    expect(buildStorageKey(null, HEX)).toBe(`v0/d/sha256/${HEX}`);
  });

  it('missing values become the literal null', () => {
    expect(buildStorageKey({ kind: 'workflow', namespace: 'default' }, HEX)).toBe(
      `v0/ns/default/wt/null/wi/null/ri/null/d/sha256/${HEX}`,
    );
    expect(buildStorageKey({ kind: 'activity', namespace: 'default', id: 'a1' }, HEX)).toBe(
      `v0/ns/default/at/null/ai/a1/ri/null/d/sha256/${HEX}`,
    );
    expect(MISSING_KEY_VALUE).toBe('null');
    expect(encodeKeySegment(undefined)).toBe('null');
    expect(encodeKeySegment(null)).toBe('null');
  });

  it('escapes per the spec with upper-case hex', () => {
    expect(encodeKeySegment('/')).toBe('%2F');
    expect(encodeKeySegment(' ')).toBe('%20');
    expect(encodeKeySegment('~')).toBe('%7E');
    expect(encodeKeySegment('é')).toBe('%C3%A9');
    expect(encodeKeySegment('%')).toBe('%25');
    expect(encodeKeySegment('\\')).toBe('%5C');
    expect(encodeKeySegment('\0')).toBe('%00');
    expect(encodeKeySegment(':')).toBe('%3A');
    expect(encodeKeySegment('😀')).toBe('%F0%9F%98%80');
    expect(encodeKeySegment('')).toBe('null');
    expect(encodeKeySegment('..')).toBe('..');
    expect(encodeKeySegment('.')).toBe('.');
  });

  it("leaves A-Z a-z 0-9 ! - _ . * ' ( ) untouched", () => {
    const safe = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!-_.*'()";
    expect(encodeKeySegment(safe)).toBe(safe);
    for (let c = 0; c < 128; c++) {
      const ch = String.fromCharCode(c);
      const expected = safe.includes(ch) ? ch : `%${c.toString(16).toUpperCase().padStart(2, '0')}`;
      expect(encodeKeySegment(ch)).toBe(expected);
    }
  });

  it('encodes a lone surrogate as U+FFFD instead of throwing (it has no UTF-8 form)', () => {
    expect(encodeKeySegment('a\uD800b')).toBe('a%EF%BF%BDb');
  });
});

describe('encodeKeySegment agrees with the reference implementation', () => {
  it('treats empty, undefined and null alike (literal null), as the official drivers do', () => {
    expect(encodeKeySegment('')).toBe('null');
    expect(encodeKeySegment(undefined)).toBe('null');
    expect(encodeKeySegment(null)).toBe('null');
    expect(buildStorageKey({ kind: 'workflow', namespace: '', id: '', runId: '', type: '' }, HEX)).toBe(
      `v0/ns/null/wt/null/wi/null/ri/null/d/sha256/${HEX}`,
    );
  });

  it('on arbitrary unicode strings', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (s) => {
        expect(encodeKeySegment(s)).toBe(reference(s));
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('on ASCII-heavy strings (mostly safe characters)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary-ascii', maxLength: 40 }), (s) => {
        expect(encodeKeySegment(s)).toBe(reference(s));
        if (s !== '') expect(decodeURIComponent(encodeKeySegment(s))).toBe(s);
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('on grapheme strings', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 20 }), (s) => {
        expect(encodeKeySegment(s)).toBe(reference(s));
      }),
      { numRuns: NUM_RUNS },
    );
  });
});

describe('buildStorageKey', () => {
  it('rejects a digest that is not 64 lower-case hex characters with TypeError', () => {
    for (const bad of [HEX.toUpperCase(), HEX.slice(1), `${HEX}0`, '', `${HEX.slice(0, 63)}g`, `../${HEX.slice(3)}`]) {
      expect(thrown(() => buildStorageKey(undefined, bad))).toBeInstanceOf(TypeError);
    }
    expect(thrown(() => buildStorageKey(undefined, 42 as unknown as string))).toBeInstanceOf(TypeError);
  });

  it('rejects an unknown target kind with TypeError', () => {
    const target = { kind: 'nexus', namespace: 'default' } as unknown as StorageDriverTargetInfo;
    expect(thrown(() => buildStorageKey(target, HEX))).toBeInstanceOf(TypeError);
  });
});

const hostileValueArb: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 30 }),
  fc.string({ unit: 'binary-ascii', maxLength: 30 }),
  fc.constantFrom(
    '..',
    '.',
    '',
    '/',
    '\0',
    '%',
    '%2F',
    '%2f',
    '~',
    '\\',
    'null',
    '../../etc/passwd',
    '/abs',
    'a/b/c',
    ' ',
  ),
);
const optionalValueArb = fc.option(hostileValueArb, { nil: undefined });

const targetArb: fc.Arbitrary<StorageDriverTargetInfo | undefined> = fc.oneof(
  fc.constant(undefined),
  fc.record(
    {
      kind: fc.constantFrom('workflow' as const, 'activity' as const),
      namespace: hostileValueArb,
      id: optionalValueArb,
      runId: optionalValueArb,
      type: optionalValueArb,
    },
    { requiredKeys: ['kind', 'namespace'] },
  ),
);

describe('parseStorageKey', () => {
  it('accepts every key buildStorageKey produces and recovers its parts', () => {
    fc.assert(
      fc.property(targetArb, fc.uint8Array({ maxLength: 16 }), (target, content) => {
        const hex = sha256Hex(content);
        const key = buildStorageKey(target, hex);
        const parsed = parseStorageKey(key);
        expect(parsed.sha256).toBe(hex);
        expect(parsed.segments.join('/')).toBe(key);
        if (target === undefined) {
          expect(parsed.kind).toBe('none');
          expect(parsed.segments).toEqual(['v0', 'd', 'sha256', hex]);
        } else {
          expect(parsed.kind).toBe(target.kind);
          expect(parsed.segments).toHaveLength(12);
          const decoded = parsed.segments.map((s) => decodeURIComponent(s));
          expect(decoded[2]).toBe(target.namespace || 'null');
          expect(decoded[4]).toBe(target.type || 'null');
          expect(decoded[6]).toBe(target.id || 'null');
          expect(decoded[8]).toBe(target.runId || 'null');
          // Every dynamic segment is a single path segment: no '/' survives encoding.
          for (const s of parsed.segments) expect(s).not.toMatch(/[/\\\0~ ]/);
        }
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it("accepts '.', '..' and empty segments, which the spec can produce", () => {
    for (const v of ['.', '..', '']) {
      const key = buildStorageKey({ kind: 'workflow', namespace: v, id: v, type: v, runId: v }, HEX);
      expect(parseStorageKey(key).kind).toBe('workflow');
    }
    expect(parseStorageKey(`v0/ns/../wt/../wi/../ri/../d/sha256/${HEX}`).segments[2]).toBe('..');
  });

  const hostile: [string, unknown][] = [
    ['relative traversal', '../x'],
    ['traversal before a valid key', `../v0/d/sha256/${HEX}`],
    ['absolute path', '/etc/passwd'],
    ['absolute key', `/v0/d/sha256/${HEX}`],
    ['trailing slash', `v0/d/sha256/${HEX}/`],
    ['upper-case digest', `v0/d/sha256/${HEX.toUpperCase()}`],
    ['short digest', `v0/d/sha256/${HEX.slice(1)}`],
    ['long digest', `v0/d/sha256/${HEX}0`],
    ['non-hex digest', `v0/d/sha256/${HEX.slice(0, 63)}z`],
    ['other algorithm', `v0/d/sha512/${HEX}`],
    ['other version', `v1/d/sha256/${HEX}`],
    ['backslashes', `v0\\d\\sha256\\${HEX}`],
    ['backslash in a segment', `v0/ns/a\\b/wt/t/wi/i/ri/r/d/sha256/${HEX}`],
    ['lower-case escape', `v0/ns/a%2fb/wt/t/wi/i/ri/r/d/sha256/${HEX}`],
    ['malformed escape', `v0/ns/a%2/wt/t/wi/i/ri/r/d/sha256/${HEX}`],
    ['non-hex escape', `v0/ns/a%GG/wt/t/wi/i/ri/r/d/sha256/${HEX}`],
    ['bare percent', `v0/ns/%/wt/t/wi/i/ri/r/d/sha256/${HEX}`],
    ['NUL', `v0/ns/a\0b/wt/t/wi/i/ri/r/d/sha256/${HEX}`],
    ['NUL at the end', `v0/d/sha256/${HEX}\0`],
    ['tilde', `v0/ns/a~b/wt/t/wi/i/ri/r/d/sha256/${HEX}`],
    ['space', `v0/ns/a b/wt/t/wi/i/ri/r/d/sha256/${HEX}`],
    ['non-ASCII', `v0/ns/é/wt/t/wi/i/ri/r/d/sha256/${HEX}`],
    ['newline', `v0/ns/a\nb/wt/t/wi/i/ri/r/d/sha256/${HEX}`],
    ['extra segment at the end', `v0/d/sha256/${HEX}/extra`],
    ['extra segment in the middle', `v0/x/d/sha256/${HEX}`],
    ['double slash', `v0//d/sha256/${HEX}`],
    ['extra segment in a workflow key', `v0/ns/a/wt/t/wi/i/ri/r/x/d/sha256/${HEX}`],
    ['missing segment in a workflow key', `v0/ns/a/wt/t/wi/i/ri/d/sha256/${HEX}`],
    ['wrong labels', `v0/ns/a/xt/t/wi/i/ri/r/d/sha256/${HEX}`],
    ['mixed workflow/activity labels', `v0/ns/a/wt/t/ai/i/ri/r/d/sha256/${HEX}`],
    ['mixed activity/workflow labels', `v0/ns/a/at/t/wi/i/ri/r/d/sha256/${HEX}`],
    ['run label missing', `v0/ns/a/wt/t/wi/i/xx/r/d/sha256/${HEX}`],
    ['digest only', HEX],
    ['empty string', ''],
    ['dot', '.'],
    ['too long', `v0/ns/${'a'.repeat(1 << 20)}/wt/t/wi/i/ri/r/d/sha256/${HEX}`],
    ['number', 42],
    ['null', null],
    ['undefined', undefined],
    ['object', { toString: () => `v0/d/sha256/${HEX}` }],
    ['array', ['v0', 'd', 'sha256', HEX]],
  ];

  it.each(hostile)('rejects %s with E_INVALID_CLAIM', (_name, key) => {
    expectThrowsCode(() => parseStorageKey(key), 'E_INVALID_CLAIM');
  });

  it('rejects random printable strings unless they are exactly in the grammar', () => {
    const grammar = /^v0\/(?:ns\/[^/]*\/(?:wt\/[^/]*\/wi|at\/[^/]*\/ai)\/[^/]*\/ri\/[^/]*\/)?d\/sha256\/[0-9a-f]{64}$/;
    const segment = /^(?:[A-Za-z0-9!\-_.*'()]|%[0-9A-F]{2})*$/;
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: 'binary-ascii', maxLength: 80 }),
          fc
            .tuple(
              fc.string({ unit: 'binary-ascii', maxLength: 20 }),
              fc.string({ unit: 'binary-ascii', maxLength: 20 }),
            )
            .map(([a, b]) => `v0/ns/${a}/wt/x/wi/${b}/ri/r/d/sha256/${HEX}`),
        ),
        (key) => {
          const ok = grammar.test(key) && key.split('/').every((s) => segment.test(s));
          let accepted = true;
          try {
            parseStorageKey(key);
          } catch (e) {
            expectThrowsCode(() => {
              throw e;
            }, 'E_INVALID_CLAIM');
            accepted = false;
          }
          expect(accepted).toBe(ok);
        },
      ),
      { numRuns: NUM_RUNS },
    );
  });
});

describe('parseStorageKey canonical mode', () => {
  const hex = 'ab'.repeat(32);
  it('rejects escapes of characters the spec leaves as is (one object, one key)', () => {
    for (const seg of ['%2E', '%2E%2E', '%41', 'a%2Db', '%21', '%28x%29']) {
      expect(() => parseStorageKey(`v0/ns/${seg}/wt/T/wi/id/ri/r/d/sha256/${hex}`)).toThrow(/non-canonical/);
    }
    expect(() => parseStorageKey(`v0/ns/a~b/wt/T/wi/id/ri/r/d/sha256/${hex}`)).toThrow(/escapes/);
  });
  it('accepts needed escapes canonically, and other SDKs’ spellings with canonical: false', () => {
    expect(parseStorageKey(`v0/ns/%2F%7E%C3%A9/wt/T/wi/id/ri/r/d/sha256/${hex}`).kind).toBe('workflow');
    // Python's urllib.parse.quote(safe='') leaves ~ raw and escapes ! * ' ( ).
    const python = `v0/ns/a~b%21%2A%27%28%29/wt/T/wi/id/ri/r/d/sha256/${hex}`;
    expect(() => parseStorageKey(python)).toThrow();
    expect(parseStorageKey(python, { canonical: false }).kind).toBe('workflow');
    expect(() => parseStorageKey(`v0/ns/a\\b/wt/T/wi/id/ri/r/d/sha256/${hex}`, { canonical: false })).toThrow();
    expect(() => parseStorageKey(`v0/ns/../../x/d/sha256/${hex}`, { canonical: false })).toThrow();
  });
});

describe('buildStorageKey input checks', () => {
  it('rejects non-string target fields and unknown kinds with TypeError', () => {
    const hex = 'cd'.repeat(32);
    expect(() =>
      buildStorageKey({ kind: 'workflow', namespace: 42 as unknown as string, id: 'a', runId: 'b', type: 'c' }, hex),
    ).toThrow(TypeError);
    expect(() =>
      buildStorageKey({ kind: 'workflow', namespace: 'ns', id: {} as unknown as string, runId: 'b', type: 'c' }, hex),
    ).toThrow(TypeError);
    expect(() => buildStorageKey({ kind: 'other', namespace: 'ns' } as never, hex)).toThrow(TypeError);
  });
});

describe("fitStorageKey (the official drivers' long-key rule)", () => {
  const digest = 'ab'.repeat(32);
  const long = 'x'.repeat(1000);
  const target = { kind: 'workflow' as const, namespace: 'default', type: 'T', id: long, runId: 'run-1' };

  it('returns the full key when it fits, and keys without a target always', () => {
    const short = { ...target, id: 'order-1' };
    expect(fitStorageKey(short, digest)).toBe(buildStorageKey(short, digest));
    expect(fitStorageKey(undefined, digest, 147)).toBe(`v0/d/sha256/${digest}`);
    const exact = { ...target, id: 'i'.repeat(1024 - buildStorageKey({ ...target, id: '' }, digest).length + 4) };
    expect(buildStorageKey(exact, digest)).toHaveLength(1024);
    expect(fitStorageKey(exact, digest)).toBe(buildStorageKey(exact, digest));
    const over = { ...exact, id: `${exact.id}i` };
    expect(fitStorageKey(over, digest)).toBe(`v0/ns/default/d/sha256/${digest}`);
  });

  it('falls back to v0/ns/{namespace}/d/sha256/{hex} above 1024 bytes, as Python 1.35 and Go GCS do', () => {
    expect(fitStorageKey(target, digest)).toBe(`v0/ns/default/d/sha256/${digest}`);
    const activity = { kind: 'activity' as const, namespace: 'payments prod', type: 'A', id: long, runId: '' };
    expect(fitStorageKey(activity, digest)).toBe(`v0/ns/payments%20prod/d/sha256/${digest}`);
    // Non-ASCII ids triple when encoded: measured in encoded bytes, like the official drivers.
    const unicode = { ...target, id: 'é'.repeat(200) }; // 1200 encoded bytes
    expect(fitStorageKey(unicode, digest)).toBe(`v0/ns/default/d/sha256/${digest}`);
    // An empty namespace is the literal null, as everywhere.
    expect(fitStorageKey({ ...target, namespace: '' }, digest)).toBe(`v0/ns/null/d/sha256/${digest}`);
    expect(parseStorageKey(fitStorageKey(target, digest))).toEqual({
      kind: 'namespace',
      namespace: 'default',
      segments: ['v0', 'ns', 'default', 'd', 'sha256', digest],
      sha256: digest,
    });
  });

  it('honours a smaller limit, and folds a namespace too long for any limit into %7E + its sha256', () => {
    const key = buildStorageKey({ ...target, id: 'x'.repeat(60) }, digest);
    expect(fitStorageKey({ ...target, id: 'x'.repeat(60) }, digest, key.length - 1)).toBe(
      `v0/ns/default/d/sha256/${digest}`,
    );
    const hugeNs = { ...target, namespace: 'n'.repeat(2000) };
    const folded = fitStorageKey(hugeNs, digest);
    expect(folded).toBe(`v0/ns/%7E${sha256Hex(new TextEncoder().encode('n'.repeat(2000)))}/d/sha256/${digest}`);
    expect(parseStorageKey(folded).kind).toBe('namespace');
    expect(thrown(() => fitStorageKey(target, digest, 146))).toBeInstanceOf(TypeError);
    expect(thrown(() => fitStorageKey(target, 'nothex'))).toBeInstanceOf(TypeError);
  });
});

describe('parseStorageKey: shapes other SDKs write', () => {
  const digest = 'cd'.repeat(32);
  it('accepts the namespace digest key strictly, with the same segment grammar', () => {
    expect(parseStorageKey(`v0/ns/payments%20prod/d/sha256/${digest}`).namespace).toBe('payments%20prod');
    expect(thrown(() => parseStorageKey(`v0/ns/a b/d/sha256/${digest}`))).toMatchObject({ code: 'E_INVALID_CLAIM' });
    expect(thrown(() => parseStorageKey(`v0/xx/default/d/sha256/${digest}`))).toMatchObject({
      code: 'E_INVALID_CLAIM',
    });
    expect(thrown(() => parseStorageKey(`v0/ns/default/d/sha256/${digest.toUpperCase()}`))).toMatchObject({
      code: 'E_INVALID_CLAIM',
    });
  });

  it('accepts keys without ns/{namespace} (Python Redis sample, empty namespace) only when lenient', () => {
    const key = `v0/wt/W/wi/id~1/ri/null/d/sha256/${digest}`;
    expect(thrown(() => parseStorageKey(key))).toMatchObject({ code: 'E_INVALID_CLAIM' });
    expect(parseStorageKey(key, { canonical: false })).toMatchObject({ kind: 'workflow', namespace: undefined });
    expect(parseStorageKey(`v0/at/A/ai/1/ri/r/d/sha256/${digest}`, { canonical: false }).kind).toBe('activity');
    expect(thrown(() => parseStorageKey(`v0/wt/W/ai/1/ri/r/d/sha256/${digest}`, { canonical: false }))).toMatchObject({
      code: 'E_INVALID_CLAIM',
    });
  });

  it('still reads the %7E-folded keys earlier releases wrote', () => {
    const old = `v0/ns/default/wt/W/wi/%7E${'ef'.repeat(32)}/ri/run/d/sha256/${digest}`;
    expect(parseStorageKey(old)).toMatchObject({ kind: 'workflow', namespace: 'default' });
  });
});
