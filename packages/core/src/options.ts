/**
 * Validation of options shared by every driver.
 *
 * @module
 */
import { StorageDriverError, StorageDriverErrorCode } from './errors';

/** Default `maxPayloadSize`: 50 MiB, Temporal's default history size limit per execution. */
export const DEFAULT_MAX_PAYLOAD_SIZE = 50 * 1024 * 1024;

function config(message: string): StorageDriverError {
  return new StorageDriverError(StorageDriverErrorCode.CONFIG, message);
}

/**
 * Validates a driver `name` (non-empty, at most 256 characters, no control characters).
 *
 * @throws StorageDriverError `E_CONFIG`
 */
export function validateDriverName(name: unknown): string {
  if (typeof name !== 'string' || name.length === 0 || name.length > 256) {
    throw config('Driver name must be a non-empty string of at most 256 characters');
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
  if (/[\u0000-\u001f\u007f]/.test(name)) throw config('Driver name must not contain control characters');
  return name;
}

/**
 * Validates `maxPayloadSize` (a positive safe integer); `undefined` gives the default.
 *
 * @throws StorageDriverError `E_CONFIG`
 */
export function validateMaxPayloadSize(value: unknown, defaultValue = DEFAULT_MAX_PAYLOAD_SIZE): number {
  if (value === undefined) return defaultValue;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw config(`maxPayloadSize must be a positive integer number of bytes, got ${String(value)}`);
  }
  return value;
}

/**
 * Validates a TTL in milliseconds (a positive safe integer); `undefined` means no expiry.
 *
 * @throws StorageDriverError `E_CONFIG`
 */
export function validateTtl(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw config(`ttl must be a positive integer number of milliseconds, got ${String(value)}`);
  }
  return value;
}

/**
 * Validates a concurrency limit (a positive integer); `undefined` gives the default.
 *
 * @throws StorageDriverError `E_CONFIG`
 */
export function validateConcurrency(value: unknown, defaultValue: number): number {
  if (value === undefined) return defaultValue;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 10_000) {
    throw config(`concurrency must be an integer between 1 and 10000, got ${String(value)}`);
  }
  return value;
}
