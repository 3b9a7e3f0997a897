/**
 * The backend clients' own auto-instrumentations (ioredis, pg, the AWS SDK) nest their spans under
 * the driver's span: run in a plain Node.js process set up as an application sets up OpenTelemetry
 * (`test/fixtures/client-spans.cjs`, against the built packages), because the instrumentations
 * hook `require`, which jest's module system bypasses.
 */
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from '@jest/globals';
import { StorageAttributes as A } from '../src';

interface ExportedSpan {
  name: string;
  scope: string;
  traceId: string;
  spanId: string;
  parentId?: string;
  attributes: Record<string, unknown>;
}

const FIXTURE = path.join(__dirname, 'fixtures', 'client-spans.cjs');

/** The client library's instrumentation scope per driver kind. */
const CLIENT_SCOPES = {
  redis: '@opentelemetry/instrumentation-ioredis',
  'redis-cluster': '@opentelemetry/instrumentation-ioredis',
  postgres: '@opentelemetry/instrumentation-pg',
  s3: '@opentelemetry/instrumentation-aws-sdk',
} as const;

/** Client spans expected under the store span and under the retrieve span. */
const COMMANDS: Record<keyof typeof CLIENT_SCOPES, [unknown[], unknown[]]> = {
  redis: [['pexpire', 'set'], ['mget']],
  'redis-cluster': [['pexpire', 'set'], ['get']],
  postgres: [
    ['pg-pool.connect', expect.stringMatching(/^pg\.query:WITH /)],
    ['pg-pool.connect', expect.stringMatching(/^pg\.query:SELECT /)],
  ],
  s3: [['S3.PutObject'], ['S3.GetObject']],
};

describe('backend client spans nest under the driver spans', () => {
  let spans: ExportedSpan[];
  const kinds = Object.keys(CLIENT_SCOPES) as (keyof typeof CLIENT_SCOPES)[];

  it('runs the application process', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [FIXTURE, ...kinds], {
      env: process.env,
      maxBuffer: 64 * 1024 * 1024,
      timeout: 60_000,
    });
    spans = JSON.parse(stdout) as ExportedSpan[];
    expect(spans.length).toBeGreaterThan(0);
  });

  it.each(kinds)(
    '%s: the client spans of store and retrieve are children of StorePayloads / RetrievePayloads',
    (kind) => {
      const parent = spans.find((s) => s.name === `parent:${kind}`);
      expect(parent).toBeDefined();
      const byId = new Map(spans.map((s) => [s.spanId, s]));
      const ours = spans.filter(
        (s) => s.parentId === parent?.spanId && s.scope === '@x/storage-driver-otel' && s.traceId === parent?.traceId,
      );
      expect(ours.map((s) => s.name.split(':')[0]).sort()).toEqual(['RetrievePayloads', 'StorePayloads']);
      expect(ours.every((s) => s.attributes[A.ROOT] === undefined)).toBe(true);
      for (const driverSpan of ours) {
        const children = spans.filter((s) => s.parentId === driverSpan.spanId);
        const clientChildren = children.filter((s) => s.scope === CLIENT_SCOPES[kind]).map((s) => s.name);
        expect(clientChildren).toEqual(
          expect.arrayContaining(COMMANDS[kind][driverSpan.name.startsWith('Store') ? 0 : 1]),
        );
        // And no client span of this trace escaped the driver spans (each descends from one of them).
        for (const s of spans.filter((x) => x.traceId === parent?.traceId && x.scope === CLIENT_SCOPES[kind])) {
          let up: ExportedSpan | undefined = s;
          while (up !== undefined && up.scope !== '@x/storage-driver-otel') up = byId.get(up.parentId ?? '');
          expect(up?.name).toMatch(/^(Store|Retrieve)Payloads:/);
        }
      }
    },
  );
});
