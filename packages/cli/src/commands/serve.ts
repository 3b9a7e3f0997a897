/**
 * `x-storage serve`: the codec server with the drivers, namespaces, auth and TLS of a config
 * file. Secure by default: it refuses to listen off loopback without authentication unless the
 * config says `"auth": {"mode": "none"}`, and prints the address it actually bound.
 *
 * @module
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import * as path from 'node:path';
import {
  type CodecServerAuditEvent,
  type CodecServerAuthorize,
  createBearerAuthorizer,
  DEFAULT_CODEC_SERVER_PORT,
  type StartCodecServerOptions,
  startCodecServer,
} from '@x/storage-codec-server';
import { readTls, resolveAuth } from '../auth-config';
import { CliExitCode, type Command, RefusedError, withConfig, write } from '../command';
import { ConfigError } from '../config-error';

/** Default `server.maxConcurrentRequests` of `serve`. */
export const SERVE_MAX_CONCURRENT_REQUESTS = 64;
/** Default `server.maxConcurrentDownloadBytes` of `serve`: 256 MiB. */
export const SERVE_MAX_CONCURRENT_DOWNLOAD_BYTES = 256 * 1024 * 1024;

const HELP = `Usage: x-storage serve --config <file> [--host <host>] [--port <port>]

Runs the codec server (POST /encode, /decode, /download) with the drivers, namespaces, auth and
TLS of the config file. Stops on SIGINT / SIGTERM; reloads the TLS certificate on SIGHUP.

Secure by default: without authentication ("auth" with tokens or jwt, a JS "authorize" hook, or
a TLS client CA) it only listens on loopback; anything else exits with status 2 unless the
config says "auth": {"mode": "none"} (then it warns on every start).

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

function isLoopbackAddress(address: string): boolean {
  const a = address.toLowerCase();
  return a === '::1' || /^127\.\d+\.\d+\.\d+$/.test(a) || /^::ffff:127\.\d+\.\d+\.\d+$/.test(a);
}

/** Whether `host` only reaches this machine: a loopback address, or a name whose every address is one. */
async function isLoopbackHost(host: string): Promise<boolean> {
  const h = host.replace(/^\[|\]$/g, '');
  if (h === '') return false; // Node listens on every interface
  if (isIP(h) !== 0) return isLoopbackAddress(h);
  try {
    const addresses = await lookup(h, { all: true });
    return addresses.length > 0 && addresses.every((a) => isLoopbackAddress(a.address));
  } catch {
    return false;
  }
}

function allows(decision: unknown): boolean {
  return (
    decision === true ||
    (typeof decision === 'object' && decision !== null && 'allow' in decision && decision.allow === true)
  );
}

/** Both hooks must allow (the built-in auth first); the first grant that names a principal is kept. */
function bothAllow(first: CodecServerAuthorize, second: CodecServerAuthorize): CodecServerAuthorize {
  return async (info) => {
    const decision = await first(info);
    if (!allows(decision)) return decision;
    const next = await second(info);
    if (!allows(next)) return next;
    return typeof decision === 'object' ? decision : next;
  };
}

/**
 * Awaits `promise`, turning the codec server's option errors (`E_CONFIG`) and unusable TLS
 * material (OpenSSL errors) into a {@link ConfigError} under `where` (exit status 2).
 */
async function asConfigError<T>(where: string, promise: Promise<T>): Promise<T> {
  try {
    return await promise;
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === 'E_CONFIG') throw new ConfigError(`${where}: ${(error as Error).message}`);
    if (typeof code === 'string' && code.startsWith('ERR_OSSL')) {
      throw new ConfigError(`${where}.tls: the certificate or key cannot be used: ${(error as Error).message}`);
    }
    throw error;
  }
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
      const configDir = path.dirname(config.file);
      const options: StartCodecServerOptions = {
        ...config.server,
        maxConcurrentRequests: config.server.maxConcurrentRequests ?? SERVE_MAX_CONCURRENT_REQUESTS,
        maxConcurrentDownloadBytes: config.server.maxConcurrentDownloadBytes ?? SERVE_MAX_CONCURRENT_DOWNLOAD_BYTES,
      };
      const host = args.string('host') ?? options.host ?? '127.0.0.1';
      options.host = host;
      const port = args.integer('port', 0);
      if (port !== undefined) options.port = port;

      const builtIn =
        config.auth !== undefined && config.auth.mode !== 'none'
          ? await asConfigError('config.auth', createBearerAuthorizer(await resolveAuth(config.auth, configDir)))
          : undefined;
      const hook = config.server.authorize;
      options.authorize = builtIn !== undefined && hook !== undefined ? bothAllow(builtIn, hook) : (builtIn ?? hook);
      const openByChoice = config.auth?.mode === 'none';
      const authenticated = options.authorize !== undefined || config.tls?.clientCaFile !== undefined;
      if (!authenticated && !openByChoice && !(await isLoopbackHost(host))) {
        throw new RefusedError(
          `refusing to listen on ${host} without authentication: anyone who can reach it could read every payload the configured drivers hold (/download, /decode) and store new ones (/encode). Configure "auth" in ${config.file} (static "tokens" or "jwt"), or set "auth": {"mode": "none"} to serve without authentication on purpose.`,
        );
      }
      if (config.tls !== undefined) options.tls = await readTls(config.tls, configDir);
      options.onError = (error) => {
        const cause = error.cause instanceof Error ? `: ${error.cause.message}` : '';
        io.stderr.write(`x-storage: ${error.status} ${error.code} ${error.message}${cause}\n`);
      };
      if (config.audit) {
        options.onAudit = (event: CodecServerAuditEvent) => {
          io.stderr.write(`${JSON.stringify({ audit: 'x-storage', ...event })}\n`);
        };
      }

      const running = await asConfigError('config.server', startCodecServer(options));
      let onHangUp: (() => void) | undefined;
      try {
        if (openByChoice) {
          await write(
            io.stderr,
            `x-storage serve: WARNING: "auth": {"mode": "none"}: requests are not authenticated; anyone who can reach ${running.boundUrl} can read every payload the configured drivers hold and store new ones\n`,
          );
        }
        const tlsSpec = config.tls;
        if (tlsSpec !== undefined) {
          onHangUp = () => {
            readTls(tlsSpec, configDir)
              .then((tls) => {
                running.reloadTls(tls);
                io.stderr.write(`x-storage serve: reloaded the TLS certificate and key (SIGHUP)\n`);
              })
              .catch((error: unknown) => {
                io.stderr.write(
                  `x-storage serve: TLS reload failed, keeping the current certificate: ${(error as Error).message}\n`,
                );
              });
          };
          process.on('SIGHUP', onHangUp);
        }
        await write(io.stdout, `x-storage codec server listening on ${running.boundUrl}\n`);
        await (io.stopSignal ?? defaultStopSignal());
      } finally {
        if (onHangUp !== undefined) process.off('SIGHUP', onHangUp);
        await running.close();
      }
      return CliExitCode.OK;
    });
  },
};
