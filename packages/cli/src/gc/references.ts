/**
 * Finding External Storage references in what the Temporal API returns (history events,
 * descriptions of executions, schedules and activities), at any depth, without knowing the
 * message types: every `Payload` is found by its shape, so inputs, results, failures' details and
 * their causes, memo, headers, signals, updates, markers, child and continue-as-new inputs, user
 * metadata and fields a future server adds are all covered.
 *
 * @module
 */
import type { PayloadCodec } from '@x/storage-codec-server';
import { decodeReferencePayload, isReferencePayload, type StorageReference } from '@x/storage-codec-server';
import type { Payload } from '@x/storage-driver-core';

/** What {@link findReferences} reports for one reference payload. */
export type FoundReference =
  | { readonly valid: true; readonly reference: StorageReference }
  | { readonly valid: false; readonly message: string };

/**
 * Whether `value` has the shape of a `temporal.api.common.v1.Payload`: a `metadata` map whose
 * values are all bytes. (No other message of the API has such a field.)
 */
function isPayloadLike(value: Record<string, unknown>): value is Record<string, unknown> & Payload {
  const metadata = value.metadata;
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata) || ArrayBuffer.isView(metadata)) {
    return false;
  }
  const keys = Object.keys(metadata);
  if (keys.length === 0) return false;
  for (const key of keys) if (!((metadata as Record<string, unknown>)[key] instanceof Uint8Array)) return false;
  return true;
}

/**
 * Every payload in `message` (a decoded protobuf message or a plain object of one), depth first.
 * Only own enumerable fields are walked (protobufjs keeps defaults on the prototype); bytes and
 * strings are not descended into, and a payload's own fields are not walked further.
 */
export function collectPayloads(message: unknown, out: Payload[]): void {
  const stack: unknown[] = [message];
  while (stack.length > 0) {
    const value = stack.pop();
    if (typeof value !== 'object' || value === null || ArrayBuffer.isView(value)) continue;
    if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) stack.push(value[i]);
      continue;
    }
    const record = value as Record<string, unknown>;
    if (isPayloadLike(record)) {
      out.push(record);
      continue;
    }
    for (const key of Object.keys(record)) {
      const field = record[key];
      if (typeof field === 'object' && field !== null) stack.push(field);
    }
  }
}

/**
 * Calls `found` for every External Storage reference in `message`. With `outerCodecs` (a
 * deployment whose wire codec also encodes references, see the codec server's `outerCodecs`),
 * every payload is decoded by them (last to first) first.
 *
 * @returns the number of payloads looked at.
 * @throws whatever an outer codec throws.
 */
export async function findReferences(
  message: unknown,
  found: (reference: FoundReference) => void,
  outerCodecs: readonly PayloadCodec[] = [],
): Promise<number> {
  let payloads: Payload[] = [];
  collectPayloads(message, payloads);
  for (let i = outerCodecs.length - 1; i >= 0 && payloads.length > 0; i--) {
    payloads = await (outerCodecs[i] as PayloadCodec).decode(payloads);
  }
  for (const payload of payloads) {
    if (!isReferencePayload(payload)) continue;
    try {
      found({ valid: true, reference: decodeReferencePayload(payload) });
    } catch (error) {
      found({ valid: false, message: error instanceof Error ? error.message : String(error) });
    }
  }
  return payloads.length;
}
