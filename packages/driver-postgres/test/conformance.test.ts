/** The shared conformance suite (lifecycle group included) against the shared PostgreSQL, one schema per driver. */
import { afterAll, afterEach, beforeEach, describe, it } from '@jest/globals';
import { StorageDriverClaim, sha256Hex } from '@x/storage-driver-core';
import { runStorageDriverConformance } from '@x/storage-driver-test-suite';
import { PostgresStorageDriver } from '../src';
import { dropSchema, makePool, uniqueSchema } from './helpers';

const pool = makePool({ max: 8 });
/** Schemas to drop per driver (its own, plus the one `plantOutside` writes into). */
const schemas = new Map<PostgresStorageDriver, string[]>();

afterAll(async () => {
  await pool.end();
});

runStorageDriverConformance(
  { describe, it, beforeEach, afterEach },
  {
    type: 'postgres.pgdriver',
    defaultName: 'postgres',
    async create(options) {
      const schema = uniqueSchema('conf');
      const driver = new PostgresStorageDriver({ pool, schema, ...options });
      schemas.set(driver, [schema]);
      await driver.ensureSchema();
      return driver;
    },
    reopen: (driver) => new PostgresStorageDriver({ pool, schema: driver.schema, name: driver.name }),
    async destroy(driver) {
      const list = schemas.get(driver) ?? [];
      schemas.delete(driver);
      for (const s of list) await dropSchema(pool, s);
    },
    // More old objects than a page (1,000): the run lists, deletes and pages on while callers store.
    lifecycleStress: { callers: 16, objects: 2500 },
    capabilities: {
      batchedWrites: true,
      lifecycle: { list: true, delete: true, deleteExpired: true, close: true, lastReferenced: 'exact' },
      clock: true,
    },
    hooks: {
      async age(driver, claims, ms) {
        await pool.query(
          `UPDATE ${driver.qualifiedTable} SET last_referenced = last_referenced - $2::bigint * interval '1 millisecond'
            WHERE key = ANY($1::text[])`,
          [claims.map((c) => c.claimData['key']), ms],
        );
      },
      async corrupt(driver, claim) {
        await pool.query(
          `UPDATE ${driver.qualifiedTable}
              SET data = CASE WHEN length(data) = 0 THEN '\\x00'::bytea
                              ELSE set_byte(data, length(data) - 1, get_byte(data, length(data) - 1) # 255) END
            WHERE key = $1`,
          [claim.claimData['key']],
        );
      },
      async remove(driver, claim) {
        await pool.query(`DELETE FROM ${driver.qualifiedTable} WHERE key = $1`, [claim.claimData['key']]);
      },
      async countObjects(driver) {
        const r = await pool.query<{ n: number }>(`SELECT count(*)::integer AS n FROM ${driver.qualifiedTable}`);
        return r.rows[0]?.n ?? -1;
      },
      hostileClaims(valid) {
        const key = valid.claimData['key'] as string;
        const hostile = [
          `"public"."temporal_payloads"/${key}`,
          `public.temporal_payloads:${key}`,
          `${key}' OR '1'='1`,
          `x' UNION SELECT key, data FROM pg_catalog.pg_largeobject --`,
          `${key}; DROP TABLE temporal_payloads`,
          'v0/d/sha256/%',
          `v0/d/sha256/${'_'.repeat(64)}`,
          key.toUpperCase(),
        ];
        return hostile.map((k) => new StorageDriverClaim({ ...valid.claimData, key: k }));
      },
      async plantOutside(driver, bytes) {
        // The same bytes in a table of another schema, under the key the driver would compute.
        const outside = new PostgresStorageDriver({ pool, schema: `${driver.schema}_out` });
        schemas.get(driver)?.push(outside.schema);
        await outside.ensureSchema();
        const key = `v0/d/sha256/${sha256Hex(bytes)}`;
        await pool.query(`INSERT INTO ${outside.qualifiedTable} (key, data, size) VALUES ($1, $2, $3)`, [
          key,
          Buffer.from(bytes),
          bytes.byteLength,
        ]);
        return [
          `${outside.qualifiedTable}/${key}`,
          `${outside.schema}.${outside.table}/${key}`,
          `../${outside.schema}/${key}`,
          `${key}' UNION SELECT key, data FROM ${outside.qualifiedTable} --`,
        ];
      },
    },
  },
);
