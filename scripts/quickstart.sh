#!/usr/bin/env bash
# Installs what is missing, builds sidecache, starts a local Redis and
# PostgreSQL under .local/ on loopback, loads the demo schema, and runs
# sidecache with config/examples/sidecache.yaml. Ctrl-C stops everything.
#
#   scripts/quickstart.sh            run in the foreground
#   scripts/quickstart.sh --smoke    start, run the printed requests, check them, stop
set -euo pipefail
# Says which step failed, should one fail without a word of its own.
trap 'echo "quickstart: failed at line $LINENO: $BASH_COMMAND" >&2' ERR
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
MODE=${1:-run}

scripts/deps.sh
scripts/build.sh "${BUILD_TYPE:-RelWithDebInfo}"

LOCAL="$ROOT/.local"
mkdir -p "$LOCAL"
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick() { if port_free "$1"; then echo "$1"; else echo ""; fi; }

if [[ "$MODE" == --smoke ]]; then
  LOCAL="$LOCAL/smoke"
  rm -rf "$LOCAL"
  scripts/services.sh start "$LOCAL"
else
  # The usual ports when they are free (redis-cli and psql work without
  # flags), otherwise free ones.
  if [[ -f "$LOCAL/redis.port" ]]; then
    scripts/services.sh start "$LOCAL"
  else
    scripts/services.sh start "$LOCAL" "$(pick 6379)" "$(pick 5432)"
  fi
fi
stop_services() { scripts/services.sh stop "$LOCAL" >/dev/null 2>&1 || true; }
trap stop_services EXIT
# shellcheck disable=SC1091
source "$LOCAL/env"
scripts/services.sh psql "$LOCAL" -q -v ON_ERROR_STOP=1 -f config/examples/schema.sql >/dev/null
# Invalidate on write: writes made with plain SQL reach the cache.
build/sidecache triggers --config config/examples/sidecache.yaml |
  scripts/services.sh psql "$LOCAL" -q -v ON_ERROR_STOP=1 >/dev/null

LISTEN_PORT=7070
if ! port_free 7070; then
  LISTEN_PORT=$(( 20000 + RANDOM % 40000 ))
fi
# --smoke: a port the kernel picks (a random one may be in use, even by a
# connection in TIME_WAIT after a test suite); read back from the log below.
if [[ "$MODE" == --smoke ]]; then LISTEN_PORT=0; fi
export SIDECACHE_LISTEN="127.0.0.1:$LISTEN_PORT"
BASE="http://127.0.0.1:$LISTEN_PORT"
ACME=11111111-1111-1111-1111-111111111111
GLOBEX=22222222-2222-2222-2222-222222222222
ADA=aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa

REQUESTS=(
  "$BASE/v1/entities/user?org_id=$ACME&user_id=$ADA"
  "$BASE/v1/entities/user?org_id=$GLOBEX&user_id=$ADA"
  "$BASE/v1/entities/org_config?org_id=$ACME"
  "$BASE/v1/entities/feature_flags"
  "$BASE/v1/entities/users_page?org_id=$ACME&page=1&page_size=10"
  "$BASE/v1/entities/dashboard_30d?org_id=$ACME"
  "$BASE/v1/entities"
  "$BASE/readyz"
)

print_help() {
  cat <<TXT

sidecache is running on $BASE  (Redis on 127.0.0.1:$SC_REDIS_PORT, PostgreSQL on 127.0.0.1:$SC_PG_PORT)
Try (run the first one twice: the second answer says Cache-Status: sidecache; hit):

  curl -i '${REQUESTS[0]}'
  curl -i '${REQUESTS[1]}'      # same user id, other org: another user
  curl -s '${REQUESTS[2]}'
  curl -s '${REQUESTS[3]}'
  curl -s '${REQUESTS[4]}'
  curl -s '${REQUESTS[5]}'
  curl -s '${REQUESTS[6]}'
  curl -i -H 'Cache-Control: no-cache' '${REQUESTS[0]}'
  curl -i '$BASE/v1/entities/user?org_id=$ACME'        # 400 missing_param

Invalidation: a write made with plain SQL reaches the cache through the
triggers (installed from 'build/sidecache triggers'); the API does it by hand:

  scripts/services.sh psql .local -c "UPDATE users SET display_name = 'Ada King' WHERE id = '$ADA'"
  curl -s '${REQUESTS[0]}'
  curl -s -X DELETE '${REQUESTS[0]}'
  curl -s -X POST '$BASE/v1/invalidate' -d '{"tenant":"$ACME"}'

Stop with Ctrl-C.
TXT
}

if [[ "$MODE" != --smoke ]]; then
  print_help
  build/sidecache --config config/examples/sidecache.yaml
  exit $?
fi

# --smoke: the same daemon in the background, then every request above.
build/sidecache --config config/examples/sidecache.yaml >"$LOCAL/sidecache.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; stop_services' EXIT
actual=""
for _ in $(seq 1 200); do
  actual=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$LOCAL/sidecache.log" | head -n 1 | cut -d: -f2 || true)
  [[ -n "$actual" ]] && break
  kill -0 "$PID" 2>/dev/null || break
  sleep 0.05
done
if [[ -z "$actual" ]]; then
  echo "quickstart smoke: sidecache is not listening; its log:" >&2
  cat "$LOCAL/sidecache.log" >&2
  exit 1
fi
OLD_BASE=$BASE
BASE="http://127.0.0.1:$actual"
for i in "${!REQUESTS[@]}"; do REQUESTS[i]=${REQUESTS[i]/"$OLD_BASE"/"$BASE"}; done
# Ready, with the invalidation listener's first flush done.
ready=0
for _ in $(seq 1 200); do
  if curl -fs "$BASE/readyz" 2>/dev/null | grep -q '"invalidation_listener":{"state":"up"'; then ready=1; break; fi
  sleep 0.05
done
if [[ $ready -ne 1 ]]; then
  echo "quickstart smoke: not ready within 10 s; /readyz says: $(curl -s "$BASE/readyz" || echo "(no answer)")" >&2
  echo "quickstart smoke: the daemon's log:" >&2
  cat "$LOCAL/sidecache.log" >&2
  exit 1
fi
fail=0
for url in "${REQUESTS[@]}"; do
  code=$(curl -s -o /dev/null -w '%{http_code}' "$url")
  echo "quickstart smoke: $code $url"
  [[ "$code" == 200 ]] || fail=1
done
second=$(curl -s -D - -o /dev/null "${REQUESTS[0]}" | tr -d '\r' | grep -i '^cache-status:' || true)
echo "quickstart smoke: repeat -> $second"
[[ "$second" == *"sidecache; hit"* ]] || fail=1
# A write through plain SQL shows up (triggers + LISTEN).
scripts/services.sh psql "$LOCAL" -qc "UPDATE users SET display_name = 'Ada King' WHERE id = '$ADA' AND org_id = '$ACME'"
seen=""
for _ in $(seq 1 20); do
  seen=$(curl -s "${REQUESTS[0]}")
  [[ "$seen" == *"Ada King"* ]] && break
  sleep 0.05
done
echo "quickstart smoke: after an UPDATE in psql -> $seen"
[[ "$seen" == *"Ada King"* ]] || fail=1
kill -TERM $PID
wait $PID || fail=1
if [[ $fail -ne 0 ]]; then cat "$LOCAL/sidecache.log"; echo "quickstart smoke: FAILED"; exit 1; fi
echo "quickstart smoke: OK"
