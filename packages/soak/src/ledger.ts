/**
 * The ledger of every claim a soak run got back: claim → fingerprint of the bytes it must return.
 * It keeps no payload bytes, only one compact string per distinct claim, so its size is bounded by
 * the number of distinct claims (see `maxClaims`).
 *
 * @module
 */
import { StorageDriverClaim } from '@x/storage-driver-core';
import { type Rng, randomInt } from './workload';

/** Outcome of {@link Ledger.record}. */
export type LedgerRecordResult =
  /** First time this claim was returned. */
  | 'new'
  /** The claim was returned before, for the same content (a dedup hit). */
  | 'known'
  /** The claim was returned before for different content: an integrity failure. */
  | 'conflict';

/** One claim drawn from the ledger, with the fingerprint its payload must have. */
export interface LedgerEntry {
  /** The claim, rebuilt from the ledger (a fresh object, as if read back from history). */
  readonly claim: StorageDriverClaim;
  /** Fingerprint (see `payloadFingerprint`) of the payload the claim must return. */
  readonly fingerprint: string;
}

/** The claim identity: its fields sorted by name, as JSON. */
function identityOf(claim: StorageDriverClaim): string {
  const data = claim.claimData;
  return JSON.stringify(
    Object.keys(data)
      .sort()
      .map((k) => [k, data[k]]),
  );
}

function claimOf(identity: string): StorageDriverClaim {
  return new StorageDriverClaim(Object.fromEntries(JSON.parse(identity) as [string, string][]));
}

/** Claim → expected fingerprint, for every distinct claim returned during a run. */
export class Ledger {
  private readonly expected = new Map<string, string>();
  private readonly identities: string[] = [];
  /** Sum of the data+metadata sizes of the distinct payloads recorded, in bytes. */
  uniqueBytes = 0;

  /** Number of distinct claims recorded. */
  get size(): number {
    return this.identities.length;
  }

  /** Records that `claim` was returned for a payload of `fingerprint` and `bytes` bytes. */
  record(claim: StorageDriverClaim, fingerprint: string, bytes: number): LedgerRecordResult {
    const identity = identityOf(claim);
    const known = this.expected.get(identity);
    if (known !== undefined) return known === fingerprint ? 'known' : 'conflict';
    this.expected.set(identity, fingerprint);
    this.identities.push(identity);
    this.uniqueBytes += bytes;
    return 'new';
  }

  /** Whether two claims are the same claim (same fields, same values). */
  static sameClaim(a: StorageDriverClaim, b: StorageDriverClaim): boolean {
    return identityOf(a) === identityOf(b);
  }

  /** `n` claims drawn at random (with replacement, so a batch may hold one claim twice). */
  sample(rng: Rng, n: number): LedgerEntry[] {
    const out: LedgerEntry[] = [];
    for (let i = 0; i < n && this.identities.length > 0; i++) {
      out.push(this.entry(this.identities[randomInt(rng, this.identities.length)] as string));
    }
    return out;
  }

  /** The recorded claims at positions `[start, end)` (record order). */
  slice(start: number, end: number): LedgerEntry[] {
    return this.identities.slice(start, end).map((id) => this.entry(id));
  }

  private entry(identity: string): LedgerEntry {
    return { claim: claimOf(identity), fingerprint: this.expected.get(identity) as string };
  }
}
