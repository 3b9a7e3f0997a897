/**
 * `@x/storage-driver-postgres`: a PostgreSQL storage driver for Temporal External Storage
 * (claim-check pattern): one SQL statement per batch, integrity checks, and the lifecycle contract
 * (a `last_referenced` column every store refreshes, keyset-paginated listing, batched
 * concurrent-safe deletes and expiry sweeps).
 *
 * @packageDocumentation
 */
export { PostgresStorageDriver } from './driver';
export { scrubSecrets, wrapPostgresError } from './errors';
export { POSTGRES_LIFECYCLE_BATCH_SIZE } from './lifecycle';
export {
  POSTGRES_DEFAULT_SCHEMA,
  POSTGRES_DEFAULT_TABLE,
  POSTGRES_DRIVER_DEFAULT_NAME,
  POSTGRES_DRIVER_TYPE,
  POSTGRES_MAX_PAYLOAD_SIZE_LIMIT,
  POSTGRES_MAX_SCHEMA_LENGTH,
  POSTGRES_MAX_TABLE_LENGTH,
  POSTGRES_MAX_TTL,
  type PostgresConnectionStringOptions,
  type PostgresEnsureSchemaOptions,
  type PostgresOwnedPoolConfig,
  type PostgresStorageDriverOptions,
  type PostgresTableName,
  type ResolvedPostgresTable,
  resolvePostgresTable,
} from './options';
export type {
  OwnedPostgresPool,
  PostgresPool,
  PostgresPoolClient,
  PostgresQueryConfig,
  PostgresQueryResult,
} from './pool';
export {
  schemaCleanupSql,
  schemaCleanupStatements,
  schemaSql,
  schemaStatements,
  schemaUpgradeSql,
  schemaUpgradeStatements,
} from './schema';
export { POSTGRES_MAX_STATEMENT_BYTES, POSTGRES_PROBE_MIN_BYTES, POSTGRES_SCHEMA_LOCK_ID } from './statements';
