/**
 * The shared content-addressed driver mechanics (DESIGN §4). A backend extends
 * {@link ContentAddressedStorageDriver} and implements only: put-if-absent, get, and the mapping
 * between a location and its claim fields. Everything else — argument validation, Payload
 * serialization, SHA-256, size limits before any write, content-addressed keys, in-batch dedup,
 * integrity checks on read, abort handling and error wrapping — lives here, once.
 *
 * @module
 */
import { abortedError, type LinkedAbortController, linkAbortSignals, raceAbort, throwIfAborted } from './abort';
import { hashClaimFields, readClaimData, readClaimHash, requireClaimField } from './claims';
import { isStorageDriverError, StorageDriverError, StorageDriverErrorCode, withErrorContext } from './errors';
import { isSha256Hex, sha256Hex, sha256HexOfParts } from './hash';
import {
  encodeKeySegment,
  fitStorageKey,
  type KeySegmentEncoder,
  MAX_STORAGE_KEY_LENGTH,
  parseStorageKey,
  storageKeyPrefix,
} from './keys';
import type {
  DeleteExpiredOptions,
  DeleteExpiredResult,
  DeleteStoredObjectsOptions,
  DeleteStoredObjectsResult,
  LifecycleItemError,
  ListStoredObjectsOptions,
  StorageDriverCapabilities,
  StorageDriverLifecycle,
  StoredObject,
  StoredObjectTarget,
} from './lifecycle';
import { validateDriverName, validateMaxPayloadSize, validateTtl } from './options';
import { decodePayload, encodePlannedPayloadParts, type PayloadPlan, planPayload } from './proto';
import {
  type Payload,
  type StorageDriver,
  StorageDriverClaim,
  type StorageDriverRetrieveContext,
  type StorageDriverStoreContext,
  type StorageDriverTargetInfo,
} from './types';

/** The digest a content-addressed backend key names at its end (`…sha256/{hex}` or `…sha256:{hex}`). */
const KEY_DIGEST = /sha256[/:]([0-9a-f]{64})$/;

/** Longest key quoted in full in an error message; the `key` property always has all of it. */
const MAX_KEY_IN_MESSAGE = 300;

/**
 * A key as quoted in error messages: keys built from 1,000-character ids can be tens of KB, so
 * long ones keep their head and tail (the digest) with the middle elided.
 */
export function displayKey(key: string): string {
  if (key.length <= MAX_KEY_IN_MESSAGE) return key;
  return `${key.slice(0, 160)}…(${key.length - 280} chars)…${key.slice(-120)}`;
}

/** Where one stored object lives in a backend. `key` is the backend key the claim carries. */
export interface StorageLocation {
  /** The backend key of the object, as written into the claim. */
  readonly key: string;
}

/**
 * One distinct object to write, handed to {@link ContentAddressedStorageDriver._putIfAbsent}.
 *
 * A backend that can write an object from several buffers (a file, a Redis `APPEND`, a stream)
 * writes {@link StoreItem.parts} and reads {@link StoreItem.size}: for a payload whose `data` has
 * at least 64 KiB, core then never copies `data`; reading {@link StoreItem.bytes} joins the parts
 * into one buffer (once, on first read).
 */
export interface StoreItem<L extends StorageLocation = StorageLocation> {
  /** Where to write it. */
  readonly location: L;
  /**
   * The serialized `Payload` protobuf: the exact bytes to store. For a payload of several
   * {@link StoreItem.parts}, a copy made on first read; use `parts` to avoid it.
   */
  readonly bytes: Uint8Array;
  /**
   * The same bytes as consecutive pieces, in order (`bytes` is their concatenation): one piece, or
   * for `data` of at least 64 KiB a small header, the payload's own `data` (not a copy: it must not
   * change while the store runs, which Temporal's pipeline guarantees) and, when the payload has
   * `externalPayloads`, a small trailer.
   */
  readonly parts: readonly Uint8Array[];
  /** Length of `bytes` in bytes (the sum of the parts' lengths), without joining them. */
  readonly size: number;
  /** SHA-256 of `bytes`, lower-case hex. */
  readonly sha256: string;
}

/** A {@link StoreItem} of `parts` whose `bytes` are joined on first read only (an own, enumerable getter). */
function storeItemOf<L extends StorageLocation>(
  location: L,
  parts: Uint8Array[],
  size: number,
  sha256: string,
): StoreItem<L> {
  if (parts.length === 1) return { location, bytes: parts[0] as Uint8Array, parts, size, sha256 };
  let joined: Uint8Array | undefined;
  return {
    location,
    get bytes(): Uint8Array {
      if (joined === undefined) {
        const out = new Uint8Array(Buffer.allocUnsafeSlow(size).buffer, 0, size);
        let offset = 0;
        for (const part of parts) {
          out.set(part, offset);
          offset += part.byteLength;
        }
        joined = out;
      }
      return joined;
    },
    parts,
    size,
    sha256,
  };
}

/**
 * What a backend call is for (in error messages: `store failed: …`): the base class's own kinds, or
 * the name of a driver's maintenance operation run through `runOperation` (e.g. `ensureSchema`).
 */
export type BackendOperationKind = 'store' | 'retrieve' | 'list' | 'delete' | 'close' | (string & {});

/** Context of one backend call made by the base class. */
export interface BackendOperation {
  /** Fires when the caller aborts or a sibling request fails; pass it to every request. */
  readonly signal: AbortSignal;
  /** Name of the driver instance (for error messages). */
  readonly driverName: string;
  /** What the call is for. */
  readonly kind: BackendOperationKind;
}

/** Options every content-addressed driver accepts. */
export interface ContentAddressedStorageDriverOptions {
  /**
   * Per-instance routing key written into workflow history. Override it to run several
   * instances of one driver side by side.
   * @default the driver's fixed default name
   */
  name?: string;
  /**
   * Largest serialized payload accepted, in bytes. Checked for the whole batch before any write.
   * @default 52428800 (50 MiB)
   */
  maxPayloadSize?: number;
  /**
   * How long a stored payload lives after its last reference (the last `store` that returned a
   * claim for it), in milliseconds: the default `olderThan` of `deleteExpired`, and the backend
   * expiry where the backend expires by itself (Redis). Choose it longer than your longest
   * workflow run plus the namespace's retention period. A positive integer.
   * @default undefined (payloads never expire)
   */
  ttl?: number;
  /**
   * The clock, in milliseconds since the epoch: what the driver records as the last-referenced
   * time where it sets that itself (filesystem mtime, PostgreSQL `last_referenced`, the in-memory
   * driver), and what `list({ olderThan })` and `deleteExpired` measure ages from. For tests that
   * need to age objects without waiting; backends that keep time themselves (Redis, S3) ignore it
   * for the times they record.
   * @default Date.now
   */
  clock?: () => number;
}

/**
 * One object a backend's {@link ContentAddressedStorageDriver._list} yields; the base class turns
 * it into a public {@link StoredObject}.
 */
export interface ListedObject<L extends StorageLocation = StorageLocation> {
  /** Where it lives (the same location `_parseClaim` returns for a claim pointing at it). */
  readonly location: L;
  /** Its storage key (DESIGN §4.4), without any backend prefix. */
  readonly key: string;
  /** Stored size in bytes. */
  readonly size: number;
  /** Last-referenced time, if the backend knows it. */
  readonly lastReferenced: Date | undefined;
  /** When the backend removes it by itself, if it does. */
  readonly expiresAt?: Date | undefined;
  /** Opaque version for conditional deletes (an S3 ETag). */
  readonly version?: string | undefined;
}

/** What {@link ContentAddressedStorageDriver._list} is asked for. */
export interface ListQuery {
  /** Only keys starting with this (a storage-key prefix; the base filters again). */
  readonly prefix: string | undefined;
  /**
   * Only objects last referenced before this time, if the backend can filter by it (the base
   * filters again); `undefined` for no age filter.
   */
  readonly referencedBefore: Date | undefined;
  /** Fires when the caller aborts or stops iterating. */
  readonly signal: AbortSignal;
}

/** One object handed to {@link ContentAddressedStorageDriver._delete}. */
export interface DeleteEntry<L extends StorageLocation = StorageLocation> {
  /** Where it lives. */
  readonly location: L;
  /** The version `list` reported, when the target was a listed object. */
  readonly version: string | undefined;
}

/**
 * Outcome of one {@link DeleteEntry}: `deleted`, `missing` (nothing there), `kept` (referenced
 * at or after `referencedBefore`), or the error that object failed with.
 */
export type DeleteOutcome = 'deleted' | 'missing' | 'kept' | StorageDriverError;

/** What `_putIfAbsent` found for one item: it wrote it, or the object was already stored. */
export type PutOutcome = 'written' | 'existed';

/**
 * The key of a context property through which a caller (instrumentation) asks
 * `ContentAddressedStorageDriver` for a {@link StorageOperationReport} of that one `store` or
 * `retrieve` call: set `{ ...context, [STORAGE_OPERATION_REPORT]: (report) => … }`. Drivers not
 * built on the base class ignore it. `Symbol.for`, so it works across copies of core.
 */
export const STORAGE_OPERATION_REPORT: unique symbol = Symbol.for('@x/storage-driver-core/operation-report') as never;

/** What one `store` or `retrieve` call of a `ContentAddressedStorageDriver` did. */
export interface StorageOperationReport {
  /** `store` or `retrieve`. */
  readonly operation: 'store' | 'retrieve';
  /** The driver instance's `name`. */
  readonly driverName: string;
  /** The driver's `type`. */
  readonly driverType: string;
  /** The store's target, if any. */
  readonly target: StorageDriverTargetInfo | undefined;
  /** Payloads stored, or claims retrieved. */
  readonly payloads: number;
  /** Serialized bytes of those payloads (for retrieve: as read back, one count per claim). */
  readonly bytes: number;
  /** Distinct objects written or read (identical payloads of a batch count once). */
  readonly objects: number;
  /** Bytes of those distinct objects. */
  readonly objectBytes: number;
  /** Payloads of the batch that duplicated another of the same batch (`payloads − objects`). */
  readonly inBatchDuplicates: number;
  /** Objects the backend already held (dedup hits), when the driver reports them; else `undefined`. */
  readonly existing: number | undefined;
  /** Wall time of the call, in milliseconds. */
  readonly durationMs: number;
  /** The error the call failed with, if it failed with a coded error. */
  readonly error: StorageDriverError | undefined;
}

/** The callback a caller passes under {@link STORAGE_OPERATION_REPORT}. */
export type StorageOperationReporter = (report: StorageOperationReport) => void;

interface MutableReport {
  operation: 'store' | 'retrieve';
  payloads: number;
  bytes: number;
  objects: number;
  objectBytes: number;
  existing: number | undefined;
  error: StorageDriverError | undefined;
}

function newStats(operation: 'store' | 'retrieve', payloads: number): MutableReport {
  return { operation, payloads, bytes: 0, objects: 0, objectBytes: 0, existing: undefined, error: undefined };
}

function reporterOf(context: unknown): StorageOperationReporter | undefined {
  if (typeof context !== 'object' || context === null) return undefined;
  const reporter = (context as Record<symbol, unknown>)[STORAGE_OPERATION_REPORT];
  return typeof reporter === 'function' ? (reporter as StorageOperationReporter) : undefined;
}

function report(
  reporter: StorageOperationReporter,
  driver: { name: string; type: string },
  stats: MutableReport,
  started: number,
  target: StorageDriverTargetInfo | undefined,
): void {
  try {
    reporter({
      ...stats,
      driverName: driver.name,
      driverType: driver.type,
      target,
      inBatchDuplicates: Math.max(0, stats.payloads - stats.objects),
      durationMs: performance.now() - started,
    });
  } catch {
    // A failing reporter must not change the call's outcome.
  }
}

/** Most key prefixes the default `_parseClaim` remembers as valid. */
const MAX_VALID_KEY_PREFIXES = 1024;

/** Objects per `_delete` call made by `deleteExpired` (S3 `DeleteObjects` takes 1,000 at most). */
const DELETE_BATCH_SIZE = 1000;

/**
 * Base class of every bundled driver. Public methods validate and orchestrate; the protected
 * `_`-prefixed hooks talk to the backend. The lifecycle surface (DESIGN §8: `capabilities`,
 * `list`, `objectIdOf`, `delete`, `deleteExpired`, `close`) is implemented here on top of two
 * optional hooks, `_list` and `_delete`; a driver without them declares no lifecycle.
 *
 * Errors: `store` throws `E_TOO_LARGE`, `E_ABORTED`, `E_BACKEND`, `E_CONFIG`; `retrieve` throws
 * `E_INVALID_CLAIM`, `E_NOT_FOUND`, `E_INTEGRITY`, `E_ABORTED`, `E_BACKEND`, `E_CONFIG` (all as
 * {@link StorageDriverError}); after {@link ContentAddressedStorageDriver.close} every method
 * throws `E_CONFIG`; API misuse (non-array arguments, non-Payload objects) throws `TypeError`.
 */
export abstract class ContentAddressedStorageDriver<L extends StorageLocation = StorageLocation>
  implements StorageDriver, StorageDriverLifecycle
{
  /** Per-implementation identifier, identical across SDK languages. */
  abstract readonly type: string;
  /** Per-instance routing key written into history. */
  readonly name: string;
  /** Largest serialized payload accepted, in bytes. */
  readonly maxPayloadSize: number;
  /** Lifetime after the last reference, in milliseconds, or `undefined` (never expires). */
  readonly ttl: number | undefined;

  readonly #clock: () => number;
  /** Storage-key prefixes of claims the default `_parseClaim` found valid (bounded: cleared when full). */
  readonly #validKeyPrefixes = new Set<string>();
  #capabilities: StorageDriverCapabilities | undefined;
  #closing: Promise<void> | undefined;

  /**
   * @throws StorageDriverError `E_CONFIG` if `name`, `maxPayloadSize`, `ttl` or `clock` is invalid.
   */
  protected constructor(defaultName: string, options: ContentAddressedStorageDriverOptions = {}) {
    this.name = validateDriverName(options.name ?? defaultName);
    this.maxPayloadSize = validateMaxPayloadSize(options.maxPayloadSize);
    this.ttl = validateTtl(options.ttl);
    if (options.clock !== undefined && typeof options.clock !== 'function') {
      throw new StorageDriverError(StorageDriverErrorCode.CONFIG, 'clock must be a function returning milliseconds');
    }
    this.#clock = options.clock ?? Date.now;
  }

  /**
   * What this driver supports (DESIGN §8), computed once from its hooks and its
   * {@link ContentAddressedStorageDriver._capabilities} declaration.
   */
  get capabilities(): StorageDriverCapabilities {
    if (this.#capabilities === undefined) {
      const list = typeof this._list === 'function';
      const del = typeof this._delete === 'function';
      const declared = this._capabilities();
      const lastReferenced = declared.lastReferenced ?? 'none';
      const deleteExpired = list && del && lastReferenced !== 'none';
      this.#capabilities = Object.freeze({
        list,
        delete: del,
        deleteExpired,
        close: true,
        expiry: deleteExpired && this.ttl !== undefined ? 'sweep' : 'none',
        lastReferenced,
        batchedWrites: false,
        ...declared,
      });
    }
    return this.#capabilities;
  }

  /**
   * Stores payloads; resolves to one claim per payload, in order. Identical payloads are written
   * once; objects that already exist are not rewritten.
   *
   * @throws StorageDriverError `E_TOO_LARGE` (nothing of the batch written), `E_ABORTED`, `E_BACKEND`,
   *   `E_CONFIG` (a permanent backend refusal such as missing permissions, when the driver classifies it)
   * @throws TypeError if `payloads` is not an array of Payload objects
   */
  async store(context: StorageDriverStoreContext, payloads: Payload[]): Promise<StorageDriverClaim[]> {
    const reporter = reporterOf(context);
    if (reporter === undefined) return this.#store(context, payloads, undefined);
    const stats = newStats('store', payloads?.length ?? 0);
    const started = performance.now();
    try {
      return await this.#store(context, payloads, stats);
    } catch (e) {
      stats.error = isStorageDriverError(e) ? e : undefined;
      throw e;
    } finally {
      report(reporter, this, stats, started, context?.target);
    }
  }

  async #store(
    context: StorageDriverStoreContext,
    payloads: Payload[],
    stats: MutableReport | undefined,
  ): Promise<StorageDriverClaim[]> {
    if (!Array.isArray(payloads)) throw new TypeError('payloads must be an array');
    const ctx = context ?? {};
    this.#assertOpen('store');
    if (payloads.length === 0) return [];
    throwIfAborted(ctx.abortSignal, this.name);

    // Size limit for the whole batch before serializing or writing anything.
    const plans: PayloadPlan[] = [];
    for (const [index, payload] of payloads.entries()) {
      const plan = planPayload(payload);
      plans.push(plan);
      const size = plan.size;
      if (size > this.maxPayloadSize) {
        throw new StorageDriverError(
          StorageDriverErrorCode.TOO_LARGE,
          `Payload ${index} is ${size} bytes serialized, over maxPayloadSize ${this.maxPayloadSize}; nothing was stored`,
          { driverName: this.name, index },
        );
      }
    }

    const unique = new Map<string, StoreItem<L>>();
    const locations: L[] = [];
    const batchItems: StoreItem<L>[] = [];
    // Every key of the batch shares its target part: encoded once (the digest is ours, well-formed).
    const encode = this.#encodeSegment;
    const keyPrefix = `${storageKeyPrefix(ctx.target, encode)}d/sha256/`;
    const maxKeyLength = this._maxKeyLength();
    // Keys of the S3 spec are ASCII (length = bytes); another encoder may keep Unicode: count bytes.
    const keyLength = encode === encodeKeySegment ? (k: string) => k.length : (k: string) => Buffer.byteLength(k);
    for (const [index, payload] of payloads.entries()) {
      const plan = plans[index] as PayloadPlan;
      // Large `data` is not copied: the object is a header, `data` itself and a trailer.
      const parts = encodePlannedPayloadParts(plan);
      const sha256 = sha256HexOfParts(parts);
      let key = keyPrefix + sha256;
      // Over the limit: the official drivers' namespace digest key (rare; ids of hundreds of bytes).
      if (keyLength(key) > maxKeyLength) key = fitStorageKey(ctx.target, sha256, maxKeyLength, encode);
      const location = this._locate(key, ctx, payload, index);
      locations.push(location);
      const id = this._locationId(location);
      let item = unique.get(id);
      if (item === undefined) {
        item = storeItemOf(location, parts, plan.size, sha256);
        unique.set(id, item);
      }
      batchItems.push(item);
    }

    const items = [...unique.values()];
    if (stats !== undefined) {
      for (const plan of plans) stats.bytes += plan.size;
      stats.objects = items.length;
      for (const item of items) stats.objectBytes += item.size;
    }
    const outcomes = await this.runOperation('store', ctx.abortSignal, (op) => this._putIfAbsent(items, op));
    if (stats !== undefined && Array.isArray(outcomes) && outcomes.length === items.length) {
      stats.existing = outcomes.filter((o) => o === 'existed').length;
    }

    const claims = new Array<StorageDriverClaim>(locations.length);
    for (let i = 0; i < locations.length; i++) {
      const sha256 = (batchItems[i] as StoreItem<L>).sha256;
      // Assigned rather than spread: object spread costs about 1 µs per claim (1,000-payload batches).
      const claimData = Object.assign({}, this._claimFields(locations[i] as L), hashClaimFields(sha256));
      claims[i] = new StorageDriverClaim(claimData);
    }
    return claims;
  }

  /**
   * Retrieves payloads; resolves to one payload per claim, in order. Every claim is validated
   * before any backend call, and every object is checked against the claim's SHA-256.
   *
   * @throws StorageDriverError `E_INVALID_CLAIM` (nothing read), `E_NOT_FOUND`, `E_INTEGRITY`,
   *   `E_ABORTED`, `E_BACKEND`, `E_CONFIG` (permanent backend refusal)
   * @throws TypeError if `claims` is not an array of objects
   */
  async retrieve(context: StorageDriverRetrieveContext, claims: StorageDriverClaim[]): Promise<Payload[]> {
    const reporter = reporterOf(context);
    if (reporter === undefined) return this.#retrieve(context, claims, undefined);
    const stats = newStats('retrieve', claims?.length ?? 0);
    const started = performance.now();
    try {
      return await this.#retrieve(context, claims, stats);
    } catch (e) {
      stats.error = isStorageDriverError(e) ? e : undefined;
      throw e;
    } finally {
      report(reporter, this, stats, started, undefined);
    }
  }

  async #retrieve(
    context: StorageDriverRetrieveContext,
    claims: StorageDriverClaim[],
    stats: MutableReport | undefined,
  ): Promise<Payload[]> {
    if (!Array.isArray(claims)) throw new TypeError('claims must be an array');
    const ctx = context ?? {};
    this.#assertOpen('retrieve');
    if (claims.length === 0) return [];
    throwIfAborted(ctx.abortSignal, this.name);

    // Array.from, not map: a sparse array's holes must be validated too, not skipped.
    const parsed = Array.from(claims, (claim, index) => {
      const data = readClaimData(claim, index);
      const sha256 = readClaimHash(data, index);
      const location = this.#parse(data, index);
      // A content-addressed key names the digest of its object: a claim whose hash disagrees with
      // its own key is refused before any request (any object found there would fail the check).
      // (A key ending in the claim's own digest agrees with it whatever else it holds: no regex.)
      const named = location.key.endsWith(sha256) ? undefined : KEY_DIGEST.exec(location.key)?.[1];
      if (named !== undefined && named !== sha256) {
        throw new StorageDriverError(
          StorageDriverErrorCode.INTEGRITY,
          `Claim ${index} expects sha256 ${sha256}, but its key ${displayKey(location.key)} names ${named}`,
          { driverName: this.name, key: location.key, index },
        );
      }
      return { location, sha256, id: this._locationId(location) };
    });

    const order = new Map<string, number>();
    const uniqueLocations: L[] = [];
    for (const p of parsed) {
      if (!order.has(p.id)) {
        order.set(p.id, uniqueLocations.length);
        uniqueLocations.push(p.location);
      }
    }

    const found = await this.runOperation('retrieve', ctx.abortSignal, (op) => this._get(uniqueLocations, op));
    if (!Array.isArray(found) || found.length !== uniqueLocations.length) {
      throw new StorageDriverError(StorageDriverErrorCode.BACKEND, 'Backend returned the wrong number of objects', {
        driverName: this.name,
        retryable: false,
      });
    }

    const digests = new Map<number, string>();
    const used = new Set<number>();
    const payloads = parsed.map((p, index) => {
      const slot = order.get(p.id) as number;
      const bytes = found[slot];
      if (bytes === undefined || bytes === null) {
        throw new StorageDriverError(
          StorageDriverErrorCode.NOT_FOUND,
          `No stored object at ${displayKey(p.location.key)}`,
          {
            driverName: this.name,
            key: p.location.key,
            index,
          },
        );
      }
      let digest = digests.get(slot);
      if (digest === undefined) {
        digest = sha256Hex(bytes);
        digests.set(slot, digest);
      }
      if (digest !== p.sha256) {
        throw new StorageDriverError(
          StorageDriverErrorCode.INTEGRITY,
          `Stored object at ${displayKey(p.location.key)} has sha256 ${digest}, claim expects ${p.sha256}`,
          { driverName: this.name, key: p.location.key, index },
        );
      }
      // Each claim gets its own byte arrays, even when two claims share one object. `new Uint8Array`
      // copies; `slice()` would not on a Node Buffer (Buffer#slice is a view), which backends return.
      const source = used.has(slot) ? new Uint8Array(bytes) : bytes;
      used.add(slot);
      try {
        return decodePayload(source);
      } catch (e) {
        if (isStorageDriverError(e)) {
          throw new StorageDriverError(e.code, `${e.message} (object ${displayKey(p.location.key)})`, {
            driverName: this.name,
            key: p.location.key,
            index,
            cause: e,
          });
        }
        throw e;
      }
    });
    this._onVerified?.(uniqueLocations);
    if (stats !== undefined) {
      stats.objects = uniqueLocations.length;
      for (const bytes of found) stats.objectBytes += bytes?.byteLength ?? 0;
      for (const p of parsed) stats.bytes += found[order.get(p.id) as number]?.byteLength ?? 0;
    }
    return payloads;
  }

  /**
   * Streams this driver's stored objects (DESIGN §8), paged by the backend with bounded memory.
   * Stopping the iteration early (`break`) releases the backend cursor.
   *
   * @throws StorageDriverError (from the iterator) `E_CONFIG` (no `list` capability, invalid
   *   options, closed driver), `E_ABORTED`, `E_BACKEND`
   */
  async *list(options: ListStoredObjectsOptions = {}): AsyncIterable<StoredObject> {
    const { prefix, olderThan, signal } = checkListOptions(options, 'list');
    const referencedBefore = olderThan === undefined ? undefined : new Date(this.now() - olderThan);
    yield* this.#list(prefix, referencedBefore, signal);
  }

  /**
   * The identity of the object a claim points at ({@link StoredObject.id}), with no I/O: what a
   * garbage collector compares with the ids `list` yields. The claim is validated as `retrieve`
   * validates it (claims come from workflow history).
   *
   * @throws StorageDriverError `E_INVALID_CLAIM` for a malformed or foreign claim
   */
  objectIdOf(claim: StorageDriverClaim | Readonly<Record<string, string>>): string {
    const wrapped = typeof (claim as { claimData?: unknown }).claimData === 'object' ? claim : { claimData: claim };
    return this._locationId(this.#parse(readClaimData(wrapped, 0), 0));
  }

  /**
   * Deletes objects — storage keys, or objects `list` yielded (pass those unchanged: they carry
   * the version that makes a conditional delete exact) — in backend batches. Deleting a missing
   * object is not an error. With `referencedBefore`, an object is deleted only if it was last
   * referenced before that time, atomically with respect to concurrent stores.
   *
   * @throws StorageDriverError `E_CONFIG` (no `delete` capability, a `referencedBefore` later
   *   than this driver can delete safely, closed driver), `E_INVALID_CLAIM` (a target that is not
   *   one of this driver's objects; nothing deleted), `E_ABORTED`, `E_BACKEND`
   * @throws TypeError if `targets` is not an array
   */
  async delete(
    targets: readonly StoredObjectTarget[],
    options: DeleteStoredObjectsOptions = {},
  ): Promise<DeleteStoredObjectsResult> {
    if (!Array.isArray(targets)) throw new TypeError('targets must be an array of storage keys or listed objects');
    if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
    this.#assertOpen('delete');
    const del = this.#deleteHook('delete');
    const referencedBefore = options.referencedBefore;
    if (referencedBefore !== undefined) this.#checkCutoff(referencedBefore, 'delete');
    const entries = this.#deleteEntries(targets);
    const outcomes =
      entries.length === 0
        ? []
        : await this.runOperation('delete', options.signal, (op) =>
            del.call(
              this,
              entries.map((e) => e.entry),
              { referencedBefore },
              op,
            ),
          );
    const tally = this.#tally(entries, outcomes);
    return {
      deleted: tally.deleted,
      deletedBytes: tally.deletedBytes,
      missing: tally.missing,
      kept: tally.kept,
      errors: tally.errors,
    };
  }

  /**
   * Removes objects not referenced for `olderThan` milliseconds (default: `ttl`): lists the
   * candidates and deletes them in batches of 1,000, each delete conditional on the object still
   * being unreferenced since the cutoff, which is fixed when the run starts. So an object whose
   * `store` returned after the run began is never removed by it; candidates re-referenced during
   * the run are left alone (and not counted in `removed`). A dry run lists the same candidates
   * and removes nothing.
   *
   * @throws StorageDriverError `E_CONFIG` (no `olderThan` and no `ttl`, no `deleteExpired`
   *   capability, invalid options, closed driver), `E_ABORTED` (between batches; objects already
   *   removed stay removed), `E_BACKEND`
   */
  async deleteExpired(options: DeleteExpiredOptions = {}): Promise<DeleteExpiredResult> {
    const { prefix, olderThan: given, signal } = checkListOptions(options, 'deleteExpired');
    const { dryRun = false, limit, onProgress } = options;
    if (typeof dryRun !== 'boolean') throw this.createError(StorageDriverErrorCode.CONFIG, 'dryRun must be a boolean');
    if (limit !== undefined && (!Number.isSafeInteger(limit) || limit < 1)) {
      throw this.createError(StorageDriverErrorCode.CONFIG, 'limit must be a positive integer');
    }
    if (onProgress !== undefined && typeof onProgress !== 'function') {
      throw this.createError(StorageDriverErrorCode.CONFIG, 'onProgress must be a function');
    }
    this.#assertOpen('deleteExpired');
    if (!this.capabilities.deleteExpired) {
      throw this.createError(StorageDriverErrorCode.CONFIG, `deleteExpired is not supported by ${this.type}`);
    }
    const olderThan = given ?? this.ttl;
    if (olderThan === undefined) {
      throw this.createError(
        StorageDriverErrorCode.CONFIG,
        'deleteExpired needs olderThan (milliseconds) or a driver configured with a ttl',
      );
    }
    const at = this.now();
    const cutoff = new Date(at - olderThan);
    this.#checkCutoff(cutoff, 'deleteExpired', at); // against the same instant: olderThan itself decides
    const del = this.#deleteHook('deleteExpired');
    const housekeeping = this._housekeeping;
    if (typeof housekeeping === 'function') {
      await this.runOperation('delete', signal, (op) => housekeeping.call(this, { dryRun }, op));
    }

    let scanned = 0;
    let removed = 0;
    let removedBytes = 0;
    let more = false;
    const errors: LifecycleItemError[] = [];
    let batch: StoredObject[] = [];
    const flush = async () => {
      if (batch.length === 0) return;
      const objects = batch;
      batch = [];
      if (dryRun) {
        removed += objects.length;
        for (const o of objects) removedBytes += o.size;
      } else {
        const entries = this.#deleteEntries(objects);
        const outcomes = await this.runOperation('delete', signal, (op) =>
          del.call(
            this,
            entries.map((e) => e.entry),
            { referencedBefore: cutoff },
            op,
          ),
        );
        const tally = this.#tally(entries, outcomes);
        removed += tally.deleted;
        removedBytes += tally.deletedBytes;
        errors.push(...tally.errors);
      }
      onProgress?.({ scanned, removed, removedBytes });
    };
    for await (const object of this.#list(prefix, cutoff, signal)) {
      if (limit !== undefined && removed + batch.length >= limit) {
        // One candidate beyond the limit: there is more to do.
        more = true;
        break;
      }
      scanned++;
      batch.push(object);
      if (batch.length >= DELETE_BATCH_SIZE) await flush();
    }
    await flush();
    return { scanned, removed, removedBytes, more, errors };
  }

  /**
   * Releases what the driver created (owned clients, timers; see the driver's `_close`), never an
   * injected client. Idempotent: every call returns the same promise. Calls started afterwards
   * fail with `E_CONFIG` (not retryable).
   *
   * @throws StorageDriverError `E_BACKEND` if releasing an owned client failed
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      if (typeof this._close !== 'function') return;
      try {
        await this._close();
      } catch (e) {
        if (isStorageDriverError(e)) throw withErrorContext(e, { driverName: this.name });
        throw this._wrapError(e, { signal: new AbortController().signal, driverName: this.name, kind: 'close' });
      }
    })();
    return this.#closing;
  }

  /**
   * Maps a content-addressed key (from {@link buildStorageKey}) to a backend location: `{ key }`
   * as is, or with a prefix, a bucket, a resolved path… Default: `{ key }`, for backends whose
   * location is the storage key itself (override `_locate`, `_claimFields` and `_parseClaim`
   * together when the location holds more).
   */
  protected _locate(key: string, _context: StorageDriverStoreContext, _payload: Payload, _index: number): L {
    return { key } as L;
  }

  /**
   * Longest content-addressed key handed to {@link ContentAddressedStorageDriver._locate}, in
   * characters (keys are ASCII). A longer key is replaced by the official drivers' fallback
   * (`v0/ns/{namespace}/d/sha256/{hex}`, see {@link fitStorageKey}). Override it for a backend
   * with a tighter limit (S3 with a key prefix) or none worth applying. Default: 1024
   * ({@link MAX_STORAGE_KEY_LENGTH}), what Temporal's official S3 and GCS drivers use; at least 147.
   */
  protected _maxKeyLength(): number {
    return MAX_STORAGE_KEY_LENGTH;
  }

  /**
   * Escapes one dynamic key segment (namespace, type, id, run id) of the keys this driver writes.
   * Default: {@link encodeKeySegment}, the S3 key spec every official driver but GCS follows.
   * Override only to be wire-compatible with official drivers that escape another set (GCS).
   */
  protected _encodeKeySegment(value: string | undefined | null): string {
    return encodeKeySegment(value);
  }

  /** `_encodeKeySegment`, or the core encoder itself when it is not overridden (its fast path). */
  get #encodeSegment(): KeySegmentEncoder {
    return this._encodeKeySegment === ContentAddressedStorageDriver.prototype._encodeKeySegment
      ? encodeKeySegment
      : (value) => this._encodeKeySegment(value);
  }

  /** Identity of a location for dedup. Default: `location.key`. */
  protected _locationId(location: L): string {
    return location.key;
  }

  /** Claim fields (besides the hash fields) that identify `location`. Default: `{ key }`. */
  protected _claimFields(location: L): Record<string, string> {
    return { key: location.key };
  }

  /**
   * Parses and validates a claim (untrusted) into a location inside this driver's store.
   * Must throw `E_INVALID_CLAIM` for anything that is malformed or points outside the store.
   * Default: the claim's `key` must be a canonical storage key (`parseStorageKey`), and the
   * location is `{ key }`.
   */
  protected _parseClaim(claimData: Record<string, string>, index: number): L {
    const key = requireClaimField(claimData, 'key', index);
    // A prefix (everything up to the digest) already parsed as valid, and a well-formed digest:
    // the same verdict as a full parse, without it (a batch's claims share their prefix).
    const cut = key.lastIndexOf('/') + 1;
    const prefix = key.slice(0, cut);
    if (!(this.#validKeyPrefixes.has(prefix) && isSha256Hex(key.slice(cut)))) {
      parseStorageKey(key);
      if (this.#validKeyPrefixes.size >= MAX_VALID_KEY_PREFIXES) this.#validKeyPrefixes.clear();
      this.#validKeyPrefixes.add(prefix);
    }
    return { key } as L;
  }

  /**
   * Writes each item unless an object already exists at its location. An existing object must
   * be left intact (and, where the backend has a TTL, kept alive for at least the TTL). Resolve
   * only once every item is durably stored. Honour `op.signal`. Optionally resolve to one
   * {@link PutOutcome} per item, in order (`existed` where the backend found the object already
   * stored), which instrumentation reports as dedup hits.
   */
  // biome-ignore lint/suspicious/noConfusingVoidType: a hook written before outcomes existed resolves to nothing
  protected abstract _putIfAbsent(items: StoreItem<L>[], op: BackendOperation): Promise<void | readonly PutOutcome[]>;

  /** Reads each location; `undefined` where no object exists. Same length and order as `locations`. */
  protected abstract _get(locations: L[], op: BackendOperation): Promise<(Uint8Array | undefined)[]>;

  /**
   * Converts a backend error that is not already a {@link StorageDriverError}. Default:
   * `E_BACKEND`, retryable. Override to classify permanent failures (`E_CONFIG`, ...).
   */
  protected _wrapError(error: unknown, op: BackendOperation): StorageDriverError {
    const message = error instanceof Error ? error.message : String(error);
    return new StorageDriverError(StorageDriverErrorCode.BACKEND, `${op.kind} failed: ${message}`, {
      driverName: this.name,
      cause: error,
    });
  }

  /** Creates an error carrying this driver's name. */
  protected createError(
    code: StorageDriverErrorCode,
    message: string,
    options: { key?: string; index?: number; cause?: unknown; retryable?: boolean } = {},
  ): StorageDriverError {
    return new StorageDriverError(code, message, { ...options, driverName: this.name });
  }

  /**
   * Optional hook: yields this driver's stored objects (see {@link ListedObject}), paged, with
   * bounded memory; filter by `query.prefix` and `query.referencedBefore` in the backend where it
   * can (the base class filters again). Honour `query.signal`. Implement it (with
   * {@link ContentAddressedStorageDriver._delete}) to get `list`, `delete` and `deleteExpired`.
   */
  protected _list?(query: ListQuery): AsyncIterable<ListedObject<L>>;

  /**
   * Optional hook: deletes each entry in backend batches and returns one outcome per entry, in
   * order. With `options.referencedBefore`, delete an object only if its last-referenced time is
   * still before it, atomically with respect to a concurrent store's refresh (a conditional
   * statement, a script, an ETag precondition…); report the others as `kept`. A missing object is
   * `missing`. Per-object failures are outcomes; throw only when the whole call failed.
   */
  protected _delete?(
    entries: DeleteEntry<L>[],
    options: { readonly referencedBefore: Date | undefined },
    op: BackendOperation,
  ): Promise<DeleteOutcome[]>;

  /**
   * Optional hook: backend housekeeping that `deleteExpired` runs first, e.g. removing the
   * temporary files of crashed writers. Must remove nothing in a dry run.
   */
  protected _housekeeping?(options: { readonly dryRun: boolean }, op: BackendOperation): Promise<void>;

  /**
   * Optional hook: called after a successful `retrieve` with the locations whose objects were
   * read and verified against their claims' SHA-256 (their keys name that digest), e.g. to
   * remember them as existing. Not called when the retrieve fails.
   */
  protected _onVerified?(locations: readonly L[]): void;

  /** Optional hook: releases what the driver created (owned clients, timers), once, at `close()`. */
  protected _close?(): Promise<void>;

  /**
   * Declares capabilities the base class cannot see from the hooks (`lastReferenced`, `expiry`,
   * `batchedWrites`). Default: none (`lastReferenced: 'none'`, so no `deleteExpired`).
   */
  protected _capabilities(): Partial<StorageDriverCapabilities> {
    return {};
  }

  /**
   * Location of a storage key given to `delete` as a string. Default: the location of a claim
   * `{ key }` (backends whose claim key is the storage key). Override where the claim key differs
   * (a Redis key prefix) or needs more (an S3 bucket).
   *
   * @throws StorageDriverError `E_INVALID_CLAIM` for a malformed key, `E_CONFIG` where a bare key
   *   is ambiguous
   */
  protected _locateKey(key: string, index: number): L {
    return this._parseClaim({ key }, index);
  }

  /**
   * The youngest age (milliseconds) a conditional delete may target: `delete` with a
   * `referencedBefore` later than now minus this, and `deleteExpired` with a smaller `olderThan`,
   * fail with `E_CONFIG`. For backends that refresh an object's age only once it is older than a
   * threshold (S3). Default: 0.
   */
  protected _minimumDeleteAge(): number {
    return 0;
  }

  /** The driver's clock (the `clock` option), in milliseconds since the epoch. */
  protected now(): number {
    return this.#clock();
  }

  /**
   * Runs one backend call with the abort handling and error wrapping `store` and `retrieve` get:
   * `fn` receives a signal linked to the caller's (and fired on failure), the call rejects
   * promptly with `E_ABORTED` when the caller aborts, a `StorageDriverError` passes through with
   * the driver's name, and anything else goes through {@link ContentAddressedStorageDriver._wrapError}.
   * For maintenance operations of a driver (`ensureSchema`, …). Rejects with `E_CONFIG` once the
   * driver is closed.
   */
  protected async runOperation<T>(
    kind: BackendOperationKind,
    signal: AbortSignal | undefined,
    fn: (op: BackendOperation) => Promise<T>,
  ): Promise<T> {
    this.#assertOpen(kind);
    const link = linkAbortSignals(signal);
    const op: BackendOperation = { signal: link.signal, driverName: this.name, kind };
    try {
      return await raceAbort(fn(op), link.signal, this.name);
    } catch (e) {
      link.abort(e);
      throw this.#classify(e, signal, op);
    } finally {
      link.dispose();
    }
  }

  #classify(e: unknown, signal: AbortSignal | undefined, op: BackendOperation): StorageDriverError {
    if (signal?.aborted) {
      return isStorageDriverError(e, StorageDriverErrorCode.ABORTED)
        ? withErrorContext(e, { driverName: this.name })
        : abortedError(signal, this.name);
    }
    if (isStorageDriverError(e)) return withErrorContext(e, { driverName: this.name });
    return this._wrapError(e, op);
  }

  #assertOpen(what: string): void {
    if (this.#closing !== undefined) {
      throw this.createError(StorageDriverErrorCode.CONFIG, `${what} failed: the driver is closed`, {
        retryable: false,
      });
    }
  }

  /** `_parseClaim`, with the claim's position and the driver's name on every error. */
  #parse(data: Record<string, string>, index: number): L {
    try {
      return this._parseClaim(data, index);
    } catch (e) {
      if (isStorageDriverError(e)) {
        // Helpers such as parseStorageKey do not know the claim's position; the base does.
        throw withErrorContext(e, { driverName: this.name, index });
      }
      throw new StorageDriverError(StorageDriverErrorCode.INVALID_CLAIM, `Claim ${index} is invalid`, {
        driverName: this.name,
        index,
        cause: e,
      });
    }
  }

  #deleteHook(what: string): NonNullable<ContentAddressedStorageDriver<L>['_delete']> {
    const del = this._delete;
    if (typeof del !== 'function') {
      throw this.createError(StorageDriverErrorCode.CONFIG, `${what} is not supported by ${this.type}`);
    }
    return del;
  }

  #checkCutoff(referencedBefore: Date, what: string, now = this.now()): void {
    if (!(referencedBefore instanceof Date) || Number.isNaN(referencedBefore.getTime())) {
      throw this.createError(StorageDriverErrorCode.CONFIG, `${what}: referencedBefore must be a valid Date`);
    }
    const minimum = this._minimumDeleteAge();
    if (minimum > 0 && referencedBefore.getTime() > now - minimum) {
      throw this.createError(
        StorageDriverErrorCode.CONFIG,
        `${what}: ${this.type} can only delete objects unreferenced for at least ${minimum} ms (a store refreshes an object's age only once it is older than that)`,
      );
    }
  }

  /** Validated delete entries, deduplicated by location; each keeps the size `list` reported. */
  #deleteEntries(targets: readonly StoredObjectTarget[]): { entry: DeleteEntry<L>; key: string; size: number }[] {
    const seen = new Set<string>();
    const out: { entry: DeleteEntry<L>; key: string; size: number }[] = [];
    // An index loop, not forEach: a sparse array's holes are misuse too, not skipped.
    for (let index = 0; index < targets.length; index++) {
      const target = targets[index] as StoredObjectTarget;
      let location: L;
      let version: string | undefined;
      let size = 0;
      if (typeof target === 'string') {
        try {
          location = this._locateKey(target, index);
        } catch (e) {
          throw this.#classify(e, undefined, {
            signal: new AbortController().signal,
            driverName: this.name,
            kind: 'delete',
          });
        }
      } else if (typeof target === 'object' && target !== null && typeof target.location === 'object') {
        location = this.#parse({ ...target.location }, index);
        version = typeof target.version === 'string' ? target.version : undefined;
        size = typeof target.size === 'number' ? target.size : 0;
      } else {
        throw new TypeError(`targets[${index}] must be a storage key or an object list() yielded`);
      }
      const id = this._locationId(location);
      if (seen.has(id)) continue;
      seen.add(id);
      out.push({ entry: { location, version }, key: typeof target === 'string' ? target : target.key, size });
    }
    return out;
  }

  #tally(
    entries: readonly { key: string; size: number }[],
    outcomes: readonly DeleteOutcome[],
  ): { deleted: number; deletedBytes: number; missing: number; kept: number; errors: LifecycleItemError[] } {
    if (!Array.isArray(outcomes) || outcomes.length !== entries.length) {
      throw this.createError(StorageDriverErrorCode.BACKEND, 'Backend returned the wrong number of delete outcomes', {
        retryable: false,
      });
    }
    const t = { deleted: 0, deletedBytes: 0, missing: 0, kept: 0, errors: [] as LifecycleItemError[] };
    outcomes.forEach((outcome, i) => {
      const entry = entries[i] as { key: string; size: number };
      if (outcome === 'deleted') {
        t.deleted++;
        t.deletedBytes += entry.size;
      } else if (outcome === 'missing') t.missing++;
      else if (outcome === 'kept') t.kept++;
      else t.errors.push({ key: entry.key, code: outcome.code, message: outcome.message });
    });
    return t;
  }

  async *#list(
    prefix: string | undefined,
    referencedBefore: Date | undefined,
    signal: AbortSignal | undefined,
  ): AsyncGenerator<StoredObject> {
    this.#assertOpen('list');
    const hook = this._list;
    if (typeof hook !== 'function') {
      throw this.createError(StorageDriverErrorCode.CONFIG, `list is not supported by ${this.type}`);
    }
    const link: LinkedAbortController = linkAbortSignals(signal);
    const op: BackendOperation = { signal: link.signal, driverName: this.name, kind: 'list' };
    const before = referencedBefore?.getTime();
    try {
      const iterator = hook.call(this, { prefix, referencedBefore, signal: link.signal })[Symbol.asyncIterator]();
      try {
        while (true) {
          let step: IteratorResult<ListedObject<L>>;
          try {
            step = await raceAbort(iterator.next(), link.signal, this.name);
          } catch (e) {
            link.abort(e);
            throw this.#classify(e, signal, op);
          }
          if (step.done) return;
          const o = step.value;
          if (prefix !== undefined && !o.key.startsWith(prefix)) continue;
          if (before !== undefined && !(o.lastReferenced !== undefined && o.lastReferenced.getTime() < before))
            continue;
          yield {
            key: o.key,
            id: this._locationId(o.location),
            location: Object.freeze(this._claimFields(o.location)),
            size: o.size,
            lastReferenced: o.lastReferenced,
            ...(o.expiresAt === undefined ? {} : { expiresAt: o.expiresAt }),
            ...(o.version === undefined ? {} : { version: o.version }),
          };
        }
      } finally {
        // Stopped early (break, abort, error): release the backend's cursor.
        link.abort();
        await iterator.return?.().catch(() => {});
      }
    } finally {
      link.dispose();
    }
  }
}

/** Validates the options `list` and `deleteExpired` share. */
function checkListOptions(
  options: ListStoredObjectsOptions,
  what: string,
): { prefix: string | undefined; olderThan: number | undefined; signal: AbortSignal | undefined } {
  const bad = (why: string) => new StorageDriverError(StorageDriverErrorCode.CONFIG, `${what}: ${why}`);
  if (typeof options !== 'object' || options === null) throw bad('options must be an object');
  const { prefix, olderThan, signal } = options;
  if (prefix !== undefined && typeof prefix !== 'string') throw bad('prefix must be a string');
  if (olderThan !== undefined && (typeof olderThan !== 'number' || !Number.isSafeInteger(olderThan) || olderThan < 0)) {
    throw bad('olderThan must be a non-negative integer number of milliseconds');
  }
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw bad('signal must be an AbortSignal');
  return { prefix, olderThan, signal };
}
