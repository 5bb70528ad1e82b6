#!/usr/bin/env bash
# Starts and stops a private Redis and PostgreSQL on loopback for the tests,
# the benchmarks and the quickstart. Everything lives in DIR; nothing touches
# the system's own services.
#
#   services.sh start DIR [REDIS_PORT PG_PORT]   start both (free ports when omitted); writes DIR/env
#   services.sh stop DIR                         stop both
#   services.sh start-redis|stop-redis DIR       one of them (same port as before)
#   services.sh start-pg|stop-pg DIR
#   services.sh psql DIR [psql args...]          psql into the app database
#
# PostgreSQL refuses to run as root, so as root it runs as the postgres user.
set -euo pipefail

cmd=${1:?usage: services.sh start|stop|start-redis|stop-redis|start-pg|stop-pg|psql DIR}
DIR=${2:?DIR required}
shift 2

PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[[ -n "$PGBIN" ]] || { echo "services: PostgreSQL server binaries not found (install postgresql)" >&2; exit 1; }

as_pg() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 40000))
    if ! port_in_use "$p"; then echo "$p"; return 0; fi
  done
  echo "services: no free port found" >&2
  return 1
}

redis_port() { cat "$DIR/redis.port"; }
pg_port() { cat "$DIR/pg.port"; }

start_redis() {
  local port; port=$(redis_port)
  if [[ -f "$DIR/redis.pid" ]] && kill -0 "$(cat "$DIR/redis.pid")" 2>/dev/null; then return 0; fi
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
    --pidfile "$DIR/redis.pid" --logfile "$DIR/redis.log" --dir "$DIR" >/dev/null
  for _ in $(seq 1 100); do
    if redis-cli -p "$port" ping >/dev/null 2>&1; then return 0; fi
    sleep 0.05
  done
  echo "services: redis did not start; see $DIR/redis.log" >&2
  return 1
}

stop_redis() {
  if [[ -f "$DIR/redis.pid" ]]; then
    local pid; pid=$(cat "$DIR/redis.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$DIR/redis.pid"
  fi
}

init_pg() {
  [[ -f "$DIR/pgdata/PG_VERSION" ]] && return 0
  mkdir -p "$DIR/pgdata" "$DIR/pgsock"
  if [[ $(id -u) -eq 0 ]]; then chown postgres:postgres "$DIR/pgdata" "$DIR/pgsock"; fi
  chmod 700 "$DIR/pgdata"
  as_pg "$PGBIN/initdb" -D "$DIR/pgdata" -U app --auth=trust -E UTF8 --locale=C.UTF-8 >"$DIR/initdb.log" 2>&1 ||
    { echo "services: initdb failed; see $DIR/initdb.log" >&2; return 1; }
}

start_pg() {
  init_pg
  local port; port=$(pg_port)
  if as_pg "$PGBIN/pg_ctl" -D "$DIR/pgdata" status >/dev/null 2>&1; then return 0; fi
  touch "$DIR/pg.log"
  if [[ $(id -u) -eq 0 ]]; then chown postgres:postgres "$DIR/pg.log"; fi
  as_pg "$PGBIN/pg_ctl" -D "$DIR/pgdata" -l "$DIR/pg.log" -w -t 30 \
    -o "-p $port -k $DIR/pgsock -c listen_addresses=127.0.0.1 -c shared_preload_libraries=pg_stat_statements -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
    start >/dev/null || { echo "services: postgres did not start; see $DIR/pg.log" >&2; return 1; }
  if ! as_pg "$PGBIN/psql" -h 127.0.0.1 -p "$port" -U app -d postgres -Atqc "SELECT 1 FROM pg_database WHERE datname='app'" | grep -q 1; then
    as_pg "$PGBIN/createdb" -h 127.0.0.1 -p "$port" -U app app
  fi
  as_pg "$PGBIN/psql" -h 127.0.0.1 -p "$port" -U app -d app -qc "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null 2>&1
}

stop_pg() {
  [[ -f "$DIR/pgdata/postmaster.pid" ]] || return 0
  as_pg "$PGBIN/pg_ctl" -D "$DIR/pgdata" -m fast -w -t 30 stop >/dev/null 2>&1 || true
}

write_env() {
  cat >"$DIR/env" <<ENV
export SC_SERVICES_DIR='$DIR'
export SC_REDIS_PORT=$(redis_port)
export SC_PG_PORT=$(pg_port)
export SIDECACHE_REDIS_URL='redis://127.0.0.1:$(redis_port)/0'
export SIDECACHE_POSTGRES_DSN='host=127.0.0.1 port=$(pg_port) dbname=app user=app'
ENV
}

case "$cmd" in
  start)
    mkdir -p "$DIR"
    chmod 755 "$DIR"
    rp=${1:-}; pp=${2:-}
    [[ -f "$DIR/redis.port" && -z "$rp" ]] || echo "${rp:-$(free_port)}" >"$DIR/redis.port"
    [[ -f "$DIR/pg.port" && -z "$pp" ]] || echo "${pp:-$(free_port)}" >"$DIR/pg.port"
    start_redis
    start_pg
    write_env
    ;;
  stop) stop_redis; stop_pg ;;
  start-redis) start_redis ;;
  stop-redis) stop_redis ;;
  start-pg) start_pg ;;
  stop-pg) stop_pg ;;
  psql) as_pg "$PGBIN/psql" -h 127.0.0.1 -p "$(pg_port)" -U app -d app "$@" ;;
  *) echo "services: unknown command $cmd" >&2; exit 64 ;;
esac
