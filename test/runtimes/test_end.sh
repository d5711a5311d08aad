#!/bin/bash
# The end of a container without its poststop hook, with real runc: one RMID for
# containers (the default group holds the other), so the second container waits. The first
# container's init is killed behind runc's back (no runc delete, no poststop hook ever
# runs): rdtmond sees its last task gone and removes its group after groups.exitGraceSeconds
# (GroupRemoved(id, exited)), and the waiting container gets the freed RMID, all its tasks
# moved in. A later runc delete (its poststop hook finds nothing to remove) changes nothing.
. "$(dirname "$0")/lib.sh"
probe_runtime runc
FIXTURE_GROUPS='{ "exitGraceSeconds": 2 }'
fixture --num-rmids 2 -- "$RUNC_ROOT"
push_cleanup 'cleanup_runc_root "$RUNC_ROOT"'
start_signal_monitor
state_of() { # state_of ID: its state in GetAllCoverage, or nothing
  bus --json=short call org.rdtmon1 /org/rdtmon1 org.rdtmon1.Manager GetAllCoverage |
    jq -r --arg id "$1" '.data[0][] | select(.[0] == $id) | .[1]'
}

first=${IDP}-first
make_bundle "$WORK/b1" "$(oci_hooks)" "$CONTAINER_ARGS"
runc_detached "$first" "$WORK/b1"
group_exists "mon_groups/$first" || fail "the first container has no group"
second=${IDP}-second
make_bundle "$WORK/b2" "$(oci_hooks)" "$CONTAINER_ARGS"
runc_detached "$second" "$WORK/b2"
[ "$(state_of "$second")" = waiting ] || fail "the second container is not waiting: '$(state_of "$second")'"
pass "runc: $first has the one RMID, $second waits"

# Behind runc's back: the init dies (its children with it, in its pid namespace).
init=$(runc_ state "$first" | jq -r .pid)
killed=$(date +%s%N)
kill -9 "$init"
wait_for 20 group_absent "mon_groups/$first" || fail "the killed container's group is still there"
gone=$(date +%s%N)
wait_for 5 saw_removed "$first" exited ||
  fail "no GroupRemoved($first, exited): $(cat "$WORK/signals.log")"
ms=$(((gone - killed) / 1000000))
# The grace is 2 s: not before it (a wide margin the other way, for a loaded machine).
[ "$ms" -ge 1900 ] || fail "the group went ${ms} ms after the kill, before the 2 s grace"
pass "killed -9 without poststop: group removed ${ms} ms later (grace 2 s), GroupRemoved($first, exited)"

init2=$(runc_ state "$second" | jq -r .pid)
all_in() {
  group_exists "mon_groups/$second" || return 1
  [ "$(container_threads "$init2")" = "$(group_tasks "mon_groups/$second")" ]
}
wait_for 10 all_in ||
  fail "the waiting container did not get the freed RMID with all its tasks: $(group_tasks "mon_groups/$second" 2>&1 | tr '\n' ' ')"
[ "$(state_of "$second")" = active ] || fail "$second is not active: '$(state_of "$second")'"
pass "the waiting container got the freed RMID: mon_groups/$second holds its $(group_tasks "mon_groups/$second" | wc -l) tasks"

# runc learns of it later: its delete runs the poststop hook, which finds nothing to remove.
wait_for 10 sh -c "[ \"\$(runc --root '$RUNC_ROOT' state '$first' | jq -r .status)\" = stopped ]" ||
  fail "runc does not see $first stopped"
runc_ delete "$first" || fail "runc delete $first failed"
sleep 0.5
group_exists "mon_groups/$second" || fail "the second container's group went at the first's delete"
[ "$(manager ListGroups | grep -c "$IDP")" = 1 ] || fail "ListGroups: $(manager ListGroups)"
pass "runc delete afterwards: the poststop hook finds nothing, $second keeps its group"
