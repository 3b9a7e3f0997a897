/**
 * `/healthz` and the `instrumentation` hook over real HTTP: liveness without auth, CORS or the
 * concurrency limit; the hook sees every other request with its route, namespace, status, payload
 * count and bytes, runs the request inside its own call, and cannot lose a request by failing.
 */

import { AsyncLocalStorage } from 'node:async_hooks';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { FsStorageDriver } from '@x/storage-driver-fs';
import {
  type CodecServerError,
  type CodecServerInstrumentation,
  type CodecServerRequestOutcome,
  type CodecServerRequestStart,
  HEALTH_PATH,
  type RunningCodecServer,
  type StartCodecServerOptions,
  startCodecServer,
} from '../src';
import { body, cleanup, jsonPayload, makeTempDir, payloadsOf, post } from './helpers';

let dir: string;
let fs: FsStorageDriver;
const servers: RunningCodecServer[] = [];

beforeAll(async () => {
  dir = await makeTempDir('codec-health-');
  fs = new FsStorageDriver({ root: path.join(dir, 'store') });
});
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});
afterAll(async () => {
  await cleanup(dir);
});

async function start(options: Partial<StartCodecServerOptions> = {}): Promise<RunningCodecServer> {
  const server = await startCodecServer({
    port: 0,
    namespaces: { payments: { storage: { drivers: [fs], payloadSizeThreshold: 0 } } },
    otherNamespaces: { storage: { drivers: [fs], payloadSizeThreshold: 0 } },
    ...options,
  });
  servers.push(server);
  return server;
}

describe('/healthz', () => {
  it('answers GET and HEAD with 200 {"status":"ok"} without credentials, an allowed origin or a free slot', async () => {
    const server = await start({
      authorize: () => false, // every other request is refused
      maxConcurrentRequests: 1,
      basePath: '/codec',
    });
    expect(HEALTH_PATH).toBe('/healthz');
    const get = await fetch(`${server.url}/codec/healthz`, { headers: { Origin: 'https://evil.example' } });
    expect([get.status, await get.json(), get.headers.get('access-control-allow-origin')]).toEqual([
      200,
      { status: 'ok' },
      null,
    ]);
    expect(get.headers.get('cache-control')).toBe('no-store');
    const head = await fetch(`${server.url}/codec/healthz/`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    const refused = await post(server.url, '/codec/decode', body(jsonPayload('x')));
    expect(refused.status).toBe(403);
  });

  it('refuses other methods with 405 and Allow: GET, HEAD; outside basePath it is no route', async () => {
    const server = await start({ basePath: '/codec' });
    const reply = await post(server.url, '/codec/healthz', {});
    expect([reply.status, reply.json.code, reply.headers.get('allow')]).toEqual([
      405,
      'E_METHOD_NOT_ALLOWED',
      'GET, HEAD',
    ]);
    const outside = await fetch(`${server.url}/healthz`);
    expect(outside.status).toBe(404);
  });
});

describe('instrumentation hook', () => {
  /** A hook recording what it sees; the request runs inside `scope` (an AsyncLocalStorage). */
  function recorder() {
    const scope = new AsyncLocalStorage<string>();
    const seen: { start: Omit<CodecServerRequestStart, 'request'>; outcome: CodecServerRequestOutcome }[] = [];
    const hook: CodecServerInstrumentation = async (start, handle) => {
      const outcome = await scope.run('request-scope', handle);
      seen.push({ start: { method: start.method, route: start.route }, outcome });
    };
    return { scope, seen, hook };
  }

  it('sees every request but /healthz: route, namespace (configured or not), status, code, payloads, bytes', async () => {
    const { seen, hook } = recorder();
    const server = await start({ instrumentation: hook });
    const encoded = await post(server.url, '/encode', body(jsonPayload('a'), jsonPayload('b')), {
      headers: { 'X-Namespace': 'payments' },
    });
    expect(encoded.status).toBe(200);
    const references = payloadsOf(encoded);
    const decoded = await post(server.url, '/decode', body(...references), { headers: { 'X-Namespace': 'random-42' } });
    expect(payloadsOf(decoded)).toHaveLength(2);
    await post(server.url, '/nowhere', body());
    await fetch(`${server.url}/healthz`);

    expect(seen.map((s) => s.start)).toEqual([
      { method: 'POST', route: 'encode' },
      { method: 'POST', route: 'decode' },
      { method: 'POST', route: undefined },
    ]);
    const [enc, dec, none] = seen.map((s) => s.outcome);
    expect(enc).toMatchObject({ status: 200, code: undefined, route: 'encode', namespace: 'payments' });
    expect(enc?.namespaceConfigured).toBe(true);
    expect(enc?.payloads).toBe(2);
    expect(enc?.bytes).toBeGreaterThan(0);
    expect(dec).toMatchObject({ status: 200, route: 'decode', namespace: 'random-42', namespaceConfigured: false });
    expect([dec?.payloads, dec?.bytes]).toEqual([2, enc?.bytes]);
    expect(none).toMatchObject({ status: 404, code: 'E_NO_ROUTE', route: undefined, payloads: 0, bytes: 0 });
  });

  it("runs the request inside the hook's call, so a context it makes active reaches the drivers", async () => {
    const { scope, hook } = recorder();
    const contexts: (string | undefined)[] = [];
    const probe = new FsStorageDriver({ root: path.join(dir, 'probe') });
    const spy = {
      name: probe.name,
      type: probe.type,
      store: (...args: Parameters<FsStorageDriver['store']>) => {
        contexts.push(scope.getStore());
        return probe.store(...args);
      },
      retrieve: (...args: Parameters<FsStorageDriver['retrieve']>) => probe.retrieve(...args),
    };
    const server = await start({
      instrumentation: hook,
      otherNamespaces: { storage: { drivers: [spy], payloadSizeThreshold: 0 } },
    });
    expect((await post(server.url, '/encode', body(jsonPayload('x')))).status).toBe(200);
    expect(contexts).toEqual(['request-scope']);
  });

  it('reports 503 E_BUSY refusals and preflights (no namespace)', async () => {
    const { seen, hook } = recorder();
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let entered: () => void = () => {};
    const holding = new Promise<void>((resolve) => {
      entered = resolve;
    });
    const slow = {
      name: fs.name,
      type: fs.type,
      store: async (...args: Parameters<FsStorageDriver['store']>) => {
        entered();
        await gate;
        return fs.store(...args);
      },
      retrieve: (...args: Parameters<FsStorageDriver['retrieve']>) => fs.retrieve(...args),
    };
    const server = await start({
      instrumentation: hook,
      maxConcurrentRequests: 1,
      cors: { origins: ['http://localhost:8233'] },
      otherNamespaces: { storage: { drivers: [slow], payloadSizeThreshold: 0 } },
    });
    const held = post(server.url, '/encode', body(jsonPayload('held')));
    await holding; // the only slot is taken
    expect((await post(server.url, '/encode', body(jsonPayload('refused')))).status).toBe(503);
    release();
    expect((await held).status).toBe(200);
    const preflight = await fetch(`${server.url}/decode`, {
      method: 'OPTIONS',
      headers: { Origin: 'http://localhost:8233', 'Access-Control-Request-Method': 'POST' },
    });
    expect(preflight.status).toBe(204);
    expect(seen.map((s) => s.outcome)).toEqual([
      {
        status: 503,
        code: 'E_BUSY',
        route: 'encode',
        namespace: undefined,
        namespaceConfigured: false,
        payloads: 0,
        bytes: 0,
      },
      expect.objectContaining({ status: 200, route: 'encode', namespace: 'default', payloads: 1 }),
      expect.objectContaining({ status: 204, route: 'decode', namespace: undefined, payloads: 0 }),
    ]);
  });

  it('a hook that throws before handling, or never handles, still gets the request answered; onError hears of it', async () => {
    const errors: CodecServerError[] = [];
    const throwing: CodecServerInstrumentation = () => {
      throw new Error('broken telemetry');
    };
    const server = await start({ instrumentation: throwing, onError: (e) => errors.push(e) });
    const reply = await post(server.url, '/encode', body(jsonPayload('still served')));
    expect(reply.status).toBe(200);
    expect(errors.map((e) => [e.code, (e.cause as Error).message])).toEqual([['E_INTERNAL', 'broken telemetry']]);

    let calls = 0;
    const idle = await start({ instrumentation: () => calls++ });
    expect((await post(idle.url, '/encode', body(jsonPayload('served anyway')))).status).toBe(200);
    expect(calls).toBe(1);
  });

  it('rejects an instrumentation that is not a function', async () => {
    await expect(start({ instrumentation: 42 as never })).rejects.toThrow(TypeError);
  });
});
