/**
 * `x-storage sweep`: the lifecycle method of every configured driver (see `../lifecycle.ts`).
 * Everything the command does lives in this file and `../lifecycle.ts`.
 *
 * @module
 */
import { CliExitCode, type Command, parseDuration, UsageError, withConfig, write } from '../command';
import { lifecycleResultHasErrors, runDriverLifecycle, summarizeLifecycleResult } from '../lifecycle';

const HELP = `Usage: x-storage sweep --config <file> [--driver <id>]... [--older-than <duration>] [--dry-run]
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

/** `x-storage sweep`. */
export const sweep: Command = {
  name: 'sweep',
  summary: 'Run the lifecycle sweep of the configured drivers and print what was removed',
  help: HELP,
  options: {
    config: { type: 'string' },
    driver: { type: 'string', repeatable: true },
    'older-than': { type: 'string' },
    'batch-size': { type: 'string' },
    'max-batches': { type: 'string' },
    'dry-run': { type: 'boolean' },
    json: { type: 'boolean' },
  },
  async run(args, io) {
    args.noPositionals('sweep');
    const olderThanText = args.string('older-than');
    const olderThan = olderThanText === undefined ? undefined : parseDuration(olderThanText);
    const batchSize = args.integer('batch-size', 1);
    const maxBatches = args.integer('max-batches', 1);
    const dryRun = args.flag('dry-run');
    const json = args.flag('json');
    return withConfig(args, async (config) => {
      const requested = args.strings('driver');
      const ids = requested.length > 0 ? requested : [...config.drivers.keys()];
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
            { olderThan, dryRun, batchSize, maxBatches, signal: controller.signal },
          );
          if (outcome.error !== undefined || lifecycleResultHasErrors(outcome.result)) failed = true;
          outcomes.push({ id, ...outcome });
          if (json) continue;
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
                  `  ${dryRun ? 'would remove' : 'removed'} ${String(e.key ?? e.path)}${e.size !== undefined ? ` (${String(e.size)} bytes)` : ''}\n`,
                );
              }
            }
          }
        }
      } finally {
        process.off('SIGINT', onSignal);
      }
      if (json) await write(io.stdout, `${JSON.stringify(outcomes, jsonReplacer, 2)}\n`);
      return failed ? CliExitCode.FAILED : CliExitCode.OK;
    });
  },
};
