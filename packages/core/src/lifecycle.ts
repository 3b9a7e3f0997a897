/**
 * Lifecycle as one contract (DESIGN §8): last-referenced times, listing, deleting, expiring and
 * closing, the same in every driver. Temporal never deletes offloaded payloads; these types let
 * an operator (or `x-storage sweep` / `x-storage gc`) clean up any driver the same way.
 *
 * Every member is optional for a driver written against the SDK's `StorageDriver` interface; a
 * driver that has them declares so in {@link StorageDriverCapabilities}. Drivers built on
 * `ContentAddressedStorageDriver` get the public methods from the base class and implement
 * `_list` / `_delete` hooks.
 *
 * @module
 */
import type { StorageDriverErrorCode } from './errors';
import type { StorageDriver, StorageDriverClaim } from './types';

/**
 * How stored objects expire.
 *
 * - `native`: the backend removes them by itself once they have not been referenced for `ttl`
 *   (Redis `PX`); `deleteExpired` can still remove objects earlier.
 * - `sweep`: nothing expires until `deleteExpired` (a cron job, `x-storage sweep`) removes objects
 *   not referenced for `olderThan` (default: the driver's `ttl`).
 * - `none`: nothing removes stored objects (no `ttl`, or no lifecycle surface at all).
 */
export type StorageDriverExpiry = 'native' | 'sweep' | 'none';

/**
 * Whether `list` reports a last-referenced time.
 *
 * - `exact`: for every object, refreshed by every `store` that returns a claim for it.
 * - `partial`: for objects this driver wrote or refreshed; objects written by other tools (another
 *   SDK's driver without an expiry, say) may have `lastReferenced: undefined`.
 * - `none`: never known (`list` may still work; `olderThan` filters and `deleteExpired` do not).
 */
export type StorageDriverLastReferenced = 'exact' | 'partial' | 'none';

/**
 * A driver's runtime manifest of what it supports. The conformance suite and the CLI read it
 * instead of probing for methods.
 */
export interface StorageDriverCapabilities {
  /** `list()` is implemented, and `objectIdOf()` with it. */
  readonly list: boolean;
  /** `delete()` is implemented, including conditional deletes (`referencedBefore`). */
  readonly delete: boolean;
  /** `deleteExpired()` is implemented. */
  readonly deleteExpired: boolean;
  /** `close()` is implemented (idempotent; later calls fail with `E_CONFIG`). */
  readonly close: boolean;
  /** How objects expire (see {@link StorageDriverExpiry}). */
  readonly expiry: StorageDriverExpiry;
  /** Whether listed objects carry a last-referenced time (see {@link StorageDriverLastReferenced}). */
  readonly lastReferenced: StorageDriverLastReferenced;
  /** A `store` batch is written in one backend round trip (so an abort cannot stop it half-way). */
  readonly batchedWrites: boolean;
}

/** Capabilities of a driver that declares none: a plain `StorageDriver`. */
export const NO_LIFECYCLE_CAPABILITIES: StorageDriverCapabilities = Object.freeze({
  list: false,
  delete: false,
  deleteExpired: false,
  close: false,
  expiry: 'none',
  lastReferenced: 'none',
  batchedWrites: false,
});

/** One stored object, as {@link StorageDriverLifecycle.list} yields it. */
export interface StoredObject {
  /**
   * The storage key (DESIGN §4.4: `v0/ns/{namespace}/.../d/sha256/{hex}`), without any prefix the
   * driver adds in its backend (a Redis key prefix, an S3 `keyPrefix`).
   */
  readonly key: string;
  /**
   * The object's identity in this driver: equal to {@link StorageDriverLifecycle.objectIdOf} of
   * every claim that points at it, so a collector can match references to objects.
   */
  readonly id: string;
  /**
   * The claim fields (without the hash fields) that point at this object, e.g. `{ key }` or
   * `{ bucket, key }`; what a claim for it would carry.
   */
  readonly location: Readonly<Record<string, string>>;
  /** Stored size in bytes (the serialized `Payload`). */
  readonly size: number;
  /**
   * Time of the latest `store` that returned a claim for the object (first write or dedup hit);
   * `undefined` where the backend cannot know it (see {@link StorageDriverCapabilities.lastReferenced}).
   */
  readonly lastReferenced: Date | undefined;
  /** When the backend will remove the object by itself, if it will (Redis `PX`). */
  readonly expiresAt?: Date | undefined;
  /**
   * Opaque version of the object as listed (an S3 ETag), which `delete` uses to delete exactly
   * this version. Pass listed objects to `delete` unchanged.
   */
  readonly version?: string | undefined;
}

/** Options of {@link StorageDriverLifecycle.list}. */
export interface ListStoredObjectsOptions {
  /**
   * Only objects whose storage key starts with this, e.g. `v0/ns/payments/` (one namespace).
   * Default: every object of the driver.
   */
  prefix?: string;
  /**
   * Only objects last referenced more than this many milliseconds ago (objects whose
   * last-referenced time is unknown are left out). Default: no age filter.
   */
  olderThan?: number;
  /** Stops the listing; the iterator then rejects with `E_ABORTED`. */
  signal?: AbortSignal;
}

/** What {@link StorageDriverLifecycle.delete} deletes: a storage key, or an object `list` yielded. */
export type StoredObjectTarget = string | StoredObject;

/** Options of {@link StorageDriverLifecycle.delete}. */
export interface DeleteStoredObjectsOptions {
  /**
   * Delete an object only if it was last referenced before this time, atomically with respect to
   * concurrent stores: an object a `store` refreshes after this point is kept (counted in
   * `kept`), never deleted from under the claim that store returned. Default: delete
   * unconditionally.
   */
  referencedBefore?: Date;
  /** Aborts the call (`E_ABORTED`); objects already deleted stay deleted. */
  signal?: AbortSignal;
}

/** A per-object failure of a lifecycle operation that carried on with the other objects. */
export interface LifecycleItemError {
  /** Storage key of the object. */
  readonly key: string;
  /** Stable error code. */
  readonly code: StorageDriverErrorCode;
  /** What went wrong (never credentials). */
  readonly message: string;
}

/** What {@link StorageDriverLifecycle.delete} did. */
export interface DeleteStoredObjectsResult {
  /** Objects deleted by this call. */
  readonly deleted: number;
  /**
   * Bytes of the deleted objects that were given as listed objects (their `size`); a storage key
   * given as a string counts 0 (its size is not known without a request).
   */
  readonly deletedBytes: number;
  /** Objects that did not exist (already deleted or expired): not an error. */
  readonly missing: number;
  /** Objects kept because they were referenced at or after `referencedBefore`. */
  readonly kept: number;
  /** Per-object failures; the other objects were processed. */
  readonly errors: readonly LifecycleItemError[];
}

/** Progress of {@link StorageDriverLifecycle.deleteExpired}, reported after each backend batch. */
export interface DeleteExpiredProgress {
  /** Expired candidates found so far. */
  readonly scanned: number;
  /** Objects removed so far (in a dry run: that would be removed). */
  readonly removed: number;
  /** Bytes of the removed objects. */
  readonly removedBytes: number;
}

/** Options of {@link StorageDriverLifecycle.deleteExpired}. */
export interface DeleteExpiredOptions {
  /**
   * Remove objects last referenced more than this many milliseconds ago. Keep it well above the
   * longest a single `store` call can take: a store records its reference when it writes, and
   * returns a little later, so with an `olderThan` shorter than that a store that began before the
   * run could return a claim for an object the run then removes.
   * Default: the driver's `ttl` (`E_CONFIG` if it has none).
   */
  olderThan?: number;
  /** Report what would be removed without removing anything. Default: `false`. */
  dryRun?: boolean;
  /** Remove at most this many objects, then stop with `more: true`. Default: no limit. */
  limit?: number;
  /** Only objects whose storage key starts with this (see {@link ListStoredObjectsOptions.prefix}). */
  prefix?: string;
  /** Stops the run between batches (`E_ABORTED`); objects already removed stay removed. */
  signal?: AbortSignal;
  /** Called after each backend batch. */
  onProgress?: (progress: DeleteExpiredProgress) => void;
}

/** What {@link StorageDriverLifecycle.deleteExpired} did. The same shape for every driver. */
export interface DeleteExpiredResult {
  /** Objects found last referenced before the cutoff (the candidates). */
  readonly scanned: number;
  /**
   * Objects removed (in a dry run: that a real run would remove). Candidates a concurrent store
   * re-referenced during the run are not removed.
   */
  readonly removed: number;
  /** Bytes of the removed objects. */
  readonly removedBytes: number;
  /** `true` when the run stopped at `limit` with candidates left. */
  readonly more: boolean;
  /** Per-object failures; the run carried on with the other objects. */
  readonly errors: readonly LifecycleItemError[];
}

/**
 * The optional lifecycle surface of a storage driver (DESIGN §8). Bundled drivers implement all of
 * it; a third-party driver declares what it has in `capabilities`.
 */
export interface StorageDriverLifecycle {
  /** What this driver supports (read it instead of probing for methods). */
  readonly capabilities: StorageDriverCapabilities;
  /**
   * Streams the driver's stored objects, paged internally with bounded memory.
   *
   * @throws StorageDriverError (from the iterator) `E_ABORTED`, `E_BACKEND`, `E_CONFIG`
   */
  list?(options?: ListStoredObjectsOptions): AsyncIterable<StoredObject>;
  /**
   * The identity ({@link StoredObject.id}) of the object a claim points at, without any I/O.
   *
   * @throws StorageDriverError `E_INVALID_CLAIM` for a malformed or foreign claim
   */
  objectIdOf?(claim: StorageDriverClaim | Readonly<Record<string, string>>): string;
  /**
   * Deletes objects in backend batches. Deleting a missing object is not an error.
   *
   * @throws StorageDriverError `E_INVALID_CLAIM` (a target that is not one of this driver's
   *   objects; nothing deleted), `E_ABORTED`, `E_BACKEND`, `E_CONFIG`
   */
  delete?(
    targets: readonly StoredObjectTarget[],
    options?: DeleteStoredObjectsOptions,
  ): Promise<DeleteStoredObjectsResult>;
  /**
   * Removes objects not referenced for `olderThan` (default: the driver's `ttl`).
   *
   * @throws StorageDriverError `E_CONFIG` (no `olderThan` and no `ttl`), `E_ABORTED`, `E_BACKEND`
   */
  deleteExpired?(options?: DeleteExpiredOptions): Promise<DeleteExpiredResult>;
  /**
   * Releases what the driver created (owned clients, timers), never an injected client.
   * Idempotent; afterwards every call fails with `E_CONFIG`.
   */
  close?(): Promise<void>;
}

/** The capabilities `driver` declares, or {@link NO_LIFECYCLE_CAPABILITIES} for a plain `StorageDriver`. */
export function lifecycleCapabilities(driver: StorageDriver): StorageDriverCapabilities {
  const declared = (driver as Partial<StorageDriverLifecycle>).capabilities;
  if (typeof declared !== 'object' || declared === null) return NO_LIFECYCLE_CAPABILITIES;
  return { ...NO_LIFECYCLE_CAPABILITIES, ...declared };
}
