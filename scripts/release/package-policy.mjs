#!/usr/bin/env node
// The release policy of every package.json, applied in one pass (idempotent; run it again after a
// package is added — it covers every package it finds). Hold the workspace lock while it runs, since
// other tools edit package.json files too:  flock /tmp/pnpm.lock node scripts/release/package-policy.mjs
// `--check` changes nothing and exits 1 when a file is not as the policy says (run by the tests).
//
// Every workspace package with a tsconfig.json: a `build` script (`tsc -b`), so `pnpm -r build` builds it.
// Every published package (not "private"):
//   - `prepack` and `prepublishOnly` run scripts/release/guard-pack.mjs: no tarball without code;
//   - peers and dependencies on workspace packages are `workspace:^`: published as `^<version the
//     package was released with>`, so the floor rises with every release and the range stops at
//     the next breaking version of core (see scripts/release/peer-ranges.sh);
//   - repository (with its directory), homepage, bugs; engines.node.
// The root package.json: the `release` script and engines.node.
import fs from 'node:fs';
import path from 'node:path';

export const REPOSITORY = 'https://github.com/x-storage/temporal-storage-drivers';
export const API_DOCS = 'https://x-storage.github.io/temporal-storage-drivers/';
export const ENGINES_NODE = '>=20.10.0';
const GUARD = 'node ../../scripts/release/guard-pack.mjs';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const check = process.argv.includes('--check');

export function workspaceDirs() {
  const dirs = [];
  for (const base of ['packages', 'examples']) {
    const d = path.join(root, base);
    if (!fs.existsSync(d)) continue;
    for (const e of fs.readdirSync(d).sort()) dirs.push(path.join(d, e));
  }
  dirs.push(path.join(root, 'bench'));
  return dirs.filter((d) => fs.existsSync(path.join(d, 'package.json')));
}

/** Inserts `key` after the last of `after` present in obj (keeps the file's key order readable). */
function setKey(obj, key, value, after) {
  if (JSON.stringify(obj[key]) === JSON.stringify(value)) return obj;
  if (key in obj) {
    obj[key] = value;
    return obj;
  }
  const keys = Object.keys(obj);
  let at = -1;
  for (const a of after) at = Math.max(at, keys.indexOf(a));
  const out = {};
  keys.forEach((k, i) => {
    if (i === at + 1 && at >= 0) out[key] = value;
    out[k] = obj[k];
  });
  if (!(key in out)) out[key] = value;
  return out;
}

function applyPackage(dir, names, text) {
  const file = path.join(dir, 'package.json');
  let pkg = JSON.parse(text ?? fs.readFileSync(file, 'utf8'));
  const rel = path.relative(root, dir);
  if (fs.existsSync(path.join(dir, 'tsconfig.json')) && !pkg.scripts?.build) {
    pkg = setKey(pkg, 'scripts', { ...(pkg.scripts ?? {}) }, ['types', 'main', 'description']);
    pkg.scripts.build = 'tsc -b';
  }
  if (!pkg.private) {
    pkg = setKey(pkg, 'repository', { type: 'git', url: `git+${REPOSITORY}.git`, directory: rel }, ['license']);
    pkg = setKey(pkg, 'homepage', `${REPOSITORY}/tree/main/${rel}#readme`, ['repository']);
    pkg = setKey(pkg, 'bugs', { url: `${REPOSITORY}/issues` }, ['homepage']);
    pkg = setKey(pkg, 'scripts', { ...(pkg.scripts ?? {}) }, ['files', 'sideEffects', 'exports']);
    pkg.scripts.prepack = GUARD;
    pkg.scripts.prepublishOnly = GUARD;
    pkg = setKey(pkg, 'engines', { ...(pkg.engines ?? {}), node: ENGINES_NODE }, ['files']);
    for (const field of ['peerDependencies', 'dependencies', 'optionalDependencies']) {
      for (const [name, range] of Object.entries(pkg[field] ?? {})) {
        if (names.has(name) && range !== 'workspace:^') pkg[field][name] = 'workspace:^';
      }
    }
  }
  return { file, text: `${JSON.stringify(pkg, null, 2)}\n` };
}

function applyRoot(text) {
  const file = path.join(root, 'package.json');
  let pkg = JSON.parse(text ?? fs.readFileSync(file, 'utf8'));
  pkg = setKey(pkg, 'engines', { ...(pkg.engines ?? {}), node: ENGINES_NODE }, ['packageManager']);
  pkg.scripts = { ...pkg.scripts, release: 'bash scripts/release/release.sh' };
  return { file, text: `${JSON.stringify(pkg, null, 2)}\n` };
}

const isMain = import.meta.url === `file://${process.argv[1]}`;
if (isMain && process.argv[2] === '--transform') {
  // --transform <relative package.json path>: the policy applied to the text on stdin (for committing
  // the policy's own change to a file that holds other uncommitted edits).
  const rel = process.argv[3];
  const names = new Set(
    workspaceDirs().map((d) => JSON.parse(fs.readFileSync(path.join(d, 'package.json'), 'utf8')).name),
  );
  const input = fs.readFileSync(0, 'utf8');
  const out =
    rel === 'package.json' ? applyRoot(input) : applyPackage(path.join(root, path.dirname(rel)), names, input);
  process.stdout.write(out.text);
} else if (isMain) {
  const dirs = workspaceDirs();
  const names = new Set(dirs.map((d) => JSON.parse(fs.readFileSync(path.join(d, 'package.json'), 'utf8')).name));
  let drift = 0;
  for (const { file, text } of [applyRoot(), ...dirs.map((d) => applyPackage(d, names))]) {
    if (fs.readFileSync(file, 'utf8') === text) continue;
    drift++;
    if (check) console.error(`  ✗ ${path.relative(root, file)} is not as scripts/release/package-policy.mjs says`);
    else {
      fs.writeFileSync(file, text);
      console.log(`  updated ${path.relative(root, file)}`);
    }
  }
  if (check && drift) {
    console.error('run: flock /tmp/pnpm.lock node scripts/release/package-policy.mjs');
    process.exit(1);
  }
  if (check) console.log(`  ✓ ${dirs.length + 1} package.json files follow the release policy`);
}
