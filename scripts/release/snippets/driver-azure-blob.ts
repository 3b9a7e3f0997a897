// Free identifiers of this package's README blocks that continue an earlier one
// (scripts/release/check-snippets.mjs): one per line.
// @run 0, 1
// @env PAYLOADS_CONTAINER_SAS_URL='http://127.0.0.1:10000/devstoreaccount1/payloads?sv=2024-08-04&sp=racwdl&sig=snippet'
import { AzureBlobStorageDriver } from '@x/storage-driver-azure-blob';
declare const driver: import('@x/storage-driver-azure-blob').AzureBlobStorageDriver;
declare const DAY: number;
declare const workflowsPath: string;
declare const activities: object;
declare const service: import('@azure/storage-blob').BlobServiceClient;
