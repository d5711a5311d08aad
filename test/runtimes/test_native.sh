#!/bin/bash
# Native monitoring present: a bundle whose config.json sets
# linux.intelRdt.enableMonitoring gets no group from rdtmon, and the hook says so. runc
# needs a real resctrl for intelRdt, so the hook is run as runc runs it (the shipped
# create config's path, args and env; the OCI state on stdin) with the bundle as it is.
. "$(dirname "$0")/lib.sh"
fixture -- "$RUNC_ROOT"
sleep 300 &
pid=$!
push_cleanup "kill_wait $pid"
hook=$(shipped_hook create)
run_hook() { # run_hook ID BUNDLE: exit status; stderr in WORK/hook.err
  local path args env
  path=$(jq -r .hook.path <<<"$hook")
  mapfile -t args < <(jq -r '.hook.args[]' <<<"$hook")
  mapfile -t env < <(jq -r '.hook.env[]' <<<"$hook")
  jq -cn --arg id "$1" --arg b "$2" --argjson pid "$pid" \
    '{ociVersion: "1.0.2", id: $id, status: "creating", pid: $pid, bundle: $b, annotations: {}}' |
    env -i "${env[@]}" bash -c 'exec -a "$0" "$@"' "${args[0]}" "$path" "${args[@]:1}" \
      2>"$WORK/hook.err"
}

id=${IDP}-native
make_bundle "$WORK/native" '{}' "$CONTAINER_ARGS"
jq '.linux.intelRdt = {enableMonitoring: true}' "$WORK/native/config.json" >"$WORK/c.json"
mv "$WORK/c.json" "$WORK/native/config.json"
rc=0
run_hook "$id" "$WORK/native" || rc=$?
[ "$rc" = 0 ] || fail "the hook exited $rc"
[ "$(wc -l <"$WORK/hook.err")" = 1 ] || fail "expected one line, got: $(cat "$WORK/hook.err")"
grep -q "^rdtmon-hook: container $id: skipped create: .*enableMonitoring" "$WORK/hook.err" ||
  fail "the hook did not say why: $(cat "$WORK/hook.err")"
group_absent "mon_groups/$id" || fail "rdtmon made a group although the runtime monitors"
[ "$(manager ListGroups)" = "a(ssuto) 0" ] || fail "ListGroups not empty: $(manager ListGroups)"
pass "enableMonitoring: true -> no group; the hook says: $(cut -c1-150 "$WORK/hook.err")"

# The control: the same bundle with enableMonitoring false does get a group.
id=${IDP}-control
jq '.linux.intelRdt.enableMonitoring = false' "$WORK/native/config.json" >"$WORK/c.json"
mkdir -p "$WORK/control" && mv "$WORK/c.json" "$WORK/control/config.json"
run_hook "$id" "$WORK/control" || fail "the hook failed: $(cat "$WORK/hook.err")"
[ ! -s "$WORK/hook.err" ] || fail "the hook was not silent: $(cat "$WORK/hook.err")"
[ "$(group_tasks "mon_groups/$id")" = "$pid" ] || fail "the control bundle got no group"
pass "the same bundle with enableMonitoring false gets mon_groups/$id"
