/**
 * `@x/e2e` (private, never published): helpers of the end-to-end tests on a real Temporal dev
 * server — the dev server itself, an isolated store per driver kind, the workflows and
 * activities, a gzip codec, and history readers.
 *
 * @packageDocumentation
 */

export {
  BACKEND_KINDS,
  type BackendKind,
  type CreateBackendOptions,
  createBackend,
  freePort,
  SERVICES,
  type TestBackend,
} from '@x/test-backends';
export * as activities from './activities';
export { GZIP_ENCODING, GzipPayloadCodec } from './codec';
export {
  type DevServer,
  type DevServerCloseOptions,
  type DevServerOptions,
  startTemporalDevServer,
  TEMPORAL_BIN,
} from './dev-server';
export {
  type HistoryPayload,
  historyPayloads,
  isReference,
  metadataText,
  REFERENCE_MESSAGE_TYPE,
  type ReferenceInfo,
  referenceInfo,
  type WorkflowTaskFailure,
  workflowTaskFailures,
} from './history';
export { BIG_VALUE_SIZE, bigValue, PAYLOAD_SIZE_THRESHOLD } from './values';

/** Absolute path of the workflows module, for `bundleWorkflowCode({ workflowsPath })`. */
export const WORKFLOWS_PATH: string = require.resolve('./workflows');
export * from './python-interop';
