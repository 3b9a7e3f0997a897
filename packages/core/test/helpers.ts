/**
 * Shared test helpers for core's tests (not a test file itself).
 */
import { createRequire } from 'node:module';
import type { temporal } from '@temporalio/proto';
import { isStorageDriverError, type StorageDriverError, type StorageDriverErrorCode } from '../src';

/** The `Long` class type of the `long` package, as `@temporalio/proto` sees it. */
export type SdkLong = temporal.api.common.v1.Payload.ExternalPayloadDetails['sizeBytes'];

/** The static side of `long`'s `Long` class that the tests use. */
export interface SdkLongStatic {
  fromBits(low: number, high: number, unsigned?: boolean): SdkLong;
  fromString(value: string, unsigned?: boolean, radix?: number): SdkLong;
  fromNumber(value: number, unsigned?: boolean): SdkLong;
  fromBigInt(value: bigint, unsigned?: boolean): SdkLong;
  fromValue(value: unknown, unsigned?: boolean): SdkLong;
  isLong(value: unknown): boolean;
  readonly MIN_VALUE: SdkLong;
  readonly MAX_VALUE: SdkLong;
  readonly MAX_UNSIGNED_VALUE: SdkLong;
}

/**
 * `long` is not a dependency of core (pnpm strict layout), only of `@temporalio/proto`, so it is
 * loaded through a require rooted at that package: the exact copy protobufjs uses.
 */
export const Long = createRequire(require.resolve('@temporalio/proto'))('long') as SdkLongStatic;

/** Runs `fn` and returns what it threw (fails the test if it did not throw). */
export function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected the function to throw');
}

/** Awaits `promise` and returns its rejection reason (fails the test if it resolved). */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  throw new Error('expected the promise to reject');
}

/** Asserts that `error` is a StorageDriverError with `code` and returns it, narrowed. */
export function expectCode(error: unknown, code: StorageDriverErrorCode): StorageDriverError {
  if (!isStorageDriverError(error)) {
    throw new Error(
      `expected a StorageDriverError ${code}, got ${error instanceof Error ? error.stack : String(error)}`,
    );
  }
  expect(error.code).toBe(code);
  return error;
}

/** Asserts that `fn` throws a StorageDriverError with `code`. */
export function expectThrowsCode(fn: () => unknown, code: StorageDriverErrorCode): StorageDriverError {
  return expectCode(thrown(fn), code);
}

/** Asserts that `promise` rejects with a StorageDriverError with `code`. */
export async function expectRejectsCode(
  promise: Promise<unknown>,
  code: StorageDriverErrorCode,
): Promise<StorageDriverError> {
  return expectCode(await rejection(promise), code);
}

/** A promise plus its resolve/reject functions. */
export interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(reason: unknown): void;
}

/** Creates a {@link Deferred}. */
export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Bytes of a UTF-8 string. */
export function utf8(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

/** Plain array copy of bytes, for readable `toEqual` diffs regardless of Buffer/Uint8Array class. */
export function bytesOf(b: Uint8Array | null | undefined): number[] {
  return b === null || b === undefined ? [] : Array.from(b);
}
