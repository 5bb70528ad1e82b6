#!/usr/bin/env bash
# Builds the libFuzzer targets (clang) and runs one or all of them.
#   scripts/fuzz.sh TARGET SECONDS     e.g. scripts/fuzz.sh http_request 600
#   scripts/fuzz.sh all SECONDS        every target, one after the other
# Each run first replays the seed corpus (tests/fuzz/corpus/TARGET), then
# fuzzes for SECONDS. New inputs go to a scratch folder, crashes to
# build-fuzz/crashes/. Exit status is non-zero on any finding.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
TARGET=${1:?usage: scripts/fuzz.sh TARGET|all SECONDS}
SECONDS_PER=${2:-60}
TARGETS=(http_request invalidate_body batch_body config_yaml value_decode key_encoding tag_template cluster_reply)
[[ "$TARGET" == all ]] || TARGETS=("$TARGET")

CXX_FUZZ=$(command -v clang++-14 || command -v clang++ || true)
[[ -n "$CXX_FUZZ" ]] || { echo "fuzz: clang++ not found (scripts/deps.sh installs clang-14)" >&2; exit 1; }
cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER="$CXX_FUZZ" -DSIDECACHE_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-fuzz -j"${JOBS:-2}" >/dev/null
mkdir -p build-fuzz/crashes

status=0
for t in "${TARGETS[@]}"; do
  bin=build-fuzz/tests/fuzz/fuzz_$t
  seeds=tests/fuzz/corpus/$t
  scratch=$(mktemp -d "${TMPDIR:-/tmp}/sidecache-fuzz-$t-XXXXXX")
  # 1. Replay the seeds: each must pass.
  if ! "$bin" -runs=0 "$seeds" >"$scratch/replay.log" 2>&1; then
    echo "fuzz: $t: a seed input fails"; tail -40 "$scratch/replay.log"; status=1; continue
  fi
  # 2. Fuzz.
  if "$bin" "$scratch" "$seeds" -max_total_time="$SECONDS_PER" -print_final_stats=1 \
       -artifact_prefix="build-fuzz/crashes/$t-" >"$scratch/run.log" 2>&1; then
    execs=$(sed -n 's/.*number_of_executed_units: *//p' "$scratch/run.log" | tail -n 1)
    echo "fuzz: $t: ${execs:-?} executions in ${SECONDS_PER}s, no finding"
  else
    echo "fuzz: $t: FINDING (input saved under build-fuzz/crashes/)"; grep -m1 -A30 "ERROR\|runtime error\|terminate" "$scratch/run.log" || tail -40 "$scratch/run.log"
    status=1
  fi
  rm -rf "$scratch"
done
exit $status
