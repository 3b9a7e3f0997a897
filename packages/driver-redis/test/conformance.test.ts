/** The shared conformance suite against the real standalone redis-server of scripts/services.sh. */
import { afterAll, afterEach, beforeAll, beforeEach, describe, it } from '@jest/globals';
import { runStorageDriverConformance } from '@x/storage-driver-test-suite';
import type { Redis } from 'ioredis';
import { redisHarness } from './harness';
import { quitAll, standaloneClient } from './helpers';

let client: Redis;
beforeAll(() => {
  client = standaloneClient();
});
afterAll(() => quitAll(client));

runStorageDriverConformance(
  { describe, it, beforeEach, afterEach },
  redisHarness('conformance', () => client),
);
