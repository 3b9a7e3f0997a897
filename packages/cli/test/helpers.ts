/** Shared helpers of the CLI tests: temp dirs, payloads, the built `x-storage` as a child process, HTTP(S) calls. */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import * as http from 'node:http';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import { type PayloadJson, payloadFromJson, payloadToJson } from '@x/storage-codec-server';
import type { Payload } from '@x/storage-driver-core';

/** A fresh temp directory; remember to `cleanup()` it. */
export function makeTempDir(prefix = 'x-storage-cli-'): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), prefix));
}

/** Removes a temp directory (ignores errors). */
export async function cleanup(dir: string | undefined): Promise<void> {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true }).catch(() => {});
}

/** A `json/plain` payload holding `value`. */
export function jsonPayload(value: unknown): Payload {
  return { metadata: { encoding: Buffer.from('json/plain') }, data: Buffer.from(JSON.stringify(value)) };
}

/** A `{"payloads":[...]}` body. */
export function body(...payloads: Payload[]): { payloads: PayloadJson[] } {
  return { payloads: payloads.map(payloadToJson) };
}

/** The built `x-storage` executable (the test script builds with `tsc -b` before jest). */
export const BIN = path.resolve(__dirname, '../dist/bin.js');

/** Result of {@link runXStorage}. */
export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `x-storage <args>` as a child process (killed after `timeoutMs`, which then shows as a
 * non-zero code) and resolves with its exit code and output.
 */
export function runXStorage(
  args: string[],
  stdin?: string,
  timeoutMs = 30_000,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [BIN, ...args], { timeout: timeoutMs, env }, (error, stdout, stderr) => {
      const e = error as { code?: unknown; killed?: boolean } | null;
      const code = e === null ? 0 : typeof e.code === 'number' ? e.code : 1;
      resolve({ code: e?.killed ? -1 : code, stdout, stderr });
    });
    child.stdin?.end(stdin);
  });
}

/** A running `x-storage serve` child process. */
export interface Served {
  /** The child process. */
  child: ChildProcess;
  /** The URL from the `listening on <url>` line. */
  url: string;
  /** Everything written to stdout and stderr so far. */
  output(): { stdout: string; stderr: string };
  /** Sends SIGTERM and resolves with the exit code. */
  stop(): Promise<number | null>;
}

/**
 * Starts `x-storage serve <args>` and resolves once it prints `listening on <url>`; rejects with
 * its output if it exits first.
 */
export function serve(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Served> {
  const child = spawn(process.execPath, [BIN, 'serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const onData = (): void => {
      const match = /listening on (https?:\/\/\S+)/.exec(stdout);
      if (match === null) return;
      child.stdout?.off('data', onData);
      resolve({
        child,
        url: match[1] as string,
        output: () => ({ stdout, stderr }),
        stop: async () => {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
          return exited;
        },
      });
    };
    child.stdout?.on('data', onData);
    exited.then((code) => reject(new Error(`serve exited with ${code}\nstdout: ${stdout}\nstderr: ${stderr}`)));
  });
}

/** Result of {@link request}. */
export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  json: { payloads?: PayloadJson[]; code?: string; message?: string };
  text: string;
}

/** Options of {@link request}: headers, and TLS settings for `https:` URLs. */
export interface RequestOptions {
  headers?: Record<string, string>;
  method?: string;
  /** CA certificate(s) to trust (PEM). */
  ca?: string | Buffer;
  /** Client certificate and key (PEM), for mutual TLS. */
  cert?: string | Buffer;
  key?: string | Buffer;
}

/** POSTs `payload` as JSON to `url` + `route` over HTTP or HTTPS and parses the JSON reply. */
export function request(url: string, route: string, payload: unknown, options: RequestOptions = {}): Promise<Reply> {
  const target = new URL(`${url}${route}`);
  const text = payload === undefined ? '' : JSON.stringify(payload);
  const init: https.RequestOptions = {
    method: options.method ?? 'POST',
    headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...options.headers },
    agent: false,
  };
  if (target.protocol === 'https:') {
    if (options.ca !== undefined) init.ca = options.ca;
    if (options.cert !== undefined) init.cert = options.cert;
    if (options.key !== undefined) init.key = options.key;
  }
  return new Promise((resolve, reject) => {
    const req = (target.protocol === 'https:' ? https : http).request(target, init, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const replyText = Buffer.concat(chunks).toString('utf8');
        let json: Reply['json'] = {};
        try {
          json = replyText === '' ? {} : JSON.parse(replyText);
        } catch {
          // not JSON: leave empty
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, json, text: replyText });
      });
    });
    req.on('error', reject);
    req.end(text);
  });
}

/** Payloads of a successful reply, parsed. */
export function payloadsOf(reply: Reply): Payload[] {
  if (reply.status !== 200) throw new Error(`expected 200, got ${reply.status}: ${reply.text}`);
  return (reply.json.payloads ?? []).map((p) => payloadFromJson(p));
}
