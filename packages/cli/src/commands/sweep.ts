/**
 * `x-storage sweep`: `deleteExpired` of every configured driver that declares it in its
 * `capabilities` (DESIGN §8), with progress on a terminal and a summary or JSON at the end.
 *
 * @module
 */
import {
  type DeleteExpiredOptions,
  type DeleteExpiredProgress,
  type DeleteExpiredResult,
  lifecycleCapabilities,
  type StorageDriver,
  type StorageDriverLifecycle,
} from '@x/storage-driver-core';
import { Presets, SingleBar } from 'cli-progress';
import { CliExitCode, type CliIo, type Command, parseDuration, UsageError, withConfig, write } from '../command';

const HELP = `Usage: x-storage sweep --config <file> [--driver <id>]... [--older-than <duration>] [--dry-run]
                       [--limit <n>] [--prefix <key prefix>] [--json]

Removes the payloads that no store has referenced for --older-than (default: each driver's ttl)
from every configured driver that can (capabilities.deleteExpired), and prints what it removed.
Each driver deletes conditionally: a payload a worker stores again while the sweep runs is kept.
Drivers without deleteExpired are reported as skipped, with the reason (e.g. their backend
expires payloads itself). On a terminal, progress is shown on stderr.

Options:
  --config <file>          Config file naming the drivers. Required.
  --driver <id>            Only this driver id (repeatable; default: all)
  --older-than <duration>  Remove payloads last referenced longer ago than this: milliseconds, or
                           a number with ms, s, m, h or d (e.g. 30d). Default: the driver's ttl.
  --dry-run                Report what would be removed; remove nothing
  --limit <n>              Remove at most n payloads per driver (then "more" is reported)
  --prefix <key prefix>    Only storage keys starting with this, e.g. v0/ns/payments/
  --json                   Print one JSON object per driver (an array) instead of the summary
  -h, --help               Show this help

Exit status: 0 when every driver succeeded, 1 when one failed or reported errors, 2 on bad usage.
`;

/** One driver's outcome, as `--json` prints it. */
interface SweepOutcome {
  id: string;
  driverName: string;
  driverType: string;
  status: 'done' | 'skipped' | 'failed';
  dryRun: boolean;
  result?: DeleteExpiredResult;
  reason?: string;
  error?: { code?: string; message: string };
}

/** `1536` → `1.5 KiB` (bytes below 1 KiB as `N B`). */
export function formatBytes(bytes: number): string {
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

/** Why a driver cannot be swept, from its capabilities. */
function skipReason(driver: StorageDriver): string | undefined {
  const caps = lifecycleCapabilities(driver);
  if (caps.deleteExpired) return undefined;
  if (caps.expiry === 'native') return 'no deleteExpired; the backend expires payloads itself';
  if (caps.list && caps.lastReferenced === 'none')
    return 'no deleteExpired: the driver cannot tell when a payload was last referenced';
  return 'the driver declares no deleteExpired capability';
}

/**
 * A progress line on `stderr` when it is a terminal (cli-progress, no bar: the total is unknown
 * until the listing ends); a no-op otherwise.
 */
function progressLine(io: CliIo, label: string): { update(p: DeleteExpiredProgress): void; stop(): void } {
  const stream = io.stderr as NodeJS.WriteStream;
  if (stream.isTTY !== true) return { update() {}, stop() {} };
  const bar = new SingleBar(
    {
      stream,
      format: `${label} | candidates {scanned} | removed {removed} ({bytes})`,
      hideCursor: true,
      clearOnComplete: true,
      fps: 10,
    },
    Presets.shades_classic,
  );
  bar.start(1, 0, { scanned: 0, removed: 0, bytes: '0 B' });
  return {
    update: (p) => bar.update(0, { scanned: p.scanned, removed: p.removed, bytes: formatBytes(p.removedBytes) }),
    stop: () => bar.stop(),
  };
}

/** `x-storage sweep`. */
export const sweep: Command = {
  name: 'sweep',
  summary: 'Remove payloads not referenced for a while (deleteExpired of every driver)',
  help: HELP,
  options: {
    config: { type: 'string' },
    driver: { type: 'string', repeatable: true },
    'older-than': { type: 'string' },
    limit: { type: 'string' },
    prefix: { type: 'string' },
    'dry-run': { type: 'boolean' },
    json: { type: 'boolean' },
  },
  async run(args, io) {
    args.noPositionals('sweep');
    const olderThanText = args.string('older-than');
    const olderThan = olderThanText === undefined ? undefined : parseDuration(olderThanText);
    const limit = args.integer('limit', 1);
    const prefix = args.string('prefix');
    const dryRun = args.flag('dry-run');
    const json = args.flag('json');
    return withConfig(args, async (config) => {
      const requested = args.strings('driver');
      const ids = requested.length > 0 ? requested : [...config.drivers.keys()];
      for (const id of ids) {
        if (!config.drivers.has(id)) {
          throw new UsageError(
            `unknown driver id ${JSON.stringify(id)} (known: ${[...config.drivers.keys()].join(', ')})`,
          );
        }
      }
      const controller = new AbortController();
      const onSignal = (): void => controller.abort(new Error('interrupted'));
      process.once('SIGINT', onSignal);
      const outcomes: SweepOutcome[] = [];
      try {
        for (const id of ids) {
          const driver = config.drivers.get(id) as StorageDriver & Partial<StorageDriverLifecycle>;
          const base = { id, driverName: driver.name, driverType: driver.type, dryRun };
          const reason = skipReason(driver);
          if (reason !== undefined || typeof driver.deleteExpired !== 'function') {
            outcomes.push({ ...base, status: 'skipped', reason: reason ?? 'no deleteExpired()' });
          } else {
            const progress = progressLine(io, `${id}${dryRun ? ' (dry run)' : ''}`);
            const options: DeleteExpiredOptions = { dryRun, signal: controller.signal, onProgress: progress.update };
            if (olderThan !== undefined) options.olderThan = olderThan;
            if (limit !== undefined) options.limit = limit;
            if (prefix !== undefined) options.prefix = prefix;
            try {
              const result = await driver.deleteExpired(options);
              outcomes.push({ ...base, status: result.errors.length > 0 ? 'failed' : 'done', result });
            } catch (e) {
              const err = e as { code?: unknown; message?: unknown };
              outcomes.push({
                ...base,
                status: 'failed',
                error: {
                  ...(typeof err.code === 'string' ? { code: err.code } : {}),
                  message: String(err.message ?? e),
                },
              });
            } finally {
              progress.stop();
            }
          }
          if (!json) await write(io.stdout, describe(outcomes.at(-1) as SweepOutcome));
          if (controller.signal.aborted) break;
        }
      } finally {
        process.off('SIGINT', onSignal);
      }
      if (json) await write(io.stdout, `${JSON.stringify(outcomes, null, 2)}\n`);
      return outcomes.some((o) => o.status === 'failed') ? CliExitCode.FAILED : CliExitCode.OK;
    });
  },
};

/** The summary lines of one driver's outcome. */
function describe(o: SweepOutcome): string {
  const head = `${o.id} (${o.driverName}, ${o.driverType})`;
  if (o.status === 'skipped') return `${head}: skipped: ${o.reason}\n`;
  if (o.error !== undefined) return `${head}: failed: ${o.error.code ? `${o.error.code} ` : ''}${o.error.message}\n`;
  const r = o.result as DeleteExpiredResult;
  const verb = o.dryRun ? 'would remove' : 'removed';
  let text = `${head}: ${verb} ${r.removed} of ${r.scanned} expired payload${r.scanned === 1 ? '' : 's'} (${formatBytes(r.removedBytes)})\n`;
  if (!o.dryRun && r.removed < r.scanned && r.errors.length === 0) {
    text += `  ${r.scanned - r.removed} kept: referenced again while the sweep ran\n`;
  }
  if (r.more) text += '  more expired payloads remain (stopped at --limit); run sweep again\n';
  for (const e of r.errors.slice(0, 20)) text += `  error ${e.code} ${e.key}: ${e.message}\n`;
  if (r.errors.length > 20) text += `  … and ${r.errors.length - 20} more errors (--json lists them all)\n`;
  return text;
}
