/**
 * The fault-injecting proxy against a tiny local upstream: forwarding, recording, every hook and
 * every fault kind behave as documented (so a driver's fault test fails on the driver, not on the
 * proxy).
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { FaultProxy } from '../src';

let upstream: http.Server;
let proxy: FaultProxy;
const BODY = Buffer.from('0123456789'.repeat(100));

beforeAll(async () => {
  upstream = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const sent = Buffer.concat(chunks);
      if (req.url?.startsWith('/echo')) {
        res.writeHead(200, {
          'x-path': req.url,
          'x-host': String(req.headers.host),
          'content-length': String(sent.length),
        });
        res.end(sent);
        return;
      }
      res.writeHead(200, { 'content-length': String(BODY.length) });
      res.end(BODY);
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  proxy = await FaultProxy.start(`http://127.0.0.1:${(upstream.address() as AddressInfo).port}`);
});
afterEach(() => proxy.reset());
const upstreamUrl = () => `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
afterAll(async () => {
  await proxy.close();
  await new Promise<void>((resolve) => upstream.close(() => resolve()));
});

async function call(path: string, body?: string): Promise<{ status: number; body: Buffer; headers: Headers }> {
  const res = await fetch(`${proxy.endpoint}${path}`, { method: body === undefined ? 'GET' : 'POST', body });
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()), headers: res.headers };
}

test('forwards unchanged and records method, raw and decoded path, query and status', async () => {
  const res = await call('/echo/a%2Fb?x=1&y=%20', 'hello');
  expect([res.status, res.body.toString()]).toEqual([200, 'hello']);
  const [r] = proxy.requests;
  expect(r).toMatchObject({ method: 'POST', rawPath: '/echo/a%2Fb', path: '/echo/a/b', injected: false, status: 200 });
  expect(r?.query.get('y')).toBe(' ');
});

test('inject answers with the given status, headers and body; nothing reaches the upstream', async () => {
  proxy.inject = () => ({ status: 503, headers: { 'content-type': 'application/json' }, body: '{"error":1}' });
  const res = await call('/x');
  expect([res.status, res.body.toString(), res.headers.get('content-type')]).toEqual([
    503,
    '{"error":1}',
    'application/json',
  ]);
  expect(proxy.requests[0]).toMatchObject({ injected: true, status: 503 });
});

test('rewrite forwards to another path; hold delays until the promise settles', async () => {
  proxy.rewrite = () => '/echo/rewritten';
  let released = false;
  proxy.hold = () =>
    new Promise((resolve) =>
      setTimeout(() => {
        released = true;
        resolve(undefined);
      }, 50),
    );
  const res = await call('/x');
  expect(released).toBe(true);
  expect(res.headers.get('x-path')).toBe('/echo/rewritten');
  // Path-style to the upstream: the Host is the upstream's, not the client's.
  expect(res.headers.get('x-host')).toBe(new URL(upstreamUrl()).host);
});

test('an unrewritten request keeps the client Host; clearRequests forgets the requests and keeps the hooks', async () => {
  expect((await call('/echo/plain')).headers.get('x-host')).toBe(new URL(proxy.endpoint).host);
  proxy.inject = () => ({ status: 418 });
  await call('/a');
  proxy.clearRequests();
  expect([proxy.requests.length, proxy.peakInFlight]).toEqual([0, 0]);
  expect((await call('/b')).status).toBe(418);
  expect(proxy.requests.map((r) => r.path)).toEqual(['/b']);
  proxy.reset();
  expect([proxy.requests.length, proxy.inject]).toEqual([0, undefined]);
});

test('faults: reset and reset-after-forward fail the call; shorten and corrupt answer damaged bodies', async () => {
  for (const kind of ['reset', 'reset-after-forward'] as const) {
    proxy.tamper = () => ({ kind });
    await expect(call('/x')).rejects.toThrow();
  }
  proxy.tamper = () => ({ kind: 'truncate', bytes: 10 });
  await expect(call('/x')).rejects.toThrow();
  proxy.tamper = () => ({ kind: 'shorten', bytes: 10 });
  expect((await call('/x')).body).toEqual(BODY.subarray(0, 10));
  proxy.tamper = () => ({ kind: 'corrupt' });
  const corrupt = (await call('/x')).body;
  expect(corrupt.length).toBe(BODY.length);
  expect(Buffer.compare(corrupt, BODY)).not.toBe(0);
  // corrupt-request damages what the upstream receives (the echo shows it), not the answer.
  proxy.tamper = () => ({ kind: 'corrupt-request' });
  const echoed = (await call('/echo', 'abcdefgh')).body.toString();
  expect([echoed.length, echoed === 'abcdefgh']).toEqual([8, false]);
  expect(proxy.requests.every((r) => r.injected)).toBe(true);
});

test('reset() clears the record and the hooks; peakInFlight counts concurrent requests', async () => {
  proxy.hold = () => new Promise((resolve) => setTimeout(resolve, 30));
  await Promise.all([call('/a'), call('/b'), call('/c')]);
  expect(proxy.peakInFlight).toBe(3);
  proxy.reset();
  expect([proxy.requests.length, proxy.peakInFlight, proxy.hold]).toEqual([0, 0, undefined]);
});
