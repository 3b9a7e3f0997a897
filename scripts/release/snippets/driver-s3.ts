// Free identifiers of this package's README blocks that continue an earlier one
// (scripts/release/check-snippets.mjs): one per line.
// @run 0, 1
// @env MINIO_KEY='snippet-key'
// @env MINIO_SECRET='snippet-secret'
import { S3StorageDriver } from '@x/storage-driver-s3';
declare const driver: import('@x/storage-driver-s3').S3StorageDriver;
declare const DAY: number;
declare const workflowsPath: string;
declare const activities: object;
import { S3Client } from '@aws-sdk/client-s3';
declare const client: import('@aws-sdk/client-s3').S3Client;
declare const bucket: string;
