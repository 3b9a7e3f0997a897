#!/usr/bin/env node
import fs from 'node:fs';
// The peer-range policy over releases, simulated with the real `changeset version` on scratch copies
// (scripts/release/scratch.mjs; the checkout is not touched). Workspace peers and dependencies are
// `workspace:^` (package-policy.mjs), which pnpm publishes as `^<version of the dependency at
// publish time>` — checked against real pnpm publishes by registry-check.sh / verify-published.mjs.
// Run by scripts/test.sh (about 10 s).
//
// From two starting points — the first release the current .changeset files produce, and every
// public package at 1.0.0 — it releases core with a minor, then core and a driver together with a
// minor (a driver that needs a new core export: its floor must rise), then a driver alone with a
// patch, then core with a major, and after each release checks every public package that depends on core:
//   - re-released (its version changed): the range it publishes admits the new core, has the new
//     core as its floor (no older core satisfies it) and excludes core's next major;
//   - not re-released: the range it published last still admits the new core (else changesets must
//     have bumped it).
import { createRequire } from 'node:module';
import path from 'node:path';
import { changeset, makeScratch, readJson, root, workspaceDirs } from './scratch.mjs';

const semver = createRequire(fs.realpathSync(path.join(root, 'node_modules', '@changesets', 'cli', 'package.json')))(
  'semver',
);
const CORE = '@x/storage-driver-core';

function state(dir) {
  const pkgs = new Map();
  for (const d of workspaceDirs(dir)) {
    const pkg = readJson(path.join(dir, d, 'package.json'));
    if (!pkg.private) pkgs.set(pkg.name, { dir: d, pkg });
  }
  return pkgs;
}

/** The range a package would publish for `dep` now: pnpm's rewrite of workspace: ranges. */
function publishedRange(pkgs, pkg, dep) {
  const range = pkg.peerDependencies?.[dep] ?? pkg.dependencies?.[dep];
  if (!range) return undefined;
  const version = pkgs.get(dep)?.pkg.version;
  if (range === 'workspace:^') return `^${version}`;
  if (range === 'workspace:~') return `~${version}`;
  if (range === 'workspace:*') return version;
  return range.replace(/^workspace:/, '');
}

function release(dir, label, bumps) {
  const body = `---\n${Object.entries(bumps)
    .map(([n, t]) => `"${n}": ${t}`)
    .join('\n')}\n---\n\nSimulated release: ${label}.\n`;
  fs.writeFileSync(path.join(dir, '.changeset', `sim-${label.replace(/\W+/g, '-')}.md`), body);
  changeset(dir, 'version');
}

let failures = 0;
function check(label, before, after, lastPublished) {
  const core = after.get(CORE).pkg.version;
  const nextMajor = semver.inc(core, 'major');
  const rows = [];
  for (const [name, { pkg }] of after) {
    if (name === CORE) continue;
    const wasVersion = before.get(name)?.pkg.version;
    const released = pkg.version !== wasVersion;
    const range = released ? publishedRange(after, pkg, CORE) : lastPublished.get(name);
    if (!range) continue;
    const problems = [];
    if (!semver.satisfies(core, range)) problems.push(`does not admit core ${core}`);
    if (released) {
      lastPublished.set(name, range);
      if (semver.minVersion(range)?.version !== core)
        problems.push(`floor ${semver.minVersion(range)} is not core ${core}`);
      if (semver.satisfies(nextMajor, range)) problems.push(`admits core's next major ${nextMajor}`);
    }
    failures += problems.length;
    rows.push({
      key: `${problems.length ? '✗' : '✓'} ${wasVersion} → ${released ? pkg.version : 'not released'}, core ${range}${problems.length ? `: ${problems.join('; ')}` : ''}`,
      name: name.replace('@x/storage-', ''),
    });
  }
  console.log(`  ${label}: core ${before.get(CORE).pkg.version} → ${core}`);
  const groups = new Map();
  for (const r of rows) groups.set(r.key, [...(groups.get(r.key) ?? []), r]);
  for (const [key, rs] of groups)
    console.log(`    ${key} (${rs.length > 3 ? `${rs.length} packages` : rs.map((r) => r.name).join(', ')})`);
}

function simulate(title, prepare) {
  console.log(`\n  ${title}`);
  const dir = makeScratch('peer-ranges');
  try {
    prepare(dir);
    let before = state(dir);
    const last = new Map();
    for (const [name, { pkg }] of before) {
      const r = publishedRange(before, pkg, CORE);
      if (r && name !== CORE) last.set(name, r);
    }
    const starts = new Set([...last].map(([n, r]) => `${before.get(n).pkg.version} (core ${r})`));
    console.log(`  start: core ${before.get(CORE).pkg.version}; its ${last.size} dependents ${[...starts].join(', ')}`);
    for (const [label, bumps] of [
      ['core minor', { [CORE]: 'minor' }],
      [
        'core minor with driver-s3 minor (a driver starts using a new core export)',
        {
          [CORE]: 'minor',
          '@x/storage-driver-s3': 'minor',
        },
      ],
      ['driver-fs patch alone', { '@x/storage-driver-fs': 'patch' }],
      ['core major', { [CORE]: 'major' }],
    ]) {
      release(dir, label, bumps);
      const after = state(dir);
      check(label, before, after, last);
      before = after;
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

simulate('from the first release the current changesets produce', (dir) => changeset(dir, 'version'));
simulate('from every public package at 1.0.0', (dir) => {
  for (const f of fs.readdirSync(path.join(dir, '.changeset'))) {
    if (f.endsWith('.md') && f !== 'README.md') fs.rmSync(path.join(dir, '.changeset', f));
  }
  for (const [, { dir: d, pkg }] of state(dir)) {
    pkg.version = '1.0.0';
    fs.writeFileSync(path.join(dir, d, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`);
  }
});
if (failures) {
  console.error(`${failures} peer-range problem(s)`);
  process.exit(1);
}
console.log('\n  ✓ every published range admits the core it was released with, from that core up to its next major');
