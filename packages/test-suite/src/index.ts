/**
 * `@x/storage-driver-test-suite`: a runner-agnostic conformance suite for Temporal External
 * Storage drivers, assertion helpers, and an in-memory reference driver.
 *
 * @packageDocumentation
 */
export {
  assertPayloadEqual,
  assertRejectsWithCode,
  captureStorageDriverError,
  countPresentExact,
  expectedClaims,
  makePayload,
  pseudoRandomBytes,
} from './assertions';
export type { SuiteContext } from './context';
export {
  type ConformanceCapabilities,
  type ConformanceIt,
  type ConformanceTestApi,
  DEFAULT_CONFORMANCE_CAPABILITIES,
  type HarnessDriverOptions,
  type LifecycleDeclaration,
  type StorageDriverHarness,
  type StorageDriverHarnessHooks,
  type TestFn,
} from './harness';
export {
  DEFAULT_HOSTILE_INPUT_RUNS,
  DEFAULT_HOSTILE_INPUT_SEED,
  type HostileInputContext,
  type HostileInputOptions,
  hostileIdArbitrary,
  hostileTargetArbitrary,
  MAX_HOSTILE_CLAIM_VALUE_LENGTH,
  MAX_HOSTILE_ID_LENGTH,
  registerHostileInputTests,
} from './hostile';
export type { LifecycleContext, LifecycleStressOptions } from './lifecycle';
export { registerLifecycleTests } from './lifecycle';
export { InMemoryStorageDriver, type InMemoryStorageDriverOptions, type InMemoryStore } from './memory-driver';
export { runStorageDriverConformance } from './suite';
export { registerAbortTests } from './topics/abort';
export { registerDedupTests } from './topics/dedup';
export { registerErrorTests } from './topics/errors';
export { registerIdentityTests } from './topics/identity';
export { registerRoundTripTests } from './topics/round-trip';
export { registerSizeLimitTests } from './topics/size-limit';
export { HOSTILE_IDS, registerTargetTests } from './topics/targets';
