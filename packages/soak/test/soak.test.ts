/**
 * A short soak per bundled driver against the real loopback servers of scripts/services.sh
 * (5 s each): 32 callers share one driver instance; zero errors, zero integrity failures, zero
 * lost payloads, server object count = distinct claims, flat heap, and everything cleaned up.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { BACKEND_KINDS } from '@x/test-backends';
import { formatTable, runSoak, type SoakResult } from '../src';

const results: SoakResult[] = [];
afterAll(() => {
  if (results.length > 0) console.log(`short soak, 5 s per driver, 32 callers:\n${formatTable(results)}`);
});

describe('bounded concurrency soak (short)', () => {
  it.each(BACKEND_KINDS)(
    '%s: many callers on one driver — no errors, no integrity failures, nothing lost, flat heap',
    async (driver) => {
      const r = await runSoak(driver, { durationMs: 5_000, concurrency: 32, seed: 7 });
      results.push(r);
      expect(r.failures).toEqual([]);
      expect({ errors: r.errors, integrity: r.integrityFailures, lost: r.lost }).toEqual({
        errors: 0,
        integrity: 0,
        lost: 0,
      });
      // Real traffic happened, both ways, with repeats.
      expect(r.storeCalls).toBeGreaterThan(0);
      expect(r.retrieveCalls).toBeGreaterThan(0);
      expect(r.dedupHits).toBeGreaterThan(0);
      // Every claim ever returned was read back, and the server holds exactly one object per claim.
      expect(r.verified).toBe(r.distinctClaims);
      expect(r.objects).toBe(r.distinctClaims);
      expect(r.memory.end.gcForced).toBe(true);
      expect(r.memory.heapGrowth).toBeLessThanOrEqual(r.memory.heapBound);
      expect(r.cleanedUp).toBe(true);
    },
    60_000,
  );
});
