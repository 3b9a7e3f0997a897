// Free identifiers of this package's README blocks that continue an earlier one
// (scripts/release/check-snippets.mjs): one per line.
// @run 0, 1
import { GcsStorageDriver } from '@x/storage-driver-gcs';
declare const driver: import('@x/storage-driver-gcs').GcsStorageDriver;
declare const DAY: number;
declare const workflowsPath: string;
declare const activities: object;
declare const storage: import('@google-cloud/storage').Storage;
import { Storage } from '@google-cloud/storage';
