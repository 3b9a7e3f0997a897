/**
 * `@x/soak`: a bounded concurrency soak for every bundled driver against the real loopback
 * servers — many callers sharing one driver instance, a ledger of claim → content fingerprint,
 * a final read-back of every claim, server-side object counts and memory checkpoints.
 *
 * @packageDocumentation
 */
export { Ledger, type LedgerEntry, type LedgerRecordResult } from './ledger';
export { getGc, type MemorySample, mib, sampleMemory } from './memory';
export { DEFAULT_OUTPUT_DIR, formatTable, type SoakReport, writeReport } from './report';
export {
  DEFAULT_SOAK_OPTIONS,
  resolveSoakOptions,
  runSoak,
  runSoakOn,
  runSoaks,
  type SoakBackend,
  type SoakErrorRecord,
  type SoakMemoryReport,
  type SoakOptions,
  type SoakResult,
  type SoakRunHooks,
} from './runner';
export {
  buildPool,
  createRng,
  drawBatchSize,
  drawSize,
  MAX_BATCH,
  MAX_PAYLOAD_BYTES,
  payloadFingerprint,
  type Rng,
  SOAK_TARGETS,
} from './workload';
