#!/bin/bash
# Builds the Go programs the containerd tests run, from their Go modules, once per machine:
#   containerd, containerd-shim-runc-v2, ctr   github.com/containerd/containerd/v2 $CONTAINERD_VERSION
#   crictl                                     sigs.k8s.io/cri-tools $CRICTL_VERSION
#   hooks-probe, nri-hook-injector, yaml2json  test/containerd/go (this tree; go.sum pins
#                                              containers/common and containerd/nri)
# Everything lands under $RDTMON_TEST_CACHE (default /var/cache/rdtmon-test), which a
# machine keeps between runs: the module and build caches under go/, and the binaries under
# bin/<name>-<version>/, so a second run only checks that they are there. Go builds run
# at normal priority: ctest runs this alone, and a nice build would starve behind any other
# load on the machine. Prints the bin directory of each on stdout as
#   CONTAINERD_BIN=...  CRICTL_BIN=...  PROBE_BIN=...
# usage: build-tools.sh [all|probe]   (probe: only this tree's programs, for the library test)
set -euo pipefail

CONTAINERD_VERSION=v2.4.2
CRICTL_VERSION=v1.37.0
GO=${GO:-/usr/local/go/bin/go}
CACHE=${RDTMON_TEST_CACHE:-/var/cache/rdtmon-test}
HERE=$(cd "$(dirname "$0")" && pwd)
what=${1:-all}

[ -x "$GO" ] || {
  echo "build-tools: $GO missing (the Go toolchain of this machine)" >&2
  exit 1
}
export GOMODCACHE=$CACHE/go/mod GOCACHE=$CACHE/go/build GOPATH=$CACHE/go/path
export GOFLAGS=-mod=readonly GOTOOLCHAIN=local CGO_ENABLED=0
export GOPROXY=${GOPROXY:-https://proxy.golang.org}
mkdir -p "$GOMODCACHE" "$GOCACHE" "$GOPATH" "$CACHE/bin"

# install_once DIR PKG@VERSION... : go install into DIR unless every binary is there already.
# Built into DIR.tmp and renamed, so an interrupted build never looks finished.
install_once() {
  local dir=$1 pkg bin missing=0
  shift
  for pkg in "$@"; do
    bin=${pkg%@*}
    [ -x "$dir/${bin##*/}" ] || missing=1
  done
  [ "$missing" = 1 ] || return 0
  local start=$SECONDS
  rm -rf "$dir.tmp"
  mkdir -p "$dir.tmp"
  # One go install for all of them: their packages are compiled once and linked in
  # parallel. -s -w: no symbol table or DWARF, which the tests never need and which
  # make the links take longer.
  echo "build-tools: go install $*" >&2
  GOBIN=$dir.tmp "$GO" install -trimpath -ldflags="-s -w" -tags "$TAGS" "$@" >&2
  rm -rf "$dir"
  mv "$dir.tmp" "$dir"
  echo "build-tools: built $(basename "$dir") in $((SECONDS - start)) s" >&2
}

# This tree's programs are keyed by the hash of their sources, so an edit rebuilds them.
probe_key=$(cat "$HERE"/go/go.mod "$HERE"/go/go.sum "$HERE"/go/*/*.go | sha256sum | cut -c1-16)
PROBE_BIN=$CACHE/bin/probe-$probe_key
if [ ! -x "$PROBE_BIN/yaml2json" ]; then
  start=$SECONDS
  rm -rf "$PROBE_BIN.tmp"
  mkdir -p "$PROBE_BIN.tmp"
  (cd "$HERE/go" && "$GO" build -trimpath -o "$PROBE_BIN.tmp/" ./hooks-probe ./nri-hook-injector ./yaml2json) >&2
  rm -rf "$PROBE_BIN"
  mv "$PROBE_BIN.tmp" "$PROBE_BIN"
  echo "build-tools: built the probe and the plugin in $((SECONDS - start)) s" >&2
fi
echo "PROBE_BIN=$PROBE_BIN"
[ "$what" = all ] || exit 0

# No cgo: the snapshotters that need it (btrfs, devmapper, zfs) are left out; the tests use
# overlayfs / native. Tracing (OpenTelemetry) is left out too: nothing here exports traces,
# and it is a large part of what a first build compiles.
TAGS="no_btrfs no_devmapper no_zfs no_tracing"
CONTAINERD_BIN=$CACHE/bin/containerd-$CONTAINERD_VERSION
install_once "$CONTAINERD_BIN" \
  "github.com/containerd/containerd/v2/cmd/containerd@$CONTAINERD_VERSION" \
  "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2@$CONTAINERD_VERSION" \
  "github.com/containerd/containerd/v2/cmd/ctr@$CONTAINERD_VERSION"
echo "CONTAINERD_BIN=$CONTAINERD_BIN"
TAGS=""
CRICTL_BIN=$CACHE/bin/crictl-$CRICTL_VERSION
install_once "$CRICTL_BIN" "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION"
echo "CRICTL_BIN=$CRICTL_BIN"
