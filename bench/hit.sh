#!/usr/bin/env bash
# First throughput figure: wrk against a sidecache cache hit, next to wrk
# against nginx serving the very same bytes as a static file, on this machine.
#
#   bench/hit.sh [seconds] [connections]
#
# Builds Release into build-release/, starts a private Redis and PostgreSQL,
# and prints a table. Needs wrk and nginx (installed when missing).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
DURATION=${1:-10}
CONNS=${2:-50}

SIDECACHE_BENCH_DEPS=1 scripts/deps.sh
BUILD_DIR="$ROOT/build-release" CMAKE_ARGS="-DSIDECACHE_BUILD_TESTS=OFF" scripts/build.sh Release >/dev/null

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sidecache-bench-XXXXXX")
chmod 755 "$WORK"
SC_PID=""
cleanup() {
  [[ -n "$SC_PID" ]] && kill "$SC_PID" 2>/dev/null && wait "$SC_PID" 2>/dev/null
  [[ -f "$WORK/nginx.pid" ]] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null
  scripts/services.sh purge "$WORK/svc" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

scripts/services.sh start "$WORK/svc" >/dev/null
# shellcheck disable=SC1091
source "$WORK/svc/env"
scripts/services.sh psql "$WORK/svc" -q -f config/examples/schema.sql >/dev/null

free_port() { while :; do p=$((20000 + RANDOM % 40000)); (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo $p; return; }; done; }
SC_PORT=$(free_port)
NGINX_PORT=$(free_port)

sed -e "s|^log_level:.*|log_level: warn|" config/examples/sidecache.yaml >"$WORK/sidecache.yaml"
sed -i "s|^entities_dir:.*|entities_dir: $ROOT/config/examples/entities|" "$WORK/sidecache.yaml"
SIDECACHE_LISTEN="127.0.0.1:$SC_PORT" build-release/sidecache --config "$WORK/sidecache.yaml" >"$WORK/sidecache.log" 2>&1 &
SC_PID=$!
URL="http://127.0.0.1:$SC_PORT/v1/entities/user?org_id=11111111-1111-1111-1111-111111111111&user_id=aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa"
for _ in $(seq 1 200); do curl -fs "$URL" -o "$WORK/body.json" 2>/dev/null && break; sleep 0.05; done
curl -s -D - -o /dev/null "$URL" | grep -qi "cache-status: sidecache; hit" || { echo "bench: the key is not a hit" >&2; exit 1; }

mkdir -p "$WORK/www"
cp "$WORK/body.json" "$WORK/www/user.json"
chmod -R a+rX "$WORK/www"
run_nginx() {
  cat >"$WORK/nginx.conf" <<CONF
worker_processes $1;
pid $WORK/nginx.pid;
error_log $WORK/nginx.err warn;
events { worker_connections 1024; }
http {
  access_log off;
  default_type application/json;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:$NGINX_PORT; root $WORK/www; }
}
CONF
  [[ -f "$WORK/nginx.pid" ]] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null && sleep 0.3
  nginx -c "$WORK/nginx.conf" -p "$WORK" 2>/dev/null
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$NGINX_PORT/user.json" >/dev/null && break; sleep 0.05; done
}

# wrk prints "Requests/sec: N" and a latency line; keep both.
measure() {
  local out; out=$(wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "$1")
  local rps p50 p99
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  printf "| %-38s | %12s | %8s | %8s |\n" "$2" "$rps" "$p50" "$p99"
}

BYTES=$(wc -c <"$WORK/body.json")
echo
echo "wrk -t1 -c$CONNS -d${DURATION}s, body $BYTES bytes, $(nproc) cores"
echo
printf "| %-38s | %12s | %8s | %8s |\n" "target" "requests/s" "p50" "p99"
printf "|%s|%s|%s|%s|\n" "----------------------------------------" "--------------" "----------" "----------"
measure "$URL" "sidecache hit (2 workers, via Redis)"
run_nginx 1
measure "http://127.0.0.1:$NGINX_PORT/user.json" "nginx static, 1 worker"
run_nginx 2
measure "http://127.0.0.1:$NGINX_PORT/user.json" "nginx static, 2 workers"
