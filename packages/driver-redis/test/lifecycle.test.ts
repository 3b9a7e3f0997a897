/**
 * The Redis side of the lifecycle contract (DESIGN §8) beyond the conformance group: ages derived
 * from the remaining expiry on the server's clock, keys of other tools, SCAN patterns under a
 * keyPrefix with glob characters, clock skew between the sweeper and Redis, and every master of
 * the cluster. Against the shared servers of scripts/services.sh.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { encodePayload, type StorageDriverClaim, type StoredObject, sha256Hex } from '@x/storage-driver-core';
import type { Cluster, Redis } from 'ioredis';
import { RedisStorageDriver, redisClusterKeySlot } from '../src';
import { escapeGlob, scanPattern } from '../src/lifecycle';
import {
  clusterClient,
  collect,
  deleteUnder,
  errorCode,
  payload,
  quitAll,
  standaloneClient,
  text,
  uniquePrefix,
  workflowTarget,
} from './helpers';

let client: Redis;
let cluster: Cluster;
const prefixes: string[] = [];
beforeAll(() => {
  client = standaloneClient();
  cluster = clusterClient();
});
afterAll(async () => {
  for (const p of prefixes) await deleteUnder(client, p).catch(() => {});
  await quitAll(client, cluster);
});

function makeDriver(options: { ttl?: number; keyPrefix?: string; clock?: () => number } = {}): RedisStorageDriver {
  const keyPrefix = options.keyPrefix ?? uniquePrefix('lifecycle');
  prefixes.push(keyPrefix);
  return new RedisStorageDriver({ client, ...options, keyPrefix });
}

const keyOf = (claim: StorageDriverClaim | undefined) => claim?.claimData.key as string;

describe('capabilities', () => {
  it('native expiry with a ttl, none without; last-referenced times partial; batched writes', () => {
    expect(makeDriver({ ttl: 60_000 }).capabilities).toEqual({
      list: true,
      delete: true,
      deleteExpired: true,
      close: true,
      expiry: 'native',
      lastReferenced: 'partial',
      batchedWrites: true,
    });
    expect(makeDriver().capabilities.expiry).toBe('none');
  });
});

describe('last-referenced time from the remaining expiry', () => {
  it('is the server time minus (ttl − PTTL); expiresAt is the server time plus PTTL', async () => {
    const driver = makeDriver({ ttl: 600_000 });
    const [claim] = await driver.store({}, [payload('aged')]);
    await client.pexpire(keyOf(claim), 600_000 - 120_000); // referenced two minutes ago
    const [o] = await collect(driver.list());
    const now = Date.now();
    expect(Math.abs((o?.lastReferenced?.getTime() as number) - (now - 120_000))).toBeLessThan(2_000);
    expect(Math.abs((o?.expiresAt?.getTime() as number) - (now + 480_000))).toBeLessThan(2_000);
    // A longer expiry than the driver's ttl (a driver with a longer ttl wrote it): clamped to now.
    await client.pexpire(keyOf(claim), 900_000);
    const [clamped] = await collect(driver.list());
    expect(Math.abs((clamped?.lastReferenced?.getTime() as number) - Date.now())).toBeLessThan(2_000);
  });

  it('without ttl the horizon is 100 years: a fresh payload was referenced now', async () => {
    const driver = makeDriver();
    await driver.store({}, [payload('no ttl')]);
    const [o] = await collect(driver.list());
    expect(Math.abs((o?.lastReferenced?.getTime() as number) - Date.now())).toBeLessThan(2_000);
    expect((o?.expiresAt?.getTime() as number) - Date.now()).toBeGreaterThan(99 * 365 * 86_400_000);
  });

  it('keys another tool wrote without expiry: no lastReferenced, kept by conditional deletes, deleted by plain ones', async () => {
    const driver = makeDriver({ ttl: 60_000 });
    const bytes = encodePayload(payload('written by the Python sample without ttl'));
    const key = `${driver.keyPrefix}:v0:d:sha256:${sha256Hex(bytes)}`; // the sample's layout
    await client.set(key, Buffer.from(bytes));
    const [listed] = await collect(driver.list());
    expect(listed).toMatchObject({
      key: key
        .slice(driver.keyPrefix.length + 1)
        .split(':')
        .join('/'),
      size: bytes.length,
    });
    expect(listed?.lastReferenced).toBeUndefined();
    expect(listed?.expiresAt).toBeUndefined();
    expect(await collect(driver.list({ olderThan: 0 }))).toEqual([]);
    expect((await driver.deleteExpired({ olderThan: 0 })).removed).toBe(0);
    const future = new Date(Date.now() + 3_600_000);
    expect(await driver.delete([listed as StoredObject], { referencedBefore: future })).toMatchObject({ kept: 1 });
    expect(await client.exists(key)).toBe(1);
    expect(await driver.delete([listed as StoredObject])).toMatchObject({ deleted: 1 });
    expect(await client.exists(key)).toBe(0);
  });
});

describe('clock skew between the sweeper and Redis', () => {
  it('a sweeper whose clock runs an hour ahead deletes nothing fresh: the script compares ages, not clocks', async () => {
    const keyPrefix = uniquePrefix('skew');
    const writer = makeDriver({ keyPrefix });
    const claims = await writer.store({}, [payload('fresh 1'), payload('fresh 2')]);
    const ahead = makeDriver({ keyPrefix, clock: () => Date.now() + 3_600_000 });
    // Listed as candidates (their server-clock times are an hour before the sweeper's cutoff)…
    const result = await ahead.deleteExpired({ olderThan: 60_000 });
    expect({ scanned: result.scanned, removed: result.removed, errors: result.errors }).toEqual({
      scanned: 2,
      removed: 0,
      errors: [],
    });
    // …but re-checked on the server: not unreferenced for a minute, so kept.
    expect((await writer.retrieve({}, claims)).map(text)).toEqual(['"fresh 1"', '"fresh 2"']);
  });
});

describe('keys under the prefix', () => {
  it('a keyPrefix with glob characters matches only itself; keys that are not payloads are skipped', async () => {
    const base = uniquePrefix('glob');
    prefixes.push(base);
    const keyPrefix = `${base}:g*l?o[b]\\x`;
    const driver = new RedisStorageDriver({ client, keyPrefix });
    const claims = await driver.store({ target: workflowTarget('wf') }, [payload('mine 1'), payload('mine 2')]);
    const h = sha256Hex(encodePayload(payload('other')));
    const planted = [
      `${base}:gAAlYob\\x:v0:d:sha256:${h}`, // what the unescaped pattern would match
      `${base}:gXlYo[b]\\x:v0:d:sha256:${h}`,
      `${keyPrefix}:v0:junk`, // not a storage key
      `${keyPrefix}:v0/d/sha256/${h}`, // "/" separators
      `${keyPrefix}x:v0:d:sha256:${h}`, // a longer prefix
    ];
    for (const k of planted) await client.set(k, 'x');
    await client.hset(`${keyPrefix}:v0:d:sha256:${h}`, 'not', 'a string'); // WRONGTYPE for STRLEN
    const listed = await collect(driver.list());
    expect(listed.map((o) => o.location.key).sort()).toEqual(claims.map(keyOf).sort());
    expect(await driver.delete(['v0/d/sha256/' + h])).toMatchObject({ deleted: 1 }); // the hash, by storage key
  });

  it('scanPattern: the storage-key prefix becomes part of the pattern, escaped', () => {
    expect(escapeGlob('a*b?c[d]e\\f')).toBe('a\\*b\\?c\\[d\\]e\\\\f');
    expect(scanPattern('p:', undefined)).toBe('p:v0:*');
    expect(scanPattern('p:', '')).toBe('p:v0:*');
    expect(scanPattern('p:', 'v0')).toBe('p:v0:*');
    expect(scanPattern('p:', 'v0/ns/pay*/')).toBe('p:v0:ns:pay\\*:*');
    expect(scanPattern('p*:', 'v0/ns/a/wt/b')).toBe('p\\*:v0:ns:a:wt:b*');
    expect(scanPattern('p:', 'v1/')).toBeUndefined();
    expect(scanPattern('p:', 'v0/ns/a:b/')).toBeUndefined(); // storage keys have no ":"
  });

  it('list({ prefix }) with a glob character in a namespace yields only that namespace', async () => {
    const driver = makeDriver();
    await driver.store({ target: workflowTarget('wf', { namespace: 'pay*' }) }, [payload('star')]);
    await driver.store({ target: workflowTarget('wf', { namespace: 'payments' }) }, [payload('plain')]);
    const star = await collect(driver.list({ prefix: 'v0/ns/pay*/' }));
    expect(star.map((o) => o.key.split('/')[2])).toEqual(['pay*']);
    expect(await collect(driver.list({ prefix: 'v1/' }))).toEqual([]);
  });

  it('delete of a storage key maps it under keyPrefix; malformed keys are E_INVALID_CLAIM before any call', async () => {
    const driver = makeDriver();
    const [claim] = await driver.store({ target: workflowTarget('wf') }, [payload('by key')]);
    const storageKey = keyOf(claim)
      .slice(driver.keyPrefix.length + 1)
      .split(':')
      .join('/');
    expect(await driver.delete([storageKey])).toMatchObject({ deleted: 1 });
    for (const bad of ['v0:d:sha256:' + '0'.repeat(64), `${driver.keyPrefix}:${storageKey}`, '../x', '']) {
      expect(await errorCode(() => driver.delete([bad]))).toBe('E_INVALID_CLAIM');
    }
  });
});

describe('cluster', () => {
  it('list scans every master; delete and deleteExpired reach every master', async () => {
    const keyPrefix = uniquePrefix('lifecycle-cluster');
    const driver = new RedisStorageDriver({ client: cluster, keyPrefix });
    try {
      const payloads = Array.from({ length: 60 }, (_, i) => payload(`cluster ${i}`));
      const claims = await driver.store({}, payloads);
      const masters = new Set(claims.map((c) => cluster.slots[redisClusterKeySlot(keyOf(c))]?.[0]));
      expect(masters.size).toBe(3);
      const listed = await collect(driver.list());
      expect(listed.map((o) => o.location.key).sort()).toEqual(claims.map(keyOf).sort());
      const first = new Set(claims.slice(0, 30).map(keyOf));
      const doomed = listed.filter((o) => first.has(o.location.key as string));
      expect(await driver.delete(doomed)).toMatchObject({ deleted: 30, missing: 0, errors: [] });
      for (const c of claims.slice(30)) await cluster.pexpire(keyOf(c), 1_000_000); // referenced long ago
      const swept = await driver.deleteExpired({ olderThan: 60_000 });
      expect({ removed: swept.removed, errors: swept.errors }).toEqual({ removed: 30, errors: [] });
      expect(await collect(driver.list())).toEqual([]);
    } finally {
      await deleteUnder(cluster, keyPrefix);
    }
  });
});
