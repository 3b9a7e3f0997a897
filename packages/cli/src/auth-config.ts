/**
 * The `auth` and `server.tls` sections of the config file: their shape, validation, and turning
 * them into `@x/storage-codec-server`'s `createBearerAuthorizer` options and TLS material
 * (secrets and keys are read from environment variables and files, never from the config text).
 *
 * @module
 */
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import type {
  BearerAuthOptions,
  CodecServerRoute,
  CodecServerTlsOptions,
  JwtAuthOptions,
  StaticBearerToken,
} from '@x/storage-codec-server';
import { ConfigError } from './config-error';

/** A static bearer token in the config: the secret comes from an environment variable or a file. */
export interface TokenSpec {
  /** Names the token in audit lines and messages. */
  name: string;
  /** Environment variable holding the token. One of `env` and `file`. */
  env?: string;
  /** File holding the token (trailing white space is ignored; relative to the config file). One of `env` and `file`. */
  file?: string;
  /** Namespaces it may use, or `["*"]` for all. */
  namespaces: string[];
  /** Routes it may use (`encode`, `decode`, `download`). Default: `["decode", "download"]`. */
  routes?: CodecServerRoute[];
}

/** JWT verification in the config: `JwtAuthOptions` of `@x/storage-codec-server` with `keyFile` instead of `key`. */
export interface JwtSpec extends Omit<JwtAuthOptions, 'key'> {
  /** File holding the verification key: PEM public key or certificate, JWK or JWK Set (relative to the config file). One of `jwksUrl` and `keyFile`. */
  keyFile?: string;
}

/** The config's `auth` section. */
export interface AuthSpec {
  /** `"none"`: serve without authentication, on purpose (a warning is printed on every start). Not with `tokens` or `jwt`. */
  mode?: 'none';
  /** Static bearer tokens. */
  tokens?: TokenSpec[];
  /** JWT verification. */
  jwt?: JwtSpec;
}

/** The config's `server.tls` section (paths relative to the config file). */
export interface TlsSpec {
  /** Certificate chain (PEM). */
  certFile: string;
  /** Private key (PEM). */
  keyFile: string;
  /** CA certificate(s) (PEM) for client certificates: turns on mutual TLS. Default: none. */
  clientCaFile?: string;
  /** Environment variable holding the passphrase of an encrypted key. Default: none. */
  passphraseEnv?: string;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkKeys(obj: Record<string, unknown>, allowed: readonly string[], where: string): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key))
      throw new ConfigError(`${where}.${key}: unknown field (allowed: ${allowed.join(', ')})`);
  }
}

function nonEmptyString(value: unknown, where: string): string {
  if (typeof value !== 'string' || value === '') throw new ConfigError(`${where}: must be a non-empty string`);
  return value;
}

const TOKEN_KEYS = ['name', 'env', 'file', 'namespaces', 'routes'];
const JWT_KEYS = [
  'jwksUrl',
  'keyFile',
  'algorithms',
  'issuer',
  'audience',
  'clockToleranceSeconds',
  'permissionsClaim',
  'permissionsRegex',
  'jwks',
];
const ROUTES = ['encode', 'decode', 'download'];

/**
 * Validates the `auth` section's shape (not the secrets, which `serve` reads).
 *
 * @throws ConfigError naming the offending field.
 */
export function parseAuthSpec(raw: unknown): AuthSpec | undefined {
  if (raw === undefined) return undefined;
  if (!isRecord(raw))
    throw new ConfigError('config.auth: must be an object: {"tokens": [...]}, {"jwt": {...}}, or {"mode": "none"}');
  checkKeys(raw, ['mode', 'tokens', 'jwt'], 'config.auth');
  if (raw.mode !== undefined) {
    if (raw.mode !== 'none')
      throw new ConfigError('config.auth.mode: the only mode is "none" (serve without authentication)');
    if (raw.tokens !== undefined || raw.jwt !== undefined) {
      throw new ConfigError('config.auth.mode: "none" cannot be combined with tokens or jwt');
    }
    return { mode: 'none' };
  }
  if (raw.tokens === undefined && raw.jwt === undefined) {
    throw new ConfigError(
      'config.auth: configure "tokens", "jwt", or both (or {"mode": "none"} to serve without authentication)',
    );
  }
  const spec: AuthSpec = {};
  if (raw.tokens !== undefined) {
    if (!Array.isArray(raw.tokens) || raw.tokens.length === 0)
      throw new ConfigError('config.auth.tokens: must list tokens');
    spec.tokens = raw.tokens.map((t: unknown, i: number): TokenSpec => {
      const where = `config.auth.tokens[${i}]`;
      if (!isRecord(t)) throw new ConfigError(`${where}: must be {"name", "env" or "file", "namespaces", "routes"?}`);
      if ('token' in t || 'value' in t || 'secret' in t) {
        throw new ConfigError(`${where}: tokens are read from "env" or "file", never from the config text`);
      }
      checkKeys(t, TOKEN_KEYS, where);
      const token: TokenSpec = { name: nonEmptyString(t.name, `${where}.name`), namespaces: [] };
      if ((t.env === undefined) === (t.file === undefined))
        throw new ConfigError(`${where}: needs exactly one of "env" and "file"`);
      if (t.env !== undefined) token.env = nonEmptyString(t.env, `${where}.env`);
      if (t.file !== undefined) token.file = nonEmptyString(t.file, `${where}.file`);
      if (
        !Array.isArray(t.namespaces) ||
        t.namespaces.length === 0 ||
        !t.namespaces.every((n) => typeof n === 'string' && n !== '')
      ) {
        throw new ConfigError(`${where}.namespaces: must list namespaces, or ["*"] for all`);
      }
      token.namespaces = t.namespaces as string[];
      if (t.routes !== undefined) {
        if (!Array.isArray(t.routes) || t.routes.length === 0 || !t.routes.every((r) => ROUTES.includes(r as string))) {
          throw new ConfigError(`${where}.routes: must list routes among "encode", "decode", "download"`);
        }
        token.routes = t.routes as CodecServerRoute[];
      }
      return token;
    });
  }
  if (raw.jwt !== undefined) {
    const jwt = raw.jwt;
    if (!isRecord(jwt)) throw new ConfigError('config.auth.jwt: must be an object');
    checkKeys(jwt, JWT_KEYS, 'config.auth.jwt');
    if ((jwt.jwksUrl === undefined) === (jwt.keyFile === undefined)) {
      throw new ConfigError('config.auth.jwt: needs exactly one of "jwksUrl" and "keyFile"');
    }
    if (jwt.jwksUrl !== undefined) nonEmptyString(jwt.jwksUrl, 'config.auth.jwt.jwksUrl');
    if (jwt.keyFile !== undefined) nonEmptyString(jwt.keyFile, 'config.auth.jwt.keyFile');
    if (jwt.jwks !== undefined && jwt.jwksUrl === undefined)
      throw new ConfigError('config.auth.jwt.jwks: only with "jwksUrl"');
    // The remaining fields are checked by createBearerAuthorizer when serve starts.
    spec.jwt = jwt as JwtSpec;
  }
  return spec;
}

/**
 * Validates the `server.tls` section's shape.
 *
 * @throws ConfigError naming the offending field.
 */
export function parseTlsSpec(raw: unknown): TlsSpec | undefined {
  if (raw === undefined) return undefined;
  if (!isRecord(raw)) throw new ConfigError('config.server.tls: must be {"certFile", "keyFile", "clientCaFile"?}');
  checkKeys(raw, ['certFile', 'keyFile', 'clientCaFile', 'passphraseEnv'], 'config.server.tls');
  const spec: TlsSpec = {
    certFile: nonEmptyString(raw.certFile, 'config.server.tls.certFile'),
    keyFile: nonEmptyString(raw.keyFile, 'config.server.tls.keyFile'),
  };
  if (raw.clientCaFile !== undefined)
    spec.clientCaFile = nonEmptyString(raw.clientCaFile, 'config.server.tls.clientCaFile');
  if (raw.passphraseEnv !== undefined)
    spec.passphraseEnv = nonEmptyString(raw.passphraseEnv, 'config.server.tls.passphraseEnv');
  return spec;
}

async function readConfigFile(file: string, configDir: string, where: string): Promise<string> {
  try {
    return await readFile(path.resolve(configDir, file), 'utf8');
  } catch (error) {
    throw new ConfigError(
      `${where}: cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
}

function readEnv(name: string, where: string, env: NodeJS.ProcessEnv): string {
  const value = env[name];
  if (value === undefined || value === '')
    throw new ConfigError(`${where}: the environment variable ${name} is not set`);
  return value;
}

/**
 * Reads the secrets of an `auth` section (token environment variables and files, the JWT key
 * file) into `createBearerAuthorizer` options.
 *
 * @throws ConfigError for a variable that is not set or a file that cannot be read.
 */
export async function resolveAuth(
  spec: AuthSpec,
  configDir: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<BearerAuthOptions> {
  const options: BearerAuthOptions = {};
  if (spec.tokens !== undefined) {
    const tokens: StaticBearerToken[] = [];
    for (const [i, t] of spec.tokens.entries()) {
      const where = `config.auth.tokens[${i}]`;
      const token =
        t.env !== undefined
          ? readEnv(t.env, `${where}.env`, env)
          : (await readConfigFile(t.file as string, configDir, `${where}.file`)).replace(/\s+$/, '');
      tokens.push({ name: t.name, token, namespaces: t.namespaces, ...(t.routes ? { routes: t.routes } : {}) });
    }
    options.tokens = tokens;
  }
  if (spec.jwt !== undefined) {
    const { keyFile, ...jwt } = spec.jwt;
    options.jwt =
      keyFile === undefined
        ? jwt
        : { ...jwt, key: await readConfigFile(keyFile, configDir, 'config.auth.jwt.keyFile') };
  }
  return options;
}

/**
 * Reads the certificate, key and client CA files of a `server.tls` section (again on every
 * reload).
 *
 * @throws ConfigError for a file that cannot be read or a passphrase variable that is not set.
 */
export async function readTls(
  spec: TlsSpec,
  configDir: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<CodecServerTlsOptions> {
  const tls: CodecServerTlsOptions = {
    cert: await readConfigFile(spec.certFile, configDir, 'config.server.tls.certFile'),
    key: await readConfigFile(spec.keyFile, configDir, 'config.server.tls.keyFile'),
  };
  if (spec.clientCaFile !== undefined) {
    tls.clientCa = await readConfigFile(spec.clientCaFile, configDir, 'config.server.tls.clientCaFile');
  }
  if (spec.passphraseEnv !== undefined)
    tls.passphrase = readEnv(spec.passphraseEnv, 'config.server.tls.passphraseEnv', env);
  return tls;
}
