// Free identifiers of the otel README's blocks (scripts/release/check-snippets.mjs): one per line.
// @run 1
import { instrumentStorageDriver } from '@x/storage-driver-otel';
declare const redis: import('ioredis').Redis;
declare const s3: import('@x/storage-driver-s3').S3StorageDriver;
declare const driver: import('@x/storage-driver-core').ContentAddressedStorageDriver;
declare const logger: { warn(message: string, fields: object): void };
declare const DAY: number;
declare const workflowsPath: string;
declare const activities: object;
