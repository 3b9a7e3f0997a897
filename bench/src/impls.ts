/**
 * What is measured: each driver through its public `StorageDriver` API, the raw client of its
 * backend doing the same bytes in the same number of round trips, and the official
 * `@temporalio/external-storage-s3` driver.
 *
 * @module
 */
import { open, readFile, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import {
  S3StorageDriver as OfficialS3StorageDriver,
  type S3RequestOptions,
  type S3StorageDriverClient,
} from '@temporalio/external-storage-s3';
import {
  fitStorageKey,
  mapBounded,
  type Payload,
  type StorageDriver,
  type StorageDriverClaim,
  type StorageDriverTargetInfo,
} from '@x/storage-driver-core';
import { FS_DRIVER_DEFAULT_CONCURRENCY, FsStorageDriver } from '@x/storage-driver-fs';
import { PostgresStorageDriver } from '@x/storage-driver-postgres';
import { RedisStorageDriver } from '@x/storage-driver-redis';
import { S3_DRIVER_DEFAULT_CONCURRENCY, S3StorageDriver, type S3StorageDriverOptions } from '@x/storage-driver-s3';
import { SERVICES, uniqueName } from '@x/test-servers';
import { Redis } from 'ioredis';
import pg from 'pg';
import { payloadData } from './env';

/** The backends measured. */
export const BACKENDS = ['fs', 'redis', 'postgres', 's3'] as const;
/** One backend. */
export type Backend = (typeof BACKENDS)[number];
/** Our driver, the raw-client baseline, or the official S3 driver. */
export type ImplKind = 'driver' | 'raw' | 'official';

/** Largest payload the benchmark's drivers accept: room for the 50 MiB `big` payload plus metadata. */
export const BENCH_MAX_PAYLOAD_SIZE = 64 * 1024 * 1024;

/** The workflow every stored payload belongs to (a realistic, scoped key). */
export const BENCH_TARGET: StorageDriverTargetInfo = {
  kind: 'workflow',
  namespace: 'bench',
  type: 'BenchWorkflow',
  id: 'bench-1',
  runId: '6f1c2d3e-4b5a-4978-8a6b-5c4d3e2f1a0b',
};

/** One thing measured: stores a batch, returns what `retrieve` needs to read it back. */
export interface Impl {
  /** `backend` or `backend-raw` or `s3-official`. */
  readonly id: string;
  readonly backend: Backend;
  readonly kind: ImplKind;
  /** Stores a batch; resolves to one reference (claim or key) per payload. */
  store(payloads: Payload[]): Promise<unknown[]>;
  /** Reads a batch back; resolves to the total number of data bytes read. */
  retrieve(refs: unknown[]): Promise<number>;
  /** Deletes what was written and closes clients. */
  close(): Promise<void>;
  /**
   * Another instance of the same implementation over the same store and client (a second worker
   * process's driver: its own in-process state, e.g. an empty existence cache). S3 only; closing
   * it deletes nothing.
   */
  twin?(): Impl;
}

/** Every implementation id, in display order. */
export const IMPL_IDS = [
  'fs',
  'fs-raw',
  'redis',
  'redis-raw',
  'postgres',
  'postgres-raw',
  's3',
  's3-raw',
  's3-official',
];

/**
 * The raw clients with the contract's keys (see {@link RawKeys}): not in the tables; measured on
 * the hashing-floor workloads for the targets' notes, like core alone.
 */
export const RAW_KEYS_IMPL_IDS: readonly string[] = ['redis-raw-keys', 'postgres-raw-keys'];

/**
 * Our S3 driver's configurations measured in the S3 latency profile, by implementation id: `s3`
 * is the driver with default options; the others change one setting (the existence check) or add
 * the opt-in existence cache.
 */
export const S3_LATENCY_VARIANTS: Readonly<Record<string, Partial<S3StorageDriverOptions>>> = {
  s3: {},
  's3-head': { existenceCheck: 'head' },
  's3-cput': { existenceCheck: 'conditional-put' },
  's3-cache': { existenceCache: {} },
  's3-cput-cache': { existenceCheck: 'conditional-put', existenceCache: {} },
  's3-c16': { concurrency: 16 },
  's3-c64': { concurrency: 64 },
  's3-cput-c64': { existenceCheck: 'conditional-put', concurrency: 64 },
};

/**
 * Which server setup an implementation runs against: `loopback` (the shared servers directly) or
 * `s3-latency` (S3 through the latency-injecting proxy; `s3` then means default options).
 */
export type Profile = 'loopback' | 's3-latency';

/** Backend and kind of an implementation id (`s3-head`, `s3-cache`, …: our S3 driver). */
export function describeImpl(id: string): { backend: Backend; kind: ImplKind } {
  const [backend, suffix] = id.split('-') as [Backend, string | undefined];
  return { backend, kind: suffix === 'raw' || suffix === 'official' ? suffix : 'driver' };
}

let instrument: ((driver: StorageDriver) => StorageDriver) | undefined;

/**
 * Wraps every driver this process measures from now on (the `otel` group's instrumented modes:
 * `instrumentStorageDriver` of `@x/storage-driver-otel`); `undefined` for none.
 */
export function instrumentDrivers(wrap: ((driver: StorageDriver) => StorageDriver) | undefined): void {
  instrument = wrap;
}

/** A driver through the public `StorageDriver` contract. */
export function driverImpl(
  id: string,
  backend: Backend,
  kind: ImplKind,
  plain: StorageDriver,
  close: () => Promise<void>,
): Impl {
  const driver = instrument === undefined ? plain : instrument(plain);
  return {
    id,
    backend,
    kind,
    store: (payloads) => driver.store({ target: BENCH_TARGET }, payloads),
    async retrieve(refs) {
      const back = await driver.retrieve({}, refs as StorageDriverClaim[]);
      return back.reduce((n, p) => n + (p.data?.byteLength ?? 0), 0);
    },
    close,
  };
}

/**
 * How a raw client names what it stores: `short` keys (`raw/0`, `raw/1`, … one per distinct payload
 * object), or the `contract`'s keys (the `-raw-keys` implementations): the storage keys of
 * DESIGN §4.4 for {@link BENCH_TARGET} (125 characters, content-addressed), which a driver must
 * write. The difference between the two measures what the key format alone costs the client and
 * the server.
 */
export type RawKeys = 'short' | 'contract';

/** The raw-client key namer of `keys` (see {@link RawKeys}), each key after `prefix`. */
function rawKeyNamer(keys: RawKeys, prefix: string): (payload: Payload) => string {
  if (keys === 'short') return keyNamer(prefix);
  // The driver's key for the target, its prefix built once (core builds it once per batch); the
  // digest part is the payload's first 32 bytes in hex: the benchmark's payloads are random bytes,
  // so that is as random as a digest (the same spread over the key space) and costs no hashing,
  // which core alone already counts.
  const start = prefix + fitStorageKey(BENCH_TARGET, '0'.repeat(64)).slice(0, -64);
  return (payload) => {
    const data = payloadData(payload);
    return (
      start + Buffer.from(data.buffer, data.byteOffset, Math.min(32, data.byteLength)).toString('hex').padEnd(64, '0')
    );
  };
}

/** The id of a raw implementation: `{backend}-raw`, or `{backend}-raw-keys` with the contract's keys. */
function rawId(backend: Backend, keys: RawKeys): string {
  return keys === 'short' ? `${backend}-raw` : `${backend}-raw-keys`;
}

/** Raw-client keys: one per distinct payload object, so a repeated payload rewrites its own key. */
function keyNamer(prefix: string): (payload: Payload) => string {
  const keys = new WeakMap<Payload, string>();
  let next = 0;
  return (payload) => {
    let key = keys.get(payload);
    if (key === undefined) {
      key = `${prefix}${next++}`;
      keys.set(payload, key);
    }
    return key;
  };
}

/** The S3Client configuration every S3 implementation gets (identical for fairness). */
export function makeS3Client(): S3Client {
  return new S3Client({
    endpoint: SERVICES.s3Endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'bench', secretAccessKey: 'bench-secret' },
  });
}

async function emptyAndDeleteBucket(client: S3Client, bucket: string): Promise<void> {
  for (;;) {
    const listed = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
    const keys = (listed.Contents ?? []).flatMap((o) => (o.Key === undefined ? [] : [{ Key: o.Key }]));
    if (keys.length === 0) break;
    await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys } }));
  }
  await client.send(new DeleteBucketCommand({ Bucket: bucket }));
}

/**
 * The official driver's client over an AWS SDK `S3Client`, request for request what the published
 * `@temporalio/external-storage-s3-aws-sdk` adapter (`AwsSdkS3StorageDriverClient`) sends:
 * `HeadObject` (404 = absent), `PutObject { Bucket, Key, Body }`, `GetObject` + `transformToByteArray`.
 */
export class OfficialAwsSdkClient implements S3StorageDriverClient {
  constructor(private readonly client: S3Client) {}

  async objectExists(bucket: string, key: string, options?: S3RequestOptions): Promise<boolean> {
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }), {
        abortSignal: options?.abortSignal,
      });
      return true;
    } catch (err) {
      const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
      if (e?.name === 'NotFound' || e?.$metadata?.httpStatusCode === 404) return false;
      throw err;
    }
  }

  async putObject(bucket: string, key: string, data: Uint8Array, options?: S3RequestOptions): Promise<void> {
    await this.client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: data }), {
      abortSignal: options?.abortSignal,
    });
  }

  async getObject(bucket: string, key: string, options?: S3RequestOptions): Promise<Uint8Array> {
    const out = await this.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }), {
      abortSignal: options?.abortSignal,
    });
    if (!out.Body) throw new Error(`S3 GetObject returned an empty body [bucket=${bucket}, key=${key}]`);
    return out.Body.transformToByteArray();
  }
}

/**
 * Options of the `s3` implementation: the driver README's performance configuration (the opt-in
 * existence cache, and conditional PUTs instead of a `HeadObject` before each upload), overridden
 * by any JSON object in `XSTORAGE_BENCH_S3_OPTIONS` (e.g. `{"existenceCheck":"auto"}`,
 * `{"existenceCache":false}`).
 */
export function benchS3Options(): Partial<S3StorageDriverOptions> {
  const extra = process.env.XSTORAGE_BENCH_S3_OPTIONS;
  return {
    existenceCache: {},
    existenceCheck: 'conditional-put',
    ...(extra ? (JSON.parse(extra) as Partial<S3StorageDriverOptions>) : {}),
  };
}

/**
 * The `S3StorageDriver` class measured: `@x/storage-driver-s3`, or the build at
 * `XSTORAGE_BENCH_S3_DRIVER_MODULE` (another build of the package, for before/after numbers).
 */
function s3DriverClass(): typeof S3StorageDriver {
  const module = process.env.XSTORAGE_BENCH_S3_DRIVER_MODULE;
  if (!module) return S3StorageDriver;
  return (require(module) as { S3StorageDriver: typeof S3StorageDriver }).S3StorageDriver;
}

/** The official driver over an AWS SDK client (typed against @temporalio/common's identical `Payload`). */
export function officialS3Driver(client: S3Client, bucket: string): StorageDriver {
  const driver = new OfficialS3StorageDriver({
    client: new OfficialAwsSdkClient(client),
    bucket,
    maxPayloadSize: BENCH_MAX_PAYLOAD_SIZE,
  });
  return driver as unknown as StorageDriver;
}

/**
 * One S3 implementation on a fresh bucket. `options` are our driver's (ignored for the raw client
 * and the official driver).
 */
async function s3Impl(id: string, kind: ImplKind, options: Partial<S3StorageDriverOptions>): Promise<Impl> {
  const client = makeS3Client();
  const bucket = uniqueName('xs-bench', { lowerCase: true, maxLength: 63 });
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  const close = async () => {
    await emptyAndDeleteBucket(client, bucket);
    client.destroy();
  };
  if (kind === 'driver' || kind === 'official') {
    const make = (): StorageDriver => {
      if (kind === 'official') return officialS3Driver(client, bucket);
      const Driver = s3DriverClass();
      return new Driver({ client, bucket, maxPayloadSize: BENCH_MAX_PAYLOAD_SIZE, ...options });
    };
    const impl = driverImpl(id, 's3', kind, make(), close);
    return { ...impl, twin: () => driverImpl(id, 's3', kind, make(), async () => {}) };
  }
  const name = keyNamer('raw/');
  const raw: Impl = {
    id: 's3-raw',
    backend: 's3',
    kind,
    async store(payloads) {
      // PutObject per payload, as many in flight as the driver allows (its default concurrency).
      return mapBounded(payloads, S3_DRIVER_DEFAULT_CONCURRENCY, async (p) => {
        const Key = name(p);
        await client.send(new PutObjectCommand({ Bucket: bucket, Key, Body: payloadData(p) }));
        return Key;
      });
    },
    async retrieve(refs) {
      const sizes = await mapBounded(refs as string[], S3_DRIVER_DEFAULT_CONCURRENCY, async (Key) => {
        const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key }));
        const body = out.Body as { transformToByteArray(): Promise<Uint8Array> };
        return (await body.transformToByteArray()).byteLength;
      });
      return sizes.reduce((a, b) => a + b, 0);
    },
    close,
    // Another process's raw client: same bucket, same keys for the same payload objects.
    twin: () => ({ ...raw, close: async () => {} }),
  };
  return raw;
}

async function redisImpl(kind: ImplKind, url = SERVICES.redisUrl, keys: RawKeys = 'short'): Promise<Impl> {
  const client = new Redis(url, { lazyConnect: true });
  await client.connect();
  const prefix = uniqueName('xs-bench', { separator: ':' });
  const close = async () => {
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      if (keys.length > 0) await client.unlink(...keys);
      cursor = next;
    } while (cursor !== '0');
    await client.quit();
  };
  if (kind === 'driver') {
    const driver = new RedisStorageDriver({ client, keyPrefix: prefix, maxPayloadSize: BENCH_MAX_PAYLOAD_SIZE });
    return driverImpl('redis', 'redis', kind, driver, close);
  }
  // The driver's keys are `{keyPrefix}:` and the storage key with `/` written as `:` (the same
  // length); the short ones `{keyPrefix}:raw:{n}`.
  const name = rawKeyNamer(keys, keys === 'short' ? `${prefix}:raw:` : `${prefix}:`);
  return {
    id: rawId('redis', keys),
    backend: 'redis',
    kind,
    async store(payloads) {
      // One pipeline: SET key value per payload.
      const pipeline = client.pipeline();
      const keys = payloads.map((p) => {
        const key = name(p);
        pipeline.set(key, Buffer.from(payloadData(p).buffer, payloadData(p).byteOffset, payloadData(p).byteLength));
        return key;
      });
      const replies = await pipeline.exec();
      for (const [error] of replies ?? []) if (error) throw error;
      return keys;
    },
    async retrieve(refs) {
      // One MGET.
      const values = (await client.mgetBuffer(...(refs as string[]))) as (Buffer | null)[];
      return values.reduce((n, v) => n + (v?.byteLength ?? 0), 0);
    },
    close,
  };
}

/** A pool for the benchmark (16 connections: the `parallel` workload's callers). */
export function makePool(connectionString = SERVICES.postgresUrl): pg.Pool {
  return new pg.Pool({ connectionString, max: 16 });
}

async function postgresImpl(kind: ImplKind, pool = makePool(), admin = pool, keys: RawKeys = 'short'): Promise<Impl> {
  const schema = uniqueName('xs_bench', { separator: '_', maxLength: 63 });
  await admin.query(`CREATE SCHEMA ${schema}`);
  const close = async () => {
    await admin.query(`DROP SCHEMA ${schema} CASCADE`);
    if (admin !== pool) await admin.end();
    await pool.end();
  };
  if (kind === 'driver') {
    const driver = new PostgresStorageDriver({ pool, schema, maxPayloadSize: BENCH_MAX_PAYLOAD_SIZE });
    await new PostgresStorageDriver({ pool: admin, schema }).ensureSchema();
    return driverImpl('postgres', 'postgres', kind, driver, close);
  }
  await admin.query(`CREATE TABLE ${schema}.raw (key text PRIMARY KEY, data bytea NOT NULL)`);
  const name = rawKeyNamer(keys, keys === 'short' ? 'raw/' : '');
  // The fastest single statement: every payload's bytes in one binary parameter, cut by offset.
  const insert = [
    `INSERT INTO ${schema}.raw (key, data)`,
    'SELECT item.key, substring($2::bytea FROM item.start FOR item.length)',
    'FROM unnest($1::text[], $3::integer[], $4::integer[]) AS item(key, start, length)',
    'ON CONFLICT (key) DO NOTHING',
  ].join('\n');
  return {
    id: rawId('postgres', keys),
    backend: 'postgres',
    kind,
    async store(payloads) {
      const keys: string[] = [];
      const starts: number[] = [];
      const lengths: number[] = [];
      let offset = 1;
      const seen = new Set<string>();
      const parts: Uint8Array[] = [];
      for (const p of payloads) {
        const key = name(p);
        keys.push(key);
        if (seen.has(key)) continue;
        seen.add(key);
        const data = payloadData(p);
        parts.push(data);
        starts.push(offset);
        lengths.push(data.byteLength);
        offset += data.byteLength;
      }
      await pool.query(insert, [[...seen], Buffer.concat(parts), starts, lengths]);
      return keys;
    },
    async retrieve(refs) {
      const r = await pool.query<{ data: Buffer }>(`SELECT key, data FROM ${schema}.raw WHERE key = ANY($1::text[])`, [
        [...new Set(refs as string[])],
      ]);
      const sizes = new Map<string, number>(
        r.rows.map((row) => [(row as unknown as { key: string }).key, row.data.byteLength]),
      );
      return (refs as string[]).reduce((n, k) => n + (sizes.get(k) ?? 0), 0);
    },
    close,
  };
}

async function fsImpl(kind: ImplKind): Promise<Impl> {
  const root = join(tmpdir(), uniqueName('xs-bench'));
  const close = () => rm(root, { recursive: true, force: true });
  if (kind === 'driver') {
    const driver = new FsStorageDriver({ root, maxPayloadSize: BENCH_MAX_PAYLOAD_SIZE });
    return driverImpl('fs', 'fs', kind, driver, close);
  }
  const { mkdir } = await import('node:fs/promises');
  const dir = join(root, 'raw');
  const tmp = join(root, 'tmp');
  await mkdir(dir, { recursive: true });
  await mkdir(tmp, { recursive: true });
  const name = keyNamer('');
  let seq = 0;
  return {
    id: 'fs-raw',
    backend: 'fs',
    kind,
    async store(payloads) {
      // Same durability as the driver: write a temp file, fsync it, rename it into place; one
      // fsync of the directory per batch. As many files in flight as the driver allows.
      const keys = await mapBounded(payloads, FS_DRIVER_DEFAULT_CONCURRENCY, async (p) => {
        const key = name(p);
        const temp = join(tmp, `${seq++}`);
        const file = await open(temp, 'w', 0o600);
        try {
          await file.writeFile(payloadData(p));
          await file.sync();
        } finally {
          await file.close();
        }
        await rename(temp, join(dir, key));
        return key;
      });
      const d = await open(dir, 'r');
      try {
        await d.sync();
      } finally {
        await d.close();
      }
      return keys;
    },
    async retrieve(refs) {
      const sizes = await mapBounded(refs as string[], FS_DRIVER_DEFAULT_CONCURRENCY, async (key) => {
        return (await readFile(join(dir, key))).byteLength;
      });
      return sizes.reduce((a, b) => a + b, 0);
    },
    close,
  };
}

/**
 * Creates (and sets up: bucket, schema, prefix, directory) the implementation `id`. In the
 * `s3-latency` profile our S3 driver's options are those of {@link S3_LATENCY_VARIANTS} (`s3`:
 * defaults); on `loopback`, `s3` has {@link benchS3Options}.
 */
export async function createImpl(id: string, profile: Profile = 'loopback'): Promise<Impl> {
  const { backend, kind } = describeImpl(id);
  const keys: RawKeys = RAW_KEYS_IMPL_IDS.includes(id) ? 'contract' : 'short';
  switch (backend) {
    case 'fs':
      return fsImpl(kind);
    case 'redis':
      return redisImpl(kind, SERVICES.redisUrl, keys);
    case 'postgres':
      return postgresImpl(kind, makePool(), undefined, keys);
    case 's3': {
      if (profile === 'loopback') return s3Impl(id, kind, benchS3Options());
      const options = S3_LATENCY_VARIANTS[id];
      if (kind === 'driver' && options === undefined) throw new Error(`unknown S3 variant ${id}`);
      return s3Impl(id, kind, options ?? {});
    }
  }
}

/** Implementations for the round-trip counting pass: Redis through a URL, Postgres through a pool. */
export const countingImpls = { redis: redisImpl, postgres: postgresImpl };
