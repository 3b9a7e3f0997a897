import {
  DEFAULT_MAX_PAYLOAD_SIZE,
  validateConcurrency,
  validateDriverName,
  validateMaxPayloadSize,
  validateTtl,
} from '../src';
import { expectThrowsCode } from './helpers';

describe('validateDriverName', () => {
  it('accepts ordinary names up to 256 characters', () => {
    for (const name of ['fs', 'aws.s3driver', 'redis-cache 2', 'é', 'x'.repeat(256)]) {
      expect(validateDriverName(name)).toBe(name);
    }
  });

  it.each([
    ['empty', ''],
    ['too long', 'x'.repeat(257)],
    ['newline', 'a\nb'],
    ['NUL', 'a\0b'],
    ['tab', '\tfs'],
    ['DEL', 'fs\u007f'],
    ['number', 5],
    ['null', null],
    ['undefined', undefined],
    ['object', { name: 'fs' }],
  ])('rejects %s with E_CONFIG', (_name, value) => {
    expectThrowsCode(() => validateDriverName(value), 'E_CONFIG');
  });
});

const badPositiveInts: [string, unknown][] = [
  ['zero', 0],
  ['negative', -1],
  ['fraction', 1.5],
  ['NaN', Number.NaN],
  ['Infinity', Number.POSITIVE_INFINITY],
  ['unsafe integer', 2 ** 53],
  ['string', '10'],
  ['null', null],
  ['bigint', 10n],
];

describe('validateMaxPayloadSize', () => {
  it('defaults to 50 MiB, or the given default', () => {
    expect(DEFAULT_MAX_PAYLOAD_SIZE).toBe(52_428_800);
    expect(validateMaxPayloadSize(undefined)).toBe(DEFAULT_MAX_PAYLOAD_SIZE);
    expect(validateMaxPayloadSize(undefined, 1234)).toBe(1234);
  });

  it('accepts positive safe integers', () => {
    expect(validateMaxPayloadSize(1)).toBe(1);
    expect(validateMaxPayloadSize(Number.MAX_SAFE_INTEGER)).toBe(Number.MAX_SAFE_INTEGER);
  });

  it.each(badPositiveInts)('rejects %s with E_CONFIG', (_name, value) => {
    expectThrowsCode(() => validateMaxPayloadSize(value), 'E_CONFIG');
  });
});

describe('validateTtl', () => {
  it('undefined means no expiry', () => {
    expect(validateTtl(undefined)).toBeUndefined();
  });

  it('accepts positive safe integers (milliseconds)', () => {
    expect(validateTtl(1)).toBe(1);
    expect(validateTtl(30 * 24 * 3600 * 1000)).toBe(2_592_000_000);
  });

  it.each(badPositiveInts)('rejects %s with E_CONFIG', (_name, value) => {
    expectThrowsCode(() => validateTtl(value), 'E_CONFIG');
  });
});

describe('validateConcurrency', () => {
  it('defaults, and accepts 1..10000', () => {
    expect(validateConcurrency(undefined, 16)).toBe(16);
    expect(validateConcurrency(1, 16)).toBe(1);
    expect(validateConcurrency(10_000, 16)).toBe(10_000);
  });

  it.each([...badPositiveInts, ['over 10000', 10_001]] as [string, unknown][])(
    'rejects %s with E_CONFIG',
    (_name, value) => {
      expectThrowsCode(() => validateConcurrency(value, 16), 'E_CONFIG');
    },
  );
});
