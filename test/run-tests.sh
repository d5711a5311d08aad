#!/bin/bash
# Builds rdtmon and runs every test, as CI does: a Release build with warnings as errors
# running unit tests, the emulator's semantics suite, the integration tests (private
# dbus-daemon + resctrl-emu + the real binaries), the real container runtimes (runc, crun,
# podman), the deb and rpm packages with a booted-Debian system test and the benchmark's
# short mode; then test/run-hardening.sh (the gtest suite under ASan+UBSan, and each fuzz
# target for a short fixed time). The last lines are a summary of every phase.
# Run as root on Debian 12: it installs what it needs first. BUILD_DIR, BUILD_TYPE and
# CMAKE_ARGS may be set; SKIP_HARDENING=1 stops after the first ctest run.
set -euo pipefail
cd "$(dirname "$0")/.."
test/setup-deps.sh
BUILD_DIR=${BUILD_DIR:-build}
BUILD_TYPE=${BUILD_TYPE:-Release}

SUMMARY_FILE=$(mktemp /tmp/rdtmon-summary.XXXXXX)
export SUMMARY_FILE
start=$(date +%s)
summary() {
    local status=$? phases="" p f s tp=0 tf=0 ts=0 phase
    while read -r phase p f s; do
        phases="$phases${phases:+; }$phase $p passed, $f failed, $s skipped"
        tp=$((tp + p)) tf=$((tf + f)) ts=$((ts + s))
    done <"$SUMMARY_FILE"
    rm -f "$SUMMARY_FILE"
    echo "== phases: ${phases:-none ran} ($(($(date +%s) - start)) s, exit $status)"
    echo "total: $tp passed, $tf failed, $ts skipped"
    exit "$status"
}
trap summary EXIT

# shellcheck disable=SC2086
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE="$BUILD_TYPE" -DRDTMON_WERROR=ON ${CMAKE_ARGS:-}
cmake --build "$BUILD_DIR" -j"$(nproc)"
test/ctest-phase.sh ctest "$SUMMARY_FILE" --test-dir "$BUILD_DIR" --output-on-failure \
    --timeout 1800 -j2
if [ "${SKIP_HARDENING:-0}" != 1 ]; then
    SKIP_DEPS=1 test/run-hardening.sh
fi
