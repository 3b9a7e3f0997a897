/**
 * A private PostgreSQL (`initdb` + `pg_ctl` of the system's PostgreSQL 15) in a temp directory on
 * a free loopback port, run as the `postgres` user, for tests that stop, crash or restart a server.
 *
 * @module
 */
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort } from './ports';

/** PostgreSQL's server binaries (`initdb`, `pg_ctl`), as the system package installs them. */
const POSTGRES_BIN = '/usr/lib/postgresql/15/bin';

/** A private PostgreSQL server (trust authentication, user `postgres`, database `postgres`). */
export interface PrivatePostgres {
  /** Its loopback port. */
  readonly port: number;
  /** Connection string (`postgres://postgres@127.0.0.1:<port>/postgres`). */
  readonly url: string;
  /** Stops it: `fast` (a clean shutdown) or `immediate` (a crash: no checkpoint). */
  stop(mode?: 'fast' | 'immediate'): void;
  /** Starts it again on the same port and data directory (after `stop`). */
  start(): void;
  /** Stops it if it runs and removes its directory. */
  destroy(): void;
}

/**
 * Creates a cluster (`initdb`) in a fresh temp directory and starts it on a free loopback port
 * (`fsync=off`, at most 20 connections, its socket in that directory). Needs root or the
 * `postgres` user (the tools run as `postgres` through `runuser`). Always `destroy()` it.
 */
export async function startPostgres(): Promise<PrivatePostgres> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pg-private-'));
  const data = path.join(dir, 'data');
  const asPostgres = (tool: string, args: string[]): void => {
    const cmd = os.userInfo().username === 'postgres' ? path.join(POSTGRES_BIN, tool) : 'runuser';
    const full = cmd === 'runuser' ? ['-u', 'postgres', '--', path.join(POSTGRES_BIN, tool), ...args] : args;
    execFileSync(cmd, full, { stdio: 'ignore', timeout: 60_000 });
  };
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  chownSync(dir, uid, gid);
  const port = await freePort();
  asPostgres('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C.UTF-8', '-N']);
  const start = (): void => {
    const options = `-p ${port} -c listen_addresses=127.0.0.1 -k ${dir} -c fsync=off -c max_connections=20`;
    asPostgres('pg_ctl', ['-D', data, '-l', path.join(dir, 'server.log'), '-w', '-t', '30', '-o', options, 'start']);
  };
  const stop = (mode: 'fast' | 'immediate' = 'fast'): void => {
    asPostgres('pg_ctl', ['-D', data, '-m', mode, '-w', 'stop']);
  };
  start();
  return {
    port,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    stop,
    start,
    destroy: () => {
      try {
        if (existsSync(path.join(data, 'postmaster.pid'))) stop('immediate');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
