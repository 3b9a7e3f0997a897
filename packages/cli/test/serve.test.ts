/**
 * `x-storage serve` secure by default, as a real process over real HTTP(S): no unauthenticated
 * listener off loopback (exit 2) unless the config opts out (then a warning on every start), the
 * address actually bound, static tokens from the environment and files, JWTs from a key file,
 * TLS and mutual TLS with certificates made by openssl, certificate reload on SIGHUP, read-only
 * mode and JSON audit lines.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { encodeReferencePayload } from '@x/storage-codec-server';
import type { Payload } from '@x/storage-driver-core';
import { FsStorageDriver } from '@x/storage-driver-fs';
import { makeCa, makeLeaf } from './certs';
import {
  body,
  cleanup,
  jsonPayload,
  makeTempDir,
  payloadsOf,
  request,
  runXStorage,
  type Served,
  serve,
} from './helpers';

type Jose = typeof import('jose', { with: { 'resolution-mode': 'import' }});
/** `jose` (ESM only): jest transpiles it (jest.config.js); Node >= 20.19 requires it natively. */
const jose: Jose = require('jose');

const READER_TOKEN = 'reader-0f3c9a71d2b84e65';
const WRITER_TOKEN = 'writer-7d1e2c3b4a596877';

let dir: string;
let root: string;
let reference: Payload;
const running: Served[] = [];

beforeAll(async () => {
  dir = await makeTempDir('x-storage-serve-');
  root = path.join(dir, 'payloads');
  const fs = new FsStorageDriver({ root });
  const [claim] = await fs.store({ target: { kind: 'workflow', namespace: 'orders' } }, [
    jsonPayload({ secret: 'offloaded', filler: 'f'.repeat(2000) }),
  ]);
  reference = encodeReferencePayload({ driverName: 'fs', claimData: claim?.claimData ?? {}, sizeBytes: 2040 });
  await writeFile(path.join(dir, 'writer.token'), `${WRITER_TOKEN}\n`, { mode: 0o600 });
});

afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.stop()));
});

afterAll(async () => {
  await cleanup(dir);
});

/** Writes a config with the fs driver on `root` plus `extra` fields, and returns its path. */
async function config(name: string, extra: Record<string, unknown> = {}, server: Record<string, unknown> = {}) {
  const file = path.join(dir, `${name}.json`);
  await writeFile(
    file,
    JSON.stringify({
      server: { port: 0, ...server },
      drivers: { fs: { module: '@x/storage-driver-fs', export: 'FsStorageDriver', options: { root } } },
      namespaces: { orders: { drivers: ['fs'], payloadSizeThreshold: 1024 } },
      otherNamespaces: { drivers: ['fs'], payloadSizeThreshold: 1024 },
      ...extra,
    }),
  );
  return file;
}

async function start(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Served> {
  const served = await serve(args, env);
  running.push(served);
  return served;
}

/** The loopback URL to call a server listening on `boundUrl` (which may be a wildcard address). */
function local(boundUrl: string): string {
  return boundUrl.replace('//0.0.0.0:', '//127.0.0.1:').replace('//[::]:', '//[::1]:');
}

const TOKENS = {
  auth: {
    tokens: [
      { name: 'reader', env: 'XS_TEST_READER_TOKEN', namespaces: ['orders'] },
      { name: 'writer', file: 'writer.token', namespaces: ['*'], routes: ['encode', 'decode', 'download'] },
    ],
  },
};
const TOKEN_ENV = { ...process.env, XS_TEST_READER_TOKEN: READER_TOKEN };

describe('secure by default', () => {
  it('refuses to listen off loopback without auth: exit 2 and a clear message', async () => {
    const open = await config('open-wildcard', {}, { host: '0.0.0.0' });
    const refused = await runXStorage(['serve', '--config', open]);
    expect(refused.code).toBe(2);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toContain('x-storage serve: refusing to listen on 0.0.0.0 without authentication');
    expect(refused.stderr).toContain('Configure "auth"');
    expect(refused.stderr).toContain('"auth": {"mode": "none"}');
    // --host overrides a loopback config the same way; IPv6 wildcard and an empty host too.
    const loopback = await config('open-loopback');
    for (const host of ['0.0.0.0', '::', '']) {
      const result = await runXStorage(['serve', '--config', loopback, '--host', host]);
      expect({ host, code: result.code }).toEqual({ host, code: 2 });
    }
    // Loopback needs no auth (local use with the dev server), and says where it listens.
    const served = await start(['--config', loopback, '--host', 'localhost']);
    expect(served.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(served.output().stderr).toBe('');
  });

  it('with "auth": {"mode": "none"} it listens off loopback, warns on every start and prints the address bound', async () => {
    const none = await config('none', { auth: { mode: 'none' } }, { host: '0.0.0.0' });
    for (let i = 0; i < 2; i++) {
      const served = await start(['--config', none]);
      expect(served.url).toMatch(/^http:\/\/0\.0\.0\.0:\d+$/); // what is bound, not 127.0.0.1
      await new Promise((r) => setTimeout(r, 50));
      expect(served.output().stderr).toContain(
        `x-storage serve: WARNING: "auth": {"mode": "none"}: requests are not authenticated; anyone who can reach ${served.url}`,
      );
      expect(payloadsOf(await request(local(served.url), '/download', body(reference)))).toHaveLength(1);
      expect(await served.stop()).toBe(0);
    }
  });

  it('rejects auth sections that would weaken it, with the path of the field', async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [
        { auth: { tokens: [{ name: 'x', token: READER_TOKEN, namespaces: ['*'] }] } },
        /config\.auth\.tokens\[0\]: tokens are read from "env" or "file", never from the config text/,
      ],
      [{ auth: { mode: 'open' } }, /config\.auth\.mode: the only mode is "none"/],
      [{ auth: { mode: 'none', tokens: [] } }, /"none" cannot be combined with tokens or jwt/],
      [{ auth: {} }, /config\.auth: configure "tokens", "jwt", or both/],
      [
        { auth: { tokens: [{ name: 'x', env: 'A', file: 'b', namespaces: ['*'] }] } },
        /exactly one of "env" and "file"/,
      ],
      [{ auth: { tokens: [{ name: 'x', env: 'A', namespaces: [] }] } }, /namespaces: must list namespaces/],
      [{ auth: { tokens: [{ name: 'x', env: 'A', namespaces: ['*'], routes: ['get'] }] } }, /routes: must list routes/],
      [{ auth: { jwt: { jwksUrl: 'https://idp/jwks', keyFile: 'k.pem' } } }, /exactly one of "jwksUrl" and "keyFile"/],
      [
        { auth: { tokens: [{ name: 'x', env: 'XS_TEST_UNSET_TOKEN', namespaces: ['*'] }] } },
        /XS_TEST_UNSET_TOKEN is not set/,
      ],
      [
        { auth: { tokens: [{ name: 'x', file: 'missing.token', namespaces: ['*'] }] } },
        /cannot read missing\.token: ENOENT/,
      ],
      [{ auth: { tokens: [{ name: 'x', env: 'XS_TEST_SHORT', namespaces: ['*'] }] } }, /at least 16 characters/],
      [{ auth: { jwt: { jwksUrl: 'http://idp.example.com/jwks.json' } } }, /https: URL/],
      [
        { server: { port: 0, tls: { certFile: 'nope.crt', keyFile: 'nope.key' } } },
        /config\.server\.tls\.certFile: cannot read nope\.crt/,
      ],
      [
        { server: { port: 0, maxConcurrentRequests: 0 } },
        /config\.server\.maxConcurrentRequests: must be a positive integer/,
      ],
    ];
    for (const [extra, message] of cases) {
      const file = await config('bad-auth', extra);
      const result = await runXStorage(['serve', '--config', file], undefined, 30_000, {
        ...process.env,
        XS_TEST_SHORT: 'short',
      });
      expect({ extra, code: result.code }).toEqual({ extra, code: 2 });
      expect(result.stderr).toMatch(message);
      expect(result.stderr).not.toContain(READER_TOKEN);
    }
  });
});

describe('auth from the config', () => {
  it('static tokens from an environment variable and a file: right, wrong, missing, other namespace, other route', async () => {
    const served = await start(['--config', await config('tokens', TOKENS, { host: '0.0.0.0' })], TOKEN_ENV);
    const url = local(served.url);
    const as = (token: string, namespace = 'orders') => ({
      headers: { Authorization: `Bearer ${token}`, 'X-Namespace': namespace },
    });
    expect((await request(url, '/download', body(reference), as(READER_TOKEN))).status).toBe(200);
    expect((await request(url, '/download', body(reference), as(`${READER_TOKEN}0`))).status).toBe(401);
    const missing = await request(url, '/download', body(reference), { headers: { 'X-Namespace': 'orders' } });
    expect(missing.status).toBe(401);
    expect(missing.headers['www-authenticate']).toBe('Bearer');
    expect((await request(url, '/download', body(reference), as(READER_TOKEN, 'payments'))).status).toBe(403);
    expect((await request(url, '/encode', body(jsonPayload('e'.repeat(3000))), as(READER_TOKEN))).status).toBe(403);
    // The file's token, trailing newline ignored, may encode anywhere.
    expect((await request(url, '/encode', body(jsonPayload('e'.repeat(3000))), as(WRITER_TOKEN, 'x'))).status).toBe(
      200,
    );
  });

  it('JWTs verified with a key file; jose loads with require() and, on Node without require(esm), with import()', async () => {
    const { publicKey, privateKey } = await jose.generateKeyPair('ES256', { extractable: true });
    await writeFile(path.join(dir, 'jwt.pem'), await jose.exportSPKI(publicKey));
    const file = await config(
      'jwt',
      { auth: { jwt: { keyFile: 'jwt.pem', algorithms: ['ES256'], audience: 'codec', clockToleranceSeconds: 5 } } },
      { host: '0.0.0.0' },
    );
    const token = (permissions: string[], exp = '5m') =>
      new jose.SignJWT({ permissions })
        .setProtectedHeader({ alg: 'ES256' })
        .setSubject('ops@example.com')
        .setAudience('codec')
        .setIssuedAt()
        .setExpirationTime(exp)
        .sign(privateKey);
    for (const env of [process.env, { ...process.env, NODE_OPTIONS: '--no-experimental-require-module' }]) {
      const served = await start(['--config', file], env);
      const url = local(served.url);
      const call = async (t: string, namespace = 'orders') =>
        (
          await request(url, '/download', body(reference), {
            headers: { Authorization: `Bearer ${t}`, 'X-Namespace': namespace },
          })
        ).status;
      expect(await call(await token(['orders:read']))).toBe(200);
      expect(await call(await token(['orders:read']), 'payments')).toBe(403);
      expect(await call(await token(['temporal-system:read']), 'payments')).toBe(200);
      expect(await call(await token(['orders:read'], '-1m'))).toBe(401);
      await served.stop();
    }
  });

  it('read-only mode and a JSON audit line per /download and /encode on stderr (who, namespace, driver, key, bytes)', async () => {
    const served = await start(
      ['--config', await config('audit', TOKENS, { host: '0.0.0.0', readOnly: true, audit: true })],
      TOKEN_ENV,
    );
    const url = local(served.url);
    const headers = { Authorization: `Bearer ${WRITER_TOKEN}`, 'X-Namespace': 'orders' };
    const encode = await request(url, '/encode', body(jsonPayload('e'.repeat(3000))), { headers });
    expect(encode.status).toBe(403);
    expect(encode.json.code).toBe('E_READ_ONLY');
    expect((await request(url, '/download', body(reference), { headers })).status).toBe(200);
    expect((await request(url, '/download', body(reference), { headers: { 'X-Namespace': 'orders' } })).status).toBe(
      401,
    );
    await served.stop();
    const lines = served
      .output()
      .stderr.split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l));
    expect(lines).toEqual([
      expect.objectContaining({
        audit: 'x-storage',
        route: 'encode',
        status: 403,
        code: 'E_READ_ONLY',
        principal: 'token:writer',
        objects: [],
      }),
      expect.objectContaining({
        audit: 'x-storage',
        route: 'download',
        status: 200,
        namespace: 'orders',
        principal: 'token:writer',
        remoteAddress: '127.0.0.1',
        objects: [{ driver: 'fs', key: expect.stringMatching(/^v0\/ns\/orders\//), bytes: expect.any(Number) }],
        bytes: expect.any(Number),
        time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      }),
      expect.objectContaining({ route: 'download', status: 401, code: 'E_UNAUTHORIZED', objects: [] }),
    ]);
    expect(served.output().stderr).not.toContain(WRITER_TOKEN);
  });
});

describe('TLS', () => {
  let tlsDir: string;
  let serverCa: { cert: string; key: string };
  let clientCa: { cert: string; key: string };
  let client: { cert: string; key: string };
  let stranger: { cert: string; key: string };

  beforeAll(async () => {
    tlsDir = path.join(dir, 'tls');
    await mkdir(tlsDir, { recursive: true });
    serverCa = makeCa(tlsDir, 'server-ca');
    makeLeaf(tlsDir, 'server', serverCa, 'server');
    clientCa = makeCa(tlsDir, 'client-ca');
    client = makeLeaf(tlsDir, 'client', clientCa, 'client');
    const otherCa = makeCa(tlsDir, 'other-ca');
    stranger = makeLeaf(tlsDir, 'stranger', otherCa, 'client');
  });

  const tlsFiles = (extra: Record<string, unknown> = {}) => ({
    tls: { certFile: 'tls/server.crt', keyFile: 'tls/server.key', ...extra },
  });

  it('serves HTTPS with the configured certificate; plain HTTP and untrusting clients are refused', async () => {
    const served = await start(['--config', await config('tls', TOKENS, { ...tlsFiles() })], TOKEN_ENV);
    expect(served.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const ca = await readFile(serverCa.cert);
    const headers = { Authorization: `Bearer ${READER_TOKEN}`, 'X-Namespace': 'orders' };
    expect((await request(served.url, '/download', body(reference), { headers, ca })).status).toBe(200);
    // A client that does not trust the certificate.
    await expect(request(served.url, '/download', body(reference), { headers })).rejects.toThrow(
      /self.signed|unable to verify|issuer/i,
    );
    // Plain HTTP to the HTTPS port gets no HTTP answer.
    await expect(
      request(served.url.replace('https:', 'http:'), '/download', body(reference), { headers }),
    ).rejects.toThrow();
  });

  it('mutual TLS: only clients with a certificate from the client CA get through (and that counts as auth off loopback)', async () => {
    const served = await start([
      '--config',
      await config('mtls', {}, { host: '0.0.0.0', ...tlsFiles({ clientCaFile: 'tls/client-ca.crt' }) }),
    ]);
    expect(served.url).toMatch(/^https:\/\/0\.0\.0\.0:\d+$/);
    const url = local(served.url);
    const ca = await readFile(serverCa.cert);
    const withCert = { ca, cert: await readFile(client.cert), key: await readFile(client.key) };
    expect((await request(url, '/download', body(reference), withCert)).status).toBe(200);
    await expect(request(url, '/download', body(reference), { ca })).rejects.toThrow();
    await expect(
      request(url, '/download', body(reference), {
        ca,
        cert: await readFile(stranger.cert),
        key: await readFile(stranger.key),
      }),
    ).rejects.toThrow();
  });

  it('reloads the certificate and key on SIGHUP; a bad one keeps the current certificate', async () => {
    const files = { tls: { certFile: 'tls/reload.crt', keyFile: 'tls/reload.key' } };
    const first = makeLeaf(tlsDir, 'reload-1', serverCa, 'server');
    await writeFile(path.join(tlsDir, 'reload.crt'), await readFile(first.cert));
    await writeFile(path.join(tlsDir, 'reload.key'), await readFile(first.key));
    const served = await start(['--config', await config('reload', TOKENS, files)], TOKEN_ENV);
    const ca = await readFile(serverCa.cert);
    const subject = async () => (await peerCertificate(served.url, ca)).subject.CN;
    expect(await subject()).toBe('reload-1');

    const second = makeLeaf(tlsDir, 'reload-2', serverCa, 'server');
    await writeFile(path.join(tlsDir, 'reload.crt'), await readFile(second.cert));
    await writeFile(path.join(tlsDir, 'reload.key'), await readFile(second.key));
    served.child.kill('SIGHUP');
    await waitFor(() => served.output().stderr.includes('reloaded the TLS certificate'));
    expect(await subject()).toBe('reload-2');

    await writeFile(path.join(tlsDir, 'reload.key'), 'not a key');
    served.child.kill('SIGHUP');
    await waitFor(() => served.output().stderr.includes('TLS reload failed, keeping the current certificate'));
    expect(await subject()).toBe('reload-2');
    expect(served.child.exitCode).toBeNull();
  });
});

async function waitFor(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i++) await new Promise((r) => setTimeout(r, 25));
  expect(condition()).toBe(true);
}

function peerCertificate(url: string, ca: Buffer): Promise<{ subject: { CN?: string } }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: hostname, port: Number(port), ca, servername: 'localhost' }, () => {
      const cert = socket.getPeerCertificate();
      socket.end();
      resolve(cert as { subject: { CN?: string } });
    });
    socket.on('error', reject);
  });
}
