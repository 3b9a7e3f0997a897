/**
 * Blob names and containers: the key spec with Azure's naming rules (the segment encoder), and
 * the validation of the containers and blob names taken from claims, which are untrusted input
 * from workflow history.
 *
 * @module
 */
import {
  configError,
  encodeKeySegment,
  StorageDriverError,
  StorageDriverErrorCode,
  type StorageLocation,
  storageKeyValues,
} from '@x/storage-driver-core';

/** Where one payload lives in Azure Blob Storage. */
export interface AzureBlobStorageLocation extends StorageLocation {
  /** Container name. */
  readonly container: string;
  /** Full blob name (with `keyPrefix`), as written into the claim. */
  readonly key: string;
}

/** Identity of a location (container and blob name). */
export function locationId(location: AzureBlobStorageLocation): string {
  return `${location.container}/${location.key}`;
}

/**
 * Longest blob name, in characters (Azure's limit; the service counts characters, not bytes).
 * The names this driver writes are ASCII, so characters are bytes too.
 */
export const AZURE_MAX_BLOB_NAME_LENGTH = 1024;
/** Longest accepted `keyPrefix`, in characters. */
export const AZURE_MAX_KEY_PREFIX_LENGTH = 512;
/**
 * Most `/`-separated segments of a `keyPrefix`: Azure allows 254 segments in a blob name and a
 * key of the spec has at most 14.
 */
const MAX_PREFIX_SEGMENTS = 240;

/**
 * Escapes one dynamic key segment (namespace, workflow or activity type, id, run id) of the blob
 * names this driver writes: the S3 key spec (core's `encodeKeySegment`: everything but
 * `A-Z a-z 0-9 ! - _ . * ' ( )` becomes `%XX` of its UTF-8 bytes, so `/`, `\`, `%`, spaces,
 * control characters and non-ASCII are escaped), then Azure's rules on dots: a segment `.` becomes
 * `%2E`, `..` becomes `%2E%2E`, and a trailing `.` of any other segment becomes `%2E` (`a.` →
 * `a%2E`, `...` → `..%2E`). The JS client resolves `.` and `..` path segments as URL rules say
 * (`d/../z` would land at `z`), and Azure advises against names whose segments end with a dot.
 * Everything else is exactly the S3 spec, so a target without such dots gets the same key as on
 * S3. Empty, `undefined` and `null` give `null`.
 */
export function encodeAzureKeySegment(value: string | undefined | null): string {
  const s = encodeKeySegment(value);
  if (s.charCodeAt(s.length - 1) !== 0x2e) return s;
  if (s === '..') return '%2E%2E';
  return `${s.slice(0, -1)}%2E`;
}

/**
 * Container names accepted from options and claims: Azure's rules (3–63 characters of lower-case
 * letters, digits and `-`, starting and ending with a letter or digit, no `--`). The special
 * containers `$root`, `$web` and `$logs` are not accepted.
 */
const CONTAINER_NAME = /^(?=.{3,63}$)[a-z0-9]+(?:-[a-z0-9]+)*$/;

/** Whether `name` is a valid container name (see the module notes). */
export function isValidContainerName(name: unknown): name is string {
  return typeof name === 'string' && CONTAINER_NAME.test(name);
}

function invalidClaim(why: string): StorageDriverError {
  return new StorageDriverError(StorageDriverErrorCode.INVALID_CLAIM, why);
}

/**
 * Validates a container taken from a claim.
 *
 * @throws StorageDriverError `E_INVALID_CLAIM` if it is not a valid container name.
 */
export function validateClaimContainer(container: unknown): string {
  if (!isValidContainerName(container)) throw invalidClaim('Claim container is not a valid container name');
  return container;
}

/** One segment of a key prefix: the characters of the key spec and `%XX`, not ending with `.`. */
const PREFIX_SEGMENT = /^(?:[A-Za-z0-9!\-_.*'()]|%[0-9A-F]{2})*(?:[A-Za-z0-9!\-_*'()]|%[0-9A-F]{2})$/;

/**
 * Validates a `keyPrefix` option: empty, or at most 512 characters of `/`-separated non-empty
 * segments, ending with `/`. Segments use the key spec's characters (`A-Z a-z 0-9 ! - _ . * ' ( )`
 * and `%XX` with upper-case hex), do not end with `.` (so no `.` or `..` segment), and none is
 * `v0` (a claim's blob name splits unambiguously into prefix and key).
 *
 * @throws StorageDriverError `E_CONFIG` if it is not acceptable.
 */
export function validateKeyPrefix(prefix: unknown): string {
  if (prefix === undefined || prefix === '') return '';
  const bad = (why: string) => configError(`keyPrefix ${why}`);
  if (typeof prefix !== 'string') throw bad('must be a string');
  if (prefix.length > AZURE_MAX_KEY_PREFIX_LENGTH)
    throw bad(`must be at most ${AZURE_MAX_KEY_PREFIX_LENGTH} characters`);
  if (!prefix.endsWith('/')) throw bad('must end with "/"');
  const segments = prefix.slice(0, -1).split('/');
  if (segments.length > MAX_PREFIX_SEGMENTS) throw bad(`must have at most ${MAX_PREFIX_SEGMENTS} segments`);
  for (const s of segments) {
    if (!PREFIX_SEGMENT.test(s)) {
      throw bad(
        'segments must be non-empty, not end with ".", and use only A-Z a-z 0-9 ! - _ . * \' ( ) and %XX (upper-case hex)',
      );
    }
    if (s === 'v0') throw bad('must not contain a "v0" segment (it starts the key)');
  }
  return prefix;
}

const ESCAPED = /^(?:[A-Za-z0-9!\-_.*'()]|%[0-9A-F]{2})*$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Whether `segment` is exactly what {@link encodeAzureKeySegment} writes for some value. */
function isCanonicalSegment(segment: string): boolean {
  if (!ESCAPED.test(segment)) return false;
  if (!segment.includes('%')) return encodeAzureKeySegment(segment) === segment;
  const bytes: number[] = [];
  for (let i = 0; i < segment.length; i++) {
    if (segment[i] === '%') {
      bytes.push(Number.parseInt(segment.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(segment.charCodeAt(i));
  }
  let value: string;
  try {
    value = utf8.decode(new Uint8Array(bytes));
  } catch {
    return false;
  }
  return encodeAzureKeySegment(value) === segment;
}

/** Why `body` (a key without prefix) is not a storage key of this driver, or `undefined` if it is. */
function specKeyProblem(body: string): string | undefined {
  const values = storageKeyValues(body);
  if (values === 'shape') return 'must look like [prefix/]v0/.../d/sha256/<64 lower-case hex>';
  if (values === 'structure') return 'has an unexpected structure';
  if (!values.every(isCanonicalSegment)) return 'has a segment this driver does not write';
  return undefined;
}

/**
 * Whether `key` is a storage key exactly as this driver writes it, with nothing in front of it:
 * `v0/ns/{ns}/{wt|at}/{type}/{wi|ai}/{id}/ri/{run}/d/sha256/{hex}`, `v0/ns/{ns}/d/sha256/{hex}` or
 * `v0/d/sha256/{hex}`, each value spelled as {@link encodeAzureKeySegment} writes it (what `list`
 * yields and `delete` accepts as a bare storage key).
 */
export function isSpecKey(key: unknown): key is string {
  return typeof key === 'string' && key.length <= AZURE_MAX_BLOB_NAME_LENGTH && specKeyProblem(key) === undefined;
}

/**
 * Validates a blob name taken from a claim: an optional key prefix (any value
 * {@link validateKeyPrefix} accepts, so claims written with another `keyPrefix` stay readable)
 * followed by a storage key exactly as this driver writes it ({@link isSpecKey}), at most 1,024
 * characters in all. So no `.`/`..` segment, no segment ending with `.`, no `\`, no raw `%` or
 * non-ASCII, no empty segment: nothing the client would rewrite on its way to the service.
 *
 * @throws StorageDriverError `E_INVALID_CLAIM` if the name is not acceptable.
 */
export function validateClaimKey(key: unknown): string {
  if (typeof key !== 'string' || key.length === 0) throw invalidClaim('Claim key must be a non-empty string');
  if (key.length > AZURE_MAX_BLOB_NAME_LENGTH) {
    throw invalidClaim(`Claim key is longer than ${AZURE_MAX_BLOB_NAME_LENGTH} characters (Azure's blob name limit)`);
  }
  // A prefix has no `v0` segment: the first one starts the key.
  const start = key.startsWith('v0/') ? 0 : key.indexOf('/v0/') + 1;
  if (start === 0 && !key.startsWith('v0/')) throw invalidClaim('Claim key has no v0/ segment');
  if (start > 0) {
    try {
      validateKeyPrefix(key.slice(0, start));
    } catch {
      throw invalidClaim('Claim key has an invalid prefix');
    }
  }
  const problem = specKeyProblem(key.slice(start));
  if (problem !== undefined) throw invalidClaim(`Claim key ${problem}`);
  return key;
}
