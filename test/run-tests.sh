#!/bin/bash
# Builds rdtmon and runs every test, as CI does: a Release build with warnings as errors
# running unit tests, the emulator's semantics suite, the integration tests (private
# dbus-daemon + resctrl-emu + the real binaries), the real container runtimes (runc, crun,
# podman), containerd with NRI, the deb and rpm packages with a booted-Debian system test,
# a real Prometheus and the benchmark's short mode; then test/run-hardening.sh (the gtest
# suite under ASan+UBSan, and each fuzz target for a short fixed time). The last lines are
# a table of the wall time of each phase and a summary of every phase's tests.
#
#   test/run-tests.sh           everything (what CI runs)
#   test/run-tests.sh --quick   the unit, emulator and integration suites only, in the
#                               Release build: the loop for a change (a few minutes after
#                               a build); not a substitute for the whole run
#
# Run as root on Debian 12: it installs what it needs first. BUILD_DIR, BUILD_TYPE and
# CMAKE_ARGS may be set; SKIP_HARDENING=1 stops after the first ctest run.
set -euo pipefail
cd "$(dirname "$0")/.."
QUICK=0
case "${1:-}" in
    --quick) QUICK=1 ;;
    "") ;;
    *)
        echo "usage: $0 [--quick]" >&2
        exit 2
        ;;
esac
BUILD_DIR=${BUILD_DIR:-build}
BUILD_TYPE=${BUILD_TYPE:-Release}

SUMMARY_FILE=$(mktemp /tmp/rdtmon-summary.XXXXXX)
TIMES_FILE=$(mktemp /tmp/rdtmon-times.XXXXXX)
export SUMMARY_FILE TIMES_FILE
start=$(date +%s)
tools_pid=""
summary() {
    local status=$? phases="" p f s tp=0 tf=0 ts=0 phase
    if [ -n "$tools_pid" ]; then
        kill -- "-$tools_pid" 2>/dev/null || true
    fi
    test/phase-times.sh print "$TIMES_FILE" "$(($(date +%s) - start))"
    while read -r phase p f s; do
        phases="$phases${phases:+; }$phase $p passed, $f failed, $s skipped"
        tp=$((tp + p)) tf=$((tf + f)) ts=$((ts + s))
    done <"$SUMMARY_FILE"
    rm -f "$SUMMARY_FILE" "$TIMES_FILE"
    echo "== phases: ${phases:-none ran} ($(($(date +%s) - start)) s, exit $status)"
    echo "total: $tp passed, $tf failed, $ts skipped"
    exit "$status"
}
trap summary EXIT

test/phase-times.sh run "$TIMES_FILE" dependencies test/setup-deps.sh

# The Go programs of the containerd tests (containerd, crictl: module downloads and a
# build of some minutes on a new machine) are built beside the C++ build, so that their
# downloads and compile overlap it; the containerd_tools test then finds them built, or
# builds them itself if this failed (its log says why).
mkdir -p "$BUILD_DIR"
if [ "$QUICK" = 0 ]; then
    # Its own session, so that a failed build stops it with all of its go processes.
    setsid test/phase-times.sh run "$TIMES_FILE" "go tools (beside the build)" \
        bash test/containerd/build-tools.sh all >"$BUILD_DIR/go-tools.log" 2>&1 &
    tools_pid=$!
fi

# shellcheck disable=SC2086
test/phase-times.sh run "$TIMES_FILE" "configure" \
    cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE="$BUILD_TYPE" -DRDTMON_WERROR=ON ${CMAKE_ARGS:-}
test/phase-times.sh run "$TIMES_FILE" "build ($BUILD_TYPE)" \
    cmake --build "$BUILD_DIR" -j"$(nproc)"

if [ "$QUICK" = 1 ]; then
    test/ctest-phase.sh quick "$SUMMARY_FILE" --test-dir "$BUILD_DIR" --output-on-failure \
        -L '^(unit|emulator|integration)$' --timeout 900 -j2
    exit 0
fi

if ! wait "$tools_pid"; then
    echo "run-tests: building the Go tools beside the build failed; containerd_tools retries:" >&2
    tail -n 20 "$BUILD_DIR/go-tools.log" >&2
fi
tools_pid=""
test/ctest-phase.sh ctest "$SUMMARY_FILE" --test-dir "$BUILD_DIR" --output-on-failure \
    --timeout 1800 -j2
if [ "${SKIP_HARDENING:-0}" != 1 ]; then
    SKIP_DEPS=1 test/run-hardening.sh
fi
