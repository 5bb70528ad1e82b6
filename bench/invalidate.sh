#!/usr/bin/env bash
# Tenant invalidation cost: sidecache's watermark (one Redis write, whatever
# the tenant holds) next to the SCAN+DEL approach, on the same data.
#
#   bench/invalidate.sh [sizes...]      default: 10000 1000000
#
# For each size it fills that many keys for one tenant (in the real key
# layout), times one tenant invalidation through sidecache's API (median of
# 5, HTTP round trip included), then times SCAN MATCH + DEL of the same keys
# the way the article does it (SCAN COUNT 100, DEL each batch: bench/scan_del.cpp).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
SIZES=("$@")
[[ ${#SIZES[@]} -gt 0 ]] || SIZES=(10000 1000000)

scripts/deps.sh
BUILD_DIR="$ROOT/build-release" CMAKE_ARGS="-DSIDECACHE_BUILD_TESTS=OFF" scripts/build.sh Release >/dev/null

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sidecache-bench-XXXXXX")
chmod 755 "$WORK"
SC_PID=""
cleanup() {
  [[ -n "$SC_PID" ]] && kill "$SC_PID" 2>/dev/null && wait "$SC_PID" 2>/dev/null
  scripts/services.sh purge "$WORK/svc" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
scripts/services.sh start "$WORK/svc" >/dev/null
# shellcheck disable=SC1091
source "$WORK/svc/env"
scripts/services.sh psql "$WORK/svc" -q -f config/examples/schema.sql >/dev/null
R=(redis-cli -p "$SC_REDIS_PORT")

PORT=$(( 20000 + RANDOM % 40000 ))
sed -e "s|^log_level:.*|log_level: warn|" -e "s|^entities_dir:.*|entities_dir: $ROOT/config/examples/entities|" \
  config/examples/sidecache.yaml >"$WORK/sidecache.yaml"
SIDECACHE_LISTEN="127.0.0.1:$PORT" build-release/sidecache --config "$WORK/sidecache.yaml" >"$WORK/sidecache.log" 2>&1 &
SC_PID=$!
BASE="http://127.0.0.1:$PORT"
for _ in $(seq 1 200); do curl -fs "$BASE/readyz" >/dev/null 2>&1 && break; sleep 0.05; done

TENANT=11111111-1111-1111-1111-111111111111
USER=aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa
# The real key of one user, to derive the layout and check the effect.
curl -fs "$BASE/v1/entities/user?org_id=$TENANT&user_id=$USER" >/dev/null
KEY=$("${R[@]}" --scan --pattern "sc:t:$TENANT:user:*" | head -n 1)
LAYOUT=${KEY%:*}   # sc:t:<tenant>:user:<shape>

fill() {  # fill N: N keys sc:t:<tenant>:user:<shape>:<i>
  local n=$1 from=1 step=100000
  while (( from <= n )); do
    local to=$(( from + step - 1 )); (( to > n )) && to=$n
    "${R[@]}" EVAL "for i = tonumber(ARGV[2]), tonumber(ARGV[3]) do redis.call('SET', ARGV[1] .. i, ARGV[4]) end return 1" \
      0 "$LAYOUT:" "$from" "$to" '{"id":1,"email":"x@example.com"}' >/dev/null
    from=$(( to + 1 ))
  done
}


printf "\n| keys of the tenant | sidecache tenant invalidation | SCAN+DEL of the tenant's keys |\n"
printf "|---:|---:|---:|\n"
for n in "${SIZES[@]}"; do
  "${R[@]}" FLUSHDB >/dev/null
  fill "$n"
  curl -fs "$BASE/v1/entities/user?org_id=$TENANT&user_id=$USER" >/dev/null  # one real, cached value
  times=()
  for _ in 1 2 3 4 5; do
    t=$(curl -fs -o /dev/null -w '%{time_total}' -X POST "$BASE/v1/invalidate" -d "{\"tenant\":\"$TENANT\"}")
    times+=("$(awk -v t="$t" 'BEGIN { printf "%.3f", t * 1000 }')")
  done
  median=$(printf "%s\n" "${times[@]}" | sort -g | sed -n 3p)
  # The cached value is gone for readers at once.
  status=$(curl -s -D - -o /dev/null "$BASE/v1/entities/user?org_id=$TENANT&user_id=$USER" | tr -d '\r' | grep -i '^cache-status' || true)
  [[ "$status" == *"fwd=miss"* ]] || { echo "bench: the tenant's value was still served: $status" >&2; exit 1; }
  read -r deleted took < <(build-release/scan_del 127.0.0.1 "$SC_REDIS_PORT" "sc:t:$TENANT:*")
  printf "| %s | %s ms | %s ms (%s keys deleted) |\n" "$n" "$median" "$took" "$deleted"
done
echo
