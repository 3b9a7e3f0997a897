/**
 * `@x/bench` (private): benchmarks of every driver against its raw-client baseline and the
 * official S3 driver. Run it with `pnpm bench`; this module exports the building blocks.
 *
 * @packageDocumentation
 */
export { BACKENDS, type Backend, createImpl, IMPL_IDS, type Impl, type ImplKind } from './impls';
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
  type RunResult,
  runWorkload,
  WORKLOADS,
  type WorkloadName,
  type WorkloadSpec,
  workloadSpec,
} from './workloads';
