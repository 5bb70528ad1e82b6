#!/usr/bin/env bash
# Installs the Debian bookworm packages sidecache needs to build, test and run
# the quickstart, skipping those already installed. Safe to run repeatedly.
set -euo pipefail

PACKAGES=(
  g++ cmake make pkg-config ccache git
  libboost1.81-dev libboost-json1.81-dev
  libhiredis-dev libpqxx-dev libspdlog-dev libyaml-cpp-dev
  catch2 prometheus-cpp-dev
  redis-server postgresql postgresql-contrib
  clang-14 libclang-rt-14-dev
  curl ca-certificates procps iproute2
)
# Benchmarks only: wrk and nginx (for the static-file reference figure).
if [[ "${SIDECACHE_BENCH_DEPS:-0}" == 1 ]]; then PACKAGES+=(wrk nginx-light); fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi

SUDO=()
if [[ $(id -u) -ne 0 ]]; then SUDO=(sudo); fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
# Debian's postgresql package tries to start a cluster; in a container without
# an init system that fails harmlessly. We run our own cluster anyway.
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
