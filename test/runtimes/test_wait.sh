#!/bin/bash
# Waiting for an RMID with real runc: one RMID for containers (the default group holds the
# other), so the second container waits. It starts all the same; a process exec'd into it
# while it waits is in its cgroup but in no group. When the first container is deleted
# (its poststop hook removes its group), the waiting one gets its group, and every task of
# its cgroup, the exec'd one included, is moved in.
. "$(dirname "$0")/lib.sh"
probe_runtime runc
fixture --num-rmids 2 -- "$RUNC_ROOT"
push_cleanup 'cleanup_runc_root "$RUNC_ROOT"'
state_of() { # state_of ID: its state in GetAllCoverage, or nothing
  bus --json=short call org.rdtmon1 /org/rdtmon1 org.rdtmon1.Manager GetAllCoverage |
    jq -r --arg id "$1" '.data[0][] | select(.[0] == $id) | .[1]'
}
is_state() { [ "$(state_of "$1")" = "$2" ]; }

first=${IDP}-first
make_bundle "$WORK/b1" "$(oci_hooks)" "$CONTAINER_ARGS"
runc_detached "$first" "$WORK/b1"
group_exists "mon_groups/$first" || fail "the first container has no group"

second=${IDP}-second
make_bundle "$WORK/b2" "$(oci_hooks)" "$CONTAINER_ARGS"
runc_detached "$second" "$WORK/b2"
[ "$(runc_ state "$second" | jq -r .status)" = running ] || fail "the waiting container does not run"
is_state "$second" waiting || fail "the second container is not waiting: state '$(state_of "$second")'"
group_absent "mon_groups/$second" || fail "a group exists for the waiting container"
init=$(runc_ state "$second" | jq -r .pid)

runc_ exec -d --pid-file "$WORK/exec.pid" "$second" sleep 999 || fail "runc exec failed"
epid=$(cat "$WORK/exec.pid")
[ -d "/proc/$epid" ] || fail "the exec'd process is not running"
pass "runc: $second runs while it waits for an RMID; exec'd pid $epid started meanwhile"

# The poststop hook of the first container frees its RMID.
runc_ kill "$first" KILL
wait_for 10 bash -c "[ \"\$(runc --root '$RUNC_ROOT' state '$first' | jq -r .status)\" = stopped ]" ||
  fail "the first container did not stop"
runc_ delete "$first" || fail "runc delete failed"
wait_for 5 group_absent "mon_groups/$first" || fail "the first container's group is still there"
all_in() {
  group_exists "mon_groups/$second" || return 1
  [ -z "$(comm -23 <(printf '%s\n' "$init" "$epid" | sort) <(group_tasks "mon_groups/$second" | sort))" ]
}
wait_for 10 all_in ||
  fail "after the removal mon_groups/$second [$(group_tasks "mon_groups/$second" 2>/dev/null | tr '\n' ' ')] lacks the init $init or the exec'd $epid"
is_state "$second" active || fail "the state did not become active: '$(state_of "$second")'"
pass "runc: the waiting container got its group when the RMID freed, with its init $init and exec'd $epid"
