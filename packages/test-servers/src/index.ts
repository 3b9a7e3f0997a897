/**
 * `@x/test-servers` (private, never published): where the test servers are and how to start more.
 * The addresses of the shared loopback servers of `scripts/services.sh` ({@link SERVICES}), the
 * one free-port allocator, and private server instances for tests that kill, pause, restart or
 * measure a server — a redis-server, a PostgreSQL, a Temporal dev server (with the file's workflows
 * bundled and a worker connection: {@link startTemporalWorkerEnv}) — each in a temp dir on a free
 * loopback port as a child of the test process; a fault-injecting HTTP proxy; and {@link uniqueName},
 * the names of isolated stores (key prefixes, schemas, buckets) no other test or run uses.
 *
 * @packageDocumentation
 */

export { SERVICES, servicesFromEnv, type TestServices } from './addresses';
export { FaultProxy, type InjectedResponse, type ProxiedRequest, type ProxyFault } from './fault-proxy';
export { freePort, freeRedisPort } from './ports';
export { type PrivatePostgres, startPostgres } from './postgres';
export { type PrivateRedis, startRedis } from './redis';
export {
  type DevServer,
  type DevServerCloseOptions,
  type DevServerOptions,
  startTemporalDevServer,
  TEMPORAL_BIN,
} from './temporal';
export { startTemporalWorkerEnv, type TemporalWorkerEnv, type TemporalWorkerEnvOptions } from './temporal-workers';
export { type UniqueNameOptions, uniqueName, uniqueSuffix } from './unique-name';
