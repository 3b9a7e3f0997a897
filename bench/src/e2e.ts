/**
 * The end-to-end workload group: real workflows on a Temporal dev server (`temporal server
 * start-dev`, started by `@x/test-servers`' helper). One round trip per workflow (client → workflow →
 * activity → workflow → client) with payloads of 1 MiB, 1.9 MiB and 10 MiB, 8 callers starting
 * workflows concurrently, the SDK's default `payloadSizeThreshold` (256 KiB), for inline (no
 * External Storage), each of our drivers with default options, and the official S3 driver.
 *
 * The client runs in this process; the worker in a child process of its own ({@link
 * E2eWorkerConfig}), so its CPU time per workflow is its own.
 *
 * @module
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Client, type WorkflowHandle } from '@temporalio/client';
import { ExternalStorage } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { bundleWorkflowCode, DefaultLogger } from '@temporalio/worker';
import { type DevServer, startTemporalDevServer, uniqueSuffix } from '@x/test-servers';
import { E2E_IMPLS, type E2eImpl, openStore, type SetUpStore, setUpStore } from './e2e-stores';
import type { E2eParentMessage, E2eWorkerConfig, E2eWorkerMessage } from './e2e-worker';
import type { roundTripWorkflow } from './e2e-workflows';
import { median, percentile } from './env';
import { markdownTable } from './tables';

const MiB = 1024 * 1024;

/** Payload sizes measured, in MiB (1.9 MiB: the largest that fits the server's 2 MiB blob limit). */
export const E2E_SIZES_MIB: readonly number[] = [1, 1.9, 10];

/** The server's per-payload limit (`limit.blobSize.error`, 2 MiB) and its gRPC message limit (4 MiB). */
export const SERVER_LIMITS =
  'the dev server rejects a payload over 2 MiB (limit.blobSize.error) and a gRPC message over 4 MiB';

/** Options of {@link runE2eGroup}. */
export interface E2eGroupOptions {
  /** Implementations (default {@link E2E_IMPLS}). */
  readonly impls?: readonly E2eImpl[];
  /** Payload sizes in MiB (default {@link E2E_SIZES_MIB}). */
  readonly sizesMiB?: readonly number[];
  /** Runs of each (implementation, size), medians kept (default 3). */
  readonly repeats?: number;
  /** Concurrent callers, each starting a workflow and awaiting its result, then the next (default 8). */
  readonly callers?: number;
  /** Workflows per caller per run (default 3). */
  readonly perCaller?: number;
  /** Where the workflow bundle is written. */
  readonly tmpDir: string;
}

/** One measured run of one (implementation, size). */
export interface E2eRun {
  readonly impl: E2eImpl;
  readonly sizeBytes: number;
  readonly round: number;
  readonly workflows: number;
  /** First start to last result (ms). */
  readonly wallMs: number;
  /** Each workflow's start-to-result latency at the client (ms). */
  readonly latenciesMs: number[];
  /** Worker process CPU time (user + system) during the run (ms). */
  readonly workerCpuMs: number;
  /** Encoded size of one workflow's history (`temporal.api.history.v1.History`, bytes). */
  readonly historyBytes: number;
}

/** Medians over the runs of one (implementation, size), or why it could not run. */
export interface E2eSummary {
  readonly impl: E2eImpl;
  readonly sizeBytes: number;
  readonly runs: number;
  readonly workflowsPerSec: number;
  readonly p50Ms: number;
  readonly p95Ms: number;
  readonly historyBytes: number;
  readonly workerCpuMsPerWorkflow: number;
  /** Set when no run was possible: the error the server (or SDK) gave. */
  readonly error?: string;
}

/** One end-to-end target. */
export interface E2eTarget {
  readonly target: string;
  readonly value: string;
  readonly pass: boolean;
  readonly note: string;
}

/** Everything the end-to-end group measured. */
export interface E2eReport {
  /** `temporal --version` style description of the server used. */
  readonly server: string;
  readonly callers: number;
  readonly perCaller: number;
  readonly repeats: number;
  readonly payloadSizeThreshold: number;
  readonly summaries: E2eSummary[];
  readonly targets: E2eTarget[];
  /** Unexpected failures (an implementation that should have worked). */
  readonly failures: string[];
  readonly runs: E2eRun[];
}

/** The error and its causes as one line (what the server said is usually in a cause). */
function errorText(error: unknown): string {
  const parts: string[] = [];
  let e: unknown = error;
  for (let i = 0; i < 5 && e !== undefined && e !== null; i++) {
    const err = e as { message?: string; details?: string; cause?: unknown };
    const text = err.details ?? err.message ?? String(e);
    if (text && !parts.includes(text)) parts.push(text);
    e = err.cause;
  }
  return parts.join(' ← ');
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A worker child process and its IPC channel. */
class WorkerProcess {
  private readonly waiting: ((m: E2eWorkerMessage) => void)[] = [];
  private stderr = '';
  private readonly exited: Promise<number | null>;

  constructor(private readonly child: ChildProcess) {
    child.on('message', (m: E2eWorkerMessage) => this.waiting.shift()?.(m));
    child.stderr?.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-8000);
    });
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }

  static start(config: E2eWorkerConfig): WorkerProcess {
    const child = spawn(process.execPath, [join(__dirname, 'e2e-worker.js'), JSON.stringify(config)], {
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    return new WorkerProcess(child);
  }

  /** The next message, or an error if the process exits first. */
  next(): Promise<E2eWorkerMessage> {
    return Promise.race([
      new Promise<E2eWorkerMessage>((resolve) => this.waiting.push(resolve)),
      this.exited.then((code) => {
        throw new Error(`e2e worker exited (${code}):\n${this.stderr}`);
      }),
    ]);
  }

  async request(message: E2eParentMessage): Promise<E2eWorkerMessage> {
    const reply = this.next();
    this.child.send(message);
    return reply;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.connected)
      this.child.send({ type: 'stop' } satisfies E2eParentMessage);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 30_000);
    await this.exited;
    clearTimeout(timer);
  }
}

type RoundTrip = typeof roundTripWorkflow;

/** Runs one workflow and checks its result; resolves to its latency and handle. */
async function roundTrip(
  client: Client,
  taskQueue: string,
  workflowId: string,
  input: Uint8Array,
  timeoutMs: number,
): Promise<{ ms: number; handle: WorkflowHandle<RoundTrip> }> {
  const t0 = performance.now();
  const handle = await client.workflow.start<RoundTrip>('roundTripWorkflow', { taskQueue, workflowId, args: [input] });
  let result: Uint8Array;
  try {
    result = await withTimeout(handle.result(), timeoutMs, workflowId);
  } catch (e) {
    await handle.terminate('benchmark: no result in time').catch(() => {});
    throw e;
  }
  const ms = performance.now() - t0;
  if (result.length !== input.length || result[0] !== ((input[0] as number) ^ 0xff)) {
    throw new Error(`${workflowId}: wrong result (${result.length} bytes for ${input.length})`);
  }
  return { ms, handle };
}

/** Distinct inputs of `size` bytes (a shared random body, 16 random bytes in front of each). */
function inputs(count: number, size: number): Uint8Array[] {
  const body = randomBytes(size);
  return Array.from({ length: count }, () => {
    const b = Buffer.from(body);
    randomBytes(Math.min(16, size)).copy(b, 0);
    return b;
  });
}

/**
 * Encoded size of a workflow's history (`temporal.api.history.v1.History`), read one event per
 * page: an inline history of 4 MiB and more would exceed the client's 4 MiB gRPC receive limit.
 */
async function historySize(client: Client, workflowId: string): Promise<number> {
  const events: temporal.api.history.v1.IHistoryEvent[] = [];
  let nextPageToken: Uint8Array | undefined;
  do {
    const page = await client.workflowService.getWorkflowExecutionHistory({
      namespace: client.options.namespace,
      execution: { workflowId },
      maximumPageSize: 1,
      nextPageToken,
    });
    events.push(...(page.history?.events ?? []));
    nextPageToken = page.nextPageToken?.length ? page.nextPageToken : undefined;
  } while (nextPageToken !== undefined);
  return temporal.api.history.v1.History.encode({ events }).finish().byteLength;
}

/** What one measured run needs. */
interface RunContext {
  readonly impl: E2eImpl;
  readonly size: number;
  readonly round: number;
  readonly callers: number;
  readonly perCaller: number;
  readonly client: Client;
  readonly worker: WorkerProcess;
  readonly taskQueue: string;
  /** `callers × perCaller` distinct inputs. */
  readonly inputs: Uint8Array[];
  readonly prefix: string;
}

/**
 * One measured run: `callers` concurrent callers, each running `perCaller` workflows one after
 * the other, with the worker process's CPU time around them; then one workflow's history size.
 */
async function measureRun(ctx: RunContext): Promise<E2eRun> {
  const { client, taskQueue, callers, perCaller } = ctx;
  await ctx.worker.request({ type: 'begin' });
  const t0 = performance.now();
  const results = await Promise.all(
    Array.from({ length: callers }, async (_, c) => {
      const mine: { ms: number; handle: WorkflowHandle<RoundTrip> }[] = [];
      for (let i = 0; i < perCaller; i++) {
        const input = ctx.inputs[c * perCaller + i] as Uint8Array;
        mine.push(await roundTrip(client, taskQueue, `${ctx.prefix}-${c}-${i}`, input, 300_000));
      }
      return mine;
    }),
  );
  const wallMs = performance.now() - t0;
  const cpu = await ctx.worker.request({ type: 'end' });
  if (cpu.type !== 'cpu') throw new Error(`${ctx.impl} worker: unexpected ${cpu.type}`);
  const first = results[0]?.[0];
  return {
    impl: ctx.impl,
    sizeBytes: ctx.size,
    round: ctx.round,
    workflows: callers * perCaller,
    wallMs,
    latenciesMs: results.flat().map((r) => r.ms),
    workerCpuMs: (cpu.userMicros + cpu.systemMicros) / 1000,
    historyBytes: first === undefined ? 0 : await historySize(client, first.handle.workflowId),
  };
}

/**
 * Starts a dev server, bundles the workflow, sets up one store per implementation, then for
 * each round, each implementation: starts a worker process, and for each size runs one
 * unmeasured workflow (its failure, e.g. an inline payload over the server's limits, is
 * recorded and the size skipped from then on) and the measured workflows. Rounds are
 * interleaved (round 1 of every implementation, then round 2, …) so a busy spell of the shared
 * machine does not hit one implementation's runs only. Stores and server are removed afterwards.
 */
export async function runE2eGroup(options: E2eGroupOptions): Promise<E2eReport> {
  const impls = options.impls ?? E2E_IMPLS;
  const sizes = (options.sizesMiB ?? E2E_SIZES_MIB).map((m) => Math.round(m * MiB));
  const repeats = options.repeats ?? 3;
  const callers = options.callers ?? 8;
  const perCaller = options.perCaller ?? 3;
  // The SDK's default, read from the SDK itself (any driver will do).
  const threshold = new ExternalStorage({
    drivers: [{ name: 'x', type: 'x', store: async () => [], retrieve: async () => [] }],
  }).payloadSizeThreshold;
  console.log(
    `\nend to end: Temporal dev server, ${callers} concurrent callers × ${perCaller} workflows (client → workflow → activity → result), payloads ${sizes.map(sizeLabel).join(', ')}, SDK default threshold ${threshold / 1024} KiB, ${repeats} run(s), medians`,
  );
  const [server, bundle] = await Promise.all([
    startTemporalDevServer(),
    bundleWorkflowCode({ workflowsPath: require.resolve('./e2e-workflows'), logger: new DefaultLogger('WARN') }),
  ]);
  const runs: E2eRun[] = [];
  const errors = new Map<string, string>();
  const failures: string[] = [];
  const fail = (what: string, e: unknown) => {
    failures.push(`${what}: ${errorText(e)}`);
    console.log(`  ${what}: FAILED: ${errorText(e)}`);
  };
  const stores = new Map<E2eImpl, SetUpStore>();
  let serverVersion = 'unknown';
  try {
    serverVersion = await describeServer(server);
    const bundlePath = join(options.tmpDir, `e2e-workflows-${uniqueSuffix()}.js`);
    await writeFile(bundlePath, bundle.code);
    for (const impl of impls) stores.set(impl, await setUpStore(impl));
    for (let round = 1; round <= repeats; round++) {
      for (const impl of impls) {
        const spec = (stores.get(impl) as SetUpStore).spec;
        const taskQueue = `bench-e2e-${impl}-${uniqueSuffix()}`;
        const worker = WorkerProcess.start({
          address: server.address,
          namespace: server.namespace,
          taskQueue,
          bundlePath,
          store: spec,
        });
        const store = openStore(spec);
        try {
          const ready = await withTimeout(worker.next(), 120_000, `${impl} worker start`);
          if (ready.type !== 'ready') throw new Error(`${impl} worker: unexpected ${ready.type}`);
          const dataConverter =
            store.driver === undefined ? {} : { externalStorage: new ExternalStorage({ drivers: [store.driver] }) };
          const client = new Client({ connection: server.connection, namespace: server.namespace, dataConverter });
          for (const size of sizes) {
            const key = `${impl} ${size}`;
            if (errors.has(key)) continue;
            const label = `${impl} ${sizeLabel(size)}`;
            const n = callers * perCaller;
            const all = inputs(n + 1, size);
            const prefix = `bench-e2e-${impl}-${size}-${round}-${uniqueSuffix()}`;
            try {
              await roundTrip(client, taskQueue, `${prefix}-warmup`, all[n] as Uint8Array, 120_000);
            } catch (e) {
              errors.set(key, errorText(e));
              if (impl === 'inline' && size > 2 * MiB) console.log(`  ${label}: not possible: ${errorText(e)}`);
              else fail(label, e);
              continue;
            }
            try {
              const ctx = { impl, size, round, callers, perCaller, client, worker, taskQueue, prefix };
              const run = await measureRun({ ...ctx, inputs: all.slice(0, n) });
              runs.push(run);
              console.log(
                `  run ${round}/${repeats} ${label.padEnd(24)} ${((n * 1000) / run.wallMs).toFixed(2).padStart(6)} workflows/s  p50 ${percentile(run.latenciesMs, 50).toFixed(0)} ms  worker CPU ${(run.workerCpuMs / n).toFixed(0)} ms/workflow  history ${run.historyBytes} B`,
              );
            } catch (e) {
              fail(`${label} round ${round}`, e);
            }
          }
        } catch (e) {
          fail(`${impl} round ${round}`, e);
        } finally {
          await worker.stop();
          await store.close();
        }
      }
    }
  } finally {
    for (const [impl, store] of stores) {
      if (!(await store.close().catch(() => false))) failures.push(`${impl}: cleanup not confirmed by the server`);
    }
    await server.close();
  }
  const summaries: E2eSummary[] = [];
  for (const impl of impls) {
    for (const size of sizes) {
      const mine = runs.filter((r) => r.impl === impl && r.sizeBytes === size);
      const error = errors.get(`${impl} ${size}`);
      summaries.push({
        impl,
        sizeBytes: size,
        runs: mine.length,
        workflowsPerSec: median(mine.map((r) => (r.workflows * 1000) / r.wallMs)),
        p50Ms: median(mine.map((r) => percentile(r.latenciesMs, 50))),
        p95Ms: median(mine.map((r) => percentile(r.latenciesMs, 95))),
        historyBytes: median(mine.map((r) => r.historyBytes)),
        workerCpuMsPerWorkflow: median(mine.map((r) => r.workerCpuMs / r.workflows)),
        ...(error === undefined ? {} : { error }),
      });
    }
  }
  return {
    server: serverVersion,
    callers,
    perCaller,
    repeats,
    payloadSizeThreshold: threshold,
    summaries,
    targets: checkE2eTargets(summaries),
    failures,
    runs,
  };
}

async function describeServer(server: DevServer): Promise<string> {
  const info = await server.connection.workflowService.getSystemInfo({});
  return `Temporal dev server ${info.serverVersion ?? 'unknown'}`;
}

/** The end-to-end target: every driver at least as fast as the official S3 driver at 10 MiB. */
export function checkE2eTargets(summaries: readonly E2eSummary[]): E2eTarget[] {
  const size = 10 * MiB;
  const official = summaries.find((s) => s.impl === 's3-official' && s.sizeBytes === size && s.runs > 0);
  if (official === undefined) return [];
  return summaries
    .filter((s) => s.sizeBytes === size && s.runs > 0 && s.impl !== 's3-official' && s.impl !== 'inline')
    .map((s) => {
      const ratio = s.workflowsPerSec / official.workflowsPerSec;
      return {
        target: `${s.impl} ≥ 1× s3-official end to end at 10 MiB (workflows/s)`,
        value: `${ratio.toFixed(2)}×`,
        pass: ratio >= 1,
        note: `worker CPU ${s.workerCpuMsPerWorkflow.toFixed(0)} ms/workflow vs ${official.workerCpuMsPerWorkflow.toFixed(0)} ms; p50 ${s.p50Ms.toFixed(0)} vs ${official.p50Ms.toFixed(0)} ms`,
      };
    });
}

function sizeLabel(bytes: number): string {
  return `${(bytes / MiB).toFixed(1)} MiB`;
}

const HEAD = [
  'impl',
  'payload',
  'workflows/s',
  'p50 (ms)',
  'p95 (ms)',
  'history B/workflow',
  'worker CPU ms/workflow',
  'vs official',
  'vs inline',
];

/** One table row: cells, or (no run possible) a message in place of the measurements. */
interface Row {
  readonly cells: string[];
  readonly message?: string;
}

function rows(summaries: readonly E2eSummary[]): Row[] {
  const out: Row[] = [];
  const sizes = [...new Set(summaries.map((s) => s.sizeBytes))];
  for (const size of sizes) {
    const official = summaries.find((s) => s.impl === 's3-official' && s.sizeBytes === size && s.runs > 0);
    const inline = summaries.find((s) => s.impl === 'inline' && s.sizeBytes === size && s.runs > 0);
    for (const s of summaries.filter((x) => x.sizeBytes === size)) {
      if (s.runs === 0) {
        const message =
          s.impl === 'inline' && size > 2 * MiB
            ? `not possible (${SERVER_LIMITS}): ${s.error ?? ''}`
            : `failed: ${s.error ?? 'no run'}`;
        out.push({ cells: [s.impl, sizeLabel(size)], message });
        continue;
      }
      const vs = (base: E2eSummary | undefined) =>
        base === undefined || base === s ? '' : `${(s.workflowsPerSec / base.workflowsPerSec).toFixed(2)}×`;
      out.push({
        cells: [
          s.impl,
          sizeLabel(size),
          s.workflowsPerSec.toFixed(2),
          s.p50Ms.toFixed(0),
          s.p95Ms.toFixed(0),
          String(Math.round(s.historyBytes)),
          s.workerCpuMsPerWorkflow.toFixed(0),
          vs(official),
          vs(inline),
        ],
      });
    }
  }
  return out;
}

/** The end-to-end results as a plain-text table. */
export function formatE2eTable(summaries: readonly E2eSummary[]): string {
  const all = [{ cells: HEAD }, ...rows(summaries)];
  const widths = HEAD.map((_, i) =>
    Math.max(...all.filter((r) => r.message === undefined).map((r) => (r.cells[i] ?? '').length)),
  );
  const pad = (c: string, i: number) => (i >= 2 ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0));
  return all
    .map((r) =>
      r.message === undefined ? r.cells.map(pad).join('  ') : `${r.cells.map(pad).join('  ')}  ${r.message}`,
    )
    .join('\n');
}

/** The end-to-end group as a Markdown section. */
export function e2eMarkdown(report: E2eReport): string {
  return [
    '### End to end on the Temporal dev server',
    '',
    `${report.server}; ${report.callers} concurrent callers × ${report.perCaller} workflows per run, each one round trip (client → workflow → activity → result: four payloads of the size shown cross the server), SDK default \`payloadSizeThreshold\` (${report.payloadSizeThreshold / 1024} KiB), drivers with default options; medians of ${report.repeats} run(s). Latency: start to result at the client. Worker CPU: \`process.cpuUsage()\` of the worker process around the run, per workflow. History: one workflow's encoded history.`,
    '',
    `| ${HEAD.join(' | ')} |`,
    `| ${HEAD.map((_, i) => (i >= 2 ? '---:' : '---')).join(' | ')} |`,
    ...rows(report.summaries).map((r) =>
      r.message === undefined
        ? `| ${r.cells.join(' | ')} |`
        : `| ${r.cells.join(' | ')} | ${r.message} |${' |'.repeat(HEAD.length - 3)}`,
    ),
    '',
    ...(report.targets.length > 0
      ? [
          markdownTable(
            ['target', 'value', 'result', 'note'],
            report.targets.map((t) => [t.target, t.value, t.pass ? 'PASS' : 'FAIL', t.note]),
            { right: [1] },
          ),
        ]
      : []),
  ].join('\n');
}

/** Prints the end-to-end table, targets and failures. */
export function printE2e(report: E2eReport): void {
  console.log(`\nend to end (${report.server}; medians of ${report.repeats} run(s)):`);
  console.log(formatE2eTable(report.summaries));
  if (report.targets.length > 0) console.log('\ntargets (end to end):');
  for (const t of report.targets) console.log(`  ${t.pass ? 'PASS' : 'FAIL'}  ${t.target}: ${t.value}  [${t.note}]`);
  for (const f of report.failures) console.log(`  FAILED: ${f}`);
}
