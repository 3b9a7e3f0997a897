/**
 * `COPY … FROM STDIN (FORMAT binary)` over a `pg` connection, used to write large payloads: the
 * rows go to the connection's socket as the protocol's `CopyData` messages, each a 5-byte header
 * followed by the row's own buffers (the payload's bytes are the caller's memory, handed to the
 * socket as they are). A bind parameter, by contrast, is copied by `pg` twice (into its parameter
 * writer, then into the `Bind` message) after the driver joined it into the statement's buffer:
 * three copies of a 50 MiB payload in memory at once.
 *
 * This relies on `pg`'s custom query protocol (a "submittable": `submit`, `handleCopyInResponse`,
 * `handleCommandComplete`, `handleError`, `handleReadyForQuery`, the one `pg-copy-streams` uses) and
 * on `client.connection.stream`; a client without them (not `pg`'s, `pg-native`, pipeline mode) is
 * not {@link PostgresCopyClient}, and the driver writes through the `INSERT` instead.
 *
 * @module
 */
import type { PostgresPoolClient } from './pool';

/** The socket of a `pg` connection, as the COPY writer uses it. */
interface CopySocket {
  write(chunk: Uint8Array): boolean;
  once(event: 'drain' | 'close', listener: () => void): unknown;
  removeListener(event: 'drain' | 'close', listener: () => void): unknown;
  readonly destroyed?: boolean;
}

/** The `pg` connection a submittable is given (`client.connection`). */
interface CopyConnection {
  query(text: string): void;
  readonly stream: CopySocket;
}

/** A checked-out `pg` client that can run a `COPY … FROM STDIN` (see {@link isCopyClient}). */
export interface PostgresCopyClient extends PostgresPoolClient {
  readonly connection: CopyConnection;
  query(submittable: CopyFromStdin | CopyToStdout): unknown;
  query(config: Parameters<PostgresPoolClient['query']>[0]): ReturnType<PostgresPoolClient['query']>;
}

/**
 * Whether `client` is a `pg` client (not in pipeline mode) the driver can stream a COPY through.
 */
export function isCopyClient(client: PostgresPoolClient): client is PostgresCopyClient {
  const c = client as { connection?: { query?: unknown; stream?: { write?: unknown } }; pipeline?: unknown };
  return (
    typeof c.connection?.query === 'function' && typeof c.connection.stream?.write === 'function' && c.pipeline !== true
  );
}

/** One field of a binary COPY row: text, `integer`, `timestamptz`, or `bytea` given as its pieces. */
export type CopyField = string | number | Date | readonly Uint8Array[];

/** Microseconds between the Unix epoch and PostgreSQL's (2000-01-01 UTC), in milliseconds. */
const POSTGRES_EPOCH_MS = 946_684_800_000;
/**
 * The first `CopyData` message: the binary COPY file header (signature, flags: none, header
 * extension length: 0).
 */
const START = Buffer.from([
  0x64, 0, 0, 0, 23, 0x50, 0x47, 0x43, 0x4f, 0x50, 0x59, 0x0a, 0xff, 0x0d, 0x0a, 0x00, 0, 0, 0, 0, 0, 0, 0, 0,
]);
/** The last `CopyData` message (the file trailer: a field count of -1), then `CopyDone`. */
const END = Buffer.from([0x64, 0, 0, 0, 6, 0xff, 0xff, 0x63, 0, 0, 0, 4]);

/**
 * One row in the binary COPY format, as the buffers that make it up in order: the fields before
 * and after each `bytea` are encoded into small buffers, a `bytea`'s pieces are passed through.
 */
export function binaryCopyRow(fields: readonly CopyField[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  let head: number[] = [];
  const int16 = (n: number) => head.push((n >>> 8) & 0xff, n & 0xff);
  const int32 = (n: number) => head.push((n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
  int16(fields.length);
  for (const field of fields) {
    if (typeof field === 'string') {
      const bytes = Buffer.from(field, 'utf8');
      int32(bytes.length);
      for (const b of bytes) head.push(b);
    } else if (typeof field === 'number') {
      int32(4);
      int32(field);
    } else if (field instanceof Date) {
      const micros = Buffer.alloc(8);
      micros.writeBigInt64BE(BigInt(field.getTime() - POSTGRES_EPOCH_MS) * 1000n);
      int32(8);
      for (const b of micros) head.push(b);
    } else {
      int32(field.reduce((n, piece) => n + piece.byteLength, 0));
      out.push(Buffer.from(head));
      head = [];
      for (const piece of field) if (piece.byteLength > 0) out.push(piece);
    }
  }
  if (head.length > 0) out.push(Buffer.from(head));
  return out;
}

/**
 * Runs `text` (a `COPY … FROM STDIN (FORMAT binary)`) on `client`, sending `rows` (each from
 * {@link binaryCopyRow}), one `CopyData` message per row, waiting for the socket to drain between
 * rows. Resolves with the number of rows the server reports copied; rejects with the server's
 * error (nothing is copied then: a COPY is one statement) or the connection's.
 */
export function copyFromStdin(
  client: PostgresCopyClient,
  text: string,
  rows: readonly (readonly Uint8Array[])[],
): Promise<number> {
  const copy = new CopyFromStdin(text, rows);
  client.query(copy);
  return copy.done;
}

/**
 * A COPY statement as `pg` runs a custom query (a "submittable"): `pg` calls `submit` when the
 * query's turn comes and then one `handle*` method per message of the server's answer. `done`
 * settles once the statement is over: with the number of rows the server reports (`COPY n`), or
 * with the error (a server error, a broken connection, a `query_timeout`).
 */
abstract class CopyQuery {
  readonly text: string;
  readonly done: Promise<number>;
  #resolve!: (rows: number) => void;
  #reject!: (error: unknown) => void;
  #copied = Number.NaN;
  /** Whether the statement failed: no more messages of it are sent or read. */
  protected failed = false;

  constructor(text: string) {
    this.text = text;
    this.done = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
  }

  submit(connection: CopyConnection): void {
    connection.query(this.text);
  }

  handleCommandComplete(message: { text?: string }): void {
    this.#copied = Number(/^COPY (\d+)$/.exec(message.text ?? '')?.[1] ?? Number.NaN);
  }

  /** The statement is over (`pg` does not call this after an error): `problem` fails it still. */
  handleReadyForQuery(): void {
    const problem = this.problem();
    if (problem === undefined) this.#resolve(this.#copied);
    else this.handleError(problem);
  }

  handleError(error: unknown): void {
    this.failed = true;
    this.#reject(error);
  }

  /** What makes a statement the server completed a failure all the same (none by default). */
  protected problem(): Error | undefined {
    return undefined;
  }
}

/** `COPY … FROM STDIN`: sends the rows once the server asks for them. */
class CopyFromStdin extends CopyQuery {
  readonly #rows: readonly (readonly Uint8Array[])[];

  constructor(text: string, rows: readonly (readonly Uint8Array[])[]) {
    super(text);
    this.#rows = rows;
  }

  /** The server is ready for the rows. */
  handleCopyInResponse(connection: CopyConnection): void {
    const socket = connection.stream;
    this.#send(socket).catch((e: unknown) => {
      // Never leave the server waiting for rows: CopyFail ends the COPY (nothing written), and
      // the server's error then settles the query.
      if (!this.failed && socket.destroyed !== true) socket.write(copyFail(String(e)));
      else this.handleError(e);
    });
  }

  async #send(socket: CopySocket): Promise<void> {
    let flowing = socket.write(START);
    for (const row of this.#rows) {
      // Whole messages only: a message cut short would make the server read what follows (the
      // next statement) as its bytes. After an error the server ignores further COPY messages.
      if (this.failed || socket.destroyed === true) return;
      if (!flowing) await drained(socket);
      let length = 4;
      for (const piece of row) length += piece.byteLength;
      const header = Buffer.allocUnsafe(5);
      header[0] = 0x64; // 'd': CopyData
      header.writeUInt32BE(length, 1);
      flowing = socket.write(header);
      for (const piece of row) flowing = socket.write(piece);
    }
    if (this.failed || socket.destroyed === true) return;
    socket.write(END);
  }
}

/**
 * Runs `text` (a `COPY (…) TO STDOUT (FORMAT binary)`) on `client` and passes the bytes of every
 * non-null field of every row to `sink`, in order, as they arrive (views of `pg`'s receive buffer,
 * valid only during the call: copy them). Resolves with the number of rows the server reports.
 */
export function copyToStdout(
  client: PostgresCopyClient,
  text: string,
  sink: (chunk: Uint8Array) => void,
): Promise<number> {
  const copy = new CopyToStdout(text, sink);
  client.query(copy);
  return copy.done;
}

/** `COPY … TO STDOUT (FORMAT binary)`: reads the binary COPY format, chunk by chunk. */
class CopyToStdout extends CopyQuery {
  readonly #sink: (chunk: Uint8Array) => void;
  /** What the next bytes are: the file header, a tuple's field count, a field's length, its bytes. */
  #state: 'header' | 'extension' | 'count' | 'length' | 'field' | 'end' = 'header';
  /** Bytes of the current fixed-size item gathered so far (an item can straddle messages). */
  readonly #fixed = Buffer.alloc(19);
  #fixedHave = 0;
  /** Bytes still to come of the current field or header extension; fields left in the tuple. */
  #remaining = 0;
  #fields = 0;
  #error: Error | undefined;

  constructor(text: string, sink: (chunk: Uint8Array) => void) {
    super(text);
    this.#sink = sink;
  }

  handleCopyData(message: { chunk: Uint8Array }): void {
    if (this.#error !== undefined || this.failed) return;
    try {
      this.#read(message.chunk);
    } catch (e) {
      this.#error = e instanceof Error ? e : new Error(String(e));
    }
  }

  protected override problem(): Error | undefined {
    if (this.#error !== undefined) return this.#error;
    return this.#state === 'end' ? undefined : new Error('COPY TO STDOUT ended inside a row');
  }

  /** Gathers `size` bytes of a fixed-size item from `chunk` at `at`; the new `at`, or -1 if more are needed. */
  #gather(chunk: Uint8Array, at: number, size: number): number {
    const take = Math.min(size - this.#fixedHave, chunk.byteLength - at);
    this.#fixed.set(chunk.subarray(at, at + take), this.#fixedHave);
    this.#fixedHave += take;
    if (this.#fixedHave < size) return -1;
    this.#fixedHave = 0;
    return at + take;
  }

  #read(chunk: Uint8Array): void {
    let at = 0;
    while (at < chunk.byteLength) {
      switch (this.#state) {
        case 'header': {
          const next = this.#gather(chunk, at, 19);
          if (next < 0) return;
          if (!this.#fixed.subarray(0, 11).equals(START.subarray(5, 16))) throw new Error('not a binary COPY');
          this.#remaining = this.#fixed.readUInt32BE(15);
          this.#state = 'extension';
          at = next;
          break;
        }
        case 'extension': {
          const skip = Math.min(this.#remaining, chunk.byteLength - at);
          this.#remaining -= skip;
          at += skip;
          if (this.#remaining === 0) this.#state = 'count';
          break;
        }
        case 'count': {
          const next = this.#gather(chunk, at, 2);
          if (next < 0) return;
          const count = this.#fixed.readInt16BE(0);
          this.#fields = count;
          this.#state = count === -1 ? 'end' : count === 0 ? 'count' : 'length';
          at = next;
          break;
        }
        case 'length': {
          const next = this.#gather(chunk, at, 4);
          if (next < 0) return;
          const length = this.#fixed.readInt32BE(0);
          this.#fields -= 1;
          this.#remaining = Math.max(length, 0);
          this.#state = length > 0 ? 'field' : this.#fields > 0 ? 'length' : 'count';
          at = next;
          break;
        }
        case 'field': {
          const take = Math.min(this.#remaining, chunk.byteLength - at);
          this.#sink(chunk.subarray(at, at + take));
          this.#remaining -= take;
          at += take;
          if (this.#remaining === 0) this.#state = this.#fields > 0 ? 'length' : 'count';
          break;
        }
        case 'end':
          throw new Error('bytes after the end of a binary COPY');
      }
    }
  }
}

/** A `CopyFail` message carrying `reason`. */
function copyFail(reason: string): Buffer {
  const text = Buffer.from(`${reason.replaceAll('\0', ' ')}\0`, 'utf8');
  const message = Buffer.allocUnsafe(5 + text.length);
  message[0] = 0x66; // 'f': CopyFail
  message.writeUInt32BE(4 + text.length, 1);
  text.copy(message, 5);
  return message;
}

/** Resolves once `socket` drains or closes (a closed connection fails the query through `pg`). */
function drained(socket: CopySocket): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      socket.removeListener('drain', done);
      socket.removeListener('close', done);
      resolve();
    };
    socket.once('drain', done);
    socket.once('close', done);
  });
}
