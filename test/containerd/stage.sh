#!/bin/sh
# Lays out what the rdtmon package installs for the hook, under OUT/root, the way the
# packages do: its own build of this tree configured with the packages' prefix (/usr; the
# test build keeps CMake's default prefix), only the hook's target, and the install rules
# of hook/ (rdtmon-hook and the two hooks.d files) with DESTDIR. So the hooks.d files name
# the hook exactly as the packages' do, and the hook binary sits where they say.
#   usage: stage.sh SRC_DIR OUT_DIR
set -eu
src=${1:?usage: stage.sh SRC_DIR OUT_DIR}
out=${2:?usage: stage.sh SRC_DIR OUT_DIR}
mkdir -p "$out"
cmake -S "$src" -B "$out/build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr \
  -DRDTMON_BUILD_TESTS=OFF >"$out/configure.log" 2>&1 || {
  cat "$out/configure.log" >&2
  exit 1
}
cmake --build "$out/build" --target rdtmon-hook -j2 >"$out/build.log" 2>&1 || {
  tail -n 40 "$out/build.log" >&2
  exit 1
}
rm -rf "$out/root"
DESTDIR=$out/root cmake -P "$out/build/hook/cmake_install.cmake" >/dev/null
echo "stage.sh: installed under $out/root:"
(cd "$out/root" && find . -type f | sed 's|^\.||' | sort)
