#!/bin/bash
# bench_runc.sh: the cost rdtmon adds to a container's whole life, as a new user sees it.
#
#   bench_runc.sh [--quick] [--rounds N] [--json FILE]
#
# `runc run` of a busybox container running `true`, timed as the wall time of the whole
# command (create, start, exit, delete), with the shipped hooks (createRuntime: rdtmon-hook
# create; poststop: rdtmon-hook delete, from the hooks.d files as test/runtimes/lib.sh
# builds them) against the same bundle without hooks. The two alternate on one machine
# (with, without, with, ...): 2 warm-up rounds of each, then N rounds (40, --quick 10).
# Prints the median and p90 of each, the median's difference and the ratio of the medians
# (target, printed, never enforced: <= 1.20).
#
# After every hooked run it checks that rdtmond made the container's group (its log) and
# that mon_groups/<id> is gone (within 5 s: the delete hook need not wait for the removal),
# and at the end that mon_groups is empty: the bench fails loudly when the hooks silently
# stopped working (they fail open, so runc alone would not tell).
#
# The fixture is test/runtimes/lib.sh (emulator, private bus with the real policy, rdtmond;
# everything undone on exit), with its environment: RDTMOND RDTMON_HOOK RESCTRL_EMU
# HOOKSD_DIR RDTMON_SRC (test/bench/CMakeLists.txt sets them for ctest). Root only; exit 77
# when runc cannot run a plain container here. Fails on an error only, never on a number.
usage() {
  echo "usage: bench_runc.sh [--quick] [--rounds N] [--json FILE]" >&2
  exit 2
}
ROUNDS=40
JSON_OUT=""
while [ $# -gt 0 ]; do
  case $1 in
    --quick) ROUNDS=10 ;;
    --rounds)
      [ $# -ge 2 ] && [[ $2 =~ ^[1-9][0-9]*$ ]] || usage
      ROUNDS_SET=$2
      shift
      ;;
    --json)
      [ $# -ge 2 ] || usage
      JSON_OUT=$2
      shift
      ;;
    *) usage ;;
  esac
  shift
done
ROUNDS=${ROUNDS_SET:-$ROUNDS}
WARMUP=2
# lib.sh may change directory: an absolute path for the JSON file.
[ -z "$JSON_OUT" ] || case $JSON_OUT in /*) ;; *) JSON_OUT=$PWD/$JSON_OUT ;; esac

[ "$(id -u)" = 0 ] || {
  echo "[bench_runc] SKIP: needs root (runc, cgroups, a FUSE mount)" >&2
  exit 77
}
. "$(dirname "$0")/../runtimes/lib.sh"
probe_runtime runc
fixture -- "$RUNC_ROOT"
push_cleanup 'cleanup_runc_root "$RUNC_ROOT"'

make_bundle "$WORK/hooked" "$(oci_hooks)" '["true"]'
make_bundle "$WORK/plain" '{}' '["true"]'
jq -e '.hooks.createRuntime and .hooks.poststop' "$WORK/hooked/config.json" >/dev/null ||
  fail "the hooked bundle has no createRuntime/poststop hooks"
jq -e 'has("hooks") | not' "$WORK/plain/config.json" >/dev/null ||
  fail "the plain bundle has hooks"

# run_once BUNDLE ID: runc run (it deletes the container when it exits); sets LAST_NS to
# the wall time of the whole command in ns (from EPOCHREALTIME, microseconds: no fork).
LAST_NS=0
run_once() {
  local b=$1 id=$2 t0 t1
  t0=${EPOCHREALTIME//[!0-9]/}
  runc --root "$RUNC_ROOT" run --bundle "$b" "$id" </dev/null >"$WORK/run.out" 2>"$WORK/run.err" ||
    fail "runc run $id ($b) failed: $(cat "$WORK/run.err")"
  t1=${EPOCHREALTIME//[!0-9]/}
  LAST_NS=$(((10#$t1 - 10#$t0) * 1000))
  [ ! -s "$WORK/run.err" ] || fail "runc run $id wrote to stderr: $(cat "$WORK/run.err")"
}
made_group() { grep -qF "container $1: created group" "$WORK/rdtmond.log"; }
removed_group() { grep -qF "container $1: removed group" "$WORK/rdtmond.log"; }
# check_hooked ID: the hooks did their work for this run (outside the timed part).
REQUESTED=0
check_hooked() {
  local id=$1
  made_group "$id" || fail "rdtmond made no group for $id: the createRuntime hook did nothing"
  wait_for 5 group_absent "mon_groups/$id" ||
    fail "mon_groups/$id still there 5 s after runc run deleted $id"
  # rdtmond logs the removal just after the rmdir: wait for its line too. Its reason: the
  # delete hook's RemoveGroup says "requested" (else rdtmond saw the container end first).
  # Informative only: both leave no group behind.
  wait_for 5 removed_group "$id" || fail "rdtmond logged no removal of $id's group"
  if grep -F "container $id: removed group" "$WORK/rdtmond.log" | grep -qF "requested"; then
    REQUESTED=$((REQUESTED + 1))
  fi
}
check_plain() {
  ! made_group "$1" || fail "rdtmond made a group for $1, which ran without hooks"
}

HOOKED=() PLAIN=()
total=$((WARMUP + ROUNDS))
log "runc run of busybox 'true': $WARMUP warm-up + $ROUNDS rounds, with hooks / without, alternated"
for ((i = 0; i < total; i++)); do
  id="${IDP}-h$i"
  run_once "$WORK/hooked" "$id"
  h=$LAST_NS
  check_hooked "$id"
  id="${IDP}-p$i"
  run_once "$WORK/plain" "$id"
  p=$LAST_NS
  check_plain "$id"
  if [ "$i" -ge "$WARMUP" ]; then
    HOOKED+=("$h")
    PLAIN+=("$p")
  fi
done
left=$(find "$MNT/mon_groups" -mindepth 1 -maxdepth 1 | wc -l)
[ "$left" = 0 ] || fail "mon_groups is not empty at the end: $(ls "$MNT/mon_groups" | tr '\n' ' ')"
[ -z "$(runc --root "$RUNC_ROOT" list -q)" ] || fail "runc still lists containers"
[ "$(manager ListGroups | tr -d '[:space:]')" = "a(ssuto)0" ] ||
  fail "ListGroups is not empty at the end: $(manager ListGroups)"

# stats NS...: "median p90" in ns (median: the mean of the middle two for an even count;
# p90: nearest rank).
stats() {
  printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 }
    END {
      med = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
      r = int(0.9 * NR); if (r < 0.9 * NR) r++; if (r < 1) r = 1
      printf "%d %d\n", med, v[r]
    }'
}
read -r h_med h_p90 <<<"$(stats "${HOOKED[@]}")"
read -r p_med p_p90 <<<"$(stats "${PLAIN[@]}")"
ratio=$(awk -v a="$h_med" -v b="$p_med" 'BEGIN { printf "%.3f", a / b }')
met=$(awk -v r="$ratio" 'BEGIN { print (r <= 1.20) ? "met" : "MISSED" }')
ms() { awk -v n="$1" 'BEGIN { printf "%.1f", n / 1e6 }'; }

printf '\nrunc run (busybox true), wall time of the whole command, %d rounds each, alternated:\n' "$ROUNDS"
printf '  %-28s %10s %10s\n' "" "median ms" "p90 ms"
printf '  %-28s %10s %10s\n' "with the rdtmon hooks" "$(ms "$h_med")" "$(ms "$h_p90")"
printf '  %-28s %10s %10s\n' "without hooks" "$(ms "$p_med")" "$(ms "$p_p90")"
printf '  added by rdtmon (median): %s ms; ratio of medians %s (target <= 1.20: %s)\n' \
  "$(ms $((h_med - p_med)))" "$ratio" "$met"
printf '  every hooked run made its group and left none behind; %d of %d removed by the poststop hook (requested)\n' \
  "$REQUESTED" "$total"

if [ -n "$JSON_OUT" ]; then
  jq -n --argjson rounds "$ROUNDS" --argjson warmup "$WARMUP" \
    --argjson hooked "$(printf '%s\n' "${HOOKED[@]}" | jq -s .)" \
    --argjson plain "$(printf '%s\n' "${PLAIN[@]}" | jq -s .)" \
    --argjson h_med "$h_med" --argjson h_p90 "$h_p90" \
    --argjson p_med "$p_med" --argjson p_p90 "$p_p90" \
    --argjson ratio "$ratio" --argjson requested "$REQUESTED" '
    { rounds: $rounds, warmup: $warmup,
      hooked: { median_ns: $h_med, p90_ns: $h_p90, runs_ns: $hooked },
      plain: { median_ns: $p_med, p90_ns: $p_p90, runs_ns: $plain },
      ratio_of_medians: $ratio, target_ratio: 1.20,
      removed_by_poststop: $requested }' >"$JSON_OUT" || fail "cannot write $JSON_OUT"
  log "wrote $JSON_OUT"
fi
