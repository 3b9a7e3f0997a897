/**
 * The mark set of `x-storage gc`: a compact set of 64-bit digests of object ids (the first 8
 * bytes of their SHA-256), in an open-addressing hash table on one `Uint32Array`. A million marked
 * ids take 8–16 MiB (the table doubles at 70 % load) instead of the ~100+ MiB a `Set<string>` of
 * storage keys would. Two ids sharing a digest only make the collector keep an object it could
 * have deleted (a chance of about n² / 2⁶⁵: 3 × 10⁻⁸ for a million ids), never delete one.
 *
 * @module
 */
import { createHash } from 'node:crypto';

const INITIAL_SLOTS = 1 << 12;
const MAX_LOAD = 0.7;

/** A set of 64-bit digests of strings. */
export class DigestSet {
  /** Two words (high, low) per slot; `0, 0` is an empty slot (a digest of zero is stored as `0, 1`). */
  #table = new Uint32Array(INITIAL_SLOTS * 2);
  #mask = INITIAL_SLOTS - 1;
  #size = 0;

  /** Number of distinct digests held. */
  get size(): number {
    return this.#size;
  }

  /** Bytes of the table (what the set costs, give or take a few dozen bytes). */
  get byteLength(): number {
    return this.#table.byteLength;
  }

  /** Adds the digest of `value`; returns `true` if it was not there yet. */
  add(value: string): boolean {
    const [high, low] = digest(value);
    return this.#insert(high, low);
  }

  /** Whether the digest of `value` is in the set. */
  has(value: string): boolean {
    const [high, low] = digest(value);
    const table = this.#table;
    for (let slot = low & this.#mask; ; slot = (slot + 1) & this.#mask) {
      const h = table[slot * 2] as number;
      const l = table[slot * 2 + 1] as number;
      if (h === 0 && l === 0) return false;
      if (h === high && l === low) return true;
    }
  }

  #insert(high: number, low: number): boolean {
    const table = this.#table;
    let slot = low & this.#mask;
    for (;;) {
      const h = table[slot * 2] as number;
      const l = table[slot * 2 + 1] as number;
      if (h === 0 && l === 0) break;
      if (h === high && l === low) return false;
      slot = (slot + 1) & this.#mask;
    }
    table[slot * 2] = high;
    table[slot * 2 + 1] = low;
    this.#size++;
    if (this.#size > (this.#mask + 1) * MAX_LOAD) this.#grow();
    return true;
  }

  #grow(): void {
    const old = this.#table;
    const slots = (this.#mask + 1) * 2;
    this.#table = new Uint32Array(slots * 2);
    this.#mask = slots - 1;
    this.#size = 0;
    for (let i = 0; i < old.length; i += 2) {
      const h = old[i] as number;
      const l = old[i + 1] as number;
      if (h !== 0 || l !== 0) this.#insert(h, l);
    }
  }
}

/** The first 8 bytes of the SHA-256 of `value` (UTF-8) as two 32-bit words; never `0, 0`. */
function digest(value: string): [number, number] {
  const bytes = createHash('sha256').update(value, 'utf8').digest();
  const high = bytes.readUInt32BE(0);
  const low = bytes.readUInt32BE(4);
  return high === 0 && low === 0 ? [0, 1] : [high, low];
}
