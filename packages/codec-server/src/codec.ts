/**
 * What the three routes do to a batch of payloads, for one namespace's configuration.
 *
 * @module
 */
import {
  encodedPayloadSize,
  isStorageDriverError,
  type Payload,
  type StorageDriver,
  StorageDriverClaim,
  type StorageDriverSelector,
} from '@x/storage-driver-core';
import { CodecServerError, CodecServerErrorCode, configError } from './errors';
import { decodeReferencePayload, encodeReferencePayload, isReferencePayload, type StorageReference } from './reference';

/** Default {@link CodecStorageConfig.payloadSizeThreshold}: 256 KiB, as the SDK's `ExternalStorage`. */
export const DEFAULT_PAYLOAD_SIZE_THRESHOLD = 256 * 1024;

/**
 * A payload codec, structurally the SDK's `PayloadCodec` (`@temporalio/common`): an SDK codec
 * can be passed as is. The codec server passes no serialization context.
 */
export interface PayloadCodec {
  /** Encodes payloads (e.g. compress, encrypt). */
  encode(payloads: Payload[]): Promise<Payload[]>;
  /** Decodes payloads encoded by {@link PayloadCodec.encode}. */
  decode(payloads: Payload[]): Promise<Payload[]>;
}

/**
 * External storage of one namespace. Same shape as the SDK's `ExternalStorage`, so
 * `dataConverter.externalStorage` (an `ExternalStorage` instance) can be passed as is.
 */
export interface CodecStorageConfig {
  /** Drivers, looked up by `name` when retrieving references. At least one; names unique. */
  readonly drivers: readonly StorageDriver[];
  /**
   * Picks the driver for a payload on `/encode` (or `null` to keep it inline). Required with more
   * than one driver. Default: the only driver.
   */
  readonly driverSelector?: StorageDriverSelector;
  /**
   * Payloads whose serialized size is at or above this many bytes are stored on `/encode`;
   * `0` stores every payload. Default: {@link DEFAULT_PAYLOAD_SIZE_THRESHOLD} (256 KiB).
   */
  readonly payloadSizeThreshold?: number;
}

/** Configuration of one namespace. */
export interface CodecNamespaceConfig {
  /** External storage. Without it, references are left alone by `/decode` and rejected by `/download`. */
  storage?: CodecStorageConfig;
  /**
   * Codecs inside storage, as the SDK's `DataConverter.payloadCodecs` (what the drivers store
   * is their output). `/encode` runs them first to last, then stores; `/decode` retrieves, then
   * runs them last to first. Default: none.
   */
  payloadCodecs?: readonly PayloadCodec[];
  /**
   * Codecs outside storage, applied to what goes into history including references (for
   * deployments whose wire codec also encodes references). `/encode` runs them after storing;
   * `/decode` and `/download` run them before retrieving. Default: none.
   */
  outerCodecs?: readonly PayloadCodec[];
  /**
   * `/decode` retrieves references whose recorded size (`externalPayloads[0].sizeBytes`) is
   * below this many bytes even when the request asks for `preserveStorageRefs=true`. The Web UI
   * always asks for that and offers larger payloads as a download through `/download`; set this
   * to show small offloaded values inline in the UI instead. Default: `0` (off: references are
   * always preserved when asked).
   */
  inlineReferencesBelow?: number;
}

/** An object a {@link NamespaceCodec} call stored or retrieved (reported to {@link CodecCallOptions.onStorageObject}). */
export interface StorageObjectEvent {
  /** `store` (`/encode`) or `retrieve` (`/decode`, `/download`). */
  operation: 'store' | 'retrieve';
  /** Index of the payload in the call. */
  index: number;
  /** Name of the driver that stored or retrieved it. */
  driverName: string;
  /** The driver's claim (`key`, and e.g. `bucket` for S3). */
  claimData: Record<string, string>;
  /** Serialized size of the stored or retrieved payload in bytes. */
  bytes: number;
  /** `retrieve` only: the size the reference recorded (`externalPayloads[0].sizeBytes`, untrusted; `0` when absent). */
  recordedBytes?: number;
}

/** Per-call options of {@link NamespaceCodec} operations. */
export interface CodecCallOptions {
  /** Aborts storage calls (the handler links it to the client connection). */
  signal?: AbortSignal;
  /**
   * Called once per call, before any driver is asked to retrieve, with the references about to
   * be retrieved (their `sizeBytes` as recorded in the reference). Throwing refuses the call
   * before anything is read from storage (the handler's download byte limit). Default: none.
   */
  beforeRetrieve?: (references: readonly StorageReference[]) => void;
  /** Called for every object stored or retrieved, once its driver call succeeded. Default: none. */
  onStorageObject?: (object: StorageObjectEvent) => void;
}

/** Options of {@link NamespaceCodec.decode}. */
export interface DecodeOptions extends CodecCallOptions {
  /** Return references as they are instead of retrieving them. Default: `false`. */
  preserveStorageRefs?: boolean;
}

function assertCodecs(codecs: unknown, what: string): readonly PayloadCodec[] {
  if (codecs === undefined) return [];
  if (!Array.isArray(codecs)) throw new TypeError(`${what} must be an array of PayloadCodec`);
  for (const c of codecs) {
    if (typeof c?.encode !== 'function' || typeof c?.decode !== 'function') {
      throw new TypeError(`${what} must contain objects with encode() and decode()`);
    }
  }
  return codecs;
}

/**
 * Applies one namespace's configuration to payload batches: the logic behind `/encode`,
 * `/decode` and `/download`, usable without HTTP (the `x-storage get` command uses it).
 *
 * Retrieval groups references per driver and calls each driver's `retrieve` once per batch, in
 * parallel; the first failure aborts the siblings. Storage runs once per driver per batch, as in
 * the SDK.
 */
export class NamespaceCodec {
  /** The namespace this codec serves. */
  readonly namespace: string;
  private readonly drivers = new Map<string, StorageDriver>();
  private readonly selector: StorageDriverSelector | undefined;
  private readonly threshold: number;
  private readonly payloadCodecs: readonly PayloadCodec[];
  private readonly outerCodecs: readonly PayloadCodec[];
  private readonly inlineBelow: number;

  /**
   * @throws StorageDriverError `E_CONFIG` for no drivers, duplicate or empty driver names, a
   *   missing selector with several drivers, or a negative / non-finite threshold.
   * @throws TypeError if drivers or codecs are not objects of the expected shape.
   */
  constructor(namespace: string, config: CodecNamespaceConfig) {
    if (typeof config !== 'object' || config === null) throw new TypeError('namespace config must be an object');
    this.namespace = namespace;
    this.payloadCodecs = assertCodecs(config.payloadCodecs, 'payloadCodecs');
    this.outerCodecs = assertCodecs(config.outerCodecs, 'outerCodecs');
    const inlineBelow = config.inlineReferencesBelow ?? 0;
    if (typeof inlineBelow !== 'number' || !Number.isFinite(inlineBelow) || inlineBelow < 0) {
      throw configError(`namespace ${JSON.stringify(namespace)}: inlineReferencesBelow must be a non-negative number`);
    }
    this.inlineBelow = inlineBelow;
    const storage = config.storage;
    if (storage === undefined) {
      this.selector = undefined;
      this.threshold = DEFAULT_PAYLOAD_SIZE_THRESHOLD;
      return;
    }
    if (!Array.isArray(storage.drivers) || storage.drivers.length === 0) {
      throw configError(`namespace ${JSON.stringify(namespace)}: storage.drivers must list at least one driver`);
    }
    for (const driver of storage.drivers as StorageDriver[]) {
      if (typeof driver?.store !== 'function' || typeof driver.retrieve !== 'function') {
        throw new TypeError(`namespace ${JSON.stringify(namespace)}: drivers must have store() and retrieve()`);
      }
      if (typeof driver.name !== 'string' || driver.name.length === 0) {
        throw configError(`namespace ${JSON.stringify(namespace)}: a driver has an empty name`);
      }
      if (this.drivers.has(driver.name)) {
        throw configError(
          `namespace ${JSON.stringify(namespace)}: duplicate driver name ${JSON.stringify(driver.name)}`,
        );
      }
      this.drivers.set(driver.name, driver);
    }
    if (storage.driverSelector === undefined && this.drivers.size > 1) {
      throw configError(
        `namespace ${JSON.stringify(namespace)}: storage.driverSelector is required with several drivers`,
      );
    }
    const only = storage.drivers[0] as StorageDriver;
    this.selector = storage.driverSelector ?? (() => only);
    const threshold = storage.payloadSizeThreshold ?? DEFAULT_PAYLOAD_SIZE_THRESHOLD;
    if (typeof threshold !== 'number' || !Number.isFinite(threshold) || threshold < 0) {
      throw configError(
        `namespace ${JSON.stringify(namespace)}: payloadSizeThreshold must be a non-negative number, got ${String(threshold)}`,
      );
    }
    this.threshold = threshold;
  }

  /** The configured drivers, by name. */
  get driverNames(): string[] {
    return [...this.drivers.keys()];
  }

  /**
   * `/encode`: payload codecs, then store payloads at or above the threshold (replacing them with
   * references), then outer codecs.
   *
   * @throws CodecServerError 502 with the driver's code on a storage failure; 502 `E_CODEC` if a
   *   codec fails; 500 `E_INTERNAL` if the selector returns an unregistered driver.
   */
  async encode(payloads: Payload[], options: CodecCallOptions = {}): Promise<Payload[]> {
    let out = await runCodecs(this.payloadCodecs, payloads, 'encode');
    if (this.selector !== undefined && out.length > 0) out = await this.store(out, options);
    return runCodecs(this.outerCodecs, out, 'encode');
  }

  /**
   * `/decode`: outer codecs, then retrieve references (unless `preserveStorageRefs`), then
   * payload codecs on every payload that is not a reference.
   *
   * @throws CodecServerError 400 `E_INVALID_REFERENCE`, 404 `E_UNKNOWN_DRIVER`, 502 with the
   *   driver's code on a storage failure, 502 `E_CODEC` if a codec fails.
   */
  async decode(payloads: Payload[], options: DecodeOptions = {}): Promise<Payload[]> {
    let out = await runCodecs(this.outerCodecs, payloads, 'decode');
    if (options.preserveStorageRefs !== true) out = await this.retrieve(out, false, options);
    else if (this.inlineBelow > 0) {
      out = await this.retrieve(out, false, options, (size) => size > 0 && size < this.inlineBelow);
    }
    return this.decodeNonReferences(out);
  }

  /**
   * `/download`: like {@link NamespaceCodec.decode}, but every payload must be a reference.
   *
   * @throws CodecServerError 400 `E_NOT_A_REFERENCE` (before any retrieval) and the errors of
   *   {@link NamespaceCodec.decode}.
   */
  async download(payloads: Payload[], options: CodecCallOptions = {}): Promise<Payload[]> {
    const outer = await runCodecs(this.outerCodecs, payloads, 'decode');
    const retrieved = await this.retrieve(outer, true, options);
    return this.decodeNonReferences(retrieved);
  }

  private async decodeNonReferences(payloads: Payload[]): Promise<Payload[]> {
    if (this.payloadCodecs.length === 0) return payloads;
    const indexes: number[] = [];
    const plain: Payload[] = [];
    payloads.forEach((p, i) => {
      if (!isReferencePayload(p)) {
        indexes.push(i);
        plain.push(p);
      }
    });
    if (plain.length === 0) return payloads;
    const decoded = await runCodecs(this.payloadCodecs, plain, 'decode');
    const out = payloads.slice();
    indexes.forEach((at, j) => {
      out[at] = decoded[j] as Payload;
    });
    return out;
  }

  private async store(payloads: Payload[], options: CodecCallOptions): Promise<Payload[]> {
    const signal = options.signal;
    const selector = this.selector as StorageDriverSelector;
    const controller = new AbortController();
    const batchSignal = signal ? AbortSignal.any([signal, controller.signal]) : controller.signal;
    const target = { kind: 'workflow' as const, namespace: this.namespace };
    const groups = new Map<StorageDriver, { index: number; payload: Payload; size: number }[]>();
    payloads.forEach((payload, index) => {
      const size = encodedPayloadSize(payload);
      if (size < this.threshold) return;
      const driver = selector({ abortSignal: batchSignal, target }, payload);
      if (driver === null) return;
      if (this.drivers.get(driver?.name) !== driver) {
        throw new CodecServerError(
          500,
          CodecServerErrorCode.INTERNAL,
          'driverSelector returned an unregistered driver',
        );
      }
      const group = groups.get(driver) ?? [];
      group.push({ index, payload, size });
      groups.set(driver, group);
    });
    const out = payloads.slice();
    await allOrAbort(
      controller,
      [...groups],
      async ([driver, items]) => {
        const claims = await storageCall(driver, () =>
          driver.store(
            { abortSignal: batchSignal, target },
            items.map((i) => i.payload),
          ),
        );
        if (!Array.isArray(claims) || claims.length !== items.length) {
          throw storageArity(driver, 'claims', items.length);
        }
        items.forEach((item, j) => {
          const claimData = (claims[j] as StorageDriverClaim).claimData;
          out[item.index] = encodeReferencePayload({ driverName: driver.name, claimData, sizeBytes: item.size });
          options.onStorageObject?.({
            operation: 'store',
            index: item.index,
            driverName: driver.name,
            claimData,
            bytes: item.size,
          });
        });
      },
      (error, [, items]) => remapIndex(error, items),
    );
    return out;
  }

  private async retrieve(
    payloads: Payload[],
    requireAll: boolean,
    options: CodecCallOptions,
    sizeFilter?: (sizeBytes: number) => boolean,
  ): Promise<Payload[]> {
    const signal = options.signal;
    const groups = new Map<StorageDriver, { index: number; claim: StorageDriverClaim; ref: StorageReference }[]>();
    payloads.forEach((payload, index) => {
      if (!isReferencePayload(payload)) {
        if (requireAll) {
          throw new CodecServerError(
            400,
            CodecServerErrorCode.NOT_A_REFERENCE,
            'payload is not an External Storage reference',
            {
              index,
            },
          );
        }
        return;
      }
      const ref = decodeReferencePayload(payload, index);
      if (sizeFilter !== undefined && !sizeFilter(ref.sizeBytes)) return;
      const driver = this.drivers.get(ref.driverName);
      if (driver === undefined) {
        throw new CodecServerError(
          404,
          CodecServerErrorCode.UNKNOWN_DRIVER,
          `no storage driver named ${JSON.stringify(ref.driverName)} is configured for namespace ${JSON.stringify(this.namespace)}`,
          { index, driverName: ref.driverName },
        );
      }
      const group = groups.get(driver) ?? [];
      group.push({ index, claim: new StorageDriverClaim(ref.claimData), ref });
      groups.set(driver, group);
    });
    if (groups.size === 0) return payloads;
    options.beforeRetrieve?.([...groups.values()].flatMap((items) => items.map((i) => i.ref)));
    const controller = new AbortController();
    const batchSignal = signal ? AbortSignal.any([signal, controller.signal]) : controller.signal;
    const out = payloads.slice();
    await allOrAbort(
      controller,
      [...groups],
      async ([driver, items]) => {
        const retrieved = await storageCall(driver, () =>
          driver.retrieve(
            { abortSignal: batchSignal },
            items.map((i) => i.claim),
          ),
        );
        if (!Array.isArray(retrieved) || retrieved.length !== items.length) {
          throw storageArity(driver, 'payloads', items.length);
        }
        items.forEach((item, j) => {
          out[item.index] = retrieved[j] as Payload;
          options.onStorageObject?.({
            operation: 'retrieve',
            index: item.index,
            driverName: driver.name,
            claimData: item.ref.claimData,
            bytes: retrievedSize(retrieved[j] as Payload, item.ref.sizeBytes),
            recordedBytes: item.ref.sizeBytes,
          });
        });
      },
      (error, [, items]) => remapIndex(error, items),
    );
    return out;
  }
}

/** Serialized size of a retrieved payload; the recorded size if the driver returned something malformed (the handler rejects it later). */
function retrievedSize(payload: Payload, recorded: number): number {
  try {
    return encodedPayloadSize(payload);
  } catch {
    return recorded;
  }
}

function storageArity(driver: StorageDriver, what: string, expected: number): CodecServerError {
  return new CodecServerError(
    502,
    CodecServerErrorCode.STORAGE,
    `driver ${JSON.stringify(driver.name)} returned the wrong number of ${what} (expected ${expected})`,
    { driverName: driver.name },
  );
}

/** Maps a driver's batch-relative error index to the request's payload index. */
function remapIndex(error: unknown, items: { index: number }[]): unknown {
  if (error instanceof CodecServerError && error.index !== undefined && items[error.index] !== undefined) {
    return new CodecServerError(error.status, error.code, error.message, {
      index: (items[error.index] as { index: number }).index,
      driverName: error.driverName,
      retryable: error.retryable,
      cause: error.cause,
    });
  }
  return error;
}

/** Runs a driver call; any failure becomes a 502 CodecServerError. */
async function storageCall<T>(driver: StorageDriver, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (isStorageDriverError(error)) {
      return Promise.reject(
        new CodecServerError(502, error.code, error.message, {
          driverName: error.driverName ?? driver.name,
          index: error.index,
          retryable: error.retryable,
          cause: error,
        }),
      );
    }
    return Promise.reject(
      new CodecServerError(502, CodecServerErrorCode.STORAGE, `storage driver ${JSON.stringify(driver.name)} failed`, {
        driverName: driver.name,
        cause: error,
      }),
    );
  }
}

async function runCodecs(
  codecs: readonly PayloadCodec[],
  payloads: Payload[],
  op: 'encode' | 'decode',
): Promise<Payload[]> {
  let out = payloads;
  const ordered = op === 'encode' ? codecs : [...codecs].reverse();
  for (const codec of ordered) {
    try {
      out = await codec[op](out);
    } catch (error) {
      throw new CodecServerError(502, CodecServerErrorCode.CODEC, `payload codec failed to ${op}`, { cause: error });
    }
    if (!Array.isArray(out) || out.length !== payloads.length) {
      throw new CodecServerError(
        502,
        CodecServerErrorCode.CODEC,
        `payload codec returned the wrong number of payloads`,
      );
    }
  }
  return out;
}

/** Runs every task; on the first failure aborts the siblings, waits for all, rethrows the first error. */
async function allOrAbort<T>(
  controller: AbortController,
  items: T[],
  task: (item: T) => Promise<void>,
  mapError: (error: unknown, item: T) => unknown = (e) => e,
): Promise<void> {
  let first: { error: unknown } | undefined;
  await Promise.all(
    items.map((item) =>
      task(item).catch((error: unknown) => {
        if (first === undefined) {
          first = { error: mapError(error, item) };
          controller.abort(error);
        }
      }),
    ),
  );
  if (first !== undefined) throw first.error;
}
