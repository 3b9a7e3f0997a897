/**
 * Child process entry: `node worker.js <impl> <workload[,workload…]> <quick 0|1> <result.json>`
 * runs workloads against one implementation in a fresh process (one workload per process in a
 * full run: honest idle and peak RSS) and writes the {@link RunResult}s as a JSON array.
 * `node worker.js roundtrips <result.json>` runs the round-trip count;
 * `node worker.js s3requests <impl> <quick 0|1> <result.json>` counts an S3 implementation's
 * requests per operation at the latency proxy.
 *
 * `XSTORAGE_BENCH_PROFILE=s3-latency` (set by the CLI with `XSTORAGE_S3_ENDPOINT` pointing at the
 * proxy and `XSTORAGE_BENCH_PROXY_URL`) selects the S3 latency profile: its implementations and
 * workload shapes, and the proxy's request counts around the measured part.
 *
 * @module
 */
import { writeFile } from 'node:fs/promises';
import { coreAloneImpl } from './core-alone';
import { createImpl, instrumentDrivers, type Profile } from './impls';
import { memoryImpl, otelDriverWrapper, otelWorkloadSpec, parseOtelImplId, parseOtelWorkload } from './otel';
import { countRoundTrips } from './roundtrips';
import { countS3Requests, latencyWorkloadSpec, proxyProbe } from './s3-latency';
import { type RunResult, runWorkload, type WorkloadName, workloadSpec } from './workloads';

function proxyUrl(): string {
  const url = process.env.XSTORAGE_BENCH_PROXY_URL;
  if (!url) throw new Error('XSTORAGE_BENCH_PROXY_URL is not set (the S3 latency profile runs through the CLI)');
  return url;
}

async function main(argv: string[]): Promise<void> {
  if (argv[0] === 'roundtrips') {
    const out = argv[1] as string;
    await writeFile(out, JSON.stringify(await countRoundTrips()));
    return;
  }
  if (argv[0] === 's3requests') {
    const [, id, quick, out] = argv as [string, string, string, string];
    await writeFile(out, JSON.stringify(await countS3Requests(id, proxyUrl(), quick === '1' ? 8 : 64)));
    return;
  }
  const profile: Profile = process.env.XSTORAGE_BENCH_PROFILE === 's3-latency' ? 's3-latency' : 'loopback';
  // Several comma-separated workloads run one after the other in this process (quick mode).
  const [id, workloads, quick, out] = argv as [string, string, string, string];
  // `redis+otel`, `redis+otel-noop`: the driver instrumented (the otel group); the SDK set up first.
  const { base, mode } = parseOtelImplId(id);
  const wrap = otelDriverWrapper(mode);
  instrumentDrivers(wrap);
  const created =
    base === 'memory' ? memoryImpl(id, wrap) : base === 'core' ? coreAloneImpl() : await createImpl(base, profile);
  const impl = base === id ? created : { ...created, id };
  try {
    const results: RunResult[] = [];
    for (const w of workloads.split(',') as WorkloadName[]) {
      const otel = parseOtelWorkload(w);
      if (otel !== undefined) {
        const result = await runWorkload(impl, otelWorkloadSpec(otel, base, quick === '1'));
        results.push({ ...result, workload: otel as WorkloadName }); // the otel group's own names
      } else if (profile === 'loopback')
        results.push(await runWorkload(impl, workloadSpec(w, quick === '1', impl.backend)));
      else results.push(await runWorkload(impl, latencyWorkloadSpec(w, quick === '1'), proxyProbe(proxyUrl())));
    }
    await writeFile(out, JSON.stringify(results));
  } finally {
    await impl.close();
  }
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
