/**
 * Mechanics shared by the object-store drivers (S3, GCS, Azure Blob): which socket errors are worth
 * retrying, the order of the existence check (upload first or look first), the `refreshAfter`
 * option and the minimum delete age it implies, and the layout of a storage key
 * (`v0/.../d/sha256/{hex}`). Each driver keeps what is its own (status codes, segment
 * escaping, time resolution, the wording of its bounds).
 *
 * @module
 */
import { isSha256Hex } from './hash';
import { configError, errorCodeOf } from './plumbing';

/**
 * Socket-level error codes (`error.code`, no HTTP answer) of Node.js, undici and Node streams: the
 * request never got a complete answer, so it is worth retrying later.
 */
export const NETWORK_ERROR_CODES: ReadonlySet<string> = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'EADDRNOTAVAIL',
  'UND_ERR_SOCKET',
  'ERR_STREAM_PREMATURE_CLOSE',
  'ERR_HTTP2_STREAM_ERROR',
]);

/** Whether `error` carries one of the {@link NETWORK_ERROR_CODES} as its `code`. */
export function isNetworkError(error: unknown): boolean {
  const code = errorCodeOf(error);
  return code !== undefined && NETWORK_ERROR_CODES.has(code);
}

/**
 * How an object-store driver avoids uploading an object that already exists: `head` looks it up
 * first and uploads only if it is missing; `conditional-put` uploads create-only straight away (the
 * store refuses it if the object exists); `auto` picks one of the two per object
 * ({@link ExistenceOrder}).
 */
export type ExistenceCheckMode = 'auto' | 'conditional-put' | 'head';

/** The {@link ExistenceCheckMode}s. */
const EXISTENCE_CHECK_MODES: readonly ExistenceCheckMode[] = ['auto', 'conditional-put', 'head'];

/**
 * Validates a driver's `existenceCheck` option: `'auto'`, `'conditional-put'` or `'head'`, spelled
 * exactly.
 *
 * @param value - the option as given
 * @returns the mode, `'auto'` when `value` is `undefined`
 * @throws StorageDriverError `E_CONFIG` for anything else
 */
export function validateExistenceCheck(value: unknown): ExistenceCheckMode {
  if (value === undefined) return 'auto';
  if (!(EXISTENCE_CHECK_MODES as readonly unknown[]).includes(value)) {
    throw configError('existenceCheck must be "auto", "conditional-put" or "head"');
  }
  return value as ExistenceCheckMode;
}

/** How many keys {@link ExistenceOrder} remembers as recently stored or read: 10,000. */
export const EXISTENCE_ORDER_RECENT_KEYS = 10_000;

/**
 * The order of the existence check of each object a store writes: a create-only upload first, or a
 * lookup first. A new object costs one request with the upload first and two with the lookup
 * first; an existing one costs a refused upload (the body sent for nothing) and a lookup with the
 * upload first, one lookup with the lookup first. So in `auto` mode the lookup comes first for
 * objects of at least `lookFirstMinSize` bytes (a wasted upload would cost more than a round trip)
 * and for keys this driver instance recently stored or read (likely repeats: a workflow passing its
 * input on to an activity); every other object is uploaded first. `head` always looks first,
 * `conditional-put` always uploads first.
 *
 * What it remembers (the last {@link EXISTENCE_ORDER_RECENT_KEYS} keys stored or read, least recent
 * dropped first; `auto` mode only) is a hint for the order, never trusted as existence: the store
 * still asks the object store, so an object deleted behind the driver is uploaded again.
 */
export class ExistenceOrder {
  readonly #mode: ExistenceCheckMode;
  readonly #lookFirstMinSize: number;
  readonly #maxKeys: number;
  readonly #recent = new Set<string>();

  /**
   * @param mode - the driver's `existenceCheck`
   * @param lookFirstMinSize - `auto` mode: the smallest object (bytes) that is always looked up first
   * @param maxKeys - how many recent keys to remember
   */
  constructor(mode: ExistenceCheckMode, lookFirstMinSize: number, maxKeys = EXISTENCE_ORDER_RECENT_KEYS) {
    this.#mode = mode;
    this.#lookFirstMinSize = lookFirstMinSize;
    this.#maxKeys = mode === 'auto' ? maxKeys : 0;
  }

  /** Whether the object `id` of `size` bytes is uploaded create-only before any lookup. */
  uploadFirst(size: number, id: string): boolean {
    if (this.#mode !== 'auto') return this.#mode === 'conditional-put';
    return size < this.#lookFirstMinSize && !this.#recent.has(id);
  }

  /** Whether keys are remembered at all (`auto` mode): callers can skip computing ids otherwise. */
  get remembers(): boolean {
    return this.#maxKeys > 0;
  }

  /** The object `id` was just stored or read: a store of it is likely a repeat. */
  noteExists(id: string): void {
    if (this.#maxKeys === 0) return;
    this.#recent.delete(id);
    this.#recent.add(id);
    if (this.#recent.size > this.#maxKeys) {
      const oldest = this.#recent.values().next();
      if (!oldest.done) this.#recent.delete(oldest.value);
    }
  }

  /** A read found no object `id`. */
  noteMissing(id: string): void {
    this.#recent.delete(id);
  }

  /** A read of the object `id` found it (a later store of it is likely a repeat) or not. */
  noteRead(id: string, found: boolean): void {
    if (found) this.noteExists(id);
    else this.noteMissing(id);
  }
}

/** Cap of {@link refreshAllowance}: 15 minutes. */
export const REFRESH_ALLOWANCE_MAX = 15 * 60_000;

/**
 * How much the clocks of the machines involved (the object store, the storing workers, the
 * sweeper) may disagree, plus how long a refresh may take: a quarter of `refreshAfter`, at most 15
 * minutes. A driver that refreshes an object's last-modified time on a dedup hit older than
 * `refreshAfter` counts it on top of `refreshAfter` before it deletes anything.
 */
export function refreshAllowance(refreshAfter: number): number {
  return Math.min(REFRESH_ALLOWANCE_MAX, Math.floor(refreshAfter / 4));
}

/**
 * The youngest age a conditional delete may target for a driver that refreshes on dedup hits older
 * than `refreshAfter`, with last-modified times of resolution `resolution` ms: `refreshAfter` +
 * {@link refreshAllowance} + `resolution`. An object some `store` returned a claim for within this
 * time is never older than it.
 */
export function refreshMinimumDeleteAge(refreshAfter: number, resolution: number): number {
  return refreshAfter + refreshAllowance(refreshAfter) + resolution;
}

/** Bounds of a `refreshAfter` option ({@link validateRefreshAfter}). */
export interface RefreshAfterBounds {
  /** Smallest value, in ms. */
  readonly min: number;
  /** Largest value, in ms. */
  readonly max: number;
  /** The value when the option is not given, in ms. */
  readonly fallback: number;
  /** Why the minimum is what it is, for the message (e.g. `S3 times have 1 s resolution`). */
  readonly minReason?: string;
}

/**
 * Validates a `refreshAfter` option: an integer number of milliseconds from `min` to `max`;
 * `undefined` gives `fallback`.
 *
 * @throws StorageDriverError `E_CONFIG` naming the bounds
 */
export function validateRefreshAfter(value: unknown, bounds: RefreshAfterBounds): number {
  if (value === undefined) return bounds.fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < bounds.min || value > bounds.max) {
    const why = bounds.minReason === undefined ? '' : ` (${bounds.minReason})`;
    throw configError(
      `refreshAfter must be an integer number of milliseconds from ${bounds.min}${why} to ${bounds.max}, got ${String(value)}`,
    );
  }
  return value;
}

/**
 * The labels of the value segments of a storage key between `v0/` and `d/sha256/{hex}`, by their
 * number: none (no target), `ns` (the namespace digest key of names too long for the store),
 * `ns/wt/wi/ri` (workflow) and `ns/at/ai/ri` (activity).
 */
const KEY_LAYOUTS: ReadonlyMap<number, readonly (readonly string[])[]> = new Map([
  [0, [[]]],
  [2, [['ns']]],
  [
    8,
    [
      ['ns', 'wt', 'wi', 'ri'],
      ['ns', 'at', 'ai', 'ri'],
    ],
  ],
]);

/**
 * The layouts without `ns/{namespace}` that Temporal's official Python S3 driver wrote before 1.35
 * for an empty namespace: `wt/wi/ri` and `at/ai/ri`.
 */
const LEGACY_KEY_LAYOUTS: readonly (readonly string[])[] = [
  ['wt', 'wi', 'ri'],
  ['at', 'ai', 'ri'],
];

/**
 * Splits a storage key (without prefix) into its value segments — `[namespace, type, id, run]`,
 * `[namespace]` or `[]` — if it has the layout `v0/{label}/{value}/.../d/sha256/{64 lower-case
 * hex}` of one of the targets; otherwise a problem: `'shape'` (not `v0/.../d/sha256/{hex}`) or
 * `'structure'` (other labels or another number of segments). The values are not checked: each
 * driver checks them against its own escaping. With `withoutNamespace`, the layouts without a
 * namespace of Python's S3 driver before 1.35 are accepted too (`[type, id, run]`).
 */
export function storageKeyValues(key: string, withoutNamespace = false): string[] | 'shape' | 'structure' {
  const segments = key.split('/');
  const n = segments.length;
  if (
    n < 4 ||
    segments[0] !== 'v0' ||
    segments[n - 3] !== 'd' ||
    segments[n - 2] !== 'sha256' ||
    !isSha256Hex(segments[n - 1])
  ) {
    return 'shape';
  }
  const middle = segments.slice(1, n - 3);
  const layouts = withoutNamespace && middle.length === 6 ? LEGACY_KEY_LAYOUTS : KEY_LAYOUTS.get(middle.length);
  if (layouts?.some((labels) => labels.every((label, i) => middle[2 * i] === label)) !== true) return 'structure';
  return middle.filter((_, i) => i % 2 === 1);
}
