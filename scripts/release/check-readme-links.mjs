#!/usr/bin/env node
// Published READMEs link only to what the tarball holds: a relative link or image in a public
// package's README must name a file that `npm pack` would ship; anything else (another package's
// README, the root README, a picture in docs/) must be an absolute URL into the repository, which
// works on the registry's page and in node_modules alike. Each one also links to its package's page
// of the API reference (docs/README.md: TypeDoc, typedoc.json) by absolute URL.
//
//   node scripts/release/check-readme-links.mjs          # fails on links out of the tarball
//   node scripts/release/check-readme-links.mjs --fix    # rewrites them to repository URLs
//   node scripts/release/check-readme-links.mjs --transform packages/cli/README.md < text
//                                                        # the rewrite of the text on stdin
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { REPOSITORY } from './package-policy.mjs';
import { readJson, root, workspaceDirs } from './scratch.mjs';

const RAW = REPOSITORY.replace('https://github.com/', 'https://raw.githubusercontent.com/');
/** Where the API reference (`pnpm docs` → docs/api) is published: GitHub Pages of the repository. */
export const API_SITE = 'https://x-storage.github.io/temporal-storage-drivers';
/** A package's page in the API reference (TypeDoc's file name for the package's module). */
export const apiPage = (name) => `${API_SITE}/modules/${name.replace(/[^\w-]/g, '_')}.html`;
const apiLine = (name) =>
  `API reference: [\`${name}\` on the API site](${apiPage(name)}) (every export, with its TSDoc).`;

/** Replaces each relative link whose target the tarball lacks; `onLink` sees every one. */
export function rewrite(text, pkgDir, packed, onLink = () => {}) {
  // Links inside fenced code blocks and code spans are not links: keep them as they are.
  return text.replace(
    /(```[\s\S]*?```|`[^`\n]*`)|(!?)\[([^\]]*)\]\(((?!https?:|mailto:|#)[^)\s]+)\)/g,
    (m, code, bang, label, target) => {
      if (code) return m;
      const [file, anchor] = target.split('#');
      const rel = path.posix.normalize(path.posix.join(path.relative(root, pkgDir), file));
      const inside = !rel.startsWith('..') && packed.has(path.posix.relative(path.relative(root, pkgDir), rel));
      onLink(target, inside);
      if (inside) return m;
      const isDir = fs.existsSync(path.join(root, rel)) && fs.statSync(path.join(root, rel)).isDirectory();
      const url = bang
        ? `${RAW}/main/${rel}`
        : `${REPOSITORY}/${isDir ? 'tree' : 'blob'}/main/${rel}${anchor ? `#${anchor}` : ''}`;
      return `${bang}[${label}](${url})`;
    },
  );
}

export function packedFiles(dir) {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
    cwd: dir,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  return new Set(JSON.parse(out)[0].files.map((f) => f.path));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const mode = process.argv[2];
  if (mode === '--transform') {
    const rel = process.argv[3];
    const dir = path.join(root, path.dirname(rel));
    process.stdout.write(rewrite(fs.readFileSync(0, 'utf8'), dir, packedFiles(dir)));
    process.exit(0);
  }
  let bad = 0;
  let good = 0;
  for (const d of workspaceDirs()) {
    const dir = path.join(root, d);
    if (readJson(path.join(dir, 'package.json')).private || !fs.existsSync(path.join(dir, 'README.md'))) continue;
    const readme = path.join(dir, 'README.md');
    const { name } = readJson(path.join(dir, 'package.json'));
    let text = fs.readFileSync(readme, 'utf8');
    if (!text.includes(`](${apiPage(name)})`)) {
      if (mode !== '--fix') {
        bad++;
        console.error(`  ✗ ${d}/README.md does not link to its API reference, ${apiPage(name)}`);
      } else text = text.replace(/^## /m, `${apiLine(name)}\n\n## `);
    }
    const original = fs.readFileSync(readme, 'utf8');
    const fixed = rewrite(text, dir, packedFiles(dir), (target, inside) => {
      if (inside) good++;
      else if (mode !== '--fix') {
        bad++;
        console.error(`  ✗ ${d}/README.md links to ${target}, which the tarball does not hold`);
      }
    });
    if (mode === '--fix' && fixed !== original) {
      fs.writeFileSync(readme, fixed);
      console.log(`  fixed ${d}/README.md`);
    }
  }
  if (bad) {
    console.error(`${bad} README link problem(s): node scripts/release/check-readme-links.mjs --fix`);
    process.exit(1);
  }
  if (mode !== '--fix')
    console.log(
      `  ✓ published READMEs: ${good} relative link(s), all inside their tarball; each links to its API reference`,
    );
}
