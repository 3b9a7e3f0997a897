/**
 * The `x-storage` operator CLI: `serve`, `get`, `sweep`.
 *
 * @module
 */
import { readFile, writeFile } from 'node:fs/promises';
import type { Readable, Writable } from 'node:stream';
import type { Payload } from '@x/storage-driver-core';
import { NamespaceCodec } from './codec';
import { ConfigError, type LoadedConfig, loadConfig } from './config';
import { CodecServerError } from './errors';
import { DEFAULT_NAMESPACE } from './handler';
import { lifecycleResultHasErrors, runDriverLifecycle, summarizeLifecycleResult } from './lifecycle';
import { payloadFromJson, payloadToJson } from './proto-json';
import { encodeReferencePayload, isReferencePayload, referenceFromJson } from './reference';
import { DEFAULT_CODEC_SERVER_PORT, startCodecServer } from './server';

/** Streams and hooks the CLI uses (injectable for tests). */
export interface CliIo {
  /** Standard output. */
  stdout: Writable;
  /** Standard error. */
  stderr: Writable;
  /** Standard input (read by `get -`). */
  stdin: Readable;
  /** Resolves when the process should stop serving (default: SIGINT or SIGTERM). */
  stopSignal?: Promise<void>;
}

/** Exit codes of {@link runCli}. */
export const CliExitCode = {
  /** Success. */
  OK: 0,
  /** The operation failed (storage error, sweep errors). */
  FAILED: 1,
  /** Bad usage or bad configuration. */
  USAGE: 2,
} as const;

const MAIN_HELP = `Usage: x-storage <command> [options]

Operator tools for Temporal External Storage.

Commands:
  serve    Run the codec server for the Temporal Web UI and CLI (--codec-endpoint)
  get      Print or save the payload an External Storage reference points to
  sweep    Run the lifecycle sweep of the configured drivers and print what was removed

Run "x-storage <command> --help" for the options of a command.
`;

const SERVE_HELP = `Usage: x-storage serve --config <file> [--host <host>] [--port <port>]

Runs the codec server (POST /encode, /decode, /download) with the drivers and namespaces of
the config file. Stops on SIGINT / SIGTERM.

Options:
  --config <file>   Config file (.json, .js, .cjs, .mjs). Required.
  --host <host>     Interface to listen on (default: config server.host, else 127.0.0.1)
  --port <port>     Port, 0 for a free one (default: config server.port, else ${DEFAULT_CODEC_SERVER_PORT})
  -h, --help        Show this help
`;

const GET_HELP = `Usage: x-storage get <reference> --config <file> [--namespace <ns>] [--out <file>] [--payload]

Retrieves the payload a reference points to, runs the namespace's payload codecs, and prints
its data (or writes it to --out).

<reference> is one of:
  - inline proto3 JSON: the reference payload as shown in history
    ({"metadata":{...},"data":"<base64>","externalPayloads":[...]}), or the reference
    message itself ({"driverName":"fs","claimData":{...}})
  - the path of a file holding that JSON
  - "-" to read it from standard input

Options:
  --config <file>     Config file naming the drivers. Required.
  --namespace <ns>    Namespace whose configuration to use (default: config defaultNamespace, else ${DEFAULT_NAMESPACE})
  --out <file>        Write the payload data to <file> instead of standard output
  --payload           Print the whole decoded payload (metadata and data) as proto3 JSON
  -h, --help          Show this help
`;

const SWEEP_HELP = `Usage: x-storage sweep --config <file> [--driver <id>]... [--older-than <duration>] [--dry-run]
                       [--batch-size <n>] [--max-batches <n>] [--json]

Runs the lifecycle method of every configured driver that has one, and prints what it removed:
  sweep({ olderThan, dryRun, signal })          e.g. the filesystem driver
  deleteExpired({ batchSize, maxBatches, signal })  e.g. the PostgreSQL driver
Drivers with neither (their backend expires payloads itself) are reported as skipped.

Options:
  --config <file>          Config file naming the drivers. Required.
  --driver <id>            Only this driver id (repeatable; default: all)
  --older-than <duration>  Remove payloads last stored longer ago than this (sweep only):
                           milliseconds, or a number with ms, s, m, h or d (e.g. 7d).
                           Default: the driver's ttl.
  --dry-run                Report what would be removed, remove nothing (sweep only)
  --batch-size <n>         Rows per batch (deleteExpired only)
  --max-batches <n>        Stop after n batches (deleteExpired only)
  --json                   Print the full results as JSON
  -h, --help               Show this help

Exit status: 0 when every driver succeeded, 1 when one failed or reported errors, 2 on bad usage.
`;

class UsageError extends Error {}

interface ParsedArgs {
  positional: string[];
  flags: Map<string, string[]>;
}

function parseArgs(argv: string[], valued: Set<string>, booleans: Set<string>): ParsedArgs {
  const positional: string[] = [];
  const flags = new Map<string, string[]>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '-h') {
      flags.set('help', ['true']);
      continue;
    }
    if (!arg.startsWith('--') || arg === '-') {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    if (booleans.has(name)) {
      if (eq !== -1) throw new UsageError(`--${name} takes no value`);
      flags.set(name, ['true']);
    } else if (valued.has(name)) {
      const value = eq === -1 ? argv[++i] : arg.slice(eq + 1);
      if (value === undefined || (eq === -1 && value.startsWith('--'))) throw new UsageError(`--${name} needs a value`);
      flags.set(name, [...(flags.get(name) ?? []), value]);
    } else {
      throw new UsageError(`unknown option --${name}`);
    }
  }
  return { positional, flags };
}

function one(args: ParsedArgs, name: string): string | undefined {
  const values = args.flags.get(name);
  if (values !== undefined && values.length > 1) throw new UsageError(`--${name} given more than once`);
  return values?.[0];
}

function integer(value: string | undefined, name: string, min: number): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < min || !Number.isSafeInteger(Number(value))) {
    throw new UsageError(`--${name} must be an integer >= ${min}, got ${JSON.stringify(value)}`);
  }
  return Number(value);
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Parses a duration: milliseconds (`500`), or a number with a unit `ms`, `s`, `m`, `h`, `d`
 * (`90s`, `36h`, `7d`, `1.5h`).
 *
 * @throws Error if the value is not a duration.
 */
export function parseDuration(value: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(value.trim());
  if (match === null) throw new UsageError(`not a duration: ${JSON.stringify(value)} (use e.g. 500, 90s, 36h, 7d)`);
  const ms = Math.round(Number(match[1]) * (UNITS[match[2] ?? 'ms'] as number));
  if (!Number.isSafeInteger(ms)) throw new UsageError(`duration too large: ${value}`);
  return ms;
}

async function readAll(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string));
  return Buffer.concat(chunks).toString('utf8');
}

function write(stream: Writable, text: string | Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.write(text, (error) => (error ? reject(error) : resolve()));
  });
}

async function withConfig<T>(args: ParsedArgs, run: (config: LoadedConfig) => Promise<T>): Promise<T> {
  const file = one(args, 'config');
  if (file === undefined) throw new UsageError('--config <file> is required');
  const config = await loadConfig(file);
  try {
    return await run(config);
  } finally {
    await config.close();
  }
}

function defaultStopSignal(): Promise<void> {
  return new Promise((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

async function serve(args: ParsedArgs, io: CliIo): Promise<number> {
  if (args.positional.length > 0) throw new UsageError(`serve takes no arguments, got ${args.positional.join(' ')}`);
  return withConfig(args, async (config) => {
    const options = { ...config.server };
    const host = one(args, 'host');
    if (host !== undefined) options.host = host;
    const port = integer(one(args, 'port'), 'port', 0);
    if (port !== undefined) options.port = port;
    options.onError = (error) => {
      const cause = error.cause instanceof Error ? `: ${error.cause.message}` : '';
      io.stderr.write(`x-storage: ${error.status} ${error.code} ${error.message}${cause}\n`);
    };
    const running = await startCodecServer(options);
    await write(io.stdout, `x-storage codec server listening on ${running.url}\n`);
    await (io.stopSignal ?? defaultStopSignal());
    await running.close();
    return CliExitCode.OK;
  });
}

function parseReference(text: string): Payload {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new UsageError('the reference is not valid JSON');
  }
  if (typeof json === 'object' && json !== null && Array.isArray((json as { payloads?: unknown }).payloads)) {
    const list = (json as { payloads: unknown[] }).payloads;
    if (list.length !== 1) throw new UsageError(`expected one reference, got ${list.length} payloads`);
    json = list[0];
  }
  if (typeof json === 'object' && json !== null && ('driverName' in json || 'driver_name' in json)) {
    const ref = referenceFromJson(json);
    return encodeReferencePayload(ref);
  }
  const payload = payloadFromJson(json);
  if (!isReferencePayload(payload)) {
    throw new UsageError(
      'the payload is not an External Storage reference (metadata messageType must be temporal.api.sdk.v1.ExternalStorageReference)',
    );
  }
  return payload;
}

async function get(args: ParsedArgs, io: CliIo): Promise<number> {
  if (args.positional.length !== 1)
    throw new UsageError('get takes exactly one <reference> (inline JSON, a file, or -)');
  const source = args.positional[0] as string;
  let text: string;
  if (source === '-') text = await readAll(io.stdin);
  else if (source.trimStart().startsWith('{')) text = source;
  else {
    try {
      text = await readFile(source, 'utf8');
    } catch (error) {
      throw new UsageError(`cannot read reference file ${source}: ${(error as Error).message}`);
    }
  }
  const reference = parseReference(text);
  return withConfig(args, async (config) => {
    const namespace = one(args, 'namespace') ?? config.server.defaultNamespace ?? DEFAULT_NAMESPACE;
    const nsConfig = config.server.namespaces?.[namespace] ?? config.server.otherNamespaces;
    if (nsConfig === undefined)
      throw new UsageError(`no configuration for namespace ${JSON.stringify(namespace)} in ${config.file}`);
    const [payload] = await new NamespaceCodec(namespace, nsConfig).download([reference]);
    const out = one(args, 'out');
    const bytes: Uint8Array = args.flags.has('payload')
      ? Buffer.from(`${JSON.stringify(payloadToJson(payload as Payload), null, 2)}\n`)
      : ((payload as Payload).data ?? new Uint8Array(0));
    if (out !== undefined) {
      await writeFile(out, bytes);
      await write(io.stderr, `wrote ${bytes.length} bytes to ${out}\n`);
    } else {
      await write(io.stdout, bytes);
    }
    return CliExitCode.OK;
  });
}

function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Error)
    return { name: value.name, code: (value as { code?: unknown }).code, message: value.message };
  return value;
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

/** The human line under a `deleteExpired` result (`{ deleted, deletedBytes?, batches?, more? }`). */
function describeDeleteExpired(result: unknown): string {
  const r = (result ?? {}) as { deleted?: unknown; deletedBytes?: unknown; batches?: unknown; more?: unknown };
  if (typeof r.deleted !== 'number') return '';
  const bytes = typeof r.deletedBytes === 'number' ? ` (${formatBytes(r.deletedBytes)})` : '';
  const batches = typeof r.batches === 'number' ? ` in ${r.batches} batch${r.batches === 1 ? '' : 'es'}` : '';
  let text = `  removed ${r.deleted} expired payload${r.deleted === 1 ? '' : 's'}${bytes}${batches}\n`;
  if (r.more === true) text += '  more expired payloads remain (stopped at --max-batches); run sweep again\n';
  return text;
}

async function sweep(args: ParsedArgs, io: CliIo): Promise<number> {
  if (args.positional.length > 0) throw new UsageError(`sweep takes no arguments, got ${args.positional.join(' ')}`);
  const olderThanText = one(args, 'older-than');
  const olderThan = olderThanText === undefined ? undefined : parseDuration(olderThanText);
  const batchSize = integer(one(args, 'batch-size'), 'batch-size', 1);
  const maxBatches = integer(one(args, 'max-batches'), 'max-batches', 1);
  return withConfig(args, async (config) => {
    const ids = args.flags.get('driver') ?? [...config.drivers.keys()];
    for (const id of ids) {
      if (!config.drivers.has(id))
        throw new UsageError(
          `unknown driver id ${JSON.stringify(id)} (known: ${[...config.drivers.keys()].join(', ')})`,
        );
    }
    const controller = new AbortController();
    const onSignal = (): void => controller.abort(new Error('interrupted'));
    process.once('SIGINT', onSignal);
    let failed = false;
    const outcomes = [];
    try {
      for (const id of ids) {
        const outcome = await runDriverLifecycle(
          config.drivers.get(id) as NonNullable<ReturnType<typeof config.drivers.get>>,
          {
            olderThan,
            dryRun: args.flags.has('dry-run'),
            batchSize,
            maxBatches,
            signal: controller.signal,
          },
        );
        if (outcome.error !== undefined || lifecycleResultHasErrors(outcome.result)) failed = true;
        outcomes.push({ id, ...outcome });
        if (!args.flags.has('json')) {
          const head = `${id} (${outcome.driverName}, ${outcome.driverType})`;
          if (outcome.error !== undefined) {
            const e = outcome.error as { code?: unknown; message?: unknown };
            await write(
              io.stdout,
              `${head}: ${outcome.method} failed: ${e.code ? `${String(e.code)} ` : ''}${String(e.message ?? e)}\n`,
            );
          } else if (outcome.method === null) {
            await write(io.stdout, `${head}: skipped: ${outcome.skipped}\n`);
          } else {
            const summary = Object.entries(summarizeLifecycleResult(outcome.result))
              .map(([k, v]) => `${k}=${v}`)
              .join(' ');
            await write(io.stdout, `${head}: ${outcome.method}: ${summary}\n`);
            if (outcome.method === 'deleteExpired') await write(io.stdout, describeDeleteExpired(outcome.result));
            const removed = (outcome.result as { removed?: unknown } | null)?.removed;
            if (Array.isArray(removed)) {
              for (const entry of removed) {
                const e = entry as { key?: unknown; path?: unknown; size?: unknown };
                await write(
                  io.stdout,
                  `  ${args.flags.has('dry-run') ? 'would remove' : 'removed'} ${String(e.key ?? e.path)}${e.size !== undefined ? ` (${String(e.size)} bytes)` : ''}\n`,
                );
              }
            }
          }
        }
      }
    } finally {
      process.off('SIGINT', onSignal);
    }
    if (args.flags.has('json')) await write(io.stdout, `${JSON.stringify(outcomes, jsonReplacer, 2)}\n`);
    return failed ? CliExitCode.FAILED : CliExitCode.OK;
  });
}

const COMMANDS = {
  serve: { help: SERVE_HELP, run: serve, valued: ['config', 'host', 'port'], booleans: [] },
  get: { help: GET_HELP, run: get, valued: ['config', 'namespace', 'out'], booleans: ['payload'] },
  sweep: {
    help: SWEEP_HELP,
    run: sweep,
    valued: ['config', 'driver', 'older-than', 'batch-size', 'max-batches'],
    booleans: ['dry-run', 'json'],
  },
} as const;

/**
 * Runs the CLI with `argv` (without `node` and the script) and returns the exit code. Errors
 * are printed to `stderr` as one line, without stack traces.
 */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    await write(command === undefined ? io.stderr : io.stdout, MAIN_HELP);
    return command === undefined ? CliExitCode.USAGE : CliExitCode.OK;
  }
  const spec = COMMANDS[command as keyof typeof COMMANDS];
  if (spec === undefined) {
    await write(io.stderr, `x-storage: unknown command ${JSON.stringify(command)}\n\n${MAIN_HELP}`);
    return CliExitCode.USAGE;
  }
  try {
    const args = parseArgs(rest, new Set<string>(spec.valued), new Set<string>([...spec.booleans, 'help']));
    if (args.flags.has('help')) {
      await write(io.stdout, spec.help);
      return CliExitCode.OK;
    }
    return await spec.run(args, io);
  } catch (error) {
    if (error instanceof UsageError) {
      await write(io.stderr, `x-storage ${command}: ${error.message}\nRun "x-storage ${command} --help" for usage.\n`);
      return CliExitCode.USAGE;
    }
    if (error instanceof ConfigError) {
      await write(io.stderr, `x-storage ${command}: invalid config: ${error.message}\n`);
      return CliExitCode.USAGE;
    }
    if (error instanceof CodecServerError) {
      await write(io.stderr, `x-storage ${command}: ${error.code}: ${error.message}\n`);
      return error.status < 500 && error.status !== 404 ? CliExitCode.USAGE : CliExitCode.FAILED;
    }
    const e = error as { code?: unknown; message?: unknown };
    await write(
      io.stderr,
      `x-storage ${command}: ${typeof e?.code === 'string' ? `${e.code}: ` : ''}${String(e?.message ?? error)}\n`,
    );
    return CliExitCode.FAILED;
  }
}
