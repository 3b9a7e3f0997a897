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
 * The part of {@link buildStorageKey}'s key before `d/sha256/{hex}` (`v0/` or
 * `v0/ns/{namespace}/wt/{type}/wi/{id}/ri/{runId}/`): every payload of a batch shares it, so it is
 * built once per batch.
 *
 * @throws TypeError if `target.kind` is unknown or a target field is not a string.
 */
export function storageKeyPrefix(target: StorageDriverTargetInfo | undefined | null): string {
  if (target === undefined || target === null) return 'v0/';
  const ns = encodeKeySegment(target.namespace);
  const type = encodeKeySegment(target.type);
  const id = encodeKeySegment(target.id);
  const run = encodeKeySegment(target.runId);
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
  /** `none` for `v0/d/sha256/...` keys. */
  kind: 'workflow' | 'activity' | 'none';
  /** Encoded path segments, in order, e.g. `['v0','ns','default','wt',...,'d','sha256','<hex>']`. */
  segments: string[];
  /** The SHA-256 digest at the end of the key. */
  sha256: string;
}

/** Options of {@link parseStorageKey}. */
export interface ParseStorageKeyOptions {
  /**
   * `true` (default): accept only keys exactly as {@link buildStorageKey} writes them, so every
   * object has exactly one key — no escape of a character the spec leaves as is (`%2E` for `.`,
   * `%41` for `A`), no raw `~`. Backends that map keys to paths (filesystem) rely on this.
   * `false`: also accept the spellings of other SDKs' drivers (e.g. Python's `urllib.parse.quote`
   * leaves `~` raw and escapes `!*'()`); the structure and character set are still enforced.
   */
  canonical?: boolean;
}

const SEGMENT = /^(?:[A-Za-z0-9!\-_.*'()]|%[0-9A-F]{2})*$/;
const LENIENT_SEGMENT = /^(?:[A-Za-z0-9!\-_.*'()~]|%[0-9A-F]{2})*$/;
const ESCAPE = /%([0-9A-F]{2})/g;
const MAX_KEY_LENGTH = 1 << 20;

/**
 * Strictly parses a key that {@link buildStorageKey} can produce. Use it on keys taken from
 * claims (untrusted input) before touching a backend: it rejects anything outside the grammar —
 * absolute paths, `\`, NUL, lower-case or malformed escapes, wrong structure, and (by default)
 * non-canonical spellings — while accepting every key the spec produces (including `.`/`..`
 * segments, which are legal, and empty segments written by older drivers).
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
  let kind: ParsedStorageKey['kind'];
  if (n === 4) kind = 'none';
  else if (n === 12 && segments[1] === 'ns' && segments[3] === 'wt' && segments[5] === 'wi' && segments[7] === 'ri')
    kind = 'workflow';
  else if (n === 12 && segments[1] === 'ns' && segments[3] === 'at' && segments[5] === 'ai' && segments[7] === 'ri')
    kind = 'activity';
  else throw bad('unexpected structure');
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
  return { kind, segments, sha256 };
}

/** Options of {@link foldStorageKey}. */
export interface FoldStorageKeyOptions {
  /** Keys up to this many characters (keys are ASCII: characters = bytes) are returned unchanged. */
  maxLength: number;
  /** In a longer key, each target segment longer than this many characters is folded. */
  segmentLength: number;
  /**
   * What a folded segment starts with, before the 64 hex digits: `'%7E'` (default) keeps the key
   * canonical for {@link parseStorageKey}; `'~'` is what `@x/storage-driver-s3` has always written.
   * Neither can be produced by {@link encodeKeySegment} (which escapes `~`), so a folded segment
   * never equals an unfolded one.
   */
  marker?: '%7E' | '~';
}

const keyTextEncoder = new TextEncoder();

/**
 * Makes a key built by {@link buildStorageKey} fit a backend's key-length limit (S3's 1024 bytes, a
 * PostgreSQL btree entry…). Keys of at most `maxLength` characters are returned unchanged; in a
 * longer one (ids of thousands of characters, or non-ASCII ids that percent-encoding triples) each
 * target segment (namespace, type, id, run id) longer than `segmentLength` is replaced by `marker`
 * + the lower-case hex SHA-256 of the encoded segment. The `v0/` prefix, the labels and the
 * content digest are kept, so the key stays scoped to its target and content-addressed; the claim
 * carries the folded key.
 */
export function foldStorageKey(key: string, options: FoldStorageKeyOptions): string {
  if (key.length <= options.maxLength) return key;
  const marker = options.marker ?? '%7E';
  const segments = key.split('/');
  // Target values sit at even positions between `v0` and `d/sha256/<hex>`.
  for (let i = 2; i < segments.length - 3; i += 2) {
    const s = segments[i] as string;
    if (s.length > options.segmentLength) segments[i] = marker + sha256Hex(keyTextEncoder.encode(s));
  }
  return segments.join('/');
}
