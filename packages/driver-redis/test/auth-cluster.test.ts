/**
 * A password-protected private Redis Cluster (3 masters, `requirepass` + `masterauth`), started
 * once for this file: the right password (`redisOptions.password`) works; a wrong one is a
 * permanent E_CONFIG whose message and whole cause chain never contain the password, whether the
 * Cluster is injected or built by `fromClusterNodes` (ioredis nests the failed AUTH/HELLO command,
 * arguments included, in `lastNodeError` and in the errors of a node connection).
 */
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { StorageDriverError } from '@x/storage-driver-core';
import { captureStorageDriverError } from '@x/storage-driver-test-suite';
import { Cluster, Redis } from 'ioredis';
import { RedisStorageDriver } from '../src';
import { payload, quitAll, text, workflowTarget } from './helpers';
import { type PrivateCluster, startCluster } from './servers';

const SECRET = 'cluster-Pa55-4e7d';
const WRONG = 'cluster-Wrong-b09a';

let cluster: PrivateCluster;
let nodes: { host: string; port: number }[];
beforeAll(async () => {
  cluster = await startCluster({ password: SECRET });
  nodes = cluster.nodes.map((n) => ({ host: '127.0.0.1', port: n.port }));
}, 60_000);
afterAll(async () => {
  await cluster?.stop();
});

/** Everything reachable from the error: message, stack, properties, the whole cause chain. */
function everything(error: StorageDriverError): string {
  return inspect(error, { depth: Number.POSITIVE_INFINITY, showHidden: true, maxArrayLength: null });
}

function expectNoSecret(error: StorageDriverError, secret: string): void {
  expect(error.message).not.toContain(secret);
  const dump = everything(error);
  expect(dump).not.toContain(secret);
  expect(dump).not.toContain(Buffer.from(secret).toString('hex'));
}

/** Connections the nodes have accepted so far, read over long-lived admin connections (one per node). */
async function connectionsReceived(admins: readonly Redis[]): Promise<number> {
  const infos = await Promise.all(admins.map((admin) => admin.info('stats')));
  return infos.reduce((sum, info) => sum + Number(/total_connections_received:(\d+)/.exec(info)?.[1]), 0);
}

/** Payloads of one batch whose keys hash to many slots, hence to all three masters. */
function batch(label: string) {
  return Array.from({ length: 12 }, (_, i) => payload(`${label} ${i}`));
}

describe('password-protected cluster', () => {
  it('an injected Cluster with the right password stores and retrieves a batch across all masters', async () => {
    const client = new Cluster(nodes, { redisOptions: { password: SECRET } });
    client.on('error', () => {});
    try {
      const driver = new RedisStorageDriver({ client, keyPrefix: 'auth-cluster', operationTimeout: 10_000 });
      const payloads = batch('right password');
      const claims = await driver.store({ target: workflowTarget('wf-auth') }, payloads);
      const retrieved = await driver.retrieve({}, claims);
      expect(retrieved.map(text)).toEqual(payloads.map(text));
      // The batch really spread over the three masters.
      const perNode = await Promise.all(client.nodes('master').map((n) => n.dbsize()));
      expect(perNode.filter((count) => count > 0)).toHaveLength(3);
    } finally {
      await quitAll(client);
    }
  });

  it('an injected Cluster with a wrong password → E_CONFIG (not retryable), the password nowhere in the error', async () => {
    const client = new Cluster(nodes, { redisOptions: { password: WRONG } });
    client.on('error', () => {});
    try {
      const driver = new RedisStorageDriver({ client, keyPrefix: 'auth-cluster', operationTimeout: 5_000 });
      const error = await captureStorageDriverError(() => driver.store({}, batch('wrong password')));
      expect([error.code, error.retryable]).toEqual(['E_CONFIG', false]);
      expect(error.message).toMatch(/WRONGPASS/);
      expectNoSecret(error, WRONG);
    } finally {
      client.disconnect();
    }
  });

  it('the password changes under a ready Cluster: a node connection opened for the batch fails AUTH → E_CONFIG, the old password nowhere in the error', async () => {
    const client = new Cluster(nodes, { redisOptions: { password: SECRET } });
    client.on('error', () => {});
    const rotated = 'cluster-Rotated-5c21';
    const admins = nodes.map(({ host, port }) => new Redis(port, host, { password: SECRET }));
    try {
      const driver = new RedisStorageDriver({ client, keyPrefix: 'auth-cluster', operationTimeout: 5_000 });
      await new Promise((resolve) => client.once('ready', resolve));
      // ioredis loaded the slot map from one node; the other masters' connections open lazily,
      // at the first command sent to them — that is, in the batch below, with the old password.
      expect(client.nodes('master').filter((n) => n.status === 'wait').length).toBeGreaterThan(0);
      for (const admin of admins) {
        await admin.config('SET', 'masterauth', rotated);
        await admin.config('SET', 'requirepass', rotated); // open connections stay authenticated
      }
      const error = await captureStorageDriverError(() => driver.store({}, batch('after the rotation')));
      expect([error.code, error.retryable]).toEqual(['E_CONFIG', false]);
      expect(error.message).toMatch(/WRONGPASS/);
      expectNoSecret(error, SECRET);
    } finally {
      client.disconnect();
      for (const admin of admins) {
        await admin.config('SET', 'requirepass', SECRET).catch(() => {});
        await admin.config('SET', 'masterauth', SECRET).catch(() => {});
      }
      await quitAll(...admins);
    }
  });

  it('fromClusterNodes with a wrong password in clientOptions.redisOptions → E_CONFIG without the secret; close() ends the client', async () => {
    const driver = RedisStorageDriver.fromClusterNodes(nodes, {
      keyPrefix: 'auth-cluster',
      operationTimeout: 5_000,
      clientOptions: { redisOptions: { password: WRONG } },
    });
    try {
      const error = await captureStorageDriverError(() => driver.store({}, batch('owned, wrong password')));
      expect([error.code, error.retryable]).toEqual(['E_CONFIG', false]);
      expect(error.message).toMatch(/WRONGPASS/);
      expectNoSecret(error, WRONG);
      const readError = await captureStorageDriverError(() =>
        driver.retrieve({}, [
          {
            claimData: {
              key: `auth-cluster:v0:d:sha256:${'0'.repeat(64)}`,
              hash_algorithm: 'sha256',
              hash_value: '0'.repeat(64),
            },
          },
        ]),
      );
      expect([readError.code, readError.retryable]).toEqual(['E_CONFIG', false]);
      expectNoSecret(readError, WRONG);
    } finally {
      await driver.close();
    }
    // Ended: no reconnection attempt reaches any node afterwards (ioredis' cluster retry runs
    // every ~100 ms), and calls fail with a permanent E_CONFIG.
    expect(['connecting', 'connect', 'ready', 'reconnecting']).not.toContain(driver.client.status);
    const admins = nodes.map(({ host, port }) => new Redis(port, host, { password: SECRET }));
    try {
      const before = await connectionsReceived(admins);
      await new Promise((r) => setTimeout(r, 500));
      expect(await connectionsReceived(admins)).toBe(before);
    } finally {
      await quitAll(...admins);
    }
    const closed = await captureStorageDriverError(() => driver.store({}, [payload('after close')]));
    expect([closed.code, closed.retryable]).toEqual(['E_CONFIG', false]);
  });
});
