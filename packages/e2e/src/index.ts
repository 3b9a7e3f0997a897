/**
 * `@x/e2e` (private, never published): helpers of the end-to-end tests on a real Temporal dev
 * server (started with `@x/test-servers`, on stores of `@x/test-backends`) — the workflows and
 * activities, a gzip codec, history readers and the Python SDK interop.
 *
 * @packageDocumentation
 */

export * as activities from './activities';
export { GZIP_ENCODING, GzipPayloadCodec } from './codec';
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
