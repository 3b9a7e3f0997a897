/** Shared helpers for the driver-redis tests: clients of the shared servers, prefixes, payloads. */
import type { Payload, StorageDriverErrorCode, StorageDriverTargetInfo } from '@x/storage-driver-core';
import { captureStorageDriverError } from '@x/storage-driver-test-suite';
import { SERVICES, uniqueName } from '@x/test-servers';
import { Cluster, Redis } from 'ioredis';

const encoder = new TextEncoder();

/** A key prefix no other test (or test run) uses: `xstorage-test:redis:{label}:{pid}:{time}:{random}`. */
export function uniquePrefix(label: string): string {
  return uniqueName(`xstorage-test:redis:${label}`, { separator: ':' });
}

/** A client of the shared standalone server (`db` 0 unless told). */
export function standaloneClient(db = 0): Redis {
  return new Redis(SERVICES.redisUrl, { db, lazyConnect: false });
}

/** A client of the shared cluster. */
export function clusterClient(): Cluster {
  return new Cluster([...SERVICES.redisClusterNodes], { slotsRefreshInterval: 60_000 });
}

/** The master nodes of a cluster, or the client itself. */
export function masters(client: Redis | Cluster): Redis[] {
  return client instanceof Cluster ? client.nodes('master') : [client];
}

/** Every key under `prefix:` (SCAN on every master). */
export async function keysUnder(client: Redis | Cluster, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  // A fresh Cluster knows no nodes until it has connected.
  if (client instanceof Cluster && client.status !== 'ready') await client.ping();
  for (const node of masters(client)) {
    let cursor = '0';
    do {
      const [next, batch] = await node.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
  }
  return keys.sort();
}

/** Deletes every key under `prefix:` (each key on its own node; no cross-slot commands). */
export async function deleteUnder(client: Redis | Cluster, prefix: string): Promise<void> {
  for (const key of await keysUnder(client, prefix)) await client.unlink(key);
}

/** Closes clients, ignoring errors. */
export async function quitAll(...clients: (Redis | Cluster | undefined)[]): Promise<void> {
  await Promise.all(clients.map((c) => c?.quit().catch(() => c.disconnect())));
}

/** A JSON payload with the given text. */
export function payload(text: string): Payload {
  return { metadata: { encoding: encoder.encode('json/plain') }, data: encoder.encode(JSON.stringify(text)) };
}

/** A workflow target. */
export function workflowTarget(id: string, overrides: Partial<StorageDriverTargetInfo> = {}): StorageDriverTargetInfo {
  return { kind: 'workflow', namespace: 'default', type: 'MyWorkflow', id, runId: 'run-1', ...overrides };
}

/** Runs `fn` and returns the StorageDriverError code it rejects with (fails if it resolves). */
export async function errorCode(fn: () => Promise<unknown>): Promise<StorageDriverErrorCode> {
  return (await captureStorageDriverError(fn)).code;
}

/** Every item of an async iterable (a `list()` of a few test objects). */
export async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

/** Decodes a payload's data as UTF-8. */
export function text(p: Payload | undefined): string {
  return new TextDecoder().decode(p?.data ?? new Uint8Array());
}
