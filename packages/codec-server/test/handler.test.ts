/** The handler over real HTTP: every route and error case. Real fs driver in a temp dir. */
import { readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import * as path from 'node:path';
import { type Payload, StorageDriverError } from '@x/storage-driver-core';
import { FsStorageDriver } from '@x/storage-driver-fs';
import { InMemoryStorageDriver } from '@x/storage-driver-test-suite';
import {
  type CodecServerError,
  type CodecServerOptions,
  createCodecServerHandler,
  decodeReferencePayload,
  isReferencePayload,
  type PayloadCodec,
  type RunningCodecServer,
  startCodecServer,
} from '../src';
import { body, cleanup, jsonPayload, jsonValue, makeTempDir, meta, payloadsOf, post, preflight } from './helpers';

const encoder = new TextEncoder();
const UI_ORIGIN = 'http://127.0.0.1:8233';

/** A codec that marks payloads by wrapping data in a prefix (and records calls). */
function prefixCodec(prefix: string, calls: string[]): PayloadCodec {
  const mark = encoder.encode(prefix);
  return {
    async encode(payloads) {
      calls.push(`${prefix}:encode`);
      return payloads.map((p) => ({ ...p, data: new Uint8Array([...mark, ...(p.data ?? [])]) }));
    },
    async decode(payloads) {
      calls.push(`${prefix}:decode`);
      return payloads.map((p) => {
        const data = p.data ?? new Uint8Array(0);
        if (Buffer.from(data.subarray(0, mark.length)).toString() !== prefix) throw new Error(`not ${prefix}-encoded`);
        return { ...p, data: data.subarray(mark.length) };
      });
    },
  };
}

let dir: string;
let driver: FsStorageDriver;
let server: RunningCodecServer;
let url: string;
const calls: string[] = [];
const errors: CodecServerError[] = [];
const big = jsonPayload({ text: 'y'.repeat(2000) });
const small = jsonPayload('small');

beforeAll(async () => {
  dir = await makeTempDir();
  driver = new FsStorageDriver({ root: path.join(dir, 'payloads') });
  const failing = new InMemoryStorageDriver({ name: 'flaky' });
  failing.retrieve = async () => {
    throw new Error('secret connection string postgres://user:pw@host');
  };
  server = await startCodecServer({
    port: 0,
    namespaces: {
      default: { storage: { drivers: [driver], payloadSizeThreshold: 1024 } },
      codecs: {
        storage: { drivers: [driver], payloadSizeThreshold: 1024 },
        payloadCodecs: [prefixCodec('A', calls), prefixCodec('B', calls)],
        outerCodecs: [prefixCodec('O', calls)],
      },
      flaky: { storage: { drivers: [failing] } },
      plain: {},
    },
    cors: { origins: [UI_ORIGIN] },
    maxBodyBytes: 64 * 1024,
    authorize: (info) => {
      if (info.authorization === 'Bearer bad') return { status: 401, message: 'token expired' };
      if (info.authorization === 'Bearer readonly' && info.route === 'encode') return false;
      if (info.authorization === 'Bearer boom') throw new Error('auth backend down');
      return true;
    },
    onError: (e) => errors.push(e),
  });
  url = server.url;
});

afterAll(async () => {
  await server?.close();
  await cleanup(dir);
});

async function encodeBig(): Promise<Payload> {
  const [ref] = payloadsOf(await post(url, '/encode', body(big)));
  return ref as Payload;
}

describe('routes', () => {
  it('/encode stores payloads at or above the threshold and keeps smaller ones inline', async () => {
    const out = payloadsOf(await post(url, '/encode', body(small, big)));
    expect(jsonValue(out[0] as Payload)).toBe('small');
    expect(isReferencePayload(out[1] as Payload)).toBe(true);
    const ref = decodeReferencePayload(out[1] as Payload);
    expect(ref.driverName).toBe('fs');
    expect(ref.claimData.key).toMatch(/^v0\/ns\/default\/wt\/null\/wi\/null\/ri\/null\/d\/sha256\/[0-9a-f]{64}$/);
    expect(ref.sizeBytes).toBeGreaterThan(2000);
    expect(await readFile(driver.pathForKey(ref.claimData.key as string))).toBeDefined();
  });

  it('/decode retrieves references; preserveStorageRefs=true returns them as they are', async () => {
    const ref = await encodeBig();
    const decoded = payloadsOf(await post(url, '/decode', body(small, ref)));
    expect(decoded.map((p) => jsonValue(p))).toEqual(['small', { text: 'y'.repeat(2000) }]);
    const preserved = payloadsOf(await post(url, '/decode?preserveStorageRefs=true', body(small, ref)));
    expect(jsonValue(preserved[0] as Payload)).toBe('small');
    expect(preserved[1]).toEqual(ref);
  });

  it('/download retrieves and decodes references, and rejects anything else with 400', async () => {
    const ref = await encodeBig();
    const out = payloadsOf(await post(url, '/download', body(ref, ref)));
    expect(out.map((p) => jsonValue(p))).toEqual([{ text: 'y'.repeat(2000) }, { text: 'y'.repeat(2000) }]);
    const bad = await post(url, '/download', body(ref, small));
    expect(bad.status).toBe(400);
    expect(bad.json).toMatchObject({ code: 'E_NOT_A_REFERENCE', index: 1 });
  });

  it('runs payload codecs inside storage and outer codecs outside, in SDK order', async () => {
    calls.length = 0;
    const ns = { 'X-Namespace': 'codecs' };
    const [ref, inline] = payloadsOf(await post(url, '/encode', body(big, small), { headers: ns }));
    expect(calls).toEqual(['A:encode', 'B:encode', 'O:encode']);
    // The stored bytes are the codec output; the reference itself went through the outer codec only.
    expect(Buffer.from((inline as Payload).data ?? []).toString()).toBe('OBA"small"');
    calls.length = 0;
    const decoded = payloadsOf(await post(url, '/decode', body(ref as Payload, inline as Payload), { headers: ns }));
    expect(calls).toEqual(['O:decode', 'B:decode', 'A:decode']);
    expect(decoded.map((p) => jsonValue(p))).toEqual([{ text: 'y'.repeat(2000) }, 'small']);
    // preserveStorageRefs: the reference is untouched by payload codecs, other payloads are decoded.
    const preserved = payloadsOf(
      await post(url, '/decode?preserveStorageRefs=true', body(ref as Payload, inline as Payload), { headers: ns }),
    );
    expect(isReferencePayload(preserved[0] as Payload)).toBe(true);
    expect(jsonValue(preserved[1] as Payload)).toBe('small');
  });

  it('accepts snake_case fields, URL-safe base64, numeric sizeBytes and ignores unknown fields', async () => {
    const ref = await encodeBig();
    const json = {
      payloads: [
        {
          metadata: Object.fromEntries(
            Object.entries(ref.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64url')]),
          ),
          data: Buffer.from(ref.data ?? []).toString('base64url'),
          external_payloads: [{ size_bytes: 2100 }],
          somethingNew: true,
        },
      ],
    };
    const [out] = payloadsOf(await post(url, '/decode', json));
    expect(jsonValue(out as Payload)).toEqual({ text: 'y'.repeat(2000) });
  });

  it('writes proto3 JSON: camelCase, base64, int64 sizeBytes as a string', async () => {
    const reply = await post(url, '/encode', body(big));
    const [p] = reply.json.payloads ?? [];
    expect(Object.keys(p ?? {})).toEqual(['metadata', 'data', 'externalPayloads']);
    expect(typeof p?.externalPayloads?.[0]?.sizeBytes).toBe('string');
    expect(Buffer.from(p?.metadata?.messageType ?? '', 'base64').toString()).toBe(
      'temporal.api.sdk.v1.ExternalStorageReference',
    );
  });

  it('uses the default namespace when X-Namespace is absent, and 404s unknown namespaces', async () => {
    const ref = await encodeBig();
    expect((await post(url, '/decode', body(ref))).status).toBe(200);
    const unknown = await post(url, '/decode', body(ref), { headers: { 'X-Namespace': 'nope' } });
    expect(unknown.status).toBe(404);
    expect(unknown.json).toEqual({
      code: 'E_UNKNOWN_NAMESPACE',
      message: 'no codec configuration for namespace "nope"',
    });
  });

  it('404s references to a driver the namespace does not configure', async () => {
    const ref = await encodeBig();
    const reply = await post(url, '/decode', body(small, ref), { headers: { 'X-Namespace': 'plain' } });
    expect(reply.status).toBe(404);
    expect(reply.json).toMatchObject({ code: 'E_UNKNOWN_DRIVER', index: 1, driverName: 'fs' });
    // without storage, preserved references pass through
    const kept = payloadsOf(
      await post(url, '/decode?preserveStorageRefs=true', body(ref), { headers: { 'X-Namespace': 'plain' } }),
    );
    expect(kept[0]).toEqual(ref);
  });
});

describe('errors', () => {
  it.each([
    ['not JSON', '{"payloads": [', 'E_BAD_REQUEST'],
    ['empty body', '', 'E_BAD_REQUEST'],
    ['payloads not an array', '{"payloads": {}}', 'E_BAD_REQUEST'],
    ['a payload not an object', '{"payloads": [1]}', 'E_BAD_REQUEST'],
    ['bad base64', '{"payloads": [{"data": "***"}]}', 'E_BAD_REQUEST'],
    ['metadata value not a string', '{"payloads": [{"metadata": {"encoding": 5}}]}', 'E_BAD_REQUEST'],
    ['sizeBytes not an int64', '{"payloads": [{"externalPayloads": [{"sizeBytes": "1e3"}]}]}', 'E_BAD_REQUEST'],
  ])('400 for %s', async (_name, raw, code) => {
    const reply = await post(url, '/decode', undefined, { raw });
    expect(reply.status).toBe(400);
    expect(reply.json.code).toBe(code);
    expect(reply.text).not.toMatch(/\n\s+at /);
  });

  it('400 E_INVALID_REFERENCE for a malformed reference', async () => {
    const ref = await encodeBig();
    const broken = { ...ref, data: encoder.encode('{"claimData":{}}') };
    const reply = await post(url, '/decode', body(small, broken));
    expect(reply.status).toBe(400);
    expect(reply.json).toMatchObject({ code: 'E_INVALID_REFERENCE', index: 1 });
  });

  it('502 with the driver error code when storage fails (missing object, tampered object, hostile claim)', async () => {
    const ref = await encodeBig();
    const { claimData } = decodeReferencePayload(ref);
    const file = driver.pathForKey(claimData.key as string);
    await writeFile(file, Buffer.concat([await readFile(file), Buffer.from([1])]));
    const tampered = await post(url, '/decode', body(ref));
    expect(tampered.status).toBe(502);
    expect(tampered.json).toMatchObject({ code: 'E_INTEGRITY', driverName: 'fs', retryable: false, index: 0 });
    await rm(file);
    const missing = await post(url, '/download', body(ref));
    expect(missing.status).toBe(502);
    expect(missing.json.code).toBe('E_NOT_FOUND');
    const hostile = {
      ...ref,
      data: encoder.encode(JSON.stringify({ driverName: 'fs', claimData: { ...claimData, key: '../../etc/passwd' } })),
    };
    const reply = await post(url, '/decode', body(small, hostile));
    expect(reply.status).toBe(502);
    expect(reply.json).toMatchObject({ code: 'E_INVALID_CLAIM', index: 1 });
  });

  it('502 E_STORAGE without leaking the message of a non-storage driver error', async () => {
    const ref = await encodeBig();
    const { claimData } = decodeReferencePayload(ref);
    const flakyRef = { ...ref, data: encoder.encode(JSON.stringify({ driverName: 'flaky', claimData })) };
    errors.length = 0;
    const reply = await post(url, '/decode', body(flakyRef), { headers: { 'X-Namespace': 'flaky' } });
    expect(reply.status).toBe(502);
    expect(reply.json).toEqual({
      code: 'E_STORAGE',
      message: 'storage driver "flaky" failed',
      driverName: 'flaky',
      retryable: false,
    });
    expect(reply.text).not.toContain('secret');
    expect(errors.map((e) => (e.cause as Error).message)).toEqual(['secret connection string postgres://user:pw@host']);
  });

  it('404 for unknown routes, 405 for other methods, 415 for non-JSON bodies', async () => {
    expect((await post(url, '/nope', body())).json.code).toBe('E_NO_ROUTE');
    const get = await post(url, '/decode', undefined, { method: 'GET' });
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST, OPTIONS');
    const text = await post(url, '/decode', undefined, { raw: 'x', headers: { 'Content-Type': 'text/plain' } });
    expect(text.status).toBe(415);
    expect(text.json.code).toBe('E_UNSUPPORTED_MEDIA_TYPE');
  });

  it('413 for a body over maxBodyBytes (declared length and chunked)', async () => {
    const huge = JSON.stringify(body(jsonPayload('z'.repeat(70 * 1024))));
    const declared = await post(url, '/decode', undefined, { raw: huge });
    expect(declared.status).toBe(413);
    expect(declared.json.code).toBe('E_BODY_TOO_LARGE');
    const chunked = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = httpRequest(
        `${url}/decode`,
        { method: 'POST', headers: { 'Content-Type': 'application/json' } },
        (res) => {
          let text = '';
          res.on('data', (d: Buffer) => {
            text += d.toString();
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        },
      );
      req.on('error', reject);
      for (let i = 0; i < 80; i++) req.write(' '.repeat(1024));
      req.end();
    });
    expect(chunked.status).toBe(413);
    expect(JSON.parse(chunked.text).code).toBe('E_BODY_TOO_LARGE');
  });
});

describe('CORS and auth', () => {
  it('answers preflights for configured origins with the allowed headers', async () => {
    const res = await preflight(url, '/decode', UI_ORIGIN);
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe(UI_ORIGIN);
    expect(res.headers.get('access-control-allow-headers')).toContain('Content-Type, X-Namespace, Authorization');
    expect(res.headers.get('access-control-allow-methods')).toBe('POST, OPTIONS');
    const other = await fetch(`${url}/decode`, { method: 'OPTIONS', headers: { Origin: 'http://evil.example' } });
    expect(other.status).toBe(403);
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('sets CORS headers on responses and rejects requests from other origins', async () => {
    const ok = await post(url, '/decode', body(small), { headers: { Origin: UI_ORIGIN } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('access-control-allow-origin')).toBe(UI_ORIGIN);
    const evil = await post(url, '/encode', body(big), { headers: { Origin: 'http://evil.example' } });
    expect(evil.status).toBe(403);
    expect(evil.json.code).toBe('E_ORIGIN_NOT_ALLOWED');
  });

  it('lets the auth hook reject with 401 / 403, and fails closed with 500 when it throws', async () => {
    const expired = await post(url, '/decode', body(small), { headers: { Authorization: 'Bearer bad' } });
    expect(expired.status).toBe(401);
    expect(expired.json).toEqual({ code: 'E_UNAUTHORIZED', message: 'token expired' });
    expect(expired.headers.get('www-authenticate')).toBe('Bearer');
    const readonly = await post(url, '/encode', body(small), { headers: { Authorization: 'Bearer readonly' } });
    expect(readonly.status).toBe(403);
    expect(readonly.json.code).toBe('E_FORBIDDEN');
    expect((await post(url, '/decode', body(small), { headers: { Authorization: 'Bearer readonly' } })).status).toBe(
      200,
    );
    // The hook sees requests to unknown routes too, before routing.
    expect((await post(url, '/nope', body(), { headers: { Authorization: 'Bearer bad' } })).status).toBe(401);
    const boom = await post(url, '/decode', body(small), { headers: { Authorization: 'Bearer boom' } });
    expect(boom.status).toBe(500);
    expect(boom.json).toEqual({ code: 'E_INTERNAL', message: 'authorization failed' });
  });
});

describe('mounting', () => {
  async function listen(
    handler: ReturnType<typeof createCodecServerHandler>,
    pre?: (req: never) => void,
  ): Promise<Server> {
    const srv = createServer((req, res) => {
      if (pre) pre(req as never);
      handler(req, res);
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    return srv;
  }
  const options = (): CodecServerOptions => ({
    namespaces: { default: { storage: { drivers: [driver], payloadSizeThreshold: 1024 } } },
    basePath: '/codec',
  });

  it('serves under a basePath', async () => {
    const srv = await listen(createCodecServerHandler(options()));
    const base = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
    try {
      expect((await post(base, '/codec/encode', body(small))).status).toBe(200);
      expect((await post(base, '/encode', body(small))).status).toBe(404);
    } finally {
      srv.close();
    }
  });

  it('uses a body an express-style middleware already parsed', async () => {
    const handler = createCodecServerHandler(options());
    const srv = createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      (req as { body?: unknown }).body = JSON.parse(Buffer.concat(chunks).toString());
      handler(req, res);
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
    try {
      const out = payloadsOf(await post(base, '/codec/encode', body(big)));
      expect(isReferencePayload(out[0] as Payload)).toBe(true);
    } finally {
      srv.close();
    }
  });

  it('validates options', () => {
    expect(() => createCodecServerHandler({ namespaces: { a: { storage: { drivers: [] } } } })).toThrow(
      StorageDriverError,
    );
    expect(() =>
      createCodecServerHandler({
        namespaces: { a: { storage: { drivers: [driver, new InMemoryStorageDriver()] } } },
      }),
    ).toThrow(/driverSelector is required/);
    expect(() => createCodecServerHandler({ maxBodyBytes: 0 })).toThrow(/maxBodyBytes/);
    expect(() =>
      createCodecServerHandler({ namespaces: { a: { storage: { drivers: [driver], payloadSizeThreshold: -1 } } } }),
    ).toThrow(/payloadSizeThreshold/);
    expect(meta(jsonPayload(1), 'encoding')).toBe('json/plain');
  });
});

describe('adversarial input', () => {
  /** Sends a raw HTTP/1.1 request and returns the status line and body. */
  function rawRequest(target: string, headers: Record<string, string>, payload: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = connect((server.server.address() as AddressInfo).port, '127.0.0.1', () => {
        const lines = Object.entries({ ...headers, 'Content-Length': String(Buffer.byteLength(payload)) }).map(
          ([k, v]) => `${k}: ${v}`,
        );
        socket.end(
          `POST ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${lines.join('\r\n')}\r\n\r\n${payload}`,
        );
      });
      let text = '';
      socket.on('data', (d: Buffer) => {
        text += d.toString();
      });
      socket.on('end', () => resolve(text));
      socket.on('error', reject);
    });
  }

  it('routes only exact paths: the auth hook and the router agree on every spelling', async () => {
    const seen: { url: string; path: string; route: string | undefined }[] = [];
    const srv = await startCodecServer({
      port: 0,
      namespaces: { default: { storage: { drivers: [driver], payloadSizeThreshold: 1024 } } },
      authorize: (info) => {
        seen.push({ url: info.request.url ?? '', path: info.path, route: info.route });
        return info.route !== 'decode'; // decode is forbidden
      },
    });
    const port = (srv.server.address() as AddressInfo).port;
    const send = (target: string): Promise<string> =>
      new Promise((resolve, reject) => {
        const socket = connect(port, '127.0.0.1', () =>
          socket.end(
            `POST ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{"payloads":[]}`,
          ),
        );
        let text = '';
        socket.on('data', (d: Buffer) => {
          text += d.toString();
        });
        socket.on('end', () => resolve(text.split('\r\n')[0] as string));
        socket.on('error', reject);
      });
    try {
      for (const target of ['/decode', '/decode/', '/decode?x=1', '/a/../decode', 'http://other.example/decode']) {
        expect([target, await send(target)]).toEqual([target, 'HTTP/1.1 403 Forbidden']);
      }
      // Neither the hook nor the router may read "//host/decode" as "/decode" (the authority is not a path).
      for (const target of ['//decode', '//other.example/decode', '/DECODE', '/%64ecode', '/decode%2F', '/decode;x']) {
        expect([target, await send(target)]).toEqual([target, 'HTTP/1.1 404 Not Found']);
      }
      expect(seen.filter((s) => s.route === 'decode').every((s) => s.path === '/decode')).toBe(true);
      expect(seen.find((s) => s.url === '//other.example/decode')).toMatchObject({ route: undefined });
    } finally {
      await srv.close();
    }
  });

  it('413 E_TOO_MANY_PAYLOADS for more payloads than maxPayloads (default 10000), before decoding any', async () => {
    const many = `{"payloads":[${Array(10_001).fill('{}').join(',')}]}`;
    const reply = await post(url, '/decode', undefined, { raw: many }); // 30 KB: under maxBodyBytes
    expect(reply.status).toBe(413);
    expect(reply.json).toEqual({
      code: 'E_TOO_MANY_PAYLOADS',
      message: 'request has 10001 payloads; at most 10000 are accepted',
    });
    const ok = await post(url, '/decode', undefined, { raw: `{"payloads":[${Array(10_000).fill('{}').join(',')}]}` });
    expect(ok.status).toBe(200);
    expect(ok.json.payloads).toHaveLength(10_000);
    const handler = createCodecServerHandler({ namespaces: { default: {} }, maxPayloads: 2 });
    const srv = createServer(handler);
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    try {
      const base = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
      expect((await post(base, '/encode', body(small, small, small))).json.code).toBe('E_TOO_MANY_PAYLOADS');
      expect((await post(base, '/encode', body(small, small))).status).toBe(200);
    } finally {
      srv.close();
    }
    expect(() => createCodecServerHandler({ maxPayloads: 0 })).toThrow(/maxPayloads/);
  });

  it('413 E_TOO_MANY_PAYLOADS for more metadata entries than maxMetadataEntries (default 100000)', async () => {
    const entries = (n: number, from = 0): string =>
      Array.from({ length: n }, (_, i) => `"k${(from + i).toString(36)}":""`).join(',');
    const flood = `{"payloads":[{"metadata":{${entries(6000)}}},{"metadata":{${entries(6000, 6000)}}}]}`;
    const handler = createCodecServerHandler({ namespaces: { default: {} }, maxMetadataEntries: 10_000 });
    const srv = createServer(handler);
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    try {
      const base = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
      const reply = await post(base, '/decode', undefined, { raw: flood });
      expect(reply.status).toBe(413);
      expect(reply.json.code).toBe('E_TOO_MANY_PAYLOADS');
      expect(reply.json.message).toContain('metadata entries');
      expect((await post(base, '/decode', body(small, small))).status).toBe(200);
    } finally {
      srv.close();
    }
    // The default: one payload with 100,001 entries (1.3 MB, under 16 MiB).
    const defaults = createCodecServerHandler({ namespaces: { default: {} } });
    const srv2 = createServer(defaults);
    await new Promise<void>((r) => srv2.listen(0, '127.0.0.1', r));
    try {
      const base = `http://127.0.0.1:${(srv2.address() as AddressInfo).port}`;
      const reply = await post(base, '/decode', undefined, {
        raw: `{"payloads":[{"metadata":{${entries(100_001)}}}]}`,
      });
      expect(reply.status).toBe(413);
    } finally {
      srv2.close();
    }
  });

  it('closes the connection instead of draining an unread body after a rejection', async () => {
    const reply = await new Promise<{ status: number; connection: string | undefined }>((resolve, reject) => {
      const req = httpRequest(`${url}/decode`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: 'Bearer bad' },
      });
      req.on('response', (res) => {
        res.resume();
        resolve({ status: res.statusCode ?? 0, connection: res.headers.connection });
        req.destroy();
      });
      req.on('error', reject);
      req.write('{"payloads":['); // the body never ends
    });
    expect(reply).toEqual({ status: 401, connection: 'close' });
  });

  it('stops reading a chunked body at the limit and answers 413 while the client is still sending', async () => {
    let written = 0;
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${url}/decode`, { method: 'POST', headers: { 'Content-Type': 'application/json' } });
      let answered = false;
      req.on('response', (res) => {
        answered = true;
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', (e) => (answered ? undefined : reject(e)));
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      const pump = (): void => {
        // Up to 64 MiB: far more than maxBodyBytes (64 KiB); the server must answer long before.
        while (!answered && written < 64 * 1024 * 1024) {
          written += chunk.length;
          if (!req.write(chunk)) {
            req.once('drain', pump);
            return;
          }
        }
        if (!answered) req.end();
      };
      pump();
    });
    expect(status).toBe(413);
    expect(written).toBeLessThan(64 * 1024 * 1024);
  });

  it('never reflects X-Namespace or other input into headers, and never sends stack traces', async () => {
    const text = await rawRequest(
      '/decode',
      { 'Content-Type': 'application/json', 'X-Namespace': 'evil\u00a0Set-Cookie: a=b' },
      '{"payloads":[]}',
    );
    const [head, payload] = text.split('\r\n\r\n');
    expect(head).toMatch(/^HTTP\/1\.1 404/);
    expect(head).not.toMatch(/set-cookie/i);
    expect(JSON.parse(payload as string).code).toBe('E_UNKNOWN_NAMESPACE');
    const crlf = await rawRequest('/decode', { 'X-Namespace': 'a\rSet-Cookie: a=b' }, '{}');
    expect(crlf).toMatch(/^HTTP\/1\.1 400/); // rejected by Node's HTTP parser
    for (const raw of [
      '{"payloads":[{"data":1}]}',
      '{"payloads":[{"metadata":[]}]}',
      '{"payloads":"x"}',
      '[]',
      'null',
    ]) {
      const reply = await post(url, '/decode', undefined, { raw });
      expect([raw, reply.status, reply.json.code]).toEqual([raw, 400, 'E_BAD_REQUEST']);
      expect(reply.text).not.toMatch(/\bat \S+ \(|node:internal|\.ts:\d+/);
    }
  });

  it("rejects CORS origins '*' together with allowCredentials (it would let any site read with the user's cookies)", () => {
    expect(() => createCodecServerHandler({ cors: { origins: '*', allowCredentials: true } })).toThrow(
      /allowCredentials/,
    );
  });
});
