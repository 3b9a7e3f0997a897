/**
 * `x-storage gc` without a Temporal server: the mark set, finding references in real decoded
 * protobuf messages, the RPC runner's retries and rate, the sweep's classification and deletes
 * against the in-memory reference driver (with a clock), and the command's usage errors.
 */
import { writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { temporal } from '@temporalio/proto';
import { encodeReferencePayload } from '@x/storage-codec-server';
import { buildStorageKey, type Payload, type StorageDriver, sha256Hex } from '@x/storage-driver-core';
import { InMemoryStorageDriver } from '@x/storage-driver-test-suite';
import { DigestSet } from '../src/gc/digest-set';
import { MarkSets } from '../src/gc/mark';
import { collectPayloads, type FoundReference, findReferences } from '../src/gc/references';
import { type GcConnection, RpcRunner, type WorkflowService } from '../src/gc/rpc';
import { type SweepOptions, sweepDriver } from '../src/gc/sweep';
import { cleanup, makeTempDir, runXStorage } from './helpers';

const reference = (key: string, driverName = 'memory'): Payload =>
  encodeReferencePayload({ driverName, claimData: { key }, sizeBytes: 10 });
const inline = (text: string): Payload => ({
  metadata: { encoding: Buffer.from('json/plain') },
  data: Buffer.from(JSON.stringify(text)),
});
const keyOf = (n: number, namespace = 'ns-a') =>
  buildStorageKey({ kind: 'workflow', namespace, id: `wf-${n}`, type: 'T' }, sha256Hex(Buffer.from(String(n))));

describe('DigestSet (the mark set)', () => {
  it('holds 200,000 ids in a table of 8 bytes per slot, finds each, and nothing else', () => {
    const set = new DigestSet();
    let added = 0;
    for (let i = 0; i < 200_000; i++) if (set.add(`id-${i}`)) added++;
    expect(added).toBe(200_000);
    expect(set.add('id-7')).toBe(false);
    expect(set.size).toBe(200_000);
    let found = 0;
    for (let i = 0; i < 200_000; i++) if (set.has(`id-${i}`)) found++;
    let strangers = 0;
    for (let i = 0; i < 100_000; i++) if (set.has(`other-${i}`)) strangers++;
    expect([found, strangers]).toEqual([200_000, 0]);
    // 2^19 slots at ≤ 70 % load: 4 MiB, about 21 bytes per id.
    expect(set.byteLength).toBe(2 ** 19 * 8);
  });

  it('keeps one set per driver id', () => {
    const marks = new MarkSets();
    marks.of('fs').add('a');
    marks.of('s3').add('a');
    marks.of('s3').add('b');
    expect(marks.of('fs').has('b')).toBe(false);
    expect(marks.size).toBe(3);
  });
});

describe('finding references in decoded history events', () => {
  /** A real `HistoryEvent`, encoded and decoded by protobufjs as the client receives it. */
  const decoded = (event: temporal.api.history.v1.IHistoryEvent) =>
    temporal.api.history.v1.HistoryEvent.decode(temporal.api.history.v1.HistoryEvent.encode(event).finish());

  it('finds references at any depth: input, memo, header, failure details down a cause chain, user metadata', async () => {
    const events = [
      decoded({
        workflowExecutionStartedEventAttributes: {
          input: { payloads: [inline('small'), reference(keyOf(1))] },
          memo: { fields: { big: reference(keyOf(2)), small: inline('m') } },
          header: { fields: { auth: reference(keyOf(3)) } },
          lastCompletionResult: { payloads: [reference(keyOf(4))] },
        },
        userMetadata: { summary: reference(keyOf(5)) },
      }),
      decoded({
        activityTaskFailedEventAttributes: {
          failure: {
            message: 'outer',
            encodedAttributes: reference(keyOf(6)),
            cause: {
              message: 'middle',
              cause: {
                message: 'inner',
                applicationFailureInfo: { details: { payloads: [reference(keyOf(7)), inline('x')] } },
              },
            },
          },
        },
      }),
      decoded({
        workflowExecutionUpdateAcceptedEventAttributes: {
          acceptedRequest: { input: { args: { payloads: [reference(keyOf(8), 'other-driver')] } } },
        },
      }),
    ];
    const found: FoundReference[] = [];
    const looked = await findReferences(events, (r) => found.push(r));
    expect(looked).toBe(11);
    const keys = found.map((r) => (r.valid ? `${r.reference.driverName} ${r.reference.claimData.key}` : 'invalid'));
    expect(keys.sort()).toEqual(
      [1, 2, 3, 4, 5, 6, 7]
        .map((n) => `memory ${keyOf(n)}`)
        .concat(`other-driver ${keyOf(8)}`)
        .sort(),
    );
  });

  it('reports a reference payload that cannot be read, and ignores payload-less messages', async () => {
    const broken: Payload = { ...reference(keyOf(1)), data: Buffer.from('{not json') };
    const found: FoundReference[] = [];
    await findReferences({ a: [{ b: broken }], metadata: 'not a payload', c: new Uint8Array(4) }, (r) => found.push(r));
    expect(found).toEqual([{ valid: false, message: expect.stringContaining('not UTF-8 JSON') }]);
    const payloads: Payload[] = [];
    collectPayloads({ metadata: {}, data: new Uint8Array(0) }, payloads);
    expect(payloads).toEqual([]);
  });

  it('decodes payloads with the outer codecs first (a wire codec that also encodes references)', async () => {
    const wrap = (p: Payload): Payload => ({
      metadata: { encoding: Buffer.from('binary/wrapped') },
      data: temporal.api.common.v1.Payload.encode(p).finish(),
    });
    const unwrap = {
      encode: async (ps: Payload[]) => ps.map(wrap),
      decode: async (ps: Payload[]) =>
        ps.map((p) =>
          Buffer.from(p.metadata?.encoding ?? []).toString() === 'binary/wrapped'
            ? (temporal.api.common.v1.Payload.decode(p.data as Uint8Array) as Payload)
            : p,
        ),
    };
    const message = { input: { payloads: [wrap(reference(keyOf(1))), wrap(inline('x'))] } };
    const without: FoundReference[] = [];
    await findReferences(message, (r) => without.push(r));
    expect(without).toEqual([]);
    const withCodec: FoundReference[] = [];
    await findReferences(message, (r) => withCodec.push(r), [unwrap]);
    expect(withCodec).toHaveLength(1);
  });
});

describe('RpcRunner', () => {
  const connection = (call: () => Promise<unknown>): GcConnection => ({
    workflowService: { describeNamespace: call } as unknown as WorkflowService,
  });
  const grpcError = (code: number) => Object.assign(new Error(`status ${code}`), { code });

  it('retries UNAVAILABLE and RESOURCE_EXHAUSTED, then succeeds', async () => {
    const outcomes = [grpcError(14), grpcError(8)];
    const rpc = new RpcRunner(
      connection(async () => {
        const next = outcomes.shift();
        if (next) throw next;
        return 'ok';
      }),
      { retryDelayMs: 1 },
    );
    await expect(rpc.call((s) => s.describeNamespace({}))).resolves.toBe('ok');
    expect([rpc.calls, rpc.retries]).toEqual([3, 2]);
  });

  it('does not retry other errors, and gives up after the attempts', async () => {
    const invalid = new RpcRunner(
      connection(async () => {
        throw grpcError(3);
      }),
      { retryDelayMs: 1 },
    );
    await expect(invalid.call((s) => s.describeNamespace({}))).rejects.toMatchObject({ code: 3 });
    expect(invalid.calls).toBe(1);
    const down = new RpcRunner(
      connection(async () => {
        throw grpcError(14);
      }),
      { retryDelayMs: 1, attempts: 3 },
    );
    await expect(down.call((s) => s.describeNamespace({}))).rejects.toMatchObject({ code: 14 });
    expect(down.calls).toBe(3);
  });

  it('spaces calls to the rate (20 calls at 100/s take about 190 ms)', async () => {
    const rpc = new RpcRunner(
      connection(async () => 'ok'),
      { ratePerSecond: 100 },
    );
    const started = Date.now();
    await Promise.all(Array.from({ length: 20 }, () => rpc.call((s) => s.describeNamespace({}))));
    expect(Date.now() - started).toBeGreaterThanOrEqual(180);
  });
});

describe('sweepDriver with the in-memory driver', () => {
  const DAY = 86_400_000;
  let now = Date.UTC(2026, 0, 10);
  const store = async (driver: StorageDriver, namespace: string | undefined, value: string, id = value) => {
    const target = namespace === undefined ? undefined : ({ kind: 'workflow', namespace, id, type: 'T' } as const);
    const [claim] = await driver.store({ target }, [inline(value)]);
    return claim?.claimData.key as string;
  };
  const options = (overrides: Partial<SweepOptions> = {}): SweepOptions => ({
    cutoff: new Date(now - DAY),
    delete: false,
    namespaces: ['ns-a', 'x'.repeat(1000)],
    skippedNamespaces: new Map(),
    allNamespacesScanned: false,
    batchSize: 2,
    signal: new AbortController().signal,
    ...overrides,
  });

  /** Objects of every kind the sweep tells apart, two days old unless said otherwise. */
  async function fixture() {
    now = Date.UTC(2026, 0, 10);
    const driver = new InMemoryStorageDriver({ clock: () => now });
    const marks = new DigestSet();
    now -= 2 * DAY;
    const marked = await store(driver, 'ns-a', 'marked');
    marks.add(driver.objectIdOf({ key: marked }));
    const orphans = [
      await store(driver, 'ns-a', 'orphan-1'),
      await store(driver, 'ns-a', 'orphan-2'),
      await store(driver, 'ns-a', 'orphan-3'),
      // A namespace so long its keys hold its digest instead (core's fitStorageKey).
      await store(driver, 'x'.repeat(1000), 'long-namespace'),
    ];
    const other = await store(driver, 'ns-b', 'other-namespace');
    const none = await store(driver, undefined, 'no-namespace');
    now += 2 * DAY - 3_600_000;
    const young = await store(driver, 'ns-a', 'young');
    now += 3_600_000;
    return { driver, marks, marked, orphans, other, none, young };
  }

  it('dry run: orphans are the unmarked objects of scanned namespaces last referenced before the cutoff', async () => {
    const { driver, marks, orphans, other, none } = await fixture();
    const seen: string[] = [];
    const result = await sweepDriver('mem', driver, marks, options({ onOrphan: (_, o) => seen.push(o.key) }));
    expect(seen.sort()).toEqual([...orphans].sort());
    expect(orphans[3]).toMatch(/^v0\/ns\/%7E[0-9a-f]{64}\/d\/sha256\//);
    expect(result.namespaces['ns-a']).toMatchObject({
      objects: 5,
      referenced: 1,
      inGrace: 1,
      unknownAge: 0,
      orphans: 3,
      deleted: 0,
    });
    expect(result.namespaces['x'.repeat(1000)]).toMatchObject({ objects: 1, orphans: 1 });
    expect(result.otherNamespaces).toEqual({ 'ns-b': { objects: 1, bytes: expect.any(Number) } });
    expect(result.withoutNamespace.objects).toBe(1);
    expect([...driver.objects.keys()]).toEqual(expect.arrayContaining([...orphans, other, none]));
    expect(result.status).toBe('done');
  });

  it('--delete: deletes exactly the orphans, conditionally (one stored again meanwhile is kept)', async () => {
    const { driver, marks, orphans, marked, other, none, young } = await fixture();
    const result = await sweepDriver(
      'mem',
      driver,
      marks,
      options({
        delete: true,
        // orphan-2 is stored again (a dedup hit) after it was listed, before its delete.
        onOrphan: (_, o) => {
          if (o.key === orphans[1]) void store(driver, 'ns-a', 'orphan-2');
        },
      }),
    );
    expect(result.namespaces['ns-a']).toMatchObject({ orphans: 3, deleted: 2, kept: 1 });
    expect([...driver.objects.keys()].sort()).toEqual([marked, orphans[1], other, none, young].sort());
  });

  it('leaves a namespace with unresolved references alone, and sweeps every namespace when all were scanned', async () => {
    const { driver, marks, orphans, other, none } = await fixture();
    const skipped = await sweepDriver(
      'mem',
      driver,
      marks,
      options({ delete: true, skippedNamespaces: new Map([['ns-a', 'unknown driver']]) }),
    );
    expect(skipped.namespaces['ns-a']).toMatchObject({ objects: 5, skipped: 'unknown driver', orphans: 0 });
    expect(driver.objects.has(orphans[0] as string)).toBe(true);

    const all = await sweepDriver('mem', driver, marks, options({ delete: true, allNamespacesScanned: true }));
    expect(all.namespaces['ns-b']).toMatchObject({ orphans: 1, deleted: 1 });
    expect(all.namespaces['(no namespace)']).toMatchObject({ orphans: 1, deleted: 1 });
    expect(driver.objects.has(other)).toBe(false);
    expect(driver.objects.has(none)).toBe(false);
  });

  it('reports a driver failure as the outcome instead of throwing', async () => {
    const { driver, marks } = await fixture();
    await driver.close();
    const result = await sweepDriver('mem', driver, marks, options());
    expect(result).toMatchObject({ status: 'failed', error: { code: 'E_CONFIG' } });
  });
});

describe('x-storage gc usage', () => {
  it('--help states the safety rules and what no scan can see', async () => {
    const help = await runXStorage(['gc', '--help']);
    expect(help.code).toBe(0);
    for (const text of ['dry run unless --delete', 'at least 1 hour', 'archival', 'Nexus', 'task token']) {
      expect(help.stdout).toContain(text);
    }
    expect((await runXStorage(['--help'])).stdout).toMatch(/^ {2}gc {7}/m);
  });

  it('refuses before connecting: no namespace, a grace under 1 hour, an unknown driver id', async () => {
    const dir = await makeTempDir();
    try {
      const config = path.join(dir, 'x.json');
      await writeFile(
        config,
        JSON.stringify({
          drivers: { fs: { module: '@x/storage-driver-fs', export: 'FsStorageDriver', options: { root: dir } } },
        }),
      );
      const noNamespace = await runXStorage(['gc', '--config', config]);
      expect([noNamespace.code, noNamespace.stderr]).toEqual([2, expect.stringContaining('--namespace')]);
      const short = await runXStorage(['gc', '--config', config, '--namespace', 'default', '--grace', '30m']);
      expect([short.code, short.stderr]).toEqual([2, expect.stringContaining('1h minimum')]);
      const unknown = await runXStorage(['gc', '--config', config, '--namespace', 'default', '--driver', 'nope']);
      expect([unknown.code, unknown.stderr]).toEqual([2, expect.stringContaining('unknown driver id "nope"')]);
    } finally {
      await cleanup(dir);
    }
  });
});
