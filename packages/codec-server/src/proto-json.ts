/**
 * Proto3 JSON mapping of `temporal.api.common.v1.Payload` and `Payloads`, the body format of
 * codec-server requests and responses (what the Web UI and `temporal --codec-endpoint` send).
 *
 * - `bytes` are base64 (standard or URL-safe alphabet, padding optional on input; standard with
 *   padding on output);
 * - `int64 sizeBytes` is a decimal string on output; a string or an integer number on input;
 * - field names are camelCase on output; the original snake_case names
 *   (`external_payloads`, `size_bytes`) are accepted on input, as proto3 JSON parsers do;
 * - default values are omitted on output (empty `data`, zero `sizeBytes`, empty lists/maps);
 * - unknown fields are ignored on input, `null` means "absent".
 *
 * @module
 */
import { type ExternalPayloadDetails, Int64, type LongLike, type Payload } from '@x/storage-driver-core';
import { badRequest } from './errors';

/** A payload in proto3 JSON form. */
export interface PayloadJson {
  /** Metadata values, base64. */
  metadata?: Record<string, string>;
  /** Data, base64. */
  data?: string;
  /** Details of externally stored payloads; `sizeBytes` is an int64 as a decimal string. */
  externalPayloads?: { sizeBytes?: string }[];
}

/** A `temporal.api.common.v1.Payloads` message in proto3 JSON form: the codec-server body. */
export interface PayloadsJson {
  /** The payloads, in order. */
  payloads: PayloadJson[];
}

const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;
const INT64 = /^-?\d{1,20}$/;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Reads an own field by its camelCase or snake_case name; `null` counts as absent. */
function field(obj: Record<string, unknown>, camel: string, snake: string): unknown {
  const value = Object.hasOwn(obj, camel) ? obj[camel] : Object.hasOwn(obj, snake) ? obj[snake] : undefined;
  return value === null ? undefined : value;
}

/**
 * Decodes proto3 JSON base64 (standard or URL-safe alphabet, with or without padding).
 *
 * @throws CodecServerError 400 `E_BAD_REQUEST` if `value` is not a base64 string.
 */
export function base64ToBytes(value: unknown, what: string, index?: number): Uint8Array {
  if (typeof value !== 'string') throw badRequest(`${what} must be a base64 string`, index);
  const trimmed = value.replace(/=+$/, '');
  const urlSafe = /[-_]/.test(trimmed);
  if (!BASE64.test(value) || trimmed.length % 4 === 1 || (urlSafe && /[+/]/.test(trimmed))) {
    throw badRequest(`${what} is not valid base64`, index);
  }
  const buf = Buffer.from(trimmed, urlSafe ? 'base64url' : 'base64');
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
}

/** Standard base64 with padding, as proto3 JSON writes `bytes`. */
export function bytesToBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('base64');
}

function parseSizeBytes(value: unknown, index: number): Int64 | undefined {
  if (value === undefined) return undefined;
  let big: bigint;
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw badRequest('externalPayloads[].sizeBytes must be an integer', index);
    big = BigInt(value);
  } else if (typeof value === 'string' && INT64.test(value)) {
    big = BigInt(value);
  } else {
    throw badRequest('externalPayloads[].sizeBytes must be an int64 (decimal string or integer)', index);
  }
  if (big < INT64_MIN || big > INT64_MAX) throw badRequest('externalPayloads[].sizeBytes is out of int64 range', index);
  return Int64.fromBigInt(big);
}

/**
 * Parses one payload from proto3 JSON.
 *
 * @param index - position in the request, for error messages.
 * @throws CodecServerError 400 `E_BAD_REQUEST` on any malformed field.
 */
export function payloadFromJson(json: unknown, index = 0): Payload {
  if (!isRecord(json)) throw badRequest('each payload must be a JSON object', index);
  const payload: Payload = {};
  const metadata = field(json, 'metadata', 'metadata');
  if (metadata !== undefined) {
    if (!isRecord(metadata)) throw badRequest('payload.metadata must be an object', index);
    const out: Record<string, Uint8Array> = {};
    for (const [key, value] of Object.entries(metadata)) {
      // defineProperty keeps a hostile `__proto__` key a plain own property.
      Object.defineProperty(out, key, {
        value: base64ToBytes(value, `payload.metadata[${JSON.stringify(key)}]`, index),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    payload.metadata = out;
  } else {
    payload.metadata = {};
  }
  const data = field(json, 'data', 'data');
  payload.data = data === undefined ? new Uint8Array(0) : base64ToBytes(data, 'payload.data', index);
  const external = field(json, 'externalPayloads', 'external_payloads');
  if (external !== undefined) {
    if (!Array.isArray(external)) throw badRequest('payload.externalPayloads must be an array', index);
    payload.externalPayloads = external.map((details): ExternalPayloadDetails => {
      if (!isRecord(details)) throw badRequest('payload.externalPayloads[] must be objects', index);
      const sizeBytes = parseSizeBytes(field(details, 'sizeBytes', 'size_bytes'), index);
      return sizeBytes === undefined ? {} : { sizeBytes };
    });
  }
  return payload;
}

/**
 * Parses a `Payloads` body (`{"payloads":[...]}`); a missing or `null` `payloads` is an empty
 * list, as in proto3 JSON.
 *
 * @throws CodecServerError 400 `E_BAD_REQUEST` if the body is not a `Payloads` message.
 */
export function payloadsFromJson(json: unknown): Payload[] {
  if (!isRecord(json)) throw badRequest('body must be a JSON object {"payloads":[...]}');
  const list = field(json, 'payloads', 'payloads');
  if (list === undefined) return [];
  if (!Array.isArray(list)) throw badRequest('"payloads" must be an array');
  return list.map((p, i) => payloadFromJson(p, i));
}

function sizeBytesToString(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  let big: bigint;
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'string') {
    big = BigInt(value);
  } else {
    big = Int64.fromValue(value as LongLike).toBigInt();
  }
  return big === 0n ? undefined : big.toString();
}

/**
 * Writes one payload as proto3 JSON (camelCase, base64, defaults omitted).
 *
 * @throws TypeError if metadata values or data are not `Uint8Array`s.
 */
export function payloadToJson(payload: Payload): PayloadJson {
  const out: PayloadJson = {};
  const metadata = payload.metadata;
  if (metadata && Object.keys(metadata).length > 0) {
    const m: Record<string, string> = {};
    for (const [key, value] of Object.entries(metadata)) {
      if (!(value instanceof Uint8Array))
        throw new TypeError(`payload.metadata[${JSON.stringify(key)}] must be a Uint8Array`);
      Object.defineProperty(m, key, {
        value: bytesToBase64(value),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    out.metadata = m;
  }
  if (payload.data !== undefined && payload.data !== null) {
    if (!(payload.data instanceof Uint8Array)) throw new TypeError('payload.data must be a Uint8Array');
    if (payload.data.length > 0) out.data = bytesToBase64(payload.data);
  }
  if (payload.externalPayloads && payload.externalPayloads.length > 0) {
    out.externalPayloads = payload.externalPayloads.map((d) => {
      const sizeBytes = sizeBytesToString(d?.sizeBytes);
      return sizeBytes === undefined ? {} : { sizeBytes };
    });
  }
  return out;
}

/** Writes a `Payloads` body (`{"payloads":[...]}`). */
export function payloadsToJson(payloads: Payload[]): PayloadsJson {
  return { payloads: payloads.map(payloadToJson) };
}
