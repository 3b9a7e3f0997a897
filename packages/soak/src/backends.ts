/**
 * One isolated backend per soak run and driver, on the shared loopback servers of
 * `scripts/services.sh` (from `@x/test-backends`): a temp directory, a Redis key prefix
 * (standalone and cluster), a PostgreSQL schema, an S3 bucket. Each knows how to count its objects
 * at the server and how to delete everything it created.
 *
 * @module
 */
import type { StorageDriver } from '@x/storage-driver-core';
import { BACKEND_KINDS, type BackendKind, createBackend, isBackendKind, type TestServices } from '@x/test-backends';

/** The drivers the soak covers, in the order it runs them. */
export const SOAK_DRIVERS: readonly SoakDriverName[] = BACKEND_KINDS;

/** A driver the soak covers. */
export type SoakDriverName = BackendKind;

/** Whether `name` is a {@link SoakDriverName}. */
export const isSoakDriverName: (name: string) => name is SoakDriverName = isBackendKind;

/** Addresses of the shared loopback servers (`bash scripts/services.sh env`). */
export type SoakServices = TestServices;

export { servicesFromEnv } from '@x/test-backends';

/** An isolated backend with the driver every soak caller shares. */
export interface SoakBackend {
  /** The driver instance all callers share (as the SDK shares one per worker). */
  readonly driver: StorageDriver;
  /** Where the data lives, for the report (never a credential). */
  readonly location: string;
  /** Number of payload objects stored, counted at the server (or on disk). */
  countObjects(): Promise<number>;
  /**
   * Deletes everything this backend created and closes its clients; resolves to whether the
   * server confirms nothing is left (directory, keys, schema or bucket gone).
   */
  cleanup(): Promise<boolean>;
  /**
   * Payload bytes the backend itself keeps in this process (an in-memory store), subtracted from
   * the ArrayBuffer growth the flat-memory check bounds. Omit for out-of-process backends.
   */
  inProcessBytes?(): number;
}

/** TTL given to drivers that take one: a safety net if a run dies before its cleanup. */
const SAFETY_TTL_MS = 3_600_000;

/** Creates an isolated backend (temp dir, key prefix, schema or bucket) for `name`. */
export async function openBackend(name: SoakDriverName, services?: SoakServices): Promise<SoakBackend> {
  const backend = await createBackend(name, { ttl: SAFETY_TTL_MS, poolSize: 8, ...(services ? { services } : {}) });
  return {
    driver: backend.driver,
    location: backend.location,
    countObjects: () => backend.countObjects(),
    cleanup: () => backend.close(),
  };
}
