/**
 * The soak itself: for one driver, many concurrent callers share one driver instance and mix
 * `store` and `retrieve` of fresh and repeated payloads for a bounded time; every result is
 * checked against a ledger of claim → fingerprint, every claim ever returned is read back at the
 * end, objects are counted at the server, and memory is sampled at checkpoints.
 *
 * @module
 */
import { isStorageDriverError, mapBounded, type Payload, type StorageDriverClaim } from '@x/storage-driver-core';
import { assertPayloadEqual } from '@x/storage-driver-test-suite';
import { type BackendKind, createBackend, type TestBackend } from '@x/test-backends';
import type { TestServices } from '@x/test-servers';
import { Ledger, type LedgerEntry } from './ledger';
import { type MemorySample, mib, sampleMemory } from './memory';
import {
  buildPool,
  copyPayload,
  createRng,
  drawBatchSize,
  drawSize,
  freshPayload,
  MAX_BATCH,
  payloadBytes,
  payloadFingerprint,
  type Rng,
  randomInt,
  SOAK_TARGETS,
} from './workload';

/** Settings of a soak run (per driver). */
export interface SoakOptions {
  /** Length of the timed phase per driver, in milliseconds (callers stop starting new calls after it). */
  readonly durationMs: number;
  /** Concurrent callers sharing the driver instance. */
  readonly concurrency: number;
  /** Seed of every random decision (sizes, mixes, targets), so a run is reproducible. */
  readonly seed: number;
  /** Largest allowed growth of the post-GC heap from the end of warm-up to the end, in bytes. */
  readonly heapBoundBytes: number;
  /**
   * Largest allowed growth of ArrayBuffer memory (payload bytes, outside the heap) from the start
   * to the end, in bytes. Larger than the heap bound: clients keep reusable read buffers (ioredis's
   * reply parser held up to ~60 MiB after 1 MiB replies in 5 s runs).
   */
  readonly arrayBufferBoundBytes: number;
  /** Warm-up, in milliseconds; the heap baseline is read when it ends. */
  readonly warmupMs: number;
  /** Memory checkpoints between warm-up and the end of the timed phase. */
  readonly checkpoints: number;
  /**
   * Distinct payload bytes after which fresh payloads are capped at 1 KiB, so a run cannot fill
   * the shared servers (repeated payloads keep their sizes).
   */
  readonly maxUniqueBytes: number;
  /** Distinct claims after which callers store repeated payloads only (bounds the ledger's memory). */
  readonly maxClaims: number;
  /** Errors after which the run stops early (it has failed anyway). */
  readonly maxErrors: number;
  /** Share of `store` calls whose claims are read back at once and compared with the payloads in hand. */
  readonly readBackRatio: number;
}

/** Defaults of {@link SoakOptions}; the warm-up default depends on the duration (see {@link resolveSoakOptions}). */
export const DEFAULT_SOAK_OPTIONS: Omit<SoakOptions, 'warmupMs'> = {
  durationMs: 40_000,
  concurrency: 32,
  seed: 1,
  heapBoundBytes: 64 * 1024 * 1024,
  arrayBufferBoundBytes: 256 * 1024 * 1024,
  checkpoints: 4,
  maxUniqueBytes: 64 * 1024 * 1024,
  maxClaims: 20_000,
  maxErrors: 50,
  readBackRatio: 0.25,
};

/** Fills in defaults: warm-up is 15 % of the duration, between 1 s and 8 s. */
export function resolveSoakOptions(options: Partial<SoakOptions> = {}): SoakOptions {
  const merged = { ...DEFAULT_SOAK_OPTIONS, ...options };
  const warmupMs = options.warmupMs ?? Math.min(8_000, Math.max(1_000, Math.round(merged.durationMs * 0.15)));
  if (!(merged.durationMs > 0)) throw new RangeError('durationMs must be positive');
  if (!Number.isInteger(merged.concurrency) || merged.concurrency < 1) {
    throw new RangeError('concurrency must be a positive integer');
  }
  return { ...merged, warmupMs: Math.min(warmupMs, merged.durationMs) };
}

/** One unexpected error, as reported. */
export interface SoakErrorRecord {
  /** The call that failed: `store`, `retrieve`, `verify` (final read-back), `setup`, `count`, `cleanup`. */
  readonly op: string;
  /** `StorageDriverError` code, or the error's name for anything else. */
  readonly code: string;
  /** Whether the driver flagged it retryable (`undefined` for non-driver errors). */
  readonly retryable: boolean | undefined;
  /** The error message. */
  readonly message: string;
}

/** Memory verdict of a run. */
export interface SoakMemoryReport {
  /** Every reading: `start`, `warm`, checkpoints, `end`. */
  readonly samples: MemorySample[];
  /** Reading before the callers started. */
  readonly start: MemorySample;
  /** Reading at the end of warm-up: the baseline of the flatness check. */
  readonly warm: MemorySample;
  /** Reading after every caller finished (ledger still alive). */
  readonly end: MemorySample;
  /** `end.heapUsed - warm.heapUsed`, bytes. */
  readonly heapGrowth: number;
  /**
   * `end.arrayBuffers - start.arrayBuffers`, less the payload bytes the backend itself holds in
   * this process ({@link SoakBackend.inProcessBytes}), bytes: payload bytes retained by the
   * driver (they live outside the V8 heap, so `heapGrowth` cannot see them).
   */
  readonly arrayBuffersGrowth: number;
  /** The bound `heapGrowth` is checked against, bytes. */
  readonly heapBound: number;
  /** The bound `arrayBuffersGrowth` is checked against, bytes. */
  readonly arrayBufferBound: number;
  /** Whether `heapGrowth <= heapBound` and `arrayBuffersGrowth <= arrayBufferBound`. */
  readonly flat: boolean;
}

/** Outcome of one driver's soak. */
export interface SoakResult {
  /** The driver soaked (a `@x/test-backends` `BackendKind` for the bundled ones). */
  readonly driver: string;
  /** Where its data lived (no credentials). */
  readonly location: string;
  /** Concurrent callers. */
  readonly concurrency: number;
  /** Actual length of the timed phase, ms. */
  readonly durationMs: number;
  /** Time of the final read-back of every claim, ms. */
  readonly verifyMs: number;
  /** `store` calls. */
  readonly storeCalls: number;
  /** `retrieve` calls during the timed phase (random ledger reads and immediate read-backs). */
  readonly retrieveCalls: number;
  /** Payloads passed to `store`. */
  readonly payloadsStored: number;
  /** Payloads returned by `retrieve` during the timed phase. */
  readonly payloadsRetrieved: number;
  /** Data + metadata bytes passed to `store`. */
  readonly bytesStored: number;
  /** Data + metadata bytes returned by `retrieve` during the timed phase. */
  readonly bytesRetrieved: number;
  /** Stored payloads whose claim had been returned before (same batch, same or another caller). */
  readonly dedupHits: number;
  /** Payloads stored twice or more inside one batch. */
  readonly inBatchDuplicates: number;
  /** Distinct claims returned (ledger size). */
  readonly distinctClaims: number;
  /** Distinct payload bytes behind them. */
  readonly uniqueBytes: number;
  /** Objects counted at the server after the run (must equal `distinctClaims`). */
  readonly objects: number;
  /** Claims read back in the final pass. */
  readonly verified: number;
  /** Unexpected errors (every error is unexpected). */
  readonly errors: number;
  /** Errors by code. */
  readonly errorCodes: Record<string, number>;
  /** The first errors, verbatim. */
  readonly errorSamples: SoakErrorRecord[];
  /** Retrieved payloads that differ from what was stored, claims that changed meaning, wrong counts. */
  readonly integrityFailures: number;
  /** The first integrity failures, described. */
  readonly integritySamples: string[];
  /** Claims whose payload was gone in the final pass (`E_NOT_FOUND`). */
  readonly lost: number;
  /** Memory readings and the flatness verdict. */
  readonly memory: SoakMemoryReport;
  /**
   * Process warnings emitted during the run, by name (e.g. `MaxListenersExceededWarning`). Reported,
   * not a failure: they are noise in users' logs, not wrong results.
   */
  readonly warnings: Record<string, number>;
  /** The first warnings, verbatim. */
  readonly warningSamples: string[];
  /** Whether the cleanup was confirmed at the server (nothing left). */
  readonly cleanedUp: boolean;
  /** Why the run failed; empty when it passed. */
  readonly failures: string[];
  /** `failures.length === 0`. */
  readonly passed: boolean;
}

const SAMPLE_LIMIT = 10;
/** Claims per `retrieve` in the final read-back. */
const VERIFY_CHUNK = MAX_BATCH;
/** Fresh payload seeds start here (pool payloads use 0x10000 + index). */
const FRESH_SEED_BASE = 0x200000;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Mutable counters of one run. */
class Tally {
  storeCalls = 0;
  retrieveCalls = 0;
  payloadsStored = 0;
  payloadsRetrieved = 0;
  bytesStored = 0;
  bytesRetrieved = 0;
  dedupHits = 0;
  inBatchDuplicates = 0;
  verified = 0;
  lost = 0;
  errors = 0;
  readonly errorCodes: Record<string, number> = {};
  readonly errorSamples: SoakErrorRecord[] = [];
  integrityFailures = 0;
  readonly integritySamples: string[] = [];

  get ops(): number {
    return this.storeCalls + this.retrieveCalls;
  }

  error(op: string, e: unknown): void {
    this.errors++;
    const code = isStorageDriverError(e) ? e.code : e instanceof Error ? e.name : typeof e;
    this.errorCodes[code] = (this.errorCodes[code] ?? 0) + 1;
    if (isStorageDriverError(e) && e.code === 'E_INTEGRITY') this.integrity(`${op}: driver reported ${e.message}`);
    if (this.errorSamples.length < SAMPLE_LIMIT) {
      this.errorSamples.push({
        op,
        code,
        retryable: isStorageDriverError(e) ? e.retryable : undefined,
        message: e instanceof Error ? e.message : String(e),
      });
    }
  }

  integrity(what: string): void {
    this.integrityFailures++;
    if (this.integritySamples.length < SAMPLE_LIMIT) this.integritySamples.push(what);
  }
}

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

/** Progress lines (`onProgress`) and the services to use. */
export interface SoakRunHooks {
  /** Receives one line per checkpoint. */
  readonly onProgress?: (line: string) => void;
  /** Server addresses; default `@x/test-servers`' `SERVICES` (the `XSTORAGE_*` environment). */
  readonly services?: TestServices;
}

/**
 * Runs the soak against one bundled driver: setup (an isolated `@x/test-backends` store, with its
 * 1-hour driver TTL as a safety net if a run dies before its cleanup), timed phase, final
 * read-back, server count, cleanup.
 */
export function runSoak(
  driverName: BackendKind,
  options: Partial<SoakOptions> = {},
  hooks: SoakRunHooks = {},
): Promise<SoakResult> {
  const services = hooks.services;
  return runSoakOn(driverName, () => createBackend(driverName, services ? { services } : {}), options, hooks);
}

/**
 * Runs the soak against the backend `open` creates (any driver: a third-party one, or a faulty one
 * that proves the checks catch what they claim to). `label` names it in the report.
 */
export async function runSoakOn(
  label: string,
  open: () => Promise<SoakBackend>,
  options: Partial<SoakOptions> = {},
  hooks: SoakRunHooks = {},
): Promise<SoakResult> {
  const driverName = label;
  const opts = resolveSoakOptions(options);
  const progress = hooks.onProgress ?? (() => {});
  const tally = new Tally();
  const ledger = new Ledger();
  const pool = buildPool(opts.seed);
  const poolFingerprints = pool.map(payloadFingerprint);
  const shared = new AbortController(); // one long-lived signal shared by every call, never fired
  const t0 = Date.now();
  const elapsed = () => Date.now() - t0;
  const samples: MemorySample[] = [sampleMemory('start', 0, 0)];
  const warnings: Record<string, number> = {};
  const warningSamples: string[] = [];
  const onWarning = (w: Error) => {
    warnings[w.name] = (warnings[w.name] ?? 0) + 1;
    if (warningSamples.length < SAMPLE_LIMIT) warningSamples.push(`${w.name}: ${w.message.split('\n')[0]}`);
  };
  process.on('warning', onWarning);
  let location = '';
  let durationMs = 0;
  let verifyMs = 0;
  let objects = -1;
  let cleanedUp = false;
  let inProcessBytes = 0;

  let backend: SoakBackend | undefined;
  try {
    backend = await open();
  } catch (e) {
    tally.error('setup', e);
  }

  if (backend) {
    const { driver } = backend;
    location = backend.location;
    const deadline = Date.now() + opts.durationMs;
    const stopped = () => Date.now() >= deadline || tally.errors >= opts.maxErrors;
    let nextSeed = FRESH_SEED_BASE;

    const storeOnce = async (caller: number, rng: Rng) => {
      const n = drawBatchSize(rng);
      const payloads: Payload[] = [];
      const fingerprints: string[] = [];
      const sizes: number[] = [];
      for (let k = 0; k < n; k++) {
        const r = rng();
        if (k > 0 && r < 0.12) {
          const j = randomInt(rng, k);
          payloads.push(copyPayload(payloads[j] as Payload));
          fingerprints.push(fingerprints[j] as string);
          sizes.push(sizes[j] as number);
          tally.inBatchDuplicates++;
        } else if (r < 0.5 || ledger.size >= opts.maxClaims) {
          const j = randomInt(rng, pool.length);
          payloads.push(pool[j] as Payload);
          fingerprints.push(poolFingerprints[j] as string);
          sizes.push(payloadBytes(pool[j] as Payload));
        } else {
          const size = drawSize(rng, ledger.uniqueBytes >= opts.maxUniqueBytes ? 1024 : undefined);
          const p = freshPayload(size, nextSeed++, caller, rng);
          payloads.push(p);
          fingerprints.push(payloadFingerprint(p));
          sizes.push(payloadBytes(p));
        }
      }
      const target = SOAK_TARGETS[randomInt(rng, SOAK_TARGETS.length)];
      let claims: StorageDriverClaim[];
      try {
        claims = await driver.store({ abortSignal: shared.signal, target }, payloads);
      } finally {
        tally.storeCalls++;
      }
      tally.payloadsStored += n;
      for (const s of sizes) tally.bytesStored += s;
      if (!Array.isArray(claims) || claims.length !== n) {
        tally.integrity(`store of ${n} payloads returned ${Array.isArray(claims) ? claims.length : 'no'} claims`);
        return;
      }
      for (let k = 0; k < n; k++) {
        const claim = claims[k] as StorageDriverClaim;
        const outcome = ledger.record(claim, fingerprints[k] as string, sizes[k] as number);
        if (outcome === 'known') tally.dedupHits++;
        else if (outcome === 'conflict') {
          tally.integrity(`claim ${JSON.stringify(claim.claimData)} was returned for two different payloads`);
        }
        // Identical payloads under one target must get one content-addressed claim.
        for (let j = 0; j < k; j++) {
          const earlier = claims[j];
          if (fingerprints[j] === fingerprints[k] && earlier !== undefined && !Ledger.sameClaim(earlier, claim)) {
            tally.integrity(`identical payloads ${j} and ${k} of one batch got different claims`);
          }
        }
      }
      if (rng() < opts.readBackRatio) {
        let got: Payload[];
        try {
          got = await driver.retrieve({ abortSignal: shared.signal }, claims);
        } finally {
          tally.retrieveCalls++;
        }
        countRetrieved(got);
        if (got.length !== n) {
          tally.integrity(`read-back of ${n} claims returned ${got.length} payloads`);
          return;
        }
        for (let k = 0; k < n; k++) {
          try {
            assertPayloadEqual(got[k] as Payload, payloads[k] as Payload, `read-back ${k}`);
          } catch (e) {
            tally.integrity(`${(e as Error).message} (claim ${JSON.stringify(claims[k]?.claimData)})`);
          }
        }
      }
    };

    const countRetrieved = (got: Payload[]) => {
      tally.payloadsRetrieved += got.length;
      for (const p of got) tally.bytesRetrieved += payloadBytes(p);
    };

    const checkAgainstLedger = (entries: LedgerEntry[], got: Payload[], what: string) => {
      if (got.length !== entries.length) {
        tally.integrity(`${what} of ${entries.length} claims returned ${got.length} payloads`);
        return;
      }
      entries.forEach((entry, k) => {
        const actual = payloadFingerprint(got[k] as Payload);
        if (actual !== entry.fingerprint) {
          tally.integrity(
            `${what}: claim ${JSON.stringify(entry.claim.claimData)} returned content ${actual}, expected ${entry.fingerprint}`,
          );
        }
      });
    };

    const retrieveOnce = async (rng: Rng) => {
      const entries = ledger.sample(rng, drawBatchSize(rng));
      let got: Payload[];
      try {
        got = await driver.retrieve(
          { abortSignal: shared.signal },
          entries.map((e) => e.claim),
        );
      } finally {
        tally.retrieveCalls++;
      }
      countRetrieved(got);
      checkAgainstLedger(entries, got, 'retrieve');
    };

    const caller = async (index: number) => {
      const rng = createRng(opts.seed * 7919 + index + 1);
      while (!stopped()) {
        const store = ledger.size === 0 || rng() < 0.5;
        try {
          await (store ? storeOnce(index, rng) : retrieveOnce(rng));
        } catch (e) {
          tally.error(store ? 'store' : 'retrieve', e);
        }
      }
    };

    // Timed phase: callers run; the sampler reads memory at the end of warm-up and at checkpoints.
    const started = Date.now();
    const callers = Array.from({ length: opts.concurrency }, (_, i) => caller(i));
    const span = opts.durationMs - opts.warmupMs;
    const marks = [{ label: 'warm', at: opts.warmupMs }];
    for (let k = 1; k < opts.checkpoints; k++) {
      marks.push({ label: `checkpoint ${k}`, at: opts.warmupMs + Math.round((span * k) / opts.checkpoints) });
    }
    for (const mark of marks) {
      while (!stopped() && Date.now() - started < mark.at) await sleep(Math.min(250, mark.at - (Date.now() - started)));
      if (stopped()) break;
      const s = sampleMemory(mark.label, elapsed(), tally.ops);
      samples.push(s);
      progress(
        `${driverName}: ${mark.label} t=${(s.elapsedMs / 1000).toFixed(1)}s ops=${s.ops} claims=${ledger.size} ` +
          `errors=${tally.errors} rss=${mib(s.rss).toFixed(0)}MiB heap=${mib(s.heapUsed).toFixed(1)}MiB`,
      );
    }
    await Promise.all(callers);
    durationMs = Date.now() - started;
    samples.push(sampleMemory('end', elapsed(), tally.ops));
    inProcessBytes = backend.inProcessBytes?.() ?? 0;

    // Final pass: every claim ever returned must still return exactly what was stored.
    const verifyStart = Date.now();
    const starts: number[] = [];
    for (let i = 0; i < ledger.size; i += VERIFY_CHUNK) starts.push(i);
    await mapBounded(starts, Math.min(opts.concurrency, 8), async (start) => {
      const entries = ledger.slice(start, start + VERIFY_CHUNK);
      try {
        const got = await driver.retrieve(
          {},
          entries.map((e) => e.claim),
        );
        tally.verified += entries.length;
        checkAgainstLedger(entries, got, 'final read-back');
      } catch (e) {
        if (!isStorageDriverError(e) || e.code !== 'E_NOT_FOUND') {
          tally.error('verify', e);
          return;
        }
        // One by one, to count exactly which payloads are gone.
        for (const entry of entries) {
          try {
            const got = await driver.retrieve({}, [entry.claim]);
            tally.verified++;
            checkAgainstLedger([entry], got, 'final read-back');
          } catch (e) {
            if (isStorageDriverError(e) && e.code === 'E_NOT_FOUND') tally.lost++;
            else tally.error('verify', e);
          }
        }
      }
    });
    verifyMs = Date.now() - verifyStart;
    progress(
      `${driverName}: verified ${tally.verified} claims in ${(verifyMs / 1000).toFixed(1)}s, lost ${tally.lost}`,
    );

    try {
      objects = await backend.countObjects();
    } catch (e) {
      tally.error('count', e);
    }
    try {
      cleanedUp = await backend.close();
    } catch (e) {
      tally.error('cleanup', e);
    }
  } else {
    samples.push(sampleMemory('end', elapsed(), 0));
  }
  process.off('warning', onWarning);

  const start = samples[0] as MemorySample;
  const warm = samples.find((s) => s.label === 'warm') ?? start;
  const end = samples[samples.length - 1] as MemorySample;
  const heapGrowth = end.heapUsed - warm.heapUsed;
  const arrayBuffersGrowth = end.arrayBuffers - start.arrayBuffers - inProcessBytes;
  const memory: SoakMemoryReport = {
    samples,
    start,
    warm,
    end,
    heapGrowth,
    arrayBuffersGrowth,
    heapBound: opts.heapBoundBytes,
    arrayBufferBound: opts.arrayBufferBoundBytes,
    flat: heapGrowth <= opts.heapBoundBytes && arrayBuffersGrowth <= opts.arrayBufferBoundBytes,
  };

  const failures: string[] = [];
  if (tally.errors > 0) {
    const codes = Object.entries(tally.errorCodes).map(([c, n]) => `${c}×${n}`);
    failures.push(`${tally.errors} unexpected error(s): ${codes.join(', ')}`);
  }
  if (tally.integrityFailures > 0) failures.push(`${tally.integrityFailures} integrity failure(s)`);
  if (tally.lost > 0) failures.push(`${tally.lost} lost payload(s)`);
  if (backend && tally.verified + tally.lost !== ledger.size) {
    failures.push(`final read-back covered ${tally.verified + tally.lost} of ${ledger.size} claims`);
  }
  if (backend && objects !== ledger.size) {
    failures.push(`${objects} object(s) at the server for ${ledger.size} distinct claim(s)`);
  }
  if (backend && (tally.storeCalls === 0 || tally.retrieveCalls === 0))
    failures.push('no store or no retrieve completed');
  if (heapGrowth > opts.heapBoundBytes) {
    failures.push(
      `heap grew ${mib(heapGrowth).toFixed(1)} MiB after warm-up (bound ${mib(opts.heapBoundBytes).toFixed(0)} MiB)`,
    );
  }
  if (arrayBuffersGrowth > opts.arrayBufferBoundBytes) {
    failures.push(
      `ArrayBuffer memory grew ${mib(arrayBuffersGrowth).toFixed(1)} MiB since the start ` +
        `(bound ${mib(opts.arrayBufferBoundBytes).toFixed(0)} MiB)`,
    );
  }
  if (backend && !cleanedUp) failures.push('cleanup not confirmed at the server');

  return {
    driver: driverName,
    location,
    concurrency: opts.concurrency,
    durationMs,
    verifyMs,
    storeCalls: tally.storeCalls,
    retrieveCalls: tally.retrieveCalls,
    payloadsStored: tally.payloadsStored,
    payloadsRetrieved: tally.payloadsRetrieved,
    bytesStored: tally.bytesStored,
    bytesRetrieved: tally.bytesRetrieved,
    dedupHits: tally.dedupHits,
    inBatchDuplicates: tally.inBatchDuplicates,
    distinctClaims: ledger.size,
    uniqueBytes: ledger.uniqueBytes,
    objects,
    verified: tally.verified,
    errors: tally.errors,
    errorCodes: tally.errorCodes,
    errorSamples: tally.errorSamples,
    integrityFailures: tally.integrityFailures,
    integritySamples: tally.integritySamples,
    lost: tally.lost,
    memory,
    warnings,
    warningSamples,
    cleanedUp,
    failures,
    passed: failures.length === 0,
  };
}

/** Runs {@link runSoak} for each driver in turn (one at a time: they share the machine). */
export async function runSoaks(
  drivers: readonly BackendKind[],
  options: Partial<SoakOptions> = {},
  hooks: SoakRunHooks = {},
): Promise<SoakResult[]> {
  const results: SoakResult[] = [];
  for (const d of drivers) results.push(await runSoak(d, options, hooks));
  return results;
}
