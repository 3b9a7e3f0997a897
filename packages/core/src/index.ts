/**
 * `@x/storage-driver-core`: the contract, wire encoding, keys, hashing, errors, selectors and
 * shared content-addressed mechanics for Temporal External Storage drivers.
 *
 * @packageDocumentation
 */
export {
  abortedError,
  type LinkedAbortController,
  linkAbortSignals,
  mapBounded,
  raceAbort,
  throwIfAborted,
} from './abort';
export {
  CLAIM_HASH_ALGORITHM,
  CLAIM_HASH_ALGORITHM_CAMEL,
  CLAIM_HASH_VALUE,
  CLAIM_HASH_VALUE_CAMEL,
  hashClaimFields,
  MAX_CLAIM_VALUE_LENGTH,
  readClaimData,
  readClaimHash,
  requireClaimField,
} from './claims';
export {
  type BackendOperation,
  type BackendOperationKind,
  ContentAddressedStorageDriver,
  type ContentAddressedStorageDriverOptions,
  type DeleteEntry,
  type DeleteOutcome,
  displayKey,
  type ListedObject,
  type ListQuery,
  type PutOutcome,
  STORAGE_OPERATION_REPORT,
  type StorageLocation,
  type StorageOperationReport,
  type StorageOperationReporter,
  type StoreItem,
} from './content-addressed';
export {
  isStorageDriverError,
  StorageDriverError,
  StorageDriverErrorCode,
  type StorageDriverErrorContext,
  type StorageDriverErrorOptions,
  withErrorContext,
} from './errors';
export { HASH_ALGORITHM_SHA256, isSha256Hex, sha256Hex } from './hash';
export {
  buildStorageKey,
  encodeKeySegment,
  fitStorageKey,
  type KeySegmentEncoder,
  MAX_STORAGE_KEY_LENGTH,
  MISSING_KEY_VALUE,
  type ParsedStorageKey,
  type ParseStorageKeyOptions,
  parseStorageKey,
} from './keys';
export {
  type DeleteExpiredOptions,
  type DeleteExpiredProgress,
  type DeleteExpiredResult,
  type DeleteStoredObjectsOptions,
  type DeleteStoredObjectsResult,
  type LifecycleItemError,
  type ListStoredObjectsOptions,
  lifecycleCapabilities,
  NO_LIFECYCLE_CAPABILITIES,
  type StorageDriverCapabilities,
  type StorageDriverExpiry,
  type StorageDriverLastReferenced,
  type StorageDriverLifecycle,
  type StoredObject,
  type StoredObjectTarget,
} from './lifecycle';
export { Int64, type Long, type LongLike } from './long';
export {
  EXISTENCE_ORDER_RECENT_KEYS,
  type ExistenceCheckMode,
  ExistenceOrder,
  isNetworkError,
  NETWORK_ERROR_CODES,
  REFRESH_ALLOWANCE_MAX,
  type RefreshAfterBounds,
  refreshAllowance,
  refreshMinimumDeleteAge,
  storageKeyValues,
  validateExistenceCheck,
  validateRefreshAfter,
} from './object-store';
export {
  DEFAULT_MAX_PAYLOAD_SIZE,
  validateConcurrency,
  validateDriverName,
  validateMaxPayloadSize,
  validateTtl,
} from './options';
export {
  byteView,
  configError,
  errorCodeOf,
  loadPeerDependency,
  REDACTED,
  redactSecrets,
  redactText,
  requireOptionsObject,
} from './plumbing';
export { type DecodedPayload, decodePayload, encodedPayloadSize, encodePayload } from './proto';
export {
  type ComposedStorageDriverSelector,
  type SelectorTarget,
  type SizeBand,
  selectBySize,
  selectByTarget,
  type TargetMatcher,
  type TargetRule,
  type TargetSelectorOptions,
} from './selectors';
export {
  type ExternalPayloadDetails,
  type Payload,
  type StorageDriver,
  type StorageDriverActivityInfo,
  StorageDriverClaim,
  type StorageDriverRetrieveContext,
  type StorageDriverSelectContext,
  type StorageDriverSelector,
  type StorageDriverStoreContext,
  type StorageDriverTargetInfo,
  type StorageDriverWorkflowInfo,
} from './types';
