/** The `x-storage` CLI run as a real child process (built output in dist/). */
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { encodeReferencePayload, payloadToJson } from '@x/storage-codec-server';
import type { Payload } from '@x/storage-driver-core';
import { FsStorageDriver } from '@x/storage-driver-fs';
import {
  BIN,
  body,
  cleanup,
  jsonPayload,
  makeTempDir,
  payloadsOf,
  request,
  runXStorage as run,
  serve,
} from './helpers';

let dir: string;
let root: string;
let config: string;
let driver: FsStorageDriver;

beforeAll(async () => {
  if (!existsSync(BIN)) {
    throw new Error(
      `${BIN} is missing: build first with "pnpm exec tsc -b packages/cli" (the test script runs tsc -b before jest)`,
    );
  }
  dir = await makeTempDir('x-storage-cli-');
  root = path.join(dir, 'payloads');
  driver = new FsStorageDriver({ root });
  config = path.join(dir, 'x-storage.json');
  await writeFile(
    config,
    JSON.stringify({
      server: { port: 0, cors: { origins: ['http://localhost:8233'] } },
      drivers: { fs: { module: '@x/storage-driver-fs', export: 'FsStorageDriver', options: { root, ttl: 3_600_000 } } },
      namespaces: { default: { drivers: ['fs'], payloadSizeThreshold: 1024 } },
    }),
  );
});

afterAll(async () => {
  await cleanup(dir);
});

async function storeBig(text: string): Promise<Payload> {
  const payload = jsonPayload(text);
  const [claim] = await driver.store({}, [payload]);
  return encodeReferencePayload({ driverName: 'fs', claimData: claim?.claimData ?? {}, sizeBytes: 100 });
}

it('prints help for the CLI and each command', async () => {
  const main = await run(['--help']);
  expect(main.code).toBe(0);
  expect(main.stdout).toMatch(/Usage: x-storage <command>/);
  for (const command of ['serve', 'get', 'sweep']) {
    const help = await run([command, '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain(`Usage: x-storage ${command}`);
  }
  // The usage synopsis names every option of sweep, as the README does.
  const synopsis = (await run(['sweep', '--help'])).stdout.split('\n\n')[0] ?? '';
  for (const option of ['--driver', '--older-than', '--dry-run', '--limit', '--prefix', '--json']) {
    expect(synopsis).toContain(option);
  }
  const none = await run([]);
  expect(none.code).toBe(2);
  const unknown = await run(['frobnicate']);
  expect(unknown.code).toBe(2);
  expect(unknown.stderr).toContain('unknown command "frobnicate"');
});

it('rejects bad command lines with a usage error (exit 2) and accepts --name=value', async () => {
  const cases: [string[], string][] = [
    [['serve', '--frob'], "Unknown option '--frob'"],
    [['serve', '-x'], "Unknown option '-x'"],
    [['serve', '--config'], "Option '--config <value>' argument missing"],
    [['serve', '--port', '--config', config], "Option '--port' argument is ambiguous"],
    [['sweep', '--json=yes', '--config', config], "Option '--json' does not take an argument"],
    [['serve', '--config', config, '--config', config], '--config given more than once'],
    [['serve', 'extra', '--config', config], 'serve takes no arguments, got extra'],
    [['serve', '--config', config, '--port', '-1'], "Option '--port' argument is ambiguous"],
    [['serve', '--config', config, '--port=65536x'], '--port must be an integer >= 0, got "65536x"'],
    [['sweep', '--config', config, '--limit', '0'], '--limit must be an integer >= 1, got "0"'],
    [['get', '--config', config], 'get takes exactly one <reference>'],
  ];
  for (const [args, message] of cases) {
    const result = await run(args);
    expect({ args, code: result.code }).toEqual({ args, code: 2 });
    expect(result.stderr).toContain(`x-storage ${args[0]}: ${message}`);
    expect(result.stderr).toContain(`Run "x-storage ${args[0]} --help" for usage.`);
  }
  // -h anywhere on the line, --name=value, and repeatable --driver.
  expect((await run(['get', 'x', '-h'])).stdout).toContain('Usage: x-storage get');
  const equals = await run(['sweep', `--config=${config}`, '--driver=fs', '--driver', 'fs', '--dry-run']);
  expect(equals.code).toBe(0);
  expect(equals.stdout.match(/^fs \(fs, local\.fsdriver\): would remove 0 of 0 expired payloads/gm)).toHaveLength(2);
});

it('reports bad configuration clearly', async () => {
  const cases: [unknown, RegExp][] = [
    [{ drivers: {} }, /config\.drivers: must be an object with at least one driver/],
    [
      { drivers: { fs: { module: '@x/storage-driver-fs', export: 'FsStorageDriver', options: { root } } }, sever: {} },
      /config\.sever: unknown field/,
    ],
    [{ drivers: { fs: { module: '@x/nope' } } }, /config\.drivers\.fs\.module: cannot find module "@x\/nope"/],
    [
      { drivers: { fs: { module: '@x/storage-driver-fs', export: 'Nope' } } },
      /config\.drivers\.fs\.export: .* no exported class "Nope"/,
    ],
    [
      { drivers: { fs: { module: '@x/storage-driver-fs', export: 'FsStorageDriver', options: {} } } },
      /config\.drivers\.fs: new FsStorageDriver\(options\) failed: .*root/,
    ],
    [
      {
        drivers: { fs: { module: '@x/storage-driver-fs', export: 'FsStorageDriver', options: { root } } },
        namespaces: { default: { drivers: ['s3'] } },
      },
      /config\.namespaces\.default\.drivers\[0\]: unknown driver id "s3" \(known: fs\)/,
    ],
    [
      {
        drivers: { fs: { module: '@x/storage-driver-fs', export: 'FsStorageDriver', options: { root } } },
        server: { cors: { origins: ['localhost'] } },
      },
      /config\.server\.cors\.origins/,
    ],
    [
      { drivers: { pg: { module: '@x/storage-driver-postgres', export: 'PostgresStorageDriver', factory: 'nope' } } },
      /config\.drivers\.pg\.factory: PostgresStorageDriver has no static function "nope" \(static functions: .*fromConnectionString/,
    ],
    [
      {
        drivers: {
          pg: { module: '@x/storage-driver-postgres', export: 'PostgresStorageDriver', factory: 'call', args: [] },
        },
      },
      /config\.drivers\.pg\.factory: .*no static function "call"/,
    ],
    [
      {
        drivers: {
          pg: {
            module: '@x/storage-driver-postgres',
            export: 'PostgresStorageDriver',
            factory: 'fromConnectionString',
            args: 'x',
          },
        },
      },
      /config\.drivers\.pg\.args: must be an array/,
    ],
    [
      { drivers: { pg: { module: '@x/storage-driver-postgres', export: 'PostgresStorageDriver', args: [] } } },
      /config\.drivers\.pg\.args: only allowed with "factory"/,
    ],
    [
      {
        drivers: {
          pg: {
            module: '@x/storage-driver-postgres',
            export: 'PostgresStorageDriver',
            factory: 'fromConnectionString',
            options: {},
          },
        },
      },
      /config\.drivers\.pg\.options: not allowed with "factory"/,
    ],
    [
      {
        drivers: {
          pg: {
            module: '@x/storage-driver-postgres',
            export: 'PostgresStorageDriver',
            factory: 'fromConnectionString',
            args: ['not a url'],
          },
        },
      },
      /config\.drivers\.pg: PostgresStorageDriver\.fromConnectionString\(\.\.\.args\) failed: connectionString must be a URL/,
    ],
  ];
  for (const [content, message] of cases) {
    const file = path.join(dir, 'bad.json');
    await writeFile(file, JSON.stringify(content));
    const result = await run(['sweep', '--config', file]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  }
  await writeFile(path.join(dir, 'broken.json'), '{"drivers": ');
  const broken = await run(['serve', '--config', path.join(dir, 'broken.json')]);
  expect(broken.code).toBe(2);
  expect(broken.stderr).toMatch(/is not valid JSON/);
  expect((await run(['serve'])).stderr).toContain('--config <file> is required');
});

it('serves the codec server until SIGTERM', async () => {
  const served = await serve(['--config', config, '--port', '0']);
  try {
    const [ref] = payloadsOf(await request(served.url, '/encode', body(jsonPayload('s'.repeat(2000)))));
    const [back] = payloadsOf(
      await request(served.url, '/decode', body(ref as Payload), { headers: { Origin: 'http://localhost:8233' } }),
    );
    expect(Buffer.from((back as Payload).data ?? []).toString()).toBe(JSON.stringify('s'.repeat(2000)));
  } finally {
    expect(await served.stop()).toBe(0);
  }
});

it('gets the payload of a reference given inline, as a file, on stdin, or as the reference message', async () => {
  const ref = await storeBig('hello from storage');
  const json = JSON.stringify(payloadToJson(ref));
  const inline = await run(['get', json, '--config', config]);
  expect(inline).toMatchObject({ code: 0, stdout: '"hello from storage"' });
  const file = path.join(dir, 'ref.json');
  await writeFile(file, json);
  expect((await run(['get', file, '--config', config])).stdout).toBe('"hello from storage"');
  expect((await run(['get', '-', '--config', config], json)).stdout).toBe('"hello from storage"');
  const message = Buffer.from(ref.data ?? []).toString();
  expect((await run(['get', message, '--config', config])).stdout).toBe('"hello from storage"');
  const out = path.join(dir, 'out.bin');
  const saved = await run(['get', file, '--config', config, '--out', out]);
  expect(saved.code).toBe(0);
  expect(await readFile(out, 'utf8')).toBe('"hello from storage"');
  const full = await run(['get', file, '--config', config, '--payload']);
  expect(JSON.parse(full.stdout).metadata.encoding).toBe(Buffer.from('json/plain').toString('base64'));
});

it('fails get clearly for bad references and storage failures', async () => {
  const notRef = await run(['get', JSON.stringify(payloadToJson(jsonPayload('x'))), '--config', config]);
  expect(notRef.code).toBe(2);
  expect(notRef.stderr).toContain('not an External Storage reference');
  const missingFile = await run(['get', path.join(dir, 'nope.json'), '--config', config]);
  expect(missingFile.code).toBe(2);
  expect(missingFile.stderr).toContain('cannot read reference file');
  const ref = await storeBig('will vanish');
  await driver.deleteExpired({ olderThan: 0 });
  const gone = await run(['get', JSON.stringify(payloadToJson(ref)), '--config', config]);
  expect(gone.code).toBe(1);
  expect(gone.stderr).toMatch(/E_NOT_FOUND/);
});

it('sweeps fs drivers (dry run, then for real) and skips drivers without deleteExpired (JS config)', async () => {
  await storeBig('old payload');
  const dry = await run(['sweep', '--config', config, '--older-than', '0', '--dry-run']);
  expect(dry.code).toBe(0);
  expect(dry.stdout).toMatch(/^fs \(fs, local\.fsdriver\): would remove 1 of 1 expired payload \(\d+ B\)$/m);
  const real = await run(['sweep', '--config', config, '--older-than', '0', '--json']);
  expect(real.code).toBe(0);
  const [outcome] = JSON.parse(real.stdout);
  expect(outcome).toMatchObject({
    id: 'fs',
    driverName: 'fs',
    driverType: 'local.fsdriver',
    status: 'done',
    dryRun: false,
    result: { scanned: 1, removed: 1, more: false, errors: [] },
  });
  expect(outcome.result.removedBytes).toBeGreaterThan(0);
  expect((await run(['sweep', '--config', config, '--older-than', '0'])).stdout).toMatch(
    /removed 0 of 0 expired payloads/,
  );

  // A plain StorageDriver (no capabilities) is skipped; a lifecycle driver without a ttl needs --older-than.
  const js = path.join(dir, 'x-storage.config.mjs');
  await writeFile(
    js,
    `import { InMemoryStorageDriver } from ${JSON.stringify(require.resolve('@x/storage-driver-test-suite').replace(/src\/index\.ts$/, 'dist/index.js'))};
const plain = { name: 'plain', type: 'acme.plain', store: async () => [], retrieve: async () => [] };
export default async () => ({ drivers: { plain, memory: new InMemoryStorageDriver({ name: 'memory' }) } });
`,
  );
  const js_ = await run(['sweep', '--config', js]);
  expect(js_.code).toBe(1);
  expect(js_.stdout).toMatch(
    /^plain \(plain, acme\.plain\): skipped: the driver declares no deleteExpired capability$/m,
  );
  expect(js_.stdout).toMatch(
    /^memory \(memory, memory\.inmemorydriver\): failed: E_CONFIG deleteExpired needs olderThan/m,
  );
  expect((await run(['sweep', '--config', js, '--older-than', '1h'])).code).toBe(0);
  const badDuration = await run(['sweep', '--config', config, '--older-than', 'soon']);
  expect(badDuration.code).toBe(2);
  expect(badDuration.stderr).toContain('not a duration');
});
