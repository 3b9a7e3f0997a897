// Free identifiers of this package's README blocks that continue an earlier one
// (scripts/release/check-snippets.mjs): one per line.
import { RedisStorageDriver } from '@x/storage-driver-redis';
declare const driver: import('@x/storage-driver-redis').RedisStorageDriver;
declare const DAY: number;
declare const workflowsPath: string;
declare const activities: object;
