// The trace of @x/storage-driver-otel's README, from a real run: a Temporal dev server, a client
// with @temporalio/interceptors-opentelemetry, an instrumented Redis driver on both sides, and the
// ioredis auto-instrumentation registered before ioredis is loaded, as an application does. One
// workflow whose input (client start) and result (worker) are offloaded. Writes the spans
// (trace.json), a text tree (trace.txt) and a picture (trace.svg) into the directory given
// (default: packages/otel/docs).
//
//   pnpm exec tsc -b tsconfig.json && bash scripts/services.sh start redis venv
//   node packages/e2e/scripts/otel-trace.cjs
'use strict';
const path = require('node:path');
const { writeFileSync, mkdirSync } = require('node:fs');
const { context, propagation, trace } = require('@opentelemetry/api');
const { AsyncLocalStorageContextManager } = require('@opentelemetry/context-async-hooks');
const { W3CTraceContextPropagator } = require('@opentelemetry/core');
const { registerInstrumentations } = require('@opentelemetry/instrumentation');
const { IORedisInstrumentation } = require('@opentelemetry/instrumentation-ioredis');
const { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } = require('@opentelemetry/sdk-trace-base');

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
trace.setGlobalTracerProvider(provider);
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
propagation.setGlobalPropagator(new W3CTraceContextPropagator());
registerInstrumentations({ tracerProvider: provider, instrumentations: [new IORedisInstrumentation()] });

// Loaded after the instrumentation is registered (they load ioredis).
const { Client } = require('@temporalio/client');
const { ExternalStorage } = require('@temporalio/common');
const { OpenTelemetryWorkflowClientInterceptor } = require('@temporalio/interceptors-opentelemetry');
const { bundleWorkflowCode, DefaultLogger, NativeConnection, Runtime, Worker } = require('@temporalio/worker');
const { instrumentStorageDriver } = require('@x/storage-driver-otel');
const e2e = require('..');
const { createBackend } = require('@x/test-backends');
const { startTemporalDevServer } = require('@x/test-servers');

async function main() {
  const out = path.resolve(process.argv[2] ?? path.join(__dirname, '..', '..', 'otel', 'docs'));
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const [server, workflowBundle] = await Promise.all([
    startTemporalDevServer(),
    bundleWorkflowCode({ workflowsPath: e2e.WORKFLOWS_PATH, logger: new DefaultLogger('ERROR') }),
  ]);
  const backend = await createBackend('redis', { name: 'redis' });
  try {
    const driver = instrumentStorageDriver(backend.driver);
    const externalStorage = new ExternalStorage({
      drivers: [driver],
      payloadSizeThreshold: e2e.PAYLOAD_SIZE_THRESHOLD,
    });
    const client = new Client({
      connection: server.connection,
      namespace: server.namespace,
      dataConverter: { externalStorage },
      interceptors: { workflow: [new OpenTelemetryWorkflowClientInterceptor()] },
    });
    const connection = await NativeConnection.connect({ address: server.address });
    const worker = await Worker.create({
      connection,
      namespace: server.namespace,
      taskQueue: 'otel-trace',
      workflowBundle,
      activities: e2e.activities,
      dataConverter: { externalStorage },
    });
    // Connected before the traced part (the connection's own commands are not the point).
    await backend.driver.store({}, [{ data: new TextEncoder().encode('"warm-up"') }]);
    exporter.reset();
    await worker.runUntil(async () => {
      const handle = await client.workflow.start('valuesWorkflow', {
        taskQueue: 'otel-trace',
        workflowId: 'order-1042',
        args: ['order-1042', 6 * 1024, e2e.bigValue('order-1042:0')],
      });
      await handle.result();
    });
    await connection.close();
  } finally {
    await backend.close();
    await server.close();
  }
  const spans = exporter.getFinishedSpans().map((s) => ({
    name: s.name,
    scope: s.instrumentationScope.name,
    traceId: s.spanContext().traceId,
    spanId: s.spanContext().spanId,
    parentId: s.parentSpanContext?.spanId,
    start: s.startTime[0] * 1e3 + s.startTime[1] / 1e6,
    end: s.endTime[0] * 1e3 + s.endTime[1] / 1e6,
    status: s.status.code,
    attributes: s.attributes,
  }));
  mkdirSync(out, { recursive: true });
  writeFileSync(path.join(out, 'trace.json'), `${JSON.stringify(spans, null, 2)}\n`);
  writeFileSync(path.join(out, 'trace.txt'), textTree(spans));
  writeFileSync(path.join(out, 'trace.svg'), svg(spans));
  console.log(`wrote trace.json, trace.txt, trace.svg (${spans.length} spans) to ${out}`);
}

/** The traces, oldest first, each as its spans in tree order with their depth. */
function traces(spans) {
  const byTrace = new Map();
  for (const s of spans) byTrace.set(s.traceId, [...(byTrace.get(s.traceId) ?? []), s]);
  return [...byTrace.values()]
    .map((list) => {
      const ids = new Set(list.map((s) => s.spanId));
      const children = (id) => list.filter((s) => s.parentId === id).sort((a, b) => a.start - b.start);
      const rows = [];
      const walk = (s, depth, last, prefix) => {
        rows.push({ span: s, depth, prefix: depth === 0 ? '' : `${prefix}${last ? '└─ ' : '├─ '}` });
        const kids = children(s.spanId);
        kids.forEach((k, i) => {
          walk(k, depth + 1, i === kids.length - 1, depth === 0 ? '' : `${prefix}${last ? '   ' : '│  '}`);
        });
      };
      for (const root of list.filter((s) => !ids.has(s.parentId)).sort((a, b) => a.start - b.start))
        walk(root, 0, true, '');
      return { start: Math.min(...list.map((s) => s.start)), rows };
    })
    .sort((a, b) => a.start - b.start);
}

/** The attributes worth a glance, by span kind. */
function summary(s) {
  const a = s.attributes;
  if (s.scope === '@x/storage-driver-otel') {
    const parts = [];
    if (a['temporal.storage.root']) parts.push('root');
    if (a.temporalWorkflowId) parts.push(`temporalWorkflowId=${a.temporalWorkflowId}`);
    if (a.run_id) parts.push(`run_id=${String(a.run_id).slice(0, 8)}…`);
    parts.push(`payloads=${a['temporal.storage.payloads']}`, `bytes=${a['temporal.storage.bytes']}`);
    if (a['temporal.storage.dedup.existing'] !== undefined)
      parts.push(`dedup.existing=${a['temporal.storage.dedup.existing']}`);
    return parts.join(' ');
  }
  if (s.scope.includes('ioredis')) return `${a['db.operation.name']}`;
  if (a.temporalWorkflowId) return `temporalWorkflowId=${a.temporalWorkflowId}`;
  return '';
}

function textTree(spans) {
  const lines = [];
  for (const [i, t] of traces(spans).entries()) {
    lines.push(`trace ${i + 1}`);
    for (const { span, prefix } of t.rows) {
      const label = `${prefix}${span.name}`;
      const ms = `${(span.end - span.start).toFixed(1)} ms`;
      lines.push(`  ${label.padEnd(44)} ${ms.padStart(9)}  ${summary(span)}`.trimEnd());
    }
    lines.push('');
  }
  return `${lines.join('\n').trimEnd()}\n`;
}

const COLORS = { '@x/storage-driver-otel': '#2f6fdf', '@opentelemetry/instrumentation-ioredis': '#d0453a' };

function escapeXml(text) {
  return String(text).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** One panel per trace: names in a tree on the left, bars on the trace's own time axis on the right. */
function svg(spans) {
  const rowH = 22;
  const labelW = 330;
  const barW = 520;
  const detailW = 0;
  const width = labelW + barW + 40 + detailW;
  const parts = [];
  let y = 40;
  for (const [i, t] of traces(spans).entries()) {
    const start = t.start;
    const end = Math.max(...t.rows.map((r) => r.span.end));
    const scale = barW / Math.max(end - start, 0.001);
    parts.push(
      `<text x="12" y="${y}" font-weight="bold">trace ${i + 1}</text><text x="${labelW}" y="${y}" fill="#666">0 ms</text><text x="${labelW + barW}" y="${y}" fill="#666" text-anchor="end">${(end - start).toFixed(1)} ms</text>`,
    );
    y += 8;
    for (const { span, depth } of t.rows) {
      const x = labelW + (span.start - start) * scale;
      const w = Math.max(2, (span.end - span.start) * scale);
      const color = COLORS[span.scope] ?? '#7a7a7a';
      parts.push(
        `<text x="${12 + depth * 16}" y="${y + 15}">${escapeXml(span.name)}</text>`,
        `<rect x="${x.toFixed(1)}" y="${y + 4}" width="${w.toFixed(1)}" height="${rowH - 8}" rx="2" fill="${color}"><title>${escapeXml(`${span.name} ${(span.end - span.start).toFixed(2)} ms ${summary(span)}`)}</title></rect>`,
        `<text x="${Math.min(x + w + 6, labelW + barW - 4).toFixed(1)}" y="${y + 15}" fill="#444" font-size="11">${escapeXml(`${(span.end - span.start).toFixed(1)} ms`)}</text>`,
      );
      y += rowH;
    }
    y += 26;
  }
  const legend = [
    ['#7a7a7a', '@temporalio/interceptors-opentelemetry (client)'],
    ['#2f6fdf', '@x/storage-driver-otel'],
    ['#d0453a', '@opentelemetry/instrumentation-ioredis'],
  ]
    .map(
      ([c, l], i) =>
        `<rect x="${12 + i * 300}" y="${y - 12}" width="12" height="12" fill="${c}"/><text x="${30 + i * 300}" y="${y - 2}">${l}</text>`,
    )
    .join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y + 10}" font-family="ui-monospace, Menlo, Consolas, monospace" font-size="12" role="img" aria-label="Trace of a workflow whose input and result are offloaded to Redis">
<title>Trace of a workflow whose input and result are offloaded to Redis</title>
<rect width="100%" height="100%" fill="#fff"/>
<text x="12" y="20" font-size="13" fill="#222">A workflow whose input and result are offloaded to Redis (a real run on a Temporal dev server)</text>
${parts.join('\n')}
${legend}
</svg>
`;
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
