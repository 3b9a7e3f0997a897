/**
 * One isolated backend per soak run and driver, on the shared loopback servers of
 * `scripts/services.sh` (from `@x/test-backends`): a temp directory, a Redis key prefix
 * (standalone and cluster), a PostgreSQL schema, an S3 bucket. Each knows how to count its objects
 * at the server and how to delete everything it created.
 *
 * @module
 */
import {
  BACKEND_KINDS,
  type BackendKind,
  createBackend,
  isBackendKind,
  type TestBackend,
  type TestServices,
} from '@x/test-backends';

/** The drivers the soak covers, in the order it runs them. */
export const SOAK_DRIVERS: readonly SoakDriverName[] = BACKEND_KINDS;

/** A driver the soak covers. */
export type SoakDriverName = BackendKind;

/** Whether `name` is a {@link SoakDriverName}. */
export const isSoakDriverName: (name: string) => name is SoakDriverName = isBackendKind;

/** Addresses of the shared loopback servers (`bash scripts/services.sh env`). */
export type SoakServices = TestServices;

export { servicesFromEnv } from '@x/test-backends';

/**
 * An isolated backend with the driver every soak caller shares (as the SDK shares one per
 * worker): a `@x/test-backends` store — `close()` deletes everything and resolves to whether the
 * server confirms nothing is left — or, in the soak's own tests, any object of this shape.
 */
export type SoakBackend = Pick<TestBackend, 'driver' | 'location' | 'countObjects' | 'close'> & {
  /**
   * Payload bytes the backend itself keeps in this process (an in-memory store), subtracted from
   * the ArrayBuffer growth the flat-memory check bounds. Omit for out-of-process backends.
   */
  inProcessBytes?(): number;
};

/**
 * Creates an isolated backend (temp dir, key prefix, schema or bucket) for `name`, with
 * `@x/test-backends`' 1-hour driver TTL as a safety net if a run dies before its cleanup.
 */
export function openBackend(name: SoakDriverName, services?: SoakServices): Promise<SoakBackend> {
  return createBackend(name, services ? { services } : {});
}
