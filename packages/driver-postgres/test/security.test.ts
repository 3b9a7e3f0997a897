/**
 * Security review of the PostgreSQL driver, for what the other test files do not cover:
 * - an injected pool configured with a password: a real failing statement (missing table) gives an
 *   E_CONFIG whose inspected form (`showHidden`, whole cause chain) never holds the password;
 * - hostile long target ids (found by the test-suite's hostile-input property): keys over 1024
 *   characters become the official namespace digest key (a namespace too long even for that is
 *   folded), stay canonical and round-trip, where they used to fail with "index row size exceeds
 *   btree version 4 maximum 2704" (E_BACKEND); keys folded by earlier releases stay readable.
 * Identifier validation: driver.test.ts ('identifier-injection attempts in schema/table are
 * E_CONFIG, and nothing is created'); passwords from owned pools: faults.test.ts.
 */
import { inspect } from 'node:util';
import { afterAll, describe, expect, it } from '@jest/globals';
import { buildStorageKey, encodePayload, parseStorageKey, sha256Hex } from '@x/storage-driver-core';
import { captureStorageDriverError, makePayload, pseudoRandomBytes } from '@x/storage-driver-test-suite';
import { SERVICES } from '@x/test-servers';
import { Pool } from 'pg';
import { PostgresStorageDriver } from '../src';
import { integerArrayLiteral, textArrayLiteral } from '../src/statements';
import { dropSchema, makeDriver, makePool, uniqueSchema } from './helpers';

const pool = makePool();
const schemas: string[] = [];
afterAll(async () => {
  for (const s of schemas) await dropSchema(pool, s);
  await pool.end();
});

describe('credentials', () => {
  it('an injected pool with a password: a real failing statement never exposes it', async () => {
    const url = new URL(SERVICES.postgresUrl);
    const password = decodeURIComponent(url.password);
    const injected = new Pool({ connectionString: SERVICES.postgresUrl, max: 1 });
    injected.on('error', () => {});
    try {
      const d = new PostgresStorageDriver({ pool: injected, schema: uniqueSchema('sec_missing') });
      const e = await captureStorageDriverError(() => d.store({}, [makePayload('x')]));
      expect(e.code).toBe('E_CONFIG');
      const dump = inspect(e, { depth: Number.POSITIVE_INFINITY, showHidden: true, maxArrayLength: null });
      expect(e.message).not.toContain(password);
      expect(dump).not.toContain(password);
      expect(dump).not.toContain(SERVICES.postgresUrl);
    } finally {
      await injected.end();
    }
  });
});

describe('array parameters built by the driver', () => {
  it('the text[] and integer[] literals of the INSERT and the SELECT read back exactly on the server', async () => {
    const keys = ['plain', 'quo"te', 'back\\slash', '\\"', '{brace},comma', 'sp ace', '', 'NULL', 'üñí 🎉', '%22%5C'];
    const r = await pool.query<{ keys: string[]; ints: number[] }>('SELECT $1::text[] AS keys, $2::integer[] AS ints', [
      textArrayLiteral(keys),
      integerArrayLiteral([1, 0, 2147483647, 1025]),
    ]);
    expect(r.rows[0]?.keys).toEqual(keys);
    expect(r.rows[0]?.ints).toEqual([1, 0, 2147483647, 1025]);
    const empty = await pool.query<{ n: number }>('SELECT cardinality($1::text[]) AS n', [textArrayLiteral([])]);
    expect(empty.rows[0]?.n).toBe(0);
  });
});

describe('hostile long target ids', () => {
  /** An id of `n` pseudo-random code points (incompressible once percent-encoded). */
  const randomId = (n: number, seed: number) =>
    String.fromCodePoint(...Array.from(pseudoRandomBytes(n * 2, seed).subarray(0, n), (b, i) => 0x4e00 + b * 37 + i));

  it('a 10,000-character id in every field round-trips; its key is the folded namespace digest key', async () => {
    const schema = uniqueSchema('sec_long');
    schemas.push(schema);
    const d = await makeDriver(pool, schema);
    const target = {
      kind: 'workflow' as const,
      namespace: randomId(10_000, 1),
      type: randomId(10_000, 2),
      id: randomId(10_000, 3),
      runId: randomId(10_000, 4),
    };
    const p = makePayload('long ids');
    const [claim] = await d.store({ target }, [p]);
    const key = claim?.claimData.key as string;
    expect(key.length).toBeLessThanOrEqual(1024);
    expect(parseStorageKey(key).kind).toBe('namespace');
    expect(key).toMatch(/^v0\/ns\/%7E[0-9a-f]{64}\/d\/sha256\/[0-9a-f]{64}$/);
    const [back] = await d.retrieve({}, [claim as NonNullable<typeof claim>]);
    expect(Buffer.from(back?.data ?? []).toString()).toBe('long ids');
  });

  it('keys up to 1024 characters are stored as the key spec builds them, longer ones as v0/ns/{ns}/d/sha256/{hex}', async () => {
    const schema = uniqueSchema('sec_short');
    schemas.push(schema);
    const d = await makeDriver(pool, schema);
    const p = makePayload('short');
    const hex = sha256Hex(encodePayload(p));
    const base = { kind: 'activity' as const, namespace: 'default', type: 'T', id: '' };
    const fits = 'x'.repeat(1024 - buildStorageKey(base, hex).length + 4);
    const [atLimit] = await d.store({ target: { ...base, id: fits } }, [p]);
    expect(atLimit?.claimData.key).toBe(buildStorageKey({ ...base, id: fits }, hex));
    const [over] = await d.store({ target: { ...base, id: `${fits}x` } }, [p]);
    expect(over?.claimData.key).toBe(`v0/ns/default/d/sha256/${hex}`);
  });

  it('a row stored under a key folded by an earlier release (%7E{sha256} segments) is still retrieved', async () => {
    const schema = uniqueSchema('sec_old');
    schemas.push(schema);
    const d = await makeDriver(pool, schema);
    const p = makePayload('folded before');
    const bytes = encodePayload(p);
    const hex = sha256Hex(bytes);
    const key = `v0/ns/default/wt/W/wi/%7E${'ab'.repeat(32)}/ri/run/d/sha256/${hex}`;
    await pool.query(`INSERT INTO "${schema}".temporal_payloads (key, data, size) VALUES ($1, $2, $3)`, [
      key,
      Buffer.from(bytes),
      bytes.length,
    ]);
    const [back] = await d.retrieve({}, [{ claimData: { key, hash_algorithm: 'sha256', hash_value: hex } }]);
    expect(Buffer.from(back?.data ?? []).toString()).toBe('folded before');
  });
});
