/**
 * The workloads, and the loop that runs one of them against one implementation.
 *
 * @module
 */
import type { Payload } from '@x/storage-driver-core';
import { randomPayload } from './env';
import type { Impl } from './impls';
import type { RequestStats } from './latency-proxy';

/** Workload names, in display order. */
export const WORKLOADS = ['distinct', 'dupes', 'small', 'big', 'parallel'] as const;
/** One workload. */
export type WorkloadName = (typeof WORKLOADS)[number];

const KiB = 1024;
const MiB = 1024 * KiB;

/** Shape of a workload. */
export interface WorkloadSpec {
  readonly name: WorkloadName;
  /** What it is, for the table and README. */
  readonly description: string;
  /** Payloads per batch. */
  readonly batchSize: number;
  /** Data bytes per payload. */
  readonly payloadSize: number;
  /** Measured batches per caller (after one unmeasured warm-up batch). */
  readonly batches: number;
  /** Concurrent callers (each runs `batches` batches). */
  readonly callers: number;
  /** Unmeasured batches run first (connections, the JIT); see {@link SMALL_WARMUP_BATCHES}. */
  readonly warmups: number;
}

/** Workload shapes: description, batch size, payload size, measured batches (full run), callers. */
const SHAPES: Record<WorkloadName, [string, number, number, number, number]> = {
  distinct: ['batches of 64 distinct 256 KiB payloads, store then retrieve', 64, 256 * KiB, 10, 1],
  dupes: ['batches of 64 × 256 KiB, half of them repeats of payloads stored by earlier batches', 64, 256 * KiB, 10, 1],
  small: ['batches of 1,000 × 1 KiB (a threshold-0 deployment)', 1000, KiB, 20, 1],
  big: ['one 50 MiB payload', 1, 50 * MiB, 3, 1],
  parallel: ['16 concurrent callers, each storing (then retrieving) batches of 8 × 256 KiB', 8, 256 * KiB, 4, 16],
};

/**
 * `small` batches measured on S3: a batch of 1,000 requests to moto takes seconds (the JIT is warm
 * after the first), and 20 of them would add minutes per implementation.
 */
const S3_SMALL_BATCHES = 5;

/**
 * Unmeasured warm-up batches of `small` (other workloads, and `small` on S3, warm up with one):
 * V8 optimises the per-payload code of core, the drivers and the clients over the first few
 * 1,000-payload batches, which moved the mean of 20 measured batches by up to 2× between runs of
 * the same code (core alone 6–14 ms per batch); a worker runs for days.
 */
export const SMALL_WARMUP_BATCHES = 5;

/**
 * The workloads of the issue. `quick` is a smoke test that keeps the benchmark from rotting: one
 * measured batch each, `small` batches of 100 and an 8 MiB `big` payload (its numbers mean nothing).
 * `backend`: the implementation's backend (`s3` measures fewer `small` batches).
 */
export function workloadSpec(name: WorkloadName, quick: boolean, backend?: string): WorkloadSpec {
  const [description, batchSize, payloadSize, shapeBatches, callers] = SHAPES[name];
  const batches = name === 'small' && backend === 's3' ? S3_SMALL_BATCHES : shapeBatches;
  const warmups = name === 'small' && backend !== 's3' ? SMALL_WARMUP_BATCHES : 1;
  if (!quick) return { name, description, batchSize, payloadSize, batches, callers, warmups };
  return {
    name,
    description: `${description} [quick: smoke test]`,
    batchSize: name === 'small' ? 100 : batchSize,
    payloadSize: name === 'big' ? 8 * MiB : payloadSize,
    batches: 1,
    callers,
    warmups: 1,
  };
}

/** Timing of one batch. */
export interface BatchTiming {
  /** Milliseconds the store call took. */
  readonly storeMs: number;
  /** Milliseconds the retrieve call took. */
  readonly retrieveMs: number;
}

/** What one (implementation, workload) run measured. */
export interface RunResult {
  readonly impl: string;
  readonly workload: WorkloadName;
  /** Data bytes per batch. */
  readonly bytesPerBatch: number;
  readonly payloadsPerBatch: number;
  /** Every measured batch (all callers). */
  readonly batches: BatchTiming[];
  /** Wall time of the measured part, all callers together (ms). */
  readonly wallMs: number;
  /** Resident set size after setup and warm-up, before the measured part (bytes). */
  readonly idleRss: number;
  /** Peak resident set size of the process (`process.resourceUsage().maxRSS`, bytes). */
  readonly peakRss: number;
  /** Requests the latency proxy forwarded during the measured part (S3 latency profile only). */
  readonly requests?: RequestStats;
  /** CPU time (user + system) of this process during the measured part, milliseconds. */
  readonly cpuMs?: number;
}

/** Counts requests around the measured part of a run (the S3 latency profile's proxy). */
export interface RunProbe {
  /** Called after the warm-up, right before the measured part. */
  begin(): Promise<void>;
  /** Called right after the measured part: what was counted since {@link RunProbe.begin}. */
  end(): Promise<RequestStats>;
}

function now(): number {
  return performance.now();
}

function collect(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

/** Runs `spec` against `impl` (already set up); verifies every batch reads back all its bytes. */
export async function runWorkload(impl: Impl, spec: WorkloadSpec, probe?: RunProbe): Promise<RunResult> {
  const bytesPerBatch = spec.batchSize * spec.payloadSize;
  const fresh = (n: number, size = spec.payloadSize) => Array.from({ length: n }, () => randomPayload(size));
  const history: Payload[] = [];

  const makeBatch = (): Payload[] => {
    if (spec.name !== 'dupes' || history.length === 0) {
      const batch = fresh(spec.batchSize);
      if (spec.name === 'dupes') history.push(...batch);
      return batch;
    }
    // Half new, half repeats of payloads stored by earlier batches, interleaved.
    const half = spec.batchSize / 2;
    const news = fresh(half);
    const repeats = Array.from({ length: half }, () => history[Math.floor(Math.random() * history.length)] as Payload);
    history.push(...news);
    return news.flatMap((p, i) => [p, repeats[i] as Payload]);
  };

  const oneBatch = async (batch: Payload[]): Promise<BatchTiming> => {
    const t0 = now();
    const refs = await impl.store(batch);
    const t1 = now();
    const read = await impl.retrieve(refs);
    const t2 = now();
    const expected = batch.reduce((n, p) => n + (p.data?.byteLength ?? 0), 0);
    if (refs.length !== batch.length || read !== expected) {
      throw new Error(`${impl.id} ${spec.name}: read back ${read} bytes of ${expected}`);
    }
    return { storeMs: t1 - t0, retrieveMs: t2 - t1 };
  };

  // Warm-up (connections, code paths, the first dupes history): unmeasured. `big` warms up with a
  // small payload so the idle RSS does not include a 50 MiB batch.
  if (spec.name === 'big') await oneBatch(fresh(1, 64 * KiB));
  else for (let i = 0; i < spec.warmups; i++) await oneBatch(makeBatch());
  collect();
  const idleRss = process.memoryUsage().rss;

  const batches: BatchTiming[] = [];
  let wallMs = 0;
  // Single-caller batches are generated inside the loop (outside the timed part), so a probe
  // started here counts only the measured requests.
  await probe?.begin();
  const cpu = process.cpuUsage();
  if (spec.callers === 1) {
    // One batch's lifetime is this function's: once it returns, nothing holds the batch, so the
    // collection after a `big` batch frees its 50 MiB before the next is generated (collected
    // inside the loop body, the batch was still referenced and the next peak counted it too).
    const measured = async (): Promise<BatchTiming> => {
      const batch = makeBatch(); // generated outside the timed part
      const t0 = now();
      const timing = await oneBatch(batch);
      wallMs += now() - t0;
      return timing;
    };
    for (let i = 0; i < spec.batches; i++) {
      batches.push(await measured());
      if (spec.name === 'big') collect();
    }
  } else {
    const work = Array.from({ length: spec.callers }, () =>
      Array.from({ length: spec.batches }, () => fresh(spec.batchSize)),
    );
    const t0 = now();
    await Promise.all(
      work.map(async (mine) => {
        for (const batch of mine) batches.push(await oneBatch(batch));
      }),
    );
    wallMs = now() - t0;
  }
  const cpuUsed = process.cpuUsage(cpu);
  const requests = await probe?.end();
  return {
    impl: impl.id,
    workload: spec.name,
    bytesPerBatch,
    payloadsPerBatch: spec.batchSize,
    batches,
    wallMs,
    idleRss,
    peakRss: process.resourceUsage().maxRSS * 1024,
    ...(requests === undefined ? {} : { requests }),
    cpuMs: (cpuUsed.user + cpuUsed.system) / 1000,
  };
}
