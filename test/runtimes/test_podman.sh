#!/bin/bash
# podman (--runtime runc, --hooks-dir holding the two shipped JSON files) drives
# rdtmon-hook: runc runs the createRuntime hook, podman itself runs poststop at cleanup.
# A container annotated org.rdtmon.monitoring=false gets no group and runs normally.
. "$(dirname "$0")/lib.sh"
probe_runtime runc
fixture -- "$PODMAN_DIR/runroot/runc"
podman_setup
start_signal_monitor

id=$(podman_start "${IDP}-pm") || fail "podman run failed"
wait_for 30 podman_ready "$id" || fail "podman container did not start: $(podman_ logs "$id" 2>&1)"
pid=$(podman_ inspect -f '{{.State.Pid}}' "$id")
group_exists "mon_groups/$id" || fail "mon_groups/$id missing while the podman container runs"
expected=$(container_threads "$pid")
actual=$(group_tasks "mon_groups/$id")
[ "$expected" = "$actual" ] ||
  fail "mon_groups/$id/tasks is [$(echo $actual)], the container is [$(echo $expected)]"
[ "$(echo "$actual" | wc -l)" = 4 ] || fail "expected init + 3 children: $(echo $actual)"
listed "$id" || fail "ListGroups does not show $id"
pass "mon_groups/<podman id> holds the container's init and its 3 children: $(echo $actual)"

podman_ stop -t 10 "$id" >/dev/null || fail "podman stop failed"
rc=$(podman_ wait "$id") || fail "podman wait failed"
[ "$rc" = 7 ] || fail "the podman container exited $rc, expected 7"
[ "$(podman_ logs "$id" 2>&1)" = "$(printf 'ready\nbye')" ] ||
  fail "container output changed: $(podman_ logs "$id" 2>&1)"
pass "exit status 7 and output unchanged"
podman_ rm "$id" >/dev/null || fail "podman rm failed"
wait_for 10 group_absent "mon_groups/$id" || fail "mon_groups/$id still there after podman rm"
! listed "$id" || fail "ListGroups still shows $id after podman rm"
wait_for 5 saw_removed "$id" requested || fail "no GroupRemoved($id, requested)"
pass "after podman rm the group is gone and GroupRemoved($id, requested) was emitted"

id=$(podman_start "${IDP}-pm-optout" --annotation org.rdtmon.monitoring=false) ||
  fail "podman run with the opt-out annotation failed"
wait_for 30 podman_ready "$id" || fail "opted-out container did not start"
[ "$(podman_ inspect -f '{{.State.Status}}' "$id")" = running ] || fail "opted-out container not running"
group_absent "mon_groups/$id" || fail "an opted-out container got a group"
[ -z "$(ls "$MNT/mon_groups")" ] || fail "unexpected groups: $(ls "$MNT/mon_groups")"
! listed "$id" || fail "ListGroups shows the opted-out container"
podman_ rm -f -t 0 "$id" >/dev/null
pass "a container annotated org.rdtmon.monitoring=false gets no group and runs normally"
