/**
 * GCS object names and bucket names: the segment escaping of Temporal's official GCS drivers (Go,
 * Python, TypeScript), and the validation of the bucket and object name a claim carries (claims
 * are untrusted input from workflow history).
 *
 * @module
 */
import {
  MISSING_KEY_VALUE,
  StorageDriverError,
  StorageDriverErrorCode,
  storageKeyValues,
} from '@x/storage-driver-core';

/** Where one payload lives in GCS. */
export interface GcsStorageLocation {
  /** Bucket name. */
  readonly bucket: string;
  /** Object name (the storage key), as written into the claim. */
  readonly key: string;
}

/** Identity of a location: bucket names cannot contain `/`, so `bucket/name` is unambiguous. */
export function locationId(location: GcsStorageLocation): string {
  return `${location.bucket}/${location.key}`;
}

/** Longest GCS object name, in bytes of UTF-8 (the GCS limit). */
export const GCS_MAX_OBJECT_NAME_BYTES = 1024;

/**
 * Characters every official GCS driver escapes in a segment: C0 controls, DEL, C1 controls, and
 * `# [ ] * ? : " < > | / %` (what GCS forbids or discourages, plus `/` so a value cannot add
 * segments and `%` so the escaping stays injective). Everything else, readable Unicode included,
 * is kept.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: the control characters are what it matches
const GCS_UNSAFE = /[\u0000-\u001f\u007f-\u009f#[\]*?:"<>|/%]/g;
/** A lone UTF-16 surrogate (not valid Unicode; cannot be part of a GCS name). */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

const textEncoder = new TextEncoder();

function percentEncode(char: string): string {
  let out = '';
  for (const byte of textEncoder.encode(char)) out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  return out;
}

/**
 * Escapes one object-name segment exactly as Temporal's official GCS drivers do (Go
 * `encodeObjectNameSegment`, Python `_percent_encode`, TypeScript `encodeObjectNameSegment`):
 * `undefined`, `null` and `''` become `null`; the characters above become `%XX` per UTF-8 byte,
 * upper-case hex (`/` → `%2F`, `\u0085` → `%C2%85`); a result of exactly `.` or `..` becomes
 * `%2E` / `%2E%2E` (GCS forbids those names); everything else (space, `+ = @ ~ ! ' ( ) , ; & $`,
 * non-ASCII letters) is kept. A lone UTF-16 surrogate, which no GCS name can hold, is written as
 * U+FFFD — what a Temporal server stores for such an id (protobuf strings are UTF-8), so other
 * SDKs reading the id from the server write the same name.
 *
 * @throws TypeError if `value` is neither a string nor `undefined`/`null`.
 */
export function encodeGcsSegment(value: string | undefined | null): string {
  if (value === undefined || value === null || value === '') return MISSING_KEY_VALUE;
  if (typeof value !== 'string') throw new TypeError(`key segment must be a string, got ${typeof value}`);
  const encoded = value.replace(LONE_SURROGATE, '\ufffd').replace(GCS_UNSAFE, percentEncode);
  if (encoded === '.') return '%2E';
  if (encoded === '..') return '%2E%2E';
  return encoded;
}

/**
 * Whether `segment` is exactly what {@link encodeGcsSegment} writes for some value: no raw
 * character of the escaped set, escapes only of those characters (upper-case hex, whole UTF-8
 * sequences), no raw `.`/`..`, no lone surrogate. So every object has one name, and no segment
 * can hide a `/`, a control character or a dot segment.
 */
export function isGcsSegment(segment: string): boolean {
  if (segment.length === 0) return false;
  let decoded: string;
  try {
    decoded = decodeURIComponent(segment);
  } catch {
    return false; // a raw `%`, a malformed escape, or escapes that are not UTF-8
  }
  if (decoded === MISSING_KEY_VALUE) return segment === MISSING_KEY_VALUE;
  return encodeGcsSegment(decoded) === segment;
}

/** Core's stand-in for a namespace too long for any name (`fitStorageKey`). */
const HASHED_NAMESPACE = /^%7E[0-9a-f]{64}$/;

function invalidClaim(why: string): StorageDriverError {
  return new StorageDriverError(StorageDriverErrorCode.INVALID_CLAIM, why);
}

/** Why `name` is not an object name of the official GCS layout, or `undefined` if it is one. */
export function objectNameProblem(name: unknown): string | undefined {
  if (typeof name !== 'string' || name.length === 0) return 'must be a non-empty string';
  if (name.length > GCS_MAX_OBJECT_NAME_BYTES || Buffer.byteLength(name, 'utf8') > GCS_MAX_OBJECT_NAME_BYTES) {
    return `is longer than ${GCS_MAX_OBJECT_NAME_BYTES} bytes (the GCS limit)`;
  }
  const values = storageKeyValues(name);
  if (values === 'shape') return 'must look like v0/.../d/sha256/<64 lower-case hex>';
  if (values === 'structure') return 'has an unexpected structure';
  for (const [i, segment] of values.entries()) {
    if (isGcsSegment(segment)) continue;
    // A namespace too long even for the digest-only name (hundreds of bytes, which no official
    // driver can store): core writes `%7E` + the SHA-256 of its encoded form, which no GCS segment
    // can equal (the official escaping keeps `~`).
    if (i === 0 && values.length === 1 && HASHED_NAMESPACE.test(segment)) continue;
    return 'has a segment no official GCS driver writes';
  }
  return undefined;
}

/** Whether `name` is an object name of the official GCS layout (what `list` yields, `delete` takes). */
export function isObjectName(name: unknown): name is string {
  return objectNameProblem(name) === undefined;
}

/**
 * Validates an object name taken from a claim: `v0/ns/{ns}/wt|at/{type}/wi|ai/{id}/ri/{run}/d/sha256/{hex}`,
 * `v0/ns/{ns}/d/sha256/{hex}` (the official long-name fallback) or `v0/d/sha256/{hex}`, each
 * segment exactly as the official GCS drivers escape it ({@link isGcsSegment}), at most 1,024 bytes
 * of UTF-8. Everything else — traversal, raw `.`/`..` segments, control characters, lower-case or
 * malformed escapes, other structures, names GCS cannot hold — is rejected.
 *
 * @throws StorageDriverError `E_INVALID_CLAIM`
 */
export function validateClaimObjectName(name: unknown): string {
  const problem = objectNameProblem(name);
  if (problem !== undefined) throw invalidClaim(`Claim object name ${problem}`);
  return name as string;
}

/**
 * GCS bucket names: 3–63 characters of `a-z 0-9 - _ .` starting and ending with a letter or digit,
 * or up to 222 with dots, each dot-separated part at most 63; not an IP address, no `..`, not
 * starting with `goog`, not containing `google` (Google's naming rules).
 */
const BUCKET = /^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/;

/** Why `value` is not a valid GCS bucket name, or `undefined` if it is one. */
export function bucketProblem(value: unknown): string | undefined {
  if (typeof value !== 'string') return 'is not a string';
  if (!BUCKET.test(value)) {
    return 'is not a GCS bucket name (3-63 characters of a-z 0-9 - _ ., starting and ending with a letter or digit)';
  }
  const parts = value.split('.');
  if (parts.some((p) => p.length === 0 || p.length > 63) || (!value.includes('.') && value.length > 63)) {
    return 'is not a GCS bucket name (at most 63 characters, or 222 with dots between parts of at most 63)';
  }
  if (/^\d+\.\d+\.\d+\.\d+$/.test(value)) return 'is not a GCS bucket name (an IP address)';
  if (value.startsWith('goog') || value.includes('google')) {
    return 'is not a GCS bucket name (names starting with goog or containing google are reserved)';
  }
  return undefined;
}

/** Whether `value` is a valid GCS bucket name. */
export function isValidBucket(value: unknown): value is string {
  return bucketProblem(value) === undefined;
}

/**
 * Validates a bucket taken from a claim.
 *
 * @throws StorageDriverError `E_INVALID_CLAIM`
 */
export function validateClaimBucket(bucket: unknown): string {
  const problem = bucketProblem(bucket);
  if (problem !== undefined) throw invalidClaim(`Claim bucket ${problem}`);
  return bucket as string;
}
