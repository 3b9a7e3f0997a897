// Free identifiers of this package's README blocks that continue an earlier one
// (scripts/release/check-snippets.mjs): one per line.
import { PostgresStorageDriver } from '@x/storage-driver-postgres';
declare const driver: import('@x/storage-driver-postgres').PostgresStorageDriver;
declare const DAY: number;
declare const workflowsPath: string;
declare const activities: object;
declare const log: { warn(message: string, error: Error): void };
