#!/usr/bin/env bash
# The lean subset on the other supported Node lines (the full test command runs on Node 24):
#   bash scripts/release/node-lines.sh 22 20
# On each line (scripts/release/tools.sh installs it from the npm registry; 20 is the machine's node):
# the published packages compiled from scratch (tsc, into a scratch folder: the checkout's dist/ is
# left alone), their built output loaded with require() and import(), core's and the suite's unit
# tests and every driver's conformance suite under jest against the real servers, and the suite under
# node:test. (The install of the released packages from the local registry on these lines is part of
# scripts/release/registry-check.sh: XSTORAGE_RELEASE_NODE_LINES.) Needs the servers of
# scripts/services.sh. Writes .tmp/jest-results-node<line>.json and .tmp/node-test-node<line>.tap.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"
eval "$(bash scripts/services.sh env)"
status=0
for line in "$@"; do
  bin="$(bash scripts/release/tools.sh node "$line")" || exit 1
  export PATH="$bin:${PATH}"
  echo "--- Node $(node --version)"
  start=$SECONDS
  # Inside the checkout, so the scratch tsconfigs find node_modules/@types as the real ones do.
  mkdir -p .tmp && out="$(mktemp -d "$ROOT/.tmp/node-lines.XXXXXX")"
  # Every published package, compiled from scratch on this line (the project references as the build does).
  refs="$(node -e '
    const fs = require("fs");
    const dirs = fs.readdirSync("packages").filter((d) => {
      const f = `packages/${d}/package.json`;
      return fs.existsSync(f) && !JSON.parse(fs.readFileSync(f, "utf8")).private && fs.existsSync(`packages/${d}/tsconfig.json`);
    });
    console.log(JSON.stringify({ files: [], references: dirs.map((d) => ({ path: `${process.cwd()}/packages/${d}` })) }));')"
  if node -e '
    // tsc --build with every output redirected: a scratch copy of each tsconfig pointing at the
    // sources, outDir and tsBuildInfoFile in the scratch folder.
    const fs = require("fs"), path = require("path");
    const [out, refs] = process.argv.slice(1);
    const tsconfigs = [];
    for (const { path: dir } of JSON.parse(refs).references) {
      const name = path.basename(dir);
      const cfg = JSON.parse(fs.readFileSync(path.join(dir, "tsconfig.json"), "utf8"));
      cfg.extends = path.join(dir, cfg.extends);
      cfg.compilerOptions = { ...cfg.compilerOptions, rootDir: path.join(dir, "src"), outDir: path.join(out, name), tsBuildInfoFile: path.join(out, name, ".tsbuildinfo") };
      cfg.include = [path.join(dir, "src")];
      cfg.references = (cfg.references ?? []).map((r) => ({ path: path.join(out, `${path.basename(path.resolve(dir, r.path))}.json`) }));
      fs.writeFileSync(path.join(out, `${name}.json`), JSON.stringify(cfg));
      tsconfigs.push(path.join(out, `${name}.json`));
    }
    fs.writeFileSync(path.join(out, "tsconfig.json"), JSON.stringify({ files: [], references: tsconfigs.map((p) => ({ path: p })) }));
  ' "$out" "$refs" && node node_modules/typescript/bin/tsc -b "$out/tsconfig.json"; then
    echo "  ✓ build: $(find "$out" -name '*.js' | wc -l) files compiled from scratch ($((SECONDS - start))s)"
  else
    echo "  ✗ build failed on Node $line"; status=1
  fi
  rm -rf "$out"
  node scripts/check-packages.mjs >/dev/null || { echo "  ✗ built packages do not load on Node $line"; status=1; }
  start=$SECONDS
  conformance="$(ls packages/*/test/conformance.test.ts | tr '\n' ' ')"
  # shellcheck disable=SC2086
  if pnpm exec jest --ci --silent -w 2 --json --outputFile=".tmp/jest-results-node$line.json" \
    packages/core/test packages/test-suite/test $conformance >".tmp/jest-node$line.log" 2>&1; then
    echo "  ✓ jest: $(node -p "const r=require('./.tmp/jest-results-node$line.json'); r.numPassedTests+' passed, '+r.numFailedTests+' failed in '+r.numTotalTestSuites+' files'") ($((SECONDS - start))s)"
  else
    tail -40 ".tmp/jest-node$line.log"; echo "  ✗ jest failed on Node $line (.tmp/jest-node$line.log)"; status=1
  fi
  start=$SECONDS
  if node --test --test-reporter=tap --test-reporter-destination=".tmp/node-test-node$line.tap" packages/test-suite/test-node/*.test.mjs >/dev/null 2>&1; then
    echo "  ✓ node:test conformance ($((SECONDS - start))s)"
  else
    echo "  ✗ node:test conformance failed on Node $line (.tmp/node-test-node$line.tap)"; status=1
  fi
done
exit "$status"
