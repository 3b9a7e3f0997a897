// Free identifiers of this package's README blocks that continue an earlier one
// (scripts/release/check-snippets.mjs): one per line.
import { FsStorageDriver } from '@x/storage-driver-fs';
declare const driver: import('@x/storage-driver-fs').FsStorageDriver;
declare const DAY: number;
declare const workflowsPath: string;
declare const activities: object;
