#!/usr/bin/env bash
# Installs the Debian bookworm packages sidecache needs to build, test and run
# the quickstart, skipping those already installed. Safe to run repeatedly.
set -euo pipefail

#
# SIDECACHE_DEPS selects a set: all (the default: build, test, quickstart),
# build (what compiles sidecache; the Dockerfile's build stage) or runtime
# (the shared libraries the binary needs; the Dockerfile's runtime stage).
# The Dockerfile runs this script, so the image and the scripts install the
# very same packages.
BUILD=(
  g++ cmake make pkg-config ccache
  libboost1.81-dev libboost-json1.81-dev
  libhiredis-dev libpqxx-dev libspdlog-dev libyaml-cpp-dev
  prometheus-cpp-dev libssl-dev
)
RUNTIME=(
  libboost-json1.81.0 libhiredis0.14 libpqxx-6.4 libspdlog1.10 libfmt9 libyaml-cpp0.7 libprometheus-cpp-core1.0 libssl3
)
case "${SIDECACHE_DEPS:-all}" in
  build) PACKAGES=("${BUILD[@]}") ;;
  runtime) PACKAGES=("${RUNTIME[@]}") ;;
  all)
    PACKAGES=(
      "${BUILD[@]}" git catch2
      redis-server postgresql postgresql-contrib pgbouncer openssl
      clang-14 libclang-rt-14-dev
      curl ca-certificates procps iproute2
      debootstrap   # scripts/check-dockerfile.sh
    )
    # Tests only: Node.js runs the validators in tests/tools, Python and Node
    # the client examples in docs/clients.
    command -v node >/dev/null && command -v npm >/dev/null || PACKAGES+=(nodejs npm)
    command -v python3 >/dev/null || PACKAGES+=(python3)
    ;;
  *) echo "deps: SIDECACHE_DEPS must be all, build or runtime" >&2; exit 64 ;;
esac
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
