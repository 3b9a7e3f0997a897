// Fails when an export of a published package has no TSDoc comment. Walks each package's
// public entry (src/index.ts) with the TypeScript compiler API, following re-exports to the
// declaration, and also checks the public members of exported classes and interfaces.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ts = createRequire(path.join(root, 'package.json'))('typescript');

const entries = fs
  .readdirSync(path.join(root, 'packages'))
  .map((d) => path.join(root, 'packages', d))
  .filter((d) => {
    const pkgFile = path.join(d, 'package.json');
    return fs.existsSync(pkgFile) && !JSON.parse(fs.readFileSync(pkgFile, 'utf8')).private;
  })
  .map((d) => path.join(d, 'src', 'index.ts'));

const program = ts.createProgram(entries, {
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.Node16,
  moduleResolution: ts.ModuleResolutionKind.Node16,
  strict: true,
  skipLibCheck: true,
  types: ['node'],
});
const checker = program.getTypeChecker();
const missing = [];

const hasDoc = (symbol) =>
  symbol.getDocumentationComment(checker).length > 0 ||
  (symbol.declarations ?? []).some((d) => ts.getJSDocCommentsAndTags(d).length > 0);

for (const entry of entries) {
  const source = program.getSourceFile(entry);
  const moduleSymbol = source === undefined ? undefined : checker.getSymbolAtLocation(source);
  const pkg = path.relative(root, path.dirname(path.dirname(entry)));
  if (moduleSymbol === undefined) {
    missing.push(`${pkg}: src/index.ts exports nothing`);
    continue;
  }
  for (const exported of checker.getExportsOfModule(moduleSymbol)) {
    const symbol = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
    if (!hasDoc(symbol)) missing.push(`${pkg}: ${exported.name}`);
    // Public members of classes and interfaces declared in this repository.
    const decl = symbol.declarations?.[0];
    if (!decl || decl.getSourceFile().fileName.includes('node_modules')) continue;
    if (!(symbol.flags & (ts.SymbolFlags.Class | ts.SymbolFlags.Interface))) continue;
    for (const member of symbol.members?.values() ?? []) {
      const md = member.declarations?.[0];
      if (!md || md.getSourceFile() !== decl.getSourceFile()) continue;
      const mods = ts.getCombinedModifierFlags(md);
      if (mods & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)) continue;
      if (member.flags & ts.SymbolFlags.TypeParameter) continue;
      if (member.name.startsWith('_') || member.name.startsWith('#')) continue; // hooks, ECMAScript #private
      if (ts.isConstructorDeclaration(md)) continue;
      if (!hasDoc(member)) missing.push(`${pkg}: ${exported.name}.${member.name}`);
    }
  }
}

if (missing.length > 0) {
  console.error(`Exports without TSDoc (${missing.length}):`);
  for (const m of missing) console.error(`  ${m}`);
  process.exit(1);
}
console.log(`  ✓ every export of ${entries.length} packages has TSDoc`);
