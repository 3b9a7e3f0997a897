/**
 * `@x/storage-cli`: `x-storage`, the operator CLI for Temporal External Storage (`serve` the
 * codec server of `@x/storage-codec-server` — secure by default, with token or JWT auth, TLS and
 * abuse limits from the config file —, `get` a payload by reference, `sweep` expired payloads),
 * and the pieces it is made of for programs that drive it: {@link runCli} and the config file
 * loader.
 *
 * @packageDocumentation
 */
export type { AuthSpec, JwtSpec, TlsSpec, TokenSpec } from './auth-config';
export { runCli } from './cli';
export { CliExitCode, type CliIo, parseDuration } from './command';
export { SERVE_MAX_CONCURRENT_DOWNLOAD_BYTES, SERVE_MAX_CONCURRENT_REQUESTS } from './commands/serve';
export {
  ConfigError,
  type DriverSpec,
  type LoadedConfig,
  loadConfig,
  type NamespaceSpec,
  type XStorageConfigFile,
} from './config';
export {
  type CollectGarbageOptions,
  collectGarbage,
  GC_DEFAULT_GRACE_MS,
  GC_MIN_GRACE_MS,
  type GcProgress,
  type GcReport,
} from './gc/collect';
export type { GcDriver, GcNamespace, MarkProgress, NamespaceMark } from './gc/mark';
export type { GcConnection } from './gc/rpc';
export type { DriverSweep, NamespaceSweep, ObjectCount, SweepProgress } from './gc/sweep';
