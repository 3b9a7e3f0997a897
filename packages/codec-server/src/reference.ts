/**
 * External Storage reference payloads, byte-compatible with `@temporalio/common` 1.24
 * (`encodeReferencePayload` / `decodeReferencePayload` of its external-storage runner):
 *
 * - metadata `encoding` = `json/protobuf`, `messageType` = `temporal.api.sdk.v1.ExternalStorageReference`
 *   (in that order);
 * - data = the proto3 JSON of `ExternalStorageReference`: `{"driverName":"…","claimData":{…}}`
 *   (`claimData` omitted when empty; snake_case `driver_name` / `claim_data` accepted on input);
 * - `externalPayloads` = `[{ sizeBytes }]`, the serialized size of the stored payload.
 *
 * @module
 */
import { Int64, type Payload } from '@x/storage-driver-core';
import { CodecServerError, CodecServerErrorCode } from './errors';

/** `encoding` metadata value of a reference payload. */
export const REFERENCE_ENCODING = 'json/protobuf';
/** `messageType` metadata value of a reference payload. */
export const REFERENCE_MESSAGE_TYPE = 'temporal.api.sdk.v1.ExternalStorageReference';

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** A parsed External Storage reference. */
export interface StorageReference {
  /** Name of the driver instance that stored the payload. */
  driverName: string;
  /** The driver's claim (untrusted: it comes from workflow history). */
  claimData: Record<string, string>;
  /** Serialized size of the stored payload in bytes (`0` when absent). */
  sizeBytes: number;
}

function metadataString(payload: Payload, key: string): string | undefined {
  const raw = payload.metadata?.[key];
  if (!(raw instanceof Uint8Array) || raw.length === 0) return undefined;
  try {
    return decoder.decode(raw);
  } catch {
    return undefined;
  }
}

/** True if `payload` is an External Storage reference (by its `encoding` and `messageType` metadata). */
export function isReferencePayload(payload: Payload): boolean {
  return (
    metadataString(payload, 'encoding') === REFERENCE_ENCODING &&
    metadataString(payload, 'messageType') === REFERENCE_MESSAGE_TYPE
  );
}

function invalid(message: string, index: number | undefined): CodecServerError {
  return new CodecServerError(400, CodecServerErrorCode.INVALID_REFERENCE, message, { index });
}

/**
 * Parses a reference payload (check {@link isReferencePayload} first).
 *
 * @param index - position in the request, for error messages.
 * @throws CodecServerError 400 `E_INVALID_REFERENCE` if the data is not a valid
 *   `ExternalStorageReference` (not JSON, empty `driverName`, non-string claim values).
 */
export function decodeReferencePayload(payload: Payload, index?: number): StorageReference {
  let json: unknown;
  try {
    json = JSON.parse(decoder.decode(payload.data ?? new Uint8Array(0)));
  } catch {
    throw invalid('reference data is not UTF-8 JSON', index);
  }
  return referenceFromJson(json, readSizeBytes(payload), index);
}

/**
 * Validates the proto3 JSON of an `ExternalStorageReference` message
 * (`{"driverName","claimData"}`; snake_case names accepted; unknown fields ignored).
 *
 * @throws CodecServerError 400 `E_INVALID_REFERENCE` if it is malformed.
 */
export function referenceFromJson(json: unknown, sizeBytes = 0, index?: number): StorageReference {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw invalid('reference data must be a JSON object', index);
  }
  const obj = json as Record<string, unknown>;
  const driverName = obj.driverName ?? obj.driver_name;
  if (typeof driverName !== 'string' || driverName.length === 0) {
    throw invalid("reference field 'driverName' must be a non-empty string", index);
  }
  const rawClaim = obj.claimData ?? obj.claim_data ?? {};
  if (typeof rawClaim !== 'object' || rawClaim === null || Array.isArray(rawClaim)) {
    throw invalid("reference field 'claimData' must be an object of strings", index);
  }
  const claimData: Record<string, string> = {};
  for (const [key, value] of Object.entries(rawClaim)) {
    if (typeof value !== 'string') throw invalid(`reference claimData[${JSON.stringify(key)}] must be a string`, index);
    Object.defineProperty(claimData, key, { value, enumerable: true, writable: true, configurable: true });
  }
  return { driverName, claimData, sizeBytes };
}

function readSizeBytes(payload: Payload): number {
  const size = payload.externalPayloads?.[0]?.sizeBytes;
  if (size === undefined || size === null) return 0;
  return typeof size === 'number' ? size : Int64.fromValue(size).toNumber();
}

/**
 * Builds a reference payload, byte for byte what the SDK writes into history.
 *
 * @param reference - the driver's name, its claim, and `sizeBytes`: the serialized size of the stored
 *   payload.
 */
export function encodeReferencePayload(reference: {
  driverName: string;
  claimData: Record<string, string>;
  sizeBytes: number;
}): Payload {
  const message: { driverName: string; claimData?: Record<string, string> } = { driverName: reference.driverName };
  if (Object.keys(reference.claimData).length > 0) message.claimData = { ...reference.claimData };
  return {
    metadata: { encoding: encoder.encode(REFERENCE_ENCODING), messageType: encoder.encode(REFERENCE_MESSAGE_TYPE) },
    data: encoder.encode(JSON.stringify(message)),
    externalPayloads: [{ sizeBytes: Int64.fromValue(reference.sizeBytes) }],
  };
}
