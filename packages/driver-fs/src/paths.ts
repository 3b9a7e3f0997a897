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
 * The total length of a path is limited too (`PATH_MAX`, 4096 bytes on Linux, 1024 on macOS),
 * and percent-encoding can blow a 1,000-character workflow id up to 9,000 bytes. Keys whose
 * mapped path exceeds {@link MAX_DIRECT_PATH_BYTES} are therefore stored at a *folded* path,
 * `v0/~/<h[0..2]>/<h>` with `h` the SHA-256 of the key (see {@link keyToStoragePath}); no direct
 * path has a component that is exactly `~`, so folded and direct paths never collide.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { parseStorageKey } from '@x/storage-driver-core';

/** Longest key segment, in bytes, kept as a single path component. Longer ones are split. */
export const MAX_SEGMENT_COMPONENT_BYTES = 200;

/**
 * Longest relative path, in bytes, used as is. Keys whose mapped path is longer are stored at a
 * folded path (see {@link keyToStoragePath}) so that `root + path` stays below `PATH_MAX`.
 */
export const MAX_DIRECT_PATH_BYTES = 1024;

/** Name of the directory (under `v0/`) holding folded paths of over-long keys. */
export const FOLDED_DIR = '~';

const FOLDED_PATH = /^v0\/~\/([0-9a-f]{2})\/([0-9a-f]{64})$/;

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

/**
 * Maps a storage key to its relative path (`/`-separated, no leading `/`) under the root, with
 * the reversible mapping described in this module. Every component is at most 201 bytes; the
 * path as a whole is not length-limited (see {@link keyToStoragePath} for that).
 *
 * @throws StorageDriverError `E_INVALID_CLAIM` if `key` is not a well-formed storage key (core
 *   `parseStorageKey`).
 */
export function keyToRelativePath(key: string): string {
  const { segments } = parseStorageKey(key);
  const out: string[] = [];
  for (const segment of segments) {
    // Segments are ASCII (validated above), so string length equals byte length.
    let i = 0;
    while (segment.length - i > MAX_SEGMENT_COMPONENT_BYTES) {
      out.push(`~${segment.slice(i, i + MAX_SEGMENT_COMPONENT_BYTES)}`);
      i += MAX_SEGMENT_COMPONENT_BYTES;
    }
    out.push(escapeComponent(i === 0 ? segment : segment.slice(i)));
  }
  return out.join('/');
}

/**
 * Inverse of {@link keyToRelativePath}: returns the key stored at `relativePath`
 * (`/`-separated, relative to the root), or `undefined` if no key maps to that path (foreign
 * files, folded paths, non-canonical spellings).
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
 * The relative path where the driver stores `key`: {@link keyToRelativePath} when that is at most
 * {@link MAX_DIRECT_PATH_BYTES} bytes, else the folded path `v0/~/<h[0..2]>/<h>` where `h` is the
 * lower-case hex SHA-256 of the key's UTF-8 bytes.
 *
 * @throws StorageDriverError `E_INVALID_CLAIM` if `key` is not a well-formed storage key.
 */
export function keyToStoragePath(key: string): string {
  const direct = keyToRelativePath(key);
  if (direct.length <= MAX_DIRECT_PATH_BYTES) return direct;
  const h = createHash('sha256').update(key, 'utf8').digest('hex');
  return `v0/${FOLDED_DIR}/${h.slice(0, 2)}/${h}`;
}

/** Whether `relativePath` has the shape of a folded path (see {@link keyToStoragePath}). */
export function isFoldedStoragePath(relativePath: string): boolean {
  const m = FOLDED_PATH.exec(relativePath);
  return m !== null && m[2]?.startsWith(m[1] as string) === true;
}

/**
 * Classifies a relative path found on disk: the key stored there (`key`), a folded path whose key
 * cannot be recovered from the path (`key: null`), or `undefined` for anything the driver never
 * writes (left alone by `sweep`).
 */
export function storagePathToKey(relativePath: string): { key: string | null } | undefined {
  if (isFoldedStoragePath(relativePath)) return { key: null };
  const key = relativePathToKey(relativePath);
  if (key === undefined || keyToStoragePath(key) !== relativePath) return undefined;
  return { key };
}
