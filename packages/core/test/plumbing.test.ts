import { runInNewContext } from 'node:vm';
import {
  byteView,
  configError,
  errorCodeOf,
  loadPeerDependency,
  REDACTED,
  redactSecrets,
  redactText,
  requireOptionsObject,
  StorageDriverError,
  withErrorContext,
} from '../src';
import { thrown } from './helpers';

describe('configError / requireOptionsObject', () => {
  it('are non-retryable E_CONFIG errors', () => {
    const e = configError('bad ttl', { driverName: 'fs' });
    expect([e.code, e.retryable, e.message, e.driverName]).toEqual(['E_CONFIG', false, 'bad ttl', 'fs']);
    for (const bad of [undefined, null, 5, 'x', []]) {
      expect(thrown(() => requireOptionsObject(bad, 'Driver options must be an object with a client'))).toMatchObject({
        code: 'E_CONFIG',
        message: 'Driver options must be an object with a client',
      });
    }
    const options = { client: 1 };
    expect(requireOptionsObject<{ client: number }>(options, 'x')).toBe(options);
  });
});

describe('loadPeerDependency', () => {
  it('loads through the caller’s require, or says how to install the peer', () => {
    expect(loadPeerDependency<typeof import('node:path')>(require, 'node:path', '@x/p').join('a', 'b')).toBe('a/b');
    const e = thrown(() => loadPeerDependency(require, 'no-such-module-xyz', '@x/storage-driver-xyz'));
    expect(e).toMatchObject({
      code: 'E_CONFIG',
      message:
        'no-such-module-xyz is not installed: run `npm install no-such-module-xyz` (a peer dependency of @x/storage-driver-xyz)',
    });
    expect((e as StorageDriverError).cause).toMatchObject({ code: 'MODULE_NOT_FOUND' });
  });
});

describe('redactSecrets', () => {
  it('returns the value itself when it mentions no secret', () => {
    const e = new Error('connection refused');
    expect(redactSecrets(e, ['hunter2'])).toBe(e);
    expect(redactSecrets(e, [])).toBe(e);
    expect(redactText('a hunter2 b hunter2', ['hunter2', ''])).toBe(`a ${REDACTED} b ${REDACTED}`);
  });

  it('copies an error tree with every string scrubbed, keeping prototypes, and leaves the original alone', () => {
    class ClientError extends Error {
      command = { name: 'auth', args: ['default', 'hunter2'] };
    }
    const inner = new ClientError('WRONGPASS for hunter2');
    const outer = Object.assign(new Error('pipeline failed', { cause: inner }), {
      lastNodeError: inner,
      url: 'redis://:hunter2@host',
      bytes: new Uint8Array([1]),
    });
    const copy = redactSecrets(outer, ['hunter2']);
    expect(copy).not.toBe(outer);
    expect(copy).toBeInstanceOf(Error);
    expect(copy.url).toBe(`redis://:${REDACTED}@host`);
    expect(copy.bytes).toBe(outer.bytes);
    const c = copy.cause as ClientError;
    expect(c).toBeInstanceOf(ClientError);
    expect([c.message, c.command.args[1]]).toEqual([`WRONGPASS for ${REDACTED}`, REDACTED]);
    expect(copy.lastNodeError).toBe(c); // shared nodes stay shared
    expect(JSON.stringify(copy.stack ?? '')).not.toContain('hunter2');
    expect(c.stack).toContain(`WRONGPASS for ${REDACTED}`); // the stack is kept, redacted
    expect(inner.message).toContain('hunter2'); // the original is untouched
  });

  it('keeps (redacted) what an own accessor of an error reads, as Node 24 installs `stack`, and finds a secret only it holds', () => {
    const slot = new WeakMap<object, string>();
    const stackGetter = function (this: object) {
      return slot.get(this); // reads the original's internal slot: undefined on any copy
    };
    const e = new Error('pool failed');
    slot.set(e, 'Error: pool failed\n    at connect (/srv/hunter2/cert.pem)');
    Object.defineProperty(e, 'stack', { get: stackGetter, set() {}, enumerable: false, configurable: true });
    Object.defineProperty(e, 'computed', { get: () => 'hunter2 in a getter', enumerable: true, configurable: true });
    const copy = redactSecrets(e, ['hunter2']);
    expect(copy).not.toBe(e); // only the accessors mention the secret
    expect(copy.stack).toBe(`Error: pool failed\n    at connect (/srv/${REDACTED}/cert.pem)`);
    expect((copy as unknown as { computed: string }).computed).toBe(`${REDACTED} in a getter`);
    expect(Object.getOwnPropertyDescriptor(copy, 'stack')?.enumerable).toBe(false);
    expect(e.stack).toContain('hunter2');
  });

  it('copies an error of another realm (an fs error seen from a vm context such as jest)', () => {
    const foreign = runInNewContext("Object.assign(new Error('open /x/hunter2'), { path: '/x/hunter2' })") as Error & {
      path: string;
    };
    expect(foreign).not.toBeInstanceOf(Error);
    const copy = redactSecrets(foreign, ['hunter2']);
    expect(copy).not.toBe(foreign);
    expect([copy.message, copy.path]).toEqual([`open /x/${REDACTED}`, `/x/${REDACTED}`]);
    expect(String(copy.stack)).not.toContain('hunter2');
  });

  it('survives cycles', () => {
    const e = new Error('hunter2') as Error & { self?: unknown };
    e.self = e;
    const copy = redactSecrets(e, ['hunter2']);
    expect(copy.message).toBe(REDACTED);
    expect(copy.self).toBe(copy);
  });
});

describe('byteView / errorCodeOf / withErrorContext', () => {
  it('byteView is a zero-copy Buffer over the same memory', () => {
    const bytes = new Uint8Array([0, 1, 2, 3]).subarray(1, 3);
    const view = byteView(bytes);
    expect(Buffer.isBuffer(view)).toBe(true);
    view[0] = 9;
    expect(bytes[0]).toBe(9);
    const buf = Buffer.from('x');
    expect(byteView(buf)).toBe(buf);
  });

  it('errorCodeOf reads a string code only', () => {
    expect(errorCodeOf(Object.assign(new Error('x'), { code: 'ENOENT' }))).toBe('ENOENT');
    expect(errorCodeOf({ code: 5 })).toBeUndefined();
    expect(errorCodeOf(null)).toBeUndefined();
  });

  it('withErrorContext fills in what is missing on a copy, and returns the error when nothing is', () => {
    const e = new StorageDriverError('E_INVALID_CLAIM', 'bad key', { key: 'k' });
    const c = withErrorContext(e, { driverName: 'redis', index: 3, key: 'other' });
    expect([c.driverName, c.index, c.key, c.code, c.stack]).toEqual(['redis', 3, 'k', 'E_INVALID_CLAIM', e.stack]);
    expect(withErrorContext(c, { driverName: 'x', index: 1 })).toBe(c);
    expect(e.driverName).toBeUndefined();
  });
});
