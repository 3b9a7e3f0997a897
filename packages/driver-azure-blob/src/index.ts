/**
 * `@x/storage-driver-azure-blob`: an Azure Blob Storage driver for Temporal External Storage
 * (claim-check pattern), built on `@azure/storage-blob` 12.x.
 *
 * @packageDocumentation
 */
export { AZURE_BLOB_DRIVER_TYPE, AzureBlobStorageDriver } from './driver';
export { type AzureErrorKind, classifyAzureError } from './errors';
export { azureMinimumDeleteAge, refreshAllowance } from './lifecycle';
export {
  AZURE_MAX_BLOB_NAME_LENGTH,
  AZURE_MAX_KEY_PREFIX_LENGTH,
  type AzureBlobStorageLocation,
  encodeAzureKeySegment,
  isSpecKey,
  isValidContainerName,
  validateClaimContainer,
  validateClaimKey,
  validateKeyPrefix,
} from './names';
export {
  AZURE_BLOB_DRIVER_DEFAULT_CONCURRENCY,
  AZURE_BLOB_DRIVER_DEFAULT_NAME,
  AZURE_DEFAULT_REFRESH_AFTER,
  AZURE_HEAD_FIRST_MIN_BYTES,
  AZURE_MAX_REFRESH_AFTER,
  AZURE_MIN_REFRESH_AFTER,
  type AzureAccessConditions,
  type AzureAccessTier,
  type AzureBatchSubResponse,
  type AzureBlobBatchClientLike,
  type AzureBlobBatchLike,
  type AzureBlobPropertiesResponse,
  type AzureBlobReference,
  type AzureBlobServiceClientLike,
  type AzureBlobStorageDriverOptions,
  type AzureBlockBlobClientLike,
  type AzureCancellable,
  type AzureContainerClientLike,
  type AzureContainerSelector,
  type AzureDownloadResponse,
  type AzureExistenceCheck,
  type AzureListedBlob,
  type AzureListPage,
  type AzureWriteResponse,
} from './options';
