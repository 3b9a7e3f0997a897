/**
 * The wrapper itself: third-party drivers (no operation report: what the wrapper measures on its
 * own), the lifecycle surface forwarded exactly (and `deleteExpired`'s removals recorded), the
 * warning hook, telemetry that fails without failing the call, the global providers, and misuse.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { metrics, SpanStatusCode, type Tracer, type TracerProvider, trace } from '@opentelemetry/api';
import {
  encodedPayloadSize,
  lifecycleCapabilities,
  NO_LIFECYCLE_CAPABILITIES,
  type Payload,
  STORAGE_OPERATION_REPORT,
  type StorageDriver,
  type StorageDriverClaim,
  type StorageDriverRetrieveContext,
  type StorageDriverStoreContext,
  type StorageOperationReport,
} from '@x/storage-driver-core';
import { FsStorageDriver } from '@x/storage-driver-fs';
import { InMemoryStorageDriver } from '@x/storage-driver-test-suite';
import {
  StorageAttributes as A,
  type InstrumentationWarning,
  instrumentStorageDriver,
  isInstrumentedStorageDriver,
  StorageMetrics as M,
} from '../src';
import { makeTelemetry, payload, type Telemetry } from './helpers';

let dir: string;
let telemetry: Telemetry;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'otel-wrapper-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
afterEach(async () => {
  await telemetry?.shutdown();
});

let roots = 0;
function fsDriver(options: { clock?: () => number; ttl?: number } = {}): FsStorageDriver {
  return new FsStorageDriver({ root: path.join(dir, `store-${roots++}`), ...options });
}

/**
 * A third-party driver: written against the SDK's interface, not built on core. It keeps its
 * bytes in a real fs driver's directory but passes on only what the contract defines, so it
 * never sees (or answers) the operation report a core-based driver fills.
 */
class ThirdPartyDriver implements StorageDriver {
  readonly name = 'acme';
  readonly type = 'acme.kvdriver';
  readonly #inner = fsDriver();
  store(context: StorageDriverStoreContext, payloads: Payload[]): Promise<StorageDriverClaim[]> {
    return this.#inner.store({ abortSignal: context.abortSignal, target: context.target }, payloads);
  }
  retrieve(context: StorageDriverRetrieveContext, claims: StorageDriverClaim[]): Promise<Payload[]> {
    return this.#inner.retrieve({ abortSignal: context.abortSignal }, claims);
  }
}

function providers(t: Telemetry) {
  return { tracerProvider: t.tracerProvider, meterProvider: t.meterProvider };
}

describe('third-party drivers', () => {
  it('spans and metrics carry the payload counts and serialized sizes the wrapper measures; no dedup', async () => {
    telemetry = makeTelemetry();
    const warnings: InstrumentationWarning[] = [];
    const driver = instrumentStorageDriver(new ThirdPartyDriver(), {
      ...providers(telemetry),
      onWarning: (w) => warnings.push(w),
    });
    const payloads = [payload('one', 100), payload('two', 1000), payload('one', 100)];
    const size = payloads.reduce((sum, p) => sum + encodedPayloadSize(p), 0);
    const claims = await driver.store(
      { target: { kind: 'activity', namespace: 'ns', id: 'act-1', type: 'Charge' } },
      payloads,
    );
    await driver.retrieve({}, claims);
    await driver.retrieve({}, claims.slice(0, 1));

    const [store, retrieve] = telemetry.spans();
    expect(store?.name).toBe('StorePayloads:acme');
    expect(store?.attributes).toEqual({
      [A.DRIVER_NAME]: 'acme',
      [A.DRIVER_TYPE]: 'acme.kvdriver',
      [A.OPERATION]: 'store',
      [A.ROOT]: true,
      [A.NAMESPACE]: 'ns',
      [A.TARGET_KIND]: 'activity',
      [A.TARGET_TYPE]: 'Charge',
      temporalActivityId: 'act-1',
      [A.PAYLOADS]: 3,
      [A.BYTES]: size,
    });
    expect(retrieve?.attributes).toMatchObject({ [A.PAYLOADS]: 3, [A.BYTES]: size });
    expect(retrieve?.attributes[A.OBJECTS]).toBeUndefined();
    expect(await telemetry.sum(M.BYTES, { [A.OPERATION]: 'retrieve' })).toBe(
      size + encodedPayloadSize(payloads[0] as Payload),
    );
    expect(await telemetry.points(M.DEDUP_HITS)).toEqual([]);
    expect(warnings.map((w) => [w.code, w.driverName])).toEqual([['no-operation-report', 'acme']]);
    expect(warnings[0]?.message).toContain('acme.kvdriver');
  });

  it('has exactly the lifecycle the driver has: none', () => {
    const driver = instrumentStorageDriver(new ThirdPartyDriver());
    for (const member of ['capabilities', 'list', 'objectIdOf', 'delete', 'deleteExpired', 'close']) {
      expect(member in driver).toBe(false);
    }
    expect(lifecycleCapabilities(driver)).toEqual(NO_LIFECYCLE_CAPABILITIES);
  });
});

describe('drivers built on core', () => {
  it('a driver whose backend does not report dedup hits: no existing count, one no-dedup-report warning', async () => {
    telemetry = makeTelemetry();
    const warnings: InstrumentationWarning[] = [];
    const driver = instrumentStorageDriver(new InMemoryStorageDriver(), {
      ...providers(telemetry),
      onWarning: (w) => warnings.push(w),
    });
    await driver.store({}, [payload('a'), payload('a')]);
    await driver.store({}, [payload('a')]);
    const [first] = telemetry.spans();
    expect(first?.attributes).toMatchObject({ [A.OBJECTS]: 1, [A.DEDUP_IN_BATCH]: 1 });
    expect(first?.attributes[A.DEDUP_EXISTING]).toBeUndefined();
    expect(await telemetry.points(M.DEDUP_HITS)).toEqual([
      { attributes: { [A.DRIVER_NAME]: 'memory', [A.DEDUP_KIND]: 'in_batch' }, value: 1 },
    ]);
    expect(warnings.map((w) => w.code)).toEqual(['no-dedup-report']);
  });

  it("still calls a caller's own operation reporter", async () => {
    telemetry = makeTelemetry();
    const driver = instrumentStorageDriver(fsDriver(), providers(telemetry));
    const reports: StorageOperationReport[] = [];
    const context = { [STORAGE_OPERATION_REPORT]: (r: StorageOperationReport) => reports.push(r) };
    await driver.store(context as StorageDriverStoreContext, [payload('reported')]);
    expect(reports.map((r) => [r.operation, r.payloads, r.existing])).toEqual([['store', 1, 0]]);
  });

  it('forwards capabilities, list, objectIdOf and close, and exposes the wrapped driver', async () => {
    const inner = fsDriver({ ttl: 60_000 });
    const driver = instrumentStorageDriver(inner);
    expect(driver.instrumented).toBe(inner);
    expect(isInstrumentedStorageDriver(driver)).toBe(true);
    expect(isInstrumentedStorageDriver(inner)).toBe(false);
    expect(driver.capabilities).toBe(inner.capabilities);
    expect(lifecycleCapabilities(driver)).toEqual(lifecycleCapabilities(inner));
    const [claim] = await driver.store({}, [payload('listed')]);
    const listed = [];
    for await (const o of driver.list()) listed.push(o);
    expect(listed.map((o) => o.id)).toEqual([driver.objectIdOf(claim as StorageDriverClaim)]);
    await driver.close();
    await expect(inner.store({}, [payload('closed')])).rejects.toMatchObject({ code: 'E_CONFIG' });
  });

  it('deleteExpired: a span with what it scanned and removed; removals counted, a dry run counts none', async () => {
    telemetry = makeTelemetry();
    let now = 1_700_000_000_000;
    const driver = instrumentStorageDriver(fsDriver({ clock: () => now, ttl: 60_000 }), providers(telemetry));
    const payloads = [payload('old-1', 200), payload('old-2', 300)];
    await driver.store({}, payloads);
    now += 120_000;
    await driver.store({}, [payload('fresh')]);
    const size = payloads.reduce((sum, p) => sum + encodedPayloadSize(p), 0);

    const dry = await driver.deleteExpired({ dryRun: true });
    const real = await driver.deleteExpired();
    expect([dry.removed, real.removed, real.removedBytes]).toEqual([2, 2, size]);

    const [drySpan, realSpan] = telemetry.spansNamed('DeleteExpiredPayloads:fs');
    expect(drySpan?.attributes).toMatchObject({
      [A.OPERATION]: 'deleteExpired',
      [A.DRY_RUN]: true,
      [A.SCANNED]: 2,
      [A.REMOVED]: 2,
      [A.REMOVED_BYTES]: size,
      [A.MORE]: false,
      [A.ITEM_ERRORS]: 0,
    });
    expect(realSpan?.attributes).toMatchObject({ [A.DRY_RUN]: false, [A.REMOVED]: 2, [A.REMOVED_BYTES]: size });
    expect(realSpan?.status.code).toBe(SpanStatusCode.OK);
    const base = { [A.DRIVER_NAME]: 'fs', [A.OPERATION]: 'deleteExpired' };
    expect(await telemetry.sum(M.REMOVED, base)).toBe(2);
    expect(await telemetry.sum(M.REMOVED_BYTES, base)).toBe(size);
    expect(await telemetry.sum(M.DURATION, { ...base, [A.OUTCOME]: 'success' })).toBe(2);
  });

  it('a failing deleteExpired: an error span and the errors counter', async () => {
    telemetry = makeTelemetry();
    const driver = instrumentStorageDriver(fsDriver(), providers(telemetry)); // no ttl, no olderThan
    await expect(driver.deleteExpired()).rejects.toMatchObject({ code: 'E_CONFIG' });
    const [span] = telemetry.spans();
    expect([span?.name, span?.status.code, span?.attributes[A.ERROR_CODE]]).toEqual([
      'DeleteExpiredPayloads:fs',
      SpanStatusCode.ERROR,
      'E_CONFIG',
    ]);
    expect(await telemetry.sum(M.ERRORS, { [A.OPERATION]: 'deleteExpired', [A.ERROR_TYPE]: 'E_CONFIG' })).toBe(1);
  });
});

describe('telemetry never changes a call', () => {
  it('a tracer and a meter that throw: the call succeeds, one telemetry-failed warning', async () => {
    const broken = new Error('exporter on fire');
    const tracerProvider: TracerProvider = {
      getTracer: () =>
        ({
          startSpan() {
            throw broken;
          },
        }) as unknown as Tracer,
    };
    const meterProvider = {
      getMeter: () => {
        throw broken;
      },
    };
    const warnings: InstrumentationWarning[] = [];
    const driver = instrumentStorageDriver(fsDriver(), {
      tracerProvider,
      meterProvider: meterProvider as never,
      onWarning: (w) => {
        warnings.push(w);
        throw new Error('and the logger too'); // ignored
      },
    });
    const claims = await driver.store({}, [payload('survives')]);
    expect(await driver.retrieve({}, claims)).toHaveLength(1);
    expect(warnings.map((w) => [w.code, w.cause])).toEqual([['telemetry-failed', broken]]);
  });

  it('without an SDK (the API alone: no-op providers), calls work and record nothing', async () => {
    const driver = instrumentStorageDriver(fsDriver());
    const claims = await driver.store({}, [payload('no sdk')]);
    expect(await driver.retrieve({}, claims)).toHaveLength(1);
  });

  it('uses the global providers, looked up per call: registered after wrapping is fine', async () => {
    const driver = instrumentStorageDriver(fsDriver());
    telemetry = makeTelemetry();
    trace.setGlobalTracerProvider(telemetry.tracerProvider);
    metrics.setGlobalMeterProvider(telemetry.meterProvider);
    try {
      await driver.store({}, [payload('global')]);
      expect(telemetry.spans().map((s) => s.name)).toEqual(['StorePayloads:fs']);
      expect(await telemetry.sum(M.PAYLOADS)).toBe(1);
    } finally {
      trace.disable();
      metrics.disable();
    }
  });
});

describe('misuse', () => {
  it('throws TypeError for a non-driver, a driver instrumented twice, and options of the wrong type', () => {
    expect(() => instrumentStorageDriver({} as never)).toThrow(TypeError);
    expect(() => instrumentStorageDriver(null as never)).toThrow(TypeError);
    const once = instrumentStorageDriver(fsDriver());
    expect(() => instrumentStorageDriver(once)).toThrow(/already instrumented/);
    expect(() => instrumentStorageDriver(fsDriver(), { tracerProvider: {} as never })).toThrow(TypeError);
    expect(() => instrumentStorageDriver(fsDriver(), { meterProvider: 1 as never })).toThrow(TypeError);
    expect(() => instrumentStorageDriver(fsDriver(), { onWarning: 'log' as never })).toThrow(TypeError);
    expect(() => instrumentStorageDriver(fsDriver(), 'options' as never)).toThrow(TypeError);
  });
});
