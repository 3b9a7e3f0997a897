/**
 * `codecServerInstrumentation()` on a real codec server over HTTP, with instrumented fs drivers:
 * request spans (name, kind, attributes, status) with the drivers' spans under them, a W3C
 * `traceparent` continued, `/healthz` untraced, and the request metrics (configured namespaces
 * by name, any other as `_other`).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { propagation, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  type CodecServerInstrumentation,
  type CodecServerRequestOutcome,
  type CodecServerRequestStart,
  payloadsToJson,
  type RunningCodecServer,
  startCodecServer,
} from '@x/storage-codec-server';
import { FsStorageDriver } from '@x/storage-driver-fs';
import { PostgresStorageDriver } from '@x/storage-driver-postgres';
import { freePort } from '@x/test-servers';
import { Pool } from 'pg';
import {
  StorageAttributes as A,
  CodecServerAttributes as C,
  CodecServerMetrics,
  type CodecServerRequestOutcomeLike,
  type CodecServerRequestStartLike,
  codecServerInstrumentation,
  instrumentStorageDriver,
  OTHER_NAMESPACE,
} from '../src';
import { makeTelemetry, parentId, payload, type Telemetry } from './helpers';

// Compile-time: the structural hook is the codec server's `instrumentation`, both ways round.
export const hookFits: CodecServerInstrumentation = codecServerInstrumentation();
export const startFits = (s: CodecServerRequestStart): CodecServerRequestStartLike => s;
export const outcomeFits = (o: CodecServerRequestOutcome): CodecServerRequestOutcomeLike => o;
export const outcomeBack = (o: CodecServerRequestOutcomeLike): CodecServerRequestOutcome => ({
  ...o,
  route: o.route as CodecServerRequestOutcome['route'],
});

let dir: string;
let telemetry: Telemetry;
const servers: RunningCodecServer[] = [];
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'otel-codec-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
  await telemetry.shutdown();
  propagation.disable();
});

async function serve(drivers = [new FsStorageDriver({ root: path.join(dir, 'store') })]) {
  const options = { tracerProvider: telemetry.tracerProvider, meterProvider: telemetry.meterProvider };
  const instrumented = drivers.map((d) => instrumentStorageDriver(d, options));
  const server = await startCodecServer({
    port: 0,
    namespaces: { payments: { storage: { drivers: instrumented, payloadSizeThreshold: 0 } } },
    otherNamespaces: { storage: { drivers: instrumented, payloadSizeThreshold: 0 } },
    instrumentation: codecServerInstrumentation(options),
  });
  servers.push(server);
  return server;
}

async function post(url: string, namespace: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-Namespace': namespace, ...headers },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as { payloads: unknown[] } };
}

describe('codecServerInstrumentation', () => {
  it('a span per request with the drivers spans under it; metrics by route, status and namespace', async () => {
    telemetry = makeTelemetry();
    const server = await serve();
    const encoded = await post(
      `${server.url}/encode`,
      'payments',
      payloadsToJson([payload('one', 400), payload('two', 600)]),
    );
    expect(encoded.status).toBe(200);
    const decoded = await post(`${server.url}/decode`, 'tenant-7', encoded.json);
    expect(decoded.status).toBe(200);
    expect((await fetch(`${server.url}/nowhere`, { method: 'POST' })).status).toBe(404);
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);

    const [encode, decode, nowhere, ...rest] = telemetry.spans().filter((s) => s.kind === SpanKind.SERVER);
    expect(rest).toEqual([]); // /healthz is not traced
    expect(encode?.name).toBe('POST /encode');
    expect(encode?.status.code).toBe(SpanStatusCode.UNSET);
    expect(encode?.attributes).toMatchObject({
      [C.METHOD]: 'POST',
      [C.ROUTE]: '/encode',
      [C.STATUS]: 200,
      [C.NAMESPACE]: 'payments',
      [C.PAYLOADS]: 2,
    });
    const [store] = telemetry.spansNamed('StorePayloads:fs');
    expect(parentId(store as never)).toBe(encode?.spanContext().spanId);
    expect(store?.attributes[A.ROOT]).toBeUndefined();
    expect(encode?.attributes[C.BYTES]).toBe(store?.attributes[A.BYTES]);
    expect(decode?.name).toBe('POST /decode');
    expect(decode?.attributes[C.NAMESPACE]).toBe('tenant-7'); // on the span, as sent
    const [retrieve] = telemetry.spansNamed('RetrievePayloads:fs');
    expect(parentId(retrieve as never)).toBe(decode?.spanContext().spanId);
    expect(nowhere?.name).toBe('POST');
    expect(nowhere?.attributes).toMatchObject({ [C.STATUS]: 404, [C.ERROR_CODE]: 'E_NO_ROUTE' });
    expect(nowhere?.status.code).toBe(SpanStatusCode.UNSET); // a 4xx is the client's error

    const points = await telemetry.points(CodecServerMetrics.DURATION);
    expect(
      points.map((p) => [p.attributes[C.ROUTE], p.attributes[C.STATUS], p.attributes[C.NAMESPACE], p.count]),
    ).toEqual([
      ['/encode', 200, 'payments', 1],
      ['/decode', 200, OTHER_NAMESPACE, 1], // a namespace the client chose mints no series
      [undefined, 404, OTHER_NAMESPACE, 1], // 'default' is not one of the configured namespaces
    ]);
    expect(await telemetry.sum(CodecServerMetrics.PAYLOADS, { [C.ROUTE]: '/decode' })).toBe(2);
  });

  it('continues a W3C traceparent the request carries', async () => {
    telemetry = makeTelemetry();
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    const server = await serve();
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const parent = '00f067aa0ba902b7';
    await post(`${server.url}/encode`, 'payments', payloadsToJson([payload('traced')]), {
      traceparent: `00-${traceId}-${parent}-01`,
    });
    const [span] = telemetry.spans().filter((s) => s.kind === SpanKind.SERVER);
    expect([span?.spanContext().traceId, parentId(span as never)]).toEqual([traceId, parent]);
  });

  it('a 5xx (a driver whose backend is down) sets status ERROR and error.type', async () => {
    telemetry = makeTelemetry();
    const pool = new Pool({ host: '127.0.0.1', port: await freePort(), user: 'x', database: 'x' });
    pool.on('error', () => {});
    try {
      const server = await serve([new PostgresStorageDriver({ pool }) as never]);
      const reply = await post(`${server.url}/encode`, 'payments', payloadsToJson([payload('lost')]));
      expect(reply.status).toBeGreaterThanOrEqual(500);
      const [span] = telemetry.spans().filter((s) => s.kind === SpanKind.SERVER);
      expect(span?.status.code).toBe(SpanStatusCode.ERROR);
      expect(span?.attributes[C.STATUS]).toBe(reply.status);
      expect(span?.attributes[C.ERROR_TYPE]).toEqual(expect.any(String));
      const [store] = telemetry.spansNamed('StorePayloads:postgres');
      expect(store?.attributes[A.ERROR_CODE]).toBe('E_BACKEND');
      expect(parentId(store as never)).toBe(span?.spanContext().spanId);
    } finally {
      await pool.end();
    }
  });
});
