/**
 * Shared setup of the `x-storage gc` dev-server tests: one Temporal dev server (with a namespace
 * per driver) and one bundle of `gc-workflows.ts` per file; a store per driver with the config
 * file the `x-storage` child process loads to reach the same store; running `x-storage gc`.
 */
import { writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll } from '@jest/globals';
import type { Connection } from '@temporalio/client';
import type { StorageDriver } from '@x/storage-driver-core';
import type { FsStorageDriver } from '@x/storage-driver-fs';
import type { PostgresStorageDriver } from '@x/storage-driver-postgres';
import type { RedisStorageDriver } from '@x/storage-driver-redis';
import { S3StorageDriver } from '@x/storage-driver-s3';
import { createBackend, type TestBackend } from '@x/test-backends';
import { type DevServer, SERVICES, startTemporalWorkerEnv, type TemporalWorkerEnv } from '@x/test-servers';
import type { GcReport } from '../src/gc/collect';
import { makeTempDir, runXStorage } from './helpers';

/** The drivers the gc tests run against (each on its own namespace). */
export type GcKind = 'fs' | 'redis' | 'postgres' | 's3';

/** Every {@link GcKind}; `GC_KINDS=fs,s3` narrows it when running by hand. */
export const GC_KINDS: readonly GcKind[] = (process.env.GC_KINDS?.split(',') as GcKind[] | undefined) ?? [
  'fs',
  'redis',
  'postgres',
  's3',
];

/** The driver ttl of the test stores (the Redis driver derives ages from it: gc must use the same). */
const TTL_MS = 3_600_000;

/** What a test file shares. */
export type GcEnv = TemporalWorkerEnv;

/** Starts one dev server with `namespaces` and bundles `gc-workflows.ts`, for the whole file. */
export function useGcTemporal(namespaces: string[]): GcEnv {
  const env = {} as { -readonly [K in keyof GcEnv]: GcEnv[K] };
  beforeAll(async () => {
    const started = await startTemporalWorkerEnv({
      namespaces,
      // Deleting a closed execution otherwise waits 20–80 s on the dev server for its close to be
      // acknowledged in visibility; without that wait it takes milliseconds (and gc meets the
      // execution in visibility a little longer: listed, history gone, counted as vanished).
      dynamicConfig: { 'history.transferProcessorEnsureCloseBeforeDelete': false },
      workflowsPath: require.resolve('./gc-workflows'),
    });
    Object.assign(env, started);
  }, 180_000);
  afterAll(async () => {
    await env.close?.();
  });
  return env;
}

export { uniqueSuffix as unique } from '@x/test-servers';

/** A store for one driver kind: the driver the workers use, and a config file naming the same store. */
export interface GcStore {
  kind: GcKind;
  /** The driver the test's workers and client use. */
  driver: StorageDriver;
  /** Server-side view and cleanup of the store. */
  backend: TestBackend;
  /** A config file for `x-storage --config` whose only driver reaches the same store. */
  config: string;
  /** Closes what the store opened and removes its data. */
  close(): Promise<void>;
}

const dist = (pkg: string) => path.resolve(__dirname, '../..', pkg, 'dist/index.js');

/**
 * A fresh store of `kind` (temp dir, Redis key prefix, PostgreSQL schema, S3 bucket) and a config
 * file for the `x-storage` child process: JSON with the constructor or factory form for fs, Redis
 * and PostgreSQL; a JS config with its own `S3Client` for S3. The S3 driver refreshes an object's
 * age once it is 1 s old (`refreshAfter`), so deletes may target objects unreferenced for 2.25 s.
 */
export async function createGcStore(kind: GcKind): Promise<GcStore> {
  const dir = await makeTempDir('x-storage-gc-');
  const backend = await createBackend(kind, { ttl: TTL_MS });
  let driver: StorageDriver = backend.driver;
  let config: string;
  const close = async () => {
    await backend.close();
  };
  switch (kind) {
    case 'fs': {
      config = path.join(dir, 'x-storage.json');
      const root = (backend.driver as FsStorageDriver).root;
      const spec = { module: dist('driver-fs'), export: 'FsStorageDriver', options: { root, ttl: TTL_MS } };
      await writeFile(config, JSON.stringify({ drivers: { fs: spec } }));
      break;
    }
    case 'redis': {
      config = path.join(dir, 'x-storage.json');
      const { keyPrefix } = backend.driver as RedisStorageDriver;
      const args = [SERVICES.redisUrl, { keyPrefix, ttl: TTL_MS }];
      const spec = { module: dist('driver-redis'), export: 'RedisStorageDriver', factory: 'fromUrl', args };
      await writeFile(config, JSON.stringify({ drivers: { redis: spec } }));
      break;
    }
    case 'postgres': {
      config = path.join(dir, 'x-storage.json');
      const { schema } = backend.driver as PostgresStorageDriver;
      const args = [SERVICES.postgresUrl, { schema, ttl: TTL_MS }];
      const spec = {
        module: dist('driver-postgres'),
        export: 'PostgresStorageDriver',
        factory: 'fromConnectionString',
        args,
      };
      await writeFile(config, JSON.stringify({ drivers: { pg: spec } }));
      break;
    }
    case 's3': {
      const bucket = (backend.driver as S3StorageDriver).allowedBuckets[0] as string;
      const client = new S3Client({
        endpoint: SERVICES.s3Endpoint,
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      });
      driver = new S3StorageDriver({ client, bucket, refreshAfter: 1000 });
      config = path.join(dir, 'x-storage.cjs');
      await writeFile(
        config,
        `const { S3Client } = require(${JSON.stringify(require.resolve('@aws-sdk/client-s3'))});
const { S3StorageDriver } = require(${JSON.stringify(dist('driver-s3'))});
const client = new S3Client({ endpoint: ${JSON.stringify(SERVICES.s3Endpoint)}, region: 'us-east-1', forcePathStyle: true,
  credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
module.exports = {
  drivers: { s3: new S3StorageDriver({ client, bucket: ${JSON.stringify(bucket)}, refreshAfter: 1000 }) },
  close: () => client.destroy(),
};
`,
      );
      const closeBackend = close;
      return {
        kind,
        driver,
        backend,
        config,
        close: async () => {
          client.destroy();
          await closeBackend();
        },
      };
    }
  }
  return { kind, driver, backend, config, close };
}

/** An orphan as `x-storage gc --list-orphans --json` reports it. */
export interface ListedOrphan {
  driver: string;
  namespace: string;
  key: string;
  size: number;
  lastReferenced: string | null;
}

/** Result of {@link runGc}. */
export interface GcRun {
  code: number;
  report: (GcReport & { orphans: ListedOrphan[] }) | undefined;
  stdout: string;
  stderr: string;
}

/**
 * Runs `x-storage gc --json --list-orphans --address <server> <args>` as a child process and
 * parses its report.
 */
export async function runGc(server: DevServer, args: string[], timeoutMs = 120_000): Promise<GcRun> {
  const run = await runXStorage(
    ['gc', '--address', server.address, '--json', '--list-orphans', ...args],
    '',
    timeoutMs,
  );
  let report: GcRun['report'];
  try {
    report = JSON.parse(run.stdout);
  } catch {
    report = undefined;
  }
  return { ...run, report };
}

/** Polls `check` every 200 ms until it returns a value other than `undefined` (or times out). */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Deletes a closed execution as retention would (what `temporal workflow delete` calls) and waits
 * until it is gone.
 */
export async function deleteExecution(
  connection: Connection,
  namespace: string,
  execution: { workflowId: string; runId: string },
): Promise<void> {
  await connection.workflowService.deleteWorkflowExecution({ namespace, workflowExecution: execution });
  await waitFor(`deletion of ${execution.workflowId}`, async () => {
    try {
      await connection.workflowService.describeWorkflowExecution({ namespace, execution });
      return undefined;
    } catch (error) {
      if ((error as { code?: unknown }).code === 5) return true;
      throw error;
    }
  });
}
