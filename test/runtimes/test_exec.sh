#!/bin/bash
# runc exec: what happens to an exec'd process today. It is NOT in the container's MON
# group: runc puts it in the container's CLOS (here the root CTRL_MON group) and no hook
# runs for exec. This asserts the current behaviour (README "Known limits"), so the fix
# of that limit must flip it.
. "$(dirname "$0")/lib.sh"
probe_runtime runc
fixture -- "$RUNC_ROOT"
push_cleanup 'cleanup_runc_root "$RUNC_ROOT"'
id=${IDP}-exec
make_bundle "$WORK/b" "$(oci_hooks)" "$CONTAINER_ARGS"
runc_detached "$id" "$WORK/b"
init=$(runc_ state "$id" | jq -r .pid)
group_tasks "mon_groups/$id" | grep -qx "$init" || fail "the init is not in its group"

runc_ exec -d --pid-file "$WORK/exec.pid" "$id" sleep 999 || fail "runc exec failed"
epid=$(cat "$WORK/exec.pid")
[ -d "/proc/$epid" ] || fail "the exec'd process is not running"
in_ns=$(readlink "/proc/$epid/ns/pid") 
[ "$in_ns" = "$(readlink "/proc/$init/ns/pid")" ] || fail "exec'd process not in the container"
if group_tasks "mon_groups/$id" | grep -qx "$epid"; then
  fail "the exec'd process IS in mon_groups/$id now: the known limit is fixed, update this test and README"
fi
group_tasks "" | grep -qx "$epid" || fail "the exec'd process is not in the root CTRL_MON group either"
pass "KNOWN LIMIT: runc exec'd pid $epid is in the CLOS (root group), not in mon_groups/$id ($(group_tasks "mon_groups/$id" | tr '\n' ' '))"
