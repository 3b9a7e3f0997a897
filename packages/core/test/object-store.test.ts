import {
  ExistenceOrder,
  isNetworkError,
  REFRESH_ALLOWANCE_MAX,
  refreshAllowance,
  refreshMinimumDeleteAge,
  StorageDriverErrorCode,
  storageKeyValues,
  validateExistenceCheck,
  validateRefreshAfter,
} from '../src';

const HEX = 'a'.repeat(64);

describe('storageKeyValues', () => {
  it.each([
    [`v0/d/sha256/${HEX}`, []],
    [`v0/ns/default/d/sha256/${HEX}`, ['default']],
    [`v0/ns/n/wt/T/wi/I/ri/R/d/sha256/${HEX}`, ['n', 'T', 'I', 'R']],
    [`v0/ns/n/at/T/ai/I/ri/R/d/sha256/${HEX}`, ['n', 'T', 'I', 'R']],
  ])('%s → its values', (key, values) => {
    expect(storageKeyValues(key)).toEqual(values);
  });

  it.each([
    [`v1/d/sha256/${HEX}`, 'shape'],
    [`v0/d/sha256/${HEX.toUpperCase()}`, 'shape'],
    [`v0/d/md5/${HEX}`, 'shape'],
    [HEX, 'shape'],
    [`v0/ns/n/wt/T/wi/I/d/sha256/${HEX}`, 'structure'],
    [`v0/ns/n/wt/T/ai/I/ri/R/d/sha256/${HEX}`, 'structure'],
    [`v0/wt/T/wi/I/ri/R/d/sha256/${HEX}`, 'structure'],
  ])('%s → %s', (key, problem) => {
    expect(storageKeyValues(key)).toBe(problem);
  });

  it("accepts the namespace-less layouts of Python's S3 driver before 1.35 only when asked", () => {
    const key = `v0/wt/T/wi/I/ri/R/d/sha256/${HEX}`;
    expect(storageKeyValues(key, true)).toEqual(['T', 'I', 'R']);
    expect(storageKeyValues(`v0/at/T/ai/I/ri/R/d/sha256/${HEX}`, true)).toEqual(['T', 'I', 'R']);
    expect(storageKeyValues(`v0/wt/T/ai/I/ri/R/d/sha256/${HEX}`, true)).toBe('structure');
  });
});

describe('refreshAfter', () => {
  const bounds = { min: 1000, max: 5000, fallback: 3000, minReason: 'times have 1 s resolution' };
  it('validates the option against the bounds and gives the fallback when it is missing', () => {
    expect(validateRefreshAfter(undefined, bounds)).toBe(3000);
    expect(validateRefreshAfter(1000, bounds)).toBe(1000);
    expect(validateRefreshAfter(5000, bounds)).toBe(5000);
    for (const bad of [999, 5001, 1500.5, '2000', Number.NaN, null]) {
      expect(() => validateRefreshAfter(bad, bounds)).toThrow(
        expect.objectContaining({
          code: StorageDriverErrorCode.CONFIG,
          message: expect.stringContaining('from 1000 (times have 1 s resolution) to 5000'),
        }),
      );
    }
  });

  it('the allowance is a quarter of refreshAfter, at most 15 minutes; the minimum delete age adds the resolution', () => {
    expect(refreshAllowance(1000)).toBe(250);
    expect(refreshAllowance(86_400_000)).toBe(REFRESH_ALLOWANCE_MAX);
    expect(refreshMinimumDeleteAge(1000, 1000)).toBe(2250);
    expect(refreshMinimumDeleteAge(86_400_000, 1)).toBe(86_400_000 + 900_000 + 1);
  });
});

describe('isNetworkError', () => {
  it('is true for socket codes and false for anything else', () => {
    expect(isNetworkError(Object.assign(new Error('x'), { code: 'ECONNRESET' }))).toBe(true);
    expect(isNetworkError(Object.assign(new Error('x'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }))).toBe(true);
    expect(isNetworkError(Object.assign(new Error('x'), { code: 'ENOENT' }))).toBe(false);
    expect(isNetworkError(new Error('x'))).toBe(false);
    expect(isNetworkError(undefined)).toBe(false);
  });
});

describe('validateExistenceCheck', () => {
  it.each(['auto', 'conditional-put', 'head'])('%s is a mode', (mode) => {
    expect(validateExistenceCheck(mode)).toBe(mode);
  });
  it('undefined is the default, auto', () => {
    expect(validateExistenceCheck(undefined)).toBe('auto');
  });
  it.each([
    'AUTO',
    'Head',
    ' head',
    'conditional',
    'conditionalPut',
    'list',
    '',
    null,
    1,
    true,
    ['head'],
    { mode: 'head' },
    new String('head'),
  ])('%p is refused with E_CONFIG', (value) => {
    expect(() => validateExistenceCheck(value)).toThrow(
      expect.objectContaining({
        code: StorageDriverErrorCode.CONFIG,
        message: 'existenceCheck must be "auto", "conditional-put" or "head"',
      }),
    );
  });
});

describe('ExistenceOrder', () => {
  const MiB = 1024 * 1024;
  it('head always looks first, conditional-put always uploads first, whatever was seen', () => {
    const head = new ExistenceOrder('head', MiB);
    const put = new ExistenceOrder('conditional-put', MiB);
    for (const o of [head, put]) {
      o.noteExists('a');
      expect(o.remembers).toBe(false);
    }
    expect([head.uploadFirst(1, 'a'), head.uploadFirst(10 * MiB, 'b')]).toEqual([false, false]);
    expect([put.uploadFirst(1, 'a'), put.uploadFirst(10 * MiB, 'b')]).toEqual([true, true]);
  });
  it('auto: uploads first below the size limit unless the key was recently stored or read', () => {
    const o = new ExistenceOrder('auto', MiB);
    expect(o.remembers).toBe(true);
    expect([o.uploadFirst(MiB - 1, 'a'), o.uploadFirst(MiB, 'a'), o.uploadFirst(0, 'a')]).toEqual([true, false, true]);
    o.noteExists('a');
    expect([o.uploadFirst(1, 'a'), o.uploadFirst(1, 'b')]).toEqual([false, true]);
    // A read that found nothing: the object is gone, so it is most likely new again.
    o.noteMissing('a');
    expect(o.uploadFirst(1, 'a')).toBe(true);
    // noteRead: a read that found the object notes it, one that did not forgets it.
    o.noteRead('c', true);
    expect(o.uploadFirst(1, 'c')).toBe(false);
    o.noteRead('c', false);
    expect(o.uploadFirst(1, 'c')).toBe(true);
  });
  it('auto: remembers the last maxKeys keys, the least recently noted dropped first', () => {
    const o = new ExistenceOrder('auto', MiB, 3);
    for (const k of ['a', 'b', 'c']) o.noteExists(k);
    o.noteExists('a'); // a becomes the most recent
    o.noteExists('d'); // drops b
    expect(['a', 'b', 'c', 'd'].map((k) => o.uploadFirst(1, k))).toEqual([false, true, false, false]);
    // A size limit of 0 looks up every object first.
    expect(new ExistenceOrder('auto', 0).uploadFirst(1, 'z')).toBe(false);
  });
});
