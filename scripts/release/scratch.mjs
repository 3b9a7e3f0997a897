// A scratch copy of what `changeset version` reads — the root and workspace package.json files,
// pnpm-workspace.yaml, .changeset/ and the existing CHANGELOGs, no sources — with the checkout's
// node_modules linked in, so changesets can be run there without touching the checkout.
// Used by changelog-report.mjs (--preview) and peer-ranges.mjs.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');

/** Workspace package folders (relative), in the order of pnpm-workspace.yaml's globs. */
export function workspaceDirs(base = root) {
  const dirs = [];
  for (const group of ['packages', 'examples']) {
    const d = path.join(base, group);
    if (fs.existsSync(d)) for (const e of fs.readdirSync(d).sort()) dirs.push(`${group}/${e}`);
  }
  dirs.push('bench');
  return dirs.filter((d) => fs.existsSync(path.join(base, d, 'package.json')));
}

export function readJson(file) {
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

export function makeScratch(label) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `x-storage-${label}-`));
  const copy = (rel) => {
    const from = path.join(root, rel);
    if (!fs.existsSync(from)) return;
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.cpSync(from, path.join(dir, rel), { recursive: true });
  };
  // scripts/release/changelog.cjs: the CHANGELOG generator .changeset/config.json names.
  for (const f of ['package.json', 'pnpm-workspace.yaml', '.changeset', 'scripts/release/changelog.cjs']) copy(f);
  for (const d of workspaceDirs()) {
    copy(`${d}/package.json`);
    copy(`${d}/CHANGELOG.md`);
  }
  fs.symlinkSync(path.join(root, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  return dir;
}

/** Runs the checkout's changesets CLI in `cwd`. */
export function changeset(cwd, ...args) {
  const bin = path.join(root, 'node_modules', '@changesets', 'cli', 'bin.js');
  return execFileSync(process.execPath, [bin, ...args], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}
