/**
 * Mapping between core storage keys and relative filesystem paths under the driver's root.
 *
 * A key produced by core's `buildStorageKey` is a `/`-separated list of segments, each made only
 * of `A-Z a-z 0-9 ! - _ . * ' ( )` and upper-case `%XX` escapes (so: ASCII, never `/`, NUL or
 * `~`). Each segment becomes one or more path components:
 *
 * | segment | path component(s) | why it is unambiguous |
 * |---|---|---|
 * | `.` | `%2E` | the key spec never escapes `.`, so `%2E` never occurs in a key |
 * | `..` | `%2E%2E` | same |
 * | empty | `%` | the key spec only ever writes `%` followed by two hex digits |
 * | longer than 200 bytes | `~<200 bytes>/…/~<200 bytes>/<rest>` | the key spec always escapes `~`, so no segment starts with `~` |
 * | anything else | unchanged | |
 *
 * In the long form every chunk but the last is prefixed with `~` and the last chunk (1–200
 * bytes, escaped like a short segment) ends the segment, so even two adjacent long segments
 * decode unambiguously. Every component is at most 201 bytes (the limit of common filesystems
 * is 255). The mapping is injective and {@link relativePathToKey} inverts it exactly.
 *
 * The total length of a path is bounded too: core writes keys of at most 1,024 characters
 * (`MAX_STORAGE_KEY_LENGTH`; above that it writes the namespace digest key), and such a key maps
 * to at most {@link MAX_DIRECT_PATH_BYTES} (1,044) bytes, so `root` (at most 2,048 bytes) plus
 * the path stays below Linux's `PATH_MAX` (4,096). Every key maps to its path directly, so the
 * key of every stored file can be read back from its path.
 *
 * @module
 */
import * as path from 'node:path';
import {
  MAX_STORAGE_KEY_LENGTH,
  parseStorageKey,
  StorageDriverError,
  StorageDriverErrorCode,
  type StorageLocation,
} from '@x/storage-driver-core';

/** Where one payload lives: its claim key plus the resolved paths. */
export interface FsStorageLocation extends StorageLocation {
  /** The core storage key, as written into the claim (relative, `/`-separated). */
  readonly key: string;
  /** Path of the file relative to the root, `/`-separated (see `keyToStoragePath`). */
  readonly relativePath: string;
  /** Absolute path of the file. */
  readonly path: string;
}

/** Directory under the root holding in-flight temporary files (never walked by `list`). */
export const FS_TMP_DIR = '.tmp';

/** Longest key segment, in bytes, kept as a single path component. Longer ones are split. */
export const MAX_SEGMENT_COMPONENT_BYTES = 200;

/**
 * Longest relative path, in bytes, that any key the driver accepts maps to: the longest mapped path
 * of a key of at most 1,024 characters (core's `MAX_STORAGE_KEY_LENGTH`), reached by a workflow
 * key whose id is 802 characters ending in `..` (four `~` chunks and an escaped tail), with `..`
 * as namespace and type (each `%2E%2E`) and a 126-character run id. The driver's tests compute
 * this maximum over every key shape.
 */
export const MAX_DIRECT_PATH_BYTES = 1044;

/**
 * Most path components (directories plus the file) of a stored path: 12 key segments and at most
 * 4 extra `~` chunks (a 1,024-character key has at most 932 characters of ids, types and
 * namespace). The directory walk of `list` never descends deeper.
 */
export const MAX_PATH_COMPONENTS = 16;

function escapeComponent(s: string): string {
  if (s === '') return '%';
  if (s === '.') return '%2E';
  if (s === '..') return '%2E%2E';
  return s;
}

function unescapeComponent(s: string): string {
  if (s === '%') return '';
  if (s === '%2E') return '.';
  if (s === '%2E%2E') return '..';
  return s;
}

/** The path components of one key segment (ASCII; see the module's table). */
function segmentComponents(segment: string, out: string[]): void {
  let i = 0;
  while (segment.length - i > MAX_SEGMENT_COMPONENT_BYTES) {
    out.push(`~${segment.slice(i, i + MAX_SEGMENT_COMPONENT_BYTES)}`);
    i += MAX_SEGMENT_COMPONENT_BYTES;
  }
  out.push(escapeComponent(i === 0 ? segment : segment.slice(i)));
}

/**
 * Maps a storage key to its relative path (`/`-separated, no leading `/`) under the root, with
 * the reversible mapping described in this module. Every component is at most 201 bytes; the
 * path as a whole is not length-limited (see {@link keyToStoragePath} for the keys the driver
 * accepts).
 *
 * @throws StorageDriverError `E_INVALID_CLAIM` if `key` is not a well-formed storage key (core
 *   `parseStorageKey`).
 */
export function keyToRelativePath(key: string): string {
  const { segments } = parseStorageKey(key);
  const out: string[] = [];
  // Segments are ASCII (validated above), so string length equals byte length.
  for (const segment of segments) segmentComponents(segment, out);
  return out.join('/');
}

/**
 * Inverse of {@link keyToRelativePath}: returns the key stored at `relativePath`
 * (`/`-separated, relative to the root), or `undefined` if no key maps to that path (foreign
 * files, non-canonical spellings).
 */
export function relativePathToKey(relativePath: string): string | undefined {
  if (typeof relativePath !== 'string' || relativePath.length === 0) return undefined;
  const segments: string[] = [];
  let pending: string | undefined;
  for (const component of relativePath.split('/')) {
    if (component.length > 1 && component.startsWith('~')) {
      pending = (pending ?? '') + component.slice(1);
      continue;
    }
    segments.push((pending ?? '') + unescapeComponent(component));
    pending = undefined;
  }
  if (pending !== undefined) return undefined;
  const key = segments.join('/');
  try {
    // Only canonical paths decode: re-encoding must give back exactly the input.
    return keyToRelativePath(key) === relativePath ? key : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The relative path where the driver stores `key`: {@link keyToRelativePath} of a key of at most
 * 1,024 characters (core's `MAX_STORAGE_KEY_LENGTH`, the longest key core writes), so at most
 * {@link MAX_DIRECT_PATH_BYTES} bytes.
 *
 * @throws StorageDriverError `E_INVALID_CLAIM` if `key` is not a well-formed storage key or is
 *   longer than 1,024 characters (no driver of this package writes such a key).
 */
export function keyToStoragePath(key: string): string {
  if (typeof key === 'string' && key.length > MAX_STORAGE_KEY_LENGTH) {
    throw new StorageDriverError(
      StorageDriverErrorCode.INVALID_CLAIM,
      `Invalid storage key in claim: longer than ${MAX_STORAGE_KEY_LENGTH} characters (${key.length})`,
    );
  }
  const rel = keyToRelativePath(key);
  if (rel.length > MAX_DIRECT_PATH_BYTES) {
    // Unreachable for keys of at most 1,024 characters (proven by the tests); kept as a guard.
    throw new StorageDriverError(StorageDriverErrorCode.INVALID_CLAIM, 'Invalid storage key in claim: path too long');
  }
  return rel;
}

/**
 * The key stored at `relativePath` when the driver could have written it there (the inverse of
 * {@link keyToStoragePath}), or `undefined` for anything else (foreign files, non-canonical
 * spellings, keys over 1,024 characters).
 */
export function storagePathToKey(relativePath: string): string | undefined {
  if (typeof relativePath !== 'string' || relativePath.length > MAX_DIRECT_PATH_BYTES) return undefined;
  const key = relativePathToKey(relativePath);
  return key !== undefined && key.length <= MAX_STORAGE_KEY_LENGTH ? key : undefined;
}

/**
 * The directory (relative to the root) under which every stored key that starts with `prefix`
 * lives, or `undefined` when no stored key can start with it. `v0` for no prefix. The mapping
 * is per segment, so the complete segments of the prefix (those followed by `/`) fix the
 * directory; its incomplete last segment is left to the caller's filter.
 */
export function prefixDirectory(prefix: string | undefined): string | undefined {
  if (prefix === undefined) return 'v0';
  // Keys are printable ASCII and at most 1,024 characters long.
  if (prefix.length > MAX_STORAGE_KEY_LENGTH || !/^[\x21-\x7e]*$/.test(prefix)) return undefined;
  const complete = prefix.split('/');
  complete.pop();
  if (complete.length === 0) return 'v0/'.startsWith(prefix) ? 'v0' : undefined;
  if (complete[0] !== 'v0') return undefined;
  const out: string[] = [];
  for (const segment of complete) segmentComponents(segment, out);
  return out.join('/');
}

/**
 * The location of the file for `key` under `root` (absolute, normalised): the key, its
 * {@link keyToStoragePath} and the absolute path, checked to lie inside `root`.
 *
 * @throws StorageDriverError `E_INVALID_CLAIM` if `key` is not a well-formed storage key, is
 *   longer than 1,024 characters, or (never, by construction of the mapping) maps outside `root`
 */
export function storageLocation(root: string, key: string): FsStorageLocation {
  const relativePath = keyToStoragePath(key);
  const abs = path.resolve(root, ...relativePath.split('/'));
  // Belt and braces: the mapping never produces `.`/`..` components, but check anyway.
  const rel = path.relative(root, abs);
  if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel) || !isInside(root, abs)) {
    throw new StorageDriverError(StorageDriverErrorCode.INVALID_CLAIM, 'Claim key resolves outside the root', { key });
  }
  return { key, relativePath, path: abs };
}

/** Whether `child` is `parent` or lies below it (both absolute, normalised). */
export function isInside(parent: string, child: string): boolean {
  if (child === parent) return true;
  const prefix = parent.endsWith(path.sep) ? parent : parent + path.sep;
  return child.startsWith(prefix);
}
