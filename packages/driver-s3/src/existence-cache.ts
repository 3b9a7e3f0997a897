/**
 * What an S3 driver instance knows about which objects exist, and how a store finds out: the
 * existence check of each object a store writes (`existenceCheck`: a `HeadObject`, a conditional
 * `PutObject`, or both), and the opt-in existence cache (`existenceCache`) of the objects this
 * instance wrote, found, or retrieved and verified, each with the `LastModified` it last saw.
 * Keys are content-addressed, so an object that exists holds exactly the bytes a store would
 * write: a store of a cached key that is not due for a refresh sends no request at all.
 *
 * @module
 */
import { ExistenceOrder, type StorageDriverError, type StoreItem } from '@x/storage-driver-core';
import { classifyS3Error } from './errors';
import { locationId, type S3StorageLocation } from './keys';
import type { StoredState } from './lifecycle';
import type { ResolvedExistenceCache, S3ClientLike, S3ExistenceCheck } from './options';
import { headObject, LAST_MODIFIED_RESOLUTION, type ObjectHead, putObject } from './requests';

/** What {@link ExistenceTracker.ensure} found or did: the object's age, and whether this call uploaded it. */
export interface EnsuredState extends StoredState {
  /** `true` if this call uploaded the object; `false` if it was already stored (a dedup hit). */
  readonly written: boolean;
}

/** What the existence check needs from the driver. */
export interface S3ExistenceBackend {
  /** The injected client. */
  readonly client: S3ClientLike;
  /** How a store detects existing objects. */
  readonly existenceCheck: S3ExistenceCheck;
  /** `auto` mode: the smallest object that is always looked up before it is uploaded. */
  readonly headFirstMinSize: number;
  /** The cache's bounds, or `undefined` when it is off. */
  readonly existenceCache: ResolvedExistenceCache | undefined;
  /** Fields every `PutObject` carries (SSE, storage class, `Tagging`). */
  readonly putFields: Readonly<Record<string, string | boolean>>;
  /** The driver's clock (milliseconds since the epoch). */
  now(): number;
  /** Converts an SDK error into a coded error naming the object. */
  fail(error: unknown, kind: 'store', location: S3StorageLocation): StorageDriverError;
}

/**
 * Keys known to exist, each with the `LastModified` the driver last saw (driver clock) and the
 * time S3 last confirmed it; insertion order = confirmation order. Bounded by entries and by age,
 * because an object can disappear behind the driver's back (a lifecycle expiration, a manual
 * delete).
 */
class ExistenceCache {
  readonly #entries = new Map<string, { confirmed: number; lastModified: number }>();
  readonly #maxEntries: number;
  readonly #ttl: number;

  constructor({ maxEntries, ttl }: ResolvedExistenceCache) {
    this.#maxEntries = maxEntries;
    this.#ttl = ttl;
  }

  /** The `LastModified` of a key confirmed less than `ttl` ago, else `undefined`. */
  get(id: string): number | undefined {
    const entry = this.#entries.get(id);
    if (entry === undefined) return undefined;
    // Monotonic: wall-clock steps do not move it.
    if (performance.now() - entry.confirmed < this.#ttl) return entry.lastModified;
    this.#entries.delete(id);
    return undefined;
  }

  add(id: string, lastModified: number): void {
    this.#entries.delete(id);
    this.#entries.set(id, { confirmed: performance.now(), lastModified });
    if (this.#entries.size > this.#maxEntries) {
      const oldest = this.#entries.keys().next();
      if (!oldest.done) this.#entries.delete(oldest.value);
    }
  }

  delete(id: string): void {
    this.#entries.delete(id);
  }
}

/**
 * The existence check and the existence cache of one driver instance. A server that answers a
 * conditional `PutObject` with 501 `NotImplemented` is remembered: from then on every store looks
 * first (`HeadObject`) and sends plain `PutObject`s.
 */
export class ExistenceTracker {
  readonly #b: S3ExistenceBackend;
  /** Keys known to exist (undefined when `existenceCache` is off). */
  readonly #cache: ExistenceCache | undefined;
  /**
   * Per object, the conditional PUT first or the HEAD first (`existenceCheck`, and in `auto` mode
   * `headFirstMinSize` and the keys this instance recently stored or read: a hint, S3 is still asked).
   */
  readonly #order: ExistenceOrder;
  /** Set when the server answered a conditional PUT with 501 NotImplemented. */
  #conditionalPutUnsupported = false;
  /**
   * `LastModified` of the objects running retrieves read (cache on only), by location object: the
   * base class hands `_onVerified` the locations it handed `_get`, and a failed retrieve's entries
   * go with its locations.
   */
  readonly #read = new WeakMap<S3StorageLocation, number>();

  constructor(backend: S3ExistenceBackend) {
    this.#b = backend;
    this.#cache = backend.existenceCache === undefined ? undefined : new ExistenceCache(backend.existenceCache);
    this.#order = new ExistenceOrder(backend.existenceCheck, backend.headFirstMinSize);
  }

  /**
   * Makes sure one object of a store exists, uploading it if it does not; resolves to what is
   * known of its age (a cached key: the cached `LastModified`; one a HEAD found: its HEAD; one
   * uploaded now: the time of the upload) and whether it uploaded it.
   *
   * @throws StorageDriverError naming the object
   */
  async ensure(item: StoreItem<S3StorageLocation>, signal: AbortSignal): Promise<EnsuredState> {
    // Sizes from `item.size`: `item.bytes` of a large payload is joined on first read, which only
    // an upload needs (not a cached key or a HEAD that finds the object).
    const { location, size } = item;
    const b = this.#b;
    const id = locationId(location);
    // Content-addressed: an existing object holds these bytes. Its age is checked at the end.
    const cached = this.#cache?.get(id);
    if (cached !== undefined) return { lastModified: cached, head: undefined, written: false };
    try {
      let refused = false;
      if (!this.#conditionalPutUnsupported && this.#order.uploadFirst(size, id)) {
        const written = await this.#put(item, true, signal, false);
        if (!written.unsupported && !written.exists)
          return { lastModified: written.at, head: undefined, written: true };
        // 412: it exists, of unknown age and size; the HEAD below tells both (and a damaged object
        // of the wrong size is repaired as in the other modes). 501 (no conditional writes): look
        // first from now on, as `head` does. A plain PUT over an existing object would give it a
        // new LastModified with the same ETag, which a delete conditional on the ETag listed
        // before could then remove.
        refused = written.exists;
      }
      const askedAt = b.now();
      let head: ObjectHead | undefined;
      let hidden = false;
      try {
        head = await headObject(b.client, location, signal);
      } catch (e) {
        // 403: no s3:ListBucket, so S3 does not say whether the object exists; try the PUT, unless
        // a conditional PUT has just been refused (it exists: the end of the batch dates it).
        if (classifyS3Error(e) !== 'access-denied') throw e;
        if (refused) return { lastModified: undefined, head: undefined, written: false };
        head = undefined;
        hidden = true;
      }
      if (head !== undefined && (head.size === undefined || head.size === size)) {
        return { lastModified: head.lastModified, head, written: false };
      }
      // A damaged object of the wrong size is overwritten, so that PUT is unconditional.
      const conditional = b.existenceCheck !== 'head' && head === undefined && !this.#conditionalPutUnsupported;
      const written = await this.#put(item, conditional, signal);
      // 412 after a 404: another writer created it after our HEAD, so it is at most that old.
      if (written.exists) {
        return {
          lastModified: hidden ? undefined : askedAt - LAST_MODIFIED_RESOLUTION,
          head: undefined,
          written: false,
        };
      }
      return { lastModified: written.at, head: undefined, written: true };
    } catch (e) {
      throw b.fail(e, 'store', location);
    }
  }

  /**
   * Uploads an object that a refresh found deleted meanwhile (conditional, as a first upload; a
   * 412 means another writer created it since, which the caller dates).
   *
   * @throws StorageDriverError naming the object
   */
  async upload(item: StoreItem<S3StorageLocation>, signal: AbortSignal): Promise<EnsuredState> {
    try {
      const written = await this.#put(item, !this.#conditionalPutUnsupported, signal);
      return { lastModified: written.exists ? undefined : written.at, head: undefined, written: !written.exists };
    } catch (e) {
      throw this.#b.fail(e, 'store', item.location);
    }
  }

  /** After a successful store: remembers each object whose `LastModified` is known (cache on only). */
  remember(items: readonly StoreItem<S3StorageLocation>[], states: readonly StoredState[]): void {
    const cache = this.#cache;
    const order = this.#order;
    if (cache === undefined && !order.remembers) return;
    items.forEach((item, i) => {
      const id = locationId(item.location);
      order.noteExists(id);
      const lastModified = (states[i] as StoredState).lastModified;
      if (lastModified !== undefined) cache?.add(id, lastModified);
    });
  }

  /**
   * What a `GetObject` of a retrieve found: an object (with its `LastModified`, kept until the
   * retrieve has verified it), or none (`undefined`: gone, expired or deleted, so the next store
   * uploads it again).
   */
  noteRead(location: S3StorageLocation, found: { readonly lastModified: number | undefined } | undefined): void {
    const cache = this.#cache;
    const order = this.#order;
    if (cache === undefined && !order.remembers) return;
    const id = locationId(location);
    order.noteRead(id, found !== undefined);
    if (found === undefined) {
      cache?.delete(id);
      return;
    }
    if (cache !== undefined && found.lastModified !== undefined) this.#read.set(location, found.lastModified);
  }

  /**
   * After a successful retrieve: remembers its objects as existing (cache on only). Called only
   * once every object was verified against its claim's SHA-256, the digest its key names.
   */
  learnVerified(locations: readonly S3StorageLocation[]): void {
    const cache = this.#cache;
    if (cache === undefined) return;
    for (const location of locations) {
      const lastModified = this.#read.get(location);
      if (lastModified !== undefined) cache.add(locationId(location), lastModified);
    }
  }

  /**
   * One `PutObject` (see `putObject` in `requests.ts`); a conditional one answered 501 (no
   * conditional writes on this server) is remembered and, with `plainFallback`, sent again plain.
   */
  async #put(
    item: StoreItem<S3StorageLocation>,
    conditional: boolean,
    signal: AbortSignal,
    plainFallback = true,
  ): Promise<{ exists: boolean; at: number; unsupported?: true }> {
    const b = this.#b;
    // The object's LastModified is at least this (S3 dates it when the request arrives, to the second).
    const at = b.now() - LAST_MODIFIED_RESOLUTION;
    const result = await putObject(b.client, item, b.putFields, conditional, signal);
    // Already stored (content-addressed: same bytes), of unknown age.
    if (result === 'exists') return { exists: true, at };
    if (result === 'unsupported') {
      this.#conditionalPutUnsupported = true;
      if (!plainFallback) return { exists: false, at, unsupported: true };
      return this.#put(item, false, signal);
    }
    return { exists: false, at };
  }
}
