/**
 * `x-storage gc`: reference-aware garbage collection (DESIGN §8). Marks every External Storage
 * reference the Temporal cluster can still need, then sweeps each configured driver's objects
 * that nothing references and that were last referenced before the grace period. Dry run by
 * default.
 *
 * @module
 */
import { Connection } from '@temporalio/client';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import type { CodecNamespaceConfig } from '@x/storage-codec-server';
import type { StorageDriver } from '@x/storage-driver-core';
import { Presets, SingleBar } from 'cli-progress';
import {
  CliExitCode,
  type CliIo,
  type Command,
  type CommandArgs,
  parseDuration,
  UsageError,
  withConfig,
  write,
} from '../command';
import type { LoadedConfig } from '../config';
import { collectGarbage, GC_DEFAULT_GRACE_MS, GC_MIN_GRACE_MS, type GcProgress } from '../gc/collect';
import { type GcDriver, type GcNamespace, MarkError } from '../gc/mark';
import { renderGcReport } from '../gc/report';
import { formatBytes } from './sweep';

const HELP = `Usage: x-storage gc --config <file> --namespace <ns>... [--delete] [--grace <duration>]
                    [--address <host:port>] [--profile <name>] [--driver <id>]... [--json]

Reference-aware garbage collection. Asks the Temporal cluster which offloaded payloads it can still
need (mark), then lists each configured driver's objects and selects the orphans: objects of a
scanned namespace that no reference marks and that were last referenced before the grace period
(sweep). A dry run by default: it reports the orphans and deletes nothing.

  x-storage gc --config x-storage.json --namespace default              # dry run
  x-storage gc --config x-storage.json --namespace default --delete     # delete the orphans

Mark (raw frontend RPCs, payloads never retrieved): the history and description of every open
execution (running, paused, …), the history of closed executions still within retention that hold
offloaded payloads (TemporalExternalPayloadCount > 0; --all-closed reads every closed one), every
schedule's action, and standalone activities. References are matched to the drivers the config
gives the namespace, by driver name.

Safety rules:
  - dry run unless --delete; deletes are conditional: an object stored again meanwhile is kept
  - the grace period counts from the start of the mark phase; at least 1 hour (default 7d)
  - any error of the mark phase aborts the run before anything is deleted
  - only objects whose key is under a scanned namespace; other namespaces and keys without a
    namespace are reported, never deleted (unless --all-namespaces-scanned)
  - a namespace with history or visibility archival enabled is refused (exit 2) unless
    --allow-archival
  - references gc cannot resolve (a driver name the config lacks for the namespace, a reference
    that cannot be read, a claim a driver rejects) stop the sweep of that namespace or driver
    unless --ignore-unresolved
  - objects whose last-referenced time the driver cannot tell are never deleted

What no scan can see (covered only by the grace period): Nexus operations in flight to other
namespaces, archived or exported histories, async activity completions by task token, query and
update arguments in flight, executions in namespaces you did not scan, and workflow histories in
other clusters (replication). Keep the grace period longer than any of those lasts.

Options:
  --config <file>              Config file naming the drivers (and the drivers of each namespace). Required.
  --namespace <ns>             A namespace to scan (repeatable). Required.
  --delete                     Delete the orphans (default: dry run)
  --grace <duration>           Keep unreferenced objects last referenced more recently than this before
                               the mark started: ms, or a number with s, m, h, d. Default: 7d; minimum 1h.
  --driver <id>                Sweep only this driver id (repeatable; default: every driver)
  --address <host:port>        Temporal frontend. Default: the profile's / TEMPORAL_ADDRESS, else localhost:7233
  --profile <name>             Profile of the Temporal client config file (TEMPORAL_CONFIG_FILE, default
                               ~/.config/temporalio/temporal.toml); TEMPORAL_API_KEY, TEMPORAL_TLS_* and
                               TEMPORAL_GRPC_META_* apply as in the temporal CLI
  --concurrency <n>            Executions read at once (default 8)
  --rps <n>                    Most RPCs per second to the frontend (default 100)
  --all-closed                 Read every closed execution, not only those counting offloaded payloads
  --all-namespaces-scanned     Every namespace using these stores was scanned: other namespaces' and
                               namespace-less objects may be deleted too
  --allow-archival             Scan namespaces with archival enabled (their archives are not read)
  --ignore-unresolved          Sweep despite references gc cannot resolve
  --unsafe-short-grace         Allow a grace period under 1 hour (tests only: live payloads can be lost)
  --list-orphans               Print every orphan (driver, namespace, key, size, last referenced)
  --json                       Print the whole report as JSON instead of the summary
  -h, --help                   Show this help

Exit status: 0 done, 1 the mark phase or a driver failed, 2 bad usage or refused.
`;

/** A progress line on `stderr` when it is a terminal; a no-op otherwise. */
function progressLine(io: CliIo): { update(p: GcProgress): void; stop(): void } {
  const stream = io.stderr as NodeJS.WriteStream;
  if (stream.isTTY !== true) return { update() {}, stop() {} };
  const bar = new SingleBar(
    { stream, format: '{text}', hideCursor: true, clearOnComplete: true, fps: 10 },
    Presets.shades_classic,
  );
  bar.start(1, 0, { text: 'gc: starting' });
  return {
    update: (p) => {
      const text =
        p.phase === 'mark'
          ? `mark ${p.namespace} | executions, schedules, activities ${p.items} | events ${p.historyEvents} | references ${p.references}`
          : `sweep ${p.driverId} | listed ${p.listed} | orphans ${p.orphans} | deleted ${p.deleted} (${formatBytes(p.freedBytes)})`;
      bar.update(0, { text });
    },
    stop: () => bar.stop(),
  };
}

/** The namespaces to scan, each with the drivers the config gives it (ids from `drivers`). */
function namespacesFromConfig(config: LoadedConfig, names: readonly string[]): GcNamespace[] {
  const ids = new Map<StorageDriver, string>();
  for (const [id, driver] of config.drivers) ids.set(driver, id);
  return names.map((name) => {
    const ns: CodecNamespaceConfig | undefined = config.server.namespaces?.[name] ?? config.server.otherNamespaces;
    const drivers: GcDriver[] = (ns?.storage?.drivers ?? []).map((driver) => ({
      // A JS config may name an instance that is not in "drivers": marked under its name, never swept.
      id: ids.get(driver) ?? `(instance ${driver.name})`,
      driver,
    }));
    return { name, drivers, ...(ns?.outerCodecs === undefined ? {} : { outerCodecs: ns.outerCodecs }) };
  });
}

async function connect(args: CommandArgs): Promise<Connection> {
  const profile = args.string('profile');
  let loaded: ReturnType<typeof loadClientConnectConfig>;
  try {
    loaded = loadClientConnectConfig(profile === undefined ? {} : { profile });
  } catch (error) {
    throw new UsageError(`cannot load the Temporal client config: ${(error as Error).message}`);
  }
  const { address: profileAddress, tls, apiKey, metadata } = loaded.connectionOptions;
  const address = args.string('address') ?? profileAddress ?? 'localhost:7233';
  return Connection.connect({
    address,
    ...(tls === undefined ? {} : { tls }),
    ...(apiKey === undefined ? {} : { apiKey }),
    ...(metadata === undefined ? {} : { metadata }),
    connectTimeout: 10_000,
  });
}

/** `x-storage gc`. */
export const gc: Command = {
  name: 'gc',
  summary: 'Delete payloads no Temporal execution references any more (mark and sweep; dry run by default)',
  help: HELP,
  options: {
    config: { type: 'string' },
    namespace: { type: 'string', repeatable: true },
    delete: { type: 'boolean' },
    grace: { type: 'string' },
    driver: { type: 'string', repeatable: true },
    address: { type: 'string' },
    profile: { type: 'string' },
    concurrency: { type: 'string' },
    rps: { type: 'string' },
    'all-closed': { type: 'boolean' },
    'all-namespaces-scanned': { type: 'boolean' },
    'allow-archival': { type: 'boolean' },
    'ignore-unresolved': { type: 'boolean' },
    'unsafe-short-grace': { type: 'boolean' },
    'list-orphans': { type: 'boolean' },
    json: { type: 'boolean' },
  },
  async run(args, io) {
    args.noPositionals('gc');
    const namespaces = [...new Set(args.strings('namespace'))];
    if (namespaces.length === 0) throw new UsageError('--namespace <ns> is required (repeat it for several)');
    if (namespaces.includes('')) throw new UsageError('--namespace must not be empty');
    const graceText = args.string('grace');
    const graceMs = graceText === undefined ? GC_DEFAULT_GRACE_MS : parseDuration(graceText);
    const unsafeShortGrace = args.flag('unsafe-short-grace');
    if (graceMs < GC_MIN_GRACE_MS && !unsafeShortGrace) {
      throw new UsageError(
        `--grace ${graceText} is under the 1h minimum: payloads of executions gc cannot see (an update or Nexus call in flight, a workflow just started) would be deleted. --unsafe-short-grace allows it, for tests only`,
      );
    }
    const concurrency = args.integer('concurrency', 1) ?? 8;
    const rps = args.integer('rps', 1) ?? 100;
    const json = args.flag('json');
    const listOrphans = args.flag('list-orphans');
    return withConfig(args, async (config) => {
      const requested = args.strings('driver');
      for (const id of requested) {
        if (!config.drivers.has(id)) {
          throw new UsageError(
            `unknown driver id ${JSON.stringify(id)} (known: ${[...config.drivers.keys()].join(', ')})`,
          );
        }
      }
      const ids = requested.length > 0 ? requested : [...config.drivers.keys()];
      const drivers = ids.map((id) => ({ id, driver: config.drivers.get(id) as StorageDriver }));
      const controller = new AbortController();
      const onSignal = (): void => controller.abort(new Error('interrupted'));
      process.once('SIGINT', onSignal);
      const connection = await connect(args);
      const progress = progressLine(io);
      const orphans: OrphanEntry[] = [];
      try {
        const report = await collectGarbage({
          connection,
          namespaces: namespacesFromConfig(config, namespaces),
          drivers,
          graceMs,
          allowShortGrace: unsafeShortGrace,
          delete: args.flag('delete'),
          allowArchival: args.flag('allow-archival'),
          allClosed: args.flag('all-closed'),
          allNamespacesScanned: args.flag('all-namespaces-scanned'),
          ignoreUnresolved: args.flag('ignore-unresolved'),
          concurrency,
          ratePerSecond: rps,
          signal: controller.signal,
          onProgress: progress.update,
          onOrphan: listOrphans
            ? (driver, namespace, o) =>
                orphans.push({
                  driver,
                  namespace,
                  key: o.key,
                  size: o.size,
                  lastReferenced: o.lastReferenced?.toISOString() ?? null,
                })
            : undefined,
        });
        progress.stop();
        if (json) {
          const out = listOrphans ? { ...report, orphans } : report;
          await write(io.stdout, `${JSON.stringify(out, null, 2)}\n`);
        } else {
          const lines = orphans.map(
            (o) => `orphan ${o.driver} ${o.namespace} ${o.key} ${o.size} ${o.lastReferenced ?? 'unknown'}\n`,
          );
          if (lines.length > 0) await write(io.stdout, `${lines.join('')}\n`);
          await write(io.stdout, renderGcReport(report));
        }
        return report.drivers.some((d) => d.status === 'failed') ? CliExitCode.FAILED : CliExitCode.OK;
      } catch (error) {
        progress.stop();
        if (error instanceof MarkError) {
          await write(io.stderr, `x-storage gc: mark phase failed, nothing was deleted: ${error.message}\n`);
          return CliExitCode.FAILED;
        }
        throw error;
      } finally {
        process.off('SIGINT', onSignal);
        await connection.close().catch(() => {});
      }
    });
  },
};

/** An orphan as `--list-orphans` prints it. */
interface OrphanEntry {
  driver: string;
  namespace: string;
  key: string;
  size: number;
  lastReferenced: string | null;
}
