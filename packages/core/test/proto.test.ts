import { temporal } from '@temporalio/proto';
import fc from 'fast-check';
import {
  decodePayload,
  encodedPayloadSize,
  encodePayload,
  Int64,
  isStorageDriverError,
  type Payload,
  StorageDriverError,
} from '../src';
import { bytesOf, Long, thrown, utf8 } from './helpers';

const PayloadProto = temporal.api.common.v1.Payload;
const NUM_RUNS = 200;

/** Test payloads may carry numbers (or other int64-ish values) in `sizeBytes`, as protobufjs allows at run time. */
type LoosePayload = Record<string, unknown>;
const asPayload = (p: LoosePayload): Payload => p as Payload;
const asProto = (p: LoosePayload): temporal.api.common.v1.Payload.$Properties =>
  p as temporal.api.common.v1.Payload.$Properties;

function theirEncode(p: LoosePayload): Uint8Array {
  return PayloadProto.encode(asProto(p)).finish();
}

// ---------------------------------------------------------------------------------------------
// Normalization: compare payloads by value (metadata entries, data bytes, sizeBytes as int64).
// ---------------------------------------------------------------------------------------------

/** Interprets any int64-ish value the way protobufjs writes it (wraps modulo 2^64, signed). */
function int64Of(v: unknown): bigint {
  if (v === null || v === undefined) return 0n;
  if (typeof v === 'number') return BigInt.asIntN(64, BigInt(Math.trunc(v)));
  if (typeof v === 'bigint') return BigInt.asIntN(64, v);
  if (typeof v === 'object' && 'low' in v && 'high' in v) {
    const { low, high } = v as { low: number; high: number };
    return BigInt.asIntN(64, (BigInt(high >>> 0) << 32n) | BigInt(low >>> 0));
  }
  throw new Error(`not an int64: ${String(v)}`);
}

interface Normalized {
  metadata: [string, number[]][];
  data: number[];
  externalPayloads: string[];
}

function normalize(p: unknown): Normalized {
  const obj = p as { metadata?: unknown; data?: unknown; externalPayloads?: unknown };
  const md = (obj.metadata ?? {}) as Record<string, Uint8Array>;
  const ext = (obj.externalPayloads ?? []) as { sizeBytes?: unknown }[];
  return {
    metadata: Object.keys(md).map((k) => [k, bytesOf(md[k])]),
    data: bytesOf(obj.data as Uint8Array | null | undefined),
    externalPayloads: ext.map((d) => int64Of(Object.hasOwn(d, 'sizeBytes') ? d.sizeBytes : undefined).toString()),
  };
}

// ---------------------------------------------------------------------------------------------
// Arbitraries
// ---------------------------------------------------------------------------------------------

/** Unicode strings without lone surrogates (those have no UTF-8 encoding). `__proto__` is tested separately. */
const keyArb = fc.string({ unit: 'binary', maxLength: 24 }).filter((k) => k !== '__proto__');

/** A big byte array cheaply (fc.uint8Array is slow for tens of KiB). */
const bigBytesArb = fc
  .record({ n: fc.integer({ min: 128, max: 70_000 }), seed: fc.integer({ min: 0, max: 255 }) })
  .map(({ n, seed }) => new Uint8Array(n).map((_, i) => (i * 31 + seed) & 0xff));

/** A view into the middle of a larger buffer (non-zero byteOffset). */
const viewArb = fc
  .record({
    pre: fc.uint8Array({ maxLength: 8 }),
    mid: fc.uint8Array({ maxLength: 32 }),
    post: fc.uint8Array({ maxLength: 8 }),
  })
  .map(({ pre, mid, post }) => {
    const all = new Uint8Array(pre.length + mid.length + post.length);
    all.set(pre, 0);
    all.set(mid, pre.length);
    all.set(post, pre.length + mid.length);
    return all.subarray(pre.length, pre.length + mid.length);
  });

const bytesArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 5, arbitrary: fc.uint8Array({ maxLength: 64 }) },
  { weight: 2, arbitrary: fc.constant(new Uint8Array(0)) },
  { weight: 1, arbitrary: viewArb },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 16 }).map((b) => Buffer.from(b)) },
  { weight: 1, arbitrary: bigBytesArb },
);

const INT64_MIN = -(2n ** 63n);
const UINT64_MAX = 2n ** 64n - 1n;

const sizeBytesArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.constant(0),
  fc.constant(-0),
  fc.integer({ min: -(2 ** 31), max: 2 ** 31 }),
  fc.maxSafeInteger(),
  fc.bigInt({ min: INT64_MIN, max: UINT64_MAX }).map((b) => Long.fromBigInt(b, b > 2n ** 63n - 1n)),
  fc.bigInt({ min: INT64_MIN, max: 2n ** 63n - 1n }).map((b) => Long.fromBigInt(b)),
  fc.constantFrom(
    Long.MAX_VALUE,
    Long.MIN_VALUE,
    Long.MAX_UNSIGNED_VALUE,
    Long.fromNumber(0),
    Long.fromNumber(2 ** 53 + 2),
  ),
  fc.bigInt({ min: INT64_MIN, max: UINT64_MAX }).map((b) => Int64.fromBigInt(b, b > 2n ** 63n - 1n)),
  fc.constant(null),
  fc.constant(undefined),
);

const detailsArb: fc.Arbitrary<Record<string, unknown>> = fc.oneof(
  fc.constant({}),
  fc.record({ sizeBytes: sizeBytesArb }),
);

const metadataArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.constant(undefined),
  fc.constant(null),
  fc.constant({}),
  fc.dictionary(keyArb, bytesArb, { maxKeys: 6 }),
);

const dataArb: fc.Arbitrary<unknown> = fc.oneof(fc.constant(undefined), fc.constant(null), bytesArb);

const extArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.constant(undefined),
  fc.constant(null),
  fc.constant([]),
  fc.array(detailsArb, { maxLength: 4 }),
);

/** A Payload with each field absent, null or set. */
const payloadArb: fc.Arbitrary<LoosePayload> = fc
  .record({ metadata: metadataArb, data: dataArb, externalPayloads: extArb }, { requiredKeys: [] })
  .map((r) => {
    // fc.record with requiredKeys: [] omits keys; keep explicit `undefined` values too.
    const out: LoosePayload = {};
    for (const [k, v] of Object.entries(r)) out[k] = v;
    return out;
  });

// ---------------------------------------------------------------------------------------------

describe('encodePayload / encodedPayloadSize', () => {
  it('returns plain Uint8Arrays (slice() copies) that never overlap, small ones from a shared pool', () => {
    const a = encodePayload({ metadata: { encoding: utf8('binary/plain') }, data: new Uint8Array(100).fill(1) });
    const b = encodePayload({ metadata: { encoding: utf8('binary/plain') }, data: new Uint8Array(100).fill(2) });
    expect(Object.getPrototypeOf(a)).toBe(Uint8Array.prototype);
    const copy = a.slice();
    copy[copy.length - 1] = 9;
    expect(a[a.length - 1]).toBe(1);
    // Views of one pool: disjoint ranges, and each decodes to its own payload.
    if (a.buffer === b.buffer) {
      expect(a.byteOffset + a.byteLength <= b.byteOffset || b.byteOffset + b.byteLength <= a.byteOffset).toBe(true);
    }
    expect(decodePayload(a).data).toEqual(new Uint8Array(100).fill(1));
    expect(decodePayload(b).data).toEqual(new Uint8Array(100).fill(2));
  });

  it('writes every byte of a large payload (no uninitialised memory)', () => {
    const data = new Uint8Array(1 << 20).fill(7);
    const bytes = encodePayload({ metadata: { k: utf8('v') }, data });
    expect(bytes.byteLength).toBe(encodedPayloadSize({ metadata: { k: utf8('v') }, data }));
    expect(
      Buffer.from(bytes).equals(
        Buffer.from(temporal.api.common.v1.Payload.encode({ metadata: { k: utf8('v') }, data }).finish()),
      ),
    ).toBe(true);
  });

  it('is byte-identical to @temporalio/proto Payload.encode for arbitrary payloads', () => {
    fc.assert(
      fc.property(payloadArb, (p) => {
        const ours = encodePayload(asPayload(p));
        const theirs = theirEncode(p);
        expect(ours).toBeInstanceOf(Uint8Array);
        expect(Buffer.from(ours).equals(Buffer.from(theirs))).toBe(true);
        expect(encodedPayloadSize(asPayload(p))).toBe(ours.length);
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('round-trips through the SDK decoder to the input value', () => {
    fc.assert(
      fc.property(payloadArb, (p) => {
        const decoded = PayloadProto.decode(encodePayload(asPayload(p)));
        expect(normalize(decoded)).toEqual(normalize(p));
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('is stable under decode → encode', () => {
    fc.assert(
      fc.property(payloadArb, (p) => {
        const bytes = encodePayload(asPayload(p));
        const again = encodePayload(decodePayload(bytes));
        expect(Buffer.from(again).equals(Buffer.from(bytes))).toBe(true);
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('matches the SDK at varint length boundaries of data and metadata values', () => {
    for (const n of [1, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152]) {
      const data = new Uint8Array(n).fill(7);
      const p = { metadata: { encoding: utf8('binary/plain'), big: data.subarray(0, Math.min(n, 200)) }, data };
      const ours = encodePayload(p);
      expect(Buffer.from(ours).equals(Buffer.from(theirEncode(p)))).toBe(true);
      expect(encodedPayloadSize(p)).toBe(ours.length);
    }
  });

  it('writes fields in number order and map entries in Object.keys order', () => {
    const p = {
      externalPayloads: [{ sizeBytes: Long.fromNumber(5) }],
      data: utf8('d'),
      metadata: { b: utf8('2'), a: utf8('1') },
    };
    expect(bytesOf(encodePayload(p))).toEqual([
      // metadata "b" → "2"
      0x0a, 0x06, 0x0a, 0x01, 0x62, 0x12, 0x01, 0x32,
      // metadata "a" → "1"
      0x0a, 0x06, 0x0a, 0x01, 0x61, 0x12, 0x01, 0x31,
      // data
      0x12, 0x01, 0x64,
      // external_payloads { size_bytes: 5 }
      0x1a, 0x02, 0x08, 0x05,
    ]);
  });

  it('follows proto3 implicit presence like the SDK: empty data and zero sizeBytes are not written', () => {
    expect(bytesOf(encodePayload({}))).toEqual([]);
    expect(bytesOf(encodePayload({ data: new Uint8Array(0) }))).toEqual([]);
    expect(bytesOf(encodePayload({ metadata: null, data: null, externalPayloads: null }))).toEqual([]);
    expect(bytesOf(encodePayload({ externalPayloads: [] }))).toEqual([]);
    expect(bytesOf(encodePayload({ externalPayloads: [{}] }))).toEqual([0x1a, 0x00]);
    expect(bytesOf(encodePayload({ externalPayloads: [{ sizeBytes: Long.fromNumber(0) }] }))).toEqual([0x1a, 0x00]);
    expect(bytesOf(encodePayload(asPayload({ externalPayloads: [{ sizeBytes: 0 }] })))).toEqual([0x1a, 0x00]);
    expect(bytesOf(encodePayload({ externalPayloads: [{ sizeBytes: null }] }))).toEqual([0x1a, 0x00]);
    // Map entries always carry key and value, even when empty.
    expect(bytesOf(encodePayload({ metadata: { '': new Uint8Array(0) } }))).toEqual([
      0x0a, 0x04, 0x0a, 0x00, 0x12, 0x00,
    ]);
    for (const p of [
      { data: new Uint8Array(0) },
      { externalPayloads: [{ sizeBytes: 0 }] },
      { metadata: { '': new Uint8Array(0) } },
    ]) {
      expect(bytesOf(encodePayload(asPayload(p)))).toEqual(bytesOf(theirEncode(p)));
    }
  });

  it('encodes negative, > 2^53 and unsigned int64 sizes as 10-byte / two’s-complement varints like the SDK', () => {
    const cases: unknown[] = [
      -1,
      -5,
      Number.MIN_SAFE_INTEGER,
      Number.MAX_SAFE_INTEGER,
      1.9,
      -1.9,
      2 ** 64,
      Long.fromString('9007199254740993'),
      Long.fromString('18446744073709551615', true),
      Long.MIN_VALUE,
      Int64.fromValue('-9223372036854775808'),
      Int64.fromBigInt(2n ** 63n, true),
    ];
    for (const sizeBytes of cases) {
      const p = { externalPayloads: [{ sizeBytes }] };
      expect(bytesOf(encodePayload(asPayload(p)))).toEqual(bytesOf(theirEncode(p)));
      expect(encodedPayloadSize(asPayload(p))).toBe(theirEncode(p).length);
    }
    expect(bytesOf(encodePayload(asPayload({ externalPayloads: [{ sizeBytes: -1 }] })))).toEqual([
      0x1a, 0x0b, 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
    ]);
  });

  it('only encodes own properties (like protobufjs)', () => {
    const proto = { data: utf8('inherited'), metadata: { a: utf8('x') } };
    const p = Object.create(proto) as Payload;
    expect(bytesOf(encodePayload(p))).toEqual([]);
    expect(bytesOf(encodePayload(p))).toEqual(bytesOf(PayloadProto.encode(p).finish()));
  });

  it('keeps a __proto__ metadata key as an own property and encodes it like the SDK', () => {
    const metadata: Record<string, Uint8Array> = {};
    Object.defineProperty(metadata, '__proto__', {
      value: utf8('evil'),
      enumerable: true,
      writable: true,
      configurable: true,
    });
    metadata['encoding'] = utf8('json/plain');
    const p = { metadata, data: utf8('{}') };
    const bytes = encodePayload(p);
    expect(bytesOf(bytes)).toEqual(bytesOf(theirEncode(p)));

    const decoded = decodePayload(bytes);
    expect(Object.getPrototypeOf(decoded.metadata)).toBe(Object.prototype);
    expect(Object.hasOwn(decoded.metadata, '__proto__')).toBe(true);
    expect(Object.keys(decoded.metadata)).toEqual(['__proto__', 'encoding']);
    expect(bytesOf(Object.getOwnPropertyDescriptor(decoded.metadata, '__proto__')?.value as Uint8Array)).toEqual(
      bytesOf(utf8('evil')),
    );
    // Nothing leaked onto Object.prototype.
    expect(({} as Record<string, unknown>)['encoding']).toBeUndefined();
    // And it re-encodes to the same bytes.
    expect(bytesOf(encodePayload(decoded))).toEqual(bytesOf(bytes));
  });

  it('throws TypeError for non-Uint8Array data or metadata values, and for non-objects', () => {
    const bad: unknown[] = [
      { data: 'abc' },
      { data: [1, 2, 3] },
      { data: new ArrayBuffer(2) },
      { data: new Uint16Array(2) },
      { data: 5 },
      { metadata: { encoding: 'json/plain' } },
      { metadata: { encoding: [1] } },
      { metadata: { encoding: null } },
      { metadata: 'x' },
      { externalPayloads: 'x' },
      { externalPayloads: [null] },
      { externalPayloads: [5] },
      { externalPayloads: [{ sizeBytes: Number.NaN }] },
      { externalPayloads: [{ sizeBytes: Number.POSITIVE_INFINITY }] },
      { externalPayloads: [{ sizeBytes: true }] },
      null,
      undefined,
      'payload',
      42,
    ];
    for (const p of bad) {
      expect(thrown(() => encodePayload(p as Payload))).toBeInstanceOf(TypeError);
      expect(thrown(() => encodedPayloadSize(p as Payload))).toBeInstanceOf(TypeError);
    }
  });

  it('accepts Buffer and typed-array views (non-zero byteOffset)', () => {
    const backing = utf8('xxhello-worldyy');
    const p = { metadata: { k: Buffer.from('v') }, data: backing.subarray(2, 13) };
    expect(bytesOf(encodePayload(p))).toEqual(bytesOf(theirEncode(p)));
    expect(bytesOf(decodePayload(encodePayload(p)).data)).toEqual(bytesOf(utf8('hello-world')));
  });
});

describe('decodePayload', () => {
  it('decodes SDK-encoded bytes to the same value the SDK decodes', () => {
    fc.assert(
      fc.property(payloadArb, (p) => {
        const theirBytes = theirEncode(p);
        const ours = decodePayload(theirBytes);
        const theirs = PayloadProto.decode(theirBytes);
        expect(normalize(ours)).toEqual(normalize(theirs));
        expect(normalize(ours)).toEqual(normalize(p));
        // metadata and data are always present on our side.
        expect(ours.metadata).toBeDefined();
        expect(ours.data).toBeInstanceOf(Uint8Array);
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('returns sizeBytes as a Long-compatible Int64 the SDK recognises', () => {
    const bytes = theirEncode({ externalPayloads: [{ sizeBytes: Long.fromString('-42') }, {}] });
    const decoded = decodePayload(bytes);
    const [first, second] = decoded.externalPayloads ?? [];
    expect(first?.sizeBytes).toBeInstanceOf(Int64);
    expect(Long.isLong(first?.sizeBytes)).toBe(true);
    expect(first?.sizeBytes?.toString()).toBe('-42');
    expect(first?.sizeBytes?.unsigned).toBe(false);
    expect(second).toEqual({});
    expect(Object.hasOwn(second ?? {}, 'sizeBytes')).toBe(false);
  });

  it('decodes empty input to an empty payload without externalPayloads', () => {
    const d = decodePayload(new Uint8Array(0));
    expect(d.metadata).toEqual({});
    expect(bytesOf(d.data)).toEqual([]);
    expect('externalPayloads' in d).toBe(false);
  });

  it('lets the last duplicate map key and data field win, like protobuf requires', () => {
    const bytes = Uint8Array.from([
      0x0a,
      0x06,
      0x0a,
      0x01,
      0x6b,
      0x12,
      0x01,
      0x01, // k → 01
      0x12,
      0x01,
      0x61, // data "a"
      0x0a,
      0x06,
      0x0a,
      0x01,
      0x6b,
      0x12,
      0x01,
      0x02, // k → 02
      0x12,
      0x01,
      0x62, // data "b"
    ]);
    const ours = decodePayload(bytes);
    expect(normalize(ours)).toEqual(normalize(PayloadProto.decode(bytes)));
    expect(bytesOf(ours.metadata['k'])).toEqual([2]);
    expect(bytesOf(ours.data)).toEqual([0x62]);
  });

  it('defaults a map entry with a missing key or value to "" / empty bytes', () => {
    const bytes = Uint8Array.from([0x0a, 0x03, 0x12, 0x01, 0x09, 0x0a, 0x03, 0x0a, 0x01, 0x6b]);
    const ours = decodePayload(bytes);
    expect(Object.keys(ours.metadata)).toEqual(['', 'k']);
    expect(bytesOf(ours.metadata[''])).toEqual([9]);
    expect(bytesOf(ours.metadata['k'])).toEqual([]);
    expect(normalize(ours)).toEqual(normalize(PayloadProto.decode(bytes)));
  });

  it('skips unknown fields of every wire type at every level', () => {
    fc.assert(
      fc.property(payloadArb, fc.integer({ min: 0, max: 4 }), (p, where) => {
        const unknown = Uint8Array.from([
          0x78,
          0x96,
          0x01, // field 15 varint 150
          0x82,
          0x01,
          0x03,
          0x61,
          0x62,
          0x63, // field 16 length-delimited "abc"
          0x8d,
          0x01,
          0x01,
          0x02,
          0x03,
          0x04, // field 17 fixed32
          0x91,
          0x01,
          1,
          2,
          3,
          4,
          5,
          6,
          7,
          8, // field 18 fixed64
          0x9b,
          0x01,
          0x08,
          0x01,
          0x9c,
          0x01, // field 19 group { field 1 varint 1 }
        ]);
        const body = encodePayload(asPayload(p));
        // Insert the unknown fields at a field boundary: front, end, or between our top-level fields.
        const boundaries = topLevelBoundaries(body);
        const at = boundaries[where % boundaries.length] ?? 0;
        const bytes = new Uint8Array(body.length + unknown.length);
        bytes.set(body.subarray(0, at), 0);
        bytes.set(unknown, at);
        bytes.set(body.subarray(at), at + unknown.length);
        expect(normalize(decodePayload(bytes))).toEqual(normalize(p));
        expect(normalize(decodePayload(bytes))).toEqual(normalize(PayloadProto.decode(bytes)));
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('skips unknown fields inside map entries and external payload details', () => {
    const bytes = Uint8Array.from([
      0x0a,
      0x0a,
      0x18,
      0x07,
      0x0a,
      0x01,
      0x6b,
      0x22,
      0x00,
      0x12,
      0x01,
      0x05, // entry with field 3 varint & field 4 bytes
      0x1a,
      0x06,
      0x10,
      0x01,
      0x08,
      0x2a,
      0x18,
      0x00, // details with field 2, size 42, field 3
    ]);
    const ours = decodePayload(bytes);
    expect(bytesOf(ours.metadata['k'])).toEqual([5]);
    expect(ours.externalPayloads?.[0]?.sizeBytes?.toString()).toBe('42');
    expect(normalize(ours)).toEqual(normalize(PayloadProto.decode(bytes)));
  });

  it('returns views into the input (no copy) for data and metadata values', () => {
    const bytes = encodePayload({ metadata: { k: utf8('value') }, data: utf8('data') });
    const d = decodePayload(bytes);
    expect(d.data.buffer).toBe(bytes.buffer);
    expect(d.metadata['k']?.buffer).toBe(bytes.buffer);
  });

  it('throws TypeError when given something other than a Uint8Array', () => {
    const bads: unknown[] = ['abc', [1, 2], new ArrayBuffer(3), null, undefined, 7, new Uint16Array(2)];
    for (const bad of bads) {
      expect(thrown(() => decodePayload(bad as Uint8Array))).toBeInstanceOf(TypeError);
    }
    expect(decodePayload(Buffer.from([0x12, 0x01, 0x61])).data[0]).toBe(0x61);
  });
});

/** Offsets in `bytes` (a valid top-level encoding) where a field starts, plus the end. */
function topLevelBoundaries(bytes: Uint8Array): number[] {
  const out = [0];
  let pos = 0;
  const varint = () => {
    let v = 0;
    let shift = 0;
    for (;;) {
      const b = bytes[pos++] as number;
      v += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return v;
      shift += 7;
    }
  };
  while (pos < bytes.length) {
    varint(); // every top-level field of Payload is length-delimited
    const len = varint();
    pos += len;
    out.push(pos);
  }
  return out;
}

describe('decodePayload on malformed input', () => {
  /** Decodes and returns 'ok', or checks the error is E_INTEGRITY and returns 'integrity'. */
  function outcome(bytes: Uint8Array): 'ok' | 'integrity' {
    try {
      decodePayload(bytes);
      return 'ok';
    } catch (e) {
      if (!(e instanceof StorageDriverError) || !isStorageDriverError(e, 'E_INTEGRITY')) {
        throw new Error(`unexpected error for ${Buffer.from(bytes).toString('hex')}: ${String(e)}`);
      }
      return 'integrity';
    }
  }

  const cases: [string, number[]][] = [
    ['truncated tag varint', [0x80]],
    ['truncated length varint', [0x0a, 0x80]],
    ['length past the end', [0x0a, 0x05, 0x0a]],
    ['huge length', [0x12, 0xff, 0xff, 0xff, 0xff, 0x0f]],
    ['length that does not fit 32 bits', [0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]],
    ['varint longer than 10 bytes', [0x78, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]],
    ['tag that does not fit 32 bits', [0x80, 0x80, 0x80, 0x80, 0x80, 0x01]],
    ['field number 0', [0x00, 0x00]],
    ['field number 0 with length', [0x02, 0x00]],
    ['invalid wire type 6', [0x2e]],
    ['invalid wire type 7', [0x2f]],
    ['stray end-group', [0x2c]],
    ['metadata with varint wire type', [0x08, 0x01]],
    ['data with varint wire type', [0x10, 0x01]],
    ['data with fixed32 wire type', [0x15, 1, 2, 3, 4]],
    ['external payloads with fixed64 wire type', [0x19, 1, 2, 3, 4, 5, 6, 7, 8]],
    ['size_bytes with length-delimited wire type', [0x1a, 0x02, 0x0a, 0x00]],
    ['map key with varint wire type', [0x0a, 0x02, 0x08, 0x01]],
    ['map entry length past its parent', [0x0a, 0x02, 0x0a, 0x05]],
    ['truncated fixed64', [0x91, 0x01, 1, 2, 3]],
    ['truncated fixed32', [0x8d, 0x01, 1]],
    ['unterminated group', [0x23, 0x08, 0x01]],
    ['mismatched end-group', [0x23, 0x2c]],
    ['group with field number 0 inside', [0x23, 0x00, 0x24]],
    ['deeply nested groups', new Array<number>(100_000).fill(0x23)],
    [
      'nested groups over the limit, closed',
      [...new Array<number>(200).fill(0x23), ...new Array<number>(200).fill(0x24)],
    ],
    ['metadata key that is not UTF-8', [0x0a, 0x05, 0x0a, 0x01, 0xff, 0x12, 0x00]],
    ['metadata key with a UTF-16 surrogate encoded in UTF-8', [0x0a, 0x07, 0x0a, 0x03, 0xed, 0xa0, 0x80, 0x12, 0x00]],
    ['size_bytes varint truncated', [0x1a, 0x02, 0x08, 0x80]],
  ];

  it.each(cases)('%s → E_INTEGRITY', (_name, bytes) => {
    expect(outcome(Uint8Array.from(bytes))).toBe('integrity');
  });

  it('skips a well-formed group and shallow nested groups', () => {
    expect(outcome(Uint8Array.from([0x23, 0x24]))).toBe('ok');
    expect(
      outcome(
        Uint8Array.from([...new Array<number>(50).fill(0x23), ...new Array<number>(50).fill(0x24), 0x12, 0x01, 0x61]),
      ),
    ).toBe('ok');
    expect(bytesOf(decodePayload(Uint8Array.from([0x23, 0x08, 0x01, 0x24, 0x12, 0x01, 0x61])).data)).toEqual([0x61]);
  });

  it('accepts a 10-byte varint whose last byte carries extra high bits (like protobufjs)', () => {
    const bytes = Uint8Array.from([0x1a, 0x0b, 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
    expect(decodePayload(bytes).externalPayloads?.[0]?.sizeBytes?.toString()).toBe('-1');
  });

  it('never throws anything but E_INTEGRITY on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        outcome(bytes);
      }),
      { numRuns: 1000 },
    );
  });

  it('never throws anything but E_INTEGRITY on truncated, corrupted or spliced valid encodings', () => {
    fc.assert(
      fc.property(
        payloadArb.filter((p) => encodedPayloadSize(asPayload(p)) < 4096),
        fc.nat(),
        fc.nat(),
        fc.uint8Array({ minLength: 1, maxLength: 12 }),
        fc.constantFrom('truncate', 'flip', 'insert', 'overwrite'),
        (p, a, b, junk, how) => {
          const valid = encodePayload(asPayload(p));
          const at = valid.length === 0 ? 0 : a % valid.length;
          let bytes: Uint8Array;
          switch (how) {
            case 'truncate':
              bytes = valid.subarray(0, at);
              break;
            case 'flip':
              bytes = valid.slice();
              if (bytes.length > 0) bytes[at] = (bytes[at] as number) ^ (1 << (b % 8));
              break;
            case 'insert':
              bytes = new Uint8Array(valid.length + junk.length);
              bytes.set(valid.subarray(0, at), 0);
              bytes.set(junk, at);
              bytes.set(valid.subarray(at), at + junk.length);
              break;
            default:
              bytes = valid.slice();
              bytes.set(junk.subarray(0, Math.max(0, bytes.length - at)), at);
          }
          const result = outcome(bytes);
          if (how === 'truncate' && at === 0) expect(result).toBe('ok');
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('agrees with the SDK decoder whenever the SDK decodes successfully and we do too', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        let theirs: unknown;
        try {
          theirs = PayloadProto.decode(bytes);
        } catch {
          return;
        }
        if (outcome(bytes) === 'ok') expect(normalize(decodePayload(bytes))).toEqual(normalize(theirs));
      }),
      { numRuns: 1000 },
    );
  });
});

describe('inputs that cannot round-trip are refused at encode time', () => {
  it('a metadata key with a lone surrogate is a TypeError (UTF-8 cannot carry it)', () => {
    for (const key of ['\uD83Dk', 'k\uDC00', '\uDBFF']) {
      expect(() => encodePayload({ metadata: { [key]: utf8('v') } })).toThrow(TypeError);
      expect(() => encodedPayloadSize({ metadata: { [key]: utf8('v') } })).toThrow(TypeError);
    }
    // A proper pair is fine.
    const ok = decodePayload(encodePayload({ metadata: { '😀k': utf8('v') } }));
    expect(Object.keys(ok.metadata)).toEqual(['😀k']);
  });
  it('a sizeBytes string that is not an integer is a TypeError', () => {
    for (const sizeBytes of ['abc', '1.5', '', '12abc']) {
      expect(() => encodePayload({ externalPayloads: [{ sizeBytes: sizeBytes as unknown as Long }] })).toThrow(
        TypeError,
      );
    }
    expect(() => encodePayload({ externalPayloads: [{ sizeBytes: Number.NaN as unknown as Long }] })).toThrow(
      TypeError,
    );
  });
});
