/**
 * The conformance suite.
 *
 * @module
 */
import assert from 'node:assert/strict';
import {
  encodePayload,
  isStorageDriverError,
  type Payload,
  type StorageDriver,
  StorageDriverClaim,
  StorageDriverErrorCode,
  type StorageDriverTargetInfo,
  sha256Hex,
} from '@x/storage-driver-core';
import { assertPayloadEqual, assertRejectsWithCode, makePayload, pseudoRandomBytes } from './assertions';
import {
  type ConformanceTestApi,
  DEFAULT_CONFORMANCE_CAPABILITIES,
  type HarnessDriverOptions,
  type StorageDriverHarness,
} from './harness';
import { registerHostileInputTests } from './hostile';
import { registerLifecycleTests } from './lifecycle';

const KiB = 1024;
const MiB = 1024 * KiB;

/** Hostile ids every target-scoped driver must round-trip. */
export const HOSTILE_IDS: readonly string[] = [
  '..',
  '.',
  '',
  '/',
  '../../../../etc/passwd',
  '%2F',
  'a/b/../c',
  'nul\u0000byte',
  'üñíçødé ✓ 日本語 🚀',
  '\\windows\\path',
  '~home',
  'x'.repeat(1000),
  'é'.repeat(1000),
];

function cloneClaim(claim: StorageDriverClaim, changes: Record<string, string | undefined>): StorageDriverClaim {
  const data: Record<string, string> = { ...claim.claimData };
  for (const [k, v] of Object.entries(changes)) {
    if (v === undefined) delete data[k];
    else data[k] = v;
  }
  return new StorageDriverClaim(data);
}

/** Replaces every occurrence of `from` in every claim field (used to forge a never-stored object). */
function rewriteClaim(claim: StorageDriverClaim, from: string, to: string): StorageDriverClaim {
  const data: Record<string, string> = {};
  for (const [k, v] of Object.entries(claim.claimData)) data[k] = v.split(from).join(to);
  return new StorageDriverClaim(data);
}

function claimHash(claim: StorageDriverClaim): string {
  const h = claim.claimData['hash_value'] ?? claim.claimData['hashValue'];
  assert.ok(typeof h === 'string', 'claim has no hash_value');
  return h;
}

/**
 * Registers the conformance suite with `api` (your runner's `describe/it/beforeEach/afterEach`)
 * for the driver `harness` creates. Each test gets fresh drivers over an isolated store; all are
 * destroyed after the test. Set your runner's timeout to at least 60 s (8 MiB round trips).
 */
export function runStorageDriverConformance<D extends StorageDriver>(
  api: ConformanceTestApi,
  harness: StorageDriverHarness<D>,
): void {
  const caps = { ...DEFAULT_CONFORMANCE_CAPABILITIES, ...harness.capabilities };
  const hooks = harness.hooks ?? {};
  const { describe, it, afterEach } = api;
  const created: D[] = [];

  const create = async (options?: HarnessDriverOptions): Promise<D> => {
    const d = await harness.create(options);
    created.push(d);
    return d;
  };
  const reopen = async (d: D): Promise<D> => {
    assert.ok(harness.reopen);
    const r = await harness.reopen(d);
    created.push(r);
    return r;
  };
  afterEach(async () => {
    // Destroy every driver even if one destroy fails; report the first failure.
    const results = await Promise.allSettled(created.splice(0).map(async (d) => harness.destroy?.(d)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  });

  const roundTrip = async (driver: D, payloads: Payload[], target?: StorageDriverTargetInfo) => {
    const claims = await driver.store(target ? { target } : {}, payloads);
    assert.ok(Array.isArray(claims), 'store must resolve to an array');
    assert.equal(claims.length, payloads.length, 'store must return one claim per payload');
    for (const c of claims) {
      assert.ok(c && typeof c.claimData === 'object', 'claim must have claimData');
      for (const [k, v] of Object.entries(c.claimData))
        assert.equal(typeof v, 'string', `claimData.${k} must be a string`);
    }
    // Claims travel through workflow history as JSON maps.
    const fromHistory = claims.map((c) => new StorageDriverClaim(JSON.parse(JSON.stringify(c.claimData))));
    const back = await driver.retrieve({}, fromHistory);
    assert.ok(Array.isArray(back), 'retrieve must resolve to an array');
    assert.equal(back.length, payloads.length, 'retrieve must return one payload per claim');
    for (const [i, p] of back.entries()) assertPayloadEqual(p, payloads[i] as Payload, `payload ${i}`);
    return claims;
  };

  const skip = (name: string, why: string) => {
    if (typeof it.skip === 'function') it.skip(`${name} (${why})`, () => {});
    else it(`${name} (skipped: ${why})`, () => {});
  };
  const count = hooks.countObjects;
  /** Registers a test that needs `hooks.countObjects`, or a skip saying so. */
  const itCounting = (name: string, fn: (countObjects: (d: D) => Promise<number>) => Promise<void>) => {
    if (count) it(name, () => fn(count));
    else skip(name, 'hooks.countObjects not provided');
  };

  describe(`storage driver conformance: ${harness.type}`, () => {
    describe('identity', () => {
      it('has the declared type and default name', async () => {
        const d = await create();
        assert.equal(d.type, harness.type);
        assert.equal(d.name, harness.defaultName);
        assert.ok(d.name.length > 0 && d.type.length > 0);
      });
      if (caps.customName) {
        it('accepts a custom name and keeps its type', async () => {
          const d = await create({ name: 'custom-instance-7' });
          assert.equal(d.name, 'custom-instance-7');
          assert.equal(d.type, harness.type);
          await roundTrip(d, [makePayload('named')]);
        });
        if (caps.coreClaims) {
          it('rejects an invalid name with E_CONFIG', async () => {
            for (const name of ['', 'bad\u0000name', 'x'.repeat(257)]) {
              await assertRejectsWithCode(
                Promise.resolve().then(() => create({ name })),
                StorageDriverErrorCode.CONFIG,
                `name ${JSON.stringify(name.slice(0, 20))}`,
              );
            }
          });
        }
      } else skip('accepts a custom name', 'capabilities.customName is false');
    });

    describe('round trip', () => {
      it('empty batch → [] for store and retrieve', async () => {
        const d = await create();
        assert.deepEqual(await d.store({}, []), []);
        assert.deepEqual(await d.retrieve({}, []), []);
      });
      it('empty data, absent data, absent metadata, empty metadata', async () => {
        const d = await create();
        await roundTrip(d, [
          { metadata: { encoding: new TextEncoder().encode('binary/null') }, data: new Uint8Array(0) },
          { metadata: { encoding: new TextEncoder().encode('binary/null') } },
          { data: new Uint8Array([1, 2, 3]) },
          { metadata: {}, data: new Uint8Array([4]) },
          {},
        ]);
      });
      it('binary metadata values and unicode', async () => {
        const d = await create();
        await roundTrip(d, [
          makePayload('x', { bin: new Uint8Array([0, 255, 0, 128, 10, 13]), empty: new Uint8Array(0) }),
          makePayload('日本語 ✓ 🚀 üñí', { 'ключ 🔑': 'значение', '': 'empty key' }),
        ]);
      });
      it('0-byte and 1-byte data', async () => {
        const d = await create();
        await roundTrip(d, [
          makePayload(new Uint8Array(0)),
          makePayload(new Uint8Array([0])),
          makePayload(new Uint8Array([255])),
        ]);
      });
      it('256 KiB payload', async () => {
        const d = await create();
        await roundTrip(d, [makePayload(pseudoRandomBytes(256 * KiB, 7))]);
      });
      if (caps.largePayloads) {
        it('8 MiB payload', async () => {
          const d = await create();
          await roundTrip(d, [makePayload(pseudoRandomBytes(8 * MiB, 8))]);
        });
      } else skip('8 MiB payload', 'capabilities.largePayloads is false');
      it('100 payloads in one batch keep order and arity', async () => {
        const d = await create();
        const payloads = Array.from({ length: 100 }, (_, i) => makePayload(`payload #${i}`, { i: String(i) }));
        const claims = await roundTrip(d, payloads);
        const unique = new Set(claims.map((c) => JSON.stringify(c.claimData)));
        assert.equal(unique.size, 100, 'distinct payloads must get distinct claims');
      });
      it('retrieve in a different order and with repeats', async () => {
        const d = await create();
        const payloads = [makePayload('a'), makePayload('b'), makePayload('c')];
        const claims = await d.store({}, payloads);
        const order = [2, 0, 2, 1, 0];
        const back = await d.retrieve(
          {},
          order.map((i) => claims[i] as StorageDriverClaim),
        );
        for (const [j, p] of back.entries()) assertPayloadEqual(p, payloads[order[j] as number] as Payload);
        back[0]?.data?.fill(0);
        assertPayloadEqual(back[2] as Payload, payloads[2] as Payload, 'repeat must not share mutable bytes');
      });
      it('does not keep references to the caller’s buffers', async () => {
        const d = await create();
        const data = pseudoRandomBytes(4096, 3);
        const original = data.slice();
        const claims = await d.store({}, [makePayload(data)]);
        data.fill(0);
        const [back] = await d.retrieve({}, claims);
        assertPayloadEqual(back as Payload, makePayload(original));
      });
    });

    describe('dedup', () => {
      it('identical payloads in one batch get identical claims', async () => {
        const d = await create();
        const p = makePayload('same bytes');
        const claims = await roundTrip(d, [p, makePayload('other'), { ...p }, p]);
        assert.deepEqual(claims[0]?.claimData, claims[2]?.claimData);
        assert.deepEqual(claims[0]?.claimData, claims[3]?.claimData);
        assert.notDeepEqual(claims[0]?.claimData, claims[1]?.claimData);
      });
      itCounting('identical payloads in one batch are stored as one object', async (countObjects) => {
        const d = await create();
        const p = makePayload('same bytes');
        await d.store({}, [p, makePayload('other'), { ...p }, p]);
        assert.equal(await countObjects(d), 2);
      });
      it('storing again gives the same claim', async () => {
        const d = await create();
        const p = makePayload('again');
        const [first] = await d.store({}, [p]);
        const [second] = await d.store({}, [p]);
        assert.deepEqual(second?.claimData, first?.claimData);
      });
      itCounting('storing again writes no new object', async (countObjects) => {
        const d = await create();
        const p = makePayload('again');
        await d.store({}, [p]);
        const before = await countObjects(d);
        await d.store({}, [p]);
        assert.equal(await countObjects(d), before);
      });
      it('50 concurrent stores of the same payload all succeed with the same claim', async () => {
        const d = await create();
        const p = makePayload(pseudoRandomBytes(64 * KiB, 50));
        const results = await Promise.all(Array.from({ length: 50 }, () => d.store({}, [p])));
        for (const r of results) assert.deepEqual(r[0]?.claimData, results[0]?.[0]?.claimData);
        await roundTrip(d, [p]);
      });
      itCounting('50 concurrent stores of the same payload leave one stored object', async (countObjects) => {
        const d = await create();
        const p = makePayload(pseudoRandomBytes(64 * KiB, 51));
        await Promise.all(Array.from({ length: 50 }, () => d.store({}, [p])));
        assert.equal(await countObjects(d), 1);
      });
    });

    if (harness.reopen) {
      it('a second instance with the same configuration retrieves what the first stored', async () => {
        const d = await create();
        const payloads = [makePayload('shared'), makePayload(pseudoRandomBytes(1000, 9))];
        const claims = await d.store({}, payloads);
        const other = await reopen(d);
        const back = await other.retrieve({}, claims);
        for (const [i, p] of back.entries()) assertPayloadEqual(p, payloads[i] as Payload);
      });
    } else skip('a second instance retrieves what the first stored', 'harness.reopen not provided');

    describe('targets', () => {
      const run = '7a1c1a47-9f5c-4e3a-8f5e-0b9d2f6c1e11';
      it('no target, workflow target and activity target round-trip', async () => {
        const d = await create();
        const p = makePayload('scoped');
        await roundTrip(d, [p], undefined);
        await roundTrip(d, [p], { kind: 'workflow', namespace: 'default', id: 'wf-1', runId: run, type: 'MyWorkflow' });
        await roundTrip(d, [p], { kind: 'activity', namespace: 'default', id: 'act-1', type: 'MyActivity' });
        await roundTrip(d, [p], { kind: 'workflow', namespace: 'default' });
      });
      it('the same payload for different targets gets different claims', async () => {
        const d = await create();
        const p = makePayload('per-target');
        const [a] = await d.store({ target: { kind: 'workflow', namespace: 'ns', id: 'a', runId: run, type: 'T' } }, [
          p,
        ]);
        const [b] = await d.store({ target: { kind: 'workflow', namespace: 'ns', id: 'b', runId: run, type: 'T' } }, [
          p,
        ]);
        assert.notDeepEqual(a?.claimData, b?.claimData);
      });
      for (const [i, id] of HOSTILE_IDS.entries()) {
        it(`hostile id #${i} (${JSON.stringify(id.length > 24 ? `${id.slice(0, 12)}…×${id.length}` : id)}) round-trips in every field`, async () => {
          const d = await create();
          const p = makePayload(`hostile ${i}`);
          await roundTrip(d, [p], { kind: 'workflow', namespace: id, id, runId: id, type: id });
          await roundTrip(d, [p], { kind: 'activity', namespace: id, id, runId: id, type: id });
        });
      }
    });

    describe('errors', () => {
      if (caps.coreClaims) {
        it('a claim for an object that was never stored → E_NOT_FOUND', async () => {
          const d = await create();
          const [claim] = await d.store({}, [makePayload('present')]);
          assert.ok(claim);
          const forged = rewriteClaim(claim, claimHash(claim), sha256Hex(new TextEncoder().encode('never stored')));
          await assertRejectsWithCode(d.retrieve({}, [forged]), StorageDriverErrorCode.NOT_FOUND);
        });
      }
      if (hooks.remove) {
        it('a deleted object → E_NOT_FOUND (whole batch fails)', async () => {
          const d = await create();
          const claims = await d.store({}, [makePayload('keep'), makePayload('delete me')]);
          await hooks.remove?.(d, claims[1] as StorageDriverClaim);
          await assertRejectsWithCode(d.retrieve({}, claims), StorageDriverErrorCode.NOT_FOUND);
        });
      } else skip('a deleted object → E_NOT_FOUND', 'hooks.remove not provided');
      if (hooks.corrupt) {
        it('tampered stored bytes → E_INTEGRITY', async () => {
          const d = await create();
          const [claim] = await d.store({}, [makePayload(pseudoRandomBytes(2048, 11))]);
          await hooks.corrupt?.(d, claim as StorageDriverClaim);
          await assertRejectsWithCode(d.retrieve({}, [claim as StorageDriverClaim]), StorageDriverErrorCode.INTEGRITY);
        });
      } else skip('tampered stored bytes → E_INTEGRITY', 'hooks.corrupt not provided');

      if (caps.coreClaims) {
        it('a claim whose hash does not match the object → E_INTEGRITY', async () => {
          const d = await create();
          const [claim] = await d.store({}, [makePayload('one')]);
          const other = sha256Hex(encodePayload(makePayload('two')));
          const wrong = cloneClaim(claim as StorageDriverClaim, { hash_value: other });
          await assertRejectsWithCode(d.retrieve({}, [wrong]), StorageDriverErrorCode.INTEGRITY);
        });
        it('missing, unknown or malformed hash fields → E_INVALID_CLAIM', async () => {
          const d = await create();
          const [claim] = await d.store({}, [makePayload('hash')]);
          const c = claim as StorageDriverClaim;
          const variants: [string, StorageDriverClaim][] = [
            ['no hash_algorithm', cloneClaim(c, { hash_algorithm: undefined, hashAlgorithm: undefined })],
            ['no hash_value', cloneClaim(c, { hash_value: undefined, hashValue: undefined })],
            ['unknown algorithm', cloneClaim(c, { hash_algorithm: 'md5' })],
            ['upper-case SHA256', cloneClaim(c, { hash_algorithm: 'SHA256' })],
            ['short digest', cloneClaim(c, { hash_value: 'abc' })],
            ['upper-case digest', cloneClaim(c, { hash_value: claimHash(c).toUpperCase() })],
          ];
          for (const [why, v] of variants)
            await assertRejectsWithCode(d.retrieve({}, [v]), StorageDriverErrorCode.INVALID_CLAIM, why);
        });
        it('accepts camelCase hashAlgorithm/hashValue (official TypeScript S3 driver spelling)', async () => {
          const d = await create();
          const p = makePayload('camel');
          const [claim] = await d.store({}, [p]);
          const c = claim as StorageDriverClaim;
          const camel = cloneClaim(c, {
            hash_algorithm: undefined,
            hash_value: undefined,
            hashAlgorithm: 'sha256',
            hashValue: claimHash(c),
          });
          const [back] = await d.retrieve({}, [camel]);
          assertPayloadEqual(back as Payload, p);
        });
      }
      if (caps.coreClaims && caps.strictClaimKeys) {
        it('hostile claim keys → E_INVALID_CLAIM', async () => {
          const d = await create();
          const [claim] = await d.store({}, [makePayload('target')]);
          const c = claim as StorageDriverClaim;
          const k = caps.claimKeyField;
          const key = c.claimData[k] as string;
          const hash = claimHash(c);
          const hostile = [
            '../../../../etc/passwd',
            '/etc/passwd',
            `/${key}`,
            `../${key}`,
            `v0/../../../../etc/passwd`,
            `${key}/../../../../etc/passwd`,
            `v0/d/sha256/../../../${hash}`,
            'C:\\Windows\\win.ini',
            `v0\\d\\sha256\\${hash}`,
            `${key}\u0000`,
            'x'.repeat(100_000),
            '',
          ];
          for (const h of hostile) {
            await assertRejectsWithCode(
              d.retrieve({}, [cloneClaim(c, { [k]: h })]),
              StorageDriverErrorCode.INVALID_CLAIM,
              `key ${JSON.stringify(h.slice(0, 60))}`,
            );
          }
          await assertRejectsWithCode(
            d.retrieve({}, [cloneClaim(c, { [k]: undefined })]),
            StorageDriverErrorCode.INVALID_CLAIM,
            'missing key',
          );
          for (const [i, extra] of (hooks.hostileClaims?.(c) ?? []).entries()) {
            await assertRejectsWithCode(
              d.retrieve({}, [extra]),
              StorageDriverErrorCode.INVALID_CLAIM,
              `hooks.hostileClaims #${i}`,
            );
          }
        });
        it('malformed claim maps → E_INVALID_CLAIM, and one bad claim fails the batch before any read', async () => {
          const d = await create();
          const claims = await d.store({}, [makePayload('good')]);
          const bad = [
            { claimData: null },
            { claimData: [] },
            {
              claimData: { key: 42, hash_algorithm: 'sha256', hash_value: claimHash(claims[0] as StorageDriverClaim) },
            },
            {},
          ] as unknown as StorageDriverClaim[];
          for (const [i, b] of bad.entries()) {
            await assertRejectsWithCode(
              d.retrieve({}, [...claims, b]),
              StorageDriverErrorCode.INVALID_CLAIM,
              `malformed claim #${i}`,
            );
          }
        });
        if (hooks.plantOutside) {
          it('nothing outside the store is read through a claim', async () => {
            const d = await create();
            const planted = makePayload('outside the store');
            const bytes = encodePayload(planted);
            const keys = await hooks.plantOutside?.(d, bytes);
            const [claim] = await d.store({}, [makePayload('inside')]);
            for (const key of keys ?? []) {
              const forged = new StorageDriverClaim({
                ...(claim as StorageDriverClaim).claimData,
                [caps.claimKeyField]: key,
                hash_algorithm: 'sha256',
                hash_value: sha256Hex(bytes),
              });
              await assertRejectsWithCode(
                d.retrieve({}, [forged]),
                StorageDriverErrorCode.INVALID_CLAIM,
                `planted key ${key}`,
              );
            }
          });
        } else skip('nothing outside the store is read', 'hooks.plantOutside not provided');
      }
      it('misuse of the API is a TypeError', async () => {
        const d = await create();
        await assert.rejects(d.store({}, 'nope' as unknown as Payload[]), TypeError);
        await assert.rejects(d.retrieve({}, {} as unknown as StorageDriverClaim[]), TypeError);
        await assert.rejects(d.store({}, [{ data: 'not bytes' } as unknown as Payload]), TypeError);
      });
    });

    describe('lifecycle', () => {
      registerLifecycleTests({
        it,
        skip,
        create: (options) => create(options),
        caps,
        hooks,
        stress: harness.lifecycleStress,
      });
    });

    describe('hostile input (property-based)', () => {
      registerHostileInputTests({
        it,
        skip,
        create: () => create(),
        caps,
        hooks,
        options: harness.hostileInput,
      });
    });

    describe('size limit', () => {
      if (caps.maxPayloadSize) {
        it('over maxPayloadSize → E_TOO_LARGE (not retryable), and the small payloads were not stored', async () => {
          const d = await create({ maxPayloadSize: 4096 });
          const small = makePayload(pseudoRandomBytes(100, 1));
          const empty = makePayload(new Uint8Array(0));
          const big = makePayload(pseudoRandomBytes(5000, 2));
          const err = await assertRejectsWithCode(d.store({}, [small, empty, big]), StorageDriverErrorCode.TOO_LARGE);
          assert.equal(isStorageDriverError(err) && err.retryable, false, 'E_TOO_LARGE is not retryable');
          // With countObjects, 'nothing of a too-large batch is written' below proves this by counting.
          if (caps.coreClaims && !count) {
            // The claim the small payload would have had must not resolve.
            const probe = await create();
            const [claim] = await probe.store({}, [small]);
            await assertRejectsWithCode(
              d.retrieve({}, [claim as StorageDriverClaim]),
              StorageDriverErrorCode.NOT_FOUND,
              'payload of the rejected batch',
            );
          }
          await roundTrip(d, [small]);
        });
        itCounting('nothing of a too-large batch is written', async (countObjects) => {
          const d = await create({ maxPayloadSize: 4096 });
          const before = await countObjects(d);
          await assertRejectsWithCode(
            d.store({}, [makePayload(pseudoRandomBytes(100, 5)), makePayload(pseudoRandomBytes(5000, 6))]),
            StorageDriverErrorCode.TOO_LARGE,
          );
          assert.equal(await countObjects(d), before, 'nothing of the batch may be written');
        });
        it('a payload whose serialized size equals maxPayloadSize is accepted', async () => {
          const probe = makePayload(pseudoRandomBytes(1000, 4));
          const d = await create({ maxPayloadSize: encodePayload(probe).length });
          await roundTrip(d, [probe]);
        });
      } else skip('maxPayloadSize', 'capabilities.maxPayloadSize is false');
    });

    describe('abort', () => {
      it('a pre-aborted signal rejects store and retrieve with E_ABORTED', async () => {
        const d = await create();
        const claims = await d.store({}, [makePayload('abort')]);
        const ac = new AbortController();
        ac.abort(new Error('caller gave up'));
        const never = makePayload('never written');
        const before = count ? await count(d) : undefined;
        await assertRejectsWithCode(d.store({ abortSignal: ac.signal }, [never]), StorageDriverErrorCode.ABORTED);
        await assertRejectsWithCode(d.retrieve({ abortSignal: ac.signal }, claims), StorageDriverErrorCode.ABORTED);
        if (count) {
          assert.equal(await count(d), before, 'pre-aborted store must write nothing');
        } else if (caps.coreClaims) {
          const [claim] = await (await create()).store({}, [never]);
          await assertRejectsWithCode(
            d.retrieve({}, [claim as StorageDriverClaim]),
            StorageDriverErrorCode.NOT_FOUND,
            'pre-aborted store must write nothing',
          );
        }
      });
      const abortBatch = async (d: D) => {
        const n = 200;
        const payloads = Array.from({ length: n }, (_, i) => makePayload(pseudoRandomBytes(64 * KiB, 1000 + i)));
        const ac = new AbortController();
        const pending = d.store({ abortSignal: ac.signal }, payloads);
        setImmediate(() => ac.abort(new Error('sibling failed')));
        await assertRejectsWithCode(pending, StorageDriverErrorCode.ABORTED);
        return n;
      };
      it('aborting mid-batch rejects with E_ABORTED', async () => {
        await abortBatch(await create());
      });
      if (caps.batchedWrites) {
        skip('aborting mid-batch stops the work', 'capabilities.batchedWrites: one round trip per batch');
      } else {
        itCounting('aborting mid-batch stops the work', async (countObjects) => {
          const d = await create();
          const n = await abortBatch(d);
          await new Promise((r) => setTimeout(r, 200));
          const stored = await countObjects(d);
          assert.ok(stored < n, `work must stop after abort (stored ${stored} of ${n})`);
        });
      }
    });
  });
}
