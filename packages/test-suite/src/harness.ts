/**
 * Types a driver author implements to run the conformance suite.
 *
 * @module
 */
import type { StorageDriver, StorageDriverCapabilities, StorageDriverClaim } from '@x/storage-driver-core';
import type { HostileInputOptions } from './hostile';
import type { LifecycleStressOptions } from './lifecycle';

/** A test function: sync or async. */
export type TestFn = () => void | Promise<void>;

/** A test declaration function, optionally with a `skip` variant (jest, vitest, mocha, node:test). */
export interface ConformanceIt {
  /** Declares one test. */
  (name: string, fn: TestFn): void;
  /** Declares a skipped test; used for tests whose capability or hook is missing. */
  skip?: (name: string, fn: TestFn) => void;
}

/**
 * The subset of a test runner the suite needs. jest, vitest and mocha globals fit as they are;
 * for `node:test` pass `{ describe, it, afterEach }` from `node:test`. Tests are declared to run
 * sequentially (don't run them with a concurrent mode such as `test.concurrent`).
 */
export interface ConformanceTestApi {
  /** Declares a group of tests. */
  describe(name: string, fn: () => void): void;
  /**
   * Declares one test. When it has `it.skip`, tests the driver's capabilities or hooks rule out
   * are reported as skipped; without it they are registered as passing placeholders whose names
   * end in `(skipped: …)`.
   */
  it: ConformanceIt;
  /** Accepted for symmetry with runners' globals; the suite does not use it. */
  beforeEach?(fn: TestFn): void;
  /** Runs `fn` after each test of the enclosing group (the suite destroys its drivers here). */
  afterEach(fn: TestFn): void;
}

/** Options the suite asks {@link StorageDriverHarness.create} to apply. */
export interface HarnessDriverOptions {
  /** Custom driver `name` (only requested when `capabilities.customName`). */
  name?: string;
  /** Custom `maxPayloadSize` in bytes (only requested when `capabilities.maxPayloadSize`). */
  maxPayloadSize?: number;
  /** A `ttl` in milliseconds (requested by the lifecycle group). */
  ttl?: number;
  /**
   * The driver's clock (only requested when `capabilities.clock`): pass it to the driver's
   * `clock` option so the suite can age objects without waiting.
   */
  clock?: () => number;
}

/**
 * The lifecycle members (DESIGN §8) the driver declares in its runtime `capabilities` manifest.
 * The suite registers their tests and checks that the driver's manifest says the same.
 */
export type LifecycleDeclaration = Pick<
  StorageDriverCapabilities,
  'list' | 'delete' | 'deleteExpired' | 'close' | 'lastReferenced'
>;

/** What the driver under test supports; the suite skips what is declared unsupported. */
export interface ConformanceCapabilities {
  /** Accepts a custom `name`. Default: `true`. */
  customName: boolean;
  /** Accepts a `maxPayloadSize` and rejects larger payloads with `E_TOO_LARGE`. Default: `true`. */
  maxPayloadSize: boolean;
  /**
   * Claims follow core's format (`hash_algorithm`, `hash_value`, and the object key in
   * `claimKeyField`) and errors are core `StorageDriverError`s with codes. Enables the
   * hash, hostile-claim and error-code tests. Default: `true`.
   */
  coreClaims: boolean;
  /** Claim field holding the object key. Default: `key`. */
  claimKeyField: string;
  /**
   * Rejects claims whose key is not a well-formed storage key (traversal, absolute paths, NUL,
   * keys outside the driver's prefix) with `E_INVALID_CLAIM`. Default: `true`.
   */
  strictClaimKeys: boolean;
  /** Round-trips an 8 MiB payload. Default: `true`. */
  largePayloads: boolean;
  /**
   * The driver writes a whole batch in one backend round trip (Redis pipeline, one SQL
   * statement), so an abort cannot stop a batch half-way: the mid-batch abort test then only
   * requires `E_ABORTED` and no claims, not that fewer objects were written. Default: `false`.
   */
  batchedWrites: boolean;
  /**
   * Largest claim key (in `claimKeyField`, UTF-8 bytes) the backend accepts, e.g. `1024` for S3.
   * When set, the hostile-target property asserts every key the driver writes fits (servers such
   * as moto accept longer keys than the real service). Default: unset (not checked).
   */
  maxClaimKeyBytes?: number;
  /**
   * The lifecycle surface the driver declares (see {@link LifecycleDeclaration}). Default: none
   * (a plain `StorageDriver`; the lifecycle group is skipped).
   */
  lifecycle?: LifecycleDeclaration;
  /**
   * `create()` honours `options.clock` for the last-referenced times the driver records, so the
   * lifecycle group ages objects by moving the clock. Default: `false` (it uses `hooks.age`, or
   * waits).
   */
  clock: boolean;
  /**
   * Granularity of the backend's last-referenced times in milliseconds (S3 `LastModified`: 1000):
   * the lifecycle group waits this much longer when it has to age objects by waiting. Default: 1.
   */
  timeResolution: number;
  /**
   * The `olderThan` (ms) the lifecycle group uses: at least what the driver can delete safely
   * (its minimum delete age, e.g. S3's `refreshAfter` plus a margin). Default: 1000.
   */
  lifecycleOlderThan: number;
}

/** Backend hooks for tests that need to reach behind the driver. All optional. */
export interface StorageDriverHarnessHooks<D extends StorageDriver> {
  /** Replace the stored object behind `claim` with different bytes of the same length or not. */
  corrupt?(driver: D, claim: StorageDriverClaim): Promise<void>;
  /** Delete the stored object behind `claim`. */
  remove?(driver: D, claim: StorageDriverClaim): Promise<void>;
  /**
   * Number of objects stored in the driver's (isolated) store. With it, "nothing was written"
   * is proven by counting. Without it, the suite proves it by storing the same payload through a
   * second `create()` driver and checking that its claim does not resolve in the first one, which
   * needs claims that are valid across instances (so provide this hook when claims name their
   * store, e.g. a bucket or a key prefix).
   */
  countObjects?(driver: D): Promise<number>;
  /**
   * Extra hostile claims specific to the backend (another bucket, another table...), built from
   * a valid claim. Each must be rejected with `E_INVALID_CLAIM` (or `E_NOT_FOUND` if listed in
   * `notFound`).
   */
  hostileClaims?(valid: StorageDriverClaim): StorageDriverClaim[];
  /**
   * Writes `bytes` somewhere outside the driver's store and returns claim-key values that would
   * reach that object if the driver followed traversal (e.g. `../../outside/file`). The suite
   * asserts those claims are rejected and the object is not read.
   */
  plantOutside?(driver: D, bytes: Uint8Array): Promise<string[]>;
  /**
   * Makes the objects behind `claims` look last referenced `ms` milliseconds earlier than they
   * are (an mtime moved back, a column updated, a shorter Redis expiry). The lifecycle group uses
   * it to age objects without waiting; without it (and without `capabilities.clock`) it waits.
   */
  age?(driver: D, claims: StorageDriverClaim[], ms: number): Promise<void>;
}

/** How the conformance suite creates and tears down the driver under test. */
export interface StorageDriverHarness<D extends StorageDriver = StorageDriver> {
  /** Expected `type` of the driver (e.g. `local.fsdriver`). */
  readonly type: string;
  /** Expected default `name`. */
  readonly defaultName: string;
  /** Creates a fresh driver over a fresh, isolated store (called once per test or more). */
  create(options?: HarnessDriverOptions): D | Promise<D>;
  /**
   * Creates a second instance with the same configuration and store as `driver` (as another
   * process would). Without it, the cross-instance test is skipped.
   */
  reopen?(driver: D): D | Promise<D>;
  /** Releases what `create`/`reopen` allocated (called after each test for each driver). */
  destroy?(driver: D): void | Promise<void>;
  /** Declared capabilities; omitted flags take their defaults. */
  capabilities?: Partial<ConformanceCapabilities>;
  /** Backend hooks. */
  hooks?: StorageDriverHarnessHooks<D>;
  /**
   * Settings of the hostile-input group (property-based, fast-check): runs, seed, replay path,
   * or `enabled: false`. Environment variables `XSTORAGE_FC_RUNS`, `XSTORAGE_FC_SEED`,
   * `XSTORAGE_FC_PATH` override them. Default: on, 200 runs, a fixed seed.
   */
  hostileInput?: HostileInputOptions;
  /** Settings of the lifecycle group's concurrency stress test. Default: 16 callers, 200 objects. */
  lifecycleStress?: LifecycleStressOptions;
}

/** Default capability flags. */
export const DEFAULT_CONFORMANCE_CAPABILITIES: ConformanceCapabilities = {
  customName: true,
  maxPayloadSize: true,
  coreClaims: true,
  claimKeyField: 'key',
  strictClaimKeys: true,
  largePayloads: true,
  batchedWrites: false,
  clock: false,
  timeResolution: 1,
  lifecycleOlderThan: 1000,
};
