/**
 * Small shared helpers (server addresses come from `@x/test-servers`' `SERVICES`).
 *
 * @module
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { Payload } from '@x/storage-driver-core';

const BINARY = new TextEncoder().encode('binary/plain');

/** A payload of `size` random bytes (incompressible, distinct with overwhelming probability). */
export function randomPayload(size: number): Payload {
  return { metadata: { encoding: BINARY }, data: randomBytes(size) };
}

/** The data bytes of a payload (every benchmark payload has data). */
export function payloadData(payload: Payload): Uint8Array {
  return payload.data ?? new Uint8Array(0);
}

/** Median of a list (0 when empty). */
export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

/** Nearest-rank percentile `p` (0–100) of a list (0 when empty). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] as number;
}

/**
 * Writes every filesystem's dirty pages out (`sync`); the CLI runs it before every measured
 * process and `fs-protocols.ts` before every batch, so that none pays for the previous one's
 * writes: on ext4 an `fsync` commits the journal with every pending change in it, the previous
 * process's thousands of files and their deletion included. Without it,
 * `small` on fs measured 510 ms per batch right after `fs-raw` against 244–261 ms after a `sync`
 * (and `fs-raw` 207 against 178–184 ms after `fs`): whichever ran second paid for the first.
 */
export function flushFilesystems(): void {
  try {
    execFileSync('sync', { stdio: 'ignore' });
  } catch {
    // No `sync` binary (not Linux or macOS): runs are only less comparable.
  }
}
