/** Shared helpers for the codec-server tests: temp dirs, servers, payloads, HTTP calls, the CLI. */
import { mkdtemp, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Payload } from '@x/storage-driver-core';
import { type PayloadJson, payloadFromJson, payloadToJson } from '../src';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A fresh temp directory; remember to `cleanup()` it. */
export async function makeTempDir(prefix = 'codec-server-'): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), prefix));
}

/** Removes a temp directory (ignores errors). */
export async function cleanup(dir: string | undefined): Promise<void> {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true }).catch(() => {});
}

/** A `json/plain` payload holding `value`. */
export function jsonPayload(value: unknown): Payload {
  return { metadata: { encoding: encoder.encode('json/plain') }, data: encoder.encode(JSON.stringify(value)) };
}

/** The JSON value of a `json/plain` payload. */
export function jsonValue(payload: Payload | PayloadJson): unknown {
  const p = 'data' in payload && typeof payload.data === 'string' ? payloadFromJson(payload) : (payload as Payload);
  return JSON.parse(decoder.decode(p.data ?? new Uint8Array(0)));
}

/** Text of a metadata entry. */
export function meta(payload: Payload, key: string): string | undefined {
  const v = payload.metadata?.[key];
  return v ? decoder.decode(v) : undefined;
}

/** A `{"payloads":[...]}` body. */
export function body(...payloads: Payload[]): { payloads: PayloadJson[] } {
  return { payloads: payloads.map(payloadToJson) };
}

/** Result of {@link post}. */
export interface Reply {
  status: number;
  headers: Headers;
  json: { payloads?: PayloadJson[]; code?: string; message?: string; index?: number; driverName?: string };
  text: string;
}

/** POSTs (or another method) to the codec server and parses the JSON reply. */
export async function post(
  url: string,
  route: string,
  payload: unknown,
  init: { headers?: Record<string, string>; method?: string; raw?: string } = {},
): Promise<Reply> {
  const method = init.method ?? 'POST';
  const res = await fetch(`${url}${route}`, {
    method,
    headers: { 'Content-Type': 'application/json', ...init.headers },
    body: method === 'GET' || method === 'HEAD' ? undefined : (init.raw ?? JSON.stringify(payload)),
  });
  const text = await res.text();
  let json: Reply['json'] = {};
  try {
    json = text === '' ? {} : JSON.parse(text);
  } catch {
    // not JSON: leave empty
  }
  return { status: res.status, headers: res.headers, json, text };
}

/** The CORS preflight a browser sends from `origin` before it POSTs the Web UI's headers to `base` + `path`. */
export function preflight(base: string, path: string, origin: string): Promise<Response> {
  return fetch(`${base}${path}`, {
    method: 'OPTIONS',
    headers: {
      Origin: origin,
      'Access-Control-Request-Method': 'POST',
      'Access-Control-Request-Headers': 'content-type,x-namespace,authorization',
    },
  });
}

/** Payloads of a successful reply, parsed. */
export function payloadsOf(reply: Reply): Payload[] {
  if (reply.status !== 200) throw new Error(`expected 200, got ${reply.status}: ${reply.text}`);
  return (reply.json.payloads ?? []).map((p) => payloadFromJson(p));
}
