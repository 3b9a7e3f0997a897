/**
 * Drives the test-only Python side of the interop tests (`packages/e2e/python`, run with the
 * venv's interpreter from `scripts/services.sh`) as child processes, and moves payloads between
 * the two languages as base64 `temporal.api.common.v1.Payload` protobuf bytes.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';
import type { Payload } from '@temporalio/common';
import { temporal } from '@temporalio/proto';

/** The venv's Python (`XSTORAGE_PYTHON` from `bash scripts/services.sh env`, same default). */
export const PYTHON_BIN: string = process.env.XSTORAGE_PYTHON ?? '/tmp/x-storage-services/venv/bin/python';

/** The folder of the Python scripts (`packages/e2e/python`), from `src` and from `dist` alike. */
export const PYTHON_DIR: string = path.join(__dirname, '..', 'python');

/** Options of {@link runPythonJson} and {@link startPythonProcess}. */
export interface PythonRunOptions {
  /** Kill the process (SIGKILL) and fail after this many milliseconds. Default 30 000. */
  timeoutMs?: number;
  /** Extra environment variables. */
  env?: Record<string, string>;
}

function spawnPython(script: string, args: readonly string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(PYTHON_BIN, ['-u', path.join(PYTHON_DIR, script), ...args], {
    cwd: PYTHON_DIR,
    env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

/**
 * Runs `python <script> <args>` in {@link PYTHON_DIR}, writes `input` as JSON to its stdin and
 * parses its stdout as JSON.
 *
 * @throws Error if the process exits non-zero, times out or prints no JSON (with its stderr).
 */
export async function runPythonJson<T>(
  script: string,
  args: readonly string[],
  input: unknown,
  options: PythonRunOptions = {},
): Promise<T> {
  const child = spawnPython(script, args, options.env);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const timeoutMs = options.timeoutMs ?? 30_000;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, timeoutMs);
  const exit = new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve(code));
  });
  child.stdin?.end(JSON.stringify(input));
  try {
    const code = await exit;
    const what = `python ${script} ${args.join(' ')}`;
    if (timedOut) throw new Error(`${what}: no answer within ${timeoutMs} ms\n${stderr}`);
    if (code !== 0) throw new Error(`${what} exited with ${code}\n${stderr}`);
    try {
      return JSON.parse(stdout) as T;
    } catch {
      throw new Error(`${what} printed no JSON: ${stdout.slice(0, 500)}\n${stderr}`);
    }
  } finally {
    clearTimeout(timer);
  }
}

/** A long-running Python process started by {@link startPythonProcess}. */
export interface PythonProcess {
  /** Everything it printed so far (stdout and stderr). */
  output(): string;
  /** Stops it (SIGTERM, SIGKILL after 5 s) and waits for it to exit. Idempotent. */
  stop(): Promise<void>;
}

/** Options of {@link startPythonProcess}. */
export interface StartPythonProcessOptions extends PythonRunOptions {
  /** A line the process prints on stdout once it is ready; {@link startPythonProcess} waits for it. */
  readyLine: string;
}

/**
 * Starts `python <script> <args>` in {@link PYTHON_DIR} and waits until it prints `readyLine`.
 *
 * @throws Error if it exits or times out first (the process is killed; the message holds its output).
 */
export async function startPythonProcess(
  script: string,
  args: readonly string[],
  options: StartPythonProcessOptions,
): Promise<PythonProcess> {
  const child = spawnPython(script, args, options.env);
  child.stdin?.end();
  let out = '';
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const ready = new Promise<void>((resolve, reject) => {
    const onData = (d: Buffer) => {
      out += d.toString();
      if (out.split('\n').includes(options.readyLine)) resolve();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.once('error', reject);
    void exited.then(() => reject(new Error(`python ${script} exited before it was ready\n${out}`)));
  });
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(timer);
      }
    })();
    return stopping;
  };
  const timeoutMs = options.timeoutMs ?? 30_000;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      ready,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`python ${script} not ready within ${timeoutMs} ms\n${out}`)),
          timeoutMs,
        );
      }),
    ]);
  } catch (error) {
    await stop();
    throw error;
  } finally {
    clearTimeout(timer);
  }
  return { output: () => out, stop };
}

/** A payload as base64 `temporal.api.common.v1.Payload` protobuf bytes (what the Python scripts exchange). */
export function payloadToBase64(payload: Payload): string {
  return Buffer.from(temporal.api.common.v1.Payload.encode(payload).finish()).toString('base64');
}

/** The inverse of {@link payloadToBase64}. */
export function payloadFromBase64(text: string): Payload {
  return temporal.api.common.v1.Payload.decode(Buffer.from(text, 'base64'));
}
