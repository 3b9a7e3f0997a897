/**
 * The claim shapes of Temporal's official GCS drivers, which differ in the field naming the object
 * (Go `key`, Python `object_name`, TypeScript `object` with camelCase hash fields): which fields a
 * claim of this driver carries, and how a claim of any of them is read.
 *
 * @module
 */
import {
  CLAIM_HASH_ALGORITHM,
  CLAIM_HASH_ALGORITHM_CAMEL,
  CLAIM_HASH_VALUE,
  CLAIM_HASH_VALUE_CAMEL,
  StorageDriverClaim,
  StorageDriverError,
  StorageDriverErrorCode,
} from '@x/storage-driver-core';
import type { GcsStorageLocation } from './names';

/**
 * Which official GCS driver's claim shape the driver writes.
 *
 * - `all` (default): every official driver's fields at once — `{ bucket, key, object_name, object,
 *   hash_algorithm, hash_value, hashAlgorithm, hashValue }` — so a payload this driver stores is
 *   retrievable by the Go, Python and TypeScript GCS drivers alike (each ignores the fields it does
 *   not know). Costs history bytes: the object name twice more and the hash once more (see the
 *   README's Claims section for the measured size).
 * - `go`: `{ bucket, key, hash_algorithm, hash_value }` (Go `gcsdriver`; also this project's S3
 *   claim shape).
 * - `python`: `{ bucket, object_name, hash_algorithm, hash_value }` (Python
 *   `temporalio.contrib.gcp.gcsdriver`).
 * - `typescript`: `{ bucket, object, hashAlgorithm, hashValue }` (`@temporalio/external-storage-gcs`).
 *
 * Whatever is written, claims of every shape are read.
 */
export type GcsClaimFormat = 'all' | 'go' | 'python' | 'typescript';

/** The claim formats, for validation. */
export const GCS_CLAIM_FORMATS: readonly GcsClaimFormat[] = ['all', 'go', 'python', 'typescript'];

/** Claim fields naming the object, in the order they are reported: Go, Python, TypeScript. */
export const OBJECT_NAME_FIELDS = ['key', 'object_name', 'object'] as const;

/** The fields (besides the hash) that point a claim of `format` at `location`. */
export function claimLocationFields(location: GcsStorageLocation, format: GcsClaimFormat): Record<string, string> {
  const { bucket, key } = location;
  switch (format) {
    case 'go':
      return { bucket, key };
    case 'python':
      return { bucket, object_name: key };
    case 'typescript':
      return { bucket, object: key };
    default:
      return { bucket, key, object_name: key, object: key };
  }
}

/**
 * Rewrites the hash fields of claims the base class built (snake_case) for `format`: both spellings
 * for `all`, camelCase only for `typescript`; other formats are returned as they are.
 */
export function withHashSpelling(claims: StorageDriverClaim[], format: GcsClaimFormat): StorageDriverClaim[] {
  if (format !== 'all' && format !== 'typescript') return claims;
  return claims.map((claim) => {
    const { [CLAIM_HASH_ALGORITHM]: algorithm, [CLAIM_HASH_VALUE]: value, ...rest } = claim.claimData;
    const camel = { [CLAIM_HASH_ALGORITHM_CAMEL]: algorithm as string, [CLAIM_HASH_VALUE_CAMEL]: value as string };
    return new StorageDriverClaim(
      format === 'all'
        ? { ...rest, [CLAIM_HASH_ALGORITHM]: algorithm as string, [CLAIM_HASH_VALUE]: value as string, ...camel }
        : { ...rest, ...camel },
    );
  });
}

/**
 * The object name of a claim: its `key`, `object_name` or `object` field — whichever are present,
 * and all of them equal when several are.
 *
 * @throws StorageDriverError `E_INVALID_CLAIM` if none is present, one is empty, or they disagree.
 */
export function readClaimObjectName(claimData: Record<string, string>, index?: number): string {
  let name: string | undefined;
  for (const field of OBJECT_NAME_FIELDS) {
    if (!Object.hasOwn(claimData, field)) continue;
    const value = claimData[field];
    if (typeof value !== 'string' || value.length === 0) {
      throw new StorageDriverError(StorageDriverErrorCode.INVALID_CLAIM, `Claim field ${field} is empty`, { index });
    }
    if (name !== undefined && value !== name) {
      throw new StorageDriverError(
        StorageDriverErrorCode.INVALID_CLAIM,
        `Claim fields ${OBJECT_NAME_FIELDS.join(', ')} name different objects`,
        { index },
      );
    }
    name = value;
  }
  if (name === undefined) {
    throw new StorageDriverError(
      StorageDriverErrorCode.INVALID_CLAIM,
      'Claim is missing the object name ("key", "object_name" or "object")',
      { index },
    );
  }
  return name;
}
