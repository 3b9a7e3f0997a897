import {
  CLAIM_HASH_ALGORITHM,
  CLAIM_HASH_ALGORITHM_CAMEL,
  CLAIM_HASH_VALUE,
  CLAIM_HASH_VALUE_CAMEL,
  HASH_ALGORITHM_SHA256,
  hashClaimFields,
  isSha256Hex,
  MAX_CLAIM_VALUE_LENGTH,
  readClaimData,
  readClaimHash,
  requireClaimField,
  StorageDriverClaim,
  sha256Hex,
} from '../src';
import { expectThrowsCode, thrown, utf8 } from './helpers';

const HEX = sha256Hex(utf8('payload'));
const OTHER = sha256Hex(utf8('other'));

describe('hash helpers', () => {
  it('sha256Hex is lower-case hex SHA-256', () => {
    expect(sha256Hex(new Uint8Array(0))).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(sha256Hex(utf8('abc'))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(HASH_ALGORITHM_SHA256).toBe('sha256');
  });

  it('isSha256Hex accepts exactly 64 lower-case hex characters', () => {
    expect(isSha256Hex(HEX)).toBe(true);
    for (const bad of [HEX.toUpperCase(), HEX.slice(1), `${HEX}a`, `${HEX}\n`, ` ${HEX}`, '', 5, null, undefined]) {
      expect(isSha256Hex(bad)).toBe(false);
    }
  });

  it('hashClaimFields writes snake_case fields', () => {
    expect(hashClaimFields(HEX)).toEqual({ hash_algorithm: 'sha256', hash_value: HEX });
    expect([CLAIM_HASH_ALGORITHM, CLAIM_HASH_VALUE, CLAIM_HASH_ALGORITHM_CAMEL, CLAIM_HASH_VALUE_CAMEL]).toEqual([
      'hash_algorithm',
      'hash_value',
      'hashAlgorithm',
      'hashValue',
    ]);
  });
});

describe('readClaimHash', () => {
  it('accepts snake_case (Python/Go/Java) and camelCase (official TS S3 driver) spellings', () => {
    expect(readClaimHash({ hash_algorithm: 'sha256', hash_value: HEX })).toBe(HEX);
    expect(readClaimHash({ hashAlgorithm: 'sha256', hashValue: HEX })).toBe(HEX);
    expect(readClaimHash({ hash_algorithm: 'sha256', hashValue: HEX })).toBe(HEX);
    expect(readClaimHash({ hashAlgorithm: 'sha256', hash_value: HEX })).toBe(HEX);
    expect(
      readClaimHash({ hash_algorithm: 'sha256', hashAlgorithm: 'sha256', hash_value: HEX, hashValue: HEX, key: 'k' }),
    ).toBe(HEX);
  });

  const invalid: [string, Record<string, string>][] = [
    ['no hash at all', {}],
    ['missing algorithm', { hash_value: HEX }],
    ['missing value', { hash_algorithm: 'sha256' }],
    ['missing value (camelCase)', { hashAlgorithm: 'sha256' }],
    ['unknown algorithm', { hash_algorithm: 'md5', hash_value: HEX }],
    ['upper-case algorithm', { hash_algorithm: 'SHA256', hash_value: HEX }],
    ['algorithm with a dash', { hash_algorithm: 'sha-256', hash_value: HEX }],
    ['empty algorithm', { hash_algorithm: '', hash_value: HEX }],
    ['upper-case hex', { hash_algorithm: 'sha256', hash_value: HEX.toUpperCase() }],
    ['short hex', { hash_algorithm: 'sha256', hash_value: HEX.slice(2) }],
    ['non-hex', { hash_algorithm: 'sha256', hash_value: 'z'.repeat(64) }],
    ['empty value', { hash_algorithm: 'sha256', hash_value: '' }],
    ['conflicting algorithm spellings', { hash_algorithm: 'sha256', hashAlgorithm: 'md5', hash_value: HEX }],
    ['conflicting value spellings', { hash_algorithm: 'sha256', hash_value: HEX, hashValue: OTHER }],
    ['huge algorithm', { hash_algorithm: 'x'.repeat(10_000), hash_value: HEX }],
  ];

  it.each(invalid)('rejects %s with E_INVALID_CLAIM', (_name, claim) => {
    const e = expectThrowsCode(() => readClaimHash(claim, 3), 'E_INVALID_CLAIM');
    expect(e.index).toBe(3);
    expect(e.retryable).toBe(false);
    expect(e.message.length).toBeLessThan(500);
  });

  it('ignores inherited properties (only own fields count)', () => {
    const inherited = Object.create({ hash_algorithm: 'sha256', hash_value: HEX }) as Record<string, string>;
    expectThrowsCode(() => readClaimHash(inherited), 'E_INVALID_CLAIM');
  });
});

describe('readClaimData', () => {
  it('returns the claimData of a StorageDriverClaim or any structurally equal object', () => {
    const data = { key: 'k', hash_algorithm: 'sha256', hash_value: HEX };
    expect(readClaimData(new StorageDriverClaim(data))).toBe(data);
    expect(readClaimData({ claimData: data })).toBe(data);
    expect(readClaimData({ claimData: {} })).toEqual({});
  });

  it('throws TypeError for a claim that is not an object (API misuse)', () => {
    for (const bad of [null, undefined, 'claim', 5]) {
      expect(thrown(() => readClaimData(bad, 0))).toBeInstanceOf(TypeError);
    }
  });

  const invalid: [string, unknown][] = [
    ['missing claimData', {}],
    ['null claimData', { claimData: null }],
    ['string claimData', { claimData: 'key=v' }],
    ['array claimData', { claimData: ['a'] }],
    ['number value', { claimData: { key: 5 } }],
    ['null value', { claimData: { key: null } }],
    ['undefined value', { claimData: { key: undefined } }],
    ['boolean value', { claimData: { key: true } }],
    ['object value', { claimData: { key: { toString: () => 'x' } } }],
    ['array value', { claimData: { key: ['x'] } }],
    ['too long value', { claimData: { key: 'x'.repeat(MAX_CLAIM_VALUE_LENGTH + 1) } }],
  ];

  it.each(invalid)('rejects %s with E_INVALID_CLAIM', (_name, claim) => {
    const e = expectThrowsCode(() => readClaimData(claim, 1), 'E_INVALID_CLAIM');
    expect(e.index).toBe(1);
  });

  it('accepts a value of exactly MAX_CLAIM_VALUE_LENGTH', () => {
    expect(readClaimData({ claimData: { key: 'x'.repeat(MAX_CLAIM_VALUE_LENGTH) } })['key']).toHaveLength(
      MAX_CLAIM_VALUE_LENGTH,
    );
  });
});

describe('requireClaimField', () => {
  it('returns a present non-empty field', () => {
    expect(requireClaimField({ key: 'v0/x' }, 'key')).toBe('v0/x');
  });

  it('rejects missing, empty and inherited fields with E_INVALID_CLAIM', () => {
    expect(expectThrowsCode(() => requireClaimField({}, 'key', 2), 'E_INVALID_CLAIM').index).toBe(2);
    expectThrowsCode(() => requireClaimField({ key: '' }, 'key'), 'E_INVALID_CLAIM');
    expectThrowsCode(
      () => requireClaimField(Object.create({ key: 'x' }) as Record<string, string>, 'key'),
      'E_INVALID_CLAIM',
    );
    expectThrowsCode(() => requireClaimField({}, 'toString'), 'E_INVALID_CLAIM');
    expectThrowsCode(() => requireClaimField({}, '__proto__'), 'E_INVALID_CLAIM');
  });
});
