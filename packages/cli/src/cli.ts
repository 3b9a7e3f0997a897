/**
 * The `x-storage` operator CLI: the command list, the main help, dispatch and error reporting.
 * Each command lives in `commands/<name>.ts`; adding one is a new file and a line in
 * {@link COMMANDS}.
 *
 * @module
 */
import { CodecServerError } from '@x/storage-codec-server';
import { CliExitCode, type CliIo, type Command, parseCommandArgs, RefusedError, UsageError, write } from './command';
import { gc } from './commands/gc';
import { get } from './commands/get';
import { serve } from './commands/serve';
import { sweep } from './commands/sweep';
import { ConfigError } from './config-error';

/** The commands, in the order `x-storage --help` lists them. */
const COMMANDS: readonly Command[] = [serve, get, sweep, gc];

const MAIN_HELP = `Usage: x-storage <command> [options]

Operator tools for Temporal External Storage.

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(8)} ${c.summary}`).join('\n')}

Run "x-storage <command> --help" for the options of a command.
`;

/**
 * Runs the CLI with `argv` (without `node` and the script) and returns the exit code
 * ({@link CliExitCode}). Errors are printed to `stderr` as one line, without stack traces.
 */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    await write(name === undefined ? io.stderr : io.stdout, MAIN_HELP);
    return name === undefined ? CliExitCode.USAGE : CliExitCode.OK;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (command === undefined) {
    await write(io.stderr, `x-storage: unknown command ${JSON.stringify(name)}\n\n${MAIN_HELP}`);
    return CliExitCode.USAGE;
  }
  try {
    const args = parseCommandArgs(command, rest);
    if (args.flag('help')) {
      await write(io.stdout, command.help);
      return CliExitCode.OK;
    }
    return await command.run(args, io);
  } catch (error) {
    if (error instanceof UsageError) {
      await write(io.stderr, `x-storage ${name}: ${error.message}\nRun "x-storage ${name} --help" for usage.\n`);
      return CliExitCode.USAGE;
    }
    if (error instanceof RefusedError) {
      await write(io.stderr, `x-storage ${name}: ${error.message}\n`);
      return CliExitCode.USAGE;
    }
    if (error instanceof ConfigError) {
      await write(io.stderr, `x-storage ${name}: invalid config: ${error.message}\n`);
      return CliExitCode.USAGE;
    }
    if (error instanceof CodecServerError) {
      await write(io.stderr, `x-storage ${name}: ${error.code}: ${error.message}\n`);
      return error.status < 500 && error.status !== 404 ? CliExitCode.USAGE : CliExitCode.FAILED;
    }
    const e = error as { code?: unknown; message?: unknown };
    await write(
      io.stderr,
      `x-storage ${name}: ${typeof e?.code === 'string' ? `${e.code}: ` : ''}${String(e?.message ?? error)}\n`,
    );
    return CliExitCode.FAILED;
  }
}
