/** Certificates for the TLS tests, made by `openssl` (P-256 keys, one day of validity). */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** `openssl req` arguments for a new P-256 key `<name>.key` and subject `CN=<name>`. */
function newKey(name: string): string[] {
  return [
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    `${name}.key`,
    '-subj',
    `/CN=${name}`,
  ];
}

/** A self-signed CA: `<name>.key`, `<name>.crt` in `dir`. */
export function makeCa(dir: string, name: string): { cert: string; key: string } {
  openssl(
    [
      'req',
      '-x509',
      ...newKey(name),
      '-out',
      `${name}.crt`,
      '-days',
      '1',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  );
  return { cert: path.join(dir, `${name}.crt`), key: path.join(dir, `${name}.key`) };
}

/**
 * A leaf certificate signed by `ca`: `<name>.key`, `<name>.crt`. `usage` `server` adds
 * `subjectAltName=IP:127.0.0.1,DNS:localhost`; `client` is for mutual TLS.
 */
export function makeLeaf(
  dir: string,
  name: string,
  ca: { cert: string; key: string },
  usage: 'server' | 'client',
): { cert: string; key: string } {
  openssl(['req', ...newKey(name), '-out', `${name}.csr`], dir);
  const ext = path.join(dir, `${name}.ext`);
  writeFileSync(
    ext,
    usage === 'server'
      ? 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n'
      : 'extendedKeyUsage=clientAuth\n',
  );
  openssl(
    [
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      ca.cert,
      '-CAkey',
      ca.key,
      '-set_serial',
      String(Date.now()),
      '-out',
      `${name}.crt`,
      '-days',
      '1',
      '-extfile',
      ext,
    ],
    dir,
  );
  return { cert: path.join(dir, `${name}.crt`), key: path.join(dir, `${name}.key`) };
}
