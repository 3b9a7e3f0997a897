/**
 * `x-storage sweep` as a real process against every bundled driver on its real server (a temp
 * directory, Redis, PostgreSQL, S3 on moto), each built by the CLI from a config file the way an
 * operator writes one: old payloads go, fresh ones stay, a dry run reports exactly what the real
 * run then removes. Plus progress on a terminal (in-process, with a TTY-like stderr), and a driver
 * failure reported with its code, without the password, exit 1.
 */
import { execFile } from 'node:child_process';
import { utimes, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import type { Payload, StorageDriver, StorageDriverClaim } from '@x/storage-driver-core';
import { keyToStoragePath } from '@x/storage-driver-fs';
import { S3StorageDriver } from '@x/storage-driver-s3';
import { captureStorageDriverError } from '@x/storage-driver-test-suite';
import { type BackendKind, createBackend, type TestBackend } from '@x/test-backends';
import { SERVICES } from '@x/test-servers';
import { Redis } from 'ioredis';
import { Pool } from 'pg';
import { BIN, cleanup, jsonPayload, makeTempDir, runXStorage as run } from './helpers';

jest.setTimeout(60_000);

const HOUR = 3_600_000;
/** S3: LastModified has 1 s resolution and cannot be set; with refreshAfter 1 s the minimum delete age is 2.25 s. */
const S3_REFRESH_AFTER = 1000;
/**
 * S3 cannot be aged (LastModified is S3's own clock), so its old objects are waited for. The fresh
 * ones must stay younger than this through the dry and the real sweep (two CLI processes, a few
 * seconds on a loaded 2-core machine): 3 s was seen to run out under parallel test workers.
 */
const S3_OLDER_THAN = 6000;

let dir: string;
beforeAll(async () => {
  dir = await makeTempDir('x-storage-cli-sweep-');
});
afterAll(() => cleanup(dir));

const payloads = (label: string, n: number): Payload[] =>
  Array.from({ length: n }, (_, i) => jsonPayload({ label, i, filler: 'f'.repeat(700 + i) }));

/** The config file that builds, in the CLI process, a driver over the same store as `backend`. */
async function configFor(kind: BackendKind, backend: TestBackend): Promise<string> {
  const file = path.join(dir, `${kind}-${Date.now()}.${kind === 's3' ? 'cjs' : 'json'}`);
  // Package names: the CLI process resolves them from its own directory (dist/), as for a user.
  const resolve = (m: string) => m;
  const d = backend.driver as unknown as { keyPrefix?: string; allowedBuckets?: readonly string[] };
  switch (kind) {
    case 'fs':
      await writeFile(
        file,
        JSON.stringify({
          drivers: {
            store: {
              module: resolve('@x/storage-driver-fs'),
              export: 'FsStorageDriver',
              options: { root: backend.location },
            },
          },
        }),
      );
      break;
    case 'redis':
      await writeFile(
        file,
        JSON.stringify({
          drivers: {
            store: {
              module: resolve('@x/storage-driver-redis'),
              export: 'RedisStorageDriver',
              factory: 'fromUrl',
              args: [SERVICES.redisUrl, { keyPrefix: d.keyPrefix, ttl: 24 * HOUR }],
            },
          },
        }),
      );
      break;
    case 'postgres': {
      const schema = /"([^"]+)"\."temporal_payloads"/.exec(backend.location)?.[1];
      await writeFile(
        file,
        JSON.stringify({
          drivers: {
            store: {
              module: resolve('@x/storage-driver-postgres'),
              export: 'PostgresStorageDriver',
              factory: 'fromConnectionString',
              args: [SERVICES.postgresUrl, { schema }],
            },
          },
        }),
      );
      break;
    }
    case 's3':
      await writeFile(
        file,
        `const load = require('node:module').createRequire(${JSON.stringify(BIN)});
const { S3Client } = load('@aws-sdk/client-s3');
const { S3StorageDriver } = load('@x/storage-driver-s3');
const client = new S3Client({ endpoint: ${JSON.stringify(SERVICES.s3Endpoint)}, region: 'us-east-1', forcePathStyle: true,
  credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
module.exports = {
  drivers: { store: new S3StorageDriver({ client, bucket: ${JSON.stringify(d.allowedBuckets?.[0])}, refreshAfter: ${S3_REFRESH_AFTER} }) },
  close: () => client.destroy(),
};
`,
      );
      break;
    default:
      throw new Error(`no config for ${kind}`);
  }
  return file;
}

/** Makes the objects behind `claims` look last referenced two hours ago (S3: waits past --older-than). */
async function age(kind: BackendKind, backend: TestBackend, claims: StorageDriverClaim[]): Promise<void> {
  const past = new Date(Date.now() - 2 * HOUR);
  switch (kind) {
    case 'fs':
      for (const c of claims) {
        await utimes(path.join(backend.location, keyToStoragePath(c.claimData.key as string)), past, past);
      }
      return;
    case 'redis': {
      const client = new Redis(SERVICES.redisUrl);
      try {
        // Age = ttl − remaining expiry (the driver's horizon is the store's ttl).
        for (const c of claims) await client.pexpire(c.claimData.key as string, 24 * HOUR - 2 * HOUR);
      } finally {
        client.disconnect();
      }
      return;
    }
    case 'postgres': {
      const pool = new Pool({ connectionString: SERVICES.postgresUrl, max: 1 });
      try {
        const table = backend.location.slice(backend.location.indexOf(' table ') + 7);
        await pool.query(`UPDATE ${table} SET last_referenced = $2 WHERE key = ANY($1)`, [
          claims.map((c) => c.claimData.key),
          past,
        ]);
      } finally {
        await pool.end();
      }
      return;
    }
    case 's3':
      await new Promise((r) => setTimeout(r, S3_OLDER_THAN + 1200));
      return;
    default:
      throw new Error(`cannot age ${kind}`);
  }
}

describe.each(['fs', 'redis', 'postgres', 's3'] as const)('%s', (kind) => {
  let backend: TestBackend;
  let writer: StorageDriver;
  beforeEach(async () => {
    backend = await createBackend(kind, { ttl: 24 * HOUR });
    writer = backend.driver;
    if (kind === 's3') {
      const d = backend.driver as S3StorageDriver;
      writer = new S3StorageDriver({
        client: d.client,
        bucket: d.allowedBuckets[0] as string,
        refreshAfter: S3_REFRESH_AFTER,
      });
    }
  });
  afterEach(async () => {
    expect(await backend.close()).toBe(true);
  });

  it('removes payloads not referenced for --older-than, keeps fresh ones; the dry run reports exactly that', async () => {
    const olderThan = kind === 's3' ? `${S3_OLDER_THAN}ms` : '1h';
    const config = await configFor(kind, backend);
    const old = await writer.store({}, payloads(`${kind} old`, 3));
    await age(kind, backend, old);
    const fresh = await writer.store(
      { target: { kind: 'workflow', namespace: 'default', id: 'wf', type: 'W' } },
      payloads('fresh', 2),
    );

    const dry = await run(['sweep', '--config', config, '--older-than', olderThan, '--dry-run', '--json']);
    expect(dry.code).toBe(0);
    expect(dry.stderr).not.toMatch(/^x-storage/m); // (on Node 20 the AWS SDK prints a support warning)
    const [dryOutcome] = JSON.parse(dry.stdout);
    expect(dryOutcome).toMatchObject({
      id: 'store',
      status: 'done',
      dryRun: true,
      result: { scanned: 3, removed: 3, more: false },
    });
    expect(await backend.countObjects()).toBe(5);

    const real = await run(['sweep', '--config', config, '--older-than', olderThan, '--json']);
    expect(real.code).toBe(0);
    const [realOutcome] = JSON.parse(real.stdout);
    expect(realOutcome.result).toEqual({ ...dryOutcome.result, errors: [] });
    expect(realOutcome.result.removedBytes).toBeGreaterThan(3 * 700);
    for (const c of old) {
      expect((await captureStorageDriverError(() => writer.retrieve({}, [c]))).code).toBe('E_NOT_FOUND');
    }
    expect(await writer.retrieve({}, fresh)).toHaveLength(2);
    expect(await backend.countObjects()).toBe(2);
    // Nothing old is left. (S3: with an hour, not the 6 s, so fresh objects cannot age meanwhile.)
    const again = await run(['sweep', '--config', config, '--older-than', kind === 's3' ? '1h' : olderThan, '--json']);
    expect(JSON.parse(again.stdout)[0].result).toMatchObject({ scanned: 0, removed: 0 });
  });
});

it('shows progress on a terminal (a real pseudo-terminal from util-linux script), and none when piped', async () => {
  const backend = await createBackend('fs');
  try {
    const config = await configFor('fs', backend);
    const old = await backend.driver.store({}, payloads('progress', 1200));
    await age('fs', backend, old);
    const args = ['sweep', '--config', config, '--older-than', '1h', '--dry-run'];
    const command = [process.execPath, BIN, ...args].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ');
    const tty = await new Promise<{ code: number | null; output: string }>((resolve) => {
      execFile('script', ['-qec', command, '/dev/null'], { timeout: 30_000 }, (error, stdout) =>
        resolve({ code: error === null ? 0 : ((error as { code?: number }).code ?? 1), output: stdout }),
      );
    });
    expect(tty.code).toBe(0);
    // cli-progress drew the line (redrawn at most 10 times a second), then the summary followed.
    expect(tty.output).toMatch(/store \(dry run\) \| candidates 1200 \| removed 1200 \(1\.\d MiB\)/);
    expect(tty.output).toMatch(/store \(fs, local\.fsdriver\): would remove 1200 of 1200 expired payloads/);
    const piped = await run(args);
    expect(piped.stderr).toBe('');
    expect(piped.stdout).not.toMatch(/candidates/);
  } finally {
    await backend.close();
  }
});

it('reports a driver failure with its code and exits 1, without the password', async () => {
  const bad = path.join(dir, 'missing-table.json');
  await writeFile(
    bad,
    JSON.stringify({
      drivers: {
        pg: {
          module: '@x/storage-driver-postgres',
          export: 'PostgresStorageDriver',
          factory: 'fromConnectionString',
          args: [SERVICES.postgresUrl, { schema: `x_storage_missing_${process.pid}` }],
        },
      },
    }),
  );
  const result = await run(['sweep', '--config', bad, '--older-than', '7d']);
  expect(result.code).toBe(1);
  expect(result.stdout).toMatch(/^pg \(postgres, postgres\.pgdriver\): failed: E_CONFIG /m);
  expect(`${result.stdout}${result.stderr}`).not.toContain(new URL(SERVICES.postgresUrl).password);
});
