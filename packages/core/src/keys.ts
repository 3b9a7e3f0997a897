/**
 * Content-addressed storage keys, identical to Temporal's official S3 driver key spec so that
 * lifecycle rules and cross-SDK interop work.
 *
 * - workflow: `v0/ns/{namespace}/wt/{workflowType}/wi/{workflowId}/ri/{runId}/d/sha256/{hex}`
 * - activity: `v0/ns/{namespace}/at/{activityType}/ai/{activityId}/ri/{runId}/d/sha256/{hex}`
 * - no target: `v0/d/sha256/{hex}`
 *
 * @module
 */
import { StorageDriverError, StorageDriverErrorCode } from './errors';
import { isSha256Hex, sha256Hex } from './hash';
import type { StorageDriverTargetInfo } from './types';

const textEncoder = new TextEncoder();
const HEX = '0123456789ABCDEF';
/** Bytes that are left as is: `A-Z a-z 0-9 ! - _ . * ' ( )`. */
const SAFE = new Uint8Array(128);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!-_.*'()") SAFE[c.charCodeAt(0)] = 1;

/** Placeholder written for a missing (undefined, null or empty) target value. */
export const MISSING_KEY_VALUE = 'null';

/**
 * Percent-encodes one dynamic key segment over its UTF-8 bytes, escaping everything except
 * `A-Z a-z 0-9 ! - _ . * ' ( )`, with upper-case hex (`/`→`%2F`, space→`%20`, `é`→`%C3%A9`).
 * `undefined`, `null` and the empty string become the literal `null`, as in Temporal's official
 * drivers (an empty id is treated as absent).
 *
 * @throws TypeError if `value` is neither a string nor `undefined`/`null`.
 */
export function encodeKeySegment(value: string | undefined | null): string {
  if (value === undefined || value === null || value === '') return MISSING_KEY_VALUE;
  if (typeof value !== 'string') throw new TypeError(`key segment must be a string, got ${typeof value}`);
  // Fast path: nothing to escape.
  let plain = true;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c >= 128 || SAFE[c] !== 1) {
      plain = false;
      break;
    }
  }
  if (plain) return value;
  let out = '';
  for (const b of textEncoder.encode(value)) {
    if (b < 128 && SAFE[b] === 1) out += String.fromCharCode(b);
    else out += `%${HEX[b >> 4]}${HEX[b & 15]}`;
  }
  return out;
}

/**
 * Builds the content-addressed key for a payload whose stored bytes hash to `sha256Hex`, scoped
 * by `target` (DESIGN §4.4).
 *
 * @throws TypeError if `sha256Hex` is not 64 lower-case hex characters, `target.kind` is unknown,
 *   or a target field is not a string.
 */
export function buildStorageKey(target: StorageDriverTargetInfo | undefined | null, sha256Hex: string): string {
  if (!isSha256Hex(sha256Hex)) throw new TypeError('sha256Hex must be 64 lower-case hex characters');
  return `${storageKeyPrefix(target)}d/sha256/${sha256Hex}`;
}

/**
 * Encodes one dynamic key segment; `undefined`, `null` and `''` must give the literal `null`.
 * {@link encodeKeySegment} (the S3 key spec) unless a backend's official drivers escape another
 * set of characters (Temporal's GCS drivers keep readable Unicode and escape only what GCS
 * discourages).
 */
export type KeySegmentEncoder = (value: string | undefined | null) => string;

/**
 * The part of {@link buildStorageKey}'s key before `d/sha256/{hex}` (`v0/` or
 * `v0/ns/{namespace}/wt/{type}/wi/{id}/ri/{runId}/`): every payload of a batch shares it, so it is
 * built once per batch.
 *
 * `encode` escapes each segment (default: {@link encodeKeySegment}, the S3 key spec).
 *
 * @throws TypeError if `target.kind` is unknown or a target field is not a string.
 */
export function storageKeyPrefix(
  target: StorageDriverTargetInfo | undefined | null,
  encode: KeySegmentEncoder = encodeKeySegment,
): string {
  if (target === undefined || target === null) return 'v0/';
  const ns = encode(target.namespace);
  const type = encode(target.type);
  const id = encode(target.id);
  const run = encode(target.runId);
  switch (target.kind) {
    case 'workflow':
      return `v0/ns/${ns}/wt/${type}/wi/${id}/ri/${run}/`;
    case 'activity':
      return `v0/ns/${ns}/at/${type}/ai/${id}/ri/${run}/`;
    default:
      throw new TypeError(`Unknown target kind: ${String((target as { kind?: unknown }).kind)}`);
  }
}

/** A key parsed by {@link parseStorageKey}. Segment values are still percent-encoded. */
export interface ParsedStorageKey {
  /**
   * The key's shape:
   * - `workflow` / `activity`: `v0/ns/{ns}/wt|at/{type}/wi|ai/{id}/ri/{run}/d/sha256/{hex}` (and,
   *   when parsed leniently, the same without `ns/{ns}`, which older Python drivers and Temporal's
   *   Python Redis sample write for an empty namespace);
   * - `namespace`: `v0/ns/{ns}/d/sha256/{hex}`, what Temporal's official drivers (and every
   *   driver built on {@link ContentAddressedStorageDriver}) write when the full key would be
   *   longer than the backend's limit (see {@link fitStorageKey});
   * - `none`: `v0/d/sha256/{hex}`, a payload stored without a target.
   */
  kind: 'workflow' | 'activity' | 'namespace' | 'none';
  /** Encoded path segments, in order, e.g. `['v0','ns','default','wt',...,'d','sha256','<hex>']`. */
  segments: string[];
  /** The namespace segment (still percent-encoded), or `undefined` where the key has none. */
  namespace: string | undefined;
  /** The SHA-256 digest at the end of the key. */
  sha256: string;
}

/** Options of {@link parseStorageKey}. */
export interface ParseStorageKeyOptions {
  /**
   * `true` (default): accept only keys exactly as {@link buildStorageKey} and
   * {@link fitStorageKey} write them, so every object has exactly one key — no escape of a
   * character the spec leaves as is (`%2E` for `.`, `%41` for `A`), no raw `~`. Backends that map
   * keys to paths (filesystem) rely on this.
   * `false`: also accept the spellings and shapes of other SDKs' drivers (e.g. the
   * `urllib.parse.quote` spelling of Temporal's Python Redis sample, which leaves `~` raw and
   * escapes `!*'()`, and its keys without `ns/{namespace}` for an empty namespace); the structure
   * and character set are still enforced.
   * @default true
   */
  canonical?: boolean;
}

const SEGMENT = /^(?:[A-Za-z0-9!\-_.*'()]|%[0-9A-F]{2})*$/;
const LENIENT_SEGMENT = /^(?:[A-Za-z0-9!\-_.*'()~]|%[0-9A-F]{2})*$/;
const ESCAPE = /%([0-9A-F]{2})/g;
const MAX_KEY_LENGTH = 1 << 20;

/** Labels of the target part of a key (between `v0` and `d/sha256/{hex}`), by shape. */
function targetShape(
  segments: readonly string[],
  lenient: boolean,
): { kind: ParsedStorageKey['kind']; namespace: string | undefined } | undefined {
  const n = segments.length;
  const at = (i: number) => segments[i];
  const scope = (from: number): 'workflow' | 'activity' | undefined => {
    if (at(from) === 'wt' && at(from + 2) === 'wi' && at(from + 4) === 'ri') return 'workflow';
    if (at(from) === 'at' && at(from + 2) === 'ai' && at(from + 4) === 'ri') return 'activity';
    return undefined;
  };
  if (n === 4) return { kind: 'none', namespace: undefined };
  if (n === 6 && at(1) === 'ns') return { kind: 'namespace', namespace: at(2) };
  if (n === 12 && at(1) === 'ns') {
    const kind = scope(3);
    return kind === undefined ? undefined : { kind, namespace: at(2) };
  }
  if (n === 10 && lenient) {
    const kind = scope(1);
    return kind === undefined ? undefined : { kind, namespace: undefined };
  }
  return undefined;
}

/**
 * Strictly parses a storage key. Use it on keys taken from claims (untrusted input) before
 * touching a backend: it rejects anything outside the grammar — absolute paths, `\`, NUL,
 * lower-case or malformed escapes, wrong structure, and (by default) non-canonical spellings —
 * while accepting every key {@link buildStorageKey} and {@link fitStorageKey} produce (including
 * `.`/`..` segments, which are legal, empty segments written by older drivers, and the
 * `%7E{hex}` segments this project's drivers wrote for over-long keys before they followed the
 * official rule).
 *
 * @throws StorageDriverError `E_INVALID_CLAIM` if `key` is not a well-formed storage key.
 */
export function parseStorageKey(key: unknown, options: ParseStorageKeyOptions = {}): ParsedStorageKey {
  const canonical = options.canonical !== false;
  const bad = (why: string) =>
    new StorageDriverError(StorageDriverErrorCode.INVALID_CLAIM, `Invalid storage key in claim: ${why}`);
  if (typeof key !== 'string') throw bad('not a string');
  if (key.length > MAX_KEY_LENGTH) throw bad('too long');
  const segments = key.split('/');
  const n = segments.length;
  const sha256 = segments[n - 1];
  if (n < 4 || segments[n - 3] !== 'd' || segments[n - 2] !== 'sha256' || !isSha256Hex(sha256)) {
    throw bad('must end with d/sha256/<64 lower-case hex>');
  }
  if (segments[0] !== 'v0') throw bad('must start with v0/');
  const shape = targetShape(segments, !canonical);
  if (shape === undefined) throw bad('unexpected structure');
  const grammar = canonical ? SEGMENT : LENIENT_SEGMENT;
  for (const s of segments) {
    if (!grammar.test(s)) throw bad('segment has characters the key spec escapes');
    if (canonical && s.includes('%')) {
      for (const m of s.matchAll(ESCAPE)) {
        const byte = Number.parseInt(m[1] as string, 16);
        if (byte < 128 && SAFE[byte] === 1) throw bad('non-canonical escape of a character the key spec leaves as is');
      }
    }
  }
  return { kind: shape.kind, segments, namespace: shape.namespace, sha256 };
}

/**
 * Longest storage key (in bytes; keys are ASCII) that {@link ContentAddressedStorageDriver}
 * writes by default: S3's and GCS's object-name limit, and the length above which Temporal's
 * official drivers (Python `temporalio` ≥ 1.35 S3, Go GCS) write the namespace digest key instead.
 */
export const MAX_STORAGE_KEY_LENGTH = 1024;

/**
 * The key of a payload whose stored bytes hash to `digest` for `target`, no longer than
 * `maxLength` bytes of UTF-8 (S3-spec keys are ASCII; another `encode` may keep Unicode), following the rule of Temporal's
 * official drivers so that every SDK writes the same object:
 *
 * 1. the full key of {@link buildStorageKey} when it fits;
 * 2. otherwise the namespace digest key `v0/ns/{namespace}/d/sha256/{hex}` (the namespace stays in
 *    the key so prefix-scoped permissions and lifecycle rules keep working);
 * 3. otherwise (a namespace of hundreds of bytes, which no official driver can store) the same
 *    with the namespace replaced by `%7E` + the SHA-256 hex of its encoded form; our encoder
 *    always escapes `~`, so such a segment never equals a real namespace's.
 *
 * A key without a target (`v0/d/sha256/{hex}`, 74 characters) is always returned as is.
 *
 * @default maxLength 1024 ({@link MAX_STORAGE_KEY_LENGTH})
 * @throws TypeError if `digest` is not 64 lower-case hex characters, `target.kind` is unknown,
 *   a target field is not a string, or `maxLength` is below 147.
 */
export function fitStorageKey(
  target: StorageDriverTargetInfo | undefined | null,
  digest: string,
  maxLength: number = MAX_STORAGE_KEY_LENGTH,
  encode: KeySegmentEncoder = encodeKeySegment,
): string {
  if (!(maxLength >= MIN_STORAGE_KEY_LENGTH))
    throw new TypeError(`maxLength must be at least ${MIN_STORAGE_KEY_LENGTH}`);
  if (!isSha256Hex(digest)) throw new TypeError('digest must be 64 lower-case hex characters');
  const key = `${storageKeyPrefix(target, encode)}d/sha256/${digest}`;
  if (utf8Length(key) <= maxLength || target === undefined || target === null) return key;
  const ns = encode(target.namespace);
  const short = `v0/ns/${ns}/d/sha256/${digest}`;
  if (utf8Length(short) <= maxLength) return short;
  return `v0/ns/%7E${sha256Hex(keyTextEncoder.encode(ns))}/d/sha256/${digest}`;
}

/** Length of the longest key {@link fitStorageKey} can fall back to (`v0/ns/%7E{64}/d/sha256/{64}`). */
const MIN_STORAGE_KEY_LENGTH = 'v0/ns/%7E/d/sha256/'.length + 128;

const keyTextEncoder = new TextEncoder();
const utf8Length = (text: string) => Buffer.byteLength(text, 'utf8');
