/**
 * `@x/test-backends` (private, never published): one isolated store per bundled driver on the
 * shared loopback servers of `scripts/services.sh` — a temp directory, a unique Redis key prefix
 * (standalone or cluster), a unique PostgreSQL schema, a unique S3 bucket, GCS bucket (fake-gcs-server)
 * or Azure container (Azurite) — with server-side views
 * of what it holds (keys, raw bytes, object count) and a cleanup the server confirms. Used by the
 * e2e, soak and bench packages so that each backend is set up, inspected and torn down one way.
 *
 * @packageDocumentation
 */
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import { BlobServiceClient } from '@azure/storage-blob';
import { Storage } from '@google-cloud/storage';
import { AzureBlobStorageDriver, encodeAzureKeySegment } from '@x/storage-driver-azure-blob';
import { encodeKeySegment, type StorageDriver } from '@x/storage-driver-core';
import { FS_TMP_DIR, FsStorageDriver, keyToStoragePath, storagePathToKey } from '@x/storage-driver-fs';
import { encodeGcsSegment, GcsStorageDriver } from '@x/storage-driver-gcs';
import { PostgresStorageDriver } from '@x/storage-driver-postgres';
import { RedisStorageDriver } from '@x/storage-driver-redis';
import { S3StorageDriver } from '@x/storage-driver-s3';
import { SERVICES, type TestServices, uniqueName } from '@x/test-servers';
import { Cluster, Redis } from 'ioredis';
import { Pool } from 'pg';

/** The bundled drivers, by the backend they run on. */
export type BackendKind = 'fs' | 'redis' | 'redis-cluster' | 'postgres' | 's3' | 'gcs' | 'azure-blob';

/** Every {@link BackendKind}, in a stable order. */
export const BACKEND_KINDS: readonly BackendKind[] = [
  'fs',
  'redis',
  'redis-cluster',
  'postgres',
  's3',
  'gcs',
  'azure-blob',
];

/** Whether `name` is a {@link BackendKind}. */
export function isBackendKind(name: string): name is BackendKind {
  return (BACKEND_KINDS as readonly string[]).includes(name);
}

/** An isolated store and the driver over it. */
export interface TestBackend {
  /** Which backend. */
  readonly kind: BackendKind;
  /** The driver (its `name` is what history references name). */
  readonly driver: StorageDriver;
  /** Where the data lives, for reports (never a credential). */
  readonly location: string;
  /** Storage keys (`v0/...`) of every object in this store, sorted. */
  keys(): Promise<string[]>;
  /** Number of objects in this store, counted at the server (or on disk). */
  countObjects(): Promise<number>;
  /** The raw stored bytes of a storage key, or `undefined` if there is no such object. */
  read(key: string): Promise<Uint8Array | undefined>;
  /** The storage key (`v0/...`) a claim of this driver points at. */
  storageKeyOfClaim(claimData: Record<string, string>): string;
  /**
   * How this driver writes one value (a workflow id, a type) into a storage key: core's
   * `encodeKeySegment` (the S3 key spec), except GCS (the official GCS drivers' escaping) and Azure
   * (the key spec with Azure's rules on dots).
   */
  encodeSegment(value: string): string;
  /**
   * Deletes everything this store holds and closes the clients it opened; resolves to whether the
   * server confirms nothing is left (directory, keys, schema or bucket gone).
   */
  close(): Promise<boolean>;
}

/** Options of {@link createBackend}. */
export interface CreateBackendOptions {
  /** Driver name (default: the driver's default name). */
  name?: string;
  /** Driver TTL in ms, where the driver takes one (default: 1 hour, a safety net if cleanup never runs). */
  ttl?: number;
  /** Servers to use (default {@link SERVICES}). */
  services?: TestServices;
  /** PostgreSQL pool size (default 8). */
  poolSize?: number;
}

const DEFAULT_TTL_MS = 3_600_000;

async function walk(root: string, rel = ''): Promise<string[]> {
  const entries = await readdir(path.join(root, rel), { withFileTypes: true }).catch(() => []);
  const out: string[] = [];
  for (const entry of entries) {
    const child = rel === '' ? entry.name : `${rel}/${entry.name}`;
    if (entry.isDirectory()) {
      if (child !== FS_TMP_DIR) out.push(...(await walk(root, child)));
    } else out.push(child);
  }
  return out;
}

/** A store in a fresh temp directory. */
async function fsBackend(options: CreateBackendOptions): Promise<TestBackend> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'xstorage-test-fs-'));
  const root = path.join(dir, 'store');
  const driver = new FsStorageDriver({ root, name: options.name, ttl: options.ttl ?? DEFAULT_TTL_MS });
  const keys = async () =>
    (await walk(root))
      .map((rel) => storagePathToKey(rel))
      .filter((k): k is string => typeof k === 'string')
      .sort();
  return {
    kind: 'fs',
    driver,
    location: root,
    keys,
    countObjects: async () => (await keys()).length,
    read: async (key) => readFile(path.join(root, keyToStoragePath(key))).catch(() => undefined),
    storageKeyOfClaim: (claim) => claim.key ?? '',
    encodeSegment: encodeKeySegment,
    close: async () => {
      await rm(dir, { recursive: true, force: true });
      return stat(dir).then(
        () => false,
        () => true,
      );
    },
  };
}

/** Every key under `prefix:` on every master (SCAN; a cluster is scanned node by node). */
async function redisKeysByNode(client: Redis | Cluster, prefix: string): Promise<Map<Redis, string[]>> {
  if (client instanceof Cluster && client.status !== 'ready') await client.ping();
  const nodes = client instanceof Cluster ? client.nodes('master') : [client];
  const out = new Map<Redis, string[]>();
  for (const node of nodes) {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await node.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
    out.set(node, keys);
  }
  return out;
}

/** A unique key prefix on the shared Redis server or cluster. */
async function redisBackend(kind: 'redis' | 'redis-cluster', options: CreateBackendOptions): Promise<TestBackend> {
  const services = options.services ?? SERVICES;
  const client =
    kind === 'redis'
      ? new Redis(services.redisUrl)
      : new Cluster(
          services.redisClusterNodes.map((n) => ({ host: n.host, port: n.port })),
          { slotsRefreshInterval: 60_000 },
        );
  client.on('error', () => {}); // reported through the driver's calls instead
  const keyPrefix = uniqueName('xstorage-test', { separator: ':' });
  const driver = new RedisStorageDriver({ client, keyPrefix, name: options.name, ttl: options.ttl ?? DEFAULT_TTL_MS });
  const allKeys = async () => [...(await redisKeysByNode(client, keyPrefix)).values()].flat();
  const toStorageKey = (redisKey: string) => redisKey.slice(keyPrefix.length + 1).replaceAll(':', '/');
  const where =
    kind === 'redis'
      ? new URL(services.redisUrl).host
      : services.redisClusterNodes.map((n) => `${n.host}:${n.port}`).join(',');
  return {
    kind,
    driver,
    location: `${where} prefix ${keyPrefix}:`,
    keys: async () => (await allKeys()).map(toStorageKey).sort(),
    countObjects: async () => (await allKeys()).length,
    read: async (key) => {
      const value = await client.getBuffer(`${keyPrefix}:${key.replaceAll('/', ':')}`);
      return value === null ? undefined : new Uint8Array(value);
    },
    storageKeyOfClaim: (claim) => toStorageKey(claim.key ?? ''),
    encodeSegment: encodeKeySegment,
    close: async () => {
      try {
        // Single-key UNLINKs pipelined per node: on a cluster a multi-key UNLINK would cross slots.
        for (const [node, keys] of await redisKeysByNode(client, keyPrefix)) {
          for (let i = 0; i < keys.length; i += 500) {
            const pipeline = node.pipeline();
            for (const key of keys.slice(i, i + 500)) pipeline.unlink(key);
            await pipeline.exec();
          }
        }
        return (await allKeys()).length === 0;
      } finally {
        await client.quit().catch(() => client.disconnect());
      }
    },
  };
}

/** A unique schema on the shared PostgreSQL. */
async function postgresBackend(options: CreateBackendOptions): Promise<TestBackend> {
  const services = options.services ?? SERVICES;
  const pool = new Pool({ connectionString: services.postgresUrl, max: options.poolSize ?? 8 });
  pool.on('error', () => {}); // idle-connection errors; the driver reports its own
  const schema = uniqueName('xs_test', { separator: '_', lowerCase: true, maxLength: 63 });
  const driver = new PostgresStorageDriver({ pool, schema, name: options.name, ttl: options.ttl ?? DEFAULT_TTL_MS });
  try {
    await driver.ensureSchema();
  } catch (e) {
    await pool.end().catch(() => {});
    throw e;
  }
  const url = new URL(services.postgresUrl);
  return {
    kind: 'postgres',
    driver,
    location: `${url.host}${url.pathname} table ${driver.qualifiedTable}`,
    keys: async () =>
      (await pool.query<{ key: string }>(`SELECT key FROM ${driver.qualifiedTable} ORDER BY key`)).rows.map(
        (r) => r.key,
      ),
    countObjects: async () =>
      (await pool.query<{ n: number }>(`SELECT count(*)::integer AS n FROM ${driver.qualifiedTable}`)).rows[0]?.n ?? -1,
    read: async (key) => {
      const r = await pool.query<{ data: Buffer }>(`SELECT data FROM ${driver.qualifiedTable} WHERE key = $1`, [key]);
      const data = r.rows[0]?.data;
      return data === undefined ? undefined : new Uint8Array(data);
    },
    storageKeyOfClaim: (claim) => claim.key ?? '',
    encodeSegment: encodeKeySegment,
    close: async () => {
      try {
        await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        return (await pool.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema])).rowCount === 0;
      } finally {
        await pool.end().catch(() => {});
      }
    },
  };
}

async function s3Keys(client: S3Client, bucket: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
    for (const o of page.Contents ?? []) if (o.Key !== undefined) keys.push(o.Key);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token !== undefined);
  return keys.sort();
}

/** A fresh bucket on the S3 server (moto), path-style, dummy credentials. */
async function s3Backend(options: CreateBackendOptions): Promise<TestBackend> {
  const services = options.services ?? SERVICES;
  const client = new S3Client({
    endpoint: services.s3Endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
  const bucket = uniqueName('xs-test', { lowerCase: true, maxLength: 63 });
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
  } catch (e) {
    client.destroy();
    throw e;
  }
  const driver = new S3StorageDriver({ client, bucket, name: options.name });
  return {
    kind: 's3',
    driver,
    location: `${services.s3Endpoint} bucket ${bucket}`,
    keys: () => s3Keys(client, bucket),
    countObjects: async () => (await s3Keys(client, bucket)).length,
    read: async (key) => {
      try {
        const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        return await out.Body?.transformToByteArray();
      } catch {
        return undefined;
      }
    },
    storageKeyOfClaim: (claim) => {
      if (claim.bucket !== bucket) throw new Error(`claim names bucket ${claim.bucket}, expected ${bucket}`);
      return claim.key ?? '';
    },
    encodeSegment: encodeKeySegment,
    close: async () => {
      try {
        const keys = await s3Keys(client, bucket);
        for (let i = 0; i < keys.length; i += 1000) {
          const Objects = keys.slice(i, i + 1000).map((Key) => ({ Key }));
          await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects } }));
        }
        await client.send(new DeleteBucketCommand({ Bucket: bucket }));
        return await client.send(new HeadBucketCommand({ Bucket: bucket })).then(
          () => false,
          (e: Error) => e.name === 'NotFound' || e.name === 'NoSuchBucket',
        );
      } finally {
        client.destroy();
      }
    },
  };
}

/** A fresh bucket on the GCS emulator (fake-gcs-server), no credentials. */
async function gcsBackend(options: CreateBackendOptions): Promise<TestBackend> {
  const services = options.services ?? SERVICES;
  const storage = new Storage({ apiEndpoint: services.gcsEndpoint, projectId: services.gcsProjectId });
  const name = uniqueName('xs-test', { lowerCase: true, maxLength: 63 });
  await storage.createBucket(name);
  const bucket = storage.bucket(name);
  const driver = new GcsStorageDriver({ client: bucket, name: options.name });
  const keys = async () => (await bucket.getFiles())[0].map((f) => f.name).sort();
  return {
    kind: 'gcs',
    driver,
    location: `${services.gcsEndpoint} bucket ${name}`,
    keys,
    countObjects: async () => (await keys()).length,
    read: async (key) => {
      try {
        return new Uint8Array((await bucket.file(key).download({ validation: false }))[0]);
      } catch {
        return undefined;
      }
    },
    storageKeyOfClaim: (claim) => {
      if (claim.bucket !== name) throw new Error(`claim names bucket ${claim.bucket}, expected ${name}`);
      return claim.key ?? claim.object_name ?? claim.object ?? '';
    },
    encodeSegment: encodeGcsSegment,
    close: async () => {
      await bucket.deleteFiles({ force: true });
      await bucket.delete();
      return !(await bucket.exists())[0];
    },
  };
}

/** A fresh container on Azurite (its public development account). */
async function azureBackend(options: CreateBackendOptions): Promise<TestBackend> {
  const services = options.services ?? SERVICES;
  const service = BlobServiceClient.fromConnectionString(services.azuriteConnectionString);
  const name = uniqueName('xs-test', { lowerCase: true, maxLength: 63 });
  const container = service.getContainerClient(name);
  await container.create();
  const driver = new AzureBlobStorageDriver({ client: container, name: options.name });
  const keys = async () => {
    const out: string[] = [];
    for await (const blob of container.listBlobsFlat()) out.push(blob.name);
    return out.sort();
  };
  return {
    kind: 'azure-blob',
    driver,
    location: `${services.azuriteBlobEndpoint} container ${name}`,
    keys,
    countObjects: async () => (await keys()).length,
    read: async (key) => {
      try {
        return new Uint8Array(await container.getBlockBlobClient(key).downloadToBuffer());
      } catch {
        return undefined;
      }
    },
    storageKeyOfClaim: (claim) => {
      if (claim.container !== name) throw new Error(`claim names container ${claim.container}, expected ${name}`);
      return claim.key ?? '';
    },
    encodeSegment: encodeAzureKeySegment,
    close: async () => {
      await container.deleteIfExists();
      return !(await container.exists());
    },
  };
}

/** Creates an isolated store of `kind` on the shared servers. Always `close()` it. */
export async function createBackend(kind: BackendKind, options: CreateBackendOptions = {}): Promise<TestBackend> {
  switch (kind) {
    case 'fs':
      return fsBackend(options);
    case 'redis':
    case 'redis-cluster':
      return redisBackend(kind, options);
    case 'postgres':
      return postgresBackend(options);
    case 's3':
      return s3Backend(options);
    case 'gcs':
      return gcsBackend(options);
    case 'azure-blob':
      return azureBackend(options);
  }
}
