#!/bin/bash
# Runs one ctest phase, shows its output, and appends "PHASE PASSED FAILED SKIPPED" to
# SUMMARY_FILE, for the one summary line that test/run-tests.sh prints at the end.
# Fails when ctest fails or when the phase ran no test at all.
# usage: test/ctest-phase.sh PHASE SUMMARY_FILE [ctest arguments...]
set -euo pipefail
phase=${1:?usage: $0 PHASE SUMMARY_FILE [ctest args...]}
summary=${2:?usage: $0 PHASE SUMMARY_FILE [ctest args...]}
shift 2

log=$(mktemp)
trap 'rm -f "$log"' EXIT
rc=0
t0=$(date +%s)
ctest "$@" 2>&1 | tee "$log" || rc=$?

# The phase's wall time, and ctest's "Label Time Summary" (each label's summed test
# times), for the table at the end of test/run-tests.sh (TIMES_FILE; none when unset).
here=$(dirname "$0")
"$here/phase-times.sh" add "${TIMES_FILE:-}" "ctest: $phase" "$(($(date +%s) - t0))"
sed -n '/^Label Time Summary:/,/^$/p' "$log" | awk 'NR > 1 && $2 == "=" { print $1, $3 }' |
    while read -r label secs; do
        "$here/phase-times.sh" add "${TIMES_FILE:-}" "  label $label" "${secs%.*}"
    done

# "100% tests passed, 0 tests failed out of 259"; skipped tests are listed as "(Skipped)".
line=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1 || true)
total=0
failed=0
if [ -n "$line" ]; then
    failed=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
    total=$(sed -E 's/.* failed out of ([0-9]+).*/\1/' <<<"$line")
fi
skipped=$(grep -cE '\(Skipped\)$' "$log" || true)
passed=$((total - failed - skipped))
echo "$phase $passed $failed $skipped" >>"$summary"

if [ "$total" -eq 0 ]; then
    echo "ctest-phase: $phase ran no test" >&2
    exit 1
fi
exit "$rc"
