/**
 * One isolated store per driver kind on the shared loopback servers of `scripts/services.sh`
 * (a temp dir, a unique Redis key prefix, a unique PostgreSQL schema, a unique S3 bucket), with
 * what the e2e tests need to look at the real objects: every stored key and its raw bytes.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import type { StorageDriver } from '@x/storage-driver-core';
import { FS_TMP_DIR, FsStorageDriver, keyToStoragePath, storagePathToKey } from '@x/storage-driver-fs';
import { PostgresStorageDriver } from '@x/storage-driver-postgres';
import { RedisStorageDriver } from '@x/storage-driver-redis';
import { S3StorageDriver } from '@x/storage-driver-s3';
import { Cluster, Redis } from 'ioredis';
import { Pool } from 'pg';

/** Loopback URLs of the shared servers (`bash scripts/services.sh env`), with the same defaults. */
export const SERVICES = {
  redisUrl: process.env.XSTORAGE_REDIS_URL ?? 'redis://127.0.0.1:6391',
  redisClusterNodes: (process.env.XSTORAGE_REDIS_CLUSTER_NODES ?? '127.0.0.1:7301,127.0.0.1:7302,127.0.0.1:7303')
    .split(',')
    .map((n) => {
      const [host, port] = n.split(':');
      return { host: host ?? '127.0.0.1', port: Number(port) };
    }),
  postgresUrl: process.env.XSTORAGE_POSTGRES_URL ?? 'postgres://xstorage:xstorage-secret@127.0.0.1:5442/xstorage',
  s3Endpoint: process.env.XSTORAGE_S3_ENDPOINT ?? 'http://127.0.0.1:5011',
} as const;

/** The driver kinds the e2e tests cover. */
export type BackendKind = 'fs' | 'redis' | 'redis-cluster' | 'postgres' | 's3';

/** Every {@link BackendKind}. */
export const BACKEND_KINDS: readonly BackendKind[] = ['fs', 'redis', 'redis-cluster', 'postgres', 's3'];

/** An isolated store and the driver over it. */
export interface E2eBackend {
  /** Which backend. */
  readonly kind: BackendKind;
  /** The driver (its `name` is what history references name). */
  readonly driver: StorageDriver;
  /** Storage keys (`v0/...`) of every object in this store, sorted. */
  keys(): Promise<string[]>;
  /** The raw stored bytes of a storage key, or `undefined` if there is no such object. */
  read(key: string): Promise<Uint8Array | undefined>;
  /** The storage key (`v0/...`) a claim of this driver points at. */
  storageKeyOfClaim(claimData: Record<string, string>): string;
  /** Deletes everything this store holds and closes the clients it opened. */
  close(): Promise<void>;
}

/** Options of {@link createBackend}. */
export interface CreateBackendOptions {
  /** Driver name (default: the driver's default name). */
  name?: string;
}

function uniqueSuffix(): string {
  return `${process.pid}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
}

async function walk(root: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(path.join(root, rel), { withFileTypes: true })) {
    const child = rel === '' ? entry.name : `${rel}/${entry.name}`;
    if (entry.isDirectory()) {
      if (child !== FS_TMP_DIR) out.push(...(await walk(root, child)));
    } else out.push(child);
  }
  return out;
}

/** A store in a fresh temp directory. */
async function fsBackend(options: CreateBackendOptions): Promise<E2eBackend> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'e2e-fs-'));
  const driver = new FsStorageDriver({ root, name: options.name });
  return {
    kind: 'fs',
    driver,
    keys: async () =>
      (await walk(root))
        .map((rel) => storagePathToKey(rel)?.key)
        .filter((k): k is string => typeof k === 'string')
        .sort(),
    read: async (key) => readFile(path.join(root, keyToStoragePath(key))).catch(() => undefined),
    storageKeyOfClaim: (claim) => claim.key ?? '',
    close: () => rm(root, { recursive: true, force: true }),
  };
}

/** A unique key prefix on the shared Redis server or cluster. */
async function redisBackend(kind: 'redis' | 'redis-cluster', options: CreateBackendOptions): Promise<E2eBackend> {
  const client =
    kind === 'redis'
      ? new Redis(SERVICES.redisUrl)
      : new Cluster(SERVICES.redisClusterNodes, { slotsRefreshInterval: 60_000 });
  const keyPrefix = `e2e:${uniqueSuffix()}`;
  const driver = new RedisStorageDriver({ client, keyPrefix, name: options.name, ttl: 3_600_000 });
  const redisKeys = async (): Promise<string[]> => {
    if (client instanceof Cluster && client.status !== 'ready') await client.ping();
    const nodes = client instanceof Cluster ? client.nodes('master') : [client];
    const keys: string[] = [];
    for (const node of nodes) {
      let cursor = '0';
      do {
        const [next, batch] = await node.scan(cursor, 'MATCH', `${keyPrefix}:*`, 'COUNT', 1000);
        cursor = next;
        keys.push(...batch);
      } while (cursor !== '0');
    }
    return keys;
  };
  const toStorageKey = (redisKey: string) => redisKey.slice(keyPrefix.length + 1).replaceAll(':', '/');
  return {
    kind,
    driver,
    keys: async () => (await redisKeys()).map(toStorageKey).sort(),
    read: async (key) => {
      const value = await client.getBuffer(`${keyPrefix}:${key.replaceAll('/', ':')}`);
      return value === null ? undefined : new Uint8Array(value);
    },
    storageKeyOfClaim: (claim) => toStorageKey(claim.key ?? ''),
    close: async () => {
      for (const key of await redisKeys()) await client.unlink(key);
      await client.quit().catch(() => client.disconnect());
    },
  };
}

/** A unique schema on the shared PostgreSQL. */
async function postgresBackend(options: CreateBackendOptions): Promise<E2eBackend> {
  const pool = new Pool({ connectionString: SERVICES.postgresUrl, max: 4 });
  pool.on('error', () => {});
  const schema = `xs_e2e_${uniqueSuffix().replaceAll('-', '_')}`;
  const driver = new PostgresStorageDriver({ pool, schema, name: options.name });
  await driver.ensureSchema();
  return {
    kind: 'postgres',
    driver,
    keys: async () =>
      (await pool.query<{ key: string }>(`SELECT key FROM ${driver.qualifiedTable} ORDER BY key`)).rows.map(
        (r) => r.key,
      ),
    read: async (key) => {
      const r = await pool.query<{ data: Buffer }>(`SELECT data FROM ${driver.qualifiedTable} WHERE key = $1`, [key]);
      const data = r.rows[0]?.data;
      return data === undefined ? undefined : new Uint8Array(data);
    },
    storageKeyOfClaim: (claim) => claim.key ?? '',
    close: async () => {
      await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await pool.end();
    },
  };
}

/** A fresh bucket on the S3 server (moto), path-style, dummy credentials. */
async function s3Backend(options: CreateBackendOptions): Promise<E2eBackend> {
  const client = new S3Client({
    endpoint: SERVICES.s3Endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
  const bucket = `e2e-${uniqueSuffix()}`.toLowerCase().slice(0, 63);
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  const driver = new S3StorageDriver({ client, bucket, name: options.name });
  const list = async (): Promise<string[]> => {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const out = await client.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
      for (const o of out.Contents ?? []) if (o.Key !== undefined) keys.push(o.Key);
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token !== undefined);
    return keys.sort();
  };
  return {
    kind: 's3',
    driver,
    keys: list,
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
    close: async () => {
      const keys = await list();
      for (let i = 0; i < keys.length; i += 1000) {
        await client.send(
          new DeleteObjectsCommand({
            Bucket: bucket,
            Delete: { Objects: keys.slice(i, i + 1000).map((Key) => ({ Key })) },
          }),
        );
      }
      await client.send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => {});
      client.destroy();
    },
  };
}

/** Creates an isolated store of `kind` on the shared servers. Always `close()` it. */
export async function createBackend(kind: BackendKind, options: CreateBackendOptions = {}): Promise<E2eBackend> {
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
  }
}
