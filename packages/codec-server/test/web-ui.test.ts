/**
 * A real browser: the Temporal dev server's Web UI, pointed at our codec server with
 * `--ui-codec-endpoint`, shows the decoded input of a workflow whose input was offloaded to
 * external storage. Headless Chromium driven by playwright-core.
 *
 * The codec server requires a JWT (verified against a JWKS endpoint the test serves). A UI with
 * a login forwards the signed-in user's access token (`TEMPORAL_CODEC_PASS_ACCESS_TOKEN=true`);
 * the dev server's UI has no login, so the browser injects the user's token into the UI's codec
 * requests instead (`page.route`), which is what reaches the codec server either way.
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { Client, type Connection } from '@temporalio/client';
import { ExternalStorage } from '@temporalio/common';
import { FsStorageDriver } from '@x/storage-driver-fs';
import { type DevServer, freePort, startTemporalDevServer } from '@x/test-servers';
import { type Browser, chromium, type Page } from 'playwright-core';
import { type CodecServerAuthorize, createBearerAuthorizer, type RunningCodecServer, startCodecServer } from '../src';
import { cleanup, makeTempDir, meta, post } from './helpers';
import { AUDIENCE, ISSUER, type JwksServer, mintToken, signingKey, startJwksServer } from './jwt';

const CHROMIUM = process.env.XSTORAGE_CHROMIUM ?? '/usr/bin/chromium';
const REPO_ROOT = path.resolve(__dirname, '../../..');
const ARTIFACT = path.join(REPO_ROOT, '.tmp/artifacts/codec-server-web-ui.png');
const README_IMAGE = path.join(__dirname, '../docs/web-ui.png');
const MARKER = 'decoded-by-x-storage-codec-server';

let dir: string;
let temporal: DevServer | undefined;
let codec: RunningCodecServer | undefined;
let browser: Browser | undefined;
let connection: Connection | undefined;
let jwks: JwksServer | undefined;
/** The signed-in user's access token: may read the two namespaces the test uses. */
let userToken = '';
const requests: {
  path: string;
  namespace: string | undefined;
  origin: string | undefined;
  authorization?: string | undefined;
  allowed?: boolean;
}[] = [];

jest.setTimeout(120_000);

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`chromium not found at ${CHROMIUM} (Debian package "chromium")`);
  dir = await makeTempDir('codec-server-web-ui-');
  const driver = new FsStorageDriver({ root: path.join(dir, 'payloads') });
  const uiPort = await freePort();
  const uiOrigin = `http://127.0.0.1:${uiPort}`;
  const key = await signingKey('ui-key');
  jwks = await startJwksServer([key]);
  userToken = await mintToken(key, { sub: 'ui-user@example.com', permissions: ['default:read', 'inline:read'] });
  const jwtAuth: CodecServerAuthorize = await createBearerAuthorizer({
    jwt: { jwksUrl: jwks.url, issuer: ISSUER, audience: AUDIENCE },
  });
  codec = await startCodecServer({
    port: 0,
    namespaces: {
      // As the issue specifies: the UI asks /decode to preserve references and downloads via /download.
      default: { storage: { drivers: [driver], payloadSizeThreshold: 1024 } },
      // Opt-in: small references are shown decoded inline.
      inline: { storage: { drivers: [driver], payloadSizeThreshold: 1024 }, inlineReferencesBelow: 1024 * 1024 },
    },
    cors: { origins: [uiOrigin, `http://localhost:${uiPort}`] },
    authorize: async (info) => {
      const decision = await jwtAuth(info);
      requests.push({
        path: info.request.url ?? '',
        namespace: info.request.headers['x-namespace'] as string,
        origin: info.origin,
        authorization: info.authorization,
        allowed: typeof decision === 'object' && 'allow' in decision && decision.allow,
      });
      return decision;
    },
  });
  temporal = await startTemporalDevServer({ uiCodecEndpoint: codec.url, uiPort, namespaces: ['inline'] });
  connection = temporal.connection;
  (globalThis as { uiPort?: number }).uiPort = uiPort;
  (globalThis as { driver?: FsStorageDriver }).driver = driver;
});

afterAll(async () => {
  await browser?.close().catch(() => {});
  await temporal?.close();
  await codec?.close();
  await jwks?.close();
  await cleanup(dir);
});

async function startOffloaded(namespace: string, workflowId: string, input: unknown): Promise<string> {
  const driver = (globalThis as { driver?: FsStorageDriver }).driver as FsStorageDriver;
  const client = new Client({
    connection: connection as Connection,
    namespace,
    dataConverter: { externalStorage: new ExternalStorage({ drivers: [driver], payloadSizeThreshold: 1024 }) },
  });
  const handle = await client.workflow.start('OffloadedInputWorkflow', {
    taskQueue: 'codec-server-web-ui',
    workflowId,
    args: [input],
  });
  // The input really is a reference in history.
  const history = await handle.fetchHistory();
  const stored = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
  expect(stored && meta(stored as never, 'messageType')).toBe('temporal.api.sdk.v1.ExternalStorageReference');
  return handle.firstExecutionRunId;
}

/** A page whose requests to the codec server carry the user's access token. */
async function signedInPage(options: Parameters<Browser['newPage']>[0]): Promise<Page> {
  const page = await (browser as Browser).newPage(options);
  const codecUrl = (codec as RunningCodecServer).url;
  await page.route(`${codecUrl}/**`, (route) =>
    route.continue({ headers: { ...route.request().headers(), authorization: `Bearer ${userToken}` } }),
  );
  return page;
}

async function pageText(page: Page): Promise<string> {
  // biome-ignore lint/performance/useDomNodeTextContent: Playwright's locator API, not a DOM node; innerText is the rendered text.
  return page.locator('body').innerText();
}

async function waitForText(page: Page, text: string): Promise<void> {
  try {
    // A locator, not waitForFunction: the UI's CSP forbids the eval that function polling needs.
    await page.getByText(text).first().waitFor({ timeout: 30_000 });
  } catch (error) {
    await mkdir(path.dirname(ARTIFACT), { recursive: true });
    await page.screenshot({ path: ARTIFACT.replace(/\.png$/, '-failure.png'), fullPage: true });
    throw new Error(
      `"${text}" never appeared; codec requests: ${JSON.stringify(requests)}\n${(await pageText(page)).slice(0, 2000)}`,
      {
        cause: error,
      },
    );
  }
}

describe('Temporal Web UI with --ui-codec-endpoint', () => {
  beforeAll(async () => {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  });

  it('shows the reference and downloads the decoded input through /download', async () => {
    const uiPort = (globalThis as { uiPort?: number }).uiPort as number;
    const workflowId = `codec-ui-download-${Date.now()}`;
    const runId = await startOffloaded('default', workflowId, {
      message: `${MARKER}-download`,
      filler: 'x'.repeat(4000),
    });
    const page = await signedInPage({
      viewport: { width: 1280, height: 900 },
      acceptDownloads: true,
      bypassCSP: true,
    });
    await page.goto(`http://127.0.0.1:${uiPort}/namespaces/default/workflows/${workflowId}/${runId}/history`);
    await waitForText(page, '"driverName": "fs"');
    const text = await pageText(page);
    expect(text).not.toContain(`${MARKER}-download`); // preserved: the UI shows the reference
    expect(requests).toContainEqual(
      expect.objectContaining({ path: '/decode?preserveStorageRefs=true', namespace: 'default' }),
    );

    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page
        .getByRole('button', { name: /\d(\.\d+)? KB/ })
        .first()
        .click(),
    ]);
    const file = await download.path();
    const saved = JSON.parse(await readFile(file, 'utf8')) as { message?: string };
    expect(saved.message).toBe(`${MARKER}-download`);
    expect(requests).toContainEqual(
      expect.objectContaining({ path: '/download?preserveStorageRefs=true', namespace: 'default' }),
    );
    // Every codec request of the UI carried the user's token and was allowed; without it, 401.
    expect(requests.every((r) => r.authorization === `Bearer ${userToken}` && r.allowed)).toBe(true);
    const anonymous = await post((codec as RunningCodecServer).url, '/download', { payloads: [] });
    expect(anonymous.status).toBe(401);
    await page.close();
  });

  it('shows the decoded input inline for a namespace with inlineReferencesBelow', async () => {
    const uiPort = (globalThis as { uiPort?: number }).uiPort as number;
    const workflowId = `codec-ui-inline-${Date.now()}`;
    const runId = await startOffloaded('inline', workflowId, { message: MARKER, filler: 'x'.repeat(4000) });
    const page = await signedInPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`http://127.0.0.1:${uiPort}/namespaces/inline/workflows/${workflowId}/${runId}/history`);
    await waitForText(page, MARKER);
    expect(await pageText(page)).toContain(`"message": "${MARKER}"`);
    expect(requests).toContainEqual(
      expect.objectContaining({ path: '/decode?preserveStorageRefs=true', namespace: 'inline' }),
    );
    expect(requests.every((r) => r.origin === undefined || r.origin === `http://127.0.0.1:${uiPort}`)).toBe(true);

    await mkdir(path.dirname(ARTIFACT), { recursive: true });
    await page.screenshot({ path: ARTIFACT });
    // The README's picture changes only on request (UPDATE_README_SCREENSHOT=1), not on every run.
    if (process.env.UPDATE_README_SCREENSHOT === '1') {
      await mkdir(path.dirname(README_IMAGE), { recursive: true });
      await copyFile(ARTIFACT, README_IMAGE);
    }
    await page.close();
  });
});
