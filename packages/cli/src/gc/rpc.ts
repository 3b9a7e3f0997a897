/**
 * Calls to the Temporal frontend for `x-storage gc`: the raw `WorkflowService` RPCs (payloads stay
 * as they are in history: no data converter, nothing retrieved from storage), with a rate limit,
 * a deadline per call and retries of transient errors.
 *
 * @module
 */
import type { temporal } from '@temporalio/proto';

/** The raw gRPC service of a Temporal frontend (`Connection.workflowService` of `@temporalio/client`). */
export type WorkflowService = temporal.api.workflowservice.v1.WorkflowService;

/**
 * What `x-storage gc` needs of a connection: `Connection` of `@temporalio/client` has both.
 */
export interface GcConnection {
  /** The raw RPCs. */
  readonly workflowService: WorkflowService;
  /** Runs `fn` with a deadline on every RPC it makes (`Connection.withDeadline`). Default: no deadline. */
  withDeadline?<R>(deadline: number | Date, fn: () => Promise<R>): Promise<R>;
}

/** Options of {@link RpcRunner}. */
export interface RpcOptions {
  /** Most RPCs started per second. Default: 100. */
  ratePerSecond?: number;
  /** Deadline of one RPC in milliseconds. Default: 30,000. */
  timeoutMs?: number;
  /** Attempts of an RPC that fails with a transient error. Default: 5. */
  attempts?: number;
  /** Delay before the first retry in milliseconds (doubled each time). Default: 200. */
  retryDelayMs?: number;
  /** Stops waiting and retrying (the call rejects with the signal's reason). */
  signal?: AbortSignal;
}

/**
 * gRPC status codes worth another attempt: DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED (the frontend's
 * rate limits), ABORTED, UNAVAILABLE.
 */
const TRANSIENT_CODES = new Set([4, 8, 10, 14]);

/** gRPC NOT_FOUND: the execution, schedule or activity is gone (deleted, or past retention). */
export const GRPC_NOT_FOUND = 5;

/** The gRPC status code of an error, if it has one. */
export function grpcCode(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Runs RPCs against one connection with a shared rate limit, deadlines and retries. */
export class RpcRunner {
  readonly #connection: GcConnection;
  readonly #interval: number;
  readonly #timeoutMs: number;
  readonly #attempts: number;
  readonly #retryDelayMs: number;
  readonly #signal: AbortSignal | undefined;
  #nextStart = 0;
  #calls = 0;
  #retries = 0;

  /** @throws RangeError for a rate, timeout or attempt count that is not a positive number. */
  constructor(connection: GcConnection, options: RpcOptions = {}) {
    const rate = options.ratePerSecond ?? 100;
    const timeoutMs = options.timeoutMs ?? 30_000;
    const attempts = options.attempts ?? 5;
    if (!(rate > 0)) throw new RangeError('ratePerSecond must be a positive number');
    if (!(timeoutMs > 0)) throw new RangeError('timeoutMs must be a positive number');
    if (!Number.isInteger(attempts) || attempts < 1) throw new RangeError('attempts must be a positive integer');
    this.#connection = connection;
    this.#interval = 1000 / rate;
    this.#timeoutMs = timeoutMs;
    this.#attempts = attempts;
    this.#retryDelayMs = options.retryDelayMs ?? 200;
    this.#signal = options.signal;
  }

  /** RPCs made so far (every attempt). */
  get calls(): number {
    return this.#calls;
  }

  /** Attempts that were retries of a transient error. */
  get retries(): number {
    return this.#retries;
  }

  /**
   * Runs `fn(service)` once the rate limit allows, with the deadline; retries transient errors
   * (`attempts` in all, exponential backoff).
   *
   * @throws the RPC's error once it is not transient or attempts run out; the signal's reason when aborted.
   */
  async call<T>(fn: (service: WorkflowService) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      await this.#takeSlot();
      this.#calls++;
      try {
        const run = (): Promise<T> => fn(this.#connection.workflowService);
        const connection = this.#connection;
        return await (connection.withDeadline === undefined
          ? run()
          : connection.withDeadline<T>(Date.now() + this.#timeoutMs, run));
      } catch (error) {
        const code = grpcCode(error);
        if (this.#signal?.aborted || attempt >= this.#attempts || code === undefined || !TRANSIENT_CODES.has(code)) {
          throw error;
        }
        this.#retries++;
        await sleep(this.#retryDelayMs * 2 ** (attempt - 1), this.#signal);
      }
    }
  }

  /**
   * Waits for the next start time the rate allows (starts are spaced evenly). The wait is short
   * and checks the signal afterwards (no listener per waiting call).
   */
  async #takeSlot(): Promise<void> {
    if (this.#signal?.aborted) throw this.#signal.reason;
    const now = Date.now();
    const start = Math.max(now, this.#nextStart);
    this.#nextStart = start + this.#interval;
    if (start > now) await new Promise((resolve) => setTimeout(resolve, start - now));
    if (this.#signal?.aborted) throw this.#signal.reason;
  }
}
