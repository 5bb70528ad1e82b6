#!/usr/bin/env bash
# Configures and builds sidecache into build/ (or $BUILD_DIR).
# Usage: scripts/build.sh [Release|RelWithDebInfo|Debug]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
TYPE=${1:-RelWithDebInfo}
JOBS=${JOBS:-2}
cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE="$TYPE" ${CMAKE_ARGS:-} >/dev/null
cmake --build "$BUILD_DIR" -j"$JOBS"
