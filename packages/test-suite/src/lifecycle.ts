/**
 * The lifecycle group of the conformance suite (DESIGN §8): what a driver declares in its
 * `capabilities` manifest — `list`, `objectIdOf`, `delete`, `deleteExpired`, `close` and
 * last-referenced times — is tested against its real backend; what it does not declare is
 * reported as skipped.
 *
 * @module
 */
import assert from 'node:assert/strict';
import {
  encodePayload,
  isStorageDriverError,
  type Payload,
  parseStorageKey,
  readClaimHash,
  type StorageDriver,
  type StorageDriverCapabilities,
  type StorageDriverClaim,
  StorageDriverErrorCode,
  type StorageDriverLifecycle,
  type StorageDriverTargetInfo,
  type StoredObject,
} from '@x/storage-driver-core';
import { assertRejectsWithCode, makePayload, pseudoRandomBytes } from './assertions';
import type { ConformanceCapabilities, HarnessDriverOptions, StorageDriverHarnessHooks } from './harness';

/** A driver with the whole lifecycle surface, as the group uses it once the manifest is checked. */
type LifecycleDriver = StorageDriver & Required<StorageDriverLifecycle>;

/** Settings of the concurrency stress test of `deleteExpired`. */
export interface LifecycleStressOptions {
  /** Concurrent callers storing and re-storing payloads while `deleteExpired` runs. Default: 16. */
  callers?: number;
  /** Old objects stored before the run; half of them are re-stored during it. Default: 200. */
  objects?: number;
}

/** What {@link registerLifecycleTests} needs from the suite. */
export interface LifecycleContext<D extends StorageDriver> {
  /** Declares one test. */
  it: (name: string, fn: () => Promise<void>) => void;
  /** Declares a test as skipped, saying why. */
  skip: (name: string, why: string) => void;
  /** Creates a driver (destroyed after the test). */
  create: (options?: HarnessDriverOptions) => Promise<D>;
  /** The harness's capabilities, defaults applied. */
  caps: ConformanceCapabilities;
  /** The harness's backend hooks. */
  hooks: StorageDriverHarnessHooks<D>;
  /** Size of the concurrency stress test of `deleteExpired`; `undefined` for the defaults. */
  stress: LifecycleStressOptions | undefined;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

const target = (namespace: string, id: string): StorageDriverTargetInfo => ({
  kind: 'workflow',
  namespace,
  type: 'LifecycleWorkflow',
  id,
  runId: 'run-1',
});

/** The claim fields of `claim` that point at the object (everything but the hash fields). */
function locationFields(claim: StorageDriverClaim): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(claim.claimData)) {
    if (!['hash_algorithm', 'hash_value', 'hashAlgorithm', 'hashValue'].includes(k)) out[k] = v;
  }
  return out;
}

async function collect(iterable: AsyncIterable<StoredObject>): Promise<StoredObject[]> {
  const out: StoredObject[] = [];
  for await (const o of iterable) out.push(o);
  return out;
}

/** Registers the lifecycle tests (called inside the suite's describe block). */
export function registerLifecycleTests<D extends StorageDriver>(ctx: LifecycleContext<D>): void {
  const { it, skip, caps, hooks } = ctx;
  const declared = caps.lifecycle;
  if (declared === undefined) {
    skip('lifecycle (list, delete, deleteExpired, close)', 'capabilities.lifecycle not declared');
    return;
  }
  const olderThan = caps.lifecycleOlderThan;
  const lifecycleTimes = declared.lastReferenced !== 'none';

  /**
   * A driver with a controllable clock when the harness supports one. `age(claims, ms)` makes
   * objects look `ms` older: through `hooks.age`, by moving the clock (which ages every object),
   * or by waiting (which ages every object too).
   */
  const open = async (options: HarnessDriverOptions = {}) => {
    let offset = 0;
    const clock = () => Date.now() + offset;
    const d = (await ctx.create(caps.clock ? { ...options, clock } : options)) as D & LifecycleDriver;
    const age = async (claims: StorageDriverClaim[], ms: number) => {
      if (hooks.age) await hooks.age(d, claims, ms);
      else if (caps.clock) offset += ms;
      else await sleep(ms + caps.timeResolution);
    };
    return { d, age, now: clock };
  };

  it('capabilities: a well-formed manifest that matches what the harness declares', async () => {
    const d = (await ctx.create()) as D & Partial<StorageDriverLifecycle>;
    const c = d.capabilities as StorageDriverCapabilities | undefined;
    assert.ok(c !== undefined && typeof c === 'object', 'driver has no capabilities manifest');
    for (const k of ['list', 'delete', 'deleteExpired', 'close', 'batchedWrites'] as const) {
      assert.equal(typeof c[k], 'boolean', `capabilities.${k} must be a boolean`);
    }
    assert.ok(['native', 'sweep', 'none'].includes(c.expiry), `capabilities.expiry is ${String(c.expiry)}`);
    assert.ok(['exact', 'partial', 'none'].includes(c.lastReferenced), 'capabilities.lastReferenced');
    for (const k of ['list', 'delete', 'deleteExpired', 'close', 'lastReferenced'] as const) {
      assert.equal(
        c[k],
        declared[k],
        `capabilities.${k} is ${String(c[k])}; the harness declares ${String(declared[k])}`,
      );
    }
    if (c.list) {
      assert.equal(typeof d.list, 'function', 'list capability without list()');
      assert.equal(typeof d.objectIdOf, 'function', 'list capability without objectIdOf()');
    }
    if (c.delete) assert.equal(typeof d.delete, 'function', 'delete capability without delete()');
    if (c.deleteExpired) {
      assert.equal(typeof d.deleteExpired, 'function', 'deleteExpired capability without deleteExpired()');
      assert.ok(c.list && c.lastReferenced !== 'none', 'deleteExpired needs list and last-referenced times');
    }
    if (c.close) assert.equal(typeof d.close, 'function', 'close capability without close()');
  });

  if (declared.list) {
    it('list finds every stored object with its size, storage key and the id its claims map to', async () => {
      const { d } = await open();
      const payloads = [makePayload('list a'), makePayload(pseudoRandomBytes(3000, 7)), makePayload('list a')];
      const claims = [
        ...(await d.store({ target: target('list-ns', 'wf-1') }, payloads)),
        ...(await d.store({}, [makePayload('no target')])),
      ];
      const listed = await collect(d.list());
      const byId = new Map(listed.map((o) => [o.id, o]));
      assert.equal(listed.length, byId.size, 'list yielded an object twice');
      assert.equal(listed.length, 3, `list yielded ${listed.length} objects, 3 were stored`);
      const all = [...payloads, makePayload('no target')];
      for (const [i, claim] of claims.entries()) {
        const id = d.objectIdOf(claim);
        assert.equal(id, d.objectIdOf(claim.claimData), 'objectIdOf(claim) and objectIdOf(claimData) differ');
        const o = byId.get(id);
        assert.ok(o, `claim ${i}'s object (${id}) was not listed`);
        assert.equal(o.size, encodePayload(all[i] as Payload).byteLength, `size of object ${i}`);
        const parsed = parseStorageKey(o.key, { canonical: false });
        assert.equal(parsed.sha256, readClaimHash(claim.claimData), `key of object ${i} names another digest`);
        assert.deepEqual({ ...o.location }, locationFields(claim), `location of object ${i}`);
        if (declared.lastReferenced === 'exact') {
          assert.ok(o.lastReferenced instanceof Date, `object ${i} has no lastReferenced`);
        }
      }
      assert.throws(
        () => d.objectIdOf({ key: '../../etc/passwd', hash_algorithm: 'sha256', hash_value: '0'.repeat(64) }),
        (e: unknown) => isStorageDriverError(e, StorageDriverErrorCode.INVALID_CLAIM),
        'objectIdOf must reject a hostile claim with E_INVALID_CLAIM',
      );
    });

    it('list({ prefix }) yields only the objects under a storage-key prefix', async () => {
      const { d } = await open();
      await d.store({ target: target('prefix-a', 'wf') }, [makePayload('a1'), makePayload('a2')]);
      await d.store({ target: target('prefix-b', 'wf') }, [makePayload('b1')]);
      await d.store({}, [makePayload('none')]);
      const a = await collect(d.list({ prefix: 'v0/ns/prefix-a/' }));
      assert.equal(a.length, 2, `prefix v0/ns/prefix-a/ listed ${a.length}`);
      for (const o of a) assert.ok(o.key.startsWith('v0/ns/prefix-a/'), o.key);
      assert.equal((await collect(d.list({ prefix: 'v0/ns/' }))).length, 3);
      assert.equal((await collect(d.list({ prefix: 'v0/ns/nothing-here/' }))).length, 0);
    });

    it('list rejects with E_ABORTED when aborted mid-listing, and stops when the caller breaks', async () => {
      const { d } = await open();
      await d.store(
        {},
        Array.from({ length: 30 }, (_, i) => makePayload(`abort ${i}`)),
      );
      let seen = 0;
      for await (const _ of d.list()) {
        seen++;
        break;
      }
      assert.equal(seen, 1);
      const ac = new AbortController();
      const listing = (async () => {
        let n = 0;
        for await (const _ of d.list({ signal: ac.signal })) {
          n++;
          if (n === 1) ac.abort(new Error('operator pressed ^C'));
        }
        return n;
      })();
      await assertRejectsWithCode(listing, StorageDriverErrorCode.ABORTED, 'list aborted mid-listing');
      const pre = new AbortController();
      pre.abort();
      await assertRejectsWithCode(collect(d.list({ signal: pre.signal })), StorageDriverErrorCode.ABORTED);
      // The driver still works after an aborted listing.
      assert.equal((await collect(d.list())).length, 30);
    });
  } else skip('list', 'capabilities.lifecycle.list is false');

  if (declared.list && lifecycleTimes) {
    it('list({ olderThan }) yields only objects last referenced longer ago', async () => {
      const { d, age } = await open();
      const old = await d.store({}, [makePayload('old 1'), makePayload('old 2')]);
      await age(old, olderThan + 1000);
      const [fresh] = await d.store({}, [makePayload('fresh')]);
      const listed = await collect(d.list({ olderThan }));
      const ids = new Set(listed.map((o) => o.id));
      assert.deepEqual(ids, new Set(old.map((c) => d.objectIdOf(c))), 'olderThan must yield exactly the old objects');
      assert.ok(!ids.has(d.objectIdOf(fresh as StorageDriverClaim)));
      for (const o of listed)
        assert.ok(o.lastReferenced instanceof Date, 'listed with olderThan but no lastReferenced');
    });

    it('a dedup hit moves lastReferenced forward (first write or dedup hit, never the first upload)', async () => {
      const { d, age, now } = await open();
      const payload = makePayload(pseudoRandomBytes(2048, 21));
      const [claim] = (await d.store({ target: target('dedup', 'wf') }, [payload])) as [StorageDriverClaim];
      await age([claim], olderThan + 1000);
      const id = d.objectIdOf(claim);
      const find = async () => (await collect(d.list())).find((o) => o.id === id);
      const before = (await find())?.lastReferenced;
      assert.ok(before instanceof Date, 'no lastReferenced after the first store');
      assert.ok(before.getTime() <= now() - olderThan, 'aging did not make the object old');
      const restoreStarted = now();
      const [again] = await d.store({ target: target('dedup', 'wf') }, [payload]);
      assert.deepEqual(again?.claimData, claim.claimData, 'a dedup hit returns the same claim');
      const after = (await find())?.lastReferenced;
      assert.ok(after instanceof Date, 'no lastReferenced after the dedup hit');
      assert.ok(
        after.getTime() >= restoreStarted - caps.timeResolution - 1000,
        `a dedup hit must refresh lastReferenced (was ${before.toISOString()}, now ${after.toISOString()}, store at ${new Date(restoreStarted).toISOString()})`,
      );
      assert.equal((await collect(d.list({ olderThan }))).length, 0, 'the re-referenced object is no longer old');
    });
  } else skip('last-referenced times', `capabilities.lifecycle.lastReferenced is ${declared.lastReferenced}`);

  if (declared.delete) {
    it("a deleted object's claim gives E_NOT_FOUND (deleted by listed object or by storage key)", async () => {
      const { d } = await open();
      const claims = await d.store({}, [makePayload('del 1'), makePayload('del 2'), makePayload('keep')]);
      const [c1, c2, keep] = claims as [StorageDriverClaim, StorageDriverClaim, StorageDriverClaim];
      const listed = declared.list ? await collect(d.list()) : [];
      const byListed = listed.find((o) => o.id === d.objectIdOf(c1));
      const first = await d.delete(byListed ? [byListed] : [parseKeyOf(d, c1)]);
      assert.deepEqual(
        { ...first, errors: [...first.errors] },
        { deleted: 1, deletedBytes: byListed ? byListed.size : 0, missing: 0, kept: 0, errors: [] },
      );
      const byKey = listed.find((o) => o.id === d.objectIdOf(c2))?.key ?? parseKeyOf(d, c2);
      const second = await d.delete([byKey]);
      assert.equal(second.deleted, 1, 'delete by storage key');
      await assertRejectsWithCode(d.retrieve({}, [c1]), StorageDriverErrorCode.NOT_FOUND);
      await assertRejectsWithCode(d.retrieve({}, [c2]), StorageDriverErrorCode.NOT_FOUND);
      const [back] = await d.retrieve({}, [keep]);
      assert.ok(back, 'the object not deleted is still there');
    });

    it('deleting a missing object is not an error (counted as missing)', async () => {
      const { d } = await open();
      const [claim] = (await d.store({}, [makePayload('gone twice')])) as [StorageDriverClaim];
      const key = parseKeyOf(d, claim);
      assert.equal((await d.delete([key])).deleted, 1);
      const again = await d.delete([key, key]);
      assert.deepEqual(
        { ...again, errors: [...again.errors] },
        { deleted: 0, deletedBytes: 0, missing: 1, kept: 0, errors: [] },
      );
      const none = await d.delete([]);
      assert.equal(none.deleted + none.missing + none.kept, 0);
      await assertRejectsWithCode(d.delete(['../../etc/passwd']), StorageDriverErrorCode.INVALID_CLAIM);
    });

    if (lifecycleTimes && declared.list) {
      it('delete with referencedBefore keeps an object a store re-referenced after it', async () => {
        const { d, age, now } = await open();
        const claims = await d.store({}, [makePayload('stale'), makePayload('re-referenced')]);
        await age(claims, olderThan + 1000);
        const listed = await collect(d.list({ olderThan }));
        assert.equal(listed.length, 2);
        const cutoff = new Date(now() - olderThan);
        await d.store({}, [makePayload('re-referenced')]); // dedup hit after the listing
        const result = await d.delete(listed, { referencedBefore: cutoff });
        assert.deepEqual({ deleted: result.deleted, kept: result.kept }, { deleted: 1, kept: 1 });
        await assertRejectsWithCode(
          d.retrieve({}, [claims[0] as StorageDriverClaim]),
          StorageDriverErrorCode.NOT_FOUND,
        );
        assert.equal((await d.retrieve({}, [claims[1] as StorageDriverClaim])).length, 1);
      });
    }
  } else skip('delete', 'capabilities.lifecycle.delete is false');

  if (declared.deleteExpired) {
    it('deleteExpired: a dry run deletes nothing and reports what a real run then removes', async () => {
      const { d, age } = await open();
      const old = await d.store({}, [makePayload('expired 1'), makePayload(pseudoRandomBytes(5000, 3))]);
      await age(old, olderThan + 1000);
      const [fresh] = (await d.store({}, [makePayload('fresh')])) as [StorageDriverClaim];
      const oldBytes = (await collect(d.list({ olderThan }))).reduce((n, o) => n + o.size, 0);
      const progress: number[] = [];
      const dry = await d.deleteExpired({ olderThan, dryRun: true, onProgress: (p) => progress.push(p.removed) });
      assert.deepEqual(
        { scanned: dry.scanned, removed: dry.removed, removedBytes: dry.removedBytes, more: dry.more },
        { scanned: 2, removed: 2, removedBytes: oldBytes, more: false },
      );
      assert.ok(progress.length > 0 && progress.at(-1) === 2, 'onProgress reports the final count');
      const afterDryRun = await d
        .retrieve({}, old)
        .catch((e: Error) => assert.fail(`a dry run must delete nothing: ${e.message}`));
      assert.equal(afterDryRun.length, 2, 'a dry run must delete nothing');
      const real = await d.deleteExpired({ olderThan });
      assert.deepEqual(
        { removed: real.removed, removedBytes: real.removedBytes, errors: [...real.errors] },
        { removed: dry.removed, removedBytes: dry.removedBytes, errors: [] },
      );
      for (const c of old) await assertRejectsWithCode(d.retrieve({}, [c]), StorageDriverErrorCode.NOT_FOUND);
      assert.equal((await d.retrieve({}, [fresh])).length, 1, 'a fresh object survives');
      const third = await d.deleteExpired({ olderThan });
      assert.equal(third.removed, 0, 'nothing left to remove');
    });

    it('deleteExpired: limit stops early with more: true', async () => {
      const { d, age } = await open();
      const old = await d.store({}, [makePayload('l1'), makePayload('l2'), makePayload('l3')]);
      await age(old, olderThan + 1000);
      const first = await d.deleteExpired({ olderThan, limit: 2 });
      assert.deepEqual({ removed: first.removed, more: first.more }, { removed: 2, more: true });
      const rest = await d.deleteExpired({ olderThan, limit: 2 });
      assert.deepEqual({ removed: rest.removed, more: rest.more }, { removed: 1, more: false });
    });

    it('deleteExpired defaults olderThan to the ttl, and needs one or the other (E_CONFIG)', async () => {
      const { d } = await open();
      if ((d as { ttl?: unknown }).ttl === undefined) {
        await assertRejectsWithCode(d.deleteExpired(), StorageDriverErrorCode.CONFIG, 'deleteExpired() without ttl');
      }
      const withTtl = (await open({ ttl: 3_600_000 })).d;
      await withTtl.store({}, [makePayload('young')]);
      const r = await withTtl.deleteExpired();
      assert.equal(r.removed, 0, 'an object stored just now is not older than the ttl');
      await assertRejectsWithCode(d.deleteExpired({ olderThan: -1 }), StorageDriverErrorCode.CONFIG);
    });

    it('deleteExpired while callers store and re-store: no claim a store returned points at a deleted object', async () => {
      const callers = ctx.stress?.callers ?? 16;
      const n = ctx.stress?.objects ?? 200;
      const { d, age } = await open();
      const payloads = Array.from({ length: n }, (_, i) => makePayload(`stress ${i} ${'x'.repeat(i % 64)}`));
      const old = await d.store({}, payloads);
      await age(old, olderThan + 1000);
      // Half of the old objects are re-stored once each, in a shuffled order, by the callers: about a
      // third before the run starts, the rest while it runs (together with fresh payloads). Each is
      // stored once, so a wrongly deleted object is not quietly re-created by a later store.
      const reused = payloads.slice(0, Math.floor(n / 2));
      const queue = reused.map((p, i) => ({ p, r: (i * 7919) % reused.length })).sort((a, b) => a.r - b.r);
      const returned: { claims: StorageDriverClaim[]; started: number; at: number }[] = [];
      let next = 0;
      let fresh = 0;
      // The sweep starts once a third of the queue is taken, signalled by the caller that takes it:
      // polling `next` on a timer let fast callers (a driver in memory) empty the queue before the
      // timer fired, and no store returned during the run.
      let thirdTaken = () => {};
      const third = new Promise<void>((resolve) => {
        thirdTaken = resolve;
      });
      const caller = async (c: number) => {
        while (next < queue.length) {
          const { p } = queue[next++] as { p: Payload };
          if (next >= queue.length / 3) thirdTaken();
          const batch = next % 5 === 0 ? [p, makePayload(`fresh ${c} ${fresh++}`)] : [p];
          const started = Date.now();
          returned.push({ claims: await d.store({}, batch), started, at: Date.now() });
          // A store that never waits on I/O (a dedup hit in memory) must not starve the timers.
          await new Promise<void>((resolve) => setImmediate(resolve));
        }
      };
      const running = Array.from({ length: callers }, (_, c) => caller(c));
      let sweepStarted = 0;
      // deleteExpired takes its cutoff (now − olderThan) when called, so the cutoff is at most
      // `cutoffBound`. A store that started after it refreshed its object after the cutoff: its
      // claim must resolve. One that started earlier (a re-store in the run's first third, on a
      // busy machine more than olderThan before the sweep) may have referenced its object before
      // the cutoff, which makes the object legitimately expired: not counted against the driver.
      let cutoffBound = 0;
      let result: Awaited<ReturnType<LifecycleDriver['deleteExpired']>>;
      try {
        if (queue.length > 0) await third;
        sweepStarted = Date.now();
        const sweep = d.deleteExpired({ olderThan });
        cutoffBound = Date.now() - olderThan;
        result = await sweep;
      } finally {
        await Promise.allSettled(running); // the callers end when the queue is empty
      }
      await Promise.all(running);
      assert.deepEqual([...result.errors], [], 'deleteExpired reported errors');
      // Every claim a store returned — during the run (what the contract promises) and before it
      // (re-referenced after aging, so never expired) — must still resolve.
      let during = 0;
      let dangling = 0;
      let expirable = 0;
      let expired = 0;
      for (const { claims, started, at } of returned) {
        if (at >= sweepStarted) during += claims.length;
        const guaranteed = started > cutoffBound;
        if (!guaranteed) expirable += claims.length;
        for (const claim of claims) {
          try {
            await d.retrieve({}, [claim]);
          } catch (e) {
            if (!isStorageDriverError(e, StorageDriverErrorCode.NOT_FOUND)) throw e;
            if (guaranteed) dangling++;
            else expired++;
          }
        }
      }
      const checked = returned.reduce((k, r) => k + r.claims.length, 0) - expirable;
      assert.ok(during > 0, 'no store returned during the run');
      assert.ok(checked > 0, 'no store started after the cutoff');
      assert.ok(
        result.removed >= n - reused.length && result.removed <= n,
        `removed ${result.removed}: every one of the ${n - reused.length} untouched old objects, and only old ones`,
      );
      if (process.env.XSTORAGE_LIFECYCLE_REPORT) {
        // Opt-in report of the stress figures.
        console.log(
          `lifecycle stress ${d.type}: ${callers} callers, ${n} old objects (${reused.length} re-stored once each), ` +
            `${returned.length} stores, ${checked} claims checked (${during} returned during the run), ` +
            `${expirable} from stores started before the cutoff (${expired} of them expired), ` +
            `scanned ${result.scanned}, removed ${result.removed}, dangling ${dangling}`,
        );
      }
      assert.equal(
        dangling,
        0,
        `${dangling} of ${checked} claims (${during} returned during the run) point at deleted objects`,
      );
    });
  } else skip('deleteExpired', 'capabilities.lifecycle.deleteExpired is false');

  if (declared.close) {
    it('close is idempotent, and every later call fails with E_CONFIG', async () => {
      const { d } = await open();
      const [claim] = (await d.store({}, [makePayload('before close')])) as [StorageDriverClaim];
      const first = d.close();
      const second = d.close();
      await first;
      await second;
      await d.close();
      await assertRejectsWithCode(
        d.store({}, [makePayload('after')]),
        StorageDriverErrorCode.CONFIG,
        'store after close',
      );
      await assertRejectsWithCode(d.retrieve({}, [claim]), StorageDriverErrorCode.CONFIG, 'retrieve after close');
      if (declared.list)
        await assertRejectsWithCode(collect(d.list()), StorageDriverErrorCode.CONFIG, 'list after close');
      if (declared.delete) {
        await assertRejectsWithCode(
          d.delete([parseKeyOf(d, claim)]),
          StorageDriverErrorCode.CONFIG,
          'delete after close',
        );
      }
      if (declared.deleteExpired) {
        await assertRejectsWithCode(d.deleteExpired({ olderThan }), StorageDriverErrorCode.CONFIG);
      }
    });
  } else skip('close', 'capabilities.lifecycle.close is false');
}

/** The storage key of the object behind `claim`, found through `list` (drivers' claim keys may carry a prefix). */
function parseKeyOf(d: LifecycleDriver, claim: StorageDriverClaim): string {
  const hash = readClaimHash(claim.claimData);
  for (const v of Object.values(claim.claimData)) {
    const i = v.indexOf('v0/');
    if (i >= 0 && v.endsWith(hash)) return v.slice(i);
    const j = v.indexOf('v0:');
    if (j >= 0 && v.endsWith(hash)) return v.slice(j).split(':').join('/');
  }
  assert.fail(`cannot find the storage key in claim ${JSON.stringify(claim.claimData)} of ${d.type}`);
}
