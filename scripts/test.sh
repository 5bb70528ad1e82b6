#!/usr/bin/env bash
# Installs what is missing, builds, starts a private Redis and PostgreSQL on
# free loopback ports, runs the whole suite (ctest), runs the quickstart's
# smoke check, and stops the servers again, also when a test fails.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

# Seconds per phase, printed at the end (the whole run should stay near
# ten minutes).
PHASES=()
phase_start=$SECONDS
phase() {
  PHASES+=("$1 $((SECONDS - phase_start))s")
  phase_start=$SECONDS
}

scripts/deps.sh
# The validators the suite runs (tests/tools: Redocly CLI, kubernetes-models),
# at the versions package-lock.json pins.
(cd tests/tools && npm ci --no-audit --no-fund --loglevel=error)
phase deps
scripts/build.sh "${BUILD_TYPE:-RelWithDebInfo}"
phase build

SVC=$(mktemp -d "${TMPDIR:-/tmp}/sidecache-test-XXXXXX")
cleanup() {
  scripts/services.sh purge "$SVC" || true
  rm -rf "$SVC"
}
trap cleanup EXIT
scripts/services.sh start "$SVC"
# shellcheck disable=SC1091
source "$SVC/env"
echo "test: redis on 127.0.0.1:$SC_REDIS_PORT, postgres on 127.0.0.1:$SC_PG_PORT ($SVC)"

set +e
(cd build && ctest --output-on-failure -j2 --timeout 300) 2>&1 | tee "$SVC/ctest.log"
status=${PIPESTATUS[0]}
set -e
summary=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests failed out of [0-9]+' "$SVC/ctest.log" || true)
phase ctest

# The README's first command, end to end: build, services, schema, daemon,
# and the curl commands it prints.
smoke=skipped
if [[ $status -eq 0 ]]; then
  if scripts/quickstart.sh --smoke; then smoke=passed; else smoke=failed; status=1; fi
  phase smoke
fi

# Prints the sanitizer reports written to folder $1 (label $2); fails when
# there are any.
no_reports() {
  if ls "$1"/* >/dev/null 2>&1; then
    echo "test: $2 reports:"
    cat "$1"/*
    return 1
  fi
}

# The whole suite again, built with AddressSanitizer and UndefinedBehavior-
# Sanitizer (leak detection on). Any report, from a test or from a daemon
# the tests started, fails the run. SIDECACHE_SANITIZERS=0 skips it. The
# long fault scenarios on the cluster (a slot moved, a master killed, both
# under load) and the 32 MB late-reply scenario, whose timing a sanitizer's
# slowdown distorts, run in the plain pass only.
asan=skipped
if [[ $status -eq 0 && "${SIDECACHE_SANITIZERS:-1}" != 0 ]]; then
  echo "test: AddressSanitizer + UndefinedBehaviorSanitizer pass"
  BUILD_DIR="$ROOT/build-asan" CMAKE_ARGS="-DSIDECACHE_SANITIZE=address,undefined" scripts/build.sh Debug
  mkdir -p "$SVC/sanitizers"
  set +e
  (cd build-asan &&
    ASAN_OPTIONS="detect_leaks=1:log_path=$SVC/sanitizers/asan" \
    UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$SVC/sanitizers/ubsan" \
    SC_TEST_REDIS_TIMEOUT=500ms SC_TEST_ISOLATION_REQUESTS=20000 \
    ctest --output-on-failure -j2 --timeout 600 \
      -E "^cluster daemon: (a hot tenant|kill -9)|^cluster client: moving a hot slot|^a large value that is slow to read") 2>&1 |
    tee "$SVC/ctest-asan.log"
  asan_status=${PIPESTATUS[0]}
  set -e
  asan_summary=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests failed out of [0-9]+' "$SVC/ctest-asan.log" || true)
  no_reports "$SVC/sanitizers" sanitizer || asan_status=1
  if [[ $asan_status -eq 0 ]]; then asan=passed; else asan=failed; status=1; fi
  echo "test: sanitizer pass $asan (${asan_summary:-no summary})"
  phase asan
fi

# ThreadSanitizer: the concurrency tests (singleflight, breaker, and the
# daemon's worker threads under the stampede, race, lease, early-refresh and
# reload tests, and the pool opening all its connections at start). Any
# report fails the run.
tsan=skipped
if [[ $status -eq 0 && "${SIDECACHE_SANITIZERS:-1}" != 0 ]]; then
  echo "test: ThreadSanitizer pass"
  BUILD_DIR="$ROOT/build-tsan" CMAKE_ARGS="-DSIDECACHE_SANITIZE=thread" scripts/build.sh Debug
  mkdir -p "$SVC/tsan"
  tsan_status=0
  export TSAN_OPTIONS="log_path=$SVC/tsan/tsan:halt_on_error=0"
  # One invocation per name pattern, each with --warn NoTests: a pattern
  # that a rename left matching nothing fails the pass instead of silently
  # dropping its tests from it.
  for spec in "*concurrent*" "*breaker*" "*leader*" "read path*" "invalidator*"; do
    build-tsan/tests/unit_tests --warn NoTests "$spec" >"$SVC/tsan-unit.log" 2>&1 ||
      { tsan_status=1; echo "test: ThreadSanitizer: unit tests '$spec' failed"; tail -20 "$SVC/tsan-unit.log"; }
  done
  for spec in "200 concurrent requests*" "an invalidation wins over a racing fill*" "four processes*" "early refresh*" \
              "SIGHUP reloads*" "stale_while_revalidate*" "l1*" "at start the pool*" "replica race*" \
              "behind pgbouncer with prepared: on*" "fair queue: a noisy*" "a tag invalidation wins*" "tags:*" "pool:*"; do
    SC_TEST_REDIS_TIMEOUT=500ms build-tsan/tests/integration_tests --warn NoTests "$spec" ||
      { tsan_status=1; echo "test: ThreadSanitizer: integration tests '$spec' failed"; }
  done
  unset TSAN_OPTIONS
  no_reports "$SVC/tsan" ThreadSanitizer || tsan_status=1
  if [[ $tsan_status -eq 0 ]]; then tsan=passed; else tsan=failed; status=1; fi
  echo "test: ThreadSanitizer pass $tsan"
  phase tsan
fi

# Fuzzing: replay every seed corpus, then a short run per target
# (SIDECACHE_FUZZ_SECONDS, default 15; scripts/fuzz.sh TARGET SECONDS for a
# longer one). A finding fails the run.
fuzz=skipped
if [[ $status -eq 0 && "${SIDECACHE_FUZZ_SECONDS:-15}" != 0 ]]; then
  if scripts/fuzz.sh all "${SIDECACHE_FUZZ_SECONDS:-15}"; then fuzz=passed; else fuzz=failed; status=1; fi
  phase fuzz
fi

# The Dockerfile, built and run without a Docker engine (debootstrap +
# chroot); skipped, with the reason, where the machine does not allow it.
# SIDECACHE_DOCKERFILE_CHECK=0 skips it.
dockerfile=skipped
if [[ $status -eq 0 && "${SIDECACHE_DOCKERFILE_CHECK:-1}" != 0 ]]; then
  set +e
  scripts/check-dockerfile.sh
  rc=$?
  set -e
  case $rc in
    0) dockerfile=passed ;;
    77) dockerfile=skipped ;;
    *) dockerfile=failed; status=1 ;;
  esac
  phase dockerfile
fi

# Each pass on its own line, then one closing line that counts every
# distinct test once: ctest's tests (a test that failed in the plain pass or
# in the sanitizer pass counts as failed), the smoke check, fuzzing and the
# Dockerfile check. TSan reruns tests ctest counted already; if it fails, it
# counts as one failed check of its own.
failed_names() { sed -n '/The following tests FAILED:/,$p' "$1" 2>/dev/null | grep -E '^[[:space:]]+[0-9]+ - ' | sed -E 's/^[[:space:]]+[0-9]+ - (.*) \([^)]*\)$/\1/'; }
total=$(sed -E 's/.* out of ([0-9]+)/\1/' <<<"${summary:-0% tests passed, 0 tests failed out of 0}")
failed=$({ failed_names "$SVC/ctest.log"; failed_names "$SVC/ctest-asan.log"; } | sort -u | grep -c . || true)
[[ -z "$summary" && $status -ne 0 ]] && failed=$((failed + 1))
passed=$((total - failed))
[[ $passed -lt 0 ]] && passed=0
for check in "$smoke" "$fuzz" "$dockerfile"; do
  [[ $check == passed ]] && passed=$((passed + 1))
  [[ $check == failed ]] && failed=$((failed + 1))
done
[[ $tsan == failed ]] && failed=$((failed + 1))
echo "test: plain pass: ${summary:-no summary}"
echo "test: smoke check: $smoke"
echo "test: AddressSanitizer + UBSan pass: $asan (${asan_summary:-no summary})"
echo "test: ThreadSanitizer pass: $tsan"
echo "test: fuzzing: $fuzz"
echo "test: Dockerfile check: $dockerfile"
echo "test: time per phase: ${PHASES[*]}; total $((SECONDS / 60))m$((SECONDS % 60))s"
echo
echo "$passed passed, $failed failed"
exit $status
