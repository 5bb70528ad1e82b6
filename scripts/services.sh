#!/usr/bin/env bash
# Starts and stops a private Redis and PostgreSQL on loopback for the tests,
# the benchmarks and the quickstart. Everything lives in DIR; nothing touches
# the system's own services.
#
#   services.sh start DIR [REDIS_PORT PG_PORT]   start both (free ports when omitted); writes DIR/env
#   services.sh stop DIR                         stop both
#   services.sh start-redis|stop-redis DIR       one of them (same port as before)
#   services.sh start-pg|stop-pg DIR
#   services.sh start-replica DIR [DELAY]        a streaming replica of it (pg_basebackup -R), applying WAL
#                                                DELAY late (recovery_min_apply_delay, e.g. 300ms; default 0)
#   services.sh stop-replica DIR [fast|immediate]
#   services.sh start-pgbouncer DIR [POOL_SIZE]  pgbouncer in transaction mode in front of it (default pool 2)
#   services.sh stop-pgbouncer DIR
#   services.sh tls-certs DIR [NAME...]          a CA, a second CA, a server certificate (localhost, 127.0.0.1,
#                                                and each NAME) and a client certificate, made with openssl in DIR/tls
#   services.sh start-redis-tls DIR [yes|no]     a second Redis that speaks only TLS, with those certificates;
#                                                yes: it asks clients for a certificate (default no)
#   services.sh stop-redis-tls DIR
#   services.sh start-redis-cluster DIR [N]      a Redis Cluster of N masters (default 3), no replicas
#                                                (the bench's; the tests start their own with replicas)
#   services.sh stop-redis-cluster DIR
#   services.sh purge DIR                        stop everything and remove data kept outside DIR
#   services.sh psql DIR [psql args...]          psql into the app database
#   services.sh pg-pid DIR                       the primary's postmaster pid (the bench's CPU accounting)
#
# PostgreSQL refuses to run as root, so as root it runs as the postgres user.
set -euo pipefail

cmd=${1:?usage: services.sh start|stop|start-redis|stop-redis|start-pg|stop-pg|psql DIR}
DIR=${2:?DIR required}
shift 2
# Absolute from here on: redis-server changes to --dir before it opens its
# --logfile, so a relative folder would be looked up twice.
DIR=$(realpath -m -- "$DIR")

PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[[ -n "$PGBIN" ]] || { echo "services: PostgreSQL server binaries not found (install postgresql)" >&2; exit 1; }

as_pg() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
  local p
  for _ in $(seq 1 200); do
    # Below the kernel's ephemeral range (32768-60999 by default): a port
    # from inside it can be taken by an outgoing connection (a client of the
    # tests or the bench) between this check and the server's bind.
    p=$((10000 + RANDOM % 22000))
    if ! port_in_use "$p"; then echo "$p"; return 0; fi
  done
  echo "services: no free port found" >&2
  return 1
}

redis_port() { cat "$DIR/redis.port"; }
pg_port() { cat "$DIR/pg.port"; }

# Liveness by asking Redis itself: a killed redis-server may linger as a
# zombie (no init reaps it in a container), and kill -0 would call it alive.
redis_up() { redis-cli -p "$(redis_port)" ping 2>/dev/null | grep -q PONG; }

start_redis() {
  local port; port=$(redis_port)
  if redis_up; then return 0; fi
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
    for _ in $(seq 1 100); do redis_up || break; sleep 0.05; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$DIR/redis.pid"
  fi
}

# An EC P-256 key and certificate NAME in DIR/tls for SUBJECT: self-signed
# (a CA) without EXT, else signed by DIR/tls/ca with the extensions EXT.
make_cert() {
  local name=$1 subject=$2 ext=${3:-} t="$DIR/tls"
  if [[ -z "$ext" ]]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$t/$name.key" \
      -out "$t/$name.crt" -days 30 -subj "$subject" 2>/dev/null
    return
  fi
  printf '%b\n' "$ext" >"$t/$name.ext"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$t/$name.key" \
    -out "$t/$name.csr" -subj "$subject" 2>/dev/null
  openssl x509 -req -in "$t/$name.csr" -CA "$t/ca.crt" -CAkey "$t/ca.key" -CAcreateserial -out "$t/$name.crt" \
    -days 30 -extfile "$t/$name.ext" 2>/dev/null
}

tls_certs() {
  [[ -f "$DIR/tls/client.crt" ]] && return 0
  mkdir -p "$DIR/tls"
  make_cert ca "/CN=sidecache test CA"
  make_cert other-ca "/CN=a CA nobody trusts"
  local names="DNS:localhost,IP:127.0.0.1" n
  for n in "$@"; do names+=",DNS:$n"; done
  make_cert server "/CN=localhost" "subjectAltName=$names\nextendedKeyUsage=serverAuth"
  make_cert client "/CN=sidecache" "extendedKeyUsage=clientAuth"
  chmod -R a+rX "$DIR/tls"
}

redis_tls_up() {
  local t="$DIR/tls"
  redis-cli --tls --cacert "$t/ca.crt" --cert "$t/client.crt" --key "$t/client.key" -p "$(cat "$DIR/redis-tls.port")" \
    ping 2>/dev/null | grep -q PONG
}

start_redis_tls() {
  local clients=${1:-no} t="$DIR/tls"
  tls_certs
  [[ -f "$DIR/redis-tls.port" ]] || free_port >"$DIR/redis-tls.port"
  if redis_tls_up; then return 0; fi
  redis-server --port 0 --tls-port "$(cat "$DIR/redis-tls.port")" --bind 127.0.0.1 --tls-cert-file "$t/server.crt" \
    --tls-key-file "$t/server.key" --tls-ca-cert-file "$t/ca.crt" --tls-auth-clients "$clients" --save "" \
    --appendonly no --daemonize yes --pidfile "$DIR/redis-tls.pid" --logfile "$DIR/redis-tls.log" --dir "$DIR" >/dev/null
  for _ in $(seq 1 100); do
    if redis_tls_up; then return 0; fi
    sleep 0.05
  done
  echo "services: the TLS redis did not start; see $DIR/redis-tls.log" >&2
  return 1
}

# Stops the process named in pid file $1 (TERM, up to 5 s, then KILL).
stop_pidfile() {
  [[ -f "$1" ]] || return 0
  local pid; pid=$(cat "$1")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$1"
}

stop_redis_tls() { stop_pidfile "$DIR/redis-tls.pid"; }

# Redis Cluster: N masters on ports whose bus ports (port + 10000) are free
# too, made one cluster by redis-cli --cluster create.
cluster_up() {
  [[ -f "$DIR/cluster/ports" ]] || return 1
  redis-cli -p "$(head -1 "$DIR/cluster/ports")" cluster info 2>/dev/null | grep -q "cluster_state:ok"
}
start_redis_cluster() {
  local n=${1:-3} c="$DIR/cluster" hosts="" p
  if cluster_up; then return 0; fi
  mkdir -p "$c"
  : >"$c/ports"
  while [[ $(wc -l <"$c/ports") -lt $n ]]; do
    p=$(free_port)
    if port_in_use $((p + 10000)) || grep -qx "$p" "$c/ports" || grep -qx $((p + 10000)) "$c/ports" ||
      grep -qx $((p - 10000)) "$c/ports"; then continue; fi
    echo "$p" >>"$c/ports"
  done
  while read -r p; do
    mkdir -p "$c/$p"
    redis-server --port "$p" --bind 127.0.0.1 --cluster-enabled yes --cluster-config-file "$c/$p/nodes.conf" \
      --cluster-node-timeout 1000 --save "" --appendonly no --daemonize yes --dir "$c/$p" \
      --pidfile "$c/$p/redis.pid" --logfile "$c/$p/redis.log" >/dev/null
    hosts="$hosts 127.0.0.1:$p"
  done <"$c/ports"
  while read -r p; do
    for _ in $(seq 1 100); do redis-cli -p "$p" ping 2>/dev/null | grep -q PONG && break; sleep 0.05; done
  done <"$c/ports"
  # shellcheck disable=SC2086
  redis-cli --cluster create $hosts --cluster-yes >"$c/create.log" 2>&1 ||
    { echo "services: redis-cli --cluster create failed; see $c/create.log" >&2; return 1; }
  for _ in $(seq 1 200); do
    if cluster_up; then return 0; fi
    sleep 0.05
  done
  echo "services: the cluster did not reach cluster_state:ok; see $c/*/redis.log" >&2
  return 1
}
stop_redis_cluster() {
  [[ -f "$DIR/cluster/ports" ]] || return 0
  local p
  while read -r p; do stop_pidfile "$DIR/cluster/$p/redis.pid"; done <"$DIR/cluster/ports"
  rm -rf "$DIR/cluster"
}

# Where PostgreSQL keeps its data, socket and log. As root it runs as the
# postgres user, who may not be able to reach DIR (say, under /root): then a
# folder under /var/tmp is used and remembered in DIR/pg.home.
pg_home() {
  if [[ -f "$DIR/pg.home" ]]; then cat "$DIR/pg.home"; return; fi
  local home="$DIR/pg"
  if [[ $(id -u) -eq 0 ]] && ! runuser -u postgres -- test -x "$DIR" 2>/dev/null; then
    home="/var/tmp/sidecache-pg-$(echo "$DIR" | md5sum | cut -c1-12)"
  fi
  echo "$home" >"$DIR/pg.home"
  echo "$home"
}

init_pg() {
  local home; home=$(pg_home)
  [[ -f "$home/data/PG_VERSION" ]] && return 0
  mkdir -p "$home/data" "$home/sock"
  touch "$home/log"
  if [[ $(id -u) -eq 0 ]]; then chown -R postgres:postgres "$home"; fi
  chmod 700 "$home/data"
  as_pg "$PGBIN/initdb" -D "$home/data" -U app --auth=trust -E UTF8 --locale=C.UTF-8 >"$DIR/initdb.log" 2>&1 ||
    { echo "services: initdb failed; see $DIR/initdb.log" >&2; return 1; }
}

start_pg() {
  init_pg
  local port home; port=$(pg_port); home=$(pg_home)
  if as_pg "$PGBIN/pg_ctl" -D "$home/data" status >/dev/null 2>&1; then return 0; fi
  as_pg "$PGBIN/pg_ctl" -D "$home/data" -l "$home/log" -w -t 30 \
    -o "-p $port -k $home/sock -c listen_addresses=127.0.0.1 -c shared_preload_libraries=pg_stat_statements -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
    start >/dev/null || {
      # A port taken between the check and the bind (the ephemeral range
      # overlaps ours): once more on another port, when ours was picked.
      if grep -q "Address already in use" "$home/log" && [[ "${PG_PORT_MAY_MOVE:-0}" == 1 ]]; then
        echo "services: port $port was taken meanwhile; trying another" >&2
        free_port >"$DIR/pg.port"
        PG_PORT_MAY_MOVE=0 start_pg
        return
      fi
      echo "services: postgres did not start; the end of $home/log:" >&2
      tail -n 8 "$home/log" >&2
      return 1
    }
  if ! as_pg "$PGBIN/psql" -h 127.0.0.1 -p "$port" -U app -d postgres -Atqc "SELECT 1 FROM pg_database WHERE datname='app'" | grep -q 1; then
    as_pg "$PGBIN/createdb" -h 127.0.0.1 -p "$port" -U app app
  fi
  # (Retried, and said when it fails: a silent failure here once ended a
  # clean-clone run's smoke check with no word of why.)
  local ok=0
  for _ in 1 2 3 4 5; do
    if as_pg "$PGBIN/psql" -h 127.0.0.1 -p "$port" -U app -d app -qc "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" \
      >"$DIR/extension.log" 2>&1; then ok=1; break; fi
    sleep 0.5
  done
  if [[ $ok -ne 1 ]]; then
    echo "services: CREATE EXTENSION pg_stat_statements failed: $(cat "$DIR/extension.log")" >&2
    return 1
  fi
}

stop_pg() {
  local home; home=$(pg_home)
  [[ -f "$home/data/postmaster.pid" ]] || return 0
  as_pg "$PGBIN/pg_ctl" -D "$home/data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
}

pg_up() { as_pg "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$1" >/dev/null 2>&1; }

# A hot standby streaming from the primary, made once with pg_basebackup -R.
start_replica() {
  local delay=${1:-0} home port; home=$(pg_home)
  [[ -f "$DIR/replica.port" ]] || free_port >"$DIR/replica.port"
  port=$(cat "$DIR/replica.port")
  if [[ ! -f "$home/replica/PG_VERSION" ]]; then
    rm -rf "$home/replica"
    # A replication slot: the primary keeps the WAL the replica has not
    # received, so a replica stopped by a test catches up when restarted.
    as_pg "$PGBIN/psql" -h 127.0.0.1 -p "$(pg_port)" -U app -d postgres -qAtc \
      "SELECT pg_drop_replication_slot('sidecache_replica') FROM pg_replication_slots WHERE slot_name = 'sidecache_replica'" >/dev/null
    as_pg "$PGBIN/pg_basebackup" -h 127.0.0.1 -p "$(pg_port)" -U app -D "$home/replica" -R -X stream -c fast \
      -C -S sidecache_replica \
      >"$DIR/basebackup.log" 2>&1 || { echo "services: pg_basebackup failed; see $DIR/basebackup.log" >&2; return 1; }
    as_pg chmod 700 "$home/replica"
  fi
  if as_pg "$PGBIN/pg_ctl" -D "$home/replica" status >/dev/null 2>&1; then return 0; fi
  as_pg "$PGBIN/pg_ctl" -D "$home/replica" -l "$home/replica.log" -w -t 60 \
    -o "-p $port -k $home/sock -c listen_addresses=127.0.0.1 -c shared_preload_libraries=pg_stat_statements -c fsync=off -c max_connections=200 -c hot_standby=on -c recovery_min_apply_delay=$delay -c wal_receiver_status_interval=1s -c max_standby_streaming_delay=100ms" \
    start >/dev/null || { echo "services: the replica did not start; $home/replica.log ends:" >&2; tail -15 "$home/replica.log" >&2; return 1; }
}

stop_replica() {
  local home; home=$(pg_home)
  [[ -f "$home/replica/postmaster.pid" ]] || return 0
  as_pg "$PGBIN/pg_ctl" -D "$home/replica" -m "${1:-fast}" -w -t 30 stop >/dev/null 2>&1 || true
}

# pgbouncer refuses to run as root: as root it runs as postgres, with its
# files next to PostgreSQL's.
start_pgbouncer() {
  local size=${1:-2} home port; home=$(pg_home)
  [[ -f "$DIR/pgbouncer.port" ]] || free_port >"$DIR/pgbouncer.port"
  port=$(cat "$DIR/pgbouncer.port")
  if [[ -f "$home/pgbouncer.pid" ]] && kill -0 "$(cat "$home/pgbouncer.pid")" 2>/dev/null; then return 0; fi
  cat >"$DIR/pgbouncer.ini" <<INI
[databases]
app = host=127.0.0.1 port=$(pg_port) dbname=app user=app

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = any
pool_mode = transaction
default_pool_size = $size
max_client_conn = 1000
logfile = $home/pgbouncer.log
pidfile = $home/pgbouncer.pid
INI
  chmod 644 "$DIR/pgbouncer.ini"
  as_pg cp "$DIR/pgbouncer.ini" "$home/pgbouncer.ini"
  as_pg pgbouncer -d -q "$home/pgbouncer.ini" || { echo "services: pgbouncer did not start; see $home/pgbouncer.log" >&2; return 1; }
  for _ in $(seq 1 100); do
    if port_in_use "$port"; then return 0; fi
    sleep 0.05
  done
  echo "services: pgbouncer did not listen; see $home/pgbouncer.log" >&2
  return 1
}

stop_pgbouncer() {
  local home; home=$(pg_home)
  stop_pidfile "$home/pgbouncer.pid"
}

# Removes DIR's PostgreSQL home when it lives outside DIR.
purge() {
  stop_redis_cluster
  stop_redis_tls
  stop_pgbouncer
  stop_replica immediate
  stop_redis
  stop_pg
  local home; home=$(pg_home)
  [[ "$home" == "$DIR/pg" ]] || rm -rf "$home"
}

write_env() {
  cat >"$DIR/env" <<ENV
export SC_SERVICES_DIR='$DIR'
export SC_REDIS_PORT=$(redis_port)
export SC_PG_PORT=$(pg_port)
export SIDECACHE_REDIS_URL='redis://127.0.0.1:$(redis_port)/0'
export SIDECACHE_POSTGRES_DSN='host=127.0.0.1 port=$(pg_port) dbname=app user=app'
ENV
  if [[ -f "$DIR/replica.port" ]]; then echo "export SC_REPLICA_PORT=$(cat "$DIR/replica.port")" >>"$DIR/env"; fi
  if [[ -f "$DIR/pgbouncer.port" ]]; then echo "export SC_PGBOUNCER_PORT=$(cat "$DIR/pgbouncer.port")" >>"$DIR/env"; fi
  if [[ -f "$DIR/cluster/ports" ]]; then
    echo "export SC_REDIS_CLUSTER_PORTS='$(paste -sd, "$DIR/cluster/ports")'" >>"$DIR/env"
  fi
  if [[ -f "$DIR/redis-tls.pid" ]]; then
    echo "export SC_REDIS_TLS_PORT=$(cat "$DIR/redis-tls.port")" >>"$DIR/env"
    echo "export SC_TLS_DIR='$DIR/tls'" >>"$DIR/env"
  fi
}

case "$cmd" in
  start)
    mkdir -p "$DIR"
    chmod 755 "$DIR"
    rp=${1:-}; pp=${2:-}
    [[ -f "$DIR/redis.port" && -z "$rp" ]] || echo "${rp:-$(free_port)}" >"$DIR/redis.port"
    if [[ ! -f "$DIR/pg.port" && -z "$pp" ]]; then PG_PORT_MAY_MOVE=1; fi  # a port we picked, nobody relies on yet
    [[ -f "$DIR/pg.port" && -z "$pp" ]] || echo "${pp:-$(free_port)}" >"$DIR/pg.port"
    start_redis
    start_pg
    write_env
    ;;
  stop) stop_redis_tls; stop_pgbouncer; stop_replica; stop_redis; stop_pg ;;
  tls-certs) tls_certs "$@" ;;
  start-redis-tls) start_redis_tls "$@"; write_env ;;
  stop-redis-tls) stop_redis_tls ;;
  start-redis-cluster) start_redis_cluster "$@"; write_env ;;
  stop-redis-cluster) stop_redis_cluster; write_env ;;
  start-replica) start_replica "$@"; write_env ;;
  stop-replica) stop_replica "$@" ;;
  start-pgbouncer) start_pgbouncer "$@"; write_env ;;
  stop-pgbouncer) stop_pgbouncer ;;
  start-redis) start_redis ;;
  stop-redis) stop_redis ;;
  start-pg) start_pg ;;
  stop-pg) stop_pg ;;
  purge) purge ;;
  psql) as_pg "$PGBIN/psql" -h 127.0.0.1 -p "$(pg_port)" -U app -d app "$@" ;;
  pg-pid) as_pg head -1 "$(pg_home)/data/postmaster.pid" ;;
  *) echo "services: unknown command $cmd" >&2; exit 64 ;;
esac
