/**
 * `x-storage sweep` as a process against the real PostgreSQL driver, built from a JSON config
 * with the factory form (`PostgresStorageDriver.fromConnectionString(url, options)`), in a
 * schema of its own on the shared server.
 */
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { PostgresStorageDriver } from '@x/storage-driver-postgres';
import { Pool } from 'pg';
import { cleanup, jsonPayload, makeTempDir, runXStorage as run } from './helpers';

const POSTGRES_URL = process.env.XSTORAGE_POSTGRES_URL ?? 'postgres://xstorage:xstorage-secret@127.0.0.1:5442/xstorage';
const SCHEMA = `x_storage_cli_${process.pid}_${randomBytes(4).toString('hex')}`;
const TTL = 1; // ms: rows expire at once (server clock)

let dir: string;
let pool: Pool;
let driver: PostgresStorageDriver;
let config: string;

beforeAll(async () => {
  dir = await makeTempDir('x-storage-cli-pg-');
  pool = new Pool({ connectionString: POSTGRES_URL, max: 2 });
  pool.on('error', () => {});
  driver = new PostgresStorageDriver({ pool, schema: SCHEMA, ttl: TTL });
  await driver.ensureSchema();
  config = path.join(dir, 'x-storage.json');
  await writeFile(
    config,
    JSON.stringify({
      drivers: {
        pg: {
          module: '@x/storage-driver-postgres',
          export: 'PostgresStorageDriver',
          factory: 'fromConnectionString',
          // A long idle timeout: the process only exits promptly if the CLI closes the driver's pool.
          args: [POSTGRES_URL, { schema: SCHEMA, ttl: TTL, poolConfig: { idleTimeoutMillis: 600_000 } }],
        },
      },
    }),
  );
});

afterAll(async () => {
  await pool?.query(`DROP SCHEMA IF EXISTS "${SCHEMA}" CASCADE`).catch(() => {});
  await pool?.end().catch(() => {});
  await cleanup(dir);
});

async function rowCount(): Promise<number> {
  const r = await pool.query(`SELECT count(*)::integer AS n FROM "${SCHEMA}".temporal_payloads`);
  return (r.rows[0] as { n: number }).n;
}

/** Stores `count` distinct payloads and waits until the server sees them all as expired. */
async function storeExpired(count: number): Promise<void> {
  const payloads = Array.from({ length: count }, (_, i) => jsonPayload({ i, filler: 'p'.repeat(1000) }));
  await driver.store({}, payloads);
  for (;;) {
    const r = await pool.query(
      `SELECT count(*)::integer AS n FROM "${SCHEMA}".temporal_payloads WHERE expires_at >= now()`,
    );
    if ((r.rows[0] as { n: number }).n === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

it('sweeps expired rows of a factory-built postgres driver, in bounded batches, and exits', async () => {
  await storeExpired(3);
  expect(await rowCount()).toBe(3);

  const dry = await run(['sweep', '--config', config, '--dry-run']);
  expect(dry.code).toBe(0);
  expect(dry.stdout).toBe('pg (postgres, postgres.pgdriver): skipped: deleteExpired() has no dry run\n');
  expect(await rowCount()).toBe(3);

  const partial = await run(['sweep', '--config', config, '--batch-size', '1', '--max-batches', '2']);
  expect(partial).toMatchObject({ code: 0, stderr: '' });
  expect(partial.stdout).toMatch(
    /^pg \(postgres, postgres\.pgdriver\): deleteExpired: deleted=2 deletedBytes=\d+ batches=2 more=true\n {2}removed 2 expired payloads \(\d\.\d KiB\) in 2 batches\n {2}more expired payloads remain/,
  );
  expect(await rowCount()).toBe(1);

  const rest = await run(['sweep', '--config', config, '--json']);
  expect(rest.code).toBe(0);
  const [outcome] = JSON.parse(rest.stdout);
  expect(outcome).toMatchObject({
    id: 'pg',
    driverName: 'postgres',
    driverType: 'postgres.pgdriver',
    method: 'deleteExpired',
    result: { deleted: 1, batches: 1, more: false },
  });
  expect(outcome.result.deletedBytes).toBeGreaterThan(1000);
  expect(await rowCount()).toBe(0);

  const none = await run(['sweep', '--config', config]);
  expect(none.stdout).toBe(
    'pg (postgres, postgres.pgdriver): deleteExpired: deleted=0 deletedBytes=0 batches=1 more=false\n  removed 0 expired payloads (0 B) in 1 batch\n',
  );
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
          args: [POSTGRES_URL, { schema: `${SCHEMA}_missing` }],
        },
      },
    }),
  );
  const result = await run(['sweep', '--config', bad]);
  expect(result.code).toBe(1);
  expect(result.stdout).toMatch(/pg \(postgres, postgres\.pgdriver\): deleteExpired failed: E_CONFIG .*ensureSchema/);
  expect(`${result.stdout}${result.stderr}`).not.toContain(new URL(POSTGRES_URL).password);
});
