#!/usr/bin/env bash
# A release as users receive it, end to end on loopback (run by scripts/test.sh; needs the servers of
# scripts/services.sh):
#   1. a private npm registry (verdaccio, scripts/release/tools.sh) with a fresh storage;
#   2. a clean copy of the repository (tracked and new files, no build output, no node_modules),
#      installed with the frozen lockfile; the prepack guard refuses to pack a package that has
#      no dist yet (pnpm pack and npm pack);
#   3. `changeset version` (the CHANGELOG heads it writes are printed: what a release would say),
#      checked: private packages get no version and no CHANGELOG;
#   4. `pnpm release` (build, package checks, `changeset publish`) to that registry; every public
#      package is checked there (version, no workspace: range, repository, code in the tarball);
#   5. a third-party driver (scripts/release/third-party-driver) built against the released core,
#      tested with the released conformance suite against the real Redis, and published;
#   6. fresh consumer projects (scripts/release/consumers: one driver alone; three drivers composed;
#      the third-party driver next to the bundled S3 driver) installed FROM THAT REGISTRY with npm,
#      pnpm and yarn 4 (Plug'n'Play), type-checked strictly and run against the real servers;
#   7. with XSTORAGE_RELEASE_NODE_LINES (e.g. "22 20"): the composed consumer installed with npm and
#      run on each of those Node lines too.
# Knobs: XSTORAGE_REGISTRY_PORT (default 4883), XSTORAGE_RELEASE_PMS ("npm pnpm yarn"),
# XSTORAGE_RELEASE_SCENARIOS ("single composed third-party"), XSTORAGE_RELEASE_DIR (work folder,
# default /tmp/x-storage-release-<checkout hash>: outside the checkout, so no consumer can resolve a
# package from the repository's node_modules), XSTORAGE_RELEASE_LEAVE_OUT (folders not copied, e.g. a
# package still being written in a shared checkout: "packages/driver-gcs"), XSTORAGE_RELEASE_PREPARE_COPY
# (a shell command run in the copy before installing it; for the same situation).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"
RUN="${XSTORAGE_RELEASE_DIR:-/tmp/x-storage-release-$(printf %s "$ROOT" | md5sum | cut -c1-8)}"
PORT="${XSTORAGE_REGISTRY_PORT:-4883}"
REG="http://127.0.0.1:$PORT/"
read -r -a PMS <<<"${XSTORAGE_RELEASE_PMS:-npm pnpm yarn}"
read -r -a SCENARIOS <<<"${XSTORAGE_RELEASE_SCENARIOS:-single composed third-party}"
read -r -a NODE_LINES <<<"${XSTORAGE_RELEASE_NODE_LINES:-}"

phase_start=$SECONDS
phase() { echo "--- [$((SECONDS - phase_start))s] $*"; }
die() { echo "registry-check: $*" >&2; exit 1; }
quiet() { # quiet <log> <command...>: output to the log, shown only on failure
  local log="$1"; shift
  "$@" >"$log" 2>&1 || { tail -40 "$log" >&2; echo "(full log: $log)" >&2; return 1; }
}

rm -rf "$RUN" && mkdir -p "$RUN/registry" "$RUN/consumers" "$RUN/logs"
VERDACCIO="$(bash scripts/release/tools.sh verdaccio)"
YARN="$(bash scripts/release/tools.sh yarn)"

# ------------------------------------------------------------------ 1. registry
phase "registry: verdaccio $(node "$VERDACCIO" --version) on 127.0.0.1:$PORT (node $(node --version))"
cat >"$RUN/registry/config.yaml" <<YAML
storage: ./storage
auth:
  htpasswd:
    file: ./htpasswd
    max_users: 10
# No uplinks: only what this run publishes is here; everything else comes from the npm registry.
uplinks: {}
packages:
  '@x/*': { access: \$all, publish: \$authenticated }
  '@acme/*': { access: \$all, publish: \$authenticated }
web: { enable: false }
log: { type: stdout, format: pretty, level: warn }
YAML
curl -s -o /dev/null "$REG-/ping" && die "something already listens on 127.0.0.1:$PORT (XSTORAGE_REGISTRY_PORT)"
(cd "$RUN/registry" && exec node "$VERDACCIO" --config config.yaml --listen "127.0.0.1:$PORT" >verdaccio.log 2>&1) &
REGISTRY_PID=$!
trap 'kill "$REGISTRY_PID" 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf -o /dev/null "$REG-/ping" && break; sleep 0.2; done
curl -sf -o /dev/null "$REG-/ping" || die "verdaccio did not answer (see $RUN/registry/verdaccio.log)"
TOKEN="$(curl -sf -X PUT -H 'content-type: application/json' \
  -d '{"name":"release","password":"release-test-only"}' "$REG-/user/org.couchdb.user:release" |
  node -pe 'JSON.parse(require("fs").readFileSync(0, "utf8")).token')"
[ -n "$TOKEN" ] && [ "$TOKEN" != undefined ] || die "no token from verdaccio"
# A project .npmrc (npm and pnpm): the @x and @acme scopes from the test registry, the rest from npm's.
NPMRC="@x:registry=$REG
@acme:registry=$REG
//127.0.0.1:$PORT/:_authToken=$TOKEN"

# ------------------------------------------------------------------ 2. clean copy
phase "clean copy of the checkout (tracked and new files) → $RUN/repo"
COPY="$RUN/repo"
mkdir -p "$COPY"
git ls-files -z --cached --others --exclude-standard |
  node -e '
    const fs = require("fs");
    const out = (process.env.XSTORAGE_RELEASE_LEAVE_OUT ?? "").split(/\s+/).filter(Boolean).map((d) => d.replace(/\/?$/, "/"));
    const files = fs.readFileSync(0, "utf8").split("\0");
    process.stdout.write(files.filter((f) => f && fs.existsSync(f) && !out.some((d) => f.startsWith(d))).join("\0"));' |
  tar -cf - --null -T - | tar -xf - -C "$COPY"
printf '%s\n' "$NPMRC" >"$COPY/.npmrc"
cd "$COPY"
[ -z "${XSTORAGE_RELEASE_PREPARE_COPY:-}" ] || bash -c "$XSTORAGE_RELEASE_PREPARE_COPY"
phase "pnpm install --frozen-lockfile (the copy)"
quiet "$RUN/logs/install.log" pnpm install --frozen-lockfile --prefer-offline

phase "guard: packing a package that has no dist is refused"
for packer in "pnpm pack --pack-destination $RUN/logs" "npm pack --pack-destination $RUN/logs"; do
  if (cd packages/core && $packer) >"$RUN/logs/guard.log" 2>&1; then
    cat "$RUN/logs/guard.log" >&2; die "'$packer' packed @x/storage-driver-core without its dist"
  fi
  grep -q 'refusing to pack' "$RUN/logs/guard.log" || { cat "$RUN/logs/guard.log" >&2; die "'$packer' failed, but not by the guard"; }
  echo "  ✓ $packer without dist/: refused ($(grep -c 'is missing' "$RUN/logs/guard.log") missing file(s) named)"
done

# ------------------------------------------------------------------ 3. changeset version
phase "changeset version"
quiet "$RUN/logs/version.log" pnpm exec changeset version
node "$ROOT/scripts/release/changelog-report.mjs" "$COPY"

# ------------------------------------------------------------------ 4. pnpm release → registry
phase "pnpm release (build, package checks, changeset publish) → $REG"
quiet "$RUN/logs/release.log" env npm_config_registry="$REG" pnpm release
node "$ROOT/scripts/release/verify-published.mjs" "$COPY" "$REG"

# name → ^version of what was just released, for the RELEASED placeholders below.
fill() { # fill <template package.json> <out> [extra versions JSON] [optional: drop what was not released]
  node -e '
    const fs = require("fs"); const path = require("path");
    const [tpl, out, copy, extra, optional] = process.argv.slice(1);
    const versions = JSON.parse(extra || "{}");
    for (const d of fs.readdirSync(path.join(copy, "packages"))) {
      const f = path.join(copy, "packages", d, "package.json");
      if (fs.existsSync(f)) { const p = JSON.parse(fs.readFileSync(f, "utf8")); if (!p.private) versions[p.name] = p.version; }
    }
    const pkg = JSON.parse(fs.readFileSync(tpl, "utf8"));
    for (const field of ["dependencies", "devDependencies", "peerDependencies"])
      for (const [name, range] of Object.entries(pkg[field] ?? {}))
        if (range.startsWith("RELEASED")) {
          if (!versions[name] && optional) { delete pkg[field][name]; continue; }
          if (!versions[name]) throw new Error(`${name}: not released`);
          pkg[field][name] = `^${versions[name]}`;
        }
    fs.writeFileSync(out, JSON.stringify(pkg, null, 2) + "\n");
  ' "$1" "$2" "$COPY" "${3:-}" "${4:-}"
}

# ------------------------------------------------------------------ 5. third-party driver
phase "third-party driver: npm install, build against the released core, conformance suite (node:test, real Redis), publish"
TP="$RUN/third-party"
mkdir -p "$TP"
cp -r "$ROOT/scripts/release/third-party-driver/src" "$ROOT/scripts/release/third-party-driver/test" \
  "$ROOT/scripts/release/third-party-driver/tsconfig.json" "$TP/"
fill "$ROOT/scripts/release/third-party-driver/package.json" "$TP/package.json"
printf '%s\n' "$NPMRC" >"$TP/.npmrc"
cd "$TP"
quiet "$RUN/logs/third-party-install.log" npm install --no-audit --no-fund
quiet "$RUN/logs/third-party-build.log" npm run build
quiet "$RUN/logs/third-party-test.log" npm test
grep -E '^ℹ (tests|pass|fail|skipped)' "$RUN/logs/third-party-test.log" | tr '\n' ' ' | sed 's/ℹ //g; s/^/  ✓ conformance: /'; echo
quiet "$RUN/logs/third-party-publish.log" npm publish
echo "  ✓ published @acme/storage-driver-redis-hash@$(node -p 'require("./package.json").version') with peer @x/storage-driver-core $(node -p 'require("./package.json").peerDependencies["@x/storage-driver-core"]')"
ACME_VERSION="$(node -p 'require("./package.json").version')"

# ------------------------------------------------------------------ README snippets
phase "README snippets: every TypeScript block type-checked as written (commonjs, nodenext, bundler); the runnable ones run"
SN="$RUN/consumers/snippets"
mkdir -p "$SN"
fill "$ROOT/scripts/release/consumers/snippets/package.json" "$SN/package.json" '{}' optional
printf '%s\n' "$NPMRC" >"$SN/.npmrc"
(cd "$SN" && quiet "$RUN/logs/snippets-install.log" npm install --no-audit --no-fund)
eval "$(bash "$ROOT/scripts/services.sh" env)"
node "$ROOT/scripts/release/check-snippets.mjs" "$SN"

# ------------------------------------------------------------------ 6. consumers
# Yarn's own global folder, without this run's packages: every run publishes the same versions, and
# yarn would otherwise take the archives of an earlier run from its global cache (keyed by version).
YARN_GLOBAL="${TMPDIR:-/tmp}/x-storage-release-yarn"
rm -rf "$YARN_GLOBAL"/cache/@x-storage-* "$YARN_GLOBAL"/cache/@acme-* "$YARN_GLOBAL"/metadata
YARNRC="nodeLinker: pnp
globalFolder: '$YARN_GLOBAL'
enableTelemetry: false
enableImmutableInstalls: false
unsafeHttpWhitelist: ['127.0.0.1']
# Yarn 4 quarantines versions published less than a day ago; these were published seconds ago.
npmPreapprovedPackages: ['@x/*', '@acme/*']
npmScopes:
  x: { npmRegistryServer: '$REG' }
  acme: { npmRegistryServer: '$REG' }"

consumer() { # consumer <pm> <scenario> [suffix]
  local pm="$1" sc="$2" dir="$RUN/consumers/$1-$2${3:-}" start=$SECONDS
  mkdir -p "$dir"
  cp "$ROOT/scripts/release/consumers/$sc/app.ts" "$ROOT/scripts/release/consumers/tsconfig.json" "$dir/"
  fill "$ROOT/scripts/release/consumers/$sc/package.json" "$dir/package.json" "{\"@acme/storage-driver-redis-hash\":\"$ACME_VERSION\"}"
  cd "$dir"
  local log="$RUN/logs/consumer-$pm-$sc${3:-}.log"
  case "$pm" in
    npm)
      printf '%s\n' "$NPMRC" >.npmrc
      quiet "$log" npm install --no-audit --no-fund
      quiet "$log.tsc" node_modules/.bin/tsc -p tsconfig.json
      node dist/app.js
      ;;
    pnpm)
      printf '%s\n' "$NPMRC" >.npmrc
      # pnpm 10+ refuses to finish while a dependency's build script is neither allowed nor denied:
      # @temporalio/common's protobufjs has one (a version notice), which no Temporal app needs.
      printf 'allowBuilds:\n  protobufjs: false\n' >pnpm-workspace.yaml
      # A metadata cache of its own (pnpm's is under $XDG_CACHE_HOME): the shared one remembers the
      # @x packages of an earlier run of this script (same registry address, same versions) and
      # pnpm would install their old tarballs.
      quiet "$log" env XDG_CACHE_HOME="$RUN/xdg-cache" pnpm install
      quiet "$log.tsc" node_modules/.bin/tsc -p tsconfig.json
      node dist/app.js
      ;;
    yarn)
      printf '%s\n' "$YARNRC" >.yarnrc.yml
      : >yarn.lock
      quiet "$log" env YARN_ENABLE_TELEMETRY=0 node "$YARN" install
      quiet "$log.tsc" node "$YARN" tsc -p tsconfig.json
      node "$YARN" node dist/app.js
      ;;
  esac
  if [ "$sc" = composed ]; then
    local help
    if [ "$pm" = yarn ]; then help="$(node "$YARN" x-storage --help | head -1)"; else help="$(node_modules/.bin/x-storage --help | head -1)"; fi
    [ -n "$help" ] || die "$pm: the x-storage bin printed nothing"
    echo "  ✓ x-storage bin: $help"
  fi
  echo "  ✓ $pm $sc${3:-}: installed from the registry, type-checked, ran ($((SECONDS - start))s)"
}

eval "$(bash "$ROOT/scripts/services.sh" env)"
for sc in "${SCENARIOS[@]}"; do
  for pm in "${PMS[@]}"; do
    phase "consumer: $sc with $pm ($(node --version))"
    consumer "$pm" "$sc"
  done
done

# ------------------------------------------------------------------ 7. other Node lines
for line in "${NODE_LINES[@]}"; do
  bin="$(bash "$ROOT/scripts/release/tools.sh" node "$line")"
  phase "consumer on Node $("$bin/node" --version): composed with npm"
  PATH="$bin:$PATH" consumer npm composed "-node$line"
done
phase "done"
