#!/usr/bin/env bash
# scripts/services.sh with a relative folder, as the quickstart's help shows
# it: start both, restart Redis alone, and stop. Fails on any error.
set -euo pipefail
ROOT=$1
work=$(mktemp -d "${TMPDIR:-/tmp}/sidecache-services-XXXXXX")
trap '(cd "$work" && "$ROOT/scripts/services.sh" purge .local) >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
cd "$work"
"$ROOT/scripts/services.sh" start .local
"$ROOT/scripts/services.sh" stop-redis .local
"$ROOT/scripts/services.sh" start-redis .local
redis-cli -p "$(cat .local/redis.port)" ping | grep -q PONG
grep -q "SC_SERVICES_DIR='$work/.local'" .local/env
echo "services: a relative folder works"
