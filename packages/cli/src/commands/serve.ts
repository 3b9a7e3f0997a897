/**
 * `x-storage serve`: the codec server with the drivers and namespaces of a config file.
 *
 * @module
 */
import { DEFAULT_CODEC_SERVER_PORT, startCodecServer } from '@x/storage-codec-server';
import { CliExitCode, type Command, withConfig, write } from '../command';

const HELP = `Usage: x-storage serve --config <file> [--host <host>] [--port <port>]

Runs the codec server (POST /encode, /decode, /download) with the drivers and namespaces of
the config file. Stops on SIGINT / SIGTERM.

Options:
  --config <file>   Config file (.json, .js, .cjs, .mjs). Required.
  --host <host>     Interface to listen on (default: config server.host, else 127.0.0.1)
  --port <port>     Port, 0 for a free one (default: config server.port, else ${DEFAULT_CODEC_SERVER_PORT})
  -h, --help        Show this help
`;

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

/** `x-storage serve`. */
export const serve: Command = {
  name: 'serve',
  summary: 'Run the codec server for the Temporal Web UI and CLI (--codec-endpoint)',
  help: HELP,
  options: { config: { type: 'string' }, host: { type: 'string' }, port: { type: 'string' } },
  async run(args, io) {
    args.noPositionals('serve');
    return withConfig(args, async (config) => {
      const options = { ...config.server };
      const host = args.string('host');
      if (host !== undefined) options.host = host;
      const port = args.integer('port', 0);
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
  },
};
