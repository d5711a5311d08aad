#!/bin/sh
# The shell baseline for the benchmark: the same job as `rdtmon-hook create|delete`, done
# the way typical hand-written OCI hooks do it (sh + jq, a CLOS lookup by grepping tasks
# files, mkdir, echo PID > tasks, rmdir). It is written to be fair, not slow: one jq run per
# field, as such hooks do, and no sleeps or retries.
#
#   RESCTRL=/path/to/resctrl shell-hook.sh create|delete   (OCI state JSON on stdin)
#
# Exits non-zero on any failure (the benchmark counts that as an error).
set -eu

action=${1:?usage: shell-hook.sh create|delete}
root=${RESCTRL:-/sys/fs/resctrl}
state=$(cat)

id=$(printf '%s' "$state" | jq -r '.id')
case $id in
'' | null | . | .. | info | mon_groups | mon_data | */*)
    echo "shell-hook: bad container id '$id'" >&2
    exit 1
    ;;
esac

if [ "$action" = delete ]; then
    for dir in "$root/mon_groups/$id" "$root"/*/mon_groups/"$id"; do
        if [ -d "$dir" ]; then
            rmdir "$dir"
            exit 0
        fi
    done
    exit 0
fi

pid=$(printf '%s' "$state" | jq -r '.pid')
bundle=$(printf '%s' "$state" | jq -r '.bundle')
optout=$(printf '%s' "$state" | jq -r '.annotations["org.rdtmon.monitoring"] // "true"')
if [ "$optout" = false ]; then
    exit 0
fi
native=$(jq -r '.linux.intelRdt.enableMonitoring // false' "$bundle/config.json")
if [ "$native" = true ]; then
    exit 0
fi

# The CTRL_MON group that holds the pid: the root group unless a clos dir lists it.
clos=""
for tasks in "$root"/*/tasks; do
    [ -f "$tasks" ] || continue
    if grep -qx "$pid" "$tasks"; then
        clos=$(basename "$(dirname "$tasks")")
        break
    fi
done
group="$root${clos:+/$clos}/mon_groups/$id"

mkdir "$group"
for task in /proc/"$pid"/task/*; do
    echo "${task##*/}" >"$group/tasks"
done
