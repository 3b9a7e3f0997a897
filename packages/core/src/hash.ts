/**
 * Content hashing.
 *
 * @module
 */
import * as crypto from 'node:crypto';

/** The only hash algorithm claims use today. */
export const HASH_ALGORITHM_SHA256 = 'sha256';

/** `crypto.hash` (Node ≥ 20.12, 21.7): one call, no `Hash` object — about half the cost on 1 KiB inputs. */
const oneShot = (crypto as { hash?: (algorithm: string, data: Uint8Array, encoding: 'hex') => string }).hash;

/** SHA-256 of `bytes` as 64 lower-case hex characters. */
export function sha256Hex(bytes: Uint8Array): string {
  if (typeof oneShot === 'function') return oneShot('sha256', bytes, 'hex');
  return crypto.createHash('sha256').update(bytes).digest('hex');
}

/** SHA-256, lower-case hex, of the concatenation of `parts` (without concatenating them). */
export function sha256HexOfParts(parts: readonly Uint8Array[]): string {
  if (parts.length === 1) return sha256Hex(parts[0] as Uint8Array);
  const hash = crypto.createHash('sha256');
  for (const part of parts) hash.update(part);
  return hash.digest('hex');
}

// Length checked first, then an unbounded class: about 2.5× faster than `/^[0-9a-f]{64}$/`.
const LOWER_HEX = /^[0-9a-f]+$/;

/** Whether `value` is a well-formed SHA-256 digest: exactly 64 lower-case hex characters. */
export function isSha256Hex(value: unknown): value is string {
  return typeof value === 'string' && value.length === 64 && LOWER_HEX.test(value);
}
