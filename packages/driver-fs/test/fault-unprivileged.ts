/**
 * Runs FsStorageDriver calls in a child process that drops its privileges to `nobody` (setgid +
 * setuid) after loading the driver's sources: root bypasses permission bits, so EACCES can only
 * be observed by an unprivileged process. The child transpiles the TypeScript sources itself
 * (the `typescript` compiler the repository already has), so it runs exactly the code under test.
 */
import { execFile, execFileSync } from 'node:child_process';
import * as path from 'node:path';

const REPO = path.resolve(__dirname, '../../..');

/** One call made by the child: store JSON payloads of these texts, or retrieve these claims. */
export type UnprivilegedCall = { store: string[] } | { retrieve: Record<string, string>[] };

/** What one call did: its claims or payload texts, or the StorageDriverError it threw. */
export type UnprivilegedResult =
  | { ok: true; claims?: Record<string, string>[]; texts?: string[] }
  | { ok: false; code: string; retryable: boolean; message: string };

/** uid and gid of `nobody`. */
export function nobody(): { uid: number; gid: number } {
  const id = (flag: string) => Number(execFileSync('id', [flag, 'nobody'], { encoding: 'utf8' }).trim());
  return { uid: id('-u'), gid: id('-g') };
}

/** The child's program (plain JavaScript, run with `node -e`). */
const CHILD = `
const Module = require('node:module');
const fs = require('node:fs');
const path = require('node:path');
const [repo, tsPath, root, uid, gid, callsJson] = process.argv.slice(1);
const ts = require(tsPath);
require.extensions['.ts'] = (module, filename) => {
  const out = ts.transpileModule(fs.readFileSync(filename, 'utf8'), {
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
    fileName: filename,
  });
  module._compile(out.outputText, filename);
};
const core = path.join(repo, 'packages/core/src/index.ts');
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  return resolve.call(this, request === '@x/storage-driver-core' ? core : request, ...rest);
};
const { FsStorageDriver } = require(path.join(repo, 'packages/driver-fs/src/index.ts'));
const { StorageDriverClaim } = require(core);
process.setgid(Number(gid));
process.setuid(Number(uid));
(async () => {
  const driver = new FsStorageDriver({ root });
  const results = [];
  for (const call of JSON.parse(callsJson)) {
    try {
      if (call.store) {
        const payloads = call.store.map((t) => ({
          metadata: { encoding: new TextEncoder().encode('json/plain') },
          data: new TextEncoder().encode(JSON.stringify(t)),
        }));
        results.push({ ok: true, claims: (await driver.store({}, payloads)).map((c) => c.claimData) });
      } else {
        const payloads = await driver.retrieve({}, call.retrieve.map((d) => new StorageDriverClaim(d)));
        results.push({ ok: true, texts: payloads.map((p) => new TextDecoder().decode(p.data)) });
      }
    } catch (e) {
      if (typeof e?.code !== 'string' || typeof e?.retryable !== 'boolean') throw e;
      results.push({ ok: false, code: e.code, retryable: e.retryable, message: String(e.message) });
    }
  }
  process.stdout.write(JSON.stringify({ uid: process.getuid(), results }));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
`;

/**
 * Runs `calls` in order against `new FsStorageDriver({ root })` in a child process running as
 * `nobody`; resolves to each call's result. Fails if the child did not run unprivileged.
 */
export async function runAsNobody(root: string, calls: UnprivilegedCall[]): Promise<UnprivilegedResult[]> {
  const { uid, gid } = nobody();
  const args = [
    '-e',
    CHILD,
    REPO,
    require.resolve('typescript'),
    root,
    String(uid),
    String(gid),
    JSON.stringify(calls),
  ];
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, args, { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 }, (error, out, err) => {
      if (error) reject(new Error(`unprivileged child failed: ${error.message}\n${err}`));
      else resolve(out);
    });
  });
  const parsed = JSON.parse(stdout) as { uid: number; results: UnprivilegedResult[] };
  if (parsed.uid !== uid) throw new Error(`the child ran as uid ${parsed.uid}, not nobody (${uid})`);
  return parsed.results;
}
