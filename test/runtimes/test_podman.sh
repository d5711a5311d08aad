#!/bin/bash
# podman (--runtime runc, --hooks-dir holding the two shipped JSON files) drives
# rdtmon-hook: runc runs the createRuntime hook, podman itself runs poststop at cleanup.
# A container annotated org.rdtmon.monitoring=false gets no group and runs normally.
# A container with CRI-O's pod annotations gets a group whose Labels name its pod, and
# they are still there after rdtmond is killed (-9) and started again. A container carrying
# CRI-O's sandbox annotation gets no group; its twin without it gets one. A podman exec'd
# process ends up in the container's group.
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

# podman exec: the exec'd process (and its child) joins the container's cgroup through runc
# exec; rdtmond follows that cgroup and moves it into the group.
podman_ exec -d "$id" sh -c 'sleep 997 & exec sleep 996' >/dev/null || fail "podman exec failed"
exec_pids() { pgrep -x sleep -a | awk '$3 == 997 || $3 == 996 { print $1 }' | sort -n; }
podman_exec_in_group() {
  local want
  want=$(for p in $(exec_pids); do ls "/proc/$p/task"; done | sort -n)
  [ "$(echo "$want" | grep -c .)" -ge 2 ] || return 1
  [ -z "$(comm -23 <(echo "$want" | sort) <(group_tasks "mon_groups/$id" | sort))" ]
}
wait_for 10 podman_exec_in_group ||
  fail "podman exec'd pids [$(echo $(exec_pids))] are not in mon_groups/$id [$(echo $(group_tasks "mon_groups/$id"))]"
pass "podman exec'd pids $(echo $(exec_pids)) are in mon_groups/$id"

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

# CRI-O's annotations, as CRI-O puts them on a pod's container: the hook reads them.
id=$(podman_start "${IDP}-pm-pod" \
  --annotation io.kubernetes.pod.name=web-7d9f8c6b5-x2k4q \
  --annotation io.kubernetes.pod.namespace=shop \
  --annotation io.kubernetes.container.name=nginx \
  --annotation io.kubernetes.pod.uid=3f1c2a9e-0b1d-4c7e-9a55-1d2e3f4a5b6c) ||
  fail "podman run with CRI-O's pod annotations failed"
wait_for 30 podman_ready "$id" || fail "the annotated container did not start"
group_exists "mon_groups/$id" || fail "mon_groups/$id missing for the annotated container"
want='{"container":"nginx","namespace":"shop","pod":"web-7d9f8c6b5-x2k4q","pod_uid":"3f1c2a9e-0b1d-4c7e-9a55-1d2e3f4a5b6c"}'
# labels_of ID: the Labels of the container's group object, as sorted JSON.
labels_of() {
  local path
  path=$(bus --json=short call org.rdtmon1 /org/rdtmon1 org.rdtmon1.Manager ListGroups |
    jq -r --arg id "$1" '.data[0][] | select(.[0] == $id) | .[4]')
  [ -n "$path" ] || return 1
  bus --json=short get-property org.rdtmon1 "$path" org.rdtmon1.Group Labels | jq -cS .data
}
[ "$(labels_of "$id")" = "$want" ] || fail "Labels of $id are $(labels_of "$id"), want $want"
pass "a container with CRI-O's pod annotations has Labels $want"
kill -9 "$SVC_PID"
wait "$SVC_PID" 2>/dev/null || true
SVC_PID=""
name_free() { ! name_owned; }
wait_for 10 name_free || fail "org.rdtmon1 still owned after rdtmond was killed"
# Started again with the source docs/configuration.md gives for podman (podman ps, on this
# test's private storage): its start-up collection must find the container running. (runc
# under podman keeps its state in /run/runc, not in the fixture's state dir.)
start_rdtmond "$(jq -nc --arg root "$PODMAN_DIR/root" --arg runroot "$PODMAN_DIR/runroot" \
  --arg tmp "$PODMAN_DIR/tmp" --arg net "$PODMAN_DIR/net" --arg vol "$PODMAN_DIR/volumes" '
  { gc: { intervalSeconds: 3600, graceSeconds: 0 },
    containerSources: [ { command: [ "podman", "--root", $root, "--runroot", $runroot,
      "--tmpdir", $tmp, "--network-config-dir", $net, "--volumepath", $vol,
      "--storage-driver", "overlay", "--runtime", "runc", "--cgroup-manager", "cgroupfs",
      "--events-backend", "none", "ps", "-a", "-q", "--no-trunc" ] } ] }')"
[ "$(labels_of "$id")" = "$want" ] ||
  fail "after a restart the Labels of $id are $(labels_of "$id"), want $want"
group_exists "mon_groups/$id" || fail "mon_groups/$id went with the restart"
pass "rdtmond killed with -9 and started again: the group and its Labels are still there"
podman_ rm -f -t 0 "$id" >/dev/null
wait_for 10 group_absent "mon_groups/$id" || fail "mon_groups/$id still there after podman rm"

id=$(podman_start "${IDP}-pm-optout" --annotation org.rdtmon.monitoring=false) ||
  fail "podman run with the opt-out annotation failed"
wait_for 30 podman_ready "$id" || fail "opted-out container did not start"
[ "$(podman_ inspect -f '{{.State.Status}}' "$id")" = running ] || fail "opted-out container not running"
group_absent "mon_groups/$id" || fail "an opted-out container got a group"
[ -z "$(ls "$MNT/mon_groups")" ] || fail "unexpected groups: $(ls "$MNT/mon_groups")"
! listed "$id" || fail "ListGroups shows the opted-out container"
podman_ rm -f -t 0 "$id" >/dev/null
pass "a container annotated org.rdtmon.monitoring=false gets no group and runs normally"

# A pod's sandbox as CRI-O marks it gets no group; its twin without the mark (the same
# pod annotations) gets one.
id=$(podman_start "${IDP}-pm-sandbox" \
  --annotation io.kubernetes.cri-o.ContainerType=sandbox \
  --annotation io.kubernetes.pod.name=web-7d9f8c6b5-x2k4q \
  --annotation io.kubernetes.pod.namespace=shop) ||
  fail "podman run with CRI-O's sandbox annotation failed"
twin=$(podman_start "${IDP}-pm-sandbox-twin" \
  --annotation io.kubernetes.cri-o.ContainerType=container \
  --annotation io.kubernetes.pod.name=web-7d9f8c6b5-x2k4q \
  --annotation io.kubernetes.pod.namespace=shop) ||
  fail "podman run of the sandbox's twin failed"
wait_for 30 podman_ready "$id" || fail "the sandbox container did not start"
wait_for 30 podman_ready "$twin" || fail "the sandbox's twin did not start"
group_exists "mon_groups/$twin" || fail "the sandbox's twin (ContainerType=container) got no group"
group_absent "mon_groups/$id" || fail "a CRI-O sandbox container got a group"
! listed "$id" || fail "ListGroups shows the sandbox container"
[ "$(ls "$MNT/mon_groups")" = "$twin" ] || fail "unexpected groups: $(ls "$MNT/mon_groups")"
podman_ rm -f -t 0 "$id" "$twin" >/dev/null
wait_for 10 group_absent "mon_groups/$twin" || fail "mon_groups/$twin still there after podman rm"
pass "a container with io.kubernetes.cri-o.ContainerType=sandbox gets no group; its twin gets one"
