#!/bin/bash
# Adoption under real runtimes: containers started through the shipped hooks while rdtmond
# is stopped (the hooks fail open) get their groups when rdtmond starts, from what runc,
# crun and podman (runc) left in their state roots.
#  - runc with CRI-O's pod annotations, crun, podman: each adopted within the start-up
#    collection, with every thread of the container, its pod labels, Origin "adopted".
#  - runc with CRI-O's sandbox annotation, and runc annotated org.rdtmon.monitoring=false:
#    never adopted.
#  - a second restart changes nothing (same groups, same creation times, no new adoption).
#  - the poststop hook removes an adopted group like any other (GroupRemoved "requested").
. "$(dirname "$0")/lib.sh"
probe_runtime runc
probe_runtime crun
# The end of a container is left to the poststop hook here (its own test: test_end.sh).
FIXTURE_GROUPS='{ "exitGraceSeconds": 3600 }'
fixture -- "$RUNC_ROOT" "$CRUN_ROOT" "$PODMAN_DIR/runroot/runc"
CONFIG=$(cat "$WORK/rdtmond.json")
push_cleanup 'cleanup_runc_root "$RUNC_ROOT"'
push_cleanup 'cleanup_crun_root'
podman_setup
start_signal_monitor
stop_rdtmond

# crun_detached ID BUNDLE: crun run -d, its stdio in WORK/ID.{out,err}; waits for "ready".
crun_detached() {
  local id=$1 b=$2
  (cd "$b" && crun_ns run -d "$id" >"$WORK/$id.out" 2>"$WORK/$id.err" </dev/null) ||
    fail "crun run -d $id failed: $(cat "$WORK/$id.err")"
  wait_for 30 has_line "$WORK/$id.out" ready || fail "$id did not start: $(cat "$WORK/$id.err")"
}
# with_annotations BUNDLE JSON: merges JSON into the bundle's config.json annotations.
with_annotations() {
  jq --argjson a "$2" '.annotations = ((.annotations // {}) + $a)' "$1/config.json" >"$1/c.json"
  mv "$1/c.json" "$1/config.json"
}

# --- containers started while rdtmond is down ---
r=${IDP}-runc
make_bundle "$WORK/b-runc" "$(oci_hooks)" "$CONTAINER_ARGS"
with_annotations "$WORK/b-runc" '{"io.kubernetes.pod.name": "web-0",
  "io.kubernetes.pod.namespace": "shop", "io.kubernetes.container.name": "nginx",
  "io.kubernetes.pod.uid": "0f0e0d0c-1111-2222-3333-444455556666"}'
runc_detached "$r" "$WORK/b-runc"
sandbox=${IDP}-sandbox
make_bundle "$WORK/b-sandbox" "$(oci_hooks)" "$CONTAINER_ARGS"
with_annotations "$WORK/b-sandbox" '{"io.kubernetes.cri-o.ContainerType": "sandbox"}'
runc_detached "$sandbox" "$WORK/b-sandbox"
optout=${IDP}-optout
make_bundle "$WORK/b-optout" "$(oci_hooks)" "$CONTAINER_ARGS"
with_annotations "$WORK/b-optout" '{"org.rdtmon.monitoring": "false"}'
runc_detached "$optout" "$WORK/b-optout"
c=${IDP}-crun
make_bundle "$WORK/b-crun" "$(oci_hooks)" "$CONTAINER_ARGS"
crun_detached "$c" "$WORK/b-crun"
p=$(podman_start "${IDP}-pm" 2>"$WORK/perr") || fail "podman run failed: $(cat "$WORK/perr")"
wait_for 30 podman_ready "$p" || fail "podman container did not start"

declare -A PID
PID[$r]=$(runc_ state "$r" | jq -r .pid)
PID[$c]=$(crun_ns state "$c" | jq -r .pid)
PID[$p]=$(podman_ inspect -f '{{.State.Pid}}' "$p")
for id in "$r" "$c" "$p"; do
  [ "$(children_of "${PID[$id]}" | wc -l)" = 3 ] ||
    fail "$id should have 3 children: $(children_of "${PID[$id]}" | tr '\n' ' ')"
done
[ -z "$(ls "$MNT/mon_groups")" ] || fail "groups exist while rdtmond was down: $(ls "$MNT/mon_groups")"
pass "runc, crun and podman containers run without groups while rdtmond is down (fail-open)"

# --- rdtmond starts: the start-up collection adopts them ---
start_rdtmond "$CONFIG"
all_adopted() {
  local id
  for id in "$r" "$c" "$p"; do
    [ "$(container_threads "${PID[$id]}")" = "$(group_tasks "mon_groups/$id" 2>/dev/null)" ] ||
      return 1
  done
}
# One collection adopts them (one per loop turn); the wait is only for a loaded machine.
wait_for 20 all_adopted || {
  for id in "$r" "$c" "$p"; do
    log "$id: threads [$(echo $(container_threads "${PID[$id]}"))], group [$(echo $(group_tasks "mon_groups/$id" 2>/dev/null))]"
  done
  fail "not every container was adopted with all its threads: $(cat "$WORK/rdtmond.log")"
}
pass "runc, crun and podman containers adopted at start-up, each with its init and 3 children"

# object_of ID: the group's object path, from ListGroups.
object_of() {
  manager ListGroups --json=short | jq -r --arg id "$1" '.data[0][] | select(.[0] == $id) | .[4]'
}
group_prop() { bus get-property --json=short org.rdtmon1 "$(object_of "$1")" org.rdtmon1.Group "$2" | jq -c .data; }
for id in "$r" "$c" "$p"; do
  [ "$(group_prop "$id" Origin)" = '"adopted"' ] || fail "$id: Origin is $(group_prop "$id" Origin)"
  [ "$(group_prop "$id" Pid)" = "${PID[$id]}" ] || fail "$id: Pid is $(group_prop "$id" Pid), init is ${PID[$id]}"
done
labels=$(group_prop "$r" Labels)
[ "$labels" = '{"container":"nginx","namespace":"shop","pod":"web-0","pod_uid":"0f0e0d0c-1111-2222-3333-444455556666"}' ] ||
  fail "$r: Labels are $labels"
[ "$(group_prop "$c" Labels)" = '{}' ] || fail "$c: Labels are $(group_prop "$c" Labels)"
pass "each group says Origin \"adopted\" and its init pid; the runc one has its pod labels: $labels"

for id in "$sandbox" "$optout"; do
  group_absent "mon_groups/$id" || fail "$id got a group"
  ! listed "$id" || fail "ListGroups shows $id"
done
pass "the sandbox container and the opted-out one are not adopted"

# --- a second restart changes nothing ---
declare -A CREATED
for id in "$r" "$c" "$p"; do CREATED[$id]=$(group_prop "$id" CreatedUsec); done
adoptions=$(grep -c "adopted: created group" "$WORK/rdtmond.log" || true)
stop_rdtmond
start_rdtmond "$CONFIG"
manager GarbageCollect >/dev/null || fail "GarbageCollect failed"
for id in "$r" "$c" "$p"; do
  [ "$(group_prop "$id" CreatedUsec)" = "${CREATED[$id]}" ] || fail "$id: its group was made again"
  [ "$(group_prop "$id" Origin)" = '"adopted"' ] || fail "$id: Origin changed"
  [ "$(container_threads "${PID[$id]}")" = "$(group_tasks "mon_groups/$id")" ] ||
    fail "$id: its group's tasks changed"
done
for id in "$sandbox" "$optout"; do group_absent "mon_groups/$id" || fail "$id got a group"; done
[ "$(ls "$MNT/mon_groups" | wc -l)" = 3 ] || fail "groups now: $(ls "$MNT/mon_groups")"
[ "$(grep -c "adopted: created group" "$WORK/rdtmond.log" || true)" = "$adoptions" ] ||
  fail "the restart adopted again: $(grep "adopted: created" "$WORK/rdtmond.log")"
pass "a second restart (and a collection) changes nothing: same 3 groups, creation times, tasks"

# --- the poststop hook removes an adopted group like any other ---
runc_ kill "$r" TERM
wait_for 10 sh -c "[ \"\$(runc --root '$RUNC_ROOT' state '$r' | jq -r .status)\" = stopped ]" ||
  fail "$r did not stop"
runc_ delete "$r" || fail "runc delete $r failed"
crun_ns kill "$c" TERM
wait_for 10 sh -c "! kill -0 ${PID[$c]} 2>/dev/null" || fail "$c did not stop"
crun_ns delete "$c" || fail "crun delete $c failed"
podman_ stop -t 10 "$p" >/dev/null || fail "podman stop failed"
podman_ rm "$p" >/dev/null || fail "podman rm failed"
for id in "$r" "$c" "$p"; do
  wait_for 10 group_absent "mon_groups/$id" || fail "mon_groups/$id still there after its delete"
  wait_for 5 saw_removed "$id" requested ||
    fail "no GroupRemoved($id, requested): $(cat "$WORK/signals.log")"
done
[ -z "$(ls "$MNT/mon_groups")" ] || fail "groups left: $(ls "$MNT/mon_groups")"
[ -z "$(manager ListGroups --json=short | jq -r '.data[0][]')" ] || fail "ListGroups is not empty"
pass "runc delete, crun delete and podman rm remove the adopted groups (GroupRemoved requested)"
