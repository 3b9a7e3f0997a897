/**
 * The real handler mounted in real express 5 and fastify 5 apps, over real HTTP, with the fs
 * driver. The app setups below are the README's snippets.
 */
import { readFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { request as httpRequest } from 'node:http';
import * as path from 'node:path';
import middie from '@fastify/middie';
import { decodePayload, type Payload, sha256Hex } from '@x/storage-driver-core';
import { FsStorageDriver } from '@x/storage-driver-fs';
import express from 'express';
import Fastify, { type FastifyInstance } from 'fastify';
import {
  type CodecServerOptions,
  type CodecServerRequestInfo,
  createCodecServerHandler,
  decodeReferencePayload,
  isReferencePayload,
} from '../src';
import { body, cleanup, jsonPayload, jsonValue, makeTempDir, payloadsOf, post, preflight } from './helpers';

const UI_ORIGIN = 'http://localhost:8233';
const big = jsonPayload({ text: 'y'.repeat(2000) });
const small = jsonPayload('small');

let dir: string;
let defaultDriver: FsStorageDriver;
let teamDriver: FsStorageDriver;

beforeAll(async () => {
  dir = await makeTempDir('codec-server-frameworks-');
  defaultDriver = new FsStorageDriver({ root: path.join(dir, 'default') });
  teamDriver = new FsStorageDriver({ root: path.join(dir, 'team') });
});

afterAll(async () => {
  await cleanup(dir);
});

/** Handler options shared by every app; `seen` collects what the auth hook was shown. */
function codecOptions(seen: CodecServerRequestInfo[], extra: Partial<CodecServerOptions> = {}): CodecServerOptions {
  return {
    namespaces: {
      default: { storage: { drivers: [defaultDriver], payloadSizeThreshold: 1024 } },
      team: { storage: { drivers: [teamDriver], payloadSizeThreshold: 1024 } },
    },
    cors: { origins: [UI_ORIGIN] },
    maxBodyBytes: 64 * 1024,
    authorize: (info) => {
      seen.push(info);
      return info.authorization === 'Bearer bad' ? { status: 401, message: 'token expired' } : true;
    },
    ...extra,
  };
}

/** A running app: `endpoint` is the codec endpoint (`…/codec`), `origin` the server root. */
interface RunningApp {
  origin: string;
  endpoint: string;
  close(): Promise<void>;
}

async function listenExpress(app: express.Express): Promise<RunningApp> {
  const server = await new Promise<Server>((resolve, reject) => {
    const s: Server = app.listen(0, '127.0.0.1', (error?: Error) => (error ? reject(error) : resolve(s)));
  });
  const address = server.address();
  const origin = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`;
  return {
    origin,
    endpoint: `${origin}/codec`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function listenFastify(app: FastifyInstance): Promise<RunningApp> {
  const origin = await app.listen({ port: 0, host: '127.0.0.1' });
  return { origin, endpoint: `${origin}/codec`, close: () => app.close() };
}

// README: "express"
async function startExpress(options: CodecServerOptions): Promise<RunningApp> {
  const app = express();
  app.use('/codec', createCodecServerHandler(options)); // endpoint: http://host/codec
  return listenExpress(app);
}

// README: "express" with a body parser in front
async function startExpressWithJsonParser(options: CodecServerOptions): Promise<RunningApp> {
  const app = express();
  app.use(express.json({ limit: '64kb' })); // this limit and its 400/413 errors are express's
  app.use('/codec', createCodecServerHandler(options));
  return listenExpress(app);
}

// A raw-body parser in front: the handler parses the Buffer itself, with maxBodyBytes.
async function startExpressWithRawParser(options: CodecServerOptions): Promise<RunningApp> {
  const app = express();
  app.use(express.raw({ type: 'application/json', limit: '1mb' }));
  app.use('/codec', createCodecServerHandler(options));
  return listenExpress(app);
}

// README: "fastify", a catch-all route
async function startFastifyRoute(options: CodecServerOptions): Promise<RunningApp> {
  const app = Fastify();
  const handler = createCodecServerHandler({ ...options, basePath: '/codec' });
  await app.register(async (codec) => {
    codec.removeAllContentTypeParsers(); // leave the body unread: the handler reads and limits it
    codec.addContentTypeParser('*', (_request, _payload, done) => done(null));
    codec.all('/codec/*', (request, reply) => {
      reply.hijack();
      handler(request.raw, reply.raw);
    });
  });
  return listenFastify(app);
}

// README: "fastify", with @fastify/middie
async function startFastifyMiddie(options: CodecServerOptions): Promise<RunningApp> {
  const app = Fastify();
  await app.register(middie);
  app.use('/codec', createCodecServerHandler(options)); // middie strips '/codec' like express
  return listenFastify(app);
}

/** Sends a chunked body (no Content-Length) of up to 4 MiB until the server answers; returns the answer. */
function postChunked(url: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = httpRequest(url, { method: 'POST', headers: { 'Content-Type': 'application/json' } }, (res) => {
      answered = true;
      let text = '';
      res.on('data', (d: Buffer) => {
        text += d.toString();
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', (e) => (answered ? undefined : reject(e)));
    const chunk = Buffer.alloc(16 * 1024, 0x20);
    let written = 0;
    const pump = (): void => {
      while (!answered && written < 4 * 1024 * 1024) {
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
}

describe.each([
  ['express: app.use(path, handler)', startExpress],
  ['fastify: catch-all route, raw request/response', startFastifyRoute],
  ['fastify: @fastify/middie', startFastifyMiddie],
])('%s', (_name, start) => {
  let app: RunningApp;
  let endpoint: string;
  const seen: CodecServerRequestInfo[] = [];

  beforeAll(async () => {
    app = await start(codecOptions(seen));
    endpoint = app.endpoint;
  });

  afterAll(async () => {
    await app?.close();
  });

  it('/encode, /decode (with and without preserveStorageRefs) and /download round trip', async () => {
    const [inline, ref] = payloadsOf(await post(endpoint, '/encode', body(small, big)));
    expect(jsonValue(inline as Payload)).toBe('small');
    expect(isReferencePayload(ref as Payload)).toBe(true);
    const decoded = payloadsOf(await post(endpoint, '/decode', body(inline as Payload, ref as Payload)));
    expect(decoded.map((p) => jsonValue(p))).toEqual(['small', { text: 'y'.repeat(2000) }]);
    const preserved = payloadsOf(
      await post(endpoint, '/decode?preserveStorageRefs=true', body(inline as Payload, ref as Payload)),
    );
    expect(jsonValue(preserved[0] as Payload)).toBe('small');
    expect(preserved[1]).toEqual(ref);
    const downloaded = payloadsOf(await post(endpoint, '/download', body(ref as Payload)));
    expect(downloaded.map((p) => jsonValue(p))).toEqual([{ text: 'y'.repeat(2000) }]);
    const notRef = await post(endpoint, '/download', body(small));
    expect(notRef.status).toBe(400);
    expect(notRef.json).toMatchObject({ code: 'E_NOT_A_REFERENCE', index: 0 });
  });

  it('routes by X-Namespace', async () => {
    const team = { 'X-Namespace': 'team' };
    const [ref] = payloadsOf(await post(endpoint, '/encode', body(big), { headers: team }));
    const key = decodeReferencePayload(ref as Payload).claimData.key as string;
    expect(key).toMatch(/^v0\/ns\/team\//);
    // The team's driver holds the object, byte for byte the serialized payload its claim names.
    const saved = await readFile(teamDriver.pathForKey(key));
    expect(sha256Hex(saved)).toBe(decodeReferencePayload(ref as Payload).claimData.hash_value);
    expect(jsonValue(decodePayload(saved) as Payload)).toEqual({ text: 'y'.repeat(2000) });
    const decoded = payloadsOf(await post(endpoint, '/decode', body(ref as Payload), { headers: team }));
    expect(jsonValue(decoded[0] as Payload)).toEqual({ text: 'y'.repeat(2000) });
    // The default namespace's driver has a different root: the object is not there.
    const elsewhere = await post(endpoint, '/decode', body(ref as Payload));
    expect(elsewhere.status).toBe(502);
    expect(elsewhere.json.code).toBe('E_NOT_FOUND');
    const unknown = await post(endpoint, '/decode', body(small), { headers: { 'X-Namespace': 'nope' } });
    expect(unknown.status).toBe(404);
    expect(unknown.json.code).toBe('E_UNKNOWN_NAMESPACE');
  });

  it('answers CORS preflights and sets CORS headers', async () => {
    const answer = await preflight(endpoint, '/decode', UI_ORIGIN);
    expect(answer.status).toBe(204);
    expect(answer.headers.get('access-control-allow-origin')).toBe(UI_ORIGIN);
    expect(answer.headers.get('access-control-allow-methods')).toBe('POST, OPTIONS');
    expect(answer.headers.get('access-control-allow-headers')).toContain('Content-Type, X-Namespace, Authorization');
    const ok = await post(endpoint, '/decode', body(small), { headers: { Origin: UI_ORIGIN } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('access-control-allow-origin')).toBe(UI_ORIGIN);
    expect(ok.headers.get('vary')).toContain('Origin');
    const evil = await post(endpoint, '/encode', body(small), { headers: { Origin: 'http://evil.example' } });
    expect(evil.status).toBe(403);
    expect(evil.json.code).toBe('E_ORIGIN_NOT_ALLOWED');
    expect(evil.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('runs the auth hook with the path below the mount point; 401 when it rejects', async () => {
    seen.length = 0;
    const rejected = await post(endpoint, '/decode?preserveStorageRefs=true', body(small), {
      headers: { Authorization: 'Bearer bad' },
    });
    expect(rejected.status).toBe(401);
    expect(rejected.json).toEqual({ code: 'E_UNAUTHORIZED', message: 'token expired' });
    expect(rejected.headers.get('www-authenticate')).toBe('Bearer');
    expect(seen.map((s) => [s.method, s.path, s.route, s.authorization])).toEqual([
      ['POST', '/decode', 'decode', 'Bearer bad'],
    ]);
  });

  it('413 E_BODY_TOO_LARGE over maxBodyBytes (declared length and chunked): the handler reads the body', async () => {
    const huge = JSON.stringify(body(jsonPayload('z'.repeat(70 * 1024))));
    const declared = await post(endpoint, '/decode', undefined, { raw: huge });
    expect(declared.status).toBe(413);
    expect(declared.json.code).toBe('E_BODY_TOO_LARGE');
    const chunked = await postChunked(`${endpoint}/decode`);
    expect(chunked.status).toBe(413);
    expect(JSON.parse(chunked.text).code).toBe('E_BODY_TOO_LARGE');
  });

  it("applies the handler's maxBodyBytes, not the framework's body limit (fastify: 1 MiB)", async () => {
    const roomy = await start(codecOptions([], { maxBodyBytes: 4 * 1024 * 1024 }));
    try {
      const large = jsonPayload('l'.repeat(2 * 1024 * 1024));
      const [ref] = payloadsOf(await post(roomy.endpoint, '/encode', body(large)));
      expect(isReferencePayload(ref as Payload)).toBe(true);
      const [back] = payloadsOf(await post(roomy.endpoint, '/download', body(ref as Payload)));
      expect(jsonValue(back as Payload)).toBe('l'.repeat(2 * 1024 * 1024));
    } finally {
      await roomy.close();
    }
  });

  it('serves only below the mount path', async () => {
    expect((await post(endpoint, '/decode/', body(small))).status).toBe(200);
    const noRoute = await post(endpoint, '/nope', body(small));
    expect(noRoute.status).toBe(404);
    expect(noRoute.json.code).toBe('E_NO_ROUTE');
    const get = await post(endpoint, '/decode', undefined, { method: 'GET' });
    expect(get.status).toBe(405);
    expect(get.json.code).toBe('E_METHOD_NOT_ALLOWED');
    // Outside the mount path the framework answers, not the handler.
    const outside = await post(app.origin, '/decode', body(small));
    expect(outside.status).toBe(404);
    expect(outside.json.code).toBeUndefined();
  });
});

describe('express with express.json() in front of the handler', () => {
  let app: RunningApp;
  let endpoint: string;
  const seen: CodecServerRequestInfo[] = [];

  beforeAll(async () => {
    app = await startExpressWithJsonParser(codecOptions(seen, { maxPayloads: 3 }));
    endpoint = app.endpoint;
  });

  afterAll(async () => {
    await app?.close();
  });

  it('uses the parsed req.body for every route', async () => {
    const [inline, ref] = payloadsOf(await post(endpoint, '/encode', body(small, big)));
    expect(isReferencePayload(ref as Payload)).toBe(true);
    const decoded = payloadsOf(await post(endpoint, '/decode', body(inline as Payload, ref as Payload)));
    expect(decoded.map((p) => jsonValue(p))).toEqual(['small', { text: 'y'.repeat(2000) }]);
    const preserved = payloadsOf(await post(endpoint, '/decode?preserveStorageRefs=true', body(ref as Payload)));
    expect(preserved[0]).toEqual(ref);
    const downloaded = payloadsOf(await post(endpoint, '/download', body(ref as Payload)));
    expect(jsonValue(downloaded[0] as Payload)).toEqual({ text: 'y'.repeat(2000) });
    const team = payloadsOf(await post(endpoint, '/encode', body(big), { headers: { 'X-Namespace': 'team' } }));
    expect(decodeReferencePayload(team[0] as Payload).claimData.key).toMatch(/^v0\/ns\/team\//);
  });

  it('still validates the parsed body and applies maxPayloads; CORS and auth work as without a parser', async () => {
    const bad = await post(endpoint, '/decode', { payloads: {} });
    expect(bad.status).toBe(400);
    expect(bad.json.code).toBe('E_BAD_REQUEST');
    const many = await post(endpoint, '/decode', body(small, small, small, small));
    expect(many.status).toBe(413);
    expect(many.json.code).toBe('E_TOO_MANY_PAYLOADS');
    const answer = await fetch(`${endpoint}/decode`, {
      method: 'OPTIONS',
      headers: { Origin: UI_ORIGIN, 'Access-Control-Request-Method': 'POST' },
    });
    expect(answer.status).toBe(204);
    expect(answer.headers.get('access-control-allow-origin')).toBe(UI_ORIGIN);
    const rejected = await post(endpoint, '/decode', body(small), { headers: { Authorization: 'Bearer bad' } });
    expect(rejected.status).toBe(401);
    expect(rejected.json.code).toBe('E_UNAUTHORIZED');
  });

  it("leaves malformed JSON and the body limit to express (its errors, not the handler's JSON)", async () => {
    const notJson = await post(endpoint, '/decode', undefined, { raw: '{"payloads": [' });
    expect(notJson.status).toBe(400);
    expect(notJson.json.code).toBeUndefined();
    const huge = await post(endpoint, '/decode', undefined, {
      raw: JSON.stringify(body(jsonPayload('z'.repeat(70 * 1024)))),
    });
    expect(huge.status).toBe(413);
    expect(huge.json.code).toBeUndefined();
    // A JSON type express.json() does not parse (by default only application/json) reaches the handler unread.
    const vendor = await post(endpoint, '/decode', body(small), {
      headers: { 'Content-Type': 'application/vnd.x+json' },
    });
    expect(payloadsOf(vendor).map((p) => jsonValue(p))).toEqual(['small']);
  });
});

describe('express with express.raw() in front of the handler', () => {
  it("parses the Buffer req.body itself: the handler's errors and maxBodyBytes apply", async () => {
    const app = await startExpressWithRawParser(codecOptions([]));
    try {
      const [ref] = payloadsOf(await post(app.endpoint, '/encode', body(big)));
      const [back] = payloadsOf(await post(app.endpoint, '/download', body(ref as Payload)));
      expect(jsonValue(back as Payload)).toEqual({ text: 'y'.repeat(2000) });
      const notJson = await post(app.endpoint, '/decode', undefined, { raw: '{"payloads": [' });
      expect(notJson.status).toBe(400);
      expect(notJson.json.code).toBe('E_BAD_REQUEST');
      const huge = JSON.stringify(body(jsonPayload('z'.repeat(70 * 1024)))); // under express's 1mb
      const tooLarge = await post(app.endpoint, '/decode', undefined, { raw: huge });
      expect(tooLarge.status).toBe(413);
      expect(tooLarge.json.code).toBe('E_BODY_TOO_LARGE');
    } finally {
      await app.close();
    }
  });
});
