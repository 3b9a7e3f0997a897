import {
  encodedPayloadSize,
  type Payload,
  type SizeBand,
  type StorageDriver,
  StorageDriverClaim,
  type StorageDriverSelectContext,
  type StorageDriverTargetInfo,
  selectBySize,
  selectByTarget,
  type TargetRule,
  type TargetSelectorOptions,
} from '../src';
import { expectThrowsCode } from './helpers';

function fakeDriver(name: string): StorageDriver {
  return {
    name,
    type: `test.${name}`,
    store: async (_ctx, payloads) => payloads.map(() => new StorageDriverClaim({})),
    retrieve: async (_ctx, claims) => claims.map(() => ({})),
  };
}

/** A payload whose serialized size is exactly `size` bytes (any size but 1, which no payload has). */
function payloadOfSize(size: number): Payload {
  if (size === 0) return {};
  // Data alone misses a few sizes (2, and one size at each varint length step); pad with an
  // empty externalPayloads entry (2 bytes) to reach those.
  for (const pad of [[], [{}]]) {
    for (let n = 0; n <= size; n++) {
      const p = { data: new Uint8Array(n), externalPayloads: pad };
      if (encodedPayloadSize(p) === size) return p;
    }
  }
  throw new Error(`no payload of size ${size}`);
}

const ctx: StorageDriverSelectContext = {};
const wf = (namespace: string, type?: string): StorageDriverSelectContext => ({
  target: { kind: 'workflow', namespace, type, id: 'wf-1', runId: 'run-1' },
});
const act = (namespace: string, type?: string): StorageDriverSelectContext => ({
  target: { kind: 'activity', namespace, type, id: 'act-1' },
});

describe('selectBySize', () => {
  const small = fakeDriver('small');
  const large = fakeDriver('large');

  it('routes by serialized size; a payload of exactly `below` bytes goes to the next band', () => {
    const select = selectBySize([{ below: 100, use: small }, { below: 1000, use: null }, { use: large }]);
    for (const size of [0, 2, 50, 99]) expect(select(ctx, payloadOfSize(size))).toBe(small);
    for (const size of [100, 101, 500, 999]) expect(select(ctx, payloadOfSize(size))).toBeNull();
    for (const size of [1000, 1001, 100_000]) expect(select(ctx, payloadOfSize(size))).toBe(large);
  });

  it('helper sanity: payloadOfSize produces exact sizes', () => {
    for (const size of [0, 2, 3, 99, 100, 129, 130, 131, 999, 1000, 16_386])
      expect(encodedPayloadSize(payloadOfSize(size))).toBe(size);
  });

  it('a single unbounded band takes everything; a null band keeps payloads inline', () => {
    expect(selectBySize([{ use: large }])(ctx, payloadOfSize(5))).toBe(large);
    const inlineSmall = selectBySize([{ below: 10, use: null }, { use: large }]);
    expect(inlineSmall(ctx, payloadOfSize(9))).toBeNull();
    expect(inlineSmall(ctx, payloadOfSize(10))).toBe(large);
  });

  it('lists its distinct drivers, in first-seen order, as a fresh copy on every read', () => {
    const select = selectBySize([
      { below: 10, use: large },
      { below: 20, use: null },
      { below: 30, use: small },
      { use: large },
    ]);
    expect(select.drivers).toEqual([large, small]);
    expect(select.drivers[0]).toBe(large);
    const copy = select.drivers;
    copy.push(small);
    expect(select.drivers).toEqual([large, small]);
    expect(select.drivers).not.toBe(select.drivers);
    expect(selectBySize([{ use: null }]).drivers).toEqual([]);
  });

  it('passes the context through to a nested selector', () => {
    const seen: StorageDriverSelectContext[] = [];
    const inner = selectByTarget({ rules: [{ namespace: 'billing', use: small }], fallback: large });
    const spy = Object.assign(
      (c: StorageDriverSelectContext, p: Payload) => {
        seen.push(c);
        return inner(c, p);
      },
      { drivers: inner.drivers },
    );
    const select = selectBySize([{ below: 10, use: null }, { use: spy }]);
    const billing = wf('billing');
    expect(select(billing, payloadOfSize(50))).toBe(small);
    expect(select(wf('other'), payloadOfSize(50))).toBe(large);
    expect(seen[0]).toBe(billing);
  });

  const invalid: [string, unknown][] = [
    ['no bands', []],
    ['not an array', { use: null }],
    ['undefined', undefined],
    ['unsorted bands', [{ below: 1000, use: small }, { below: 100, use: null }, { use: large }]],
    ['equal bounds', [{ below: 100, use: small }, { below: 100, use: null }, { use: large }]],
    ['zero bound', [{ below: 0, use: small }, { use: large }]],
    ['negative bound', [{ below: -5, use: small }, { use: large }]],
    ['fractional bound', [{ below: 10.5, use: small }, { use: large }]],
    ['NaN bound', [{ below: Number.NaN, use: small }, { use: large }]],
    ['Infinity bound', [{ below: Number.POSITIVE_INFINITY, use: small }, { use: large }]],
    ['string bound', [{ below: '100', use: small }, { use: large }]],
    ['missing bound on a middle band', [{ use: small }, { use: large }]],
    [
      'bounded last band',
      [
        { below: 100, use: small },
        { below: 1000, use: large },
      ],
    ],
    ['single bounded band', [{ below: 100, use: small }]],
    ['band without use', [{ below: 100 }, { use: large }]],
    ['null band', [null, { use: large }]],
    ['use is not a driver', [{ use: { name: 'x' } }]],
    ['use is a plain function (not from this module)', [{ use: () => small }]],
    ['two different drivers with the same name', [{ below: 10, use: fakeDriver('dup') }, { use: fakeDriver('dup') }]],
    [
      'a nested selector whose driver clashes by name',
      [{ below: 10, use: fakeDriver('large') }, { use: selectBySize([{ use: large }]) }],
    ],
  ];

  it.each(invalid)('rejects %s with E_CONFIG', (_name, bands) => {
    expectThrowsCode(() => selectBySize(bands as SizeBand[]), 'E_CONFIG');
  });

  it('accepts the same driver instance in several bands', () => {
    expect(() => selectBySize([{ below: 10, use: small }, { use: small }])).not.toThrow();
  });
});

describe('selectByTarget', () => {
  const a = fakeDriver('a');
  const b = fakeDriver('b');
  const fallback = fakeDriver('fallback');

  it('matches the namespace with a string, an array, a RegExp or a predicate', () => {
    const select = selectByTarget({
      rules: [
        { namespace: 'billing', use: a },
        { namespace: ['eu-1', 'eu-2'], use: b },
        { namespace: /^us-/, use: null },
        { namespace: (ns) => ns?.endsWith('-dev') === true, use: b },
      ],
      fallback,
    });
    expect(select(wf('billing'), {})).toBe(a);
    expect(select(act('billing'), {})).toBe(a);
    expect(select(wf('eu-2'), {})).toBe(b);
    expect(select(wf('us-east'), {})).toBeNull();
    expect(select(wf('team-dev'), {})).toBe(b);
    expect(select(wf('billing2'), {})).toBe(fallback);
    expect(select(wf('eu-3'), {})).toBe(fallback);
  });

  it('workflowType only matches workflow targets, activityType only activity targets', () => {
    const select = selectByTarget({
      rules: [
        { workflowType: 'Charge', use: a },
        { activityType: 'Charge', use: b },
      ],
      fallback,
    });
    expect(select(wf('default', 'Charge'), {})).toBe(a);
    expect(select(act('default', 'Charge'), {})).toBe(b);
    expect(select(wf('default', 'Other'), {})).toBe(fallback);

    const wfOnly = selectByTarget({ rules: [{ workflowType: /Charge/, use: a }], fallback });
    expect(wfOnly(act('default', 'Charge'), {})).toBe(fallback);
    const actOnly = selectByTarget({ rules: [{ activityType: ['Charge'], use: b }], fallback });
    expect(actOnly(wf('default', 'Charge'), {})).toBe(fallback);
  });

  it('requires every criterion of a rule to match; the first matching rule wins', () => {
    const select = selectByTarget({
      rules: [
        { namespace: 'billing', workflowType: 'Charge', use: a },
        { namespace: 'billing', use: b },
        { workflowType: 'Charge', use: null },
      ],
      fallback,
    });
    expect(select(wf('billing', 'Charge'), {})).toBe(a);
    expect(select(wf('billing', 'Refund'), {})).toBe(b);
    expect(select(wf('other', 'Charge'), {})).toBeNull();
    expect(select(wf('other', 'Refund'), {})).toBe(fallback);
  });

  it('uses the fallback when there is no target (or no context)', () => {
    const select = selectByTarget({ rules: [{ namespace: /.*/, use: a }], fallback });
    expect(select({}, {})).toBe(fallback);
    expect(select({ abortSignal: new AbortController().signal }, {})).toBe(fallback);
    expect(select(undefined as unknown as StorageDriverSelectContext, {})).toBe(fallback);
    expect(selectByTarget({ rules: [], fallback: null })(wf('x'), {})).toBeNull();
  });

  it('type matchers do not match a target without a type, except a predicate that says so', () => {
    const calls: (string | undefined)[] = [];
    const select = selectByTarget({
      rules: [
        { workflowType: /.*/, use: a },
        { workflowType: ['null', ''], use: a },
        {
          activityType: (t) => {
            calls.push(t);
            return t === undefined;
          },
          use: b,
        },
      ],
      fallback,
    });
    expect(select(wf('default'), {})).toBe(fallback);
    expect(select(act('default'), {})).toBe(b);
    expect(calls).toEqual([undefined]);
  });

  it('a predicate must return exactly true to match', () => {
    const truthy = (() => 'yes') as unknown as (v: string | undefined) => boolean;
    const select = selectByTarget({ rules: [{ namespace: truthy, use: a }], fallback });
    expect(select(wf('x'), {})).toBe(fallback);
  });

  it('lists rule, nested and fallback drivers', () => {
    const select = selectByTarget({
      rules: [
        { namespace: 'x', use: a },
        { namespace: 'y', use: null },
      ],
      fallback,
    });
    expect(select.drivers).toEqual([a, fallback]);
  });

  it('composes with a nested size selector', () => {
    const redis = fakeDriver('redis');
    const s3 = fakeDriver('s3');
    const fs = fakeDriver('fs');
    const select = selectByTarget({
      rules: [{ namespace: 'billing', use: selectBySize([{ below: 100, use: redis }, { use: s3 }]) }],
      fallback: fs,
    });
    expect(select(wf('billing'), payloadOfSize(99))).toBe(redis);
    expect(select(wf('billing'), payloadOfSize(100))).toBe(s3);
    expect(select(act('billing'), payloadOfSize(5000))).toBe(s3);
    expect(select(wf('other'), payloadOfSize(99))).toBe(fs);
    expect(select({}, payloadOfSize(99))).toBe(fs);
    expect(select.drivers).toEqual([redis, s3, fs]);
  });

  it('a size selector can nest a target selector', () => {
    const redis = fakeDriver('redis');
    const s3 = fakeDriver('s3');
    const select = selectBySize([
      { below: 100, use: null },
      { use: selectByTarget({ rules: [{ namespace: 'billing', use: redis }], fallback: s3 }) },
    ]);
    expect(select(wf('billing'), payloadOfSize(50))).toBeNull();
    expect(select(wf('billing'), payloadOfSize(500))).toBe(redis);
    expect(select(wf('x'), payloadOfSize(500))).toBe(s3);
    expect(select.drivers).toEqual([redis, s3]);
  });

  const rule = (r: Partial<TargetRule>): TargetRule => ({ use: a, ...r });
  const invalid: [string, unknown][] = [
    ['no options', undefined],
    ['rules not an array', { rules: 'x', fallback }],
    ['missing fallback', { rules: [] }],
    ['rule without criteria', { rules: [{ use: a }], fallback }],
    ['rule without use', { rules: [{ namespace: 'x' }], fallback }],
    ['null rule', { rules: [null], fallback }],
    ['RegExp with the g flag', { rules: [rule({ namespace: /x/g })], fallback }],
    ['RegExp with the y flag', { rules: [rule({ workflowType: /x/y })], fallback }],
    ['array with a non-string', { rules: [rule({ namespace: ['x', 5] as unknown as string[] })], fallback }],
    ['number matcher', { rules: [rule({ namespace: 5 as unknown as string })], fallback }],
    ['null matcher', { rules: [rule({ activityType: null as unknown as string })], fallback }],
    ['fallback that is not a driver', { rules: [], fallback: { name: 'x' } }],
    [
      'two different drivers with the same name',
      { rules: [rule({ namespace: 'x', use: fakeDriver('d') })], fallback: fakeDriver('d') },
    ],
  ];

  it.each(invalid)('rejects %s with E_CONFIG', (_name, options) => {
    expectThrowsCode(() => selectByTarget(options as TargetSelectorOptions), 'E_CONFIG');
  });
});

describe('selectors type-check as SDK-style selectors', () => {
  it('is callable with any target kind', () => {
    const d = fakeDriver('d');
    const select = selectByTarget({ rules: [{ namespace: 'n', use: d }], fallback: null });
    const targets: StorageDriverTargetInfo[] = [
      { kind: 'workflow', namespace: 'n' },
      { kind: 'activity', namespace: 'n' },
    ];
    for (const target of targets) expect(select({ target }, {})).toBe(d);
  });
});
