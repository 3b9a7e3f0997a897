#!/usr/bin/env bash
# Installs the toolchain and dependencies on a fresh machine. Idempotent: safe to run again.
# Source it (`. scripts/bootstrap.sh`) so that a pnpm installed under .tmp/tools stays on PATH;
# running it as a script works too.
#
# pnpm: the version pinned in package.json#packageManager. Installed globally with npm when the
# global prefix is writable (root, or a user-owned Node), else under .tmp/tools (no root needed).
bootstrap() {
  local repo
  repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  local want
  want="$(node -p "require('$repo/package.json').packageManager.split('@')[1]")" || return 1

  local node_major
  node_major="$(node -p 'process.versions.node.split(".")[0]')"
  if [ "$node_major" -lt 20 ]; then
    echo "bootstrap: Node.js >= 20 is required (found $(node --version))" >&2
    return 1
  fi

  local tools="$repo/.tmp/tools"
  if [ -x "$tools/node_modules/.bin/pnpm" ]; then export PATH="$tools/node_modules/.bin:$PATH"; fi
  if [ "$(pnpm --version 2>/dev/null)" != "$want" ]; then
    if [ -w "$(npm prefix --global)/lib" ] || [ -w "$(npm prefix --global)" ]; then
      echo "bootstrap: installing pnpm@$want globally"
      npm install --global --no-fund --no-audit --loglevel=error "pnpm@$want" >/dev/null || return 1
    else
      echo "bootstrap: installing pnpm@$want under .tmp/tools"
      mkdir -p "$tools"
      npm install --prefix "$tools" --no-save --no-fund --no-audit --loglevel=error "pnpm@$want" >/dev/null || return 1
      export PATH="$tools/node_modules/.bin:$PATH"
    fi
  fi

  echo "bootstrap: pnpm $(pnpm --version) install"
  (cd "$repo" && pnpm install --frozen-lockfile --reporter=silent)
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  bootstrap
else
  bootstrap
fi
