#!/bin/sh
# Builds rdtmon and runs every test, as CI does: unit tests, the emulator's semantics suite,
# the integration tests (private dbus-daemon + resctrl-emu + the real binaries), the real
# container runtimes (runc, crun, podman), the deb and rpm packages with a booted-Debian
# system test, the benchmark's short mode, then test/run-hardening.sh (the whole gtest
# suite under ASan+UBSan, and each fuzz target for a short fixed time).
# Run as root on Debian 12: it installs what it needs first. BUILD_DIR and CMAKE_ARGS may
# be set; SKIP_HARDENING=1 stops after the first ctest run.
set -eu
cd "$(dirname "$0")/.."
test/setup-deps.sh
BUILD_DIR=${BUILD_DIR:-build}
# shellcheck disable=SC2086
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo ${CMAKE_ARGS:-}
cmake --build "$BUILD_DIR" -j"$(nproc)"
ctest --test-dir "$BUILD_DIR" --output-on-failure --timeout 1800 -j2
if [ "${SKIP_HARDENING:-0}" != 1 ]; then
  SKIP_DEPS=1 test/run-hardening.sh
fi
