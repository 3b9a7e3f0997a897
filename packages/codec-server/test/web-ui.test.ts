/**
 * A real browser: the Temporal dev server's Web UI, pointed at our codec server with
 * `--ui-codec-endpoint`, shows the decoded input of a workflow whose input was offloaded to
 * external storage. Headless Chromium driven by playwright-core.
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { Client, type Connection } from '@temporalio/client';
import { ExternalStorage } from '@temporalio/common';
import { type DevServer, startTemporalDevServer } from '@x/e2e';
import { FsStorageDriver } from '@x/storage-driver-fs';
import { type Browser, chromium, type Page } from 'playwright-core';
import { type RunningCodecServer, startCodecServer } from '../src';
import { cleanup, freePort, makeTempDir, meta } from './helpers';

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
const requests: { path: string; namespace: string | undefined; origin: string | undefined }[] = [];

jest.setTimeout(120_000);

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`chromium not found at ${CHROMIUM} (Debian package "chromium")`);
  dir = await makeTempDir('codec-server-web-ui-');
  const driver = new FsStorageDriver({ root: path.join(dir, 'payloads') });
  const uiPort = await freePort();
  const uiOrigin = `http://127.0.0.1:${uiPort}`;
  codec = await startCodecServer({
    port: 0,
    namespaces: {
      // As the issue specifies: the UI asks /decode to preserve references and downloads via /download.
      default: { storage: { drivers: [driver], payloadSizeThreshold: 1024 } },
      // Opt-in: small references are shown decoded inline.
      inline: { storage: { drivers: [driver], payloadSizeThreshold: 1024 }, inlineReferencesBelow: 1024 * 1024 },
    },
    cors: { origins: [uiOrigin, `http://localhost:${uiPort}`] },
    authorize: (info) => {
      requests.push({
        path: info.request.url ?? '',
        namespace: info.request.headers['x-namespace'] as string,
        origin: info.origin,
      });
      return true;
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
    const page = await (browser as Browser).newPage({
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
    await page.close();
  });

  it('shows the decoded input inline for a namespace with inlineReferencesBelow', async () => {
    const uiPort = (globalThis as { uiPort?: number }).uiPort as number;
    const workflowId = `codec-ui-inline-${Date.now()}`;
    const runId = await startOffloaded('inline', workflowId, { message: MARKER, filler: 'x'.repeat(4000) });
    const page = await (browser as Browser).newPage({ viewport: { width: 1280, height: 900 } });
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
