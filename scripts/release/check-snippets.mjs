#!/usr/bin/env node
// README snippets, verbatim, as a user's code: every ```ts block of the root README and of every
// published package's README, type-checked against the packages as installed from the release-test
// registry (scripts/release/registry-check.sh passes the project it installed), three ways:
//   commonjs  module commonjs + moduleResolution node10 (esModuleInterop)  .ts
//             (node10 is deprecated in TypeScript 6 — ignoreDeprecations "6.0", as such projects set —
//             and it is the strictest for packages: no `exports` map, only `main`/`types`)
//   nodenext  module nodenext (an ES module)                                .mts
//   bundler   module preserve + moduleResolution bundler                    .ts
// A block with top-level `await` is an ES module by nature: it is checked as nodenext and bundler only.
//
// Free identifiers: a block that continues an earlier one (uses `driver`, `client`, `S3Client`…
// without defining them) gets them from its README's prelude, scripts/release/snippets/<name>.ts
// (`root.ts` for the root README, else the package folder's name): one import or `declare` per line,
// appended after the block (so line numbers stay the README's) only when the block does not define
// that name itself. Keep preludes to what continuation blocks need.
// `// @run 2, 4` in a prelude runs those blocks (numbered from 0 in their README) after the check,
// from the nodenext build, with the environment of `// @env NAME=XSTORAGE_VAR` lines (`NAME='literal'`
// for a fixed value); a block that needs a `declare`d prelude name cannot run. A block passes when its
// module evaluates to the end without throwing (top-level awaits included); the process then exits,
// so clients a block leaves open (as an application would) do not hold it. `// @module ./my-driver.js = export declare class …`
// stands for a module of the user's own that a block imports (e.g. the driver a test imports).
//
//   node scripts/release/check-snippets.mjs <project dir with node_modules>
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { readJson, root, workspaceDirs } from './scratch.mjs';

const project = path.resolve(process.argv[2] ?? '');
if (!fs.existsSync(path.join(project, 'node_modules'))) {
  console.error('usage: check-snippets.mjs <project dir with node_modules>');
  process.exit(2);
}

const readmes = [{ id: 'root', file: path.join(root, 'README.md') }];
for (const d of workspaceDirs()) {
  const dir = path.join(root, d);
  if (!readJson(path.join(dir, 'package.json')).private && fs.existsSync(path.join(dir, 'README.md')))
    readmes.push({ id: path.basename(d), file: path.join(dir, 'README.md') });
}

const declared = (stmt) => {
  const names = [];
  const imp = stmt.match(/^import\s+(?:type\s+)?(?:(\w+)\s*,?\s*)?(?:\{([^}]*)\})?(?:\*\s+as\s+(\w+))?\s*from/);
  if (imp) {
    if (imp[1]) names.push(imp[1]);
    if (imp[3]) names.push(imp[3]);
    for (const s of (imp[2] ?? '').split(',')) {
      const n = s
        .trim()
        .replace(/^type\s+/, '')
        .split(/\s+as\s+/)
        .pop();
      if (n) names.push(n);
    }
  }
  const decl = stmt.match(/^(?:declare\s+)?(?:const|let|var|function|class|type|interface)\s+(\w+)/);
  if (decl) names.push(decl[1]);
  return names;
};
const definesName = (code, name) =>
  new RegExp(
    `(^|\\n)\\s*(export\\s+)?(declare\\s+)?(const|let|var|function|class|type|interface)\\s+${name}\\b|import[^;]*\\b${name}\\b[^;]*from`,
  ).test(code);

const blocks = [];
const modules = new Map();
for (const { id, file } of readmes) {
  const text = fs.readFileSync(file, 'utf8');
  const preludeFile = path.join(root, 'scripts', 'release', 'snippets', `${id}.ts`);
  const prelude = fs.existsSync(preludeFile) ? fs.readFileSync(preludeFile, 'utf8').split('\n') : [];
  const run = new Set(
    (prelude.find((l) => l.startsWith('// @run')) ?? '')
      .replace('// @run', '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
      .map(Number),
  );
  const env = Object.fromEntries(
    prelude
      .filter((l) => l.startsWith('// @env '))
      .map((l) => l.slice(8).trim())
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)])
      .map(([k, v]) => [k, /^'.*'$/.test(v) ? v.slice(1, -1) : (process.env[v] ?? '')]),
  );
  const statements = prelude.filter((l) => l.trim() && !l.startsWith('//'));
  // `// @module ./name.js = <declarations>`: a module of the user's own that a block imports.
  for (const l of prelude.filter((x) => x.startsWith('// @module '))) {
    const [, spec, decl] = l.match(/^\/\/ @module (\.{1,2}\/[\w/.-]+)\.js = (.*)$/) ?? [];
    if (spec) modules.set(`${spec}.ts`, `${decl}\n`);
  }
  let n = 0;
  // Fences may be indented (a block inside a list item): the indent is not part of the code.
  for (const m of text.matchAll(/^( *)```(?:ts|typescript)\n([\s\S]*?)^\1```/gm)) {
    const code = m[2]
      .split('\n')
      .map((l) => l.slice(Math.min(m[1].length, l.length - l.trimStart().length)))
      .join('\n');
    const line = text.slice(0, m.index).split('\n').length; // the fence's line; code starts on line + 1
    // A name is used when it appears as an identifier: not in a string or comment, not as a property
    // (`.name`; `...name` is a use) or an object key (`name:`).
    const bare = code
      .replace(/\/\/.*$|\/\*[\s\S]*?\*\//gm, '')
      .replace(/'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"|`(?:[^`\\]|\\.)*`/g, "''")
      .replaceAll('...', ' '); // a spread is a use
    const added = statements.filter((s) =>
      declared(s).some(
        (name) => !definesName(code, name) && new RegExp(`(?<![.\\w$])${name}\\b(?!\\s*:(?!:))`).test(bare),
      ),
    );
    const tla = code.split('\n').some((l) => /^\S/.test(l) && /\bawait\b/.test(l));
    blocks.push({ id, file, n, line, code, added, tla, run: run.has(n), env });
    n++;
  }
}

const MODES = {
  commonjs: {
    ext: '.ts',
    options: { module: 'commonjs', moduleResolution: 'node10', esModuleInterop: true, ignoreDeprecations: '6.0' },
  },
  nodenext: { ext: '.mts', options: { module: 'nodenext', moduleResolution: 'nodenext' } },
  bundler: { ext: '.ts', options: { module: 'preserve', moduleResolution: 'bundler', noEmit: true } },
};
const tsc = path.join(project, 'node_modules', 'typescript', 'bin', 'tsc');
let failures = 0;
const where = new Map();
fs.rmSync(path.join(project, 'src'), { recursive: true, force: true });
for (const [mode, { ext, options }] of Object.entries(MODES)) {
  const dir = path.join(project, `snippets-${mode}`);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const files = [];
  for (const [name, text] of modules) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), text);
    files.push(name);
  }
  for (const b of blocks) {
    if (mode === 'commonjs' && b.tla) continue;
    const name = `${b.id}-${b.n}${ext}`;
    where.set(name, b);
    const tail = b.added.length ? `\n// prelude (scripts/release/snippets/${b.id}.ts)\n${b.added.join('\n')}\n` : '\n';
    fs.writeFileSync(path.join(dir, name), `${b.code}${tail}export {};\n`);
    files.push(name);
  }
  fs.writeFileSync(
    path.join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        lib: ['ES2022'],
        strict: true,
        skipLibCheck: true,
        types: ['node'],
        rootDir: '..',
        outDir: 'out',
        ...options,
      },
      files,
    }),
  );
  const r = spawnSync(process.execPath, [tsc, '-p', dir, '--pretty', 'false'], { encoding: 'utf8' });
  const errors = r.stdout.split('\n').filter((l) => /error TS\d+/.test(l));
  for (const e of errors) {
    const m = e.match(/^(?:.*\/)?([^/(]+)\((\d+),(\d+)\): (.*)$/);
    const b = m && where.get(m[1]);
    if (m && !b && /error TS/.test(e) && [...modules.keys()].some((k) => k.endsWith(m[1]))) {
      console.error(`  ✗ ${mode}: a prelude @module: ${e}`);
      continue;
    }
    if (b && Number(m[2]) <= b.code.split('\n').length) {
      console.error(`  ✗ ${path.relative(root, b.file)}:${b.line + Number(m[2])} (block ${b.n}, ${mode}): ${m[4]}`);
    } else console.error(`  ✗ ${mode}: ${e}`);
  }
  failures += errors.length;
  const skipped = blocks.length + modules.size - files.length;
  console.log(
    `  ${errors.length ? '✗' : '✓'} ${mode}: ${files.length - modules.size} blocks type-checked${skipped ? ` (${skipped} with top-level await: ES modules only)` : ''}, ${errors.length} error(s)`,
  );
}

for (const b of blocks.filter((x) => x.run)) {
  if (b.added.some((s) => s.startsWith('declare'))) {
    failures++;
    console.error(`  ✗ ${path.relative(root, b.file)} block ${b.n} is marked @run but needs declared names`);
    continue;
  }
  const js = path.join(project, 'snippets-nodenext', 'out', 'snippets-nodenext', `${b.id}-${b.n}.mjs`);
  const evaluate = `import(${JSON.stringify(pathToFileURL(js).href)}).then(() => process.exit(0), (e) => { console.error(e); process.exit(1); })`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', evaluate], {
    encoding: 'utf8',
    env: { ...process.env, ...b.env },
    timeout: 30_000,
  });
  if (r.status === 0) console.log(`  ✓ ran ${path.relative(root, b.file)} block ${b.n} (line ${b.line + 1})`);
  else {
    failures++;
    console.error(
      `  ✗ ${path.relative(root, b.file)} block ${b.n} (line ${b.line + 1}) exited ${r.status ?? r.signal}: ${(r.stderr || r.stdout).trim().split('\n').slice(0, 6).join('\n    ')}`,
    );
  }
}
console.log(
  `  README snippets: ${blocks.length} blocks in ${readmes.length} READMEs, ${blocks.filter((b) => b.run).length} run`,
);
if (failures) process.exit(1);
