/**
 * The real `temporal` CLI as a codec client: `temporal workflow show --codec-endpoint <our server>`
 * against a private dev server, for a workflow whose input was offloaded to external storage;
 * also through a server protected by JWTs (`--codec-auth 'Bearer <jwt>'`).
 */
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { Client } from '@temporalio/client';
import { ExternalStorage } from '@temporalio/common';
import { FsStorageDriver } from '@x/storage-driver-fs';
import { type DevServer, startTemporalDevServer, TEMPORAL_BIN } from '@x/test-servers';
import { createBearerAuthorizer, type RunningCodecServer, startCodecServer } from '../src';
import { cleanup, makeTempDir, meta } from './helpers';
import { AUDIENCE, ISSUER, type JwksServer, mintToken, signingKey, startJwksServer } from './jwt';

const MARKER = 'decoded-for-the-temporal-cli';
const TOKEN = 'Bearer cli-token';

let dir: string;
let temporal: DevServer | undefined;
let codec: RunningCodecServer | undefined;
let driver: FsStorageDriver;
let jwks: JwksServer | undefined;
const requests: { url: string; namespace: string; authorization?: string; extra?: string; origin?: string }[] = [];

jest.setTimeout(90_000);

beforeAll(async () => {
  dir = await makeTempDir('codec-server-temporal-cli-');
  driver = new FsStorageDriver({ root: path.join(dir, 'payloads') });
  codec = await startCodecServer({
    port: 0,
    namespaces: { default: { storage: { drivers: [driver], payloadSizeThreshold: 1024 } } },
    authorize: (info) => {
      requests.push({
        url: info.request.url ?? '',
        namespace: info.namespace,
        authorization: info.authorization,
        extra: info.request.headers['x-extra'] as string | undefined,
        origin: info.origin,
      });
      return info.authorization === TOKEN ? true : { status: 401 };
    },
  });
  temporal = await startTemporalDevServer();
});

afterAll(async () => {
  await temporal?.close();
  await codec?.close();
  await jwks?.close();
  await cleanup(dir);
});

/** `temporal workflow show <workflowId> --output json` against the dev server, through the codec server at `codecUrl`. */
function workflowShow(workflowId: string, codecUrl: string, extra: string[]) {
  const server = temporal as DevServer;
  return temporalCli([
    'workflow',
    'show',
    '--workflow-id',
    workflowId,
    '--output',
    'json',
    '--address',
    server.address,
    '--namespace',
    'default',
    '--codec-endpoint',
    codecUrl,
    ...extra,
  ]);
}

function temporalCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(TEMPORAL_BIN, args, { timeout: 30_000 }, (error, stdout, stderr) => {
      const code =
        error === null
          ? 0
          : typeof (error as { code?: unknown }).code === 'number'
            ? (error as { code: number }).code
            : 1;
      resolve({ code, stdout, stderr });
    });
  });
}

it('temporal workflow show --codec-endpoint decodes an offloaded input through /decode', async () => {
  const server = temporal as DevServer;
  const client = new Client({
    connection: server.connection,
    dataConverter: { externalStorage: new ExternalStorage({ drivers: [driver], payloadSizeThreshold: 1024 }) },
  });
  const workflowId = `codec-cli-${Date.now()}`;
  const handle = await client.workflow.start('OffloadedInputWorkflow', {
    taskQueue: 'codec-server-temporal-cli',
    workflowId,
    args: [{ message: MARKER, filler: 'x'.repeat(4000) }],
  });
  const history = await handle.fetchHistory();
  const stored = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
  expect(stored && meta(stored as never, 'messageType')).toBe('temporal.api.sdk.v1.ExternalStorageReference');

  const codecUrl = (codec as RunningCodecServer).url;
  const shown = await workflowShow(workflowId, codecUrl, ['--codec-auth', TOKEN, '--codec-header', 'X-Extra=from-cli']);
  expect(shown.code).toBe(0);
  // One /decode request for the history, without preserveStorageRefs: the CLI wants values.
  expect(requests).toEqual([
    { url: '/decode', namespace: 'default', authorization: TOKEN, extra: 'from-cli', origin: undefined },
  ]);
  const started = JSON.parse(shown.stdout).events[0].workflowExecutionStartedEventAttributes;
  const [input] = started.input.payloads as { metadata: Record<string, string>; data: string }[];
  expect(Buffer.from(input?.metadata.encoding ?? '', 'base64').toString()).toBe('json/plain');
  expect(input?.metadata.messageType).toBeUndefined();
  expect(JSON.parse(Buffer.from(input?.data ?? '', 'base64').toString())).toMatchObject({ message: MARKER });

  // Without the credentials the auth hook answers 401; the CLI retries the history call until its
  // command timeout and fails, never printing the references.
  requests.length = 0;
  const denied = await workflowShow(workflowId, codecUrl, ['--command-timeout', '2s']);
  expect(denied.code).not.toBe(0);
  expect(denied.stderr).toContain('context deadline exceeded');
  expect(denied.stdout).not.toContain('"events"');
  expect(requests.length).toBeGreaterThan(0);
  expect(requests.every((r) => r.url === '/decode' && r.authorization === undefined)).toBe(true);
});

it('temporal workflow show --codec-auth "Bearer <jwt>" decodes through a JWT-protected codec server', async () => {
  const server = temporal as DevServer;
  const key = await signingKey('cli-key', 'RS256');
  jwks = await startJwksServer([key]);
  const protectedCodec = await startCodecServer({
    port: 0,
    namespaces: { default: { storage: { drivers: [driver], payloadSizeThreshold: 1024 } } },
    authorize: await createBearerAuthorizer({ jwt: { jwksUrl: jwks.url, issuer: ISSUER, audience: AUDIENCE } }),
  });
  try {
    const client = new Client({
      connection: server.connection,
      dataConverter: { externalStorage: new ExternalStorage({ drivers: [driver], payloadSizeThreshold: 1024 }) },
    });
    const workflowId = `codec-cli-jwt-${Date.now()}`;
    await client.workflow.start('OffloadedInputWorkflow', {
      taskQueue: 'codec-server-temporal-cli',
      workflowId,
      args: [{ message: `${MARKER}-jwt`, filler: 'x'.repeat(4000) }],
    });
    const show = (token: string, extra: string[] = []) =>
      workflowShow(workflowId, protectedCodec.url, ['--codec-auth', `Bearer ${token}`, ...extra]);
    const reader = await mintToken(key, { sub: 'operator@example.com', permissions: ['default:read'] });
    const shown = await show(reader);
    expect(shown.code).toBe(0);
    const [input] = JSON.parse(shown.stdout).events[0].workflowExecutionStartedEventAttributes.input.payloads as {
      data: string;
    }[];
    expect(JSON.parse(Buffer.from(input?.data ?? '', 'base64').toString())).toMatchObject({ message: `${MARKER}-jwt` });

    // A token for another namespace (403) or an expired one (401): the CLI never gets the values.
    for (const token of [
      await mintToken(key, { permissions: ['payments:read'] }),
      await mintToken(key, { permissions: ['default:read'], expiresIn: -60 }),
    ]) {
      const denied = await show(token, ['--command-timeout', '2s']);
      expect(denied.code).not.toBe(0);
      expect(denied.stdout).not.toContain(`${MARKER}-jwt`);
    }
  } finally {
    await protectedCodec.close();
  }
});
