/**
 * The stores of the end-to-end workload: set up once per implementation on the shared servers
 * (through `@x/test-backends`, which also deletes them afterwards), then opened with the
 * driver's **default options** in the client (this process) and in each worker process.
 *
 * @module
 */
import type { StorageDriver } from '@x/storage-driver-core';
import { FsStorageDriver } from '@x/storage-driver-fs';
import { PostgresStorageDriver } from '@x/storage-driver-postgres';
import { RedisStorageDriver } from '@x/storage-driver-redis';
import { S3StorageDriver } from '@x/storage-driver-s3';
import { type BackendKind, createBackend } from '@x/test-backends';
import { SERVICES } from '@x/test-servers';
import { Cluster, Redis } from 'ioredis';
import pg from 'pg';
import { makeS3Client, officialS3Driver } from './impls';

/** What the end-to-end workload compares: no External Storage, each driver, the official S3 driver. */
export const E2E_IMPLS = ['inline', 'fs', 'redis', 'redis-cluster', 'postgres', 's3', 's3-official'] as const;
/** One of {@link E2E_IMPLS}. */
export type E2eImpl = (typeof E2E_IMPLS)[number];

/** Where an implementation's objects live (JSON: passed to the worker processes). */
export type StoreSpec =
  | { readonly impl: 'inline' }
  | { readonly impl: 'fs'; readonly root: string }
  | { readonly impl: 'redis' | 'redis-cluster'; readonly keyPrefix: string }
  | { readonly impl: 'postgres'; readonly schema: string }
  | { readonly impl: 's3' | 's3-official'; readonly bucket: string };

/** A store set up on the shared servers. */
export interface SetUpStore {
  readonly spec: StoreSpec;
  /** Deletes everything in it; resolves to whether the server confirms it is gone. */
  close(): Promise<boolean>;
}

function backendKind(impl: Exclude<E2eImpl, 'inline'>): BackendKind {
  return impl === 's3-official' ? 's3' : impl;
}

/** Creates an isolated store for `impl` (a directory, key prefix, schema or bucket). */
export async function setUpStore(impl: E2eImpl): Promise<SetUpStore> {
  if (impl === 'inline') return { spec: { impl }, close: async () => true };
  const backend = await createBackend(backendKind(impl));
  const driver = backend.driver;
  let spec: StoreSpec;
  if (driver instanceof FsStorageDriver) spec = { impl: 'fs', root: driver.root };
  else if (driver instanceof RedisStorageDriver && (impl === 'redis' || impl === 'redis-cluster'))
    spec = { impl, keyPrefix: driver.keyPrefix };
  else if (driver instanceof PostgresStorageDriver) spec = { impl: 'postgres', schema: driver.schema };
  else if (driver instanceof S3StorageDriver && (impl === 's3' || impl === 's3-official'))
    spec = { impl, bucket: driver.allowedBuckets[0] as string };
  else throw new Error(`unexpected test backend for ${impl}`);
  return { spec, close: () => backend.close() };
}

/** A driver over a store (none for `inline`), with the clients it opened. */
export interface OpenStore {
  readonly driver: StorageDriver | undefined;
  /** Closes the clients (never deletes data). */
  close(): Promise<void>;
}

/** Opens the store of `spec` with the driver's default options (its own clients). */
export function openStore(spec: StoreSpec): OpenStore {
  switch (spec.impl) {
    case 'inline':
      return { driver: undefined, close: async () => {} };
    case 'fs':
      return { driver: new FsStorageDriver({ root: spec.root }), close: async () => {} };
    case 'redis':
    case 'redis-cluster': {
      const client =
        spec.impl === 'redis'
          ? new Redis(SERVICES.redisUrl)
          : new Cluster(SERVICES.redisClusterNodes.map((n) => ({ host: n.host, port: n.port })));
      return {
        driver: new RedisStorageDriver({ client, keyPrefix: spec.keyPrefix }),
        close: async () => {
          await client.quit().catch(() => client.disconnect());
        },
      };
    }
    case 'postgres': {
      const pool = new pg.Pool({ connectionString: SERVICES.postgresUrl });
      pool.on('error', () => {});
      return {
        driver: new PostgresStorageDriver({ pool, schema: spec.schema }),
        close: () => pool.end(),
      };
    }
    case 's3':
    case 's3-official': {
      const client = makeS3Client();
      const driver =
        spec.impl === 's3'
          ? new S3StorageDriver({ client, bucket: spec.bucket })
          : officialS3Driver(client, spec.bucket);
      return {
        driver,
        close: async () => {
          client.destroy();
        },
      };
    }
  }
}
