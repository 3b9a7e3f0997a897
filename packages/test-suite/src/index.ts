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
  makePayload,
  pseudoRandomBytes,
} from './assertions';
export {
  type ConformanceIt,
  type ConformanceTestApi,
  DEFAULT_CAPABILITIES,
  type HarnessDriverOptions,
  type StorageDriverCapabilities,
  type StorageDriverHarness,
  type StorageDriverHarnessHooks,
  type TestFn,
} from './harness';
export { InMemoryStorageDriver, type InMemoryStorageDriverOptions, type InMemoryStore } from './memory-driver';
export { HOSTILE_IDS, runStorageDriverConformance } from './suite';
