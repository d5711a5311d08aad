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
[ -x "${THREADED_SLEEPER:-}" ] || fail "THREADED_SLEEPER (a static multi-threaded sleeper) missing"
cp "$THREADED_SLEEPER" "$ROOTFS/bin/threaded-sleeper"
runc_detached "$id" "$WORK/b"
init=$(runc_ state "$id" | jq -r .pid)
group_tasks "mon_groups/$id" | grep -qx "$init" || fail "the init is not in its group"

# The exec'd shell forks a sleeper with 3 threads and a plain one: all follow it into the
# group.
runc_ exec -d --pid-file "$WORK/exec.pid" "$id" sh -c 'threaded-sleeper 3 & sleep 999 & wait' ||
  fail "runc exec failed"
epid=$(cat "$WORK/exec.pid")
[ -d "/proc/$epid" ] || fail "the exec'd process is not running"
in_ns=$(readlink "/proc/$epid/ns/pid")
[ "$in_ns" = "$(readlink "/proc/$init/ns/pid")" ] || fail "exec'd process not in the container"
# Every thread of the exec'd process and of its children is in the group (subset test).
exec_in_group() {
  local want
  want=$(container_threads "$epid")
  [ "$(echo "$want" | wc -l)" -ge 6 ] || return 1 # the shell, 4 threads, a sleeper
  [ -z "$(comm -23 <(echo "$want" | sort) <(group_tasks "mon_groups/$id" | sort))" ]
}
wait_for 10 exec_in_group ||
  fail "the exec'd process is not in mon_groups/$id: its threads [$(container_threads "$epid" | tr '\n' ' ')], the group [$(group_tasks "mon_groups/$id" | tr '\n' ' ')]"
cgroup=$(bus --json=short get-property org.rdtmon1 \
  "$(bus --json=short call org.rdtmon1 /org/rdtmon1 org.rdtmon1.Manager ListGroups | jq -r --arg id "$id" '.data[0][] | select(.[0] == $id) | .[4]')" \
  org.rdtmon1.Group Cgroup | jq -r .data)
[ -n "$cgroup" ] && [ -d "$cgroup" ] || fail "the group follows no cgroup: Cgroup='$cgroup'"
pass "runc exec'd pid $epid and its children are in mon_groups/$id ($(group_tasks "mon_groups/$id" | tr '\n' ' ')), following $cgroup"

# A multi-threaded process exec'd directly: its threads start right after the exec, maybe
# before rdtmond moved the process, and must be moved too.
runc_ exec -d --pid-file "$WORK/exec2.pid" "$id" threaded-sleeper 4 || fail "runc exec failed"
epid=$(cat "$WORK/exec2.pid")
threads_in_group() {
  local want
  want=$(ls "/proc/$epid/task" | sort -n)
  [ "$(echo "$want" | wc -l)" = 5 ] || return 1
  [ -z "$(comm -23 <(echo "$want" | sort) <(group_tasks "mon_groups/$id" | sort))" ]
}
wait_for 10 threads_in_group ||
  fail "the threads of exec'd pid $epid [$(ls "/proc/$epid/task" | tr '\n' ' ')] are not all in mon_groups/$id"
pass "runc exec'd pid $epid and its 4 threads are in mon_groups/$id"
