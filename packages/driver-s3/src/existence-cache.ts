/**
 * The opt-in existence cache of the S3 driver: keys this driver instance knows exist, each with
 * the `LastModified` it last saw, bounded by entries and by age.
 *
 * @module
 */
import { StorageDriverError, StorageDriverErrorCode } from '@x/storage-driver-core';

/** Default {@link S3ExistenceCacheOptions.maxEntries}. */
export const S3_EXISTENCE_CACHE_DEFAULT_MAX_ENTRIES = 10_000;
/**
 * Default {@link S3ExistenceCacheOptions.ttl}: 10 minutes (or half of `refreshAfter`, if that is
 * shorter).
 */
export const S3_EXISTENCE_CACHE_DEFAULT_TTL = 10 * 60_000;

/**
 * The in-process cache of objects this driver instance knows exist (it wrote them, a
 * `HeadObject`/conditional `PutObject` found them, or it retrieved and verified them under a key
 * naming their digest), each with its `LastModified`. Keys are content-addressed, so an object
 * that exists holds exactly the bytes a store would write: a store of a cached key that is not
 * due for a refresh sends no request at all; one older than `refreshAfter` is looked up and
 * refreshed as without the cache. Bounded by entries and by age, because an object can disappear
 * behind the driver's back (a lifecycle expiration, a manual delete).
 */
export interface S3ExistenceCacheOptions {
  /** Most keys remembered (least recently confirmed dropped first), 1–10000000. Default: 10000. */
  maxEntries?: number;
  /**
   * How long a key is trusted after S3 last confirmed it, in milliseconds: from 1 ms to one day,
   * and less than `refreshAfter`. Default: 600000 (10 minutes), or half of `refreshAfter` if that
   * is shorter.
   */
  ttl?: number;
}

function configError(message: string): StorageDriverError {
  return new StorageDriverError(StorageDriverErrorCode.CONFIG, message);
}

/**
 * Validates `existenceCache` against `refreshAfter`; resolves its defaults, or `undefined` when off.
 *
 * @throws StorageDriverError `E_CONFIG`
 */
export function checkExistenceCache(
  cache: unknown,
  refreshAfter: number,
): { maxEntries: number; ttl: number } | undefined {
  if (cache === undefined || cache === false) return undefined;
  if (typeof cache !== 'object' || cache === null) throw configError('existenceCache must be an object or false');
  const { maxEntries, ttl } = cache as S3ExistenceCacheOptions;
  if (maxEntries !== undefined && (!Number.isInteger(maxEntries) || maxEntries < 1 || maxEntries > 10_000_000)) {
    throw configError('existenceCache.maxEntries must be an integer from 1 to 10000000');
  }
  if (ttl !== undefined && (!Number.isInteger(ttl) || ttl < 1 || ttl > 86_400_000)) {
    throw configError('existenceCache.ttl must be an integer number of milliseconds from 1 to 86400000 (1 day)');
  }
  if (ttl !== undefined && ttl >= refreshAfter) {
    throw configError(`existenceCache.ttl (${ttl} ms) must be less than refreshAfter (${refreshAfter} ms)`);
  }
  return {
    maxEntries: maxEntries ?? S3_EXISTENCE_CACHE_DEFAULT_MAX_ENTRIES,
    ttl: ttl ?? Math.min(S3_EXISTENCE_CACHE_DEFAULT_TTL, Math.floor(refreshAfter / 2)),
  };
}

/**
 * Keys known to exist, each with the `LastModified` the driver last saw (driver clock) and the
 * time S3 last confirmed it; insertion order = confirmation order.
 */
export class ExistenceCache {
  private readonly entries = new Map<string, { confirmed: number; lastModified: number }>();
  constructor(
    private readonly maxEntries: number,
    private readonly ttl: number,
  ) {}

  /** The `LastModified` of a key confirmed less than `ttl` ago, else `undefined`. */
  get(id: string): number | undefined {
    const entry = this.entries.get(id);
    if (entry === undefined) return undefined;
    // Monotonic: wall-clock steps do not move it.
    if (performance.now() - entry.confirmed < this.ttl) return entry.lastModified;
    this.entries.delete(id);
    return undefined;
  }

  add(id: string, lastModified: number): void {
    this.entries.delete(id);
    this.entries.set(id, { confirmed: performance.now(), lastModified });
    if (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
  }

  delete(id: string): void {
    this.entries.delete(id);
  }
}
