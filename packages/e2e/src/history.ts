/** Reading payloads and External Storage references out of a fetched workflow history. */
import type { temporal } from '@temporalio/proto';

type IPayload = temporal.api.common.v1.IPayload;
type IHistory = temporal.api.history.v1.IHistory;
type IHistoryEvent = temporal.api.history.v1.IHistoryEvent;

/** `messageType` of a reference payload. */
export const REFERENCE_MESSAGE_TYPE = 'temporal.api.sdk.v1.ExternalStorageReference';

const decoder = new TextDecoder();

/** A payload found in history, with where it was. */
export interface HistoryPayload {
  /** e.g. `WorkflowExecutionStarted.input[0]`, `WorkflowExecutionStarted.memo.big`. */
  readonly where: string;
  readonly payload: IPayload;
}

/** What a reference payload says (`undefined` fields when it is not a well-formed reference). */
export interface ReferenceInfo {
  encoding: string | undefined;
  messageType: string | undefined;
  sizeBytes: number | undefined;
  driverName: string | undefined;
  claimData: Record<string, string> | undefined;
}

/** A metadata entry as text. */
export function metadataText(payload: IPayload, key: string): string | undefined {
  const v = payload.metadata?.[key];
  return v ? decoder.decode(v) : undefined;
}

/** Whether a payload is an External Storage reference. */
export function isReference(payload: IPayload): boolean {
  return metadataText(payload, 'messageType') === REFERENCE_MESSAGE_TYPE;
}

/** Decodes a reference payload's fields. */
export function referenceInfo(payload: IPayload): ReferenceInfo {
  let body: { driverName?: string; claimData?: Record<string, string> } = {};
  try {
    body = JSON.parse(decoder.decode(payload.data ?? new Uint8Array(0)));
  } catch {
    // not JSON: leave empty
  }
  const size = payload.externalPayloads?.[0]?.sizeBytes;
  return {
    encoding: metadataText(payload, 'encoding'),
    messageType: metadataText(payload, 'messageType'),
    sizeBytes: size === undefined || size === null ? undefined : Number(size),
    driverName: body.driverName,
    claimData: body.claimData,
  };
}

function list(out: HistoryPayload[], where: string, payloads: IPayload[] | null | undefined): void {
  for (const [i, payload] of (payloads ?? []).entries()) out.push({ where: `${where}[${i}]`, payload });
}

function fields(out: HistoryPayload[], where: string, map: Record<string, IPayload> | null | undefined): void {
  for (const [k, payload] of Object.entries(map ?? {})) out.push({ where: `${where}.${k}`, payload });
}

function eventPayloads(out: HistoryPayload[], e: IHistoryEvent): void {
  const started = e.workflowExecutionStartedEventAttributes;
  if (started) {
    list(out, 'WorkflowExecutionStarted.input', started.input?.payloads);
    fields(out, 'WorkflowExecutionStarted.memo', started.memo?.fields);
  }
  list(out, 'ActivityTaskScheduled.input', e.activityTaskScheduledEventAttributes?.input?.payloads);
  list(out, 'ActivityTaskCompleted.result', e.activityTaskCompletedEventAttributes?.result?.payloads);
  list(
    out,
    'StartChildWorkflowExecutionInitiated.input',
    e.startChildWorkflowExecutionInitiatedEventAttributes?.input?.payloads,
  );
  list(
    out,
    'ChildWorkflowExecutionCompleted.result',
    e.childWorkflowExecutionCompletedEventAttributes?.result?.payloads,
  );
  list(out, 'WorkflowExecutionSignaled.input', e.workflowExecutionSignaledEventAttributes?.input?.payloads);
  list(
    out,
    'WorkflowExecutionUpdateAccepted.args',
    e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.args?.payloads,
  );
  list(
    out,
    'WorkflowExecutionUpdateCompleted.result',
    e.workflowExecutionUpdateCompletedEventAttributes?.outcome?.success?.payloads,
  );
  list(out, 'WorkflowExecutionContinuedAsNew.input', e.workflowExecutionContinuedAsNewEventAttributes?.input?.payloads);
  list(out, 'WorkflowExecutionCompleted.result', e.workflowExecutionCompletedEventAttributes?.result?.payloads);
}

/** Every input/result/argument/memo payload of a history, in event order, with where it was. */
export function historyPayloads(history: IHistory): HistoryPayload[] {
  const out: HistoryPayload[] = [];
  for (const e of history.events ?? []) eventPayloads(out, e);
  return out;
}

/** A `WorkflowTaskFailed` event's failure. */
export interface WorkflowTaskFailure {
  message: string;
  stackTrace: string;
}

/** The failures of the `WorkflowTaskFailed` events of a history. */
export function workflowTaskFailures(history: IHistory): WorkflowTaskFailure[] {
  const out: WorkflowTaskFailure[] = [];
  for (const e of history.events ?? []) {
    const failure = e.workflowTaskFailedEventAttributes?.failure;
    if (failure) out.push({ message: failure.message ?? '', stackTrace: failure.stackTrace ?? '' });
  }
  return out;
}
