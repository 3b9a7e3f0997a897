/**
 * The opt-in existence cache of the S3 driver: keys this driver instance knows exist, each with
 * the `LastModified` it last saw, bounded by entries and by age.
 *
 * @module
 */

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
