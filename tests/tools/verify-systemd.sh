#!/usr/bin/env bash
# Checks deploy/systemd/sidecache.service with systemd-analyze verify (any
# complaint fails), with the binary path pointed at this build. Exit 77
# (skipped) when systemd-analyze is not installed.
#   tests/tools/verify-systemd.sh SOURCE_DIR SIDECACHE_BINARY
set -euo pipefail
src=$1 bin=$2
if ! command -v systemd-analyze >/dev/null; then
  echo "systemd-analyze is not installed: skipping the unit file check"
  exit 77
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
sed "s|/usr/local/bin/sidecache|$bin|g" "$src/deploy/systemd/sidecache.service" >"$dir/sidecache.service"
out=$(systemd-analyze verify "$dir/sidecache.service" 2>&1) || { echo "$out"; exit 1; }
if [[ -n "$out" ]]; then
  echo "$out"
  exit 1
fi
echo "deploy/systemd/sidecache.service: systemd-analyze verify found nothing"
