#!/bin/sh
# Checks a configured unit (rdtmond.service, rdtmon-exporter.service): `systemd-analyze
# verify` must pass and `systemd-analyze security --offline=true` must rate its exposure at
# most 2.0.
#   usage: test/check-unit.sh BUILD_DIR/systemd/NAME.service [MAX_SCORE]
# verify insists that ExecStart= binaries exist, so it runs on a copy of the unit whose
# daemon path points at a stub in a temporary directory (the unit's own name is kept:
# Alias= and BusName= checks depend on it).
set -eu

unit=${1:?usage: $0 path/to/NAME.service [max-score]}
max=${2:-2.0}
[ -f "$unit" ] || { echo "check-unit: $unit: no such file" >&2; exit 1; }
command -v systemd-analyze >/dev/null || { echo "check-unit: systemd-analyze not found" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

name=$(basename "$unit")
daemon=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$unit" | head -n 1)
[ -n "$daemon" ] || { echo "check-unit: no ExecStart= in $unit" >&2; exit 1; }
stub="$tmp/$(basename "$daemon")"
printf '#!/bin/sh\nexit 0\n' >"$stub"
chmod 755 "$stub"
sed "s|$daemon|$stub|g" "$unit" >"$tmp/$name"

echo "check-unit: systemd-analyze verify $name"
if ! out=$(systemd-analyze verify --man=no "$tmp/$name" 2>&1) || [ -n "$out" ]; then
    printf '%s\n' "$out" >&2
    echo "check-unit: FAIL: systemd-analyze verify reported problems" >&2
    exit 1
fi

echo "check-unit: systemd-analyze security --offline=true $name"
report=$(systemd-analyze security --offline=true "$unit" 2>&1) || true
score=$(printf '%s\n' "$report" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
if [ -z "$score" ]; then
    printf '%s\n' "$report" >&2
    echo "check-unit: FAIL: no exposure score in the security report" >&2
    exit 1
fi
if awk -v s="$score" -v m="$max" 'BEGIN { exit !(s > m) }'; then
    printf '%s\n' "$report" | grep -v '^✓' >&2 || true
    echo "check-unit: FAIL: exposure $score > $max" >&2
    exit 1
fi
echo "check-unit: OK: verify passed, exposure $score <= $max"
