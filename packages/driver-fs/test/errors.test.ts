import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { chmod, mkdir, readdir } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  type BackendOperation,
  isStorageDriverError,
  type StorageDriverClaim,
  type StorageDriverError,
} from '@x/storage-driver-core';
import { captureStorageDriverError } from '@x/storage-driver-test-suite';
import { FsStorageDriver, type FsStorageDriverOptions } from '../src';
import { canMount, cleanup, errorCode, makeTempDir, payload, text, tryRun } from './helpers';

/** Exposes the protected error classification. */
class TestableFsDriver extends FsStorageDriver {
  constructor(options: FsStorageDriverOptions) {
    super(options);
  }
  wrap(error: unknown, kind: BackendOperation['kind'] = 'store'): StorageDriverError {
    return this._wrapError(error, { kind, driverName: this.name, signal: new AbortController().signal });
  }
}

function errno(code: string, p?: string, syscall = 'open'): NodeJS.ErrnoException {
  const e: NodeJS.ErrnoException = new Error(`${code}: failure, ${syscall} '${p ?? ''}'`);
  e.code = code;
  e.syscall = syscall;
  if (p !== undefined) e.path = p;
  return e;
}

/**
 * `chattr +i` needs CAP_LINUX_IMMUTABLE and ext4/xfs under the temp dir; probed once, like
 * mounting (`canMount`). Tests that need a missing capability are reported as skipped.
 */
const canChattr = (() => {
  const probe = mkdtempSync(path.join(os.tmpdir(), 'fs-caps-'));
  try {
    const d = path.join(probe, 'immutable');
    mkdirSync(d);
    const ok = tryRun('chattr', ['+i', d]);
    if (ok) tryRun('chattr', ['-i', d]);
    return ok;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
})();
const itIfMount = canMount ? it : it.skip;
const itIfChattr = canChattr ? it : it.skip;

let dir: string;
beforeEach(async () => {
  dir = await makeTempDir();
});
afterEach(async () => {
  await cleanup(dir);
});

describe('_wrapError classification', () => {
  it.each([
    ['ENOSPC', 'E_BACKEND', true],
    ['EDQUOT', 'E_BACKEND', true],
    ['EIO', 'E_BACKEND', true],
    ['EMFILE', 'E_BACKEND', true],
    ['ENFILE', 'E_BACKEND', true],
    ['EAGAIN', 'E_BACKEND', true],
    ['EBUSY', 'E_BACKEND', true],
    ['ESTALE', 'E_BACKEND', true],
    ['EACCES', 'E_CONFIG', false],
    ['EPERM', 'E_CONFIG', false],
    ['EROFS', 'E_CONFIG', false],
    ['ENAMETOOLONG', 'E_BACKEND', false],
    ['EISDIR', 'E_BACKEND', false],
    ['EXDEV', 'E_BACKEND', false],
  ])('%s → %s (retryable: %s)', (code, expected, retryable) => {
    const root = path.join(dir, 'secret-location', 'store');
    const d = new TestableFsDriver({ root, name: 'fs-test' });
    const cause = errno(code, path.join(root, 'v0', 'd', 'sha256', 'abc'));
    const e = d.wrap(cause);
    expect(isStorageDriverError(e)).toBe(true);
    expect(e.code).toBe(expected);
    expect(e.retryable).toBe(retryable);
    expect(e.driverName).toBe('fs-test');
    expect(e.cause).toBe(cause);
    expect(e.message).toContain(code);
    expect(e.message).toContain('<root>/v0/d/sha256/abc');
    expect(e.message).not.toContain('secret-location');
  });

  it('names the root itself as <root>, and wraps non-errno errors as retryable E_BACKEND', () => {
    const d = new TestableFsDriver({ root: path.join(dir, 'store') });
    expect(d.wrap(errno('EACCES', path.join(dir, 'store'), 'mkdir')).message).toContain('on <root>');
    const plain = d.wrap(new Error('boom'), 'retrieve');
    expect(plain.code).toBe('E_BACKEND');
    expect(plain.retryable).toBe(true);
    expect(plain.message).toContain('retrieve failed: boom');
  });

  it('passes StorageDriverErrors through unchanged', () => {
    const d = new TestableFsDriver({ root: path.join(dir, 'store') });
    const inner = d.wrap(errno('EIO'));
    expect(d.wrap(inner)).toBe(inner);
  });
});

describe('real permission and capacity failures', () => {
  const isRoot = process.getuid?.() === 0;

  itIfMount('a read-only filesystem makes store fail with E_CONFIG; retrieve keeps working', async () => {
    const root = path.join(dir, 'store');
    const d = new FsStorageDriver({ root });
    const claims = await d.store({}, [payload('before')]);
    // A read-only bind mount of the root.
    expect(tryRun('mount', ['--bind', root, root])).toBe(true);
    try {
      expect(tryRun('mount', ['-o', 'remount,bind,ro', root])).toBe(true);
      const e = await captureStorageDriverError(() => d.store({}, [payload('after')]));
      expect(e.code).toBe('E_CONFIG');
      expect(e.retryable).toBe(false);
      expect(e.message).toContain('EROFS');
      expect(e.message).not.toContain(dir);
      expect(text((await d.retrieve({}, claims))[0])).toBe('"before"');
      // A dedup hit cannot refresh the mtime on a read-only fs either: reported, not ignored.
      expect(await errorCode(() => d.store({}, [payload('before')]))).toBe('E_CONFIG');
    } finally {
      tryRun('umount', [root]);
    }
  });

  itIfChattr('an immutable directory makes store fail with E_CONFIG (EPERM), even as root', async () => {
    const root = path.join(dir, 'store');
    const d = new FsStorageDriver({ root });
    await d.store({}, [payload('before')]);
    const sha = path.join(root, 'v0', 'd', 'sha256');
    expect(tryRun('chattr', ['+i', sha])).toBe(true);
    try {
      const e = await captureStorageDriverError(() => d.store({}, [payload('after')]));
      expect(e.code).toBe('E_CONFIG');
      expect(e.message).toContain('EPERM');
      expect(await readdir(path.join(root, '.tmp'))).toEqual([]);
    } finally {
      tryRun('chattr', ['-i', sha]);
    }
  });

  // Skipped as root: CAP_DAC_OVERRIDE ignores mode bits, so chmod cannot produce EACCES; the
  // read-only mount (EROFS) and immutable directory (EPERM) tests cover the same code path.
  (isRoot ? it.skip : it)(
    'a non-writable root makes store fail with E_CONFIG (EACCES) for a non-root user',
    async () => {
      const root = path.join(dir, 'store');
      await mkdir(root, { mode: 0o500 });
      try {
        const e = await captureStorageDriverError(() => new FsStorageDriver({ root }).store({}, [payload('x')]));
        expect(e.code).toBe('E_CONFIG');
      } finally {
        await chmod(root, 0o700);
      }
    },
  );

  itIfMount(
    'a full filesystem makes store fail with retryable E_BACKEND (ENOSPC) and leaves no temp file',
    async () => {
      const mnt = path.join(dir, 'tiny');
      await mkdir(mnt);
      expect(tryRun('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', mnt])).toBe(true);
      try {
        const d = new FsStorageDriver({ root: path.join(mnt, 'store') });
        const big = { metadata: {}, data: new Uint8Array(1024 * 1024).fill(1) };
        const e = await captureStorageDriverError(() => d.store({}, [big]));
        expect(e.code).toBe('E_BACKEND');
        expect(e.retryable).toBe(true);
        expect(e.message).toContain('ENOSPC');
        expect(await readdir(path.join(mnt, 'store', '.tmp'))).toEqual([]);
        // Small payloads still fit.
        const claims: StorageDriverClaim[] = await d.store({}, [payload('small')]);
        expect(text((await d.retrieve({}, claims))[0])).toBe('"small"');
      } finally {
        tryRun('umount', [mnt]);
      }
    },
  );
});
