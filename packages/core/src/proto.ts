/**
 * Binary protobuf encoding of `temporal.api.common.v1.Payload`, written here so core has no
 * runtime dependency. Output is byte-identical to `@temporalio/proto` 1.24 (protobufjs 8, proto3
 * implicit presence): fields in number order, map entries in `Object.keys` order with key and
 * value always written, `data` omitted when empty, and `size_bytes` omitted when zero (a `Long`
 * with `low` and `high` both 0, or the number `0`). Every `externalPayloads` element is written,
 * even when empty.
 *
 * ```proto
 * message Payload {
 *   map<string, bytes> metadata = 1;
 *   bytes data = 2;
 *   repeated ExternalPayloadDetails external_payloads = 3;
 *   message ExternalPayloadDetails { int64 size_bytes = 1; }
 * }
 * ```
 *
 * @module
 */
import { StorageDriverError, StorageDriverErrorCode } from './errors';
import { Int64, toInt64Bits } from './long';
import type { ExternalPayloadDetails, Payload } from './types';

const textEncoder = new TextEncoder();
/** A UTF-16 surrogate without its pair: not encodable as UTF-8. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const textDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * UTF-8 of metadata keys already seen (`encoding`, `messageType`, …: a handful per deployment,
 * the same on every payload), so a batch does not check and encode them once per payload. Bounded:
 * past {@link MAX_CACHED_KEYS} distinct keys, the rest are encoded each time.
 */
const encodedKeys = new Map<string, Uint8Array>();
const MAX_CACHED_KEYS = 256;

/** UTF-8 of a metadata key. @throws TypeError for a lone surrogate (not encodable). */
function encodeKey(k: string): Uint8Array {
  const cached = encodedKeys.get(k);
  if (cached !== undefined) return cached;
  if (LONE_SURROGATE.test(k)) {
    throw new TypeError(
      `payload.metadata key ${JSON.stringify(k)} is not well-formed UTF-16 (lone surrogate); it cannot round-trip through protobuf`,
    );
  }
  const key = textEncoder.encode(k);
  if (encodedKeys.size < MAX_CACHED_KEYS && k.length <= 256) encodedKeys.set(k, key);
  return key;
}
/** Nesting limit for skipped groups, as protobufjs and protoc (`default_recursion_limit`). */
const RECURSION_LIMIT = 100;

function varintSize(value: number): number {
  // value is a non-negative 32-bit length
  if (value < 0x80) return 1;
  if (value < 0x4000) return 2;
  if (value < 0x200000) return 3;
  if (value < 0x10000000) return 4;
  return 5;
}

function varint64Size(value: bigint): number {
  let v = BigInt.asUintN(64, value);
  let n = 1;
  while (v >= 0x80n) {
    v >>= 7n;
    n++;
  }
  return n;
}

function isSet<T>(obj: object, field: string, value: T | null | undefined): value is T {
  return value !== null && value !== undefined && Object.hasOwn(obj, field);
}

/** protobufjs' proto3 presence test for an `int64` field: zero is not written. */
function isZeroInt64(value: unknown): boolean {
  if (typeof value === 'object' && value !== null) {
    const { low, high } = value as { low?: unknown; high?: unknown };
    return !(low || high);
  }
  return value === 0;
}

function asBytes(value: unknown, what: string): Uint8Array {
  if (value instanceof Uint8Array) return value;
  throw new TypeError(`${what} must be a Uint8Array`);
}

class Writer {
  pos = 0;
  constructor(readonly buf: Uint8Array) {}
  byte(b: number): void {
    this.buf[this.pos++] = b;
  }
  varint(value: number): void {
    let v = value >>> 0;
    while (v >= 0x80) {
      this.buf[this.pos++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.buf[this.pos++] = v;
  }
  varint64(value: bigint): void {
    let v = BigInt.asUintN(64, value);
    while (v >= 0x80n) {
      this.buf[this.pos++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buf[this.pos++] = Number(v);
  }
  bytes(b: Uint8Array): void {
    const n = b.length;
    this.varint(n);
    if (n <= 32) {
      // Metadata values ("binary/plain", "json/plain"): a loop costs less than `set()`'s call.
      const buf = this.buf;
      let pos = this.pos;
      for (let i = 0; i < n; i++) buf[pos++] = b[i] as number;
    } else this.buf.set(b, this.pos);
    this.pos += n;
  }
}

/** A payload's serialized layout: its size, computed without allocating the output yet. */
export interface PayloadPlan {
  /** Size of the serialized Payload, in bytes. */
  size: number;
  entries: { key: Uint8Array; value: Uint8Array; size: number }[];
  data: Uint8Array | undefined;
  sizes: (bigint | undefined)[];
}

/**
 * Plans the encoding of `payload` (validation and sizes, no output yet): {@link encodePlannedPayload}
 * then writes it. For callers that check sizes of a whole batch before encoding any of it.
 *
 * @throws TypeError as {@link encodePayload}.
 */
export function planPayload(payload: Payload): PayloadPlan {
  if (typeof payload !== 'object' || payload === null) throw new TypeError('payload must be an object');
  let size = 0;
  const entries: PayloadPlan['entries'] = [];
  const metadata = payload.metadata;
  if (isSet(payload, 'metadata', metadata)) {
    if (typeof metadata !== 'object') throw new TypeError('payload.metadata must be an object');
    for (const k of Object.keys(metadata)) {
      const key = encodeKey(k);
      const value = asBytes(metadata[k], `payload.metadata[${JSON.stringify(k)}]`);
      const entrySize = 1 + varintSize(key.length) + key.length + 1 + varintSize(value.length) + value.length;
      entries.push({ key, value, size: entrySize });
      size += 1 + varintSize(entrySize) + entrySize;
    }
  }
  let data: Uint8Array | undefined;
  if (isSet(payload, 'data', payload.data)) {
    const bytes = asBytes(payload.data, 'payload.data');
    // proto3 implicit presence: empty bytes are the default and are not written.
    if (bytes.length > 0) {
      data = bytes;
      size += 1 + varintSize(data.length) + data.length;
    }
  }
  const sizes: (bigint | undefined)[] = [];
  const ext = payload.externalPayloads;
  if (isSet(payload, 'externalPayloads', ext)) {
    if (!Array.isArray(ext)) throw new TypeError('payload.externalPayloads must be an array');
    for (const d of ext as ExternalPayloadDetails[]) {
      if (typeof d !== 'object' || d === null) throw new TypeError('payload.externalPayloads[] must be objects');
      const bits =
        isSet(d, 'sizeBytes', d.sizeBytes) && !isZeroInt64(d.sizeBytes) ? toInt64Bits(d.sizeBytes) : undefined;
      sizes.push(bits);
      const inner = bits === undefined ? 0 : 1 + varint64Size(bits);
      size += 1 + varintSize(inner) + inner;
    }
  }
  return { size, entries, data, sizes };
}

/**
 * Serialized size in bytes of `payload` as a `Payload` protobuf, without encoding it.
 *
 * @throws TypeError if `payload` is not a well-formed Payload object (see {@link encodePayload}).
 */
export function encodedPayloadSize(payload: Payload): number {
  return planPayload(payload).size;
}

/**
 * Encodes a Payload to protobuf binary, byte-identical to
 * `temporal.api.common.v1.Payload.encode(payload).finish()` from `@temporalio/proto`. A small
 * result is a view into Node's shared buffer pool (use `byteOffset` and `byteLength` with its
 * `buffer`).
 *
 * @throws TypeError if `payload` is not a well-formed Payload object (e.g. non-bytes data, a
 *   metadata key with a lone UTF-16 surrogate, a `sizeBytes` that is not an integer).
 */
export function encodePayload(payload: Payload): Uint8Array {
  return encodePlannedPayload(planPayload(payload));
}

/** Writes a payload planned by {@link planPayload}. */
export function encodePlannedPayload(p: PayloadPlan): Uint8Array {
  const w = pooledWriter(p.size);
  writeMetadata(w, p);
  if (p.data !== undefined) {
    w.byte(0x12);
    w.bytes(p.data);
  }
  writeSizes(w, p);
  if (w.pos !== p.size) throw new Error(`internal error: encoded ${w.pos} bytes of a ${p.size}-byte plan`);
  return w.buf;
}

/**
 * `data` of at least this many bytes is not copied by {@link encodePlannedPayloadParts}: the
 * serialized payload is then its header, the payload's own `data` and its trailer.
 */
export const PAYLOAD_PARTS_MIN_DATA = 64 * 1024;

/**
 * Writes a payload planned by {@link planPayload} as consecutive pieces whose concatenation is
 * what {@link encodePlannedPayload} returns: one piece, or, when `data` has at least
 * {@link PAYLOAD_PARTS_MIN_DATA} bytes, the header (metadata, `data`'s tag and length), `data`
 * itself (the caller's bytes, not a copy) and the trailer (`externalPayloads`, when present).
 */
export function encodePlannedPayloadParts(p: PayloadPlan): Uint8Array[] {
  const data = p.data;
  if (data === undefined || data.length < PAYLOAD_PARTS_MIN_DATA) return [encodePlannedPayload(p)];
  let headSize = 1 + varintSize(data.length);
  for (const e of p.entries) headSize += 1 + varintSize(e.size) + e.size;
  const head = pooledWriter(headSize);
  writeMetadata(head, p);
  head.byte(0x12);
  head.varint(data.length);
  const tailSize = p.size - headSize - data.length;
  const parts = [head.buf, data];
  if (tailSize > 0) {
    const tail = pooledWriter(tailSize);
    writeSizes(tail, p);
    if (tail.pos !== tailSize) throw new Error(`internal error: encoded a ${tail.pos}-byte trailer of ${tailSize}`);
    parts.push(tail.buf);
  }
  if (head.pos !== headSize) throw new Error(`internal error: encoded a ${head.pos}-byte header of ${headSize}`);
  return parts;
}

/**
 * A writer over `size` bytes of uninitialised memory, every byte of which the caller writes (and
 * checks): no zero fill, and small outputs come from Node's buffer pool (`new Uint8Array(1024)`
 * costs about 0.9 µs, a pool slice and a plain `Uint8Array` view of it about 0.4 µs). A plain view,
 * not the `Buffer`: its `slice()` copies, as callers of a `Uint8Array` expect.
 */
function pooledWriter(size: number): Writer {
  const pooled = Buffer.allocUnsafe(size);
  return new Writer(new Uint8Array(pooled.buffer, pooled.byteOffset, size));
}

function writeMetadata(w: Writer, p: PayloadPlan): void {
  for (const e of p.entries) {
    w.byte(0x0a);
    w.varint(e.size);
    w.byte(0x0a);
    w.bytes(e.key);
    w.byte(0x12);
    w.bytes(e.value);
  }
}

function writeSizes(w: Writer, p: PayloadPlan): void {
  for (const bits of p.sizes) {
    w.byte(0x1a);
    if (bits === undefined) {
      w.varint(0);
    } else {
      w.varint(1 + varint64Size(bits));
      w.byte(0x08);
      w.varint64(bits);
    }
  }
}

function malformed(reason: string, offset: number): StorageDriverError {
  return new StorageDriverError(
    StorageDriverErrorCode.INTEGRITY,
    `Stored object is not a valid Payload protobuf: ${reason} at byte ${offset}`,
  );
}

class Reader {
  pos: number;
  constructor(
    readonly buf: Uint8Array,
    start: number,
    readonly end: number,
  ) {
    this.pos = start;
  }
  done(): boolean {
    return this.pos >= this.end;
  }
  varint32(): number {
    // Fast path, no BigInt: up to 4 bytes (28 bits), every tag and every length under 256 MiB.
    const buf = this.buf;
    const start = this.pos;
    let value = 0;
    for (let i = 0; i < 4 && start + i < this.end; i++) {
      const b = buf[start + i] as number;
      value |= (b & 0x7f) << (7 * i);
      if ((b & 0x80) === 0) {
        this.pos = start + i + 1;
        return value;
      }
    }
    // Lengths and tags: accept up to 10 bytes like protobufjs but require the value to fit 32 bits.
    const v = this.varint64();
    if (v > 0xffffffffn) throw malformed('varint does not fit 32 bits', this.pos);
    return Number(v);
  }
  varint64(): bigint {
    let result = 0n;
    let shift = 0n;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw malformed('truncated varint', this.pos);
      const b = this.buf[this.pos++] as number;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return BigInt.asUintN(64, result);
      shift += 7n;
    }
    throw malformed('varint longer than 10 bytes', this.pos);
  }
  lengthDelimited(): Uint8Array {
    const len = this.varint32();
    if (len > this.end - this.pos) throw malformed('length exceeds buffer', this.pos);
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }
  skip(wireType: number, fieldNumber: number, depth = 0): void {
    if (depth > RECURSION_LIMIT) throw malformed('groups nested too deeply', this.pos);
    switch (wireType) {
      case 0:
        this.varint64();
        return;
      case 1:
        this.advance(8);
        return;
      case 2:
        this.lengthDelimited();
        return;
      case 5:
        this.advance(4);
        return;
      case 3: {
        // group: skip until the matching end-group
        for (;;) {
          const tag = this.varint32();
          const field = tag >>> 3;
          const wt = tag & 7;
          if (field === 0) throw malformed('field number 0', this.pos);
          if (wt === 4) {
            if (field !== fieldNumber) throw malformed('mismatched end-group tag', this.pos);
            return;
          }
          this.skip(wt, field, depth + 1);
        }
      }
      default:
        throw malformed(`invalid wire type ${wireType}`, this.pos);
    }
  }
  private advance(n: number): void {
    if (n > this.end - this.pos) throw malformed('truncated fixed-width field', this.pos);
    this.pos += n;
  }
}

function expectWireType(tag: number, wt: number, r: Reader): void {
  if ((tag & 7) !== wt) throw malformed(`field ${tag >>> 3} has wire type ${tag & 7}, expected ${wt}`, r.pos);
}

function decodeUtf8(bytes: Uint8Array, offset: number): string {
  // Short ASCII keys (all of them in practice): the same string as the decoder's, without its call.
  if (bytes.length <= 32) {
    let ascii = '';
    let i = 0;
    for (; i < bytes.length && (bytes[i] as number) < 0x80; i++) ascii += String.fromCharCode(bytes[i] as number);
    if (i === bytes.length) return ascii;
  }
  try {
    return textDecoder.decode(bytes);
  } catch {
    // proto3 strings must be valid UTF-8 (protobufjs rejects them too); never decode lossily.
    throw malformed('metadata key is not valid UTF-8', offset);
  }
}

/** The value of a map entry without one (zero-length: nothing to share). */
const NO_BYTES = new Uint8Array(0);

function decodeMapEntry(bytes: Uint8Array): [string, Uint8Array] {
  const r = new Reader(bytes, 0, bytes.length);
  let key = '';
  let value: Uint8Array = NO_BYTES;
  while (!r.done()) {
    const tag = r.varint32();
    const field = tag >>> 3;
    if (field === 1) {
      expectWireType(tag, 2, r);
      key = decodeUtf8(r.lengthDelimited(), r.pos);
    } else if (field === 2) {
      expectWireType(tag, 2, r);
      value = r.lengthDelimited();
    } else {
      if (field === 0) throw malformed('field number 0', r.pos);
      r.skip(tag & 7, field);
    }
  }
  return [key, value];
}

function decodeDetails(bytes: Uint8Array): ExternalPayloadDetails {
  const r = new Reader(bytes, 0, bytes.length);
  const details: ExternalPayloadDetails = {};
  while (!r.done()) {
    const tag = r.varint32();
    const field = tag >>> 3;
    if (field === 1) {
      expectWireType(tag, 0, r);
      details.sizeBytes = Int64.fromBigInt(r.varint64());
    } else {
      if (field === 0) throw malformed('field number 0', r.pos);
      r.skip(tag & 7, field);
    }
  }
  return details;
}

/** A Payload as returned by {@link decodePayload}: `metadata` and `data` are always present. */
export interface DecodedPayload extends Payload {
  metadata: Record<string, Uint8Array>;
  data: Uint8Array;
}

/**
 * Decodes protobuf binary into a Payload. `metadata` and `data` are always set (empty when
 * absent on the wire); `externalPayloads` is set only when present. Byte fields are views into
 * `bytes` (no copy). Unknown fields are skipped, as protobuf requires.
 *
 * @throws StorageDriverError `E_INTEGRITY` if the bytes are not a valid Payload encoding
 *   (truncated, bad wire type, over-long varint, length past the end, a metadata key that is
 *   not valid UTF-8, groups nested deeper than 100).
 * @throws TypeError if `bytes` is not a Uint8Array.
 */
export function decodePayload(bytes: Uint8Array): DecodedPayload {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('bytes must be a Uint8Array');
  const r = new Reader(bytes, 0, bytes.length);
  const metadata: Record<string, Uint8Array> = {};
  let data: Uint8Array = bytes.subarray(0, 0);
  const externalPayloads: ExternalPayloadDetails[] = [];
  while (!r.done()) {
    const tag = r.varint32();
    const field = tag >>> 3;
    switch (field) {
      case 1: {
        expectWireType(tag, 2, r);
        const [k, v] = decodeMapEntry(r.lengthDelimited());
        // defineProperty for `__proto__`, the one key whose assignment would set the prototype
        // instead: a hostile key must stay a plain own property.
        if (k === '__proto__') {
          Object.defineProperty(metadata, k, { value: v, enumerable: true, writable: true, configurable: true });
        } else metadata[k] = v;
        break;
      }
      case 2:
        expectWireType(tag, 2, r);
        data = r.lengthDelimited();
        break;
      case 3:
        expectWireType(tag, 2, r);
        externalPayloads.push(decodeDetails(r.lengthDelimited()));
        break;
      case 0:
        throw malformed('field number 0', r.pos);
      default:
        r.skip(tag & 7, field);
    }
  }
  const out: DecodedPayload = { metadata, data };
  if (externalPayloads.length > 0) out.externalPayloads = externalPayloads;
  return out;
}
