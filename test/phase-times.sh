#!/bin/bash
# The wall-time table that test/run-tests.sh prints at its end, one row a phase.
#   phase-times.sh run FILE NAME COMMAND...   runs COMMAND, adds "NAME: its seconds" to FILE
#                                              (nothing is added when FILE is empty), and
#                                              exits with COMMAND's status
#   phase-times.sh add FILE NAME SECONDS      adds a row
#   phase-times.sh print FILE TOTAL           prints the table, with the run's total
# Rows whose name starts with two spaces are inside the row above (ctest's labels).
set -uo pipefail
cmd=${1:?usage: $0 run|add|print FILE ...}
file=${2-}
shift 2
case "$cmd" in
    run)
        name=$1
        shift
        t0=$(date +%s)
        rc=0
        "$@" || rc=$?
        if [ -n "$file" ]; then
            suffix=""
            [ "$rc" = 0 ] || suffix=" (failed, exit $rc)"
            printf '%s%s\t%s\n' "$name" "$suffix" "$(($(date +%s) - t0))" >>"$file"
        fi
        exit "$rc"
        ;;
    add)
        [ -z "$file" ] || printf '%s\t%s\n' "$1" "$2" >>"$file"
        ;;
    print)
        total=$1
        echo "== wall time per phase (seconds; a ctest label's row is the sum of its tests' times, which run two at a time)"
        [ -s "$file" ] && awk -F '\t' '{ printf "   %-48s %6s\n", $1, $2 }' "$file"
        printf '   %-48s %6s\n' "whole run" "$total"
        ;;
    *)
        echo "usage: $0 run|add|print FILE ..." >&2
        exit 2
        ;;
esac
