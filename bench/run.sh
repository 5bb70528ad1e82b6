#!/usr/bin/env bash
# The benchmark suite: one command, one Markdown table.
#
#   bench/run.sh [seconds per throughput scenario, default 10]
#
# Builds Release, starts a private Redis, PostgreSQL (bench/schema.sql:
# 200k documents of ~1 KiB), sidecache (bench/entities) and nginx on
# loopback, runs every scenario in this one run with the same client
# settings, prints the table and writes it to bench/results/<date>.md.
#
# Environment: WRK_THREADS (1), WRK_CONNS (50), RATE (10000 req/s for the
# fixed-rate runs), RSS_KEYS (1000000), SKIP_RSS=1 to leave the RSS
# scenario out.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
DURATION=${1:-10}
THREADS=${WRK_THREADS:-1}
CONNS=${WRK_CONNS:-50}
RATE=${RATE:-10000}
RSS_KEYS=${RSS_KEYS:-1000000}
ORG=11111111-1111-1111-1111-111111111111

SIDECACHE_BENCH_DEPS=1 scripts/deps.sh
BUILD_DIR="$ROOT/build-release" CMAKE_ARGS="-DSIDECACHE_BUILD_TESTS=OFF" scripts/build.sh Release >/dev/null
BIN="$ROOT/build-release"
ulimit -n 65536 2>/dev/null || ulimit -n 4096

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

echo "bench: starting Redis and PostgreSQL, loading bench/schema.sql" >&2
scripts/services.sh start "$WORK/svc" >/dev/null
# shellcheck disable=SC1091
source "$WORK/svc/env"
scripts/services.sh psql "$WORK/svc" -q -f bench/schema.sql >/dev/null
R=(redis-cli -p "$SC_REDIS_PORT")

free_port() { while :; do p=$((20000 + RANDOM % 40000)); (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo $p; return; }; done; }
SC_PORT=$(free_port)
NGINX_PORT=$(free_port)
WORKERS=2

cat >"$WORK/sidecache.yaml" <<CONF
listen: 127.0.0.1:$SC_PORT
workers: $WORKERS
key_prefix: "b:"
log_level: warn
tenant: { param: org_id, type: uuid }
redis: { url: "redis://127.0.0.1:$SC_REDIS_PORT/0", timeout: 200ms }
postgres: { dsn: "$SIDECACHE_POSTGRES_DSN", pool_size: 8, queue_limit: 4096, statement_timeout: 5s }
entities_dir: $ROOT/bench/entities
l1: { max_bytes: 64MiB, ttl: 5s }
http: { max_connections: 8192 }
CONF
"$BIN/sidecache" check --config "$WORK/sidecache.yaml" >/dev/null
"$BIN/sidecache" --config "$WORK/sidecache.yaml" >"$WORK/sidecache.log" 2>&1 &
SC_PID=$!
BASE="http://127.0.0.1:$SC_PORT"
for _ in $(seq 1 200); do curl -fs "$BASE/readyz" >/dev/null 2>&1 && break; sleep 0.05; done
for _ in $(seq 1 100); do curl -fs "$BASE/readyz" | grep -q '"l1":{"state":"on"' && break; sleep 0.05; done

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$SC_PID/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$SC_PID/stat"; }
TICK=$(getconf CLK_TCK)
RSS_IDLE=$(rss_kib)

L1_T="/v1/entities/doc_l1?org_id=$ORG&id=1"
L2_T="/v1/entities/doc?org_id=$ORG&id=1"
curl -fs "$BASE$L1_T" -o "$WORK/doc.json"
curl -fs "$BASE$L1_T" >/dev/null
curl -fs "$BASE$L2_T" >/dev/null
curl -s -D - -o /dev/null "$BASE$L1_T" | grep -qi "cache-status: sidecache; hit; detail=l1" || { echo "bench: no L1 hit" >&2; exit 1; }
curl -s -D - -o /dev/null "$BASE$L2_T" | grep -qi "cache-status: sidecache; hit"$'\r' || { echo "bench: no L2 hit" >&2; exit 1; }
BYTES=$(wc -c <"$WORK/doc.json")

# nginx serves the same bytes as a static file.
mkdir -p "$WORK/www"
cp "$WORK/doc.json" "$WORK/www/doc.json"
chmod -R a+rX "$WORK/www"
run_nginx() {
  cat >"$WORK/nginx.conf" <<CONF
worker_processes $1;
pid $WORK/nginx.pid;
error_log $WORK/nginx.err warn;
events { worker_connections 4096; }
http {
  access_log off;
  default_type application/json;
  keepalive_requests 10000000;
  server { listen 127.0.0.1:$NGINX_PORT; root $WORK/www; }
}
CONF
  if [[ -f "$WORK/nginx.pid" ]]; then kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true; sleep 0.5; fi
  nginx -c "$WORK/nginx.conf" -p "$WORK" 2>/dev/null
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$NGINX_PORT/doc.json" >/dev/null && break; sleep 0.05; done
}

ROWS=()
row() { ROWS+=("$(printf "| %s | %s | %s | %s | %s |" "$1" "$2" "$3" "$4" "$5")"); echo "  $1: $2 req/s, p50 $3, p99 $4 $5" >&2; }
# wrk: requests/s, p50, p99 (its own units).
wrk_run() {
  local url=$1 script=${2:-}
  local out
  if [[ -n "$script" ]]; then out=$(wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency -s "$script" "$url")
  else out=$(wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency "$url"); fi
  WRK_RPS=$(awk '/Requests\/sec/ {printf "%.0f", $2}' <<<"$out")
  WRK_P50=$(awk '$1=="50%" {print $2}' <<<"$out")
  WRK_P99=$(awk '$1=="99%" {print $2}' <<<"$out")
  WRK_NON2XX=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

echo "bench: throughput (wrk -t$THREADS -c$CONNS -d${DURATION}s, body $BYTES bytes)" >&2
run_nginx 1
wrk_run "http://127.0.0.1:$NGINX_PORT/doc.json"; NGINX1=$WRK_RPS
row "nginx static file, 1 worker" "$WRK_RPS" "$WRK_P50" "$WRK_P99" ""
run_nginx $WORKERS
wrk_run "http://127.0.0.1:$NGINX_PORT/doc.json"; NGINX=$WRK_RPS
row "nginx static file, $WORKERS workers" "$WRK_RPS" "$WRK_P50" "$WRK_P99" ""
kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
rm -f "$WORK/nginx.pid"

# redis-benchmark: GET of a 1 KiB value, 50 clients, no pipelining.
RB=$(redis-benchmark -p "$SC_REDIS_PORT" -t get -d "$BYTES" -c "$CONNS" -n $((DURATION * 60000)) --csv 2>/dev/null | tail -1)
REDIS_RPS=$(tr -d '"' <<<"$RB" | awk -F, '{printf "%.0f", $2}')
REDIS_P50=$(tr -d '"' <<<"$RB" | awk -F, '{print $5 "ms"}')
REDIS_P99=$(tr -d '"' <<<"$RB" | awk -F, '{print $7 "ms"}')
row "redis-benchmark GET ${BYTES} B, $CONNS clients" "$REDIS_RPS" "$REDIS_P50" "$REDIS_P99" ""

wrk_run "$BASE$L1_T"; L1_RPS=$WRK_RPS
row "sidecache L1 hit" "$WRK_RPS" "$WRK_P50" "$WRK_P99" "$(ratio "$WRK_RPS" "$NGINX") x nginx ($WORKERS workers)"
wrk_run "$BASE$L2_T"; L2_RPS=$WRK_RPS
row "sidecache L2 hit (Redis)" "$WRK_RPS" "$WRK_P50" "$WRK_P99" "$(ratio "$WRK_RPS" "$NGINX") x nginx, $(ratio "$WRK_RPS" "$REDIS_RPS") x redis-benchmark"

# Fixed rate: latency at $RATE req/s, next to a direct Redis GET of the same bytes.
# (Before the miss scenarios, which leave PostgreSQL and Redis busy with
# their aftermath for a while.)
L2_KEY=$("$BIN/sidecache" key --config "$WORK/sidecache.yaml" doc org_id=$ORG id=1)
[[ "$("${R[@]}" strlen "$L2_KEY")" -gt 0 ]] || { echo "bench: $L2_KEY is not in Redis" >&2; exit 1; }
curl -fs "$BASE$L1_T" >/dev/null
sleep 1
fixed() {  # name, then loadgen args; sets FX_* and CPU per 1000
  local name=$1; shift
  local t0 c0 out
  t0=$(date +%s.%N); c0=$(cpu_ticks)
  out=$("$BIN/loadgen" rate "$@" "$RATE" "$DURATION" "$CONNS")
  local c1; c1=$(cpu_ticks)
  FX_P50=$(grep -o 'p50_us=[0-9]*' <<<"$out" | cut -d= -f2)
  FX_P99=$(grep -o 'p99_us=[0-9]*' <<<"$out" | cut -d= -f2)
  FX_P999=$(grep -o 'p999_us=[0-9]*' <<<"$out" | cut -d= -f2)
  FX_ERR=$(grep -o 'errors=[0-9]*' <<<"$out" | cut -d= -f2)
  FX_CPU=$(awk -v d=$((c1 - c0)) -v t="$TICK" -v n=$((RATE * DURATION)) 'BEGIN { printf "%.4f", d / t / (n / 1000) }')
  ROWS+=("$(printf "| %s | %s | %sus | %sus | p99.9 %sus; errors %s; sidecache CPU %s s per 1000 |" "$name" "$RATE (fixed)" "$FX_P50" "$FX_P99" "$FX_P999" "$FX_ERR" "$FX_CPU")")
  echo "  $name at $RATE/s: p50 ${FX_P50}us p99 ${FX_P99}us p99.9 ${FX_P999}us" >&2
}
fixed "redis GET direct, fixed rate" redis "$SC_REDIS_PORT" "$L2_KEY"; REDIS_FX_P99=$FX_P99
ROWS[-1]=${ROWS[-1]/sidecache CPU*per 1000/(no sidecache)}
fixed "sidecache L2 hit, fixed rate" http "$SC_PORT" "$L2_T"; L2_FX_P99=$FX_P99; L2_CPU=$FX_CPU
fixed "sidecache L1 hit, fixed rate" http "$SC_PORT" "$L1_T"; L1_FX_P99=$FX_P99; L1_CPU=$FX_CPU

# Miss: every request a new id of the never-in-L1 entity, against pgbench
# running the very query sidecache runs, at the same concurrency.
"${R[@]}" flushall >/dev/null
cat >"$WORK/miss.lua" <<LUA
local n = 0
local tid = 0
local threads = 0
function setup(thread) thread:set("tid", threads); threads = threads + 1 end
function init(args) n = tid * 100000 end
function request()
  n = n + 1
  return wrk.format("GET", "/v1/entities/doc?org_id=$ORG&id=" .. ((n % 200000) + 1))
end
LUA
wrk_run "$BASE/" "$WORK/miss.lua"
row "sidecache miss (PostgreSQL + store)" "$WRK_RPS" "$WRK_P50" "$WRK_P99" "non-2xx: ${WRK_NON2XX:-0}"
MISS_RPS=$WRK_RPS
cat >"$WORK/pgbench.sql" <<SQL
\set id random(1, 200000)
SELECT row_to_json(t) FROM (SELECT id, body FROM bench_docs WHERE org_id = '$ORG' AND id = :id) t;
SQL
PGB=$(pgbench -n -M prepared -c "$CONNS" -j "$THREADS" -T "$DURATION" -f "$WORK/pgbench.sql" "$SIDECACHE_POSTGRES_DSN" 2>/dev/null)
PGB_TPS=$(awk '/^tps/ {printf "%.0f", $3}' <<<"$PGB")
PGB_LAT=$(awk '/latency average/ {print $4 "ms avg"}' <<<"$PGB")
row "pgbench, the same query" "$PGB_TPS" "$PGB_LAT" "" "sidecache miss = $(ratio "$MISS_RPS" "$PGB_TPS") x pgbench"

# Stampede: 1000 connections ask for one cold key of a 20 ms query at once.
scripts/services.sh psql "$WORK/svc" -qc "SELECT pg_stat_statements_reset()" >/dev/null
ST=$("$BIN/loadgen" stampede "$SC_PORT" "/v1/entities/doc_slow?org_id=$ORG&id=4242" 1000)
QUERIES=$(scripts/services.sh psql "$WORK/svc" -tAc "SELECT coalesce(sum(calls),0) FROM pg_stat_statements WHERE query LIKE '%pg_sleep%' AND query NOT LIKE '%pg_stat_statements%'")
QMS=$(scripts/services.sh psql "$WORK/svc" -tAc "SELECT round(coalesce(max(mean_exec_time),0)::numeric, 1) FROM pg_stat_statements WHERE query LIKE '%pg_sleep%' AND query NOT LIKE '%pg_stat_statements%'")
ST_P50=$(grep -o 'p50_us=[0-9]*' <<<"$ST" | cut -d= -f2)
ST_P99=$(grep -o 'p99_us=[0-9]*' <<<"$ST" | cut -d= -f2)
ST_OK=$(grep -o 'status_200=[0-9]*' <<<"$ST" | cut -d= -f2)
row "stampede: 1000 requests, one cold key" "-" "$(ratio "$ST_P50" 1000)ms" "$(ratio "$ST_P99" 1000)ms" "queries: $QUERIES (query ${QMS} ms), 200s: ${ST_OK:-0}/1000"

# RSS: at idle (above), and after RSS_KEYS distinct keys went through L1.
if [[ "${SKIP_RSS:-0}" != 1 ]]; then
  TINY_KEY=$("$BIN/sidecache" key --config "$WORK/sidecache.yaml" tiny org_id=$ORG id=1)
  "$BIN/loadgen" fill-redis "$SC_REDIS_PORT" "${TINY_KEY%:1}:{}" "$RSS_KEYS" 100 600
  cat >"$WORK/rss.lua" <<LUA
local n = 0
local tid = 0
local threads = 0
function setup(thread) thread:set("tid", threads); threads = threads + 1 end
function init(args) n = tid end
function request()
  n = n + $THREADS
  if n > $RSS_KEYS then wrk.thread:stop() end
  return wrk.format("GET", "/v1/entities/tiny?org_id=$ORG&id=" .. n)
end
LUA
  wrk -t"$THREADS" -c"$CONNS" -d120s -s "$WORK/rss.lua" "$BASE/" >/dev/null
  RSS_AFTER=$(rss_kib)
  L1_BYTES=$(curl -fs "$BASE/metrics" | awk '/^sidecache_l1_bytes / {printf "%.0f", $2}')
  L1_EVICTED=$(curl -fs "$BASE/metrics" | awk '/^sidecache_l1_dropped_total\{reason="evicted"\}/ {printf "%.0f", $2}')
  ROWS+=("$(printf "| RSS | idle %s MiB | after %s keys: %s MiB | | growth %s MiB; l1.max_bytes 64 MiB; L1 holds %s MiB, evicted %s |" \
    $((RSS_IDLE / 1024)) "$RSS_KEYS" $((RSS_AFTER / 1024)) $(((RSS_AFTER - RSS_IDLE) / 1024)) $((L1_BYTES / 1048576)) "$L1_EVICTED")")
fi

DATE=$(date -u +%Y-%m-%d)
mkdir -p bench/results
OUT="bench/results/$DATE.md"
{
  echo "# sidecache benchmark, $DATE"
  echo
  echo "$(nproc) cores, $(uname -r); wrk -t$THREADS -c$CONNS -d${DURATION}s; sidecache $WORKERS workers; body $BYTES bytes."
  echo "Generated by bench/run.sh."
  echo
  echo "| scenario | requests/s | p50 | p99 | notes |"
  echo "|---|---:|---:|---:|---|"
  printf "%s\n" "${ROWS[@]}"
  echo
  echo "Targets:"
  echo
  echo "- L1 hit / nginx ($WORKERS workers) = $(ratio "$L1_RPS" "$NGINX") (target >= 0.7)"
  echo "- L2 hit / nginx ($WORKERS workers) = $(ratio "$L2_RPS" "$NGINX") (target >= 0.5); L2 hit / redis-benchmark = $(ratio "$L2_RPS" "$REDIS_RPS") (target >= 0.5)"
  echo "- added p99 at $RATE req/s over direct Redis: L2 $(( L2_FX_P99 - REDIS_FX_P99 )) us, L1 $(( L1_FX_P99 - REDIS_FX_P99 )) us (target <= 200 us)"
  echo "- stampede: $QUERIES query; p99 $(ratio "$ST_P99" 1000) ms against a ${QMS} ms query (target: 1 query, p99 <= query + 5 ms)"
  echo "- CPU per 1000 hits at $RATE req/s: L1 $L1_CPU s, L2 $L2_CPU s (target < 0.03)"
  [[ "${SKIP_RSS:-0}" == 1 ]] || echo "- RSS growth after $RSS_KEYS keys through L1: $(((RSS_AFTER - RSS_IDLE) / 1024)) MiB (target <= l1.max_bytes 64 MiB + a few)"
  echo "- nginx with 1 worker, for reference: $NGINX1 req/s"
} | tee "$OUT"
echo >&2
echo "bench: written to $OUT" >&2
