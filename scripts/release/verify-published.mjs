#!/usr/bin/env node
// After `pnpm release` to the test registry: every public package of <copy> is there at its new
// version, with code in the tarball, real ranges (no workspace:), repository/homepage/bugs, and
// peers on workspace packages published as ^<their released version>.
//   node scripts/release/verify-published.mjs <copy dir> <registry url>
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { readJson, workspaceDirs } from './scratch.mjs';

const [copy, registry] = process.argv.slice(2);
const versions = new Map();
const pkgs = [];
for (const d of workspaceDirs(copy)) {
  const pkg = readJson(path.join(copy, d, 'package.json'));
  versions.set(pkg.name, pkg.version);
  if (!pkg.private) pkgs.push(pkg);
}
let failures = 0;
const fail = (m) => {
  failures++;
  console.error(`  ✗ ${m}`);
};
for (const pkg of pkgs) {
  const res = await fetch(new URL(pkg.name.replace('/', '%2f'), registry));
  if (!res.ok) {
    fail(`${pkg.name}: ${res.status} from the registry`);
    continue;
  }
  const m = (await res.json()).versions?.[pkg.version];
  if (!m) {
    fail(`${pkg.name}@${pkg.version} is not on the registry`);
    continue;
  }
  if (JSON.stringify(m).includes('workspace:')) fail(`${pkg.name}: the published manifest has a workspace: range`);
  if (!m.repository?.directory || !m.homepage || !m.bugs?.url) fail(`${pkg.name}: repository/homepage/bugs missing`);
  const tgz = await fetch(m.dist.tarball);
  const files = tarNames(gunzipSync(Buffer.from(await tgz.arrayBuffer())));
  for (const f of [m.main, m.types, 'README.md', 'LICENSE'])
    if (f && !files.includes(path.posix.normalize(f))) fail(`${pkg.name}: the tarball lacks ${f}`);
  const ranges = [];
  for (const field of ['peerDependencies', 'dependencies']) {
    for (const [name, range] of Object.entries(m[field] ?? {})) {
      if (!versions.has(name)) continue;
      if (range !== `^${versions.get(name)}`)
        fail(`${pkg.name}: ${field}.${name} is ${range}, not ^${versions.get(name)}`);
      ranges.push(`${name.replace('@x/storage-', '')} ${range}`);
    }
  }
  console.log(`  ✓ ${pkg.name}@${pkg.version}: ${files.length} files${ranges.length ? `; ${ranges.join(', ')}` : ''}`);
}
if (failures) process.exit(1);

/** Names in a tar archive (ustar: 512-byte headers, name at 0..100, prefix at 345..500). */
function tarNames(buf) {
  const names = [];
  for (let at = 0; at + 512 <= buf.length; ) {
    const h = buf.subarray(at, at + 512);
    if (h.every((b) => b === 0)) break;
    const str = (a, b) => h.subarray(a, b).toString('utf8').replace(/\0.*$/s, '');
    const prefix = str(345, 500);
    const name = (prefix ? `${prefix}/` : '') + str(0, 100);
    const size = Number.parseInt(str(124, 136).trim() || '0', 8);
    if (h[156] === 48 || h[156] === 0) names.push(name.replace(/^package\//, ''));
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return names;
}
