// Docs drift check: every `import { … } from '@x/…'` in a README's code blocks names something
// the built package really exports, every relative link in a README points to a file that
// exists, and the benchmark README's latest tables are results/latest.md's (`--fix` copies
// them). Run after `tsc -b` (it loads dist/).
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const require = createRequire(import.meta.url);

const packages = new Map();
for (const dir of fs.readdirSync(path.join(root, 'packages'))) {
  const file = path.join(root, 'packages', dir, 'package.json');
  if (!fs.existsSync(file)) continue;
  const pkg = JSON.parse(fs.readFileSync(file, 'utf8'));
  packages.set(pkg.name, path.join(root, 'packages', dir));
}

const readmes = [path.join(root, 'README.md')];
for (const dir of packages.values()) readmes.push(path.join(dir, 'README.md'));
for (const base of ['examples']) {
  const d = path.join(root, base);
  if (!fs.existsSync(d)) continue;
  for (const e of fs.readdirSync(d)) {
    const f = path.join(d, e, 'README.md');
    if (fs.existsSync(f)) readmes.push(f);
  }
}

let failures = 0;
let checkedImports = 0;
let checkedLinks = 0;
const fail = (where, message) => {
  failures++;
  console.error(`  ✗ ${path.relative(root, where)}: ${message}`);
};

const exportsOf = new Map();
function exportedNames(name) {
  if (!exportsOf.has(name)) {
    const dir = packages.get(name);
    exportsOf.set(name, dir ? new Set(Object.keys(require(dir))) : undefined);
  }
  return exportsOf.get(name);
}

for (const readme of readmes) {
  if (!fs.existsSync(readme)) continue;
  const text = fs.readFileSync(readme, 'utf8');
  const blocks = [...text.matchAll(/```(?:ts|typescript|js|javascript|mjs|cjs)\n([\s\S]*?)```/g)].map((m) => m[1]);
  for (const code of blocks) {
    for (const m of code.matchAll(/import\s+(type\s+)?\{([^}]*)\}\s+from\s+'(@x\/[^']+)'/g)) {
      const typeOnlyImport = Boolean(m[1]);
      const names = exportedNames(m[3]);
      if (!names) {
        fail(readme, `imports from ${m[3]}, which is not a package of this repository`);
        continue;
      }
      for (let spec of m[2].split(',')) {
        spec = spec.trim();
        if (!spec) continue;
        // Types are erased at runtime; their existence is checked by the consumer program and tsc.
        if (typeOnlyImport || spec.startsWith('type ')) continue;
        const name = spec.split(/\s+as\s+/)[0].trim();
        checkedImports++;
        if (!names.has(name)) fail(readme, `imports ${name} from ${m[3]}, which does not export it`);
      }
    }
  }
  // Links outside code: fenced blocks and inline code spans are prose-free.
  const prose = text.replace(/```[\s\S]*?```/g, '').replace(/`[^`\n]*`/g, '');
  for (const m of prose.matchAll(/\]\(((?!https?:|mailto:|#)[^)\s]+)\)/g)) {
    const target = m[1].split('#')[0];
    if (!target) continue;
    checkedLinks++;
    if (!fs.existsSync(path.resolve(path.dirname(readme), target)))
      fail(readme, `links to ${m[1]}, which does not exist`);
  }
}

// The benchmark README's "Latest results" tables are the first two tables (loopback results and
// their targets) of the last full run's results/latest.md: copied, never retyped.
const benchReadme = path.join(root, 'bench', 'README.md');
const benchLatest = path.join(root, 'bench', 'results', 'latest.md');
let benchTables = 'no benchmark tables';
if (fs.existsSync(benchReadme) && fs.existsSync(benchLatest)) {
  const tables = [];
  let current;
  for (const line of fs.readFileSync(benchLatest, 'utf8').split('\n')) {
    if (!line.startsWith('|')) {
      current = undefined;
      continue;
    }
    if (current === undefined) {
      current = [];
      tables.push(current);
    }
    current.push(line);
  }
  const expected = tables
    .slice(0, 2)
    .map((t) => t.join('\n'))
    .join('\n\n');
  const readmeText = fs.readFileSync(benchReadme, 'utf8');
  const block = /(<!-- latest-tables:start[^\n]*-->\n)([\s\S]*?)\n(<!-- latest-tables:end -->)/.exec(readmeText);
  if (!block) fail(benchReadme, 'has no <!-- latest-tables:start --> … <!-- latest-tables:end --> block');
  else if (block[2] !== expected) {
    if (process.argv.includes('--fix')) {
      fs.writeFileSync(benchReadme, readmeText.replace(block[0], `${block[1]}${expected}\n${block[3]}`));
      benchTables = 'benchmark tables copied from results/latest.md';
    } else {
      fail(benchReadme, "Latest results tables differ from results/latest.md's (node scripts/check-docs.mjs --fix)");
    }
  } else benchTables = 'benchmark tables match results/latest.md';
}

if (failures > 0) {
  console.error(`${failures} docs problem(s)`);
  process.exit(1);
}
console.log(
  `  ✓ ${readmes.length} READMEs: ${checkedImports} imported names exist, ${checkedLinks} relative links resolve; ${benchTables}`,
);
