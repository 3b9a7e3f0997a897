#!/usr/bin/env node
// prepack / prepublishOnly guard of every published package (scripts/release/package-policy.mjs
// wires it): refuses to pack or publish a package whose compiled code is missing, so a tarball
// without code cannot leave the repository by any route (pnpm pack/publish, npm pack/publish,
// yarn pack/npm publish, changeset publish). It builds nothing: `pnpm release` builds first.
//
// Refused when:
//   - package.json's main, types or an exports target does not exist;
//   - a source file src/**/*.ts has no compiled dist/**/*.js and .d.ts next to it;
//   - the packer does not rewrite `workspace:` ranges (npm, yarn 1) and the manifest has one:
//     the tarball would ask for a version range no registry has.
// Run from a package directory (npm/pnpm/yarn run lifecycle scripts there).
import fs from 'node:fs';
import path from 'node:path';

const dir = process.cwd();
const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
const problems = [];

const targets = new Set([pkg.main, pkg.types]);
const walkExports = (v) => {
  if (typeof v === 'string') targets.add(v);
  else if (v && typeof v === 'object') for (const x of Object.values(v)) walkExports(x);
};
walkExports(pkg.exports);
if (pkg.bin) for (const b of typeof pkg.bin === 'string' ? [pkg.bin] : Object.values(pkg.bin)) targets.add(b);
for (const t of targets) {
  if (t && !t.endsWith('package.json') && !fs.existsSync(path.join(dir, t))) problems.push(`${t} does not exist`);
}

const src = path.join(dir, 'src');
const walk = (d) =>
  fs
    .readdirSync(d, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : [path.join(d, e.name)]));
if (fs.existsSync(src)) {
  for (const file of walk(src)) {
    if (!/\.(c|m)?ts$/.test(file) || /\.d\.(c|m)?ts$/.test(file)) continue;
    const rel = path.relative(src, file).replace(/\.(c|m)?ts$/, '');
    for (const ext of ['.js', '.d.ts']) {
      if (!fs.existsSync(path.join(dir, 'dist', rel + ext)))
        problems.push(`dist/${rel}${ext} (from src/${path.relative(src, file)}) is missing`);
    }
  }
}

// pnpm and yarn berry replace workspace: ranges in the packed manifest; npm and yarn 1 do not.
const agent = process.env.npm_config_user_agent ?? '';
const rewrites = /^pnpm\//.test(agent) || /^yarn\/[2-9]/.test(agent);
if (!rewrites) {
  for (const field of ['dependencies', 'peerDependencies', 'optionalDependencies']) {
    for (const [name, range] of Object.entries(pkg[field] ?? {})) {
      if (String(range).startsWith('workspace:'))
        problems.push(
          `${field}.${name} is "${range}", which ${agent.split(' ')[0] || 'this packer'} would publish as is (pack with pnpm)`,
        );
    }
  }
}

if (problems.length) {
  console.error(`${pkg.name}: refusing to pack (run \`pnpm build\`, or \`pnpm release\` to publish):`);
  for (const p of problems.slice(0, 20)) console.error(`  - ${p}`);
  if (problems.length > 20) console.error(`  … and ${problems.length - 20} more`);
  process.exit(1);
}
