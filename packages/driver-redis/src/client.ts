/**
 * The ioredis clients the driver talks to: their structural types (not `ioredis`' classes, so the
 * same driver accepts `Redis` and `Cluster` instances from ioredis 5 and 6 without duplicate-type
 * errors), Redis Cluster slot hashing, the clients the driver creates and closes itself
 * (`fromUrl`, `fromClusterNodes`; ioredis loaded at runtime), and the bound on one call.
 *
 * @module
 */
import { configError, loadPeerDependency } from '@x/storage-driver-core';
import type { RedisClusterNode } from './options';

/** An argument of a Redis command: ioredis sends strings and numbers as text, Buffers as is. */
export type RedisCommandArgument = string | Buffer | number;

/** What `pipeline.exec()` resolves to: one `[error, result]` pair per queued command. */
export type RedisPipelineResult = [error: Error | null, result: unknown][];

/** The part of an ioredis pipeline (`client.pipeline()`) the driver uses. */
export interface RedisPipelineLike {
  /** Queues a command whose string replies are decoded as UTF-8. */
  call(command: string, ...args: RedisCommandArgument[]): unknown;
  /** Queues a command whose bulk replies stay Buffers (binary-safe). */
  callBuffer(command: string, ...args: RedisCommandArgument[]): unknown;
  /** Sends every queued command in one write and resolves to their replies, in order. */
  exec(): Promise<RedisPipelineResult | null>;
}

/**
 * The part of an ioredis `Redis` (or `Cluster`) client the driver uses. Any ioredis 5 or 6
 * `Redis` or `Cluster` instance satisfies it.
 */
export interface RedisClientLike {
  /** Connection status (`wait`, `connecting`, `connect`, `ready`, `reconnecting`, `end`, ...). */
  readonly status: string;
  /** Starts a pipeline: commands queued on it are sent in one write. */
  pipeline(): RedisPipelineLike;
  /** Sends one command; string replies are decoded as UTF-8. */
  call(command: string, ...args: RedisCommandArgument[]): Promise<unknown>;
  /** Sends one command; bulk replies stay Buffers. */
  callBuffer(command: string, ...args: RedisCommandArgument[]): Promise<unknown>;
}

/**
 * The extra part of an ioredis `Cluster` the driver uses to group a batch per master node.
 * Detected at runtime by `isCluster === true` and a `slots` array.
 */
export interface RedisClusterLike extends RedisClientLike {
  /** `true` for an ioredis `Cluster`. */
  readonly isCluster: boolean;
  /**
   * ioredis' slot map: for each of the 16384 slots, the node keys (`host:port`) serving it,
   * master first. Empty until the cluster has connected.
   */
  readonly slots: readonly (readonly string[] | undefined)[];
  /** Reloads the slot map from the cluster (`CLUSTER SLOTS`). */
  refreshSlotsCache(callback?: (error?: Error | null) => void): void;
  /**
   * A client of each node of the given role (ioredis' `Cluster#nodes`): `list` scans every
   * `master`. Empty until the cluster has connected.
   */
  nodes(role?: 'all' | 'master' | 'slave'): RedisClientLike[];
}

/** Whether `client` is an ioredis `Cluster` (structurally). */
export function isRedisClusterClient(client: RedisClientLike): client is RedisClusterLike {
  const c = client as Partial<RedisClusterLike>;
  return c.isCluster === true && Array.isArray(c.slots) && typeof c.refreshSlotsCache === 'function';
}

/** The socket ioredis hands a command's `toWritable`. */
interface RedisSocket {
  write(chunk: Uint8Array | string): boolean;
}

/** The part of an ioredis `Command` {@link sendFromParts} uses. */
interface RedisCommandInstance {
  readonly args: readonly (string | Buffer)[];
  readonly promise: Promise<unknown>;
  toWritable(socket: RedisSocket): string | Buffer;
}

/** ioredis' `Command` class (`Redis.Command`). */
type RedisCommandClass = new (
  name: string,
  args: readonly RedisCommandArgument[],
  options: { replyEncoding?: string | null; keyPrefix?: string | Buffer },
) => RedisCommandInstance;

/** A client with ioredis' `sendCommand` (every `Redis` and `Cluster`). */
interface RedisCommandSender {
  sendCommand(command: RedisCommandInstance): unknown;
  readonly options?: { keyPrefix?: string | Buffer };
}

/** The ioredis this package resolves, for {@link commandClassOf}: `null` when it cannot be loaded. */
let resolvedIoredis: (IoredisModule & { Command?: unknown }) | null | undefined;

/**
 * ioredis' `Command` class for `client`: that of the ioredis this package resolves (a peer
 * dependency: normally the application's own copy), used only when `client` is an instance of
 * that copy's `Redis` or `Cluster`; `undefined` for any other client (another copy of ioredis, a
 * wrapper), which the caller serves with `call()`.
 */
function commandClassOf(client: RedisClientLike): RedisCommandClass | undefined {
  if (resolvedIoredis === undefined) {
    try {
      resolvedIoredis = loadIoredis();
    } catch {
      resolvedIoredis = null;
    }
  }
  const io = resolvedIoredis;
  if (io === null || typeof io.Command !== 'function') return undefined;
  if (!(client instanceof io.Redis || client instanceof io.Cluster)) {
    return undefined;
  }
  return io.Command as RedisCommandClass;
}

/**
 * Sends `command key <value> ...rest` with the value written to the connection's socket from
 * its `parts` as they are (their concatenation, of `size` bytes, is the value): no joined copy, and no copy into
 * ioredis' write buffer, which `call()` makes of every argument. Resolves with the reply (strings
 * decoded as UTF-8). Uses ioredis' public `sendCommand` with a `Command` of the client's own class
 * whose `toWritable` writes the value's pieces to the socket ioredis passes it (which writes what
 * it returns right after them, so the command's bytes stay together); `undefined` when `client` is
 * not ioredis' (the caller sends the joined value with `call()`). Never used inside a pipeline,
 * whose writes ioredis buffers (a command of its own is written at once, and `sendCommand` is never
 * auto-pipelined). ioredis' `keyPrefix` option applies to the key as it does for `call()`.
 */
export function sendFromParts(
  client: RedisClientLike,
  command: string,
  key: string,
  value: { readonly parts: readonly Uint8Array[]; readonly size: number },
  rest: readonly (string | number)[],
): Promise<unknown> | undefined {
  const Command = commandClassOf(client);
  if (Command === undefined) return undefined;
  const sender = client as unknown as RedisCommandSender;
  const { parts, size } = value;
  const cmd = new Command(command, [key, '', ...rest], {
    replyEncoding: 'utf8',
    ...(sender.options?.keyPrefix === undefined ? {} : { keyPrefix: sender.options.keyPrefix }),
  });
  const bulk = (arg: string | Buffer) => {
    const bytes = typeof arg === 'string' ? Buffer.from(arg) : arg;
    return Buffer.concat([Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from('\r\n')]);
  };
  const [prefixedKey, , ...others] = cmd.args;
  const head = Buffer.concat([
    Buffer.from(`*${cmd.args.length + 1}\r\n`),
    bulk(command),
    bulk(prefixedKey ?? ''),
    Buffer.from(`$${size}\r\n`),
  ]);
  const tail = Buffer.concat([Buffer.from('\r\n'), ...others.map(bulk)]);
  // Called once per send (again if a Cluster redirects the command): the whole command each time.
  cmd.toWritable = (socket) => {
    socket.write(head);
    for (const part of parts) if (part.byteLength > 0) socket.write(part);
    return tail;
  };
  sender.sendCommand(cmd);
  return cmd.promise;
}

/** Number of hash slots of a Redis Cluster. */
export const REDIS_CLUSTER_SLOTS = 16384;

const CRC16_TABLE = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 8;
    for (let j = 0; j < 8; j++) c = c & 0x8000 ? ((c << 1) ^ 0x1021) & 0xffff : (c << 1) & 0xffff;
    table[i] = c;
  }
  return table;
})();

function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const b of bytes) crc = ((crc << 8) & 0xffff) ^ (CRC16_TABLE[((crc >> 8) ^ b) & 0xff] as number);
  return crc;
}

/**
 * The Redis Cluster hash slot of `key` (CRC16/XMODEM of its UTF-8 bytes modulo 16384, honouring a
 * non-empty `{hash tag}`), exactly as the server's `CLUSTER KEYSLOT` and ioredis compute it.
 */
export function redisClusterKeySlot(key: string): number {
  const bytes = Buffer.from(key, 'utf8');
  const open = bytes.indexOf(0x7b);
  if (open !== -1) {
    const close = bytes.indexOf(0x7d, open + 1);
    if (close > open + 1) return crc16(bytes.subarray(open + 1, close)) % REDIS_CLUSTER_SLOTS;
  }
  return crc16(bytes) % REDIS_CLUSTER_SLOTS;
}

/** A client the driver created (from a URL or cluster nodes) and therefore closes. */
export interface OwnedRedisClient extends RedisClientLike {
  quit(): Promise<unknown>;
  disconnect(): void;
  on(event: 'error', listener: (error: Error) => void): unknown;
  once(event: 'end', listener: () => void): unknown;
}

/** The ioredis module as loaded at runtime by the static constructors. */
interface IoredisModule {
  Redis: new (url: string, options: Record<string, unknown>) => OwnedRedisClient;
  Cluster: new (nodes: RedisClusterNode[], options: Record<string, unknown>) => OwnedRedisClient;
}

/** How long `close()` waits for a quitting connection to end before disconnecting hard. */
const CLOSE_TIMEOUT_MS = 2_000;

/** The ioredis module, loaded at runtime: only the URL/cluster-node constructors need it. */
function loadIoredis(): IoredisModule {
  return loadPeerDependency<IoredisModule>(require, 'ioredis', '@x/storage-driver-redis');
}

/**
 * A new ioredis `Redis` for `url`, which the driver then owns. ioredis is loaded here, at runtime.
 *
 * @throws StorageDriverError `E_CONFIG` if ioredis is not installed or `url` is not valid (the URL
 *   is never echoed: it may hold a password).
 */
export function openRedisClient(url: string, clientOptions?: Readonly<Record<string, unknown>>): OwnedRedisClient {
  const { Redis } = loadIoredis();
  try {
    return new Redis(url, { ...clientOptions });
  } catch {
    // No cause: ioredis' error (e.g. Node's ERR_INVALID_URL) carries the URL, password included.
    throw configError('url is not a valid Redis URL (redis://[[user]:password@]host:port[/db])');
  }
}

/**
 * A new ioredis `Cluster` for the startup `nodes`, which the driver then owns.
 *
 * @throws StorageDriverError `E_CONFIG` if ioredis is not installed or the nodes or options are not valid.
 */
export function openClusterClient(
  nodes: readonly RedisClusterNode[],
  clientOptions?: Readonly<Record<string, unknown>>,
): OwnedRedisClient {
  const { Cluster } = loadIoredis();
  try {
    return new Cluster([...nodes], { ...clientOptions });
  } catch {
    throw configError('nodes or clientOptions are not valid for an ioredis Cluster');
  }
}

/**
 * Closes a client the driver created: `QUIT` and wait for the connection to end, falling back to a
 * hard disconnect after 2 s (at once when the client is not connected, which also cancels a
 * pending reconnection). Never throws.
 */
export async function closeOwnedClient(client: OwnedRedisClient): Promise<void> {
  if (client.status === 'end') return;
  if (client.status !== 'ready') {
    // Not connected (connecting, reconnecting): QUIT would wait in the offline queue. A hard
    // disconnect cancels any pending reconnection; the client never connects again.
    client.disconnect();
    return;
  }
  // QUIT resolves on the server's OK; the connection is closed only at the 'end' event.
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      client.disconnect();
      resolve();
    }, CLOSE_TIMEOUT_MS);
    client.once('end', () => {
      clearTimeout(timer);
      resolve();
    });
    client.quit().catch(() => client.disconnect());
  });
}

/**
 * Runs `work` bounded by `ms` milliseconds: past it, rejects with `timedOut()` (a late failure of
 * `work` is then ignored, never unhandled).
 */
export async function withTimeout<T>(work: () => Promise<T>, ms: number, timedOut: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const running = work();
  running.catch(() => {}); // a late failure after the timeout must not be unhandled
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(timedOut()), ms);
  });
  try {
    return await Promise.race([running, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
