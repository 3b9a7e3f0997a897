/**
 * The shared content-addressed driver mechanics (DESIGN §4). A backend extends
 * {@link ContentAddressedStorageDriver} and implements only: put-if-absent, get, and the mapping
 * between a location and its claim fields. Everything else — argument validation, Payload
 * serialization, SHA-256, size limits before any write, content-addressed keys, in-batch dedup,
 * integrity checks on read, abort handling and error wrapping — lives here, once.
 *
 * @module
 */
import { abortedError, linkAbortSignals, raceAbort, throwIfAborted } from './abort';
import { hashClaimFields, readClaimData, readClaimHash } from './claims';
import { isStorageDriverError, StorageDriverError, StorageDriverErrorCode } from './errors';
import { sha256Hex } from './hash';
import { fitStorageKey, MAX_STORAGE_KEY_LENGTH, storageKeyPrefix } from './keys';
import { validateDriverName, validateMaxPayloadSize } from './options';
import { decodePayload, encodePlannedPayload, type PayloadPlan, planPayload } from './proto';
import {
  type Payload,
  type StorageDriver,
  StorageDriverClaim,
  type StorageDriverRetrieveContext,
  type StorageDriverStoreContext,
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

/** One distinct object to write, handed to {@link ContentAddressedStorageDriver._putIfAbsent}. */
export interface StoreItem<L extends StorageLocation = StorageLocation> {
  /** Where to write it. */
  readonly location: L;
  /** The serialized `Payload` protobuf: the exact bytes to store. */
  readonly bytes: Uint8Array;
  /** SHA-256 of `bytes`, lower-case hex. */
  readonly sha256: string;
}

/** Context of one backend call made by the base class. */
export interface BackendOperation {
  /** Fires when the caller aborts or a sibling request fails; pass it to every request. */
  readonly signal: AbortSignal;
  /** Name of the driver instance (for error messages). */
  readonly driverName: string;
  /** `store` or `retrieve`. */
  readonly kind: 'store' | 'retrieve';
}

/** Options every content-addressed driver accepts. */
export interface ContentAddressedStorageDriverOptions {
  /**
   * Per-instance routing key written into workflow history. Override it to run several
   * instances of one driver side by side. Default: the driver's fixed default name.
   */
  name?: string;
  /**
   * Largest serialized payload accepted, in bytes. Checked for the whole batch before any write.
   * Default: 52428800 (50 MiB).
   */
  maxPayloadSize?: number;
}

/**
 * Base class of every bundled driver. Public methods validate and orchestrate; the protected
 * `_`-prefixed hooks talk to the backend.
 *
 * Errors: `store` throws `E_TOO_LARGE`, `E_ABORTED`, `E_BACKEND`, `E_CONFIG`; `retrieve` throws
 * `E_INVALID_CLAIM`, `E_NOT_FOUND`, `E_INTEGRITY`, `E_ABORTED`, `E_BACKEND`, `E_CONFIG` (all as
 * {@link StorageDriverError}); API misuse (non-array arguments, non-Payload objects) throws
 * `TypeError`.
 */
export abstract class ContentAddressedStorageDriver<L extends StorageLocation = StorageLocation>
  implements StorageDriver
{
  /** Per-implementation identifier, identical across SDK languages. */
  abstract readonly type: string;
  /** Per-instance routing key written into history. */
  readonly name: string;
  /** Largest serialized payload accepted, in bytes. */
  readonly maxPayloadSize: number;

  /**
   * @throws StorageDriverError `E_CONFIG` if `name` or `maxPayloadSize` is invalid.
   */
  protected constructor(defaultName: string, options: ContentAddressedStorageDriverOptions = {}) {
    this.name = validateDriverName(options.name ?? defaultName);
    this.maxPayloadSize = validateMaxPayloadSize(options.maxPayloadSize);
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
    if (!Array.isArray(payloads)) throw new TypeError('payloads must be an array');
    const ctx = context ?? {};
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
    // Every key of the batch shares its target part: encoded once (the digest is ours, well-formed).
    const keyPrefix = `${storageKeyPrefix(ctx.target)}d/sha256/`;
    const maxKeyLength = this._maxKeyLength();
    for (const [index, payload] of payloads.entries()) {
      const bytes = encodePlannedPayload(plans[index] as PayloadPlan);
      const sha256 = sha256Hex(bytes);
      let key = keyPrefix + sha256;
      // Over the limit: the official drivers' namespace digest key (rare; ids of hundreds of bytes).
      if (key.length > maxKeyLength) key = fitStorageKey(ctx.target, sha256, maxKeyLength);
      const location = this._locate(key, ctx, payload, index);
      locations.push(location);
      const id = this._locationId(location);
      if (!unique.has(id)) unique.set(id, { location, bytes, sha256 });
    }

    await this._run('store', ctx.abortSignal, (op) => this._putIfAbsent([...unique.values()], op));

    return locations.map((location) => {
      const item = unique.get(this._locationId(location)) as StoreItem<L>;
      return new StorageDriverClaim({ ...this._claimFields(location), ...hashClaimFields(item.sha256) });
    });
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
    if (!Array.isArray(claims)) throw new TypeError('claims must be an array');
    const ctx = context ?? {};
    if (claims.length === 0) return [];
    throwIfAborted(ctx.abortSignal, this.name);

    // Array.from, not map: a sparse array's holes must be validated too, not skipped.
    const parsed = Array.from(claims, (claim, index) => {
      const data = readClaimData(claim, index);
      const sha256 = readClaimHash(data, index);
      let location: L;
      try {
        location = this._parseClaim(data, index);
      } catch (e) {
        if (isStorageDriverError(e)) {
          // Helpers such as parseStorageKey do not know the claim's position; the base does.
          if (e.index === undefined) (e as { index: number | undefined }).index = index;
          throw this._withDriverName(e);
        }
        throw new StorageDriverError(StorageDriverErrorCode.INVALID_CLAIM, `Claim ${index} is invalid`, {
          driverName: this.name,
          index,
          cause: e,
        });
      }
      // A content-addressed key names the digest of its object: a claim whose hash disagrees with
      // its own key is refused before any request (any object found there would fail the check).
      const named = KEY_DIGEST.exec(location.key)?.[1];
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

    const found = await this._run('retrieve', ctx.abortSignal, (op) => this._get(uniqueLocations, op));
    if (!Array.isArray(found) || found.length !== uniqueLocations.length) {
      throw new StorageDriverError(StorageDriverErrorCode.BACKEND, 'Backend returned the wrong number of objects', {
        driverName: this.name,
        retryable: false,
      });
    }

    const digests = new Map<number, string>();
    const used = new Set<number>();
    return parsed.map((p, index) => {
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
  }

  /**
   * Maps a content-addressed key (from {@link buildStorageKey}) to a backend location: `{ key }`
   * as is, or with a prefix, a bucket, a resolved path…
   */
  protected abstract _locate(key: string, context: StorageDriverStoreContext, payload: Payload, index: number): L;

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

  /** Identity of a location for dedup. Default: `location.key`. */
  protected _locationId(location: L): string {
    return location.key;
  }

  /** Claim fields (besides the hash fields) that identify `location`. */
  protected abstract _claimFields(location: L): Record<string, string>;

  /**
   * Parses and validates a claim (untrusted) into a location inside this driver's store.
   * Must throw `E_INVALID_CLAIM` for anything that is malformed or points outside the store.
   */
  protected abstract _parseClaim(claimData: Record<string, string>, index: number): L;

  /**
   * Writes each item unless an object already exists at its location. An existing object must
   * be left intact (and, where the backend has a TTL, kept alive for at least the TTL). Resolve
   * only once every item is durably stored. Honour `op.signal`.
   */
  protected abstract _putIfAbsent(items: StoreItem<L>[], op: BackendOperation): Promise<void>;

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
  protected _error(
    code: StorageDriverErrorCode,
    message: string,
    options: { key?: string; index?: number; cause?: unknown; retryable?: boolean } = {},
  ): StorageDriverError {
    return new StorageDriverError(code, message, { ...options, driverName: this.name });
  }

  private _withDriverName(e: StorageDriverError): StorageDriverError {
    if (e.driverName === undefined) (e as { driverName: string | undefined }).driverName = this.name;
    return e;
  }

  private async _run<T>(
    kind: 'store' | 'retrieve',
    signal: AbortSignal | undefined,
    fn: (op: BackendOperation) => Promise<T>,
  ): Promise<T> {
    const link = linkAbortSignals(signal);
    const op: BackendOperation = { signal: link.signal, driverName: this.name, kind };
    try {
      return await raceAbort(fn(op), link.signal, this.name);
    } catch (e) {
      link.abort(e);
      if (signal?.aborted) {
        throw isStorageDriverError(e, StorageDriverErrorCode.ABORTED)
          ? this._withDriverName(e)
          : abortedError(signal, this.name);
      }
      if (isStorageDriverError(e)) throw this._withDriverName(e);
      throw this._wrapError(e, op);
    } finally {
      link.dispose();
    }
  }
}
