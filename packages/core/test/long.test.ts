import fc from 'fast-check';
import { type Long as CoreLong, Int64 } from '../src';
import { Long, type SdkLong, thrown } from './helpers';

const NUM_RUNS = 200;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;

/** Random 64-bit patterns, biased towards the interesting edges. */
const bitsArb: fc.Arbitrary<bigint> = fc.oneof(
  { weight: 4, arbitrary: fc.bigInt({ min: INT64_MIN, max: INT64_MAX }) },
  { weight: 1, arbitrary: fc.bigInt({ min: -1000n, max: 1000n }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      0n,
      1n,
      -1n,
      INT64_MIN,
      INT64_MAX,
      2n ** 32n,
      2n ** 32n - 1n,
      -(2n ** 32n),
      2n ** 31n,
      -(2n ** 31n),
      2n ** 53n,
      2n ** 53n - 1n,
      -(2n ** 53n),
      -(2n ** 53n) + 1n,
    ),
  },
);

const pairArb = fc.record({ a: bitsArb, b: bitsArb, unsigned: fc.boolean() });

function pair(a: bigint, unsigned: boolean): [Int64, SdkLong] {
  return [Int64.fromBigInt(a, unsigned), Long.fromBigInt(a, unsigned)];
}

/** The observable state of a Long: bits, signedness and decimal value. */
function state(x: CoreLong | SdkLong): { low: number; high: number; unsigned: boolean; value: string } {
  return { low: x.low, high: x.high, unsigned: x.unsigned, value: x.toString() };
}

function sameResult(f: () => unknown, g: () => unknown): void {
  let fr: unknown;
  let gr: unknown;
  let fe: unknown;
  let ge: unknown;
  try {
    fr = f();
  } catch (e) {
    fe = e;
  }
  try {
    gr = g();
  } catch (e) {
    ge = e;
  }
  expect(fe === undefined).toBe(ge === undefined);
  if (fe !== undefined) return;
  if (typeof fr === 'object' && fr !== null && 'low' in fr) {
    expect(state(fr as CoreLong)).toEqual(state(gr as SdkLong));
  } else {
    expect(fr).toEqual(gr);
  }
}

describe('Int64 agrees with the long package', () => {
  it('constructs the same bits, value and sign from bigints', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: INT64_MIN, max: UINT64_MAX }), fc.boolean(), (v, unsigned) => {
        const [ours, theirs] = pair(v, unsigned);
        expect(state(ours)).toEqual(state(theirs));
        expect(ours.toBigInt()).toBe(theirs.toBigInt());
        expect(state(new Int64(theirs.low, theirs.high, unsigned))).toEqual(state(theirs));
      }),
      { numRuns: NUM_RUNS },
    );
  });

  const binary: [string, (x: CoreLong, y: CoreLong) => unknown, (x: SdkLong, y: SdkLong) => unknown][] = [
    ['add', (x, y) => x.add(y), (x, y) => x.add(y)],
    ['subtract', (x, y) => x.subtract(y), (x, y) => x.subtract(y)],
    ['sub', (x, y) => x.sub(y), (x, y) => x.sub(y)],
    ['multiply', (x, y) => x.multiply(y), (x, y) => x.multiply(y)],
    ['mul', (x, y) => x.mul(y), (x, y) => x.mul(y)],
    ['divide', (x, y) => x.divide(y), (x, y) => x.divide(y)],
    ['div', (x, y) => x.div(y), (x, y) => x.div(y)],
    ['modulo', (x, y) => x.modulo(y), (x, y) => x.modulo(y)],
    ['mod', (x, y) => x.mod(y), (x, y) => x.mod(y)],
    ['rem', (x, y) => x.rem(y), (x, y) => x.rem(y)],
    ['and', (x, y) => x.and(y), (x, y) => x.and(y)],
    ['or', (x, y) => x.or(y), (x, y) => x.or(y)],
    ['xor', (x, y) => x.xor(y), (x, y) => x.xor(y)],
    ['compare', (x, y) => x.compare(y), (x, y) => x.compare(y)],
    ['comp', (x, y) => x.comp(y), (x, y) => x.comp(y)],
    ['equals', (x, y) => x.equals(y), (x, y) => x.equals(y)],
    ['eq', (x, y) => x.eq(y), (x, y) => x.eq(y)],
    ['notEquals', (x, y) => x.notEquals(y), (x, y) => x.notEquals(y)],
    ['neq', (x, y) => x.neq(y), (x, y) => x.neq(y)],
    ['ne', (x, y) => x.ne(y), (x, y) => x.ne(y)],
    ['lessThan', (x, y) => x.lessThan(y), (x, y) => x.lessThan(y)],
    ['lt', (x, y) => x.lt(y), (x, y) => x.lt(y)],
    ['lessThanOrEqual', (x, y) => x.lessThanOrEqual(y), (x, y) => x.lessThanOrEqual(y)],
    ['lte', (x, y) => x.lte(y), (x, y) => x.lte(y)],
    ['le', (x, y) => x.le(y), (x, y) => x.le(y)],
    ['greaterThan', (x, y) => x.greaterThan(y), (x, y) => x.greaterThan(y)],
    ['gt', (x, y) => x.gt(y), (x, y) => x.gt(y)],
    ['greaterThanOrEqual', (x, y) => x.greaterThanOrEqual(y), (x, y) => x.greaterThanOrEqual(y)],
    ['gte', (x, y) => x.gte(y), (x, y) => x.gte(y)],
    ['ge', (x, y) => x.ge(y), (x, y) => x.ge(y)],
  ];

  /**
   * long 5.3's wasm division returns the dividend unchanged for any signed value whose high word
   * is 0x80000000 divided by -1 (it only checks the high word for MIN_VALUE). Int64 gives the
   * mathematically correct (wrapped) quotient there, checked against bigint arithmetic instead.
   */
  const longDivBug = (name: string, a: bigint, b: bigint, unsigned: boolean) =>
    (name === 'divide' || name === 'div') && !unsigned && b === -1n && BigInt.asIntN(64, a) >> 32n === -(2n ** 31n);

  it('divides x / -1 correctly where long 5.3 does not', () => {
    const a = INT64_MIN + 2n ** 32n - 1n;
    expect(longDivBug('div', a, -1n, false)).toBe(true);
    expect(Int64.fromBigInt(a).div(-1).toBigInt()).toBe(-a);
    expect(Int64.fromBigInt(INT64_MIN).div(-1).toBigInt()).toBe(INT64_MIN);
  });

  it.each(binary)('%s (both operands of the same signedness)', (name, ours, theirs) => {
    fc.assert(
      fc.property(pairArb, ({ a, b, unsigned }) => {
        const [oa, ta] = pair(a, unsigned);
        const [ob, tb] = pair(b, unsigned);
        if (longDivBug(name, a, b, unsigned)) {
          expect(oa.div(ob).toBigInt()).toBe(BigInt.asIntN(64, a / b));
          return;
        }
        sameResult(
          () => ours(oa, ob),
          () => theirs(ta, tb),
        );
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('division and modulo by zero throw like long', () => {
    for (const unsigned of [false, true]) {
      const [o, t] = pair(7n, unsigned);
      expect(thrown(() => t.div(0))).toBeInstanceOf(Error);
      expect(thrown(() => o.div(0))).toBeInstanceOf(Error);
      expect(thrown(() => o.mod(0))).toBeInstanceOf(Error);
    }
  });

  it('MIN_VALUE / -1 and MIN_VALUE * -1 wrap like long', () => {
    sameResult(
      () => Int64.fromBigInt(INT64_MIN).div(-1),
      () => Long.MIN_VALUE.div(-1),
    );
    sameResult(
      () => Int64.fromBigInt(INT64_MIN).mul(-1),
      () => Long.MIN_VALUE.mul(-1),
    );
    sameResult(
      () => Int64.fromBigInt(INT64_MIN).negate(),
      () => Long.MIN_VALUE.negate(),
    );
  });

  const shifts: [string, (x: CoreLong, n: number) => unknown, (x: SdkLong, n: number) => unknown][] = [
    ['shiftLeft', (x, n) => x.shiftLeft(n), (x, n) => x.shiftLeft(n)],
    ['shl', (x, n) => x.shl(n), (x, n) => x.shl(n)],
    ['shiftRight', (x, n) => x.shiftRight(n), (x, n) => x.shiftRight(n)],
    ['shr', (x, n) => x.shr(n), (x, n) => x.shr(n)],
    ['shiftRightUnsigned', (x, n) => x.shiftRightUnsigned(n), (x, n) => x.shiftRightUnsigned(n)],
    ['shru', (x, n) => x.shru(n), (x, n) => x.shru(n)],
    ['shr_u', (x, n) => x.shr_u(n), (x, n) => x.shr_u(n)],
    ['rotateLeft', (x, n) => x.rotateLeft(n), (x, n) => x.rotateLeft(n)],
    ['rotl', (x, n) => x.rotl(n), (x, n) => x.rotl(n)],
    ['rotateRight', (x, n) => x.rotateRight(n), (x, n) => x.rotateRight(n)],
    ['rotr', (x, n) => x.rotr(n), (x, n) => x.rotr(n)],
  ];

  it.each(shifts)('%s by 0..127 and negative amounts (masked to 6 bits)', (_name, ours, theirs) => {
    fc.assert(
      fc.property(bitsArb, fc.boolean(), fc.integer({ min: -64, max: 127 }), (a, unsigned, n) => {
        const [o, t] = pair(a, unsigned);
        sameResult(
          () => ours(o, n),
          () => theirs(t, n),
        );
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('shift amounts given as Longs', () => {
    fc.assert(
      fc.property(bitsArb, fc.integer({ min: 0, max: 63 }), (a, n) => {
        const [o, t] = pair(a, false);
        sameResult(
          () => o.shl(Int64.fromValue(n)),
          () => t.shl(Long.fromNumber(n)),
        );
        sameResult(
          () => o.shru(Long.fromNumber(n)),
          () => t.shru(Long.fromNumber(n)),
        );
      }),
      { numRuns: NUM_RUNS },
    );
  });

  const unary: [string, (x: CoreLong) => unknown, (x: SdkLong) => unknown][] = [
    ['negate', (x) => x.negate(), (x) => x.negate()],
    ['neg', (x) => x.neg(), (x) => x.neg()],
    ['not', (x) => x.not(), (x) => x.not()],
    ['isZero', (x) => x.isZero(), (x) => x.isZero()],
    ['eqz', (x) => x.eqz(), (x) => x.eqz()],
    ['isNegative', (x) => x.isNegative(), (x) => x.isNegative()],
    ['isPositive', (x) => x.isPositive(), (x) => x.isPositive()],
    ['isOdd', (x) => x.isOdd(), (x) => x.isOdd()],
    ['isEven', (x) => x.isEven(), (x) => x.isEven()],
    ['isSafeInteger', (x) => x.isSafeInteger(), (x) => x.isSafeInteger()],
    ['getHighBits', (x) => x.getHighBits(), (x) => x.getHighBits()],
    ['getHighBitsUnsigned', (x) => x.getHighBitsUnsigned(), (x) => x.getHighBitsUnsigned()],
    ['getLowBits', (x) => x.getLowBits(), (x) => x.getLowBits()],
    ['getLowBitsUnsigned', (x) => x.getLowBitsUnsigned(), (x) => x.getLowBitsUnsigned()],
    ['getNumBitsAbs', (x) => x.getNumBitsAbs(), (x) => x.getNumBitsAbs()],
    ['countLeadingZeros', (x) => x.countLeadingZeros(), (x) => x.countLeadingZeros()],
    ['clz', (x) => x.clz(), (x) => x.clz()],
    ['countTrailingZeros', (x) => x.countTrailingZeros(), (x) => x.countTrailingZeros()],
    ['ctz', (x) => x.ctz(), (x) => x.ctz()],
    ['toInt', (x) => x.toInt(), (x) => x.toInt()],
    ['toNumber', (x) => x.toNumber(), (x) => x.toNumber()],
    ['toBigInt', (x) => x.toBigInt(), (x) => x.toBigInt()],
    ['toSigned', (x) => x.toSigned(), (x) => x.toSigned()],
    ['toUnsigned', (x) => x.toUnsigned(), (x) => x.toUnsigned()],
    ['toString()', (x) => x.toString(), (x) => x.toString()],
    ['toBytes()', (x) => x.toBytes(), (x) => x.toBytes()],
    ['toBytes(true)', (x) => x.toBytes(true), (x) => x.toBytes(true)],
    ['toBytes(false)', (x) => x.toBytes(false), (x) => x.toBytes(false)],
    ['toBytesLE', (x) => x.toBytesLE(), (x) => x.toBytesLE()],
    ['toBytesBE', (x) => x.toBytesBE(), (x) => x.toBytesBE()],
  ];

  it.each(unary)('%s', (_name, ours, theirs) => {
    fc.assert(
      fc.property(bitsArb, fc.boolean(), (a, unsigned) => {
        const [o, t] = pair(a, unsigned);
        sameResult(
          () => ours(o),
          () => theirs(t),
        );
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('toString(radix) for every radix 2..36', () => {
    fc.assert(
      fc.property(bitsArb, fc.boolean(), fc.integer({ min: 2, max: 36 }), (a, unsigned, radix) => {
        const [o, t] = pair(a, unsigned);
        expect(o.toString(radix)).toBe(t.toString(radix));
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('toString rejects radixes outside 2..36 with a RangeError', () => {
    for (const radix of [1, 37]) {
      expect(thrown(() => Int64.fromValue(5).toString(radix))).toBeInstanceOf(RangeError);
      expect(thrown(() => Long.fromNumber(5).toString(radix))).toBeInstanceOf(RangeError);
    }
  });

  it('accepts numbers, decimal strings and bigints as the other operand', () => {
    fc.assert(
      fc.property(bitsArb, fc.maxSafeInteger(), (a, n) => {
        const [o, t] = pair(a, false);
        sameResult(
          () => o.add(n),
          () => t.add(n),
        );
        sameResult(
          () => o.mul(String(n)),
          () => t.mul(String(n)),
        );
        // long's methods pass bigint operands through its internal fromValue, which ignores bigints,
        // so check ours against plain bigint arithmetic instead.
        expect(o.sub(BigInt(n)).toBigInt()).toBe(BigInt.asIntN(64, a - BigInt(n)));
        sameResult(
          () => o.compare(n),
          () => t.compare(n),
        );
        sameResult(
          () => o.equals(String(n)),
          () => t.equals(String(n)),
        );
        sameResult(
          () => o.xor({ low: t.low, high: t.high, unsigned: false }),
          () => t.xor({ low: t.low, high: t.high, unsigned: false }),
        );
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('interoperates with long in both directions (each accepts the other as an operand)', () => {
    fc.assert(
      fc.property(pairArb, ({ a, b, unsigned }) => {
        const [oa, ta] = pair(a, unsigned);
        const [ob, tb] = pair(b, unsigned);
        // long recognises Int64 through its __isLong__ brand.
        expect(Long.isLong(oa)).toBe(true);
        sameResult(
          () => oa.add(tb),
          () => ta.add(tb),
        );
        sameResult(
          () => ta.add(ob),
          () => ta.add(tb),
        );
        sameResult(
          () => ta.compare(ob),
          () => ta.compare(tb),
        );
        sameResult(
          () => oa.xor(tb),
          () => ta.xor(ob),
        );
        expect(state(Long.fromValue(oa))).toEqual(state(ta));
        expect(state(Int64.fromValue(ta))).toEqual(state(ta));
      }),
      { numRuns: NUM_RUNS },
    );
  });
});

describe('Int64.fromValue', () => {
  it('converts safe integers like long (signed and unsigned)', () => {
    fc.assert(
      fc.property(fc.maxSafeInteger(), (n) => {
        expect(state(Int64.fromValue(n))).toEqual(state(Long.fromValue(n)));
        if (n >= 0) expect(state(Int64.fromValue(n, true))).toEqual(state(Long.fromValue(n, true)));
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('truncates fractional numbers towards zero like long', () => {
    fc.assert(
      fc.property(fc.double({ min: -(2 ** 52), max: 2 ** 52, noNaN: true }), (n) => {
        expect(state(Int64.fromValue(n))).toEqual(state(Long.fromValue(n)));
      }),
      { numRuns: NUM_RUNS },
    );
    expect(Int64.fromValue(-1.9).toString()).toBe('-1');
    expect(Int64.fromValue(1.9).toString()).toBe('1');
  });

  it('wraps numbers outside the 64-bit range modulo 2^64 (documented; long saturates instead)', () => {
    expect(Int64.fromValue(2 ** 64).isZero()).toBe(true);
    expect(Int64.fromValue(2 ** 64 + 2 ** 12).toString()).toBe('4096');
    expect(Int64.fromValue(2 ** 63).toString()).toBe(INT64_MIN.toString());
  });

  it('parses decimal strings like long, including negatives and the unsigned flag', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: INT64_MIN, max: UINT64_MAX }), fc.boolean(), (v, unsigned) => {
        const s = v.toString();
        expect(state(Int64.fromValue(s, unsigned))).toEqual(state(Long.fromValue(s, unsigned)));
      }),
      { numRuns: NUM_RUNS },
    );
    expect(Int64.fromValue('-1', true).toString()).toBe(UINT64_MAX.toString());
  });

  it('converts bigints like long, wrapping modulo 2^64', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }), fc.boolean(), (v, unsigned) => {
        expect(state(Int64.fromValue(v, unsigned))).toEqual(state(Long.fromValue(v, unsigned)));
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('converts {low, high, unsigned} objects and Longs, inheriting signedness unless overridden', () => {
    fc.assert(
      fc.property(
        fc.integer(),
        fc.integer(),
        fc.boolean(),
        fc.option(fc.boolean(), { nil: undefined }),
        (low, high, u, override) => {
          const obj = { low, high, unsigned: u };
          expect(state(Int64.fromValue(obj, override))).toEqual(state(Long.fromValue(obj, override)));
          const t = Long.fromBits(low, high, u);
          expect(state(Int64.fromValue(t, override))).toEqual(state(Long.fromValue(t, override)));
        },
      ),
      { numRuns: NUM_RUNS },
    );
  });

  it('exposes the Long shape: low/high as signed 32-bit, __isLong__ brand, valueOf', () => {
    const x = new Int64(0xffffffff, 0x80000000, false);
    expect(x.low).toBe(-1);
    expect(x.high).toBe(-2147483648);
    expect(x.__isLong__).toBe(true);
    expect(x.toString()).toBe((INT64_MIN + 2n ** 32n - 1n).toString());
    expect(Number(Int64.fromValue(42))).toBe(42);
    expect(new Int64(1, 0).unsigned).toBe(false);
    expect(Int64.fromBigInt(-1n, true).toString()).toBe(UINT64_MAX.toString());
  });
});
