#!/bin/sh
# Builds rdtmon and runs every test: unit tests, the emulator's semantics suite and the
# integration tests (private dbus-daemon + resctrl-emu + the real binaries). Run as root on
# Debian 12: it installs what it needs first. BUILD_DIR and CMAKE_ARGS may be set.
set -eu
cd "$(dirname "$0")/.."
test/setup-deps.sh
BUILD_DIR=${BUILD_DIR:-build}
# shellcheck disable=SC2086
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo ${CMAKE_ARGS:-}
cmake --build "$BUILD_DIR" -j"$(nproc)"
ctest --test-dir "$BUILD_DIR" --output-on-failure --timeout 600 -j2
