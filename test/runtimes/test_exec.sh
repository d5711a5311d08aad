#!/bin/bash
# runc exec: the exec'd process (and its threads and children) ends up in the container's
# MON group. runc puts it in the container's CLOS (here the root CTRL_MON group) and its
# cgroups, and no hook runs for exec; rdtmond follows the container's cgroup (an inotify
# watch on its cgroup.procs, which runc writes) and moves the joiner into the group.
. "$(dirname "$0")/lib.sh"
probe_runtime runc
fixture -- "$RUNC_ROOT"
push_cleanup 'cleanup_runc_root "$RUNC_ROOT"'
id=${IDP}-exec
make_bundle "$WORK/b" "$(oci_hooks)" "$CONTAINER_ARGS"
runc_detached "$id" "$WORK/b"
init=$(runc_ state "$id" | jq -r .pid)
group_tasks "mon_groups/$id" | grep -qx "$init" || fail "the init is not in its group"

# The exec'd shell forks two sleepers: its children must follow it into the group.
runc_ exec -d --pid-file "$WORK/exec.pid" "$id" sh -c 'sleep 999 & sleep 999 & wait' ||
  fail "runc exec failed"
epid=$(cat "$WORK/exec.pid")
[ -d "/proc/$epid" ] || fail "the exec'd process is not running"
in_ns=$(readlink "/proc/$epid/ns/pid")
[ "$in_ns" = "$(readlink "/proc/$init/ns/pid")" ] || fail "exec'd process not in the container"
# Every thread of the exec'd process and of its children is in the group (subset test).
exec_in_group() {
  local want
  want=$(container_threads "$epid")
  [ "$(echo "$want" | wc -l)" -ge 3 ] || return 1 # the shell and its two sleepers
  [ -z "$(comm -23 <(echo "$want") <(group_tasks "mon_groups/$id"))" ]
}
wait_for 10 exec_in_group ||
  fail "the exec'd process is not in mon_groups/$id: its threads [$(container_threads "$epid" | tr '\n' ' ')], the group [$(group_tasks "mon_groups/$id" | tr '\n' ' ')]"
cgroup=$(bus --json=short get-property org.rdtmon1 \
  "$(bus --json=short call org.rdtmon1 /org/rdtmon1 org.rdtmon1.Manager ListGroups | jq -r --arg id "$id" '.data[0][] | select(.[0] == $id) | .[4]')" \
  org.rdtmon1.Group Cgroup | jq -r .data)
[ -n "$cgroup" ] && [ -d "$cgroup" ] || fail "the group follows no cgroup: Cgroup='$cgroup'"
pass "runc exec'd pid $epid and its children are in mon_groups/$id ($(group_tasks "mon_groups/$id" | tr '\n' ' ')), following $cgroup"
