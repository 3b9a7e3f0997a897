import { execFileSync } from 'node:child_process';
import { getEventListeners } from 'node:events';
import path from 'node:path';
import fc from 'fast-check';
import { abortedError, linkAbortSignals, mapBounded, raceAbort, throwIfAborted } from '../src';
import { deferred, expectCode, expectRejectsCode, expectThrowsCode, rejection, sleep } from './helpers';

describe('abortedError / throwIfAborted', () => {
  it('builds E_ABORTED with the signal reason as cause and the driver name', () => {
    const c = new AbortController();
    const reason = new Error('shutdown');
    c.abort(reason);
    const e = abortedError(c.signal, 'fs');
    expect(e.code).toBe('E_ABORTED');
    expect(e.retryable).toBe(false);
    expect(e.driverName).toBe('fs');
    expect(e.cause).toBe(reason);
  });

  it('throws only when the signal has fired', () => {
    throwIfAborted(undefined);
    const c = new AbortController();
    throwIfAborted(c.signal);
    c.abort('stop');
    const e = expectThrowsCode(() => throwIfAborted(c.signal, 'redis'), 'E_ABORTED');
    expect(e.cause).toBe('stop');
    expect(e.driverName).toBe('redis');
  });
});

describe('linkAbortSignals', () => {
  it('follows any parent, with its reason', () => {
    const a = new AbortController();
    const b = new AbortController();
    const link = linkAbortSignals(a.signal, undefined, b.signal);
    expect(link.signal.aborted).toBe(false);
    b.abort('b went away');
    expect(link.signal.aborted).toBe(true);
    expect(link.signal.reason).toBe('b went away');
    link.dispose();
  });

  it('is aborted immediately when a parent already fired', () => {
    const a = new AbortController();
    a.abort('early');
    const link = linkAbortSignals(undefined, a.signal);
    expect(link.signal.aborted).toBe(true);
    expect(link.signal.reason).toBe('early');
    link.dispose();
  });

  it('can be aborted on its own without touching the parents', () => {
    const a = new AbortController();
    const link = linkAbortSignals(a.signal);
    link.abort('sibling failed');
    expect(link.signal.aborted).toBe(true);
    expect(link.signal.reason).toBe('sibling failed');
    expect(a.signal.aborted).toBe(false);
    link.dispose();
  });

  it('stops following the parents after dispose (no listener left behind)', () => {
    const a = new AbortController();
    const add = jest.spyOn(a.signal, 'addEventListener');
    const remove = jest.spyOn(a.signal, 'removeEventListener');
    const link = linkAbortSignals(a.signal);
    link.dispose();
    expect(add).toHaveBeenCalledTimes(1);
    expect(remove).toHaveBeenCalledTimes(1);
    expect(remove.mock.calls[0]?.[1]).toBe(add.mock.calls[0]?.[1]);
    a.abort();
    expect(link.signal.aborted).toBe(false);
    link.dispose(); // idempotent
  });

  it('takes one listener per in-flight backend request without a MaxListenersExceededWarning', () => {
    // The AWS SDK adds an 'abort' listener per in-flight request to the signal a driver hands it;
    // Node warns past 10. Warnings go to the real process, which jest sandboxes away: a plain node
    // child runs the built output (dist/, built by `tsc -b` before the tests) and reports them.
    // The control is a plain EventTarget: Node 20 warns for a plain AbortSignal past 10 listeners,
    // Node 22 and 24 do not, and every line warns for an EventTarget. `--no-warnings` keeps the
    // control's warning out of the test log (the 'warning' event still fires).
    const script = `
      const { linkAbortSignals } = require(${JSON.stringify(path.join(__dirname, '..', 'dist', 'index.js'))});
      const warnings = [];
      process.on('warning', (w) => warnings.push(w.name));
      const plain = { signal: new EventTarget() };
      const link = linkAbortSignals(new AbortController().signal);
      for (let i = 0; i < 64; i++) link.signal.addEventListener('abort', () => {});
      setImmediate(() => {
        const linked = warnings.length;
        for (let i = 0; i < 11; i++) plain.signal.addEventListener('abort', () => {});
        setImmediate(() => console.log(JSON.stringify({ linked, plain: warnings.length - linked })));
      });`;
    const out = JSON.parse(execFileSync(process.execPath, ['--no-warnings', '-e', script], { encoding: 'utf8' }));
    expect(out).toEqual({ linked: 0, plain: 1 }); // the control proves the child would see the warning
  });

  it('works with no parents at all', () => {
    const link = linkAbortSignals();
    expect(link.signal.aborted).toBe(false);
    link.abort();
    expect(link.signal.aborted).toBe(true);
  });
});

describe('raceAbort', () => {
  it('returns the promise itself when there is no signal', () => {
    const p = Promise.resolve(1);
    expect(raceAbort(p, undefined)).toBe(p);
  });

  it('resolves or rejects with the promise when the signal does not fire', async () => {
    const c = new AbortController();
    await expect(raceAbort(Promise.resolve('ok'), c.signal)).resolves.toBe('ok');
    const err = new Error('backend');
    expect(await rejection(raceAbort(Promise.reject(err), c.signal))).toBe(err);
  });

  it('rejects with E_ABORTED at once for a pre-aborted signal, swallowing the late rejection', async () => {
    const c = new AbortController();
    c.abort('already');
    const d = deferred<number>();
    const e = await expectRejectsCode(raceAbort(d.promise, c.signal, 'pg'), 'E_ABORTED');
    expect(e.driverName).toBe('pg');
    expect(e.cause).toBe('already');
    d.reject(new Error('late')); // must not become an unhandled rejection
    await sleep(0);
  });

  it('rejects with E_ABORTED promptly when the signal fires mid-flight, even if the work never settles', async () => {
    const c = new AbortController();
    const never = new Promise<never>(() => {});
    const started = Date.now();
    setTimeout(() => c.abort('timeout'), 10);
    const e = await expectRejectsCode(raceAbort(never, c.signal), 'E_ABORTED');
    expect(e.cause).toBe('timeout');
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('removes its abort listener once the promise settles', async () => {
    const c = new AbortController();
    const add = jest.spyOn(c.signal, 'addEventListener');
    const remove = jest.spyOn(c.signal, 'removeEventListener');
    await raceAbort(Promise.resolve(1), c.signal);
    await rejection(raceAbort(Promise.reject(new Error('x')), c.signal));
    expect(add).toHaveBeenCalledTimes(2);
    expect(remove).toHaveBeenCalledTimes(2);
  });
});

describe('mapBounded', () => {
  it('rejects a limit that is not a positive integer with TypeError', async () => {
    for (const limit of [0, -1, 1.5, Number.NaN]) {
      expect(await rejection(mapBounded([1], limit, async (x) => x))).toBeInstanceOf(TypeError);
    }
  });

  it('returns [] for no items without calling fn', async () => {
    const fn = jest.fn(async (x: number) => x);
    await expect(mapBounded([], 4, fn)).resolves.toEqual([]);
    expect(fn).not.toHaveBeenCalled();
  });

  it('preserves order and never exceeds the limit in flight (random delays)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 0, maxLength: 25 }),
        fc.integer({ min: 1, max: 8 }),
        async (delays, limit) => {
          let inFlight = 0;
          let maxInFlight = 0;
          const results = await mapBounded(delays, limit, async (delay, index) => {
            inFlight++;
            maxInFlight = Math.max(maxInFlight, inFlight);
            await sleep(delay);
            inFlight--;
            return index * 10;
          });
          expect(results).toEqual(delays.map((_, i) => i * 10));
          expect(maxInFlight).toBeLessThanOrEqual(limit);
          if (delays.length > 0) expect(maxInFlight).toBe(Math.min(limit, delays.length));
        },
      ),
      { numRuns: 30 },
    );
  });

  it('passes item, index and a signal to fn', async () => {
    const seen: [string, number, boolean][] = [];
    await mapBounded(['a', 'b'], 1, async (item, index, signal) => {
      seen.push([item, index, signal instanceof AbortSignal]);
    });
    expect(seen).toEqual([
      ['a', 0, true],
      ['b', 1, true],
    ]);
  });

  it('on the first error: aborts siblings, starts nothing new, waits for started calls, rethrows that error', async () => {
    const boom = new Error('boom');
    const started: number[] = [];
    const siblingsSawAbort: number[] = [];
    let settled = 0;
    const promise = mapBounded(
      Array.from({ length: 10 }, (_, i) => i),
      3,
      async (i, _index, signal) => {
        started.push(i);
        try {
          if (i === 1) {
            await sleep(5);
            throw boom;
          }
          // Siblings wait for the abort, then finish a little later (like a request being torn down).
          await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
          siblingsSawAbort.push(i);
          await sleep(20);
          return i;
        } finally {
          settled++;
        }
      },
    );
    const e = await rejection(promise);
    expect(e).toBe(boom);
    expect(started.sort()).toEqual([0, 1, 2]);
    expect(siblingsSawAbort.sort()).toEqual([0, 2]);
    // Every started call had settled before mapBounded rejected.
    expect(settled).toBe(3);
  });

  it('rejects with E_ABORTED when the parent signal fires, preferring it over errors it caused', async () => {
    const c = new AbortController();
    const calls: number[] = [];
    const promise = mapBounded(
      [0, 1, 2, 3, 4],
      2,
      async (i, _index, signal) => {
        calls.push(i);
        await new Promise<void>((_resolve, reject) =>
          signal.addEventListener('abort', () => reject(new Error(`cancelled ${i}`)), { once: true }),
        );
      },
      c.signal,
      's3',
    );
    setTimeout(() => c.abort('user cancelled'), 10);
    const e = await expectRejectsCode(promise, 'E_ABORTED');
    expect(e.driverName).toBe('s3');
    expect(calls).toEqual([0, 1]);
  });

  it('does not start further items after the parent aborts, even if fn ignores the signal', async () => {
    const c = new AbortController();
    const calls: number[] = [];
    const promise = mapBounded(
      [0, 1, 2],
      1,
      async (i) => {
        calls.push(i);
        if (i === 0) c.abort();
        await sleep(5);
        return i;
      },
      c.signal,
    );
    expectCode(await rejection(promise), 'E_ABORTED');
    expect(calls).toEqual([0]);
  });

  it('rejects with E_ABORTED without calling fn for a pre-aborted signal', async () => {
    const c = new AbortController();
    c.abort();
    const fn = jest.fn(async () => 1);
    await expectRejectsCode(mapBounded([1, 2], 2, fn, c.signal), 'E_ABORTED');
    expect(fn).not.toHaveBeenCalled();
  });

  it('keeps an E_ABORTED thrown by fn as is when the parent aborted', async () => {
    const c = new AbortController();
    const own = abortedError(undefined, 'own');
    const promise = mapBounded(
      [0],
      1,
      async () => {
        c.abort();
        throw own;
      },
      c.signal,
    );
    expect(await rejection(promise)).toBe(own);
  });
});

describe('linkAbortSignals with one parent shared by many calls', () => {
  it('adds one listener to the parent however many links follow it, and removes it when all are disposed', () => {
    const parent = new AbortController();
    const links = Array.from({ length: 50 }, () => linkAbortSignals(parent.signal));
    expect(getEventListeners(parent.signal, 'abort')).toHaveLength(1);
    for (const l of links.slice(0, 49)) l.dispose();
    expect(getEventListeners(parent.signal, 'abort')).toHaveLength(1);
    links[49]?.dispose();
    expect(getEventListeners(parent.signal, 'abort')).toHaveLength(0);
  });

  it('aborts every live link (with the parent reason) and none that was disposed', () => {
    const parent = new AbortController();
    const links = Array.from({ length: 20 }, () => linkAbortSignals(parent.signal));
    links[3]?.dispose();
    const reason = new Error('stop');
    parent.abort(reason);
    links.forEach((l, i) => {
      expect(l.signal.aborted).toBe(i !== 3);
      if (i !== 3) expect(l.signal.reason).toBe(reason);
    });
    // A new link after the parent fired is aborted immediately and registers nothing.
    const late = linkAbortSignals(parent.signal);
    expect(late.signal.aborted).toBe(true);
    expect(getEventListeners(parent.signal, 'abort')).toHaveLength(0);
  });
});
