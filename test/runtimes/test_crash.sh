#!/bin/bash
# A runtime crash: runc kill -9 and the container's state gone without runc delete, so
# poststop never runs. GarbageCollect (stateDirs = this runc root, graceSeconds 0) keeps
# the group while the state dir still lists the container and removes it (reason
# "stale") once it does not.
. "$(dirname "$0")/lib.sh"
probe_runtime runc
# The collector's case: the group of a killed container is not ended by rdtmond itself
# (groups.exitGraceSeconds; test_end.sh tests that).
FIXTURE_GROUPS='{ "exitGraceSeconds": 3600 }'
fixture -- "$RUNC_ROOT"
push_cleanup 'cleanup_runc_root "$RUNC_ROOT"'
start_signal_monitor
id=${IDP}-crash
make_bundle "$WORK/b" "$(oci_hooks)" "$CONTAINER_ARGS"
runc_detached "$id" "$WORK/b"
group_exists "mon_groups/$id" || fail "no group for the running container"

runc_ kill "$id" KILL
wait_for 10 sh -c "[ \"\$(runc --root '$RUNC_ROOT' state '$id' | jq -r .status)\" = stopped ]" ||
  fail "the container did not stop on SIGKILL"
[ "$(manager GarbageCollect)" = "u 0" ] || fail "GarbageCollect removed a group still listed"
group_exists "mon_groups/$id" || fail "the group went while runc still lists the container"
pass "killed with -9, still in runc's state dir: GarbageCollect keeps the group"

# The state disappears without runc delete (a crash, a reboot of /run). It is moved aside,
# not destroyed, so that the cleanup can still runc delete the container's cgroups.
mv "$RUNC_ROOT/$id" "$WORK/hidden-state"
push_cleanup "[ -d '$WORK/hidden-state' ] && mv '$WORK/hidden-state' '$RUNC_ROOT/$id'"
! runc_ list -q | grep -qx "$id" || fail "runc still lists $id"
[ "$(manager GarbageCollect)" = "u 1" ] || fail "GarbageCollect did not remove the stale group"
group_absent "mon_groups/$id" || fail "the group is still in resctrl"
! listed "$id" || fail "ListGroups still shows $id"
wait_for 5 saw_removed "$id" stale || fail "no GroupRemoved($id, stale)"
pass "state gone without runc delete: GarbageCollect removed the group, GroupRemoved($id, stale)"

# Put the state back and delete for real: poststop now finds nothing to remove and the
# hook still exits 0 (runc delete would fail otherwise).
mv "$WORK/hidden-state" "$RUNC_ROOT/$id"
runc_ delete "$id" 2>"$WORK/del.err" || fail "runc delete failed: $(cat "$WORK/del.err")"
pass "a late runc delete (poststop on a collected group) succeeds"
