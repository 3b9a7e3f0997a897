/**
 * `@x/storage-driver-postgres`: a PostgreSQL storage driver for Temporal External Storage
 * (claim-check pattern): one SQL statement per batch, integrity checks, TTL with batched,
 * concurrent-safe expiry sweeps.
 *
 * @packageDocumentation
 */
export {
  POSTGRES_DEFAULT_DELETE_BATCH_SIZE,
  POSTGRES_DRIVER_DEFAULT_NAME,
  POSTGRES_DRIVER_TYPE,
  POSTGRES_MAX_DELETE_BATCH_SIZE,
  POSTGRES_MAX_PAYLOAD_SIZE_LIMIT,
  POSTGRES_MAX_STATEMENT_BYTES,
  POSTGRES_MAX_TTL,
  POSTGRES_SCHEMA_LOCK_ID,
  type PostgresConnectionStringOptions,
  type PostgresDeleteExpiredOptions,
  type PostgresDeleteExpiredResult,
  type PostgresEnsureSchemaOptions,
  PostgresStorageDriver,
  type PostgresStorageDriverOptions,
} from './driver';
export { scrubSecrets, wrapPostgresError } from './errors';
export type {
  OwnedPostgresPool,
  PostgresOwnedPoolConfig,
  PostgresPool,
  PostgresPoolClient,
  PostgresQueryConfig,
  PostgresQueryResult,
} from './pool';
export {
  POSTGRES_DEFAULT_SCHEMA,
  POSTGRES_DEFAULT_TABLE,
  POSTGRES_MAX_SCHEMA_LENGTH,
  POSTGRES_MAX_TABLE_LENGTH,
  type PostgresTableName,
  type ResolvedPostgresTable,
  resolvePostgresTable,
  schemaSql,
  schemaStatements,
} from './schema';
