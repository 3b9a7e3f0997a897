#!/usr/bin/env bash
# Runs the demo on a fresh machine: installs what it needs, builds, runs. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bootstrap.sh
pnpm exec tsc -b examples/demo
node examples/demo/dist/demo.js "$@"
