/**
 * Proves the contract is interchangeable with `@temporalio/common` 1.24 — at compile time (the
 * type assertions below are enforced by `tsc -b tsconfig.all.json`; ts-jest only transpiles) and
 * at run time, by pushing payloads through the SDK's own External Storage path.
 */
import * as Sdk from '@temporalio/common';
import { decode } from '@temporalio/common/lib/encoding';
import { ExternalStorageRunner } from '@temporalio/common/lib/internal-non-workflow';
import { temporal } from '@temporalio/proto';
import type * as Core from '../src';
import {
  ContentAddressedStorageDriver,
  type Long as CoreLong,
  encodedPayloadSize,
  encodePayload,
  Int64,
  requireClaimField,
  type StorageLocation,
  type StoreItem,
  selectBySize,
  selectByTarget,
  sha256Hex,
} from '../src';
import { bytesOf, type SdkLong } from './helpers';

// ---------------------------------------------------------------------------------------------
// Compile-time proof
// ---------------------------------------------------------------------------------------------

/** `true` when A and B are assignable to each other. */
type MutuallyAssignable<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
/** Compiles only when `T` is `true`. */
function assertTrue<T extends true>(): T | undefined {
  return undefined;
}

type SdkDetails = NonNullable<Sdk.Payload['externalPayloads']>[number];

assertTrue<MutuallyAssignable<Core.Payload, Sdk.Payload>>();
assertTrue<MutuallyAssignable<Core.ExternalPayloadDetails, SdkDetails>>();
assertTrue<MutuallyAssignable<CoreLong, SdkLong>>();
assertTrue<MutuallyAssignable<Core.StorageDriver, Sdk.StorageDriver>>();
assertTrue<MutuallyAssignable<Core.StorageDriverClaim, Sdk.StorageDriverClaim>>();
assertTrue<MutuallyAssignable<Core.StorageDriverSelector, Sdk.StorageDriverSelector>>();
assertTrue<MutuallyAssignable<Core.StorageDriverStoreContext, Sdk.StorageDriverStoreContext>>();
assertTrue<MutuallyAssignable<Core.StorageDriverSelectContext, Sdk.StorageDriverSelectContext>>();
assertTrue<MutuallyAssignable<Core.StorageDriverRetrieveContext, Sdk.StorageDriverRetrieveContext>>();
assertTrue<MutuallyAssignable<Core.StorageDriverTargetInfo, Sdk.StorageDriverTargetInfo>>();
assertTrue<MutuallyAssignable<Core.StorageDriverWorkflowInfo, Sdk.StorageDriverWorkflowInfo>>();
assertTrue<MutuallyAssignable<Core.StorageDriverActivityInfo, Sdk.StorageDriverActivityInfo>>();
assertTrue<
  MutuallyAssignable<
    ConstructorParameters<typeof Core.StorageDriverClaim>,
    ConstructorParameters<typeof Sdk.StorageDriverClaim>
  >
>();
// Decoded sizes are Int64 values: usable wherever the SDK expects a Long (one direction only,
// since Int64 has private members a foreign Long cannot have).
assertTrue<Core.Int64 extends SdkLong ? true : false>();

/** A driver built on core's base class. */
class MapDriver extends ContentAddressedStorageDriver {
  readonly type = 'test.mapdriver';
  readonly objects = new Map<string, Uint8Array>();
  storeCalls = 0;
  retrieveCalls = 0;

  constructor(name = 'map') {
    super(name);
  }
  protected override _locate(key: string): StorageLocation {
    return { key };
  }

  protected override _claimFields(location: StorageLocation): Record<string, string> {
    return { key: location.key };
  }
  protected override _parseClaim(claimData: Record<string, string>, index: number): StorageLocation {
    return { key: requireClaimField(claimData, 'key', index) };
  }
  protected async _putIfAbsent(items: StoreItem[]): Promise<void> {
    this.storeCalls++;
    for (const item of items) if (!this.objects.has(item.location.key)) this.objects.set(item.location.key, item.bytes);
  }
  protected async _get(locations: StorageLocation[]): Promise<(Uint8Array | undefined)[]> {
    this.retrieveCalls++;
    return locations.map((l) => this.objects.get(l.key));
  }
}

/** A driver written purely against the SDK's interface. */
class SdkOnlyDriver implements Sdk.StorageDriver {
  readonly name = 'sdk-only';
  readonly type = 'test.sdkonly';
  async store(_context: Sdk.StorageDriverStoreContext, payloads: Sdk.Payload[]): Promise<Sdk.StorageDriverClaim[]> {
    return payloads.map(() => new Sdk.StorageDriverClaim({}));
  }
  async retrieve(_context: Sdk.StorageDriverRetrieveContext, claims: Sdk.StorageDriverClaim[]): Promise<Sdk.Payload[]> {
    return claims.map(() => ({}));
  }
}

// Value-level assignments in both directions (checked by tsc).
const ourDriver = new MapDriver();
const asSdkDriver: Sdk.StorageDriver = ourDriver;
const asCoreDriver: Core.StorageDriver = new SdkOnlyDriver();
const ourSelector = selectBySize([{ below: 100, use: null }, { use: ourDriver }]);
const asSdkSelector: Sdk.StorageDriverSelector = ourSelector;
const asCoreSelector: Core.StorageDriverSelector = (_ctx: Sdk.StorageDriverSelectContext, _p: Sdk.Payload) =>
  asSdkDriver;
const sdkPayload: Sdk.Payload = { data: new Uint8Array(1), externalPayloads: [{ sizeBytes: null }] };
const asCorePayload: Core.Payload = sdkPayload;
const corePayload: Core.Payload = { metadata: {}, externalPayloads: [{ sizeBytes: Int64.fromValue(3) }] };
const asSdkPayload: Sdk.Payload = corePayload;
const sdkClaim: Core.StorageDriverClaim = new Sdk.StorageDriverClaim({ key: 'k' });
// `ExternalStorage` accepts our drivers and selectors directly, including `selector.drivers`.
const typedStorage = (): Sdk.ExternalStorage =>
  new Sdk.ExternalStorage({ drivers: ourSelector.drivers, driverSelector: ourSelector, payloadSizeThreshold: 0 });

// ---------------------------------------------------------------------------------------------
// Runtime
// ---------------------------------------------------------------------------------------------

const PayloadProto = temporal.api.common.v1.Payload;
const converter = Sdk.defaultPayloadConverter;
const toPayload = (value: unknown): Sdk.Payload => {
  const p = converter.toPayload(value);
  if (p === undefined) throw new Error('not convertible');
  return p;
};
const workflowTarget: Sdk.StorageDriverTargetInfo = {
  kind: 'workflow',
  namespace: 'payments prod',
  type: 'ChargeWorkflow',
  id: 'order+123=abc',
  runId: 'run-1',
};

function metadataString(p: Sdk.Payload | undefined, key: string): string | undefined {
  const v = p?.metadata?.[key];
  return v ? decode(v) : undefined;
}

function sizeBytesOf(p: Sdk.Payload | undefined): number | undefined {
  const s: unknown = p?.externalPayloads?.[0]?.sizeBytes;
  if (s === undefined || s === null) return undefined;
  return typeof s === 'number' ? s : (s as SdkLong).toNumber();
}

describe('SDK compatibility (compile-time)', () => {
  it('the type-level assertions compiled, and the assigned values are what they claim to be', () => {
    expect(asSdkDriver).toBe(ourDriver);
    expect(asCoreDriver.name).toBe('sdk-only');
    expect(asSdkSelector).toBe(ourSelector);
    expect(asCoreSelector({}, {})).toBe(ourDriver);
    expect(asSdkPayload).toBe(corePayload);
    expect(asCorePayload).toBe(sdkPayload);
    expect(sdkClaim.claimData).toEqual({ key: 'k' });
    expect(typedStorage().getDriver('map')).toBe(ourDriver);
  });
});

describe('SDK ExternalStorage with a core driver (runtime)', () => {
  const values: unknown[] = [
    { orderId: 'order+123=abc', amount: 4200, currency: 'EUR' },
    'x'.repeat(2000),
    [1, 2, 3],
    null,
    { nested: { unicode: 'é😀', list: Array.from({ length: 50 }, (_, i) => i) } },
  ];

  it('offloads every payload with threshold 0 and reads them back through the SDK path', async () => {
    const driver = new MapDriver();
    const storage = new Sdk.ExternalStorage({ drivers: [driver], payloadSizeThreshold: 0 });
    const runner = new ExternalStorageRunner(storage);
    const payloads = values.map(toPayload);

    const refs = await runner.store(payloads, { target: workflowTarget });
    expect(refs).toHaveLength(payloads.length);
    expect(driver.storeCalls).toBe(1); // one store per driver per batch

    for (const [i, ref] of refs.entries()) {
      const original = payloads[i] as Sdk.Payload;
      expect(metadataString(ref, 'encoding')).toBe('json/protobuf');
      expect(metadataString(ref, 'messageType')).toBe('temporal.api.sdk.v1.ExternalStorageReference');
      const body = JSON.parse(decode(ref.data ?? new Uint8Array(0))) as {
        driverName: string;
        claimData: Record<string, string>;
      };
      expect(body.driverName).toBe('map');
      const hex = sha256Hex(encodePayload(original));
      expect(body.claimData).toEqual({
        key: `v0/ns/payments%20prod/wt/ChargeWorkflow/wi/order%2B123%3Dabc/ri/run-1/d/sha256/${hex}`,
        hash_algorithm: 'sha256',
        hash_value: hex,
      });
      expect(ref.externalPayloads).toHaveLength(1);
      const serialized = PayloadProto.encode(original).finish();
      expect(sizeBytesOf(ref)).toBe(serialized.length);
      expect(sizeBytesOf(ref)).toBe(encodedPayloadSize(original));
      // The stored object is the SDK's own protobuf encoding of the payload.
      expect(bytesOf(driver.objects.get(body.claimData['key'] ?? ''))).toEqual(bytesOf(serialized));
    }

    const back = await runner.retrieve(refs);
    expect(driver.retrieveCalls).toBe(1);
    for (const [i, p] of back.entries()) {
      const original = payloads[i] as Sdk.Payload;
      expect(bytesOf(PayloadProto.encode(p).finish())).toEqual(bytesOf(PayloadProto.encode(original).finish()));
      expect(converter.fromPayload(p)).toEqual(values[i]);
    }
  });

  it('keeps payloads below payloadSizeThreshold inline and offloads those at or above it', async () => {
    const driver = new MapDriver();
    const big = toPayload('y'.repeat(500));
    const threshold = encodedPayloadSize(big);
    const storage = new Sdk.ExternalStorage({ drivers: [driver], payloadSizeThreshold: threshold });
    const runner = new ExternalStorageRunner(storage);
    const small = toPayload('small');
    const justBelow = toPayload('y'.repeat(499));
    expect(encodedPayloadSize(justBelow)).toBe(threshold - 1);

    const refs = await runner.store([small, big, justBelow]);
    expect(refs[0]).toBe(small);
    expect(refs[2]).toBe(justBelow);
    expect(metadataString(refs[1], 'encoding')).toBe('json/protobuf');
    expect(sizeBytesOf(refs[1])).toBe(threshold);
    expect(driver.objects.size).toBe(1);

    const back = await runner.retrieve(refs);
    expect(back[0]).toBe(small);
    expect(converter.fromPayload(back[1] as Sdk.Payload)).toBe('y'.repeat(500));
  });

  it('routes between two core drivers with selectBySize and retrieves by driver name', async () => {
    const small = new MapDriver('small');
    const large = new MapDriver('large');
    const selector = selectBySize([{ below: 200, use: small }, { use: large }]);
    const storage = new Sdk.ExternalStorage({
      drivers: selector.drivers,
      driverSelector: selector,
      payloadSizeThreshold: 0,
    });
    const runner = new ExternalStorageRunner(storage);
    const payloads = [toPayload('a'), toPayload('b'.repeat(1000)), toPayload({ c: 1 }), toPayload('d'.repeat(5000))];

    const refs = await runner.store(payloads, {
      target: { kind: 'activity', namespace: 'default', type: 'Capture/Charge' },
    });
    const names = refs.map(
      (r) => (JSON.parse(decode(r.data ?? new Uint8Array(0))) as { driverName: string }).driverName,
    );
    expect(names).toEqual(['small', 'large', 'small', 'large']);
    expect(small.storeCalls).toBe(1);
    expect(large.storeCalls).toBe(1);
    expect(small.objects.size).toBe(2);
    expect(large.objects.size).toBe(2);

    // Retrieval goes by name, not position: reversed order still works.
    const back = await runner.retrieve([...refs].reverse());
    expect(back.map((p) => converter.fromPayload(p))).toEqual(
      ['a', 'b'.repeat(1000), { c: 1 }, 'd'.repeat(5000)].reverse(),
    );
  });

  it('routes with selectByTarget inside ExternalStorage', async () => {
    const billing = new MapDriver('billing');
    const other = new MapDriver('other');
    const selector = selectByTarget({ rules: [{ namespace: 'billing', use: billing }], fallback: other });
    const storage = new Sdk.ExternalStorage({
      drivers: [...selector.drivers],
      driverSelector: selector,
      payloadSizeThreshold: 0,
    });
    const runner = new ExternalStorageRunner(storage);
    await runner.store([toPayload(1)], { target: { kind: 'workflow', namespace: 'billing' } });
    await runner.store([toPayload(2)], { target: { kind: 'workflow', namespace: 'default' } });
    await runner.store([toPayload(3)]);
    expect(billing.objects.size).toBe(1);
    expect(other.objects.size).toBe(2);
  });

  it('an SDK-only driver passes through core selectors', async () => {
    const sdkOnly = new SdkOnlyDriver();
    const selector = selectBySize([{ use: sdkOnly }]);
    expect(selector({}, {})).toBe(sdkOnly);
    expect(selector.drivers).toEqual([sdkOnly]);
  });

  it('propagates a core driver error through the SDK runner', async () => {
    const driver = new MapDriver();
    const storage = new Sdk.ExternalStorage({ drivers: [driver], payloadSizeThreshold: 0 });
    const runner = new ExternalStorageRunner(storage);
    const refs = await runner.store([toPayload('gone')]);
    driver.objects.clear();
    await expect(runner.retrieve(refs)).rejects.toMatchObject({ code: 'E_NOT_FOUND', driverName: 'map' });
  });
});
