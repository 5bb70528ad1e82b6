#!/usr/bin/env bash
# The benchmark suite: one command, one Markdown table.
#
#   bench/run.sh [seconds per throughput scenario, default 10]
#
# Builds Release, starts a private Redis, PostgreSQL (bench/schema.sql:
# 200k documents of ~1 KiB), sidecache (bench/entities) and nginx on
# loopback, runs every scenario in this one run with the same client
# settings, prints the table and writes it to bench/results/<date>.md (or
# <date>-2.md, -3, ... when that day already has one).
#
# Environment: WRK_THREADS (1), WRK_CONNS (50), RATE (10000 req/s for the
# fixed-rate runs), ROUNDS (3: the hit and fixed-rate scenarios run this
# many interleaved rounds, the median is reported), STAMPEDES (5: stampede
# runs, each on a new key, the median p99 reported), RSS_KEYS (1000000),
# SKIP_RSS=1 to leave the RSS scenario out.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
DURATION=${1:-10}
THREADS=${WRK_THREADS:-1}
CONNS=${WRK_CONNS:-50}
RATE=${RATE:-10000}
RSS_KEYS=${RSS_KEYS:-1000000}
ROUNDS=${ROUNDS:-3}
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

# Below the kernel's ephemeral range (32768-60999 on Linux by default): a
# port from inside it can be taken by an outgoing connection (wrk, curl,
# Redis clients) between this check and the daemon's bind.
free_port() { while :; do p=$((10000 + RANDOM % 22000)); (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo $p; return; }; done; }
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

# A number from loadgen's output: loadgen_field NAME OUTPUT (NAME=123).
loadgen_field() { grep -o "$1=[0-9]*" <<<"$2" | cut -d= -f2; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$SC_PID/status"; }
# CPU in clock ticks: of live processes (proc_ticks PID...); of
# PostgreSQL (the postmaster, the backends it reaped and the live ones, so
# pgbench's short-lived backends count); of this shell's finished children
# (wrk, pgbench: bash's `times`); of every core (busy time; idle and the
# time the host stole left out, as processes are not charged for it).
proc_ticks() { local p t=0 v; for p in "$@"; do v=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null) || v=0; t=$((t + ${v:-0})); done; echo $t; }
pg_ticks() {
  local own; own=$(awk '{print $14 + $15 + $16 + $17}' "/proc/$PG_MASTER/stat")
  echo $((own + $(proc_ticks $(ps -o pid= --ppid "$PG_MASTER"))))
}
machine_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8}' /proc/stat; }
steal_ticks() { awk '/^cpu / {print $9}' /proc/stat; }
# (Not in a subshell: a forked shell's `times` starts from zero.)
client_ticks() {
  times >"$WORK/times"
  CLIENT_TICKS=$(awk -v t="$TICK" 'NR == 2 { s = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); s += a[1] * 60 + a[2] } printf "%.0f", s * t }' "$WORK/times")
}
cpu_ticks() { proc_ticks ${FX_PIDS:-$SC_PID}; }
TICK=$(getconf CLK_TCK)
REDIS_PID=$("${R[@]}" info server | awk -F: '/^process_id:/ {print $2+0}')
PG_MASTER=$(scripts/services.sh pg-pid "$WORK/svc")
# The CPU the requests of one run cost each process, in us per request:
# cpu_mark before the run, cpu_split N after it (N requests) sets SPLIT_SC,
# SPLIT_REDIS, SPLIT_PG, SPLIT_CLIENT (wrk or pgbench), SPLIT_REST (the
# kernel's work charged to no process, and anything else), SPLIT_ALL, and
# SPLIT_BUSY and SPLIT_STEAL (% of all cores' time).
cpu_mark() {
  client_ticks
  CPU_MARK=("$(proc_ticks "$SC_PID")" "$(proc_ticks "$REDIS_PID")" "$(pg_ticks)" "$(machine_ticks)" "$(date +%s%N)"
    "$CLIENT_TICKS" "$(steal_ticks)")
}
cpu_split() {
  local n=$1 sc rd pg all ns cl st
  sc=$(($(proc_ticks "$SC_PID") - CPU_MARK[0])); rd=$(($(proc_ticks "$REDIS_PID") - CPU_MARK[1]))
  pg=$(($(pg_ticks) - CPU_MARK[2])); all=$(($(machine_ticks) - CPU_MARK[3])); ns=$(($(date +%s%N) - CPU_MARK[4]))
  client_ticks
  cl=$((CLIENT_TICKS - CPU_MARK[5])); st=$(($(steal_ticks) - CPU_MARK[6]))
  per() { awk -v d="$1" -v t="$TICK" -v n="$n" 'BEGIN { printf "%.0f", d / t * 1e6 / n }'; }
  share() { awk -v d="$1" -v t="$TICK" -v ns="$ns" -v c="$(nproc)" 'BEGIN { printf "%.0f", 100 * d / t / (ns / 1e9 * c) }'; }
  SPLIT_SC=$(per "$sc"); SPLIT_REDIS=$(per "$rd"); SPLIT_PG=$(per "$pg"); SPLIT_CLIENT=$(per "$cl")
  SPLIT_REST=$(per $((all - sc - rd - pg - cl))); SPLIT_ALL=$(per "$all")
  SPLIT_BUSY=$(share "$all"); SPLIT_STEAL=$(share "$st")
}
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
stop_nginx() {
  kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  rm -f "$WORK/nginx.pid"
}
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
  if [[ -f "$WORK/nginx.pid" ]]; then stop_nginx; sleep 0.5; fi
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
  WRK_N=$(awk '/requests in/ {print $1}' <<<"$out")
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

median() { printf "%s\n" "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# Throughput: ROUNDS rounds of nginx, redis-benchmark, L1 hit and L2 hit,
# interleaved, so that a noisy stretch of the machine hits every target;
# each row reports the median round.
echo "bench: throughput (wrk -t$THREADS -c$CONNS -d${DURATION}s, $ROUNDS rounds, body $BYTES bytes)" >&2
run_nginx 1
wrk_run "http://127.0.0.1:$NGINX_PORT/doc.json"; NGINX1=$WRK_RPS
row "nginx static file, 1 worker" "$WRK_RPS" "$WRK_P50" "$WRK_P99" "one round, for reference"
run_nginx $WORKERS
declare -a NG=() RB=() L1R=() L2R=()
declare -A P50 P99
for round in $(seq 1 "$ROUNDS"); do
  wrk_run "http://127.0.0.1:$NGINX_PORT/doc.json"; NG+=("$WRK_RPS"); P50[ng$WRK_RPS]=$WRK_P50; P99[ng$WRK_RPS]=$WRK_P99
  # redis-benchmark: GET of a value of the same size, same clients, no pipelining.
  out=$(redis-benchmark -p "$SC_REDIS_PORT" -t get -d "$BYTES" -c "$CONNS" -n $((DURATION * 60000)) --csv 2>/dev/null | tail -1 | tr -d '"')
  rps=$(awk -F, '{printf "%.0f", $2}' <<<"$out"); RB+=("$rps")
  P50[rb$rps]=$(awk -F, '{print $5 "ms"}' <<<"$out"); P99[rb$rps]=$(awk -F, '{print $7 "ms"}' <<<"$out")
  wrk_run "$BASE$L1_T"; L1R+=("$WRK_RPS"); P50[l1$WRK_RPS]=$WRK_P50; P99[l1$WRK_RPS]=$WRK_P99
  wrk_run "$BASE$L2_T"; L2R+=("$WRK_RPS"); P50[l2$WRK_RPS]=$WRK_P50; P99[l2$WRK_RPS]=$WRK_P99
  echo "  round $round: nginx ${NG[-1]}, redis-benchmark ${RB[-1]}, L1 ${L1R[-1]}, L2 ${L2R[-1]} req/s" >&2
done
stop_nginx
NGINX=$(median "${NG[@]}"); REDIS_RPS=$(median "${RB[@]}"); L1_RPS=$(median "${L1R[@]}"); L2_RPS=$(median "${L2R[@]}")
rounds() { local IFS=/; echo "rounds: $*"; }
row "nginx static file, $WORKERS workers" "$NGINX" "${P50[ng$NGINX]}" "${P99[ng$NGINX]}" "$(rounds "${NG[@]}")"
row "redis-benchmark GET ${BYTES} B, $CONNS clients" "$REDIS_RPS" "${P50[rb$REDIS_RPS]}" "${P99[rb$REDIS_RPS]}" "$(rounds "${RB[@]}")"
row "sidecache L1 hit" "$L1_RPS" "${P50[l1$L1_RPS]}" "${P99[l1$L1_RPS]}" "$(ratio "$L1_RPS" "$NGINX") x nginx ($WORKERS workers); $(rounds "${L1R[@]}")"
row "sidecache L2 hit (Redis)" "$L2_RPS" "${P50[l2$L2_RPS]}" "${P99[l2$L2_RPS]}" "$(ratio "$L2_RPS" "$NGINX") x nginx, $(ratio "$L2_RPS" "$REDIS_RPS") x redis-benchmark; $(rounds "${L2R[@]}")"

# Fixed rate: latency at $RATE req/s, next to a direct Redis GET of the same
# bytes, and CPU per 1000 requests next to nginx serving the same bytes at
# the same rate; ROUNDS rounds each, interleaved, the median p99 reported.
# (Before the miss scenarios, which leave PostgreSQL and Redis busy for a
# while.)
L2_KEY=$("$BIN/sidecache" key --config "$WORK/sidecache.yaml" doc org_id=$ORG id=1)
[[ "$("${R[@]}" strlen "$L2_KEY")" -gt 0 ]] || { echo "bench: $L2_KEY is not in Redis" >&2; exit 1; }
curl -fs "$BASE$L1_T" >/dev/null
sleep 1
declare -A FX
fixed() {  # key, then loadgen args: appends p50/p99/p99.9/errors/cpu to FX[key]
  local key=$1; shift
  local c0 c1 out
  c0=$(cpu_ticks)
  out=$("$BIN/loadgen" rate "$@" "$RATE" "$DURATION" "$CONNS")
  c1=$(cpu_ticks)
  local p50 p99 p999 err cpu
  p50=$(loadgen_field p50_us "$out")
  p99=$(loadgen_field p99_us "$out")
  p999=$(loadgen_field p999_us "$out")
  err=$(loadgen_field errors "$out")
  cpu=$(awk -v d=$((c1 - c0)) -v t="$TICK" -v n=$((RATE * DURATION)) 'BEGIN { printf "%.4f", d / t / (n / 1000) }')
  FX[$key]+="$p99 $p50 $p999 $err $cpu"$'\n'
  echo "  $key at $RATE/s: p50 ${p50}us p99 ${p99}us p99.9 ${p999}us, CPU ${cpu}s/1000 ($([[ -n "${FX_PIDS:-}" ]] && echo nginx || echo sidecache))" >&2
}
run_nginx $WORKERS
NGINX_MASTER=$(cat "$WORK/nginx.pid")
NGINX_PIDS="$NGINX_MASTER $(cat /proc/[0-9]*/stat 2>/dev/null | awk -v m="$NGINX_MASTER" '$4 == m {print $1}' | paste -sd' ')"
for round in $(seq 1 "$ROUNDS"); do
  fixed redis redis "$SC_REDIS_PORT" "$L2_KEY"
  fixed l2 http "$SC_PORT" "$L2_T"
  fixed l1 http "$SC_PORT" "$L1_T"
  FX_PIDS=$NGINX_PIDS fixed nginx http "$NGINX_PORT" /doc.json
done
stop_nginx
fixed_row() {  # key, name, whose CPU (yes: sidecache, nginx, no)  -> sets MED_P99, MED_CPU
  local line; line=$(sort -n <<<"${FX[$1]%$'\n'}" | awk -v n="$ROUNDS" 'NR == int((n + 1) / 2)')
  read -r MED_P99 p50 p999 err MED_CPU <<<"$line"
  local p99s; p99s=$(awk '{print $1}' <<<"${FX[$1]%$'\n'}" | paste -sd/)
  # CPU: the median round of its own (not the round of the median p99).
  MED_CPU=$(median $(awk '{print $5}' <<<"${FX[$1]%$'\n'}"))
  local cpu
  case $3 in
    yes) cpu="sidecache CPU $MED_CPU s per 1000" ;;
    nginx) cpu="nginx CPU (master and workers) $MED_CPU s per 1000" ;;
    *) cpu="(no sidecache)" ;;
  esac
  ROWS+=("$(printf "| %s | %s | %sus | %sus | p99.9 %sus; errors %s; %s; p99 rounds: %s |" "$2" "$RATE (fixed)" "$p50" "$MED_P99" "$p999" "$err" "$cpu" "$p99s")")
}
fixed_row redis "redis GET direct, fixed rate" no; REDIS_FX_P99=$MED_P99
fixed_row l2 "sidecache L2 hit, fixed rate" yes; L2_FX_P99=$MED_P99; L2_CPU=$MED_CPU
fixed_row l1 "sidecache L1 hit, fixed rate" yes; L1_FX_P99=$MED_P99; L1_CPU=$MED_CPU
fixed_row nginx "nginx static file, $WORKERS workers, fixed rate" nginx; NGINX_CPU=$MED_CPU

# Miss: every request a new id of the never-in-L1 entity, against pgbench
# running the very query sidecache runs, at the same concurrency.
"${R[@]}" flushall >/dev/null
# The start of a wrk script whose requests count n up (1, 2, ...), each
# thread from its own ten million.
counter_lua() {
  cat <<LUA
local n = 0
local tid = 0
local threads = 0
function setup(thread) thread:set("tid", threads); threads = threads + 1 end
function init(args) n = tid * 10000000 end
LUA
}
# A wrk script that asks for a new id on every request: file, target
# prefix, Lua expression of the id from n.
id_script() {
  {
    counter_lua
    cat <<LUA
function request()
  n = n + 1
  return wrk.format("GET", "$2" .. ($3))
end
LUA
  } >"$1"
}
id_script "$WORK/miss.lua" "/v1/entities/doc?org_id=$ORG&id=" "(n % 200000) + 1"
cpu_mark
wrk_run "$BASE/" "$WORK/miss.lua"
cpu_split "$WRK_N"
row "sidecache miss (PostgreSQL + store)" "$WRK_RPS" "$WRK_P50" "$WRK_P99" "non-2xx: ${WRK_NON2XX:-0}"
MISS_RPS=$WRK_RPS; MISS_P50=$WRK_P50
MISS_CPU=("$SPLIT_SC" "$SPLIT_REDIS" "$SPLIT_PG" "$SPLIT_CLIENT" "$SPLIT_REST" "$SPLIT_ALL" "$SPLIT_BUSY" "$SPLIT_STEAL")
cat >"$WORK/pgbench.sql" <<SQL
\set id random(1, 200000)
SELECT row_to_json(t) FROM (SELECT id, body FROM bench_docs WHERE org_id = '$ORG' AND id = :id) t;
SQL
cpu_mark
PGB=$(pgbench -n -M prepared -c "$CONNS" -j "$THREADS" -T "$DURATION" -f "$WORK/pgbench.sql" "$SIDECACHE_POSTGRES_DSN" 2>/dev/null)
cpu_split "$(awk '/transactions actually processed/ {print $NF}' <<<"$PGB" | cut -d/ -f1)"
PGB_TPS=$(awk '/^tps/ {printf "%.0f", $3}' <<<"$PGB")
PGB_LAT=$(awk '/latency average/ {print $4 "ms avg"}' <<<"$PGB")
row "pgbench, the same query" "$PGB_TPS" "$PGB_LAT" "" "sidecache miss = $(ratio "$MISS_RPS" "$PGB_TPS") x pgbench"
# Where a miss's CPU goes, against a pgbench transaction's: with every core
# busy, the ratio of the two totals is the ratio of the rates the cores
# allow; without sidecache's own share, what the rest would allow.
ROWS+=("$(printf "| %s | | | | %s |" "CPU per miss, us, by process" \
  "sidecache ${MISS_CPU[0]}, Redis ${MISS_CPU[1]}, PostgreSQL ${MISS_CPU[2]}, wrk ${MISS_CPU[3]}, the rest ${MISS_CPU[4]}; all ${MISS_CPU[5]}; cores ${MISS_CPU[6]}% busy, ${MISS_CPU[7]}% stolen by the host")")
ROWS+=("$(printf "| %s | | | | %s |" "CPU per pgbench transaction, us, by process" \
  "PostgreSQL $SPLIT_PG, pgbench $SPLIT_CLIENT, the rest $((SPLIT_REST + SPLIT_SC + SPLIT_REDIS)); all $SPLIT_ALL; cores $SPLIT_BUSY% busy, $SPLIT_STEAL% stolen by the host")")
CPU_BOUND=$(ratio "$SPLIT_ALL" "${MISS_CPU[5]}")
CPU_BOUND_FREE=$(ratio "$SPLIT_ALL" "$((MISS_CPU[5] - MISS_CPU[0]))")
echo "  CPU per miss: sidecache ${MISS_CPU[0]} us of ${MISS_CPU[5]} us; per pgbench transaction $SPLIT_ALL us; the cores allow $CPU_BOUND x, $CPU_BOUND_FREE x with sidecache at no CPU" >&2

# Batch reads: POST /v1/batch of 50 ids, hits (one MGET for all) against
# the L2 GET hits above, and misses (the doc entity's batch form: one query
# for all) against the GET misses above; compared per item.
batch_script() {  # file, 1: every request 50 new ids, 0: ids 1..50
  {
    counter_lua
    cat <<LUA
function request()
  local items = {}
  for i = 1, 50 do
    local id = i
    if $2 == 1 then n = n + 1; id = (n % 200000) + 1 end
    items[i] = '{"entity":"doc","params":{"org_id":"$ORG","id":' .. id .. '}}'
  end
  return wrk.format("POST", "/v1/batch", {["Content-Type"] = "application/json"}, '{"requests":[' .. table.concat(items, ",") .. ']}')
end
LUA
  } >"$1"
}
batch_script "$WORK/batch_hits.lua" 0
batch_script "$WORK/batch_miss.lua" 1
wrk -t1 -c1 -d1s -s "$WORK/batch_hits.lua" "$BASE/" >/dev/null  # ids 1..50 cached
wrk_run "$BASE/" "$WORK/batch_hits.lua"
BATCH_HIT_ITEMS=$((WRK_RPS * 50))
row "sidecache batch of 50 L2 hits (POST /v1/batch)" "$WRK_RPS" "$WRK_P50" "$WRK_P99" \
  "$BATCH_HIT_ITEMS items/s = $(ratio "$BATCH_HIT_ITEMS" "$L2_RPS") x the L2 GET hits' $L2_RPS/s; non-2xx: ${WRK_NON2XX:-0}"
"${R[@]}" flushall >/dev/null
scripts/services.sh psql "$WORK/svc" -qc "SELECT pg_stat_statements_reset()" >/dev/null
wrk_run "$BASE/" "$WORK/batch_miss.lua"
BATCH_MISS_ITEMS=$((WRK_RPS * 50))
BATCH_QUERIES=$(scripts/services.sh psql "$WORK/svc" -tAc "SELECT coalesce(sum(calls),0) FROM pg_stat_statements WHERE query LIKE '%ANY(\$2)%' AND query NOT LIKE '%pg_stat_statements%'")
row "sidecache batch of 50 misses, batch form (one query per batch)" "$WRK_RPS" "$WRK_P50" "$WRK_P99" \
  "$BATCH_MISS_ITEMS items/s = $(ratio "$BATCH_MISS_ITEMS" "$MISS_RPS") x the GET misses' $MISS_RPS/s; $BATCH_QUERIES batch queries; non-2xx: ${WRK_NON2XX:-0}"

# Poolers and replicas: the same miss through PgBouncer (transaction mode,
# prepared: off), and on a streaming replica, each with a sidecache of its
# own (its own key prefix, so every key is cold again).
scripts/services.sh start-pgbouncer "$WORK/svc" 8 >/dev/null
scripts/services.sh start-replica "$WORK/svc" 0 >/dev/null
# shellcheck disable=SC1091
source "$WORK/svc/env"
PGB_DSN="host=127.0.0.1 port=$SC_PGBOUNCER_PORT dbname=app user=app"
REPLICA_DSN="host=127.0.0.1 port=$SC_REPLICA_PORT dbname=app user=app"
EXTRA_PIDS=()
extra_sidecache() {  # name, postgres settings[, more YAML] -> sets EXTRA_BASE
  local port; port=$(free_port)
  sed -e "s/^listen: .*/listen: 127.0.0.1:$port/" -e "s/^key_prefix: .*/key_prefix: \"$1:\"/" \
      -e "s|^postgres: .*|postgres: { $2, pool_size: 8, queue_limit: 4096, statement_timeout: 5s }|" \
      -e "s|^redis: .*|${EXTRA_REDIS:-&}|" \
      "$WORK/sidecache.yaml" >"$WORK/$1.yaml"
  [[ -z "${3:-}" ]] || printf "%s\n" "$3" >>"$WORK/$1.yaml"
  # (The file's Redis URL, not the environment's: the TLS daemon's differs.)
  env -u SIDECACHE_REDIS_URL "$BIN/sidecache" --config "$WORK/$1.yaml" >"$WORK/$1.log" 2>&1 &
  EXTRA_PIDS+=($!)
  EXTRA_BASE="http://127.0.0.1:$port"
  for _ in $(seq 1 200); do curl -fs "$EXTRA_BASE/readyz" >/dev/null 2>&1 && break; sleep 0.05; done
  if ! curl -fs "$EXTRA_BASE/healthz" >/dev/null 2>&1; then
    echo "bench: the extra sidecache '$1' does not answer /healthz; its log ends:" >&2
    tail -20 "$WORK/$1.log" >&2
    exit 1
  fi
}
extra_sidecache pgb "dsn: \"$PGB_DSN\", prepared: off, listen_dsn: \"$SIDECACHE_POSTGRES_DSN\""
wrk_run "$EXTRA_BASE/" "$WORK/miss.lua"
row "sidecache miss through PgBouncer (transaction mode, prepared: off)" "$WRK_RPS" "$WRK_P50" "$WRK_P99" \
  "$(ratio "$WRK_RPS" "$MISS_RPS") x direct miss; non-2xx: ${WRK_NON2XX:-0}"
extra_sidecache rep "dsn: \"$SIDECACHE_POSTGRES_DSN\", replicas: [\"$REPLICA_DSN\"]"
for _ in $(seq 1 100); do curl -fs "$EXTRA_BASE/readyz" | grep -q '"state":"up","replayed"' && break; sleep 0.05; done
wrk_run "$EXTRA_BASE/" "$WORK/miss.lua"
REP_RPS=$WRK_RPS
REP_FILLS=$(curl -fs "$EXTRA_BASE/metrics" | awk '/^sidecache_pg_fills_total\{target="replica0"\}/ {printf "%.0f", $2}')
row "sidecache miss on a replica (no invalidation covers the keys)" "$WRK_RPS" "$WRK_P50" "$WRK_P99" \
  "$(ratio "$WRK_RPS" "$MISS_RPS") x primary miss; $REP_FILLS fills on the replica; non-2xx: ${WRK_NON2XX:-0}"
# Every key now under a tenant invalidation: each fill on the replica first
# checks, on its session, that the replica has replayed its position.
"${R[@]}" flushall >/dev/null
curl -fs -X POST "$EXTRA_BASE/v1/invalidate" -H 'Content-Type: application/json' -d "{\"tenant\":\"$ORG\"}" >/dev/null
sleep 0.2
wrk_run "$EXTRA_BASE/" "$WORK/miss.lua"
CHECKED_FILLS=$(curl -fs "$EXTRA_BASE/metrics" | awk '/^sidecache_pg_fills_total\{target="replica0"\}/ {printf "%.0f", $2}')
row "sidecache miss on a replica, every key under an invalidation (LSN check per fill)" "$WRK_RPS" "$WRK_P50" "$WRK_P99" \
  "$(ratio "$WRK_RPS" "$REP_RPS") x unchecked replica miss; $((CHECKED_FILLS - REP_FILLS)) fills on the replica; non-2xx: ${WRK_NON2XX:-0}"
for p in "${EXTRA_PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null || true; done
EXTRA_PIDS=()

# Noisy tenant: 100 connections of cold 20 ms reads for one tenant, while a
# quiet tenant sends one cold read every 100 ms; its latencies, with the
# fair queue (the default) and with one FIFO (tenants.fair_queue: false).
QUIET_ORG=22222222-2222-2222-2222-222222222222
id_script "$WORK/noisy.lua" "/v1/entities/doc_fair?org_id=$ORG&id=" "n"
quiet_under_noise() {  # base url, id offset -> QUIET_P50, QUIET_P99 (ms), NOISY_RPS
  wrk -t1 -c100 -d6s -s "$WORK/noisy.lua" "$1/" >"$WORK/noisy.out" 2>&1 &
  local wpid=$! times=()
  sleep 1
  for i in $(seq 1 40); do
    times+=("$(curl -s -o /dev/null -w '%{time_total}' "$1/v1/entities/doc_fair?org_id=$QUIET_ORG&id=$(($2 + i))")")
    sleep 0.1
  done
  wait "$wpid" || true
  NOISY_RPS=$(awk '/Requests\/sec/ {printf "%.0f", $2}' "$WORK/noisy.out")
  QUIET_P50=$(printf "%s\n" "${times[@]}" | sort -n | awk '{ v[NR] = $1 } END { printf "%.1f", v[int(NR / 2)] * 1000 }')
  QUIET_P99=$(printf "%s\n" "${times[@]}" | sort -n | awk '{ v[NR] = $1 } END { i = int(NR * 0.99); if (i < NR * 0.99) i++; printf "%.1f", v[i] * 1000 }')
}
extra_sidecache fair "dsn: \"$SIDECACHE_POSTGRES_DSN\""
quiet_under_noise "$EXTRA_BASE" 0
FAIR_P99=$QUIET_P99
row "quiet tenant's cold read under a noisy tenant, fair queue (20 ms query, 100 noisy connections)" "-" "${QUIET_P50}ms" "${QUIET_P99}ms" \
  "noisy tenant $NOISY_RPS req/s (pool of 8); quiet p99 = $(ratio "$QUIET_P99" 20) x the query"
extra_sidecache fifo "dsn: \"$SIDECACHE_POSTGRES_DSN\"" "tenants: { fair_queue: false }"
quiet_under_noise "$EXTRA_BASE" 1000
row "the same with one FIFO (tenants.fair_queue: false)" "-" "${QUIET_P50}ms" "${QUIET_P99}ms" \
  "noisy tenant $NOISY_RPS req/s; fair queue p99 = $(ratio "$FAIR_P99" "$QUIET_P99") x FIFO p99"
for p in "${EXTRA_PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null || true; done
EXTRA_PIDS=()

# Staleness audit: L2 hits at audit.sample 0.001 against 0 on one daemon,
# switched between the two by a reload (SIGHUP), so that nothing but the
# setting differs: the same process, heap, connections and key. The rounds
# alternate ABBA (2 x ROUNDS pairs, at least 6), and the row reports the
# median of the per-pair ratios, which a slow stretch of the machine moves
# far less than it moves either median.
extra_sidecache aud "dsn: \"$SIDECACHE_POSTGRES_DSN\""
AUD_BASE=$EXTRA_BASE
AUD_PID=${EXTRA_PIDS[-1]}
cp "$WORK/aud.yaml" "$WORK/aud.base.yaml"
audit_sample() {  # sample -> the daemon runs with it
  local gen; gen=$(curl -fs "$AUD_BASE/metrics" | awk '/^sidecache_config_generation / {printf "%.0f", $2}')
  { cat "$WORK/aud.base.yaml"; printf "audit: { sample: %s, max_per_second: 20 }\n" "$1"; } >"$WORK/aud.yaml"
  kill -HUP "$AUD_PID"
  for _ in $(seq 1 200); do
    [[ $(curl -fs "$AUD_BASE/metrics" | awk '/^sidecache_config_generation / {printf "%.0f", $2}') -gt $gen ]] && break
    sleep 0.05
  done
}
curl -fs "$AUD_BASE$L2_T" >/dev/null
declare -a AUD0=() AUD1=() AUD_RATIOS=()
AUD_PAIRS=$((ROUNDS * 2 < 6 ? 6 : ROUNDS * 2))
for pair in $(seq 1 "$AUD_PAIRS"); do
  for s in $( (( pair % 2 )) && echo "0 0.001" || echo "0.001 0"); do
    audit_sample "$s"
    wrk_run "$AUD_BASE$L2_T"
    if [[ $s == 0 ]]; then AUD0+=("$WRK_RPS"); else AUD1+=("$WRK_RPS"); AUD_P50=$WRK_P50; AUD_P99=$WRK_P99; fi
  done
  AUD_RATIOS+=("$(ratio "${AUD1[-1]}" "${AUD0[-1]}")")
done
AUDITS=$(curl -fs "$AUD_BASE/metrics" | awk '/^sidecache_audit_checks_total\{entity="doc"\}/ {printf "%.0f", $2}')
AUD_RATIO=$(median "${AUD_RATIOS[@]}")
row "sidecache L2 hit, audit.sample 0.001" "$(median "${AUD1[@]}")" "$AUD_P50" "$AUD_P99" \
  "$AUD_RATIO x the same hit at audit.sample 0 on the same daemon (median of $AUD_PAIRS pairs: $(rounds "${AUD_RATIOS[@]}")); ${AUDITS:-0} audits; $(median "${AUD0[@]}") req/s at 0"
for p in "${EXTRA_PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null || true; done
EXTRA_PIDS=()

# Tags: the L2 hit of doc_tagged (a param tag and a column tag: one script
# reads the value, its watermarks and its column tags' watermarks) against
# doc's plain MGET, on the same daemon, ABBA pairs as above.
TAG_T="/v1/entities/doc_tagged?org_id=$ORG&id=1"
curl -fs "$BASE$TAG_T" >/dev/null
declare -a TAG0=() TAG1=() TAG_RATIOS=()
for pair in $(seq 1 "$AUD_PAIRS"); do
  for t in $( (( pair % 2 )) && echo "$L2_T $TAG_T" || echo "$TAG_T $L2_T"); do
    wrk_run "$BASE$t"
    if [[ $t == "$L2_T" ]]; then TAG0+=("$WRK_RPS"); else TAG1+=("$WRK_RPS"); TAG_P50=$WRK_P50; TAG_P99=$WRK_P99; fi
  done
  TAG_RATIOS+=("$(ratio "${TAG0[-1]}" "${TAG1[-1]}")")
done
TAG_RATIO=$(median "${TAG_RATIOS[@]}")
row "sidecache L2 hit with 2 tags (a param and a column tag)" "$(median "${TAG1[@]}")" "$TAG_P50" "$TAG_P99" \
  "time per hit = $TAG_RATIO x the untagged hit's ($(median "${TAG0[@]}") req/s; median of $AUD_PAIRS pairs: $(rounds "${TAG_RATIOS[@]}"))"

# The L2 hit of daemon $2 against daemon $1's, in ABBA pairs ($AUD_PAIRS):
# PAIR0 and PAIR1 their req/s, PAIR_RATIOS $2 over $1 per pair, PAIR_P50
# and PAIR_P99 $2's last latencies. $3 names $2 when it gives no hit.
l2_pairs() {
  PAIR0=(); PAIR1=(); PAIR_RATIOS=()
  local pair b
  curl -fs "$2$L2_T" >/dev/null
  curl -s -D - -o /dev/null "$2$L2_T" | grep -qi "cache-status: sidecache; hit"$'\r' || { echo "bench: no L2 hit $3" >&2; exit 1; }
  for pair in $(seq 1 "$AUD_PAIRS"); do
    for b in $( (( pair % 2 )) && echo "$1 $2" || echo "$2 $1"); do
      wrk_run "$b$L2_T"
      if [[ $b == "$1" ]]; then PAIR0+=("$WRK_RPS"); else PAIR1+=("$WRK_RPS"); PAIR_P50=$WRK_P50; PAIR_P99=$WRK_P99; fi
    done
    PAIR_RATIOS+=("$(ratio "${PAIR1[-1]}" "${PAIR0[-1]}")")
  done
}

# Redis over TLS: the same L2 hit from a daemon whose Redis speaks only TLS
# (a second redis-server, certificates made now), against the plaintext
# daemon's, ABBA pairs as above.
scripts/services.sh start-redis-tls "$WORK/svc" >/dev/null
# shellcheck disable=SC1091
source "$WORK/svc/env"
EXTRA_REDIS="redis: { url: \"rediss://127.0.0.1:$SC_REDIS_TLS_PORT/0\", timeout: 200ms, tls: { ca_file: \"$SC_TLS_DIR/ca.crt\" } }" \
  extra_sidecache tls "dsn: \"$SIDECACHE_POSTGRES_DSN\""
TLS_BASE=$EXTRA_BASE
l2_pairs "$BASE" "$TLS_BASE" "over TLS"
row "sidecache L2 hit, Redis over TLS" "$(median "${PAIR1[@]}")" "$PAIR_P50" "$PAIR_P99" \
  "$(median "${PAIR_RATIOS[@]}") x the plaintext L2 hit ($(median "${PAIR0[@]}") req/s; median of $AUD_PAIRS pairs: $(rounds "${PAIR_RATIOS[@]}"))"
for p in "${EXTRA_PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null || true; done
EXTRA_PIDS=()

# Redis Cluster: the same L2 hit from a daemon on a cluster of 3 masters
# (services.sh start-redis-cluster), against the standalone daemon's, ABBA
# pairs as above. Then misses while the bench tenant's slot migrates: its
# keys already moved, the slot not yet handed over, so every read is
# answered ASK by the old master and TRYAGAIN by the new one (a multi-key
# read of keys it does not all hold), retried briefly, then read from
# PostgreSQL without storing.
scripts/services.sh start-redis-cluster "$WORK/svc" >/dev/null
# shellcheck disable=SC1091
source "$WORK/svc/env"
IFS=, read -r -a CL_PORTS <<<"$SC_REDIS_CLUSTER_PORTS"
CL_NODES=$(printf '"127.0.0.1:%s", ' "${CL_PORTS[@]:1}")
EXTRA_REDIS="redis: { url: \"redis://127.0.0.1:${CL_PORTS[0]}/0\", mode: cluster, nodes: [${CL_NODES%, }], timeout: 200ms }" \
  extra_sidecache cluster "dsn: \"$SIDECACHE_POSTGRES_DSN\""
CL_BASE=$EXTRA_BASE
l2_pairs "$BASE" "$CL_BASE" "on the cluster"
row "sidecache L2 hit, Redis Cluster (3 masters)" "$(median "${PAIR1[@]}")" "$PAIR_P50" "$PAIR_P99" \
  "$(median "${PAIR_RATIOS[@]}") x the standalone L2 hit ($(median "${PAIR0[@]}") req/s; median of $AUD_PAIRS pairs: $(rounds "${PAIR_RATIOS[@]}"))"
CL_SLOT=$(redis-cli -p "${CL_PORTS[0]}" cluster keyslot "{=$ORG}")
CL_FROM=""; CL_TO=""
for p in "${CL_PORTS[@]}"; do  # the slot's master answers; the others say MOVED
  if redis-cli -p "$p" get "{=$ORG}probe" 2>&1 | grep -q MOVED; then CL_TO=${CL_TO:-$p}; else CL_FROM=$p; fi
done
CL_FROM_ID=$(redis-cli -p "$CL_FROM" cluster myid); CL_TO_ID=$(redis-cli -p "$CL_TO" cluster myid)
redis-cli -p "$CL_TO" cluster setslot "$CL_SLOT" importing "$CL_FROM_ID" >/dev/null
redis-cli -p "$CL_FROM" cluster setslot "$CL_SLOT" migrating "$CL_TO_ID" >/dev/null
while keys=$(redis-cli -p "$CL_FROM" cluster getkeysinslot "$CL_SLOT" 100) && [[ -n $keys ]]; do
  # shellcheck disable=SC2086
  redis-cli -p "$CL_FROM" migrate 127.0.0.1 "$CL_TO" "" 0 5000 replace keys $keys >/dev/null
done
wrk_run "$CL_BASE/" "$WORK/miss.lua"
row "sidecache miss while its slot migrates (ASK, then TRYAGAIN; read from PostgreSQL, not stored)" "$WRK_RPS" "$WRK_P50" "$WRK_P99" \
  "$(ratio "$WRK_RPS" "$MISS_RPS") x the standalone miss; non-2xx: ${WRK_NON2XX:-0}"
for p in "${EXTRA_PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null || true; done
EXTRA_PIDS=()
scripts/services.sh stop-redis-cluster "$WORK/svc" >/dev/null

# Stampede: 1000 connections ask for one cold key of a 20 ms query at once.
# STAMPEDES (5) runs, each on a key of its own; the median p99 is reported
# (one run's p99 swings by 10 ms and more on this machine). Interleaved with
# each: nginx ($WORKERS workers) answering 1000 requests for the same bytes
# sent the same way, the cost of answering 1000 connections at once on this
# machine, with no query to wait for.
declare -a ST_P99S ST_P50S ST_QS ST_MGETS ST_OKS ST_SENDS ST_LASTS ST_FIRSTS NG_P99S NG_LASTS
run_nginx $WORKERS
for k in $(seq 1 "${STAMPEDES:-5}"); do
  NG_ST=$("$BIN/loadgen" stampede "$NGINX_PORT" /doc.json 1000)
  NG_P99S+=("$(loadgen_field p99_us "$NG_ST")")
  NG_LASTS+=("$(loadgen_field last_answer_us "$NG_ST")")
  sleep 0.5
  scripts/services.sh psql "$WORK/svc" -qc "SELECT pg_stat_statements_reset()" >/dev/null
  "${R[@]}" config resetstat >/dev/null
  ST=$("$BIN/loadgen" stampede "$SC_PORT" "/v1/entities/doc_slow?org_id=$ORG&id=$((4240 + k))" 1000)
  ST_QS+=("$(scripts/services.sh psql "$WORK/svc" -tAc "SELECT coalesce(sum(calls),0) FROM pg_stat_statements WHERE query LIKE '%pg_sleep%' AND query NOT LIKE '%pg_stat_statements%'")")
  QMS=$(scripts/services.sh psql "$WORK/svc" -tAc "SELECT round(coalesce(max(mean_exec_time),0)::numeric, 1) FROM pg_stat_statements WHERE query LIKE '%pg_sleep%' AND query NOT LIKE '%pg_stat_statements%'")
  ST_P50S+=("$(loadgen_field p50_us "$ST")")
  ST_P99S+=("$(loadgen_field p99_us "$ST")")
  ST_OKS+=("$(loadgen_field status_200 "$ST")")
  ST_SENDS+=("$(loadgen_field send_us "$ST")")
  ST_LASTS+=("$(loadgen_field last_answer_us "$ST")")
  ST_FIRSTS+=("$(loadgen_field first_answer_us "$ST")")
  # Redis reads the stampede made (MGET: lookups; the leader's begin and
  # commit are EVALSHA).
  ST_MGETS+=("$("${R[@]}" info commandstats | tr -d '\r' | awk -F'[=,]' '/^cmdstat_mget:/ {print $2}')")
  sleep 0.5
done
stop_nginx
ST_P50=$(median "${ST_P50S[@]}")
ST_P99=$(median "${ST_P99S[@]}")
NG_P99=$(median "${NG_P99S[@]}")
QUERIES=$(printf "%s\n" "${ST_QS[@]}" | sort -u | paste -sd/)
ms_list() { for v in "$@"; do ratio "$v" 1000; echo; done | paste -sd/; }
row "stampede: 1000 requests, one cold key, median of ${#ST_P99S[@]}" "-" "$(ratio "$ST_P50" 1000)ms" "$(ratio "$ST_P99" 1000)ms" "queries per stampede: $(printf "%s\n" "${ST_QS[@]}" | paste -sd/) (query ${QMS} ms); 200s: $(printf "%s\n" "${ST_OKS[@]}" | paste -sd/) of 1000; p99 runs: $(ms_list "${ST_P99S[@]}") ms; Redis lookups: $(printf "%s\n" "${ST_MGETS[@]}" | paste -sd/); sending took $(ms_list "${ST_SENDS[@]}") ms; first answer at $(ms_list "${ST_FIRSTS[@]}") ms, last at $(ms_list "${ST_LASTS[@]}") ms"
row "nginx: 1000 requests for the same bytes sent at once, median of ${#NG_P99S[@]} (interleaved with the stampedes)" "-" "" "$(ratio "$NG_P99" 1000)ms" "p99 runs: $(ms_list "${NG_P99S[@]}") ms; last answer at $(ms_list "${NG_LASTS[@]}") ms; stampede p99 - query = $(awk -v a="$ST_P99" -v q="$QMS" 'BEGIN { printf "%.2f", a / 1000 - q }') ms"

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
# A second run on the same day gets a file of its own: every earlier table stays.
OUT="bench/results/$DATE.md"
n=2
while [[ -e "$OUT" ]]; do OUT="bench/results/$DATE-$n.md"; n=$((n + 1)); done
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "not a git checkout")
{
  echo "# sidecache benchmark, $DATE"
  echo
  echo "Commit $COMMIT$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ", with changes not committed")."
  echo
  echo "$(nproc) cores, $(uname -r); wrk -t$THREADS -c$CONNS -d${DURATION}s; sidecache $WORKERS workers; body $BYTES bytes; hit and fixed-rate rows: median of $ROUNDS interleaved rounds."
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
  echo "- miss / pgbench = $(ratio "$MISS_RPS" "$PGB_TPS") (target >= 0.6); miss p50 $MISS_P50 against pgbench's $PGB_LAT (target: within 1 ms). The cores' time per request: a miss ${MISS_CPU[5]} us (sidecache's own ${MISS_CPU[0]} us), a pgbench transaction $SPLIT_ALL us: with every core busy they allow $CPU_BOUND x, and $CPU_BOUND_FREE x if sidecache took no CPU at all"
  echo "- stampede: $QUERIES query per stampede; median p99 $(ratio "$ST_P99" 1000) ms against a ${QMS} ms query (target: 1 query, p99 <= query + 5 ms); nginx answering 1000 requests sent at once: p99 $(ratio "$NG_P99" 1000) ms"
  echo "- CPU per 1000 hits at $RATE req/s: L1 $L1_CPU s, L2 $L2_CPU s (target < 0.03); nginx serving the same bytes at that rate: $NGINX_CPU s"
  echo "- L2 hit at audit.sample 0.001 / at 0 = $AUD_RATIO (target >= 0.97, within the noise)"
  echo "- L2 hit with 2 tags, time / untagged hit's = $TAG_RATIO (target <= 1.2)"
  echo "- batch of 50 hits / 50 GET hits, per item: $(ratio "$BATCH_HIT_ITEMS" "$L2_RPS") (target >= 5)"
  echo "- batch of 50 misses (batch form) / 50 GET misses, per item: $(ratio "$BATCH_MISS_ITEMS" "$MISS_RPS")"
  echo "- quiet tenant's cold p99 under a noisy tenant: $FAIR_P99 ms with the fair queue (target <= 2 x the 20 ms query)"
  [[ "${SKIP_RSS:-0}" == 1 ]] || echo "- RSS growth after $RSS_KEYS keys through L1: $(((RSS_AFTER - RSS_IDLE) / 1024)) MiB (target <= l1.max_bytes 64 MiB + a few)"
  echo "- nginx with 1 worker, for reference: $NGINX1 req/s"
} | tee "$OUT"
echo >&2
echo "bench: written to $OUT" >&2
