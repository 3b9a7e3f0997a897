#!/usr/bin/env bash
# A user's view of the release: packs every published package with pnpm (as `changeset publish`
# does: workspace: ranges become real versions), installs the tarballs into a plain npm project
# together with their peers from the registry, type-checks a user's program against the installed
# .d.ts files (strict, skipLibCheck off), runs it against the real servers, and runs the CLI bin
# (@x/storage-cli's x-storage).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
OUT="$ROOT/.tmp/consumer"
rm -rf "$OUT" && mkdir -p "$OUT/tarballs" "$OUT/app"

for dir in packages/*/; do
  # Private workspace packages (e2e, soak) are never published.
  node -e 'process.exit(require(process.argv[1]).private ? 1 : 0)' "$ROOT/$dir/package.json" || continue
  (cd "$dir" && pnpm pack --pack-destination "$OUT/tarballs" >/dev/null)
done
cp scripts/consumer/package.json scripts/consumer/app.ts scripts/consumer/tsconfig.json "$OUT/app/"

node - "$OUT" <<'JS'
const fs = require('node:fs');
const path = require('node:path');
const out = process.argv[2];
const app = path.join(out, 'app', 'package.json');
const pkg = JSON.parse(fs.readFileSync(app, 'utf8'));
for (const file of fs.readdirSync(path.join(out, 'tarballs'))) {
  const { execFileSync } = require('node:child_process');
  const manifest = JSON.parse(
    execFileSync('tar', ['-xOzf', path.join(out, 'tarballs', file), 'package/package.json'], { encoding: 'utf8' }),
  );
  const text = JSON.stringify(manifest);
  if (text.includes('workspace:')) throw new Error(`${file}: packed package.json still has a workspace: range`);
  pkg.dependencies[manifest.name] = `file:../tarballs/${file}`;
}
fs.writeFileSync(app, JSON.stringify(pkg, null, 2));
console.log(`consumer: ${Object.keys(pkg.dependencies).length} dependencies, packed ones from ${out}/tarballs`);
JS

cd "$OUT/app"
npm install --no-audit --no-fund --loglevel=error >/dev/null
"$ROOT/node_modules/.bin/tsc" -p tsconfig.json
node dist/app.js
# The x-storage bin is @x/storage-cli's; the codec server ships none.
[ "$(readlink -f node_modules/.bin/x-storage)" = "$(readlink -f node_modules/@x/storage-cli/dist/bin.js)" ] ||
  { echo "x-storage is not the bin of @x/storage-cli" >&2; exit 1; }
node -e 'process.exit(require("@x/storage-codec-server/package.json").bin ? 1 : 0)' ||
  { echo "@x/storage-codec-server still declares a bin" >&2; exit 1; }
npx --no-install x-storage --help | head -1
