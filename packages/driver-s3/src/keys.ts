/**
 * Validation of the S3 locations (bucket names, object keys, key prefixes) taken from claims,
 * which are untrusted input from workflow history.
 *
 * @module
 */
import {
  configError,
  StorageDriverError,
  StorageDriverErrorCode,
  type StorageLocation,
  storageKeyValues,
} from '@x/storage-driver-core';

/** Where one payload lives in S3. */
export interface S3StorageLocation extends StorageLocation {
  /** Bucket name or S3 access point ARN. */
  readonly bucket: string;
  /** Full object key (with `keyPrefix`), as written into the claim. */
  readonly key: string;
}

/** Identity of a location, unambiguous whatever the bucket holds (access point ARNs contain ':' and '/'). */
export function locationId(location: S3StorageLocation): string {
  return JSON.stringify([location.bucket, location.key]);
}

/** Longest S3 object key, in bytes of UTF-8 (the S3 limit). */
export const S3_MAX_KEY_BYTES = 1024;
/**
 * Longest object key accepted from a claim, in bytes. Larger than {@link S3_MAX_KEY_BYTES}
 * because S3-compatible servers without the 1024-byte limit (moto accepts any length) let the
 * official Go, Java and TypeScript drivers (and Python before 1.35) write longer keys (they do not
 * shorten them); 4096 holds the key of all-ASCII namespace, type and id at Temporal's default
 * 1000-byte id limit. This driver itself never writes a key over 1024 bytes: a longer one
 * becomes `v0/ns/{namespace}/d/sha256/{hex}`, as in Python 1.35 (core's `fitStorageKey`).
 */
export const S3_MAX_CLAIM_KEY_BYTES = 4096;
/** Longest accepted `keyPrefix`, in bytes. */
export const S3_MAX_KEY_PREFIX_BYTES = 512;

/**
 * Bucket names accepted from options and claims: 1–255 characters of `A-Z a-z 0-9 . _ -`, not
 * `.` or `..`. Wider than AWS's rules (3–63 lower-case characters) so that legacy and
 * S3-compatible buckets work, narrow enough that no claim can smuggle a `/`, `?`, `%`, space or
 * control character into a request.
 */
const BUCKET_NAME = /^[A-Za-z0-9._-]{1,255}$/;

/**
 * One dynamic key segment as any official driver may write it: RFC 3986 unreserved characters,
 * sub-delimiters, `:` and `@`, and `%XX` escapes (either case). This covers the spellings of
 * every SDK's percent-encoder (JS `encodeURIComponent`, Python `urllib.parse.quote`, Go
 * `url.PathEscape`/`QueryEscape`, Java `URLEncoder`) while excluding raw non-ASCII, spaces,
 * `/`, `\`, `?`, `#`, quotes, control characters and malformed escapes.
 */
const LENIENT_SEGMENT = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})*$/;

/** Same character set, for the `/`-separated segments of a key prefix (no empty segments). */
const PREFIX_SEGMENT = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})+$/;

const textEncoder = new TextEncoder();

function invalidClaim(why: string): StorageDriverError {
  return new StorageDriverError(StorageDriverErrorCode.INVALID_CLAIM, why);
}

/**
 * An S3 access point ARN: partition `aws`, `aws-cn` or `aws-us-gov`, service `s3`, a region, a
 * 12-digit account and `accesspoint/` followed by an access point name (3–50 lower-case letters,
 * digits and `-`, starting and ending with a letter or digit).
 */
const ACCESS_POINT_ARN =
  /^arn:aws(?:-cn|-us-gov)?:s3:[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}:[0-9]{12}:accesspoint\/[a-z0-9][a-z0-9-]{1,48}[a-z0-9]$/;

/** Whether `name` is an acceptable plain bucket name (see the module notes); ARNs are not. */
export function isValidBucketName(name: unknown): name is string {
  return typeof name === 'string' && BUCKET_NAME.test(name) && name !== '.' && name !== '..';
}

/**
 * Whether `value` is an S3 access point ARN
 * (`arn:{aws|aws-cn|aws-us-gov}:s3:{region}:{12-digit account}:accesspoint/{name}`). S3 Object
 * Lambda and Outposts access points, multi-region access points and bucket ARNs are not.
 */
export function isAccessPointArn(value: unknown): value is string {
  return typeof value === 'string' && ACCESS_POINT_ARN.test(value);
}

/** Whether `value` is a plain bucket name or an S3 access point ARN (what `bucket` accepts). */
export function isValidBucket(value: unknown): value is string {
  return isValidBucketName(value) || isAccessPointArn(value);
}

/** Why `value` is not a valid bucket (for error messages; `value` is not echoed for non-strings). */
export function bucketProblem(value: unknown): string {
  if (typeof value !== 'string') return 'is not a string';
  if (!value.startsWith('arn:')) return 'is not a valid bucket name';
  if (/^arn:[^:]*:s3-object-lambda:/.test(value)) {
    return 'is an S3 Object Lambda access point ARN, which is not supported (it transforms objects, so the stored hash would not match)';
  }
  if (/^arn:[^:]*:s3-outposts:/.test(value)) return 'is an S3 on Outposts ARN, which is not supported';
  return 'is not a supported ARN (only S3 access point ARNs arn:{aws|aws-cn|aws-us-gov}:s3:{region}:{account}:accesspoint/{name})';
}

/**
 * Validates a `keyPrefix` option: empty, or 1–512 bytes of `/`-separated non-empty segments of
 * the key character set (no `.`/`..` segment, no leading `/`), ending with `/`.
 *
 * @throws StorageDriverError `E_CONFIG` if it is not.
 */
export function validateKeyPrefix(prefix: unknown): string {
  const bad = (why: string) => configError(`keyPrefix ${why}`);
  if (prefix === undefined || prefix === '') return '';
  if (typeof prefix !== 'string') throw bad('must be a string');
  if (prefix.length > S3_MAX_KEY_PREFIX_BYTES) throw bad(`must be at most ${S3_MAX_KEY_PREFIX_BYTES} bytes`);
  if (!prefix.endsWith('/')) throw bad('must end with "/"');
  const segments = prefix.slice(0, -1).split('/');
  for (const s of segments) {
    if (!PREFIX_SEGMENT.test(s) || s === '.' || s === '..') {
      throw bad(
        'segments must be non-empty, not "." or "..", and use only A-Z a-z 0-9 - . _ ~ ! $ & \' ( ) * + , ; = : @ and %XX',
      );
    }
  }
  return prefix;
}

/**
 * Validates an object key taken from a claim. Accepted: an optional key prefix (any value
 * {@link validateKeyPrefix} accepts, so keys written with any driver's `keyPrefix` are
 * readable), then a key with the structure of the official key spec —
 * `v0/[ns/{ns}/]{wt|at}/{type}/{wi|ai}/{id}/ri/{run}/d/sha256/{hex}`, `v0/ns/{ns}/d/sha256/{hex}`
 * (the official long-key fallback) or `v0/d/sha256/{hex}` —
 * whose dynamic segments use the lenient character set of any SDK's percent-encoder, at most
 * {@link S3_MAX_CLAIM_KEY_BYTES} (4096) bytes in all. Everything else — empty keys, absolute or `\` paths, control characters,
 * raw non-ASCII, other structures, `..` anywhere but in a value position — is rejected.
 *
 * `.` and `..` are accepted as *values* (a workflow id of `..` is written as is by every SDK):
 * S3 keys are flat names that the AWS SDK sends verbatim, and the fixed label in front of each
 * value means that even an HTTP layer resolving dot segments could not climb above `v0/`.
 *
 * @throws StorageDriverError `E_INVALID_CLAIM` if the key is not acceptable.
 */
export function validateClaimKey(key: unknown): string {
  if (typeof key !== 'string' || key.length === 0) throw invalidClaim('Claim key must be a non-empty string');
  if (key.length > S3_MAX_CLAIM_KEY_BYTES || textEncoder.encode(key).length > S3_MAX_CLAIM_KEY_BYTES) {
    throw invalidClaim(`Claim key is longer than ${S3_MAX_CLAIM_KEY_BYTES} bytes`);
  }
  // Each `v0/` at a segment boundary is a candidate start of the spec key; what precedes it
  // must be a valid key prefix.
  const starts: number[] = key.startsWith('v0/') ? [0] : [];
  for (let i = key.indexOf('/v0/'); i !== -1; i = key.indexOf('/v0/', i + 1)) starts.push(i + 1);
  let failure: StorageDriverError | undefined;
  for (const start of starts) {
    if (start > 0) {
      try {
        validateKeyPrefix(key.slice(0, start));
      } catch {
        continue;
      }
    }
    try {
      checkSpecKey(key.slice(start));
      return key;
    } catch (e) {
      failure ??= e as StorageDriverError;
    }
  }
  throw failure ?? invalidClaim('Claim key must look like [prefix/]v0/.../d/sha256/<64 lower-case hex>');
}

/**
 * Whether `key` is a storage key with the structure of the official key spec and nothing in
 * front of it (`v0/…/d/sha256/{hex}`, any SDK's percent-encoding): what `list` yields and what
 * `delete` accepts as a bare storage key.
 */
export function isSpecKey(key: unknown): key is string {
  if (typeof key !== 'string' || key.length > S3_MAX_CLAIM_KEY_BYTES) return false;
  try {
    checkSpecKey(key);
    return true;
  } catch {
    return false;
  }
}

function checkSpecKey(body: string): void {
  const values = storageKeyValues(body, true);
  if (values === 'shape') throw invalidClaim('Claim key must look like [prefix/]v0/.../d/sha256/<64 lower-case hex>');
  if (values === 'structure') throw invalidClaim('Claim key has an unexpected structure');
  if (!values.every((value) => LENIENT_SEGMENT.test(value))) {
    throw invalidClaim('Claim key has a segment with characters no official driver writes');
  }
}

/**
 * Validates a bucket taken from a claim: a plain bucket name or an S3 access point ARN.
 *
 * @throws StorageDriverError `E_INVALID_CLAIM` if it is neither.
 */
export function validateClaimBucket(bucket: unknown): string {
  if (!isValidBucket(bucket)) throw invalidClaim(`Claim bucket ${bucketProblem(bucket)}`);
  return bucket;
}
