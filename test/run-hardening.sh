#!/bin/bash
# Hardening run (issue 8), called by CI after the normal suite:
#  1. a clang ASan+UBSan build (-DRDTMON_SANITIZE=ON, -O1) in its own build dir, running
#     the whole gtest suite: unit, emulator and integration tests (the bad-input matrix and
#     the fault tests included), with the daemon, the hook and the emulator sanitized too;
#  2. a clang build with -DRDTMON_FUZZ=ON running every libFuzzer target for a short fixed
#     time (RDTMON_FUZZ_SECONDS, default 25) plus its kept regression inputs.
# Any sanitizer report, fuzzer finding or failed test fails the run.
#
# Environment: ASAN_BUILD_DIR (build-asan), FUZZ_BUILD_DIR (build-fuzz),
# RDTMON_FUZZ_SECONDS (25), SKIP_ASAN=1 / SKIP_FUZZ=1 to run one half only, SUMMARY_FILE
# (where each phase's counts go; test/run-tests.sh sets it and prints the summary).
# Run as root on Debian 12 (test/setup-deps.sh installs what is needed, clang included).
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$(pwd)
ASAN_DIR=${ASAN_BUILD_DIR:-build-asan}
FUZZ_DIR=${FUZZ_BUILD_DIR:-build-fuzz}
FUZZ_SECONDS=${RDTMON_FUZZ_SECONDS:-25}
JOBS=$(nproc)
[ "$JOBS" -gt 2 ] && JOBS=2

# Every temp dir the tests make (TempDir honours TMPDIR) lives under one private dir, so
# the trap can find and detach any mount a crashed test left behind before removing it.
RUN_TMP=$(mktemp -d /tmp/rdtmon-hardening.XXXXXX)
SUMMARY_FILE=${SUMMARY_FILE:-$RUN_TMP/summary}
# Tests run some clients as user nobody (bus policy, emulator permissions): they must be
# able to reach the sockets and mounts below it, as they can under /tmp.
chmod 0755 "$RUN_TMP"
cleanup() {
    status=$?
    # Deepest mounts first; lazy unmount never hangs on a dead FUSE server.
    awk -v p="$RUN_TMP" 'index($5, p) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
        while read -r m; do
            umount -l "$m" 2>/dev/null || true
        done
    rm -rf "$RUN_TMP"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

if [ "${SKIP_DEPS:-0}" != 1 ]; then
    test/setup-deps.sh
fi

export TMPDIR="$RUN_TMP"
# abort_on_error: a report is a crash ctest sees. LeakSanitizer suppressions: see the file.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=0"
export LSAN_OPTIONS="suppressions=$SRC/test/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

start=$(date +%s)
if [ "${SKIP_ASAN:-0}" != 1 ]; then
    echo "== ASan+UBSan build in $ASAN_DIR"
    # clang, -O1 and line tables only: AddressSanitizer's documented optimisation level,
    # with file:line in every report. GCC at -O2 -g took five times as long to compile an
    # instrumented test program (CONTRIBUTING.md, "CI's time"), and this build is also the
    # tree's check against a second compiler. The suites that need the whole machine are
    # not built here, as they are not run here.
    CC=clang CXX=clang++ test/phase-times.sh run "${TIMES_FILE:-}" "configure (ASan+UBSan)" \
        cmake -S . -B "$ASAN_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRDTMON_SANITIZE=ON \
        -DRDTMON_WERROR=ON -DRDTMON_MACHINE_TESTS=OFF \
        -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only -DNDEBUG" \
        -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only -DNDEBUG"
    test/phase-times.sh run "${TIMES_FILE:-}" "build (ASan+UBSan)" \
        cmake --build "$ASAN_DIR" -j"$JOBS"
    echo "== whole gtest suite under ASan+UBSan"
    test/ctest-phase.sh sanitized "$SUMMARY_FILE" --test-dir "$ASAN_DIR" \
        -L '^(unit|emulator|integration)$' --output-on-failure -j"$JOBS" --timeout 900
    echo "== ASan+UBSan suite passed after $(($(date +%s) - start)) s"
fi

if [ "${SKIP_FUZZ:-0}" != 1 ]; then
    echo "== clang libFuzzer build in $FUZZ_DIR"
    CC=clang CXX=clang++ test/phase-times.sh run "${TIMES_FILE:-}" "configure (fuzzers)" \
        cmake -S . -B "$FUZZ_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DRDTMON_FUZZ=ON -DRDTMON_FUZZ_SECONDS="$FUZZ_SECONDS"
    test/phase-times.sh run "${TIMES_FILE:-}" "build (fuzzers)" \
        cmake --build "$FUZZ_DIR" -j"$JOBS" --target fuzzers
    echo "== fuzzing each target for $FUZZ_SECONDS s"
    test/ctest-phase.sh fuzz "$SUMMARY_FILE" --test-dir "$FUZZ_DIR" -L '^fuzz$' \
        --output-on-failure -j"$JOBS"
    echo "== fuzzing passed after $(($(date +%s) - start)) s"
fi
echo "== hardening run passed in $(($(date +%s) - start)) s"
