/**
 * Test guard: every TCP connection a test opens must go to loopback. A client that falls back to
 * a cloud default (GCE metadata server, a real storage host, telemetry) fails the test by name
 * instead of sending traffic off this machine.
 */
import { Socket } from 'node:net';

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|localhost|::1|\[::1\])$/;

type Connect = (...args: unknown[]) => Socket;

function hostOf(args: unknown[]): string | undefined {
  const [first, second] = args;
  if (Array.isArray(first)) return hostOf(first); // internal normalized form: [options, callback]
  if (typeof first === 'object' && first !== null) {
    const o = first as { host?: unknown; path?: unknown };
    if (typeof o.path === 'string') return undefined; // unix socket
    return typeof o.host === 'string' ? o.host : 'localhost';
  }
  if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) {
    return typeof second === 'string' ? second : 'localhost';
  }
  return undefined; // a unix socket path
}

/** Installs the guard for the calling test file (beforeAll/afterAll); returns the refused hosts. */
export function loopbackOnly(): { refused: string[] } {
  const refused: string[] = [];
  const original = Socket.prototype.connect as unknown as Connect;
  beforeAll(() => {
    (Socket.prototype as unknown as { connect: Connect }).connect = function (this: Socket, ...args: unknown[]) {
      const host = hostOf(args);
      if (host !== undefined && !LOOPBACK.test(host)) {
        refused.push(host);
        throw new Error(`refused a connection to ${host}: tests talk to loopback only`);
      }
      return original.apply(this, args);
    };
  });
  afterAll(() => {
    (Socket.prototype as unknown as { connect: Connect }).connect = original;
  });
  return { refused };
}
