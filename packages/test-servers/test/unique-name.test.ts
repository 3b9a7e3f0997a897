/**
 * `uniqueName`: the shape every isolated store relies on (a Redis key prefix, a PostgreSQL schema,
 * an S3/GCS bucket, an Azure container) and no two names alike.
 */
import { describe, expect, it } from '@jest/globals';
import { uniqueName, uniqueSuffix } from '../src';

const BUCKET = /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/;
const PG_IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;

describe('uniqueName', () => {
  it('is <prefix>-<pid>-<time base 36>-<8 hex digits> by default', () => {
    const name = uniqueName('xs3-drv');
    expect(name).toMatch(new RegExp(`^xs3-drv-${process.pid}-[0-9a-z]+-[0-9a-f]{8}$`));
    const time = Number.parseInt(name.split('-')[3] as string, 36);
    expect(Math.abs(time - Date.now())).toBeLessThan(60_000);
  });

  it('never repeats, within one millisecond too', () => {
    const names = Array.from({ length: 10_000 }, () => uniqueName('x'));
    expect(new Set(names).size).toBe(names.length);
  });

  it('joins every part with the separator: a PostgreSQL identifier with "_", a Redis prefix with ":"', () => {
    const schema = uniqueName('xs_sec_missing', { separator: '_', lowerCase: true, maxLength: 63 });
    expect(schema).toMatch(PG_IDENTIFIER);
    expect(schema.startsWith(`xs_sec_missing_${process.pid}_`)).toBe(true);
    expect(uniqueName('xstorage-test:redis:Label', { separator: ':' })).toMatch(
      new RegExp(`^xstorage-test:redis:Label:${process.pid}:[0-9a-z]+:[0-9a-f]{8}$`),
    );
  });

  it('lowerCase lower-cases the prefix; the tail is lower-case anyway', () => {
    expect(uniqueName('XS3-Drv', { lowerCase: true })).toMatch(BUCKET);
    expect(uniqueName('XS3-Drv').startsWith('XS3-Drv-')).toBe(true);
  });

  it('maxLength cuts the prefix, never the unique tail, and leaves no separator at the cut', () => {
    const long = uniqueName('a'.repeat(100), { lowerCase: true, maxLength: 63 });
    expect(long).toHaveLength(63);
    expect(long).toMatch(BUCKET);
    expect(long).toMatch(new RegExp(`^a+-${process.pid}-[0-9a-z]+-[0-9a-f]{8}$`));
    const dashes = uniqueName(`${'b'.repeat(30)}${'-'.repeat(40)}`, { maxLength: 63 });
    expect(dashes).not.toContain('--');
    expect(dashes).toMatch(new RegExp(`^b{30}-${process.pid}-`));
    const schema = uniqueName(`xs_${'s'.repeat(80)}`, { separator: '_', maxLength: 63 });
    expect(schema.length).toBeLessThanOrEqual(63);
    expect(schema).toMatch(PG_IDENTIFIER);
    expect(schema).toMatch(new RegExp(`_${process.pid}_[0-9a-z]+_[0-9a-f]{8}$`));
  });

  it('a short prefix is left alone; a maxLength with no room for a prefix throws', () => {
    expect(uniqueName('xaz', { maxLength: 63 }).startsWith('xaz-')).toBe(true);
    expect(() => uniqueName('xaz', { maxLength: 10 })).toThrow(RangeError);
  });
});

describe('uniqueSuffix', () => {
  it('is a base-36 time and 6 hex digits, valid in a task queue, workflow id and bucket name; no two alike', () => {
    const suffixes = Array.from({ length: 50 }, uniqueSuffix); // 24 random bits: 50 in one ms collide once in ~13,000 runs
    for (const s of suffixes) expect(s).toMatch(/^[0-9a-z]+-[0-9a-f]{6}$/);
    expect(new Set(suffixes).size).toBe(suffixes.length);
  });
});
