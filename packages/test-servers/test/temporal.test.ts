/** The Temporal dev server starter: concurrent servers on their own ports, namespace creation, clean stop, kept logs. */
import { existsSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, expect, it } from '@jest/globals';
import { Connection } from '@temporalio/client';
import { type DevServer, startTemporalDevServer } from '../src';

const servers: DevServer[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

it('starts two servers at once on their own ports, creates the namespace, stops them', async () => {
  const [a, b] = await Promise.all([startTemporalDevServer(), startTemporalDevServer({ namespace: 'e2e-private' })]);
  servers.push(a, b);
  expect(a.address).not.toBe(b.address);
  expect([a.namespace, b.namespace, a.uiUrl]).toEqual(['default', 'e2e-private', undefined]);
  const described = await b.connection.workflowService.describeNamespace({ namespace: 'e2e-private' });
  expect(described.namespaceInfo?.name).toBe('e2e-private');
  expect(existsSync(a.logFile)).toBe(true);

  await a.close();
  expect(existsSync(path.dirname(a.logFile))).toBe(false); // removed after a clean run
  await b.stop({ keepLogs: true });
  expect(existsSync(b.logFile)).toBe(true); // kept when asked (a failed test)
  rmSync(path.dirname(b.logFile), { recursive: true, force: true });
  // Nothing answers on the old address any more.
  await expect(Connection.connect({ address: b.address, connectTimeout: 1_000 })).rejects.toThrow();
});
