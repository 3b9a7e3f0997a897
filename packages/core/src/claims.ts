/**
 * Reading and validating claims, which are untrusted input from workflow history.
 *
 * @module
 */
import { StorageDriverError, StorageDriverErrorCode } from './errors';
import { HASH_ALGORITHM_SHA256, isSha256Hex } from './hash';

/** Claim field holding the hash algorithm (snake_case, as the Python/Go/Java SDKs write it). */
export const CLAIM_HASH_ALGORITHM = 'hash_algorithm';
/** Claim field holding the hex digest (snake_case, as the Python/Go/Java SDKs write it). */
export const CLAIM_HASH_VALUE = 'hash_value';
/** camelCase spellings written by the official TypeScript S3 driver; accepted on read. */
export const CLAIM_HASH_ALGORITHM_CAMEL = 'hashAlgorithm';
/** camelCase spelling of {@link CLAIM_HASH_VALUE}; accepted on read. */
export const CLAIM_HASH_VALUE_CAMEL = 'hashValue';

/** Upper bound on any single claim value; anything longer is rejected before use. */
export const MAX_CLAIM_VALUE_LENGTH = 1 << 20;

function invalid(message: string, index?: number): StorageDriverError {
  return new StorageDriverError(StorageDriverErrorCode.INVALID_CLAIM, message, { index });
}

/**
 * Returns `claim.claimData` after checking it is a flat map of strings.
 *
 * @throws TypeError if `claim` is not an object (API misuse).
 * @throws StorageDriverError `E_INVALID_CLAIM` if `claimData` is missing or not string→string.
 */
export function readClaimData(claim: unknown, index?: number): Record<string, string> {
  if (typeof claim !== 'object' || claim === null) throw new TypeError(`claims[${index ?? '?'}] must be an object`);
  const data = (claim as { claimData?: unknown }).claimData;
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw invalid('Claim has no claimData map', index);
  }
  for (const k of Object.keys(data)) {
    const v = (data as Record<string, unknown>)[k];
    if (typeof v !== 'string') throw invalid(`Claim field ${JSON.stringify(k)} is not a string`, index);
    if (v.length > MAX_CLAIM_VALUE_LENGTH) throw invalid(`Claim field ${JSON.stringify(k)} is too long`, index);
  }
  return data as Record<string, string>;
}

/**
 * Reads a required string field of a claim.
 *
 * @throws StorageDriverError `E_INVALID_CLAIM` if the field is missing or empty.
 */
export function requireClaimField(claimData: Record<string, string>, field: string, index?: number): string {
  const v = Object.hasOwn(claimData, field) ? claimData[field] : undefined;
  if (typeof v !== 'string' || v.length === 0) throw invalid(`Claim is missing ${JSON.stringify(field)}`, index);
  return v;
}

/**
 * Reads the claim's hash, accepting `hash_algorithm`/`hash_value` and the camelCase spellings.
 * Returns the expected SHA-256 hex digest.
 *
 * @throws StorageDriverError `E_INVALID_CLAIM` if the hash is missing, the algorithm is not
 *   `sha256`, the digest is malformed, or the two spellings disagree.
 */
export function readClaimHash(claimData: Record<string, string>, index?: number): string {
  const pick = (a: string, b: string): string | undefined => {
    const x = Object.hasOwn(claimData, a) ? claimData[a] : undefined;
    const y = Object.hasOwn(claimData, b) ? claimData[b] : undefined;
    if (x !== undefined && y !== undefined && x !== y) throw invalid(`Claim has conflicting ${a} and ${b}`, index);
    return x ?? y;
  };
  const algorithm = pick(CLAIM_HASH_ALGORITHM, CLAIM_HASH_ALGORITHM_CAMEL);
  const value = pick(CLAIM_HASH_VALUE, CLAIM_HASH_VALUE_CAMEL);
  if (algorithm === undefined) throw invalid('Claim has no hash_algorithm', index);
  if (algorithm !== HASH_ALGORITHM_SHA256) {
    throw invalid(`Claim has unsupported hash_algorithm ${JSON.stringify(algorithm.slice(0, 64))}`, index);
  }
  if (value === undefined) throw invalid('Claim has no hash_value', index);
  if (!isSha256Hex(value)) throw invalid('Claim hash_value is not 64 lower-case hex characters', index);
  return value;
}

/** Builds the hash fields every bundled driver writes into its claims. */
export function hashClaimFields(sha256: string): { hash_algorithm: string; hash_value: string } {
  return { hash_algorithm: HASH_ALGORITHM_SHA256, hash_value: sha256 };
}
