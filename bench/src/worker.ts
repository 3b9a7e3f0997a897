/**
 * Child process entry: `node worker.js <impl> <workload[,workload…]> <quick 0|1> <result.json>`
 * runs workloads against one implementation in a fresh process (one workload per process in a
 * full run: honest idle and peak RSS) and writes the {@link RunResult}s as a JSON array. `node worker.js roundtrips <result.json>` runs the round-trip count.
 *
 * @module
 */
import { writeFile } from 'node:fs/promises';
import { createImpl } from './impls';
import { countRoundTrips } from './roundtrips';
import { runWorkload, type WorkloadName, workloadSpec } from './workloads';

async function main(argv: string[]): Promise<void> {
  if (argv[0] === 'roundtrips') {
    const out = argv[1] as string;
    await writeFile(out, JSON.stringify(await countRoundTrips()));
    return;
  }
  // Several comma-separated workloads run one after the other in this process (quick mode).
  const [id, workloads, quick, out] = argv as [string, string, string, string];
  const impl = await createImpl(id);
  try {
    const results = [];
    for (const w of workloads.split(',') as WorkloadName[])
      results.push(await runWorkload(impl, workloadSpec(w, quick === '1')));
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
