/** The shared conformance suite against the real 3-master Redis Cluster of scripts/services.sh. */
import { afterAll, afterEach, beforeAll, beforeEach, describe, it } from '@jest/globals';
import { runStorageDriverConformance } from '@x/storage-driver-test-suite';
import type { Cluster } from 'ioredis';
import { redisHarness } from './harness';
import { clusterClient, quitAll } from './helpers';

let client: Cluster;
beforeAll(() => {
  client = clusterClient();
});
afterAll(() => quitAll(client));

runStorageDriverConformance(
  { describe, it, beforeEach, afterEach },
  redisHarness('conformance-cluster', () => client),
);
