/**
 * Security review of the `x-storage` CLI output: a config file with a JSON syntax error next to a
 * connection string must not have any of that string echoed to stderr (V8's `JSON.parse` message
 * quotes the text around the error). Auth, CORS and body limits: the codec-server package's
 * handler.test.ts; driver failures without the password: cli-postgres.test.ts.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { runXStorage } from './helpers';

const SECRET = 'Pw-7c1e9b2dQx';
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'x-storage-security-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

it('a JSON syntax error next to a connection string echoes none of it', async () => {
  const url = `postgres://xstorage:${SECRET}@127.0.0.1:5442/xstorage`;
  const cases = [
    // A trailing comma right after a secret: V8 quotes the ~10 characters before the error.
    `{"drivers": {"pg": {"module": "@x/storage-driver-postgres", "factory": "fromConnectionString", "args": ["${url}", {"password": "${SECRET}",}]}}}`,
    `{"drivers": {"r": {"module": "@x/storage-driver-redis", "factory": "fromUrl", "args": ["redis://:${SECRET}",]}}}`,
    `{"drivers": {"pg": {"args": ["${url}"}}}`,
    // V8 quotes context on both sides of an error in the middle of the file, and ends the excerpt
    // with `...` (`..."Pw-7c1e9b2dQx", tru, "f"... is not valid JSON`).
    `{"drivers": {"r": {"module": "@x/storage-driver-redis", "factory": "fromUrl", "args": ["${SECRET}", tru, "further text after the error"]}}}`,
    // Or only after it, when the error is near the start (`"postgres:/"... is not valid JSON`).
    `${url} {"drivers": {}}`,
  ];
  for (const [i, text] of cases.entries()) {
    const file = path.join(dir, `broken-${i}.json`);
    await writeFile(file, text);
    const result = await runXStorage(['sweep', '--config', file]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/is not valid JSON/);
    const output = `${result.stdout}${result.stderr}`;
    for (let n = 0; n + 4 <= SECRET.length; n++) expect(output).not.toContain(SECRET.slice(n, n + 4));
  }
});
