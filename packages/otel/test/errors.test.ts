/**
 * The span status, error attributes and error metric of every error code, each provoked for real
 * (the fs driver on a temp directory; a PostgreSQL driver whose server is not there for
 * `E_BACKEND`), and of a plain `TypeError` (API misuse).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { SpanStatusCode } from '@opentelemetry/api';
import {
  StorageDriverClaim as Claim,
  type StorageDriverClaim,
  type StorageDriverErrorCode,
} from '@x/storage-driver-core';
import { FsStorageDriver, keyToStoragePath } from '@x/storage-driver-fs';
import { PostgresStorageDriver } from '@x/storage-driver-postgres';
import { freePort } from '@x/test-servers';
import { Pool } from 'pg';
import { StorageAttributes as A, instrumentStorageDriver, StorageMetrics as M } from '../src';
import { makeTelemetry, payload, type Telemetry } from './helpers';

let dir: string;
let telemetry: Telemetry;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'otel-errors-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
afterEach(async () => {
  await telemetry.shutdown();
});

/** A fresh fs driver, instrumented into `telemetry`. */
function fsDriver(options: { maxPayloadSize?: number } = {}) {
  const inner = new FsStorageDriver({
    root: path.join(dir, `store-${Math.random().toString(36).slice(2)}`),
    ...options,
  });
  return {
    inner,
    driver: instrumentStorageDriver(inner, {
      tracerProvider: telemetry.tracerProvider,
      meterProvider: telemetry.meterProvider,
    }),
  };
}

/** The claim of `text` as the fs driver would return it, stored. */
async function storedClaim(driver: FsStorageDriver, text: string): Promise<StorageDriverClaim> {
  const [claim] = await driver.store({}, [payload(text)]);
  if (claim === undefined) throw new Error('no claim');
  return claim;
}

const cases: {
  code: StorageDriverErrorCode;
  status: SpanStatusCode;
  retryable: boolean;
  operation: 'store' | 'retrieve';
  provoke: () => Promise<unknown>;
}[] = [
  {
    code: 'E_TOO_LARGE',
    status: SpanStatusCode.ERROR,
    retryable: false,
    operation: 'store',
    provoke: () => fsDriver({ maxPayloadSize: 16 }).driver.store({}, [payload('far too large for 16 bytes')]),
  },
  {
    code: 'E_NOT_FOUND',
    status: SpanStatusCode.ERROR,
    retryable: false,
    operation: 'retrieve',
    provoke: async () => {
      const { inner, driver } = fsDriver();
      const claim = await storedClaim(inner, 'deleted');
      await inner.delete([claim.claimData.key as string]);
      return driver.retrieve({}, [claim]);
    },
  },
  {
    code: 'E_INTEGRITY',
    status: SpanStatusCode.ERROR,
    retryable: false,
    operation: 'retrieve',
    provoke: async () => {
      const { inner, driver } = fsDriver();
      const claim = await storedClaim(inner, 'tampered');
      // Same length, other bytes: the file is found, its SHA-256 is not the claim's.
      const file = path.join(inner.root, keyToStoragePath(claim.claimData.key as string));
      const bytes = await readFile(file);
      bytes.writeUInt8(bytes.readUInt8(bytes.length - 2) ^ 1, bytes.length - 2);
      await writeFile(file, bytes);
      return driver.retrieve({}, [claim]);
    },
  },
  {
    code: 'E_INVALID_CLAIM',
    status: SpanStatusCode.ERROR,
    retryable: false,
    operation: 'retrieve',
    provoke: () => fsDriver().driver.retrieve({}, [new Claim({ key: '../../etc/passwd', hash_algorithm: 'sha256' })]),
  },
  {
    code: 'E_ABORTED',
    status: SpanStatusCode.UNSET, // the caller's (or a failing sibling's) doing, not the driver's failure
    retryable: false,
    operation: 'store',
    provoke: () => fsDriver().driver.store({ abortSignal: AbortSignal.abort() }, [payload('aborted')]),
  },
  {
    code: 'E_CONFIG',
    status: SpanStatusCode.ERROR,
    retryable: false,
    operation: 'store',
    provoke: async () => {
      const { inner, driver } = fsDriver();
      await inner.close();
      return driver.store({}, [payload('after close')]);
    },
  },
  {
    code: 'E_BACKEND',
    status: SpanStatusCode.ERROR,
    retryable: true,
    operation: 'store',
    provoke: async () => {
      // A PostgreSQL server that is not there: connection refused, a transient backend failure.
      const pool = new Pool({ host: '127.0.0.1', port: await freePort(), user: 'x', database: 'x' });
      pool.on('error', () => {});
      try {
        const inner = new PostgresStorageDriver({ pool });
        const driver = instrumentStorageDriver(inner, {
          tracerProvider: telemetry.tracerProvider,
          meterProvider: telemetry.meterProvider,
        });
        return await driver.store({}, [payload('nowhere')]);
      } finally {
        await pool.end();
      }
    },
  },
];

describe('status and attributes on each error code', () => {
  it.each(cases.map((c) => ({ ...c, statusName: SpanStatusCode[c.status] })))(
    '$code: status $statusName, error.type, code, retryable $retryable, errors counter',
    async (c) => {
      telemetry = makeTelemetry();
      await expect(c.provoke()).rejects.toMatchObject({ code: c.code, retryable: c.retryable });
      const spans = telemetry.spans().filter((s) => s.attributes[A.OPERATION] === c.operation);
      const failed = spans.at(-1);
      expect(failed?.status.code).toBe(c.status);
      if (c.status === SpanStatusCode.ERROR) expect(failed?.status.message).toEqual(expect.any(String));
      expect(failed?.attributes).toMatchObject({
        [A.ERROR_TYPE]: c.code,
        [A.ERROR_CODE]: c.code,
        [A.ERROR_RETRYABLE]: c.retryable,
      });
      expect(failed?.events[0]?.name).toBe('exception');
      expect(failed?.events[0]?.attributes?.['exception.type']).toBe(c.code);
      expect(await telemetry.sum(M.ERRORS, { [A.OPERATION]: c.operation, [A.ERROR_TYPE]: c.code })).toBe(1);
      const outcome = c.code === 'E_ABORTED' ? 'aborted' : 'error';
      expect(await telemetry.sum(M.DURATION, { [A.OPERATION]: c.operation, [A.OUTCOME]: outcome })).toBe(1);
      expect(await telemetry.sum(M.DURATION, { [A.OUTCOME]: 'success' })).toBe(0);
    },
  );

  it('a non-coded error (API misuse: TypeError) is an error of type TypeError, without code or retryable', async () => {
    telemetry = makeTelemetry();
    await expect(fsDriver().driver.store({}, 'not an array' as never)).rejects.toThrow(TypeError);
    const [span] = telemetry.spans();
    expect(span?.status.code).toBe(SpanStatusCode.ERROR);
    expect(span?.attributes[A.ERROR_TYPE]).toBe('TypeError');
    expect(span?.attributes[A.ERROR_CODE]).toBeUndefined();
    expect(span?.attributes[A.ERROR_RETRYABLE]).toBeUndefined();
    expect(await telemetry.sum(M.ERRORS, { [A.ERROR_TYPE]: 'TypeError' })).toBe(1);
  });
});
