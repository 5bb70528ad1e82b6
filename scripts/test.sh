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
# the tests started, fails the run. SIDECACHE_SANITIZERS=0 skips it.
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
    ctest --output-on-failure -j2 --timeout 600) 2>&1 | tee "$SVC/ctest-asan.log"
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
  build-tsan/tests/unit_tests "*concurrent*,*breaker*,*leader*" || tsan_status=1
  # One comma-separated spec: Catch2 v2 does not OR separate arguments.
  SC_TEST_REDIS_TIMEOUT=500ms build-tsan/tests/integration_tests \
    "200 concurrent requests*,an invalidation wins over a racing fill*,four processes*,early refresh*,SIGHUP reloads*,stale_while_revalidate*,l1*,at start the pool*" \
    || tsan_status=1
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

# One closing line for humans and CI: ctest's counts plus the smoke check.
total=$(sed -E 's/.* out of ([0-9]+)/\1/' <<<"${summary:-0% tests passed, 0 tests failed out of 0}")
failed=$(sed -E 's/.*passed, ([0-9]+) tests failed.*/\1/' <<<"${summary:-0% tests passed, 0 tests failed out of 0}")
passed=$((total - failed))
[[ $smoke == passed ]] && passed=$((passed + 1))
[[ $smoke == failed ]] && failed=$((failed + 1))
if [[ -n "${asan_summary:-}" ]]; then
  a_total=$(sed -E 's/.* out of ([0-9]+)/\1/' <<<"$asan_summary")
  a_failed=$(sed -E 's/.*passed, ([0-9]+) tests failed.*/\1/' <<<"$asan_summary")
  passed=$((passed + a_total - a_failed))
  failed=$((failed + a_failed))
fi
[[ $asan == failed && "${a_failed:-0}" == 0 ]] && failed=$((failed + 1))
[[ $tsan == passed ]] && passed=$((passed + 1))
[[ $tsan == failed ]] && failed=$((failed + 1))
[[ $fuzz == passed ]] && passed=$((passed + 1))
[[ $fuzz == failed ]] && failed=$((failed + 1))
[[ $dockerfile == passed ]] && passed=$((passed + 1))
[[ $dockerfile == failed ]] && failed=$((failed + 1))
echo "test: Dockerfile check $dockerfile"
echo "test: time per phase: ${PHASES[*]}; total $((SECONDS / 60))m$((SECONDS % 60))s"
echo
echo "$passed passed, $failed failed"
exit $status
