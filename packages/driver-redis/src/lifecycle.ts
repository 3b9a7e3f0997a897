/**
 * Lifecycle of the Redis driver (DESIGN §8). A payload's last-referenced time is derived from its
 * key's remaining expiry: every `store` (first write or dedup hit) sets the expiry to the
 * driver's horizon (`ttl`, or {@link REDIS_NO_TTL_HORIZON} without one), so
 * `age = horizon − PTTL` and `lastReferenced = server time − age`. `list` scans every master,
 * `delete` unlinks in one pipeline per node, and a conditional delete runs a Lua script that reads
 * the key's expiry and unlinks it in one atomic step. Internal to the package.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import {
  type DeleteEntry,
  type DeleteOutcome,
  type ListedObject,
  type ListQuery,
  throwIfAborted,
} from '@x/storage-driver-core';
import type { RedisBackend } from './batches';
import type { RedisClientLike } from './client';
import type { RedisStorageLocation } from './driver';

/** Keys per `SCAN` page (a hint to the server), each followed by one pipeline of `PTTL` + `STRLEN`. */
const SCAN_COUNT = 1000;

/** Per-key reply errors that mean "not one of our objects here": skipped by `list`. */
const SKIPPED_KEY_ERRORS = /^(?:WRONGTYPE|MOVED|ASK|TRYAGAIN)\b/;

/**
 * The conditional delete, atomic on the server. KEYS[1]: the key. ARGV[1]: the horizon (ms).
 * ARGV[2]: the age (ms) above which the key is deleted. Age = horizon − remaining expiry (at
 * least 0); a key without expiry has no known age and is kept. Returns 1 (deleted), 0 (missing)
 * or 2 (kept).
 */
const CONDITIONAL_DELETE_SCRIPT = `local left = redis.call('PTTL', KEYS[1])
if left == -2 then return 0 end
if left < 0 then return 2 end
local age = tonumber(ARGV[1]) - left
if age < 0 then age = 0 end
if age > tonumber(ARGV[2]) then
  redis.call('UNLINK', KEYS[1])
  return 1
end
return 2`;
const CONDITIONAL_DELETE_SHA = createHash('sha1').update(CONDITIONAL_DELETE_SCRIPT).digest('hex');
const SCRIPT_OUTCOMES: Readonly<Record<number, DeleteOutcome>> = { 0: 'missing', 1: 'deleted', 2: 'kept' };

/** `text` with Redis glob characters (`* ? [ ] \`) escaped, for a `SCAN MATCH` pattern. */
export function escapeGlob(text: string): string {
  return text.replace(/[\\*?[\]]/g, '\\$&');
}

/**
 * The `SCAN MATCH` pattern of the payload keys under `keyStart` whose storage key starts with
 * `prefix` (`/` → `:`), or `undefined` when no storage key can start with `prefix`.
 */
export function scanPattern(keyStart: string, prefix: string | undefined): string | undefined {
  const root = 'v0/';
  let tail: string;
  if (prefix === undefined || root.startsWith(prefix)) tail = 'v0:';
  // Storage keys never contain ":" (segments are percent-encoded).
  else if (prefix.startsWith(root) && !prefix.includes(':')) tail = prefix.split('/').join(':');
  else return undefined;
  return `${escapeGlob(keyStart)}${escapeGlob(tail)}*`;
}

/** Milliseconds since the epoch from a `TIME` reply (`[seconds, microseconds]`). */
function serverTime(reply: unknown): number | undefined {
  if (!Array.isArray(reply) || reply.length !== 2) return undefined;
  const ms = Number(reply[0]) * 1000 + Math.floor(Number(reply[1]) / 1000);
  return Number.isFinite(ms) ? ms : undefined;
}

/**
 * Streams the payloads under the driver's prefix: `SCAN MATCH … COUNT 1000` on every master (the
 * one server otherwise), one node after the other; each page is followed by one pipeline of
 * `TIME` + `PTTL` + `STRLEN` per key on the same node. One page in memory at a time. Keys that are
 * not payload keys (another layout, another type) are skipped.
 */
export async function* listRedisObjects(
  b: RedisBackend,
  query: ListQuery,
): AsyncGenerator<ListedObject<RedisStorageLocation>> {
  const pattern = scanPattern(b.keyStart, query.prefix);
  if (pattern === undefined) return;
  const nodes = await b.bounded('list', () => b.batches.masters());
  for (const node of nodes) {
    let cursor = '0';
    do {
      throwIfAborted(query.signal);
      const page = await b.bounded('list', () => scanPage(b, node, cursor, pattern));
      cursor = page.cursor;
      const located: RedisStorageLocation[] = [];
      for (const key of page.keys) {
        const location = b.parse(key);
        if (location !== undefined) located.push(location);
      }
      if (located.length === 0) continue;
      throwIfAborted(query.signal);
      yield* await b.bounded('list', () => inspect(b, node, located));
    } while (cursor !== '0');
  }
}

async function scanPage(
  b: RedisBackend,
  node: RedisClientLike,
  cursor: string,
  pattern: string,
): Promise<{ cursor: string; keys: string[] }> {
  const reply = await node.call('scan', cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT);
  if (!Array.isArray(reply) || typeof reply[0] !== 'string' || !Array.isArray(reply[1])) {
    throw b.unexpected('SCAN returned an unexpected reply');
  }
  return { cursor: reply[0], keys: (reply[1] as unknown[]).filter((k): k is string => typeof k === 'string') };
}

/** One pipeline on `node`: its `TIME`, then `PTTL` and `STRLEN` of each key. */
async function inspect(
  b: RedisBackend,
  node: RedisClientLike,
  locations: readonly RedisStorageLocation[],
): Promise<ListedObject<RedisStorageLocation>[]> {
  const pipeline = node.pipeline();
  pipeline.call('time');
  for (const { key } of locations) {
    pipeline.call('pttl', key);
    pipeline.call('strlen', key);
  }
  const replies = await pipeline.exec();
  if (!Array.isArray(replies) || replies.length !== 1 + 2 * locations.length) {
    throw b.unexpected('Redis pipeline returned an unexpected reply');
  }
  const [timeError, time] = replies[0] as [Error | null, unknown];
  if (timeError) throw timeError;
  const now = serverTime(time);
  if (now === undefined) throw b.unexpected('TIME returned an unexpected reply');
  const out: ListedObject<RedisStorageLocation>[] = [];
  for (const [i, location] of locations.entries()) {
    const [ttlError, left] = replies[1 + 2 * i] as [Error | null, unknown];
    const [sizeError, size] = replies[2 + 2 * i] as [Error | null, unknown];
    const error = ttlError ?? sizeError;
    if (error) {
      if (SKIPPED_KEY_ERRORS.test(error.message)) continue;
      throw b.classify(error, 'list', location.key);
    }
    if (typeof left !== 'number' || typeof size !== 'number') throw b.unexpected('PTTL/STRLEN returned a non-integer');
    if (left === -2) continue; // expired or deleted since the SCAN
    // No expiry (written by another tool): the age is unknown.
    const known = left >= 0;
    out.push({
      location,
      key: location.storageKey,
      size,
      lastReferenced: known ? new Date(now - Math.max(0, b.horizon - left)) : undefined,
      expiresAt: known ? new Date(now + left) : undefined,
    });
  }
  return out;
}

/**
 * Deletes entries in one pipeline per node: `UNLINK`, or with `referencedBefore` the conditional
 * delete script (`EVALSHA`, and `EVAL` for entries whose node answered `NOSCRIPT`). The script
 * compares ages, not clocks: an object is deleted only if its age (horizon − remaining expiry, on
 * the server) is over `now − referencedBefore` (on the driver's clock) when the batch is sent.
 */
export async function deleteRedisObjects(
  b: RedisBackend,
  entries: readonly DeleteEntry<RedisStorageLocation>[],
  referencedBefore: Date | undefined,
): Promise<DeleteOutcome[]> {
  const keyOf = (e: DeleteEntry<RedisStorageLocation>) => e.location.key;
  const decode = (reply: unknown): DeleteOutcome | undefined =>
    referencedBefore === undefined
      ? (['missing', 'deleted'] as const)[reply as number] // UNLINK: keys removed
      : SCRIPT_OUTCOMES[reply as number];
  const outcomes = new Array<DeleteOutcome>(entries.length);
  /** Records the outcomes of one `run` over `indexes` (entry indexes, by position), but those in `skip`. */
  const settle = (
    indexes: readonly number[],
    run: { results: unknown[][]; failed: Map<number, Error> },
    skip?: ReadonlySet<number>,
  ) => {
    for (const [n, i] of indexes.entries()) {
      if (skip?.has(n)) continue;
      const key = keyOf(entries[i] as DeleteEntry<RedisStorageLocation>);
      const error = run.failed.get(n);
      const reply = run.results[n]?.[0];
      outcomes[i] =
        error !== undefined
          ? b.classify(error, 'delete', key)
          : (decode(reply) ?? b.unexpected(`delete of ${key} returned ${String(reply)}`));
    }
  };
  const all = entries.map((_, i) => i);

  if (referencedBefore === undefined) {
    const failed = new Map<number, Error>();
    const results = await b.batches.run(
      entries,
      keyOf,
      (pipeline, e) => {
        pipeline.call('unlink', keyOf(e));
      },
      1,
      async (e) => [await b.client.call('unlink', keyOf(e))],
      failed,
    );
    settle(all, { results, failed });
    return outcomes;
  }

  const cutoff = referencedBefore.getTime();
  const conditional = async (indexes: readonly number[], command: 'evalsha' | 'eval') => {
    const script = command === 'evalsha' ? CONDITIONAL_DELETE_SHA : CONDITIONAL_DELETE_SCRIPT;
    // Computed when the batch is sent: the age a key must exceed grows with the time spent.
    const args = (e: DeleteEntry<RedisStorageLocation>) =>
      [script, 1, keyOf(e), b.horizon, Math.floor(b.now() - cutoff)] as const;
    const subset = indexes.map((i) => entries[i] as DeleteEntry<RedisStorageLocation>);
    const failed = new Map<number, Error>();
    const results = await b.batches.run(
      subset,
      keyOf,
      (pipeline, e) => {
        pipeline.call(command, ...args(e));
      },
      1,
      async (e) => [await b.client.call(command, ...args(e))],
      failed,
    );
    return { results, failed };
  };
  const first = await conditional(all, 'evalsha');
  // Nodes that do not have the script cached yet (first use, restart, SCRIPT FLUSH): EVAL loads it.
  const noScript = [...first.failed].filter(([, e]) => /^NOSCRIPT\b/.test(e.message)).map(([n]) => n);
  settle(all, first, new Set(noScript));
  if (noScript.length > 0) settle(noScript, await conditional(noScript, 'eval'));
  return outcomes;
}
