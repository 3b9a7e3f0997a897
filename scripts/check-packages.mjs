// Verifies every published package as a consumer sees it: built output loads with both
// require() and import() through the package's `exports` map, declared types exist, and the
// packed file list ships dist + README only (no sources, tests or build info).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const consumer = path.join(root, '.tmp', 'package-check');
fs.rmSync(consumer, { recursive: true, force: true });
fs.mkdirSync(path.join(consumer, 'node_modules', '@x'), { recursive: true });

const packages = fs
  .readdirSync(path.join(root, 'packages'))
  .map((d) => path.join(root, 'packages', d))
  .filter((d) => fs.existsSync(path.join(d, 'package.json')))
  .map((dir) => ({ dir, pkg: JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) }))
  .filter(({ pkg }) => !pkg.private);

for (const { dir, pkg } of packages) {
  fs.symlinkSync(dir, path.join(consumer, 'node_modules', pkg.name), 'dir');
}
const names_safe = (n) => n.replace(/[^a-z0-9]+/gi, '_');
const require = createRequire(path.join(consumer, 'index.js'));
let failures = 0;
const fail = (msg) => {
  failures++;
  console.error(`  ✗ ${msg}`);
};

for (const { dir, pkg } of packages) {
  const cjs = require(pkg.name);
  // import() resolved from inside the consumer folder, through the package's exports map.
  const probe = path.join(consumer, `probe-${names_safe(pkg.name)}.mjs`);
  fs.writeFileSync(probe, `export * as ns from ${JSON.stringify(pkg.name)};\n`);
  const { ns: esm } = await import(pathToFileURL(probe).href);
  const names = Object.keys(cjs).filter((k) => k !== '__esModule');
  if (names.length === 0) fail(`${pkg.name}: require() exposes no exports`);
  for (const n of names) if (!(n in esm)) fail(`${pkg.name}: import() lacks export ${n}`);
  const types = pkg.exports?.['.']?.types;
  if (!types || !fs.existsSync(path.join(dir, types))) fail(`${pkg.name}: exports["."].types missing on disk`);
  if (pkg.sideEffects !== false) fail(`${pkg.name}: sideEffects must be false`);
  if (!fs.existsSync(path.join(dir, 'README.md'))) fail(`${pkg.name}: README.md missing`);
  const packed = JSON.parse(
    execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
      cwd: dir,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }),
  )[0].files.map((f) => f.path);
  const stray = packed.filter(
    (f) => !/^(dist\/.*\.(js|d\.ts)|README\.md|CHANGELOG\.md|LICENSE|package\.json)$/.test(f),
  );
  if (stray.length) fail(`${pkg.name}: pack would ship unexpected files: ${stray.join(', ')}`);
  if (!packed.includes('dist/index.js') || !packed.includes('dist/index.d.ts'))
    fail(`${pkg.name}: pack misses dist/index`);
  console.log(`  ✓ ${pkg.name}: ${names.length} exports via require() and import(), ${packed.length} packed files`);
}
if (failures) {
  console.error(`${failures} package check(s) failed`);
  process.exit(1);
}
