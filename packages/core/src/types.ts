/**
 * The storage-driver contract. Structurally identical to `@temporalio/common` 1.24
 * `lib/converter/extstore.d.ts`, so a driver built on these types can be passed straight to the
 * SDK's `ExternalStorage`, and a driver written against the SDK's interface satisfies these
 * types. Compile-time tests in this package prove both directions.
 *
 * @module
 */
import type { Long } from './long';

/**
 * Details of one externally stored object referenced by a payload
 * (`temporal.api.common.v1.Payload.ExternalPayloadDetails`).
 */
export interface ExternalPayloadDetails {
  /** Size in bytes of the externally stored payload (protobuf `int64`). */
  sizeBytes?: Long | null;
}

/**
 * A Temporal payload (`temporal.api.common.v1.Payload`): metadata, data, and details of
 * external objects. Mirrors `@temporalio/common`'s `Payload` (the protobufjs `IPayload`).
 */
export interface Payload {
  /** Payload metadata: string keys, binary values (e.g. `encoding`). */
  metadata?: Record<string, Uint8Array> | null;
  /** Payload data. */
  data?: Uint8Array | null;
  /** Details about externally stored payloads associated with this payload. */
  externalPayloads?: ExternalPayloadDetails[] | null;
}

/**
 * Reference returned from {@link StorageDriver.store}. `claimData` is a flat string→string map
 * that carries everything the driver needs to retrieve the payload later. It is written into
 * workflow history, so drivers must treat claims handed to `retrieve` as untrusted input.
 */
export class StorageDriverClaim {
  /**
   * @param claimData - the flat claim map (for bundled drivers: `key`, `hash_algorithm`,
   *   `hash_value`, and driver-specific fields such as `bucket`).
   */
  constructor(readonly claimData: Record<string, string>) {}
}

/** Workflow identity information passed to a storage driver. */
export interface StorageDriverWorkflowInfo {
  /** Discriminant: the payloads belong to a workflow execution. */
  readonly kind: 'workflow';
  /** The namespace of the workflow execution. */
  readonly namespace: string;
  /** The workflow ID. */
  readonly id?: string;
  /** The workflow run ID, if available. */
  readonly runId?: string;
  /** The workflow type name, if available. */
  readonly type?: string;
}

/** Activity identity information passed to a storage driver. */
export interface StorageDriverActivityInfo {
  /** Discriminant: the payloads belong to an activity execution. */
  readonly kind: 'activity';
  /** The namespace of the activity execution. */
  readonly namespace: string;
  /** The activity ID. */
  readonly id?: string;
  /** The activity run ID (only for standalone activities). */
  readonly runId?: string;
  /** The activity type name, if available. */
  readonly type?: string;
}

/** Identity of the workflow or activity that produced the payloads being stored. */
export type StorageDriverTargetInfo = StorageDriverWorkflowInfo | StorageDriverActivityInfo;

/** Context handed to {@link StorageDriver.store}. */
export interface StorageDriverStoreContext {
  /** Aborts the in-flight operation; the SDK aborts sibling drivers on the first error. */
  abortSignal?: AbortSignal;
  /** Identity of the workflow / activity that produced the payloads. */
  target?: StorageDriverTargetInfo;
}

/** Context handed to a {@link StorageDriverSelector}. */
export interface StorageDriverSelectContext {
  /** Aborts the in-flight operation; the SDK aborts sibling drivers on the first error. */
  abortSignal?: AbortSignal;
  /** Identity of the workflow / activity that produced the payloads. */
  target?: StorageDriverTargetInfo;
}

/**
 * Context handed to {@link StorageDriver.retrieve}. It deliberately carries no workflow
 * identity: a claim must be self-sufficient.
 */
export interface StorageDriverRetrieveContext {
  /** Aborts the in-flight operation. */
  abortSignal?: AbortSignal;
}

/**
 * An external storage backend driver.
 *
 * - `store` returns exactly one claim per payload, in order; `retrieve` exactly one payload per
 *   claim, in order. Empty input gives empty output and performs no I/O.
 * - Retrieval returns a payload equal (metadata and data, byte for byte) to the one stored.
 */
export interface StorageDriver {
  /**
   * Per-instance routing key, written into workflow history with every reference. Must be
   * stable for as long as any history refers to it.
   */
  readonly name: string;
  /** Per-implementation identifier, identical across SDK languages (e.g. `aws.s3driver`). */
  readonly type: string;
  /** Store payloads; resolve to one claim per payload, in order. */
  store(context: StorageDriverStoreContext, payloads: Payload[]): Promise<StorageDriverClaim[]>;
  /** Retrieve payloads; resolve to one payload per claim, in order. */
  retrieve(context: StorageDriverRetrieveContext, claims: StorageDriverClaim[]): Promise<Payload[]>;
}

/**
 * Picks the destination driver for a payload, or returns `null` to keep the payload inline in
 * history. Called by the SDK only for payloads at or above `payloadSizeThreshold`.
 */
export type StorageDriverSelector = (context: StorageDriverSelectContext, payload: Payload) => StorageDriver | null;
