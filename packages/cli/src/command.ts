/**
 * What every `x-storage` command shares: the command shape, argument parsing with `node:util`
 * `parseArgs`, usage errors, output helpers and the config file's lifetime.
 *
 * @module
 */
import type { Readable, Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import { type LoadedConfig, loadConfig } from './config';

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

/** Exit codes of `runCli`. */
export const CliExitCode = {
  /** Success. */
  OK: 0,
  /** The operation failed (storage error, sweep errors). */
  FAILED: 1,
  /** Bad usage or bad configuration. */
  USAGE: 2,
} as const;

/** Bad usage: printed with a pointer to `--help`, exit code 2. */
export class UsageError extends Error {
  /** @param message - what is wrong with the command line. */
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/**
 * A command refuses to run as configured (e.g. `serve` off loopback without auth): printed as
 * it is, exit code 2.
 */
export class RefusedError extends Error {
  /** @param message - why, and what to change. */
  constructor(message: string) {
    super(message);
    this.name = 'RefusedError';
  }
}

/** An option of a command: `--name <value>` (`string`) or `--name` (`boolean`). */
export interface OptionSpec {
  /** `string` takes a value (`--port 80`, `--port=80`); `boolean` takes none. */
  type: 'string' | 'boolean';
  /** A `string` option that may be given more than once (`--driver a --driver b`). Default: `false`. */
  repeatable?: boolean;
}

/** One `x-storage` command: `src/commands/<name>.ts` exports one, `cli.ts` lists it. */
export interface Command {
  /** The command word, e.g. `serve`. */
  name: string;
  /** One line for `x-storage --help`. */
  summary: string;
  /** The text of `x-storage <name> --help`. */
  help: string;
  /** Options by long name (without `--`); `--help` / `-h` is added to every command. */
  options: Record<string, OptionSpec>;
  /** Runs the command and returns its exit code; throws {@link UsageError} for bad usage. */
  run(args: CommandArgs, io: CliIo): Promise<number>;
}

/** A command line parsed against a command's options. */
export class CommandArgs {
  /** Arguments that are not options, in order. */
  readonly positionals: readonly string[];
  private readonly values: Record<string, string[] | boolean | undefined>;

  /** @internal */
  constructor(positionals: string[], values: Record<string, string[] | boolean | undefined>) {
    this.positionals = positionals;
    this.values = values;
  }

  /** The value of a `string` option given at most once. @throws UsageError when given more than once. */
  string(name: string): string | undefined {
    const values = this.strings(name);
    if (values.length > 1) throw new UsageError(`--${name} given more than once`);
    return values[0];
  }

  /** Every value of a `string` option, in order (empty when absent). */
  strings(name: string): string[] {
    const value = this.values[name];
    return Array.isArray(value) ? value : [];
  }

  /** Whether a `boolean` option was given. */
  flag(name: string): boolean {
    return this.values[name] === true;
  }

  /** A `string` option as an integer `>= min`. @throws UsageError for anything else. */
  integer(name: string, min: number): number | undefined {
    const value = this.string(name);
    if (value === undefined) return undefined;
    if (!/^\d+$/.test(value) || Number(value) < min || !Number.isSafeInteger(Number(value))) {
      throw new UsageError(`--${name} must be an integer >= ${min}, got ${JSON.stringify(value)}`);
    }
    return Number(value);
  }

  /** Throws {@link UsageError} when there are positional arguments (`<command> takes no arguments`). */
  noPositionals(command: string): void {
    if (this.positionals.length > 0) {
      throw new UsageError(`${command} takes no arguments, got ${this.positionals.join(' ')}`);
    }
  }
}

/**
 * Parses `argv` (the arguments after the command word) against `command.options` with
 * `node:util` `parseArgs` in strict mode: unknown options, a missing value and a value for a
 * boolean option are {@link UsageError}s. Positionals are allowed; commands that take none say so
 * themselves ({@link CommandArgs.noPositionals}).
 */
export function parseCommandArgs(command: Pick<Command, 'options'>, argv: string[]): CommandArgs {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> = {
    help: { type: 'boolean', short: 'h' },
  };
  // Every string option collects all its values, so that one given twice is an error rather than
  // silently the last one.
  for (const [name, spec] of Object.entries(command.options)) {
    options[name] = spec.type === 'string' ? { type: 'string', multiple: true } : { type: 'boolean' };
  }
  try {
    const { positionals, values } = parseArgs({ args: argv, options, strict: true, allowPositionals: true });
    for (const [name, spec] of Object.entries(command.options)) {
      const given = values[name];
      if (spec.type === 'string' && !spec.repeatable && Array.isArray(given) && given.length > 1) {
        throw new UsageError(`--${name} given more than once`);
      }
    }
    return new CommandArgs(positionals, values as Record<string, string[] | boolean | undefined>);
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_')) {
      // parseArgs' messages span lines and suggest `--` for positionals that look like options.
      const message = (error as Error).message.replace(/\. To specify a positional argument.*$/s, '');
      throw new UsageError(message.replace(/\s*\n\s*/g, ' '));
    }
    throw error;
  }
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

/** Reads a stream to its end as UTF-8 text. */
export async function readAll(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string));
  return Buffer.concat(chunks).toString('utf8');
}

/** Writes to a stream and resolves once it is flushed to the stream's buffer. */
export function write(stream: Writable, text: string | Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.write(text, (error) => (error ? reject(error) : resolve()));
  });
}

/**
 * Loads the config file named by `--config` (required), runs `run` with it and closes what it
 * opened, whatever `run` does.
 */
export async function withConfig<T>(args: CommandArgs, run: (config: LoadedConfig) => Promise<T>): Promise<T> {
  const file = args.string('config');
  if (file === undefined) throw new UsageError('--config <file> is required');
  const config = await loadConfig(file);
  try {
    return await run(config);
  } finally {
    await config.close();
  }
}
