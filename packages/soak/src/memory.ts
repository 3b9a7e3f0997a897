/**
 * Memory checkpoints: RSS and V8 heap used, the heap measured right after a forced full GC when
 * one is available (node --expose-gc, or V8's flag set at runtime as a fallback).
 *
 * @module
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** One memory reading. */
export interface MemorySample {
  /** What the reading marks: `start`, `warm` (end of warm-up), `checkpoint N`, `end`. */
  readonly label: string;
  /** Milliseconds since the driver's soak started. */
  readonly elapsedMs: number;
  /** Operations completed so far. */
  readonly ops: number;
  /** Resident set size, bytes. */
  readonly rss: number;
  /** V8 heap used, bytes (after a forced GC when {@link MemorySample.gcForced}). */
  readonly heapUsed: number;
  /** Memory of ArrayBuffers (payload bytes live here, outside the V8 heap), bytes. */
  readonly arrayBuffers: number;
  /** Whether a full GC ran right before the reading. */
  readonly gcForced: boolean;
}

let cachedGc: (() => void) | null | undefined;

/**
 * The full-GC function: `globalThis.gc` when node runs with `--expose-gc`, otherwise one obtained
 * by setting V8's `--expose-gc` flag at runtime (works in Node 20, including inside jest's VM
 * contexts), or `null` when neither is possible.
 */
export function getGc(): (() => void) | null {
  if (cachedGc !== undefined) return cachedGc;
  const exposed = (globalThis as { gc?: unknown }).gc;
  if (typeof exposed === 'function') {
    cachedGc = exposed as () => void;
    return cachedGc;
  }
  try {
    setFlagsFromString('--expose-gc');
    const gc: unknown = runInNewContext('gc');
    cachedGc = typeof gc === 'function' ? (gc as () => void) : null;
  } catch {
    cachedGc = null;
  }
  return cachedGc;
}

/** Takes a reading, forcing a full GC first when possible. */
export function sampleMemory(label: string, elapsedMs: number, ops: number): MemorySample {
  const gc = getGc();
  if (gc) gc();
  const m = process.memoryUsage();
  return {
    label,
    elapsedMs,
    ops,
    rss: m.rss,
    heapUsed: m.heapUsed,
    arrayBuffers: m.arrayBuffers,
    gcForced: gc !== null,
  };
}

/** Bytes → MiB. */
export function mib(bytes: number): number {
  return bytes / (1024 * 1024);
}
