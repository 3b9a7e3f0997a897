#!/usr/bin/env node
// What the next release's CHANGELOGs say, and whether they read as notes for users.
//
//   node scripts/release/changelog-report.mjs <dir>    # after `changeset version` ran in <dir>
//   node scripts/release/changelog-report.mjs --preview  # runs `changeset version` on a scratch copy
//
// Prints each public package's new version and its CHANGELOG head (XSTORAGE_CHANGELOG_LINES lines,
// default 40). Fails when a private package got a version or a CHANGELOG (changesets' config:
// privatePackages). Warns (does not fail) on lines that read like internal notes: issue numbers,
// "instead of … local copies", the same entry twice in one package, entries for private packages.
import fs from 'node:fs';
import path from 'node:path';
import { changeset, makeScratch, readJson, root, workspaceDirs } from './scratch.mjs';

const arg = process.argv[2];
const dir = arg === '--preview' || !arg ? makeScratch('changelog-preview') : path.resolve(arg);
if (arg === '--preview' || !arg) changeset(dir, 'version');
const lines = Number(process.env.XSTORAGE_CHANGELOG_LINES ?? 40);

const INTERNAL = [
  [/\(issue \d+\)|\bissue #?\d+\b/i, 'names an internal issue number'],
  [/\blocal cop(y|ies)\b/i, 'describes internal refactoring'],
  [/\b(refactor|no behaviour change|no behavior change)\b/i, 'describes a change users cannot see'],
];
let failures = 0;
let warnings = 0;
for (const d of workspaceDirs(dir)) {
  const pkg = readJson(path.join(dir, d, 'package.json'));
  const before = readJson(path.join(root, d, 'package.json'));
  const log = path.join(dir, d, 'CHANGELOG.md');
  if (pkg.private) {
    if (pkg.version !== before.version || (fs.existsSync(log) && !fs.existsSync(path.join(root, d, 'CHANGELOG.md')))) {
      failures++;
      console.error(
        `  ✗ ${pkg.name} is private but got ${pkg.version !== before.version ? `version ${pkg.version}` : 'a CHANGELOG'}`,
      );
    }
    continue;
  }
  if (pkg.version === before.version) {
    console.log(`\n  ${pkg.name}: stays ${pkg.version} (no changeset)`);
    continue;
  }
  const text = fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : '';
  const entries = text.split('\n').filter((l) => /^- /.test(l));
  console.log(
    `\n  ${pkg.name}: ${before.version} → ${pkg.version}, ${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}`,
  );
  const head = text.split('\n').slice(0, lines);
  for (const l of head) console.log(`    | ${l}`);
  if (text.split('\n').length > lines) console.log(`    | … (${text.split('\n').length - lines} more lines)`);
  const bumps = entries.filter((e) => e.startsWith('- Updated dependencies')).length;
  if (bumps) {
    warnings++;
    console.log(`    ! ${bumps} "Updated dependencies" entr${bumps === 1 ? 'y' : 'ies'} (noise in a first release)`);
  }
  const seen = new Set();
  for (const e of entries) {
    const body = e.replace(/^- ([0-9a-f]{7}: )?/, '');
    if (seen.has(body) && !body.startsWith('Updated dependencies')) {
      warnings++;
      console.log(`    ! the same entry twice: ${body.slice(0, 90)}`);
    }
    seen.add(body);
    for (const [re, why] of INTERNAL) {
      if (re.test(e)) {
        warnings++;
        console.log(`    ! ${why}: ${e.slice(0, 100)}`);
      }
    }
  }
}
console.log(`\n  changelogs: ${warnings} line(s) that read like internal notes (to rewrite before the release)`);
if (failures) process.exit(1);
