#!/usr/bin/env bash
# `pnpm release`: the one way to publish. Builds every package, runs the package checks, then
# `changeset publish` (which publishes each public package whose version is not on the registry yet,
# through `pnpm publish`, so workspace: ranges become real ones and every package's prepack guard
# runs again). Run it after `pnpm changeset version` has been committed. Extra arguments go to
# `changeset publish` (e.g. `--tag next`, `--otp 123456`).
#
# Registry: the one `.npmrc` names (the project's or the user's), with its auth token; pnpm 12 does
# not read npm_config_registry (pnpm_config_registry works), so .npmrc is the reliable way.
set -euo pipefail
cd "$(dirname "$0")/../.."

pending="$(find .changeset -maxdepth 1 -name '*.md' ! -name README.md | wc -l)"
if [ "$pending" -gt 0 ] && [ "${XSTORAGE_RELEASE_ALLOW_PENDING:-}" != 1 ]; then
  echo "release: $pending changeset(s) not yet applied; run \`pnpm changeset version\`, review and commit first" >&2
  exit 1
fi

echo "release: build (tsc -b, every package)"
pnpm run build
echo "release: package checks"
node scripts/release/package-policy.mjs --check
node scripts/check-packages.mjs
node scripts/check-tsdoc.mjs
node scripts/check-docs.mjs
pnpm exec typedoc --logLevel Warn # the API reference (docs/api), every warning an error
echo "release: changeset publish"
pnpm exec changeset publish "$@"
