/**
 * Abuse limits and the audit hook over real HTTP: read-only mode, concurrent requests,
 * concurrent download bytes, slow clients (header and request timeouts), audit events.
 */
import { connect } from 'node:net';
import * as path from 'node:path';
import { encodedPayloadSize, type Payload, type StorageDriver } from '@x/storage-driver-core';
import { FsStorageDriver } from '@x/storage-driver-fs';
import { type CodecServerAuditEvent, encodeReferencePayload, type RunningCodecServer, startCodecServer } from '../src';
import { body, cleanup, jsonPayload, makeTempDir, payloadsOf, post } from './helpers';

/** The real fs driver whose retrieves wait until the test opens the gate. */
class GatedDriver implements StorageDriver {
  readonly name = 'fs';
  readonly type: string;
  retrieves = 0;
  private gate: Promise<void> = Promise.resolve();
  private openGate: () => void = () => {};
  constructor(private readonly inner: FsStorageDriver) {
    this.type = inner.type;
  }
  close(): void {
    this.gate = new Promise((resolve) => {
      this.openGate = resolve;
    });
  }
  open(): void {
    this.openGate();
  }
  store(...args: Parameters<StorageDriver['store']>): ReturnType<StorageDriver['store']> {
    return this.inner.store(...args);
  }
  async retrieve(...args: Parameters<StorageDriver['retrieve']>): ReturnType<StorageDriver['retrieve']> {
    this.retrieves++;
    await this.gate;
    return this.inner.retrieve(...args);
  }
}

let dir: string;
let fs: FsStorageDriver;
let gated: GatedDriver;
let bigRef: Payload;
let smallRef: Payload;
const servers: RunningCodecServer[] = [];

async function start(options: Partial<Parameters<typeof startCodecServer>[0]>): Promise<RunningCodecServer> {
  const server = await startCodecServer({
    port: 0,
    otherNamespaces: { storage: { drivers: [gated], payloadSizeThreshold: 1024 } },
    ...options,
  });
  servers.push(server);
  return server;
}

async function store(value: unknown): Promise<Payload> {
  const payload = jsonPayload(value);
  const [claim] = await fs.store({ target: { kind: 'workflow', namespace: 'default' } }, [payload]);
  const sizeBytes = encodedPayloadSize(payload);
  return encodeReferencePayload({ driverName: 'fs', claimData: claim?.claimData ?? {}, sizeBytes });
}

beforeAll(async () => {
  dir = await makeTempDir('codec-server-limits-');
  fs = new FsStorageDriver({ root: path.join(dir, 'payloads') });
  gated = new GatedDriver(fs);
  bigRef = await store({ big: 'b'.repeat(6000) });
  smallRef = await store({ small: 's'.repeat(2000) });
});

afterAll(async () => {
  gated.open();
  await Promise.all(servers.map((s) => s.close()));
  await cleanup(dir);
});

it('readOnly refuses /encode with 403 E_READ_ONLY and still decodes and downloads', async () => {
  const server = await start({ readOnly: true });
  const encode = await post(server.url, '/encode', body(jsonPayload('e'.repeat(3000))));
  expect(encode.status).toBe(403);
  expect(encode.json).toEqual({ code: 'E_READ_ONLY', message: 'this codec server is read-only: /encode is off' });
  expect(payloadsOf(await post(server.url, '/download', body(smallRef)))).toHaveLength(1);
});

it('maxConcurrentRequests answers 503 E_BUSY with Retry-After while the limit is reached', async () => {
  const server = await start({ maxConcurrentRequests: 1 });
  gated.close();
  try {
    const first = post(server.url, '/download', body(smallRef));
    while (gated.retrieves === 0) await new Promise((r) => setTimeout(r, 5));
    const busy = await post(server.url, '/decode', body(jsonPayload('x')));
    expect(busy.status).toBe(503);
    expect(busy.json).toMatchObject({ code: 'E_BUSY', retryable: true });
    expect(busy.headers.get('retry-after')).toBe('1');
    gated.open();
    expect((await first).status).toBe(200);
    expect((await post(server.url, '/decode', body(jsonPayload('x')))).status).toBe(200);
  } finally {
    gated.open();
  }
});

it('maxConcurrentDownloadBytes refuses a download that would exceed it before reading, but never starves one alone', async () => {
  const server = await start({ maxConcurrentDownloadBytes: 5000 });
  // Alone, a payload above the limit is still downloaded.
  expect((await post(server.url, '/download', body(bigRef))).status).toBe(200);
  gated.close();
  try {
    gated.retrieves = 0;
    const first = post(server.url, '/download', body(smallRef)); // ~2 KB in flight
    while (gated.retrieves === 0) await new Promise((r) => setTimeout(r, 5));
    const refused = await post(server.url, '/download', body(bigRef)); // +6 KB > 5,000
    expect(refused.status).toBe(503);
    expect(refused.json).toMatchObject({ code: 'E_BUSY', message: 'too many bytes being downloaded; retry later' });
    expect(gated.retrieves).toBe(1); // the refused request read nothing
    // /decode retrievals count as downloads too; a decode that retrieves nothing is not limited.
    expect((await post(server.url, '/decode', body(bigRef))).status).toBe(503);
    expect((await post(server.url, '/decode?preserveStorageRefs=true', body(bigRef))).status).toBe(200);
    gated.open();
    expect((await first).status).toBe(200);
    expect((await post(server.url, '/download', body(bigRef))).status).toBe(200); // released
  } finally {
    gated.open();
  }
});

it('reports one audit event per /encode and /download, and per /decode that retrieved', async () => {
  const events: CodecServerAuditEvent[] = [];
  const server = await start({
    onAudit: (e) => events.push(e),
    authorize: (info) => ({ allow: true, principal: `user-of-${info.namespace}` }),
  });
  const stored = jsonPayload('e'.repeat(3000));
  const [ref] = payloadsOf(
    await post(server.url, '/encode', body(jsonPayload('tiny'), stored), {
      headers: { 'X-Namespace': 'orders' },
    }),
  );
  expect(ref).toBeDefined();
  await post(server.url, '/download', body(smallRef, bigRef), { headers: { 'X-Namespace': 'orders' } });
  await post(server.url, '/decode?preserveStorageRefs=true', body(bigRef)); // nothing retrieved: not audited
  await post(server.url, '/decode', body(bigRef));
  await post(server.url, '/download', body(jsonPayload('not a reference'))); // 400, audited
  expect(events.map((e) => [e.route, e.status, e.namespace, e.principal, e.objects.length])).toEqual([
    ['encode', 200, 'orders', 'user-of-orders', 1],
    ['download', 200, 'orders', 'user-of-orders', 2],
    ['decode', 200, 'default', 'user-of-default', 1],
    ['download', 400, 'default', 'user-of-default', 0],
  ]);
  const [encode, download] = events as [CodecServerAuditEvent, CodecServerAuditEvent];
  expect(encode.objects[0]).toEqual({
    driver: 'fs',
    key: expect.stringMatching(/^v0\/ns\/orders\//),
    bytes: encodedPayloadSize(stored),
  });
  const sizes = [smallRef, bigRef].map((r) => Number(r.externalPayloads?.[0]?.sizeBytes));
  expect(download.objects.map((o) => o.bytes)).toEqual(sizes);
  expect(download.bytes).toBe((sizes[0] as number) + (sizes[1] as number));
  expect(download.remoteAddress).toBe('127.0.0.1');
  expect(events[3]?.code).toBe('E_NOT_A_REFERENCE');
});

it('closes connections of clients that send their headers or body too slowly', async () => {
  const server = await start({ headersTimeoutMs: 300, requestTimeoutMs: 600 });
  const slow = (text: string): Promise<{ reply: string; ms: number }> =>
    new Promise((resolve, reject) => {
      const started = Date.now();
      const socket = connect(server.port, '127.0.0.1', () => socket.write(text));
      let reply = '';
      socket.on('data', (d) => {
        reply += d.toString();
      });
      socket.on('error', reject);
      socket.on('close', () => resolve({ reply, ms: Date.now() - started }));
    });
  // Headers never finished.
  const headers = await slow('POST /decode HTTP/1.1\r\nHost: x\r\n');
  expect(headers.reply).toMatch(/^HTTP\/1\.1 408/);
  expect(headers.ms).toBeLessThan(5000);
  // Headers done, body promised but never sent.
  const request = await slow(
    'POST /decode HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{',
  );
  expect(request.reply).toMatch(/^HTTP\/1\.1 408/);
  expect(request.ms).toBeLessThan(5000);
  await expect(startCodecServer({ port: 0, requestTimeoutMs: 0 })).rejects.toMatchObject({ code: 'E_CONFIG' });
});
