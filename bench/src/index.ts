/**
 * `@x/bench` (private): benchmarks of every driver against its raw-client baseline and the
 * official S3 driver, on loopback, through a latency-injecting S3 proxy, and end to end on a
 * Temporal dev server. Run it with `pnpm bench`; this module exports the building blocks.
 *
 * @packageDocumentation
 */
export { type E2eReport, type E2eRun, type E2eSummary, runE2eGroup } from './e2e';
export { E2E_IMPLS, type E2eImpl } from './e2e-stores';
export {
  BACKENDS,
  type Backend,
  createImpl,
  IMPL_IDS,
  type Impl,
  type ImplKind,
  type Profile,
  S3_LATENCY_VARIANTS,
} from './impls';
export {
  fetchProxyStats,
  LATENCY_PROXY_CONTROL_PATH,
  LatencyProxy,
  type LatencyProxyOptions,
  type RequestStats,
} from './latency-proxy';
export {
  checkTargets,
  formatMarkdown,
  formatTable,
  renderSvg,
  type Summary,
  summarize,
  type TargetCheck,
} from './report';
export { countRoundTrips, type RoundTripCount } from './roundtrips';
export {
  countS3Requests,
  runS3LatencyGroup,
  S3_LATENCY_IMPLS,
  S3_LATENCY_WORKLOADS,
  type S3LatencyReport,
  type S3RequestCount,
} from './s3-latency';
export {
  type RunResult,
  runWorkload,
  WORKLOADS,
  type WorkloadName,
  type WorkloadSpec,
  workloadSpec,
} from './workloads';
