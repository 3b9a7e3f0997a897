// Free identifiers of core's README blocks (scripts/release/check-snippets.mjs): one per line.
declare const redis: import('@x/storage-driver-redis').RedisStorageDriver;
declare const s3: import('@x/storage-driver-s3').S3StorageDriver;
declare const postgres: import('@x/storage-driver-postgres').PostgresStorageDriver;
declare const driver: import('@x/storage-driver-fs').FsStorageDriver;
