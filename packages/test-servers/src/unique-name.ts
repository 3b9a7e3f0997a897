/**
 * Names of isolated stores on the shared servers: a Redis key prefix, a PostgreSQL schema or role,
 * an S3/GCS bucket, an Azure container that no other test, worker or parallel run uses.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';

/** How {@link uniqueName} shapes a name. */
export interface UniqueNameOptions {
  /**
   * Joins the prefix, the process id, the time and the random part (default `-`). `_` for a
   * PostgreSQL identifier, `:` for a Redis key prefix.
   */
  separator?: string;
  /**
   * The longest name returned (none by default): a longer prefix is cut from its end (and
   * trailing separators dropped) so the unique tail is kept whole. 63 for a bucket, container or
   * PostgreSQL identifier.
   */
  maxLength?: number;
  /** Lower-cases the prefix (the tail is always lower-case). For bucket and container names, identifiers. */
  lowerCase?: boolean;
}

/**
 * A name no other test, jest worker or parallel run uses:
 * `<prefix><sep><pid><sep><time in base 36><sep><8 random hex digits>`, e.g.
 * `xs3-drv-41234-mfx2k3q1-9c0e7a1b`.
 *
 * The tail is `[0-9a-z]` joined by `separator`, so the name keeps to a store's alphabet when the
 * prefix and separator do: with a lower-case `[a-z0-9-]` prefix (or `lowerCase`) and `maxLength: 63`
 * it is a valid S3/GCS bucket or Azure container name (3–63, no `--` if the prefix has none); with a
 * `[a-z0-9_]` prefix starting with a letter, `separator: '_'` and `maxLength: 63` a valid
 * PostgreSQL identifier; any prefix makes a Redis key prefix.
 *
 * @param prefix - What the name is for (a driver, a test), first in the name.
 * @param options - Separator, longest length, lower-casing.
 * @throws RangeError if `maxLength` is too short for the tail and one character of prefix.
 */
export function uniqueName(prefix: string, options: UniqueNameOptions = {}): string {
  const sep = options.separator ?? '-';
  const tail = [process.pid, Date.now().toString(36), randomBytes(4).toString('hex')].join(sep);
  let head = options.lowerCase ? prefix.toLowerCase() : prefix;
  const max = options.maxLength;
  if (max !== undefined && head.length + sep.length + tail.length > max) {
    const room = max - sep.length - tail.length;
    if (room < 1) throw new RangeError(`uniqueName: maxLength ${max} leaves no room for a prefix`);
    head = head.slice(0, room);
    while (sep !== '' && head.endsWith(sep) && head.length > sep.length) head = head.slice(0, -sep.length);
  }
  return `${head}${sep}${tail}`;
}

/**
 * A short unique suffix for task queues, workflow ids and tags within one test run:
 * `<time in base 36>-<6 random hex digits>`.
 */
export function uniqueSuffix(): string {
  return `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}
