/**
 * The `x-storage` configuration file: JSON, or a JS module (CommonJS or ESM) exporting the same
 * shape, where drivers may also be ready-made instances and functions are allowed (selectors,
 * codecs, the auth hook).
 *
 * @module
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import type {
  CodecNamespaceConfig,
  CodecServerAuthorize,
  CodecServerCorsOptions,
  PayloadCodec,
  StartCodecServerOptions,
} from '@x/storage-codec-server';
import type { StorageDriver, StorageDriverSelector } from '@x/storage-driver-core';
import { type AuthSpec, parseAuthSpec, parseTlsSpec, type TlsSpec } from './auth-config';
import { ConfigError } from './config-error';

export { ConfigError };

/**
 * How a JSON config builds a driver, in one of two forms:
 * - constructor: `new (await import(module))[export](options)`;
 * - factory: `await (await import(module))[export][factory](...args)`, for drivers that need a
 *   client and offer a static factory that creates (and owns) it, e.g.
 *   `{"module": "@x/storage-driver-postgres", "export": "PostgresStorageDriver",
 *   "factory": "fromConnectionString", "args": ["postgres://…", {"ttl": 86400000}]}`.
 *
 * The CLI calls `close()` on every driver it built from a spec (if the driver has one) when it
 * is done, so pools and connections a factory opened are ended and the process exits.
 */
export interface DriverSpec {
  /**
   * Module to load: a package name (resolved from the config file's directory, then from the
   * directory of `@x/storage-cli`) or a path relative to the config file.
   */
  module: string;
  /** Name of the exported class. Default: `default`. */
  export?: string;
  /** Constructor options, passed as they are (relative paths resolve against the working directory). Not with `factory`. */
  options?: Record<string, unknown>;
  /** Name of a static function of the export that returns (or resolves to) the driver. Default: none (use `new`). */
  factory?: string;
  /** Arguments of `factory`, passed as they are. Only with `factory`. Default: `[]`. */
  args?: unknown[];
}

/** One namespace in a config file. */
export interface NamespaceSpec {
  /** Driver ids (keys of `drivers`) or, in a JS config, driver instances. The first stores on `/encode` unless `driverSelector` says otherwise. */
  drivers: (string | StorageDriver)[];
  /** JS config only: picks the driver on `/encode`. Default: the first listed driver. */
  driverSelector?: StorageDriverSelector;
  /** Payloads at or above this serialized size are stored on `/encode`. Default: 256 KiB. */
  payloadSizeThreshold?: number;
  /** JS config only: codecs inside storage (the SDK's `payloadCodecs`). */
  payloadCodecs?: PayloadCodec[];
  /** JS config only: codecs outside storage. */
  outerCodecs?: PayloadCodec[];
  /** Show references smaller than this many bytes decoded even when asked to preserve them (see `CodecNamespaceConfig.inlineReferencesBelow`). Default: `0`. */
  inlineReferencesBelow?: number;
}

/** The config file's shape. */
export interface XStorageConfigFile {
  /** Listener and HTTP settings of `serve`. */
  server?: {
    /** Default: `127.0.0.1`. */
    host?: string;
    /** Default: `8888`. */
    port?: number;
    /** CORS; list the Web UI's origin, e.g. `http://localhost:8233`. Default: none. */
    cors?: CodecServerCorsOptions;
    /** Default: 16 MiB. */
    maxBodyBytes?: number;
    /** Most payloads per request. Default: 10,000. */
    maxPayloads?: number;
    /** Most metadata entries per request (all payloads). Default: 100,000. */
    maxMetadataEntries?: number;
    /** Default: none. */
    basePath?: string;
    /** HTTPS: certificate, key and (mutual TLS) client CA files. Reloaded on SIGHUP. Default: plain HTTP. */
    tls?: TlsSpec;
    /** Refuse `/encode` (403 `E_READ_ONLY`). Default: `false`. */
    readOnly?: boolean;
    /** Write a JSON audit line per `/encode` and `/download` (and `/decode` that retrieves or is refused) to stderr. Default: `false`. */
    audit?: boolean;
    /** Time to send the request headers, ms. Default: 10,000. */
    headersTimeoutMs?: number;
    /** Time to send the whole request, ms. Default: 60,000. */
    requestTimeoutMs?: number;
    /** Idle connection timeout, ms. Default: 120,000. */
    idleTimeoutMs?: number;
    /** Most requests at once (more get 503). Default: 64. */
    maxConcurrentRequests?: number;
    /** Most payload bytes being retrieved at once (more get 503). Default: 256 MiB. */
    maxConcurrentDownloadBytes?: number;
  };
  /** Authentication: static tokens and/or JWT, or `{"mode": "none"}`. Required to listen off loopback (unless `authorize` or a client CA is configured). */
  auth?: AuthSpec;
  /** Namespace used when `X-Namespace` is absent. Default: `default`. */
  defaultNamespace?: string;
  /** Drivers by id: a {@link DriverSpec}, or (JS config) a driver instance. */
  drivers: Record<string, DriverSpec | StorageDriver>;
  /** Namespaces. Default (with no `otherNamespaces` either): every namespace uses every driver. */
  namespaces?: Record<string, NamespaceSpec>;
  /** Configuration for namespaces not in `namespaces`. Default: none (404). */
  otherNamespaces?: NamespaceSpec;
  /** JS config only: the auth hook. */
  authorize?: CodecServerAuthorize;
  /** JS config only: called when the CLI exits (close the clients the config created). */
  close?: () => void | Promise<void>;
}

/** A loaded, validated configuration. */
export interface LoadedConfig {
  /** Absolute path of the config file. */
  file: string;
  /** Drivers by id (each instance once). */
  drivers: Map<string, StorageDriver>;
  /** Options for `startCodecServer` of `@x/storage-codec-server` (without TLS, the `auth` section and the CLI's defaults, which `serve` adds). */
  server: StartCodecServerOptions;
  /** The validated `auth` section (secrets not read yet). */
  auth: AuthSpec | undefined;
  /** The validated `server.tls` section (files not read yet). */
  tls: TlsSpec | undefined;
  /** `server.audit`. */
  audit: boolean;
  /**
   * Closes what the config opened: `close()` of every driver built from a {@link DriverSpec}
   * (drivers without one are left alone), then the config's `close` hook.
   *
   * @throws Error naming the drivers whose `close()` failed (after trying all of them).
   */
  close(): Promise<void>;
}

const TOP_KEYS = new Set([
  'server',
  'defaultNamespace',
  'drivers',
  'namespaces',
  'otherNamespaces',
  'auth',
  'authorize',
  'close',
]);
const SERVER_KEYS = new Set([
  'host',
  'port',
  'cors',
  'maxBodyBytes',
  'maxPayloads',
  'maxMetadataEntries',
  'basePath',
  'tls',
  'readOnly',
  'audit',
  'headersTimeoutMs',
  'requestTimeoutMs',
  'idleTimeoutMs',
  'maxConcurrentRequests',
  'maxConcurrentDownloadBytes',
]);
const NAMESPACE_KEYS = new Set([
  'drivers',
  'driverSelector',
  'payloadSizeThreshold',
  'payloadCodecs',
  'outerCodecs',
  'inlineReferencesBelow',
]);
const SPEC_KEYS = new Set(['module', 'export', 'options', 'factory', 'args']);

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isDriver(value: unknown): value is StorageDriver {
  return (
    isRecord(value) &&
    typeof (value as { store?: unknown }).store === 'function' &&
    typeof (value as { retrieve?: unknown }).retrieve === 'function'
  );
}

function checkKeys(obj: Record<string, unknown>, allowed: Set<string>, where: string): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.has(key))
      throw new ConfigError(`${where}.${key}: unknown field (allowed: ${[...allowed].join(', ')})`);
  }
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * `JSON.parse`'s message without the excerpt of the file V8 quotes (`Unexpected token ']',
 * ..."pw@db:5432/x",]}" is not valid JSON`, with `...` before, after or on both sides of the
 * excerpt): config files hold connection strings and keys, and the message goes to stderr and
 * logs. A message of another shape that still quotes the file is replaced as a whole.
 */
function jsonErrorText(error: unknown): string {
  const message = errorText(error);
  const token = /^(Unexpected token .+?), (?:\.\.\.)?"[\s\S]*"(?:\.\.\.)? is not valid JSON$/.exec(message);
  if (token) return token[1] as string;
  return message.includes('"') ? 'syntax error' : message;
}

async function readConfigModule(file: string): Promise<unknown> {
  const ext = path.extname(file).toLowerCase();
  if (ext === '.json') {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      throw new ConfigError(`cannot read ${file}: ${errorText(error)}`);
    }
    try {
      return JSON.parse(text);
    } catch (error) {
      throw new ConfigError(`${file} is not valid JSON: ${jsonErrorText(error)}`);
    }
  }
  if (ext !== '.js' && ext !== '.cjs' && ext !== '.mjs') {
    throw new ConfigError(
      `${file}: unsupported config file type ${JSON.stringify(ext)} (use .json, .js, .cjs or .mjs)`,
    );
  }
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (error) {
    throw new ConfigError(`cannot load ${file}: ${errorText(error)}`, { cause: error });
  }
  let exported: unknown = mod.default ?? mod;
  if (typeof exported === 'function') {
    try {
      exported = await (exported as () => unknown)();
    } catch (error) {
      throw new ConfigError(`${file}: the exported config function failed: ${errorText(error)}`, { cause: error });
    }
  }
  return exported;
}

async function buildDriver(spec: unknown, where: string, configFile: string): Promise<StorageDriver> {
  if (isDriver(spec)) return spec;
  if (!isRecord(spec))
    throw new ConfigError(`${where}: must be {"module", "export"?, "options"?} or a driver instance`);
  checkKeys(spec, SPEC_KEYS, where);
  if (typeof spec.module !== 'string' || spec.module === '')
    throw new ConfigError(`${where}.module: must be a non-empty string`);
  if (spec.export !== undefined && typeof spec.export !== 'string')
    throw new ConfigError(`${where}.export: must be a string`);
  if (spec.options !== undefined && !isRecord(spec.options))
    throw new ConfigError(`${where}.options: must be an object`);
  if (spec.factory !== undefined && (typeof spec.factory !== 'string' || spec.factory === ''))
    throw new ConfigError(`${where}.factory: must be the name of a static function of the export`);
  if (spec.args !== undefined && !Array.isArray(spec.args))
    throw new ConfigError(`${where}.args: must be an array of arguments for the factory`);
  if (spec.factory === undefined && spec.args !== undefined)
    throw new ConfigError(`${where}.args: only allowed with "factory" (use "options" for the constructor)`);
  if (spec.factory !== undefined && spec.options !== undefined)
    throw new ConfigError(`${where}.options: not allowed with "factory" (pass the factory's arguments in "args")`);
  const dir = path.dirname(configFile);
  let resolved: string;
  try {
    resolved = createRequire(configFile).resolve(spec.module, { paths: [dir, __dirname] });
  } catch {
    if (spec.module.startsWith('.') || path.isAbsolute(spec.module)) resolved = path.resolve(dir, spec.module);
    else
      throw new ConfigError(
        `${where}.module: cannot find module ${JSON.stringify(spec.module)} (install it next to the config file)`,
      );
  }
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(resolved).href)) as Record<string, unknown>;
  } catch (error) {
    throw new ConfigError(`${where}.module: cannot load ${JSON.stringify(spec.module)}: ${errorText(error)}`);
  }
  const exportName = spec.export ?? 'default';
  const fromDefault = isRecord(mod.default) ? (mod.default as Record<string, unknown>)[exportName] : undefined;
  const Ctor = mod[exportName] ?? fromDefault;
  if (typeof Ctor !== 'function') {
    const names = Object.keys(mod).filter((k) => typeof mod[k] === 'function');
    throw new ConfigError(
      `${where}.export: ${JSON.stringify(spec.module)} has no exported class ${JSON.stringify(exportName)} (exported functions: ${names.join(', ') || 'none'})`,
    );
  }
  let driver: unknown;
  if (typeof spec.factory === 'string') {
    const factory = staticFunction(Ctor as (...args: unknown[]) => unknown, spec.factory);
    const call = `${exportName}.${spec.factory}(...args)`;
    if (factory === undefined) {
      throw new ConfigError(
        `${where}.factory: ${exportName} has no static function ${JSON.stringify(spec.factory)} (static functions: ${staticFunctionNames(Ctor as (...args: unknown[]) => unknown).join(', ') || 'none'})`,
      );
    }
    try {
      driver = await factory.apply(Ctor, (spec.args as unknown[] | undefined) ?? []);
    } catch (error) {
      throw new ConfigError(`${where}: ${call} failed: ${errorText(error)}`, { cause: error });
    }
    if (!isDriver(driver)) {
      await closeDriver(driver).catch(() => {});
      throw new ConfigError(`${where}: ${call} did not return a storage driver (no store/retrieve)`);
    }
    return driver;
  }
  try {
    driver = new (Ctor as new (options: Record<string, unknown>) => unknown)(
      (spec.options as Record<string, unknown>) ?? {},
    );
  } catch (error) {
    throw new ConfigError(`${where}: new ${exportName}(options) failed: ${errorText(error)}`, { cause: error });
  }
  if (!isDriver(driver))
    throw new ConfigError(`${where}: ${exportName} did not build a storage driver (no store/retrieve)`);
  return driver;
}

/**
 * A static function of a class (own or inherited from a parent class), never one of
 * `Function.prototype` (`call`, `apply`, `bind`, ...) or `constructor` / `prototype`.
 */
function staticFunction(
  target: (...args: unknown[]) => unknown,
  name: string,
): ((...args: unknown[]) => unknown) | undefined {
  if (name === 'constructor' || name === 'prototype') return undefined;
  for (let o: object | null = target; o !== null && o !== Function.prototype; o = Object.getPrototypeOf(o)) {
    const descriptor = Object.getOwnPropertyDescriptor(o, name);
    if (descriptor !== undefined) return typeof descriptor.value === 'function' ? descriptor.value : undefined;
  }
  return undefined;
}

function staticFunctionNames(target: (...args: unknown[]) => unknown): string[] {
  const names = new Set<string>();
  for (let o: object | null = target; o !== null && o !== Function.prototype; o = Object.getPrototypeOf(o)) {
    for (const name of Object.getOwnPropertyNames(o)) if (staticFunction(target, name) !== undefined) names.add(name);
  }
  return [...names];
}

/** Calls `driver.close()` when it has one. */
async function closeDriver(driver: unknown): Promise<void> {
  const close = (driver as { close?: unknown } | null)?.close;
  if (typeof close === 'function') await (close as () => unknown).call(driver);
}

function buildNamespace(spec: unknown, where: string, drivers: Map<string, StorageDriver>): CodecNamespaceConfig {
  if (!isRecord(spec)) throw new ConfigError(`${where}: must be an object {"drivers": [...]}`);
  checkKeys(spec, NAMESPACE_KEYS, where);
  if (!Array.isArray(spec.drivers) || spec.drivers.length === 0) {
    throw new ConfigError(`${where}.drivers: must list at least one driver id`);
  }
  const list = spec.drivers.map((entry: unknown, i: number): StorageDriver => {
    if (isDriver(entry)) return entry;
    if (typeof entry !== 'string') throw new ConfigError(`${where}.drivers[${i}]: must be a driver id`);
    const driver = drivers.get(entry);
    if (driver === undefined) {
      throw new ConfigError(
        `${where}.drivers[${i}]: unknown driver id ${JSON.stringify(entry)} (known: ${[...drivers.keys()].join(', ') || 'none'})`,
      );
    }
    return driver;
  });
  const names = new Set<string>();
  for (const d of list) {
    if (names.has(d.name))
      throw new ConfigError(
        `${where}.drivers: two drivers are named ${JSON.stringify(d.name)}; give them distinct "name" options`,
      );
    names.add(d.name);
  }
  if (spec.driverSelector !== undefined && typeof spec.driverSelector !== 'function') {
    throw new ConfigError(`${where}.driverSelector: must be a function (JS config only)`);
  }
  const threshold = spec.payloadSizeThreshold;
  if (threshold !== undefined && (typeof threshold !== 'number' || !Number.isFinite(threshold) || threshold < 0)) {
    throw new ConfigError(`${where}.payloadSizeThreshold: must be a non-negative number of bytes`);
  }
  for (const key of ['payloadCodecs', 'outerCodecs'] as const) {
    const codecs = spec[key];
    if (codecs === undefined) continue;
    if (
      !Array.isArray(codecs) ||
      !codecs.every((c) => isRecord(c) && typeof c.encode === 'function' && typeof c.decode === 'function')
    ) {
      throw new ConfigError(`${where}.${key}: must be an array of codecs with encode() and decode() (JS config only)`);
    }
  }
  const first = list[0] as StorageDriver;
  const config: CodecNamespaceConfig = {
    storage: {
      drivers: list,
      driverSelector: (spec.driverSelector as StorageDriverSelector | undefined) ?? (() => first),
      payloadSizeThreshold: threshold as number | undefined,
    },
  };
  if (spec.payloadCodecs !== undefined) config.payloadCodecs = spec.payloadCodecs as PayloadCodec[];
  if (spec.outerCodecs !== undefined) config.outerCodecs = spec.outerCodecs as PayloadCodec[];
  const inline = spec.inlineReferencesBelow;
  if (inline !== undefined) {
    if (typeof inline !== 'number' || !Number.isFinite(inline) || inline < 0) {
      throw new ConfigError(`${where}.inlineReferencesBelow: must be a non-negative number of bytes`);
    }
    config.inlineReferencesBelow = inline;
  }
  return config;
}

/**
 * Loads and validates a config file (`.json`, `.js`, `.cjs`, `.mjs`) and builds its drivers.
 *
 * @throws ConfigError with the path of the offending field for anything invalid: unreadable
 *   file, bad JSON, unknown fields, unknown driver ids, a module or export that cannot be
 *   found, a driver constructor that throws.
 */
export async function loadConfig(configPath: string): Promise<LoadedConfig> {
  const file = path.resolve(configPath);
  const raw = await readConfigModule(file);
  if (!isRecord(raw)) throw new ConfigError(`${file}: the config must be an object`);
  checkKeys(raw, TOP_KEYS, 'config');
  if (!isRecord(raw.drivers) || Object.keys(raw.drivers).length === 0) {
    throw new ConfigError(
      'config.drivers: must be an object with at least one driver, e.g. {"fs": {"module": "@x/storage-driver-fs", "export": "FsStorageDriver", "options": {"root": "/var/lib/payloads"}}}',
    );
  }
  const drivers = new Map<string, StorageDriver>();
  // Drivers built from a spec belong to the CLI, which closes them; instances belong to the JS config.
  const built = new Map<string, StorageDriver>();
  const closeBuilt = async (): Promise<void> => {
    const failures: string[] = [];
    for (const [id, driver] of built) {
      await closeDriver(driver).catch((error: unknown) => failures.push(`${id}: ${errorText(error)}`));
    }
    built.clear();
    if (failures.length > 0) throw new Error(`closing drivers failed: ${failures.join('; ')}`);
  };
  try {
    return await buildConfig(raw, file, drivers, built, closeBuilt);
  } catch (error) {
    await closeBuilt().catch(() => {});
    throw error;
  }
}

async function buildConfig(
  raw: Record<string, unknown>,
  file: string,
  drivers: Map<string, StorageDriver>,
  built: Map<string, StorageDriver>,
  closeBuilt: () => Promise<void>,
): Promise<LoadedConfig> {
  for (const [id, spec] of Object.entries(raw.drivers as Record<string, unknown>)) {
    const driver = await buildDriver(spec, `config.drivers.${id}`, file);
    if (driver !== spec) built.set(id, driver);
    drivers.set(id, driver);
  }

  const server = raw.server ?? {};
  if (!isRecord(server)) throw new ConfigError('config.server: must be an object');
  checkKeys(server, SERVER_KEYS, 'config.server');
  if (server.host !== undefined && typeof server.host !== 'string')
    throw new ConfigError('config.server.host: must be a string');
  if (
    server.port !== undefined &&
    (!Number.isInteger(server.port) || (server.port as number) < 0 || (server.port as number) > 65535)
  ) {
    throw new ConfigError('config.server.port: must be an integer 0-65535');
  }
  if (
    server.maxBodyBytes !== undefined &&
    (!Number.isSafeInteger(server.maxBodyBytes) || (server.maxBodyBytes as number) < 1)
  ) {
    throw new ConfigError('config.server.maxBodyBytes: must be a positive integer');
  }
  if (
    server.maxPayloads !== undefined &&
    (!Number.isSafeInteger(server.maxPayloads) || (server.maxPayloads as number) < 1)
  ) {
    throw new ConfigError('config.server.maxPayloads: must be a positive integer');
  }
  if (
    server.maxMetadataEntries !== undefined &&
    (!Number.isSafeInteger(server.maxMetadataEntries) || (server.maxMetadataEntries as number) < 0)
  ) {
    throw new ConfigError('config.server.maxMetadataEntries: must be a non-negative integer');
  }
  for (const key of [
    'headersTimeoutMs',
    'requestTimeoutMs',
    'idleTimeoutMs',
    'maxConcurrentRequests',
    'maxConcurrentDownloadBytes',
  ] as const) {
    const value = server[key];
    if (value !== undefined && (!Number.isSafeInteger(value) || (value as number) < 1)) {
      throw new ConfigError(`config.server.${key}: must be a positive integer`);
    }
  }
  for (const key of ['readOnly', 'audit'] as const) {
    if (server[key] !== undefined && typeof server[key] !== 'boolean') {
      throw new ConfigError(`config.server.${key}: must be true or false`);
    }
  }
  const tls = parseTlsSpec(server.tls);
  const auth = parseAuthSpec(raw.auth);
  if (auth?.mode === 'none' && raw.authorize !== undefined) {
    throw new ConfigError('config.auth.mode: "none" cannot be combined with an authorize hook; remove one of them');
  }
  if (server.basePath !== undefined && (typeof server.basePath !== 'string' || !server.basePath.startsWith('/'))) {
    throw new ConfigError('config.server.basePath: must be a path starting with "/"');
  }
  const cors = server.cors;
  if (cors !== undefined) {
    if (!isRecord(cors)) throw new ConfigError('config.server.cors: must be an object {"origins": [...]}');
    checkKeys(cors, new Set(['origins', 'allowCredentials', 'maxAgeSeconds']), 'config.server.cors');
    const origins = cors.origins;
    if (
      origins !== '*' &&
      !(Array.isArray(origins) && origins.every((o) => typeof o === 'string' && /^https?:\/\/[^/]+$/.test(o)))
    ) {
      throw new ConfigError(
        'config.server.cors.origins: must be "*" or a list of origins such as "http://localhost:8233" (scheme://host[:port], no path)',
      );
    }
    if (cors.allowCredentials !== undefined && typeof cors.allowCredentials !== 'boolean') {
      throw new ConfigError('config.server.cors.allowCredentials: must be a boolean');
    }
    if (cors.allowCredentials === true && origins === '*') {
      throw new ConfigError('config.server.cors.allowCredentials: not allowed with origins "*"; list the origins');
    }
    if (
      cors.maxAgeSeconds !== undefined &&
      (!Number.isSafeInteger(cors.maxAgeSeconds) || (cors.maxAgeSeconds as number) < 0)
    ) {
      throw new ConfigError('config.server.cors.maxAgeSeconds: must be a non-negative integer');
    }
  }
  if (raw.defaultNamespace !== undefined && (typeof raw.defaultNamespace !== 'string' || raw.defaultNamespace === '')) {
    throw new ConfigError('config.defaultNamespace: must be a non-empty string');
  }
  if (raw.authorize !== undefined && typeof raw.authorize !== 'function')
    throw new ConfigError('config.authorize: must be a function (JS config only)');
  if (raw.close !== undefined && typeof raw.close !== 'function')
    throw new ConfigError('config.close: must be a function (JS config only)');

  const options: StartCodecServerOptions = {
    host: server.host as string | undefined,
    port: server.port as number | undefined,
    maxBodyBytes: server.maxBodyBytes as number | undefined,
    maxPayloads: server.maxPayloads as number | undefined,
    maxMetadataEntries: server.maxMetadataEntries as number | undefined,
    basePath: server.basePath as string | undefined,
    cors: cors as CodecServerCorsOptions | undefined,
    defaultNamespace: raw.defaultNamespace as string | undefined,
    authorize: raw.authorize as CodecServerAuthorize | undefined,
    readOnly: server.readOnly as boolean | undefined,
    headersTimeoutMs: server.headersTimeoutMs as number | undefined,
    requestTimeoutMs: server.requestTimeoutMs as number | undefined,
    idleTimeoutMs: server.idleTimeoutMs as number | undefined,
    maxConcurrentRequests: server.maxConcurrentRequests as number | undefined,
    maxConcurrentDownloadBytes: server.maxConcurrentDownloadBytes as number | undefined,
  };
  if (raw.namespaces !== undefined) {
    if (!isRecord(raw.namespaces)) throw new ConfigError('config.namespaces: must be an object keyed by namespace');
    options.namespaces = {};
    for (const [ns, spec] of Object.entries(raw.namespaces)) {
      options.namespaces[ns] = buildNamespace(spec, `config.namespaces.${ns}`, drivers);
    }
  }
  if (raw.otherNamespaces !== undefined) {
    options.otherNamespaces = buildNamespace(raw.otherNamespaces, 'config.otherNamespaces', drivers);
  }
  if (raw.namespaces === undefined && raw.otherNamespaces === undefined) {
    options.otherNamespaces = buildNamespace({ drivers: [...drivers.keys()] }, 'config.drivers', drivers);
  }
  const closeHook = raw.close as (() => void | Promise<void>) | undefined;
  const close = async (): Promise<void> => {
    try {
      await closeBuilt();
    } finally {
      await closeHook?.();
    }
  };
  return { file, drivers, server: options, auth, tls, audit: server.audit === true, close };
}
