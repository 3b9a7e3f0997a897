/**
 * A dependency-free 64-bit integer that is structurally identical to the `Long` class of the
 * `long` package (v5), which protobufjs — and therefore `@temporalio/proto` — uses for `int64`
 * fields such as `Payload.externalPayloads[].sizeBytes`. Core must not depend on `long` at run
 * time, yet its `Payload` type must be assignable to and from the SDK's, so the shape is
 * declared here and implemented over `bigint`.
 *
 * @module
 */

/** Anything {@link Int64.fromValue} accepts (same as `long`'s `LongLike`). */
export type LongLike = Long | number | bigint | string | { low: number; high: number; unsigned: boolean };

/** Structural twin of `long`'s `Long` instance API. */
export interface Long {
  /** The high 32 bits as a signed value. */
  high: number;
  /** The low 32 bits as a signed value. */
  low: number;
  /** Whether the value is unsigned. */
  unsigned: boolean;
  /** Returns the sum of this and `addend`. */
  add(addend: LongLike): Long;
  /** Returns the bitwise AND of this and `other`. */
  and(other: LongLike): Long;
  /** Compares with `other`: 0 if equal, -1 if less, 1 if greater. */
  compare(other: LongLike): number;
  /** Alias of `compare`. */
  comp(other: LongLike): number;
  /** Returns this divided by `divisor` (truncated). */
  divide(divisor: LongLike): Long;
  /** Alias of `divide`. */
  div(divisor: LongLike): Long;
  /** Whether this equals `other`. */
  equals(other: LongLike): boolean;
  /** Alias of `equals`. */
  eq(other: LongLike): boolean;
  /** The high 32 bits as a signed integer. */
  getHighBits(): number;
  /** The high 32 bits as an unsigned integer. */
  getHighBitsUnsigned(): number;
  /** The low 32 bits as a signed integer. */
  getLowBits(): number;
  /** The low 32 bits as an unsigned integer. */
  getLowBitsUnsigned(): number;
  /** Number of bits needed to represent the absolute value. */
  getNumBitsAbs(): number;
  /** Whether this is greater than `other`. */
  greaterThan(other: LongLike): boolean;
  /** Alias of `greaterThan`. */
  gt(other: LongLike): boolean;
  /** Whether this is greater than or equal to `other`. */
  greaterThanOrEqual(other: LongLike): boolean;
  /** Alias of `greaterThanOrEqual`. */
  gte(other: LongLike): boolean;
  /** Alias of `greaterThanOrEqual`. */
  ge(other: LongLike): boolean;
  /** Whether the value is even. */
  isEven(): boolean;
  /** Whether the value is negative. */
  isNegative(): boolean;
  /** Whether the value is odd. */
  isOdd(): boolean;
  /** Whether the value is zero or positive. */
  isPositive(): boolean;
  /** Whether the value fits a JavaScript safe integer. */
  isSafeInteger(): boolean;
  /** Whether the value is zero. */
  isZero(): boolean;
  /** Alias of `isZero`. */
  eqz(): boolean;
  /** Whether this is less than `other`. */
  lessThan(other: LongLike): boolean;
  /** Alias of `lessThan`. */
  lt(other: LongLike): boolean;
  /** Whether this is less than or equal to `other`. */
  lessThanOrEqual(other: LongLike): boolean;
  /** Alias of `lessThanOrEqual`. */
  lte(other: LongLike): boolean;
  /** Alias of `lessThanOrEqual`. */
  le(other: LongLike): boolean;
  /** Returns this modulo `other` (sign of the dividend). */
  modulo(other: LongLike): Long;
  /** Alias of `modulo`. */
  mod(other: LongLike): Long;
  /** Alias of `modulo`. */
  rem(other: LongLike): Long;
  /** Returns the product of this and `multiplier`. */
  multiply(multiplier: LongLike): Long;
  /** Alias of `multiply`. */
  mul(multiplier: LongLike): Long;
  /** Returns the negation. */
  negate(): Long;
  /** Alias of `negate`. */
  neg(): Long;
  /** Returns the bitwise NOT. */
  not(): Long;
  /** Number of leading zero bits. */
  countLeadingZeros(): number;
  /** Alias of `countLeadingZeros`. */
  clz(): number;
  /** Number of trailing zero bits. */
  countTrailingZeros(): number;
  /** Alias of `countTrailingZeros`. */
  ctz(): number;
  /** Whether this differs from `other`. */
  notEquals(other: LongLike): boolean;
  /** Alias of `notEquals`. */
  neq(other: LongLike): boolean;
  /** Alias of `notEquals`. */
  ne(other: LongLike): boolean;
  /** Returns the bitwise OR of this and `other`. */
  or(other: LongLike): Long;
  /** Returns this shifted left by `numBits`. */
  shiftLeft(numBits: number | Long): Long;
  /** Alias of `shiftLeft`. */
  shl(numBits: number | Long): Long;
  /** Returns this arithmetically shifted right by `numBits`. */
  shiftRight(numBits: number | Long): Long;
  /** Alias of `shiftRight`. */
  shr(numBits: number | Long): Long;
  /** Returns this logically shifted right by `numBits`. */
  shiftRightUnsigned(numBits: number | Long): Long;
  /** Alias of `shiftRightUnsigned`. */
  shru(numBits: number | Long): Long;
  /** Alias of `shiftRightUnsigned`. */
  shr_u(numBits: number | Long): Long;
  /** Returns this rotated left by `numBits`. */
  rotateLeft(numBits: number | Long): Long;
  /** Alias of `rotateLeft`. */
  rotl(numBits: number | Long): Long;
  /** Returns this rotated right by `numBits`. */
  rotateRight(numBits: number | Long): Long;
  /** Alias of `rotateRight`. */
  rotr(numBits: number | Long): Long;
  /** Returns this minus `subtrahend`. */
  subtract(subtrahend: LongLike): Long;
  /** Alias of `subtract`. */
  sub(subtrahend: LongLike): Long;
  /** The value as a bigint. */
  toBigInt(): bigint;
  /** The low 32 bits as a number (unsigned if this is unsigned). */
  toInt(): number;
  /** The value as a number (may lose precision beyond 2^53). */
  toNumber(): number;
  /** The 8 bytes of the value, little-endian if `le`, else big-endian. */
  toBytes(le?: boolean): number[];
  /** The 8 bytes of the value, little-endian. */
  toBytesLE(): number[];
  /** The 8 bytes of the value, big-endian. */
  toBytesBE(): number[];
  /** The same bits as a signed value. */
  toSigned(): Long;
  /** The value in `radix` (default 10). */
  toString(radix?: number): string;
  /** The same bits as an unsigned value. */
  toUnsigned(): Long;
  /** Returns the bitwise XOR of this and `other`. */
  xor(other: LongLike): Long;
}

const MASK32 = 0xffffffffn;

/**
 * The two's-complement bits of a 64-bit integer given as a number, bigint, decimal string or
 * `{ low, high }` object (a `Long`), as a bigint (not yet reduced modulo 2^64).
 *
 * @throws TypeError for non-finite numbers, strings that are not integers, and other types.
 */
export function toInt64Bits(value: unknown): bigint {
  if (typeof value === 'bigint') return value;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError(`64-bit integer must be finite, got ${value}`);
    return BigInt(Math.trunc(value));
  }
  if (typeof value === 'string') {
    if (!/^\s*[-+]?(?:\d+|0[xX][0-9a-fA-F]+)\s*$/.test(value)) {
      throw new TypeError(`64-bit integer string must be an integer, got ${JSON.stringify(value.slice(0, 40))}`);
    }
    const trimmed = value.trim();
    return trimmed.startsWith('-') ? -BigInt(trimmed.slice(1)) : BigInt(trimmed.replace(/^\+/, ''));
  }
  if (typeof value === 'object' && value !== null && 'low' in value && 'high' in value) {
    const { low, high } = value as { low: unknown; high: unknown };
    if (typeof low === 'number' && typeof high === 'number') {
      return (BigInt(high >>> 0) << 32n) | BigInt(low >>> 0);
    }
  }
  throw new TypeError(`expected a number, bigint, integer string or Long, got ${typeof value}`);
}

const bitsOf = (v: LongLike): bigint => toInt64Bits(v);

function shiftOf(n: number | Long): number {
  return (typeof n === 'number' ? n : n.toInt()) & 63;
}

/**
 * A 64-bit integer implementing {@link Long} over `bigint`. Decoded `int64` fields are
 * `Int64` values; like `long`'s class it carries `__isLong__` so protobufjs and the Temporal SDK
 * (`Long.isLong`) recognise it.
 */
export class Int64 implements Long {
  /** The high 32 bits as a signed value. */
  high: number;
  /** The low 32 bits as a signed value. */
  low: number;
  /** Whether this value is unsigned. */
  unsigned: boolean;
  /** Brand checked by `Long.isLong`. */
  readonly __isLong__ = true;

  /** Builds a value from its low and high 32 bits (like `new Long(low, high, unsigned)`). */
  constructor(low: number, high: number, unsigned = false) {
    this.low = low | 0;
    this.high = high | 0;
    this.unsigned = unsigned;
  }

  /**
   * Converts a number, bigint, integer string or `{low, high}` object. Out-of-range input wraps
   * modulo 2^64.
   *
   * @throws TypeError for non-finite numbers, non-integer strings and other types.
   */
  static fromValue(value: LongLike, unsigned?: boolean): Int64 {
    const inherit =
      typeof value === 'object' && value !== null && typeof (value as { unsigned?: unknown }).unsigned === 'boolean'
        ? (value as { unsigned: boolean }).unsigned
        : false;
    return Int64.fromBigInt(bitsOf(value), unsigned ?? inherit);
  }

  /** Wraps a bigint modulo 2^64. */
  static fromBigInt(value: bigint, unsigned = false): Int64 {
    const bits = BigInt.asUintN(64, value);
    return new Int64(Number(bits & MASK32) | 0, Number((bits >> 32n) & MASK32) | 0, unsigned);
  }

  private big(): bigint {
    const bits = (BigInt(this.high >>> 0) << 32n) | BigInt(this.low >>> 0);
    return this.unsigned ? bits : BigInt.asIntN(64, bits);
  }
  private make(v: bigint): Int64 {
    return Int64.fromBigInt(v, this.unsigned);
  }
  private other(v: LongLike): bigint {
    const b = bitsOf(v);
    return this.unsigned ? BigInt.asUintN(64, b) : BigInt.asIntN(64, b);
  }

  add(addend: LongLike): Int64 {
    return this.make(this.big() + this.other(addend));
  }
  and(other: LongLike): Int64 {
    return this.make(this.big() & this.other(other));
  }
  compare(other: LongLike): number {
    const a = this.big();
    const b = this.other(other);
    return a === b ? 0 : a < b ? -1 : 1;
  }
  comp(other: LongLike): number {
    return this.compare(other);
  }
  divide(divisor: LongLike): Int64 {
    const d = this.other(divisor);
    if (d === 0n) throw new Error('division by zero');
    return this.make(this.big() / d);
  }
  div(divisor: LongLike): Int64 {
    return this.divide(divisor);
  }
  equals(other: LongLike): boolean {
    return this.big() === this.other(other);
  }
  eq(other: LongLike): boolean {
    return this.equals(other);
  }
  getHighBits(): number {
    return this.high;
  }
  getHighBitsUnsigned(): number {
    return this.high >>> 0;
  }
  getLowBits(): number {
    return this.low;
  }
  getLowBitsUnsigned(): number {
    return this.low >>> 0;
  }
  getNumBitsAbs(): number {
    const v = this.big();
    const abs = v < 0n ? (v === -(1n << 63n) ? 1n << 63n : -v) : v;
    return abs === 0n ? 1 : abs.toString(2).length;
  }
  greaterThan(other: LongLike): boolean {
    return this.compare(other) > 0;
  }
  gt(other: LongLike): boolean {
    return this.greaterThan(other);
  }
  greaterThanOrEqual(other: LongLike): boolean {
    return this.compare(other) >= 0;
  }
  gte(other: LongLike): boolean {
    return this.greaterThanOrEqual(other);
  }
  ge(other: LongLike): boolean {
    return this.greaterThanOrEqual(other);
  }
  isEven(): boolean {
    return (this.low & 1) === 0;
  }
  isNegative(): boolean {
    return this.big() < 0n;
  }
  isOdd(): boolean {
    return (this.low & 1) === 1;
  }
  isPositive(): boolean {
    return this.big() >= 0n;
  }
  isSafeInteger(): boolean {
    const v = this.big();
    return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER);
  }
  isZero(): boolean {
    return this.big() === 0n;
  }
  eqz(): boolean {
    return this.isZero();
  }
  lessThan(other: LongLike): boolean {
    return this.compare(other) < 0;
  }
  lt(other: LongLike): boolean {
    return this.lessThan(other);
  }
  lessThanOrEqual(other: LongLike): boolean {
    return this.compare(other) <= 0;
  }
  lte(other: LongLike): boolean {
    return this.lessThanOrEqual(other);
  }
  le(other: LongLike): boolean {
    return this.lessThanOrEqual(other);
  }
  modulo(other: LongLike): Int64 {
    const d = this.other(other);
    if (d === 0n) throw new Error('division by zero');
    return this.make(this.big() % d);
  }
  mod(other: LongLike): Int64 {
    return this.modulo(other);
  }
  rem(other: LongLike): Int64 {
    return this.modulo(other);
  }
  multiply(multiplier: LongLike): Int64 {
    return this.make(this.big() * this.other(multiplier));
  }
  mul(multiplier: LongLike): Int64 {
    return this.multiply(multiplier);
  }
  negate(): Int64 {
    return this.make(-this.big());
  }
  neg(): Int64 {
    return this.negate();
  }
  not(): Int64 {
    return this.make(~this.big());
  }
  countLeadingZeros(): number {
    const b = BigInt.asUintN(64, this.big());
    return b === 0n ? 64 : 64 - b.toString(2).length;
  }
  clz(): number {
    return this.countLeadingZeros();
  }
  countTrailingZeros(): number {
    let b = BigInt.asUintN(64, this.big());
    if (b === 0n) return 64;
    let n = 0;
    while ((b & 1n) === 0n) {
      b >>= 1n;
      n++;
    }
    return n;
  }
  ctz(): number {
    return this.countTrailingZeros();
  }
  notEquals(other: LongLike): boolean {
    return !this.equals(other);
  }
  neq(other: LongLike): boolean {
    return this.notEquals(other);
  }
  ne(other: LongLike): boolean {
    return this.notEquals(other);
  }
  or(other: LongLike): Int64 {
    return this.make(this.big() | this.other(other));
  }
  shiftLeft(numBits: number | Long): Int64 {
    return this.make(this.big() << BigInt(shiftOf(numBits)));
  }
  shl(numBits: number | Long): Int64 {
    return this.shiftLeft(numBits);
  }
  shiftRight(numBits: number | Long): Int64 {
    // Arithmetic shift of the bit pattern, even for unsigned values: exactly what `long` does.
    const bits = (BigInt(this.high) << 32n) | BigInt(this.low >>> 0);
    return this.make(bits >> BigInt(shiftOf(numBits)));
  }
  shr(numBits: number | Long): Int64 {
    return this.shiftRight(numBits);
  }
  shiftRightUnsigned(numBits: number | Long): Int64 {
    return this.make(BigInt.asUintN(64, this.big()) >> BigInt(shiftOf(numBits)));
  }
  shru(numBits: number | Long): Int64 {
    return this.shiftRightUnsigned(numBits);
  }
  shr_u(numBits: number | Long): Int64 {
    return this.shiftRightUnsigned(numBits);
  }
  rotateLeft(numBits: number | Long): Int64 {
    const n = BigInt(shiftOf(numBits));
    const b = BigInt.asUintN(64, this.big());
    return this.make((b << n) | (b >> ((64n - n) & 63n)));
  }
  rotl(numBits: number | Long): Int64 {
    return this.rotateLeft(numBits);
  }
  rotateRight(numBits: number | Long): Int64 {
    const n = BigInt(shiftOf(numBits));
    const b = BigInt.asUintN(64, this.big());
    return this.make((b >> n) | (b << ((64n - n) & 63n)));
  }
  rotr(numBits: number | Long): Int64 {
    return this.rotateRight(numBits);
  }
  subtract(subtrahend: LongLike): Int64 {
    return this.make(this.big() - this.other(subtrahend));
  }
  sub(subtrahend: LongLike): Int64 {
    return this.subtract(subtrahend);
  }
  toBigInt(): bigint {
    return this.big();
  }
  toInt(): number {
    return this.unsigned ? this.low >>> 0 : this.low;
  }
  toNumber(): number {
    return Number(this.big());
  }
  toBytes(le?: boolean): number[] {
    return le ? this.toBytesLE() : this.toBytesBE();
  }
  toBytesLE(): number[] {
    return this.toBytesBE().reverse();
  }
  toBytesBE(): number[] {
    const b = BigInt.asUintN(64, this.big());
    const out: number[] = [];
    for (let i = 7; i >= 0; i--) out.push(Number((b >> BigInt(i * 8)) & 0xffn));
    return out;
  }
  toSigned(): Int64 {
    return this.unsigned ? new Int64(this.low, this.high, false) : this;
  }
  toString(radix = 10): string {
    return this.big().toString(radix);
  }
  toUnsigned(): Int64 {
    return this.unsigned ? this : new Int64(this.low, this.high, true);
  }
  xor(other: LongLike): Int64 {
    return this.make(this.big() ^ this.other(other));
  }
  /** Lets `Number(x)` and arithmetic coercion work, like `long`'s `valueOf`-less class via `toNumber`. */
  valueOf(): number {
    return this.toNumber();
  }
}
