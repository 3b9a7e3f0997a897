#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it: bootstrap, lint, type check, build checks,
# real backends on loopback (scripts/services.sh), unit/conformance/integration tests, a release to a
# local registry installed by npm, pnpm and yarn, README snippets, the API reference, demo — on
# Node 24 (the primary line, installed from the npm registry by scripts/release/tools.sh), then
# build + unit + conformance + a registry install on Node 22 and 20 (scripts/release/node-lines.sh).
# XSTORAGE_PRIMARY_NODE=system runs the primary part on the machine's node instead;
# XSTORAGE_NODE_LINES ("22 20" by default; "" for none) picks the other lines.
# Prints a pass/fail summary.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
mkdir -p .tmp
XSTORAGE_MACHINE_NODE="$(command -v node)" && export XSTORAGE_MACHINE_NODE
if [ "${XSTORAGE_PRIMARY_NODE:-24}" != system ]; then
  primary_bin="$(bash scripts/release/tools.sh node "${XSTORAGE_PRIMARY_NODE:-24}")" || { echo "summary: 0 passed, 1 failed"; exit 1; }
  export PATH="$primary_bin:$PATH"
fi
echo "test: node $(node --version)"
. scripts/bootstrap.sh || { echo "summary: 0 passed, 1 failed"; exit 1; }

declare -a STEP_NAMES=() STEP_RESULTS=()
failed_steps=0
step() {
  local name="$1"; shift
  echo
  echo "=== $name"
  local start=$SECONDS
  if "$@"; then
    STEP_NAMES+=("$name"); STEP_RESULTS+=("ok   ($((SECONDS - start))s)")
  else
    STEP_NAMES+=("$name"); STEP_RESULTS+=("FAIL ($((SECONDS - start))s)"); failed_steps=$((failed_steps + 1))
  fi
}

start_services() {
  bash scripts/services.sh start || return 1
  # The XSTORAGE_* variables the tests read (loopback URLs of the servers just started or reused).
  eval "$(bash scripts/services.sh env)"
}

# Results of this run only: a runner that crashes before writing must not be credited with old counts.
rm -f .tmp/jest-results.json .tmp/node-test.tap .tmp/jest-results-node*.json .tmp/node-test-node*.tap
read -r -a OTHER_LINES <<<"${XSTORAGE_NODE_LINES-22 20}"

step "lint + format (biome)" pnpm exec biome check .
step "type check (tsc -b, sources and tests)" pnpm exec tsc -b tsconfig.all.json
step "built packages load with require() and import()" node scripts/check-packages.mjs
step "release policy: package.json fields, published README links" \
  bash -c 'node scripts/release/package-policy.mjs --check && node scripts/release/check-readme-links.mjs'
step "peer ranges on core over a simulated minor and major core release" node scripts/release/peer-ranges.mjs
step "TSDoc on every export" node scripts/check-tsdoc.mjs
step "API reference (TypeDoc, every warning an error) → docs/api" pnpm exec typedoc --logLevel Warn
step "READMEs: imported names exist, relative links resolve, benchmark tables match results" node scripts/check-docs.mjs
step "services: Redis, Redis Cluster, PostgreSQL, S3 (moto) on loopback" start_services
# Two workers: most test files wait on servers and subprocesses, so both cores stay busy (8 min
# instead of 12 on this 2-core machine).
step "jest (unit, conformance, faults, hostile input, soak, Temporal e2e, Python interop)" pnpm exec jest --ci --maxWorkers=2 --json --outputFile=.tmp/jest-results.json
step "release to a local registry; npm, pnpm, yarn consumers (scripts/release/registry-check.sh)" \
  env XSTORAGE_RELEASE_NODE_LINES="${OTHER_LINES[*]}" bash scripts/release/registry-check.sh
step "conformance suite under node:test (runner-agnostic)" node --test \
  --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination=.tmp/node-test.tap \
  packages/test-suite/test-node/*.test.mjs
if [ "${#OTHER_LINES[@]}" -gt 0 ]; then
  step "Node ${OTHER_LINES[*]}: build, load, core + suite unit tests, conformance (jest, node:test)" \
    bash scripts/release/node-lines.sh "${OTHER_LINES[@]}"
fi
step "benchmark smoke run (pnpm bench --quick; the full run is pnpm bench)" pnpm bench --quick
step "demo" node examples/demo/dist/demo.js --quiet
step "demo with a gzip payload codec" node examples/demo/dist/demo.js --quiet --gzip

echo
echo "=== summary"
for i in "${!STEP_NAMES[@]}"; do printf '  %-56s %s\n' "${STEP_NAMES[$i]}" "${STEP_RESULTS[$i]}"; done
node -e '
const fs = require("fs");
let passed = 0, failed = 0, skipped = 0;
try {
  const r = JSON.parse(fs.readFileSync(".tmp/jest-results.json", "utf8"));
  passed = r.numPassedTests; failed = r.numFailedTests; skipped = r.numPendingTests + r.numTodoTests;
  if (r.numRuntimeErrorTestSuites) failed += r.numRuntimeErrorTestSuites;
} catch { failed += 1; }
try {
  const tap = fs.readFileSync(".tmp/node-test.tap", "utf8");
  const n = (k) => Number((tap.match(new RegExp(`^# ${k} (\\d+)$`, "m")) || [])[1] || 0);
  passed += n("pass"); failed += n("fail") + n("cancelled"); skipped += n("skipped") + n("todo");
} catch { failed += 1; }
// The other Node lines (scripts/release/node-lines.sh), when they ran.
for (const f of fs.readdirSync(".tmp").filter((f) => /^jest-results-node\d+\.json$/.test(f))) {
  const r = JSON.parse(fs.readFileSync(`.tmp/${f}`, "utf8"));
  passed += r.numPassedTests; failed += r.numFailedTests + r.numRuntimeErrorTestSuites; skipped += r.numPendingTests + r.numTodoTests;
}
for (const f of fs.readdirSync(".tmp").filter((f) => /^node-test-node\d+\.tap$/.test(f))) {
  const tap = fs.readFileSync(`.tmp/${f}`, "utf8");
  const n = (k) => Number((tap.match(new RegExp(`^# ${k} (\\d+)$`, "m")) || [])[1] || 0);
  passed += n("pass"); failed += n("fail") + n("cancelled"); skipped += n("skipped") + n("todo");
}
const steps = Number(process.argv[1]);
console.log(`  tests (jest + node:test): ${passed} passed, ${failed} failed, ${skipped} skipped; ${steps} step(s) failed`);
console.log(`summary: ${passed} passed, ${failed + steps} failed, ${skipped} skipped`);
' "$failed_steps"
[ "$failed_steps" -eq 0 ]
