/**
 * What every topic of the conformance suite gets from {@link runStorageDriverConformance}: the
 * runner's functions, the harness, its capabilities and hooks, and the shared helpers that create
 * drivers and round-trip payloads.
 *
 * @module
 */
import assert from 'node:assert/strict';
import {
  type Payload,
  type StorageDriver,
  StorageDriverClaim,
  type StorageDriverTargetInfo,
} from '@x/storage-driver-core';
import type {
  ConformanceCapabilities,
  ConformanceTestApi,
  HarnessDriverOptions,
  StorageDriverHarness,
  StorageDriverHarnessHooks,
} from './harness';

/** The context a topic's `register…Tests` function receives. */
export interface SuiteContext<D extends StorageDriver> {
  /** The runner's `describe`. */
  readonly describe: ConformanceTestApi['describe'];
  /** Declares one test. */
  readonly it: (name: string, fn: () => void | Promise<void>) => void;
  /** Declares a test as skipped, saying why. */
  readonly skip: (name: string, why: string) => void;
  /** The harness under test. */
  readonly harness: StorageDriverHarness<D>;
  /** Its capabilities, defaults applied. */
  readonly caps: ConformanceCapabilities;
  /** Its hooks. */
  readonly hooks: StorageDriverHarnessHooks<D>;
  /** Creates a driver (destroyed after the test). */
  readonly create: (options?: HarnessDriverOptions) => Promise<D>;
  /** A second instance over the same store (only when `harness.reopen` exists). */
  readonly reopen: (driver: D) => Promise<D>;
  /** Stores `payloads`, checks the claims' shape, retrieves them through JSON and compares. */
  readonly roundTrip: (
    driver: D,
    payloads: Payload[],
    target?: StorageDriverTargetInfo,
  ) => Promise<StorageDriverClaim[]>;
  /** `hooks.countObjects`, if provided. */
  readonly count: ((driver: D) => Promise<number>) | undefined;
  /** Registers a test that needs `hooks.countObjects`, or a skip saying so. */
  readonly itCounting: (name: string, fn: (countObjects: (d: D) => Promise<number>) => Promise<void>) => void;
}

/** One KiB. */
export const KiB = 1024;
/** One MiB. */
export const MiB = 1024 * KiB;

export function cloneClaim(claim: StorageDriverClaim, changes: Record<string, string | undefined>): StorageDriverClaim {
  const data: Record<string, string> = { ...claim.claimData };
  for (const [k, v] of Object.entries(changes)) {
    if (v === undefined) delete data[k];
    else data[k] = v;
  }
  return new StorageDriverClaim(data);
}

/** Replaces every occurrence of `from` in every claim field (used to forge a never-stored object). */
export function rewriteClaim(claim: StorageDriverClaim, from: string, to: string): StorageDriverClaim {
  const data: Record<string, string> = {};
  for (const [k, v] of Object.entries(claim.claimData)) data[k] = v.split(from).join(to);
  return new StorageDriverClaim(data);
}

/** The claim's hash value (either spelling). */
export function claimHash(claim: StorageDriverClaim): string {
  const h = claim.claimData['hash_value'] ?? claim.claimData['hashValue'];
  assert.ok(typeof h === 'string', 'claim has no hash_value');
  return h;
}
