#!/bin/bash
# The NRI hook-injector path with the real hooks library (containers/common pkg/hooks, the
# version the plugin pins): hooks-probe does what the plugin does for a new container, run
# in the plugin's view laid out from the volumes of the shipped DaemonSet
# (deploy/kubernetes) over the installed package layout.
#   1. deploy/kubernetes: both rdtmon hooks injected, stage, path and args as packaged.
#   2. the stock DaemonSet (hooks.d directories only): nothing injected, the hooks.d files
#      are dropped because the hook they name is not in the plugin's view.
#   3. the shipped manifest with one mount taken out at a time: exactly the hooks.d
#      directory and the hook's directory are needed; without either, nothing is injected.
#   4. the injected hooks, verbatim, in a runc bundle run on the node's view: the group is
#      made with every thread of the container and removed at runc delete.
. "$(dirname "$0")/lib.sh"
build_tools probe
make_node

ds=$(kustomization_daemonset "$MANIFEST_DIR")
[ "$(wc -l <<<"$ds")" = 1 ] && [ -n "$ds" ] ||
  fail "deploy/kubernetes must hold exactly one DaemonSet resource, found: $ds"
ours=$(manifest_json "$ds")
mounts=$(plugin_mounts <<<"$ours") && [ -n "$mounts" ] || fail "no plugin mounts in $ds"
log "plugin mounts from $ds:"
sed 's/^/    /' <<<"$mounts" >&2

# --- 1. the shipped manifests -------------------------------------------------------------
got=$(probe "$mounts")
rdtmon_hooks_injected "$got" || fail "deploy/kubernetes: rdtmon hooks not injected as packaged: $got"
[ "$(jq -S . <<<"$got")" = "$(expected_hooks | jq -S .)" ] ||
  fail "injected hooks differ from the node's hooks.d files: $got vs $(expected_hooks)"
pass "deploy/kubernetes: createRuntime [$HOOK_PATH rdtmon-hook create] and poststop [... delete] injected, as in the hooks.d files"

# An ordinary pod's annotations do not change it (when.always).
got=$(probe "$mounts" -annotation io.kubernetes.cri.container-type=container \
  -annotation io.kubernetes.cri.sandbox-name=web -- sh -c true)
rdtmon_hooks_injected "$got" || fail "with pod annotations the hooks were not injected: $got"
pass "the same with a CRI container's annotations and args"

# --- 2. the stock DaemonSet ---------------------------------------------------------------
stock=$(manifest_json "$STOCK_MANIFEST" | plugin_mounts) && [ -n "$stock" ] ||
  fail "no mounts in $STOCK_MANIFEST"
got=$(probe "$stock")
[ "$(jq -c . <<<"$got")" = "{}" ] || fail "the stock DaemonSet injected hooks: $got"
pass "stock DaemonSet (hooks.d dirs only): rdtmon's hooks.d files are dropped, nothing injected"

# --- 3. each mount of the shipped manifest taken out --------------------------------------
n=$(jq '.spec.template.spec.containers[] | select(.name == "plugin") | .volumeMounts | length' <<<"$ours")
needed=()
for ((i = 0; i < n; i++)); do
  name=$(jq -r --argjson i "$i" '.spec.template.spec.containers[] | select(.name == "plugin")
    | .volumeMounts[$i].name' <<<"$ours")
  cut_mounts=$(jq --argjson i "$i" '(.spec.template.spec.containers[] | select(.name == "plugin")
    | .volumeMounts) |= del(.[$i])' <<<"$ours" | plugin_mounts)
  got=$(probe "$cut_mounts")
  if rdtmon_hooks_injected "$got"; then
    :
  elif [ "$(jq -c . <<<"$got")" = "{}" ]; then
    needed+=("$name")
  else
    fail "without mount $name: a partial injection: $got"
  fi
done
[ "${needed[*]}" = "usr-share-hooks-d rdtmon-hook" ] ||
  fail "the mounts without which nothing is injected are [${needed[*]}], want [usr-share-hooks-d rdtmon-hook]"
pass "without the hooks.d mount or without the hook's mount nothing is injected; the others are not needed for rdtmon"

# --- 4. the injected hooks in a real runc container ---------------------------------------
probe_runtime runc
fixture -- "$RUNC_ROOT"
push_cleanup 'node_runc_cleanup'
node_runc() { in_node_view runc --root "$RUNC_ROOT" "$@"; }
node_runc_cleanup() {
  local id
  for id in $(runc --root "$RUNC_ROOT" list -q 2>/dev/null); do
    node_runc kill "$id" KILL
    node_runc delete -f "$id"
  done
}
start_signal_monitor
injected=$(probe "$mounts")
id=${IDP}-nri
make_bundle "$WORK/b" "$injected" "$CONTAINER_ARGS"
jq -e --argjson h "$injected" '.hooks == $h' "$WORK/b/config.json" >/dev/null ||
  fail "the bundle's hooks are not the injected ones"
(cd "$WORK/b" && node_runc run -d "$id" >"$WORK/$id.out" 2>"$WORK/$id.err" </dev/null) ||
  fail "runc run -d $id failed: $(cat "$WORK/$id.err")"
wait_for 30 has_line "$WORK/$id.out" ready || fail "$id did not start: $(cat "$WORK/$id.err")"
pid=$(runc_ state "$id" | jq -r .pid)
group_exists "mon_groups/$id" || fail "no group mon_groups/$id for the running container"
expected=$(container_threads "$pid")
actual=$(group_tasks "mon_groups/$id")
[ "$expected" = "$actual" ] ||
  fail "mon_groups/$id/tasks is [$(echo $actual)], the container is [$(echo $expected)]"
pass "runc with the injected hooks: mon_groups/$id holds every thread of the container: $(echo $actual)"

node_runc kill "$id" TERM
wait_for 10 sh -c "[ \"\$(runc --root '$RUNC_ROOT' state '$id' | jq -r .status)\" = stopped ]" ||
  fail "the container did not stop"
node_runc delete "$id" 2>"$WORK/del.err" || fail "runc delete failed: $(cat "$WORK/del.err")"
wait_for 5 group_absent "mon_groups/$id" || fail "mon_groups/$id still there after runc delete"
wait_for 5 saw_removed "$id" requested || fail "no GroupRemoved($id, requested)"
pass "runc delete ran the injected poststop hook: the group is gone, GroupRemoved($id, requested)"
