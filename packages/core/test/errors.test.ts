import { isStorageDriverError, StorageDriverError, StorageDriverErrorCode } from '../src';
import { thrown } from './helpers';

const ALL_CODES = [
  'E_NOT_FOUND',
  'E_INTEGRITY',
  'E_TOO_LARGE',
  'E_INVALID_CLAIM',
  'E_ABORTED',
  'E_BACKEND',
  'E_CONFIG',
];

describe('StorageDriverErrorCode', () => {
  it('has exactly the documented stable codes', () => {
    expect(Object.values(StorageDriverErrorCode).sort()).toEqual([...ALL_CODES].sort());
    expect(StorageDriverErrorCode.NOT_FOUND).toBe('E_NOT_FOUND');
    expect(StorageDriverErrorCode.INTEGRITY).toBe('E_INTEGRITY');
    expect(StorageDriverErrorCode.TOO_LARGE).toBe('E_TOO_LARGE');
    expect(StorageDriverErrorCode.INVALID_CLAIM).toBe('E_INVALID_CLAIM');
    expect(StorageDriverErrorCode.ABORTED).toBe('E_ABORTED');
    expect(StorageDriverErrorCode.BACKEND).toBe('E_BACKEND');
    expect(StorageDriverErrorCode.CONFIG).toBe('E_CONFIG');
  });
});

describe('StorageDriverError', () => {
  it('carries code, message, name, driver name, key, index and cause', () => {
    const cause = new Error('socket hang up');
    const e = new StorageDriverError('E_BACKEND', 'store failed', {
      driverName: 'redis',
      key: 'v0/d/sha256/abc',
      index: 4,
      cause,
    });
    expect(e).toBeInstanceOf(Error);
    expect(e).toBeInstanceOf(StorageDriverError);
    expect(e.name).toBe('StorageDriverError');
    expect(e.message).toBe('store failed');
    expect(e.code).toBe('E_BACKEND');
    expect(e.driverName).toBe('redis');
    expect(e.key).toBe('v0/d/sha256/abc');
    expect(e.index).toBe(4);
    expect(e.cause).toBe(cause);
    expect(typeof e.stack).toBe('string');
    expect(String(e)).toBe('StorageDriverError: store failed');
  });

  it('leaves optional fields undefined and sets no cause when none is given', () => {
    const e = new StorageDriverError('E_NOT_FOUND', 'gone');
    expect(e.driverName).toBeUndefined();
    expect(e.key).toBeUndefined();
    expect(e.index).toBeUndefined();
    expect('cause' in e).toBe(false);
  });

  it.each(ALL_CODES)('retryable defaults to true only for E_BACKEND (%s)', (code) => {
    const e = new StorageDriverError(code as StorageDriverErrorCode, 'x');
    expect(e.retryable).toBe(code === 'E_BACKEND');
  });

  it('retryable can be overridden either way', () => {
    expect(new StorageDriverError('E_BACKEND', 'x', { retryable: false }).retryable).toBe(false);
    expect(new StorageDriverError('E_NOT_FOUND', 'x', { retryable: true }).retryable).toBe(true);
  });

  it('rejects an unknown code with TypeError', () => {
    expect(thrown(() => new StorageDriverError('E_NOPE' as StorageDriverErrorCode, 'x'))).toBeInstanceOf(TypeError);
    expect(thrown(() => new StorageDriverError('not_found' as StorageDriverErrorCode, 'x'))).toBeInstanceOf(TypeError);
  });
});

describe('isStorageDriverError', () => {
  it('recognises instances and narrows by code', () => {
    const e: unknown = new StorageDriverError('E_INTEGRITY', 'bad hash');
    expect(isStorageDriverError(e)).toBe(true);
    expect(isStorageDriverError(e, 'E_INTEGRITY')).toBe(true);
    expect(isStorageDriverError(e, StorageDriverErrorCode.NOT_FOUND)).toBe(false);
    if (isStorageDriverError(e, 'E_INTEGRITY')) {
      // Type-level: narrowed to StorageDriverError.
      const code: StorageDriverErrorCode = e.code;
      expect(code).toBe('E_INTEGRITY');
    }
  });

  it('rejects look-alikes without the brand', () => {
    const lookalike = Object.assign(new Error('x'), { name: 'StorageDriverError', code: 'E_BACKEND', retryable: true });
    for (const v of [lookalike, new Error('x'), { code: 'E_BACKEND' }, null, undefined, 'E_BACKEND', 42, () => {}]) {
      expect(isStorageDriverError(v)).toBe(false);
    }
  });

  it('accepts a structurally separate object carrying the Symbol.for brand (a second copy of core)', () => {
    const brand = Symbol.for('@x/storage-driver-core/StorageDriverError');
    const foreign = Object.assign(new Error('from another copy'), { code: 'E_NOT_FOUND', retryable: false });
    Object.defineProperty(foreign, brand, { value: true });
    expect(foreign instanceof StorageDriverError).toBe(false);
    expect(isStorageDriverError(foreign)).toBe(true);
    expect(isStorageDriverError(foreign, 'E_NOT_FOUND')).toBe(true);
    expect(isStorageDriverError(foreign, 'E_BACKEND')).toBe(false);

    const wrongBrandValue = Object.assign(new Error('x'), { code: 'E_NOT_FOUND' });
    Object.defineProperty(wrongBrandValue, brand, { value: 'yes' });
    expect(isStorageDriverError(wrongBrandValue)).toBe(false);
  });

  it('works across a separately loaded module instance, where instanceof does not', () => {
    let Other: typeof StorageDriverError | undefined;
    let otherIs: typeof isStorageDriverError | undefined;
    jest.isolateModules(() => {
      const mod = require('../src/errors') as typeof import('../src/errors');
      Other = mod.StorageDriverError;
      otherIs = mod.isStorageDriverError;
    });
    if (Other === undefined || otherIs === undefined) throw new Error('module not loaded');
    expect(Other).not.toBe(StorageDriverError);
    const foreign = new Other('E_ABORTED', 'aborted elsewhere');
    expect(foreign instanceof StorageDriverError).toBe(false);
    expect(isStorageDriverError(foreign, 'E_ABORTED')).toBe(true);
    expect(otherIs(new StorageDriverError('E_CONFIG', 'x'), 'E_CONFIG')).toBe(true);
  });

  it('brand is not enumerable and does not show up in JSON or keys', () => {
    const e = new StorageDriverError('E_CONFIG', 'x', { driverName: 'fs' });
    expect(Object.keys(e)).not.toContain(Symbol.for('@x/storage-driver-core/StorageDriverError').toString());
    expect(Object.getOwnPropertySymbols(e).every((s) => !Object.getOwnPropertyDescriptor(e, s)?.enumerable)).toBe(true);
  });
});
