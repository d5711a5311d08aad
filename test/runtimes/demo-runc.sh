#!/bin/sh
# One real runc container through rdtmon-hook, for test/demo.sh: a busybox bundle whose
# config.json hooks come from the shipped hooks.d files (only hook.path changed to the
# built hook, and hook.env added to reach the private bus), run while rdtmond serves the
# bus; shows the container's group, then deletes the container and shows it gone.
#
#   DBUS_SYSTEM_BUS_ADDRESS=unix:path=... RDTMON_HOOK=build/hook/rdtmon-hook \
#   RESCTRL_MNT=<emulator mount> HOOKSD_DIR=build/hooks.d [RUNC_ROOT=dir] demo-runc.sh
#
# Exit 0 when done, 77 (with the reason) when runc cannot run a container on this
# machine (the caller falls back to a plain process), 1 on any other failure. Cleans up
# the container and its temp dir in every case.
set -eu
: "${DBUS_SYSTEM_BUS_ADDRESS:?}" "${RDTMON_HOOK:?}" "${RESCTRL_MNT:?}" "${HOOKSD_DIR:?}"
if ! command -v runc >/dev/null 2>&1; then
  echo "demo-runc: runc is not installed" >&2
  exit 77
fi
WORK=$(mktemp -d /tmp/rdtmon-demo-runc.XXXXXX)
RUNC_ROOT=${RUNC_ROOT:-$WORK/runc-root}
ID=demo-runc-$$
cleanup() {
  rc=$?
  set +e
  if runc --root "$RUNC_ROOT" state "$ID" >/dev/null 2>&1; then
    runc --root "$RUNC_ROOT" kill "$ID" KILL 2>/dev/null
    runc --root "$RUNC_ROOT" delete -f "$ID" 2>/dev/null
  fi
  runc --root "$RUNC_ROOT" delete -f "$ID-probe" >/dev/null 2>&1
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
runc_() { runc --root "$RUNC_ROOT" "$@"; }
wait_until() { # wait_until SECONDS COMMAND...
  n=$(($1 * 50))
  shift
  until "$@"; do
    n=$((n - 1))
    [ "$n" -gt 0 ] || return 1
    sleep 0.02
  done
}

# A busybox root and a bundle from runc spec.
mkdir -p "$WORK/rootfs/bin" "$WORK/rootfs/proc" "$WORK/rootfs/dev" "$WORK/rootfs/sys" "$WORK/bundle"
cp /bin/busybox "$WORK/rootfs/bin/busybox"
for a in sh sleep kill true; do ln -s busybox "$WORK/rootfs/bin/$a"; done
(cd "$WORK/bundle" && runc spec)
bundle() { # bundle HOOKS-JSON ARGS-JSON
  jq --arg root "$WORK/rootfs" --argjson hooks "$1" --argjson args "$2" \
    '.root = {path: $root, readonly: true} | .process.terminal = false
     | .process.args = $args | .hooks = $hooks' \
    "$WORK/bundle/config.json" >"$WORK/config.new"
  mv "$WORK/config.new" "$WORK/bundle/config.json"
}

# Can runc run anything at all here?
bundle '{}' '["true"]'
if ! out=$(cd "$WORK/bundle" && runc_ run "$ID-probe" 2>&1 </dev/null); then
  echo "demo-runc: runc cannot run a container on this machine: $out" >&2
  exit 77
fi

# The hooks, from the shipped hooks.d files.
hooks=$(for f in "$HOOKSD_DIR/50-rdtmon-create.json" "$HOOKSD_DIR/50-rdtmon-delete.json"; do
  jq --arg path "$RDTMON_HOOK" --arg env "DBUS_SYSTEM_BUS_ADDRESS=$DBUS_SYSTEM_BUS_ADDRESS" \
    '.hook.path = $path | .hook.env = [$env]' "$f"
done | jq -s 'reduce .[] as $f ({}; reduce $f.stages[] as $s (.; .[$s] += [$f.hook]))')
echo "config.json hooks (from $HOOKSD_DIR):"
echo "$hooks" | jq -c '.[][] | {path, args, timeout}' | sed 's/^/  /'
bundle "$hooks" '["sh","-c","sleep 1000 & a=$!; sleep 1000 & b=$!; sleep 1000 & c=$!; trap \"kill $a $b $c; exit 0\" TERM; echo ready; wait"]'

echo "runc run -d $ID  (createRuntime: rdtmon-hook create)"
(cd "$WORK/bundle" && runc_ run -d "$ID" >"$WORK/out" 2>"$WORK/err" </dev/null) || {
  echo "demo-runc: runc run failed: $(cat "$WORK/err")" >&2
  exit 1
}
wait_until 20 grep -qx ready "$WORK/out" || { echo "demo-runc: no ready" >&2; exit 1; }
pid=$(runc_ state "$ID" | jq -r .pid)
echo "container init pid $pid, its children: $(pgrep -P "$pid" | tr '\n' ' ')"
echo "mon_groups/$ID/tasks: $(sort -n "$RESCTRL_MNT/mon_groups/$ID/tasks" | tr '\n' ' ')"
busctl call org.rdtmon1 /org/rdtmon1 org.rdtmon1.Manager ListGroups
sleep 0.3 # let the emulated counters move
busctl --json=pretty call org.rdtmon1 /org/rdtmon1 org.rdtmon1.Manager GetCounters s "$ID"

echo "runc kill $ID TERM; runc delete $ID  (poststop: rdtmon-hook delete)"
runc_ kill "$ID" TERM
wait_until 20 sh -c "[ \"\$(runc --root '$RUNC_ROOT' state '$ID' | jq -r .status)\" = stopped ]" ||
  { echo "demo-runc: the container did not stop" >&2; exit 1; }
runc_ delete "$ID"
# The delete hook sends the removal and does not wait for it.
wait_until 5 sh -c "[ ! -e '$RESCTRL_MNT/mon_groups/$ID' ]" || true
if [ -e "$RESCTRL_MNT/mon_groups/$ID" ]; then
  echo "demo-runc: mon_groups/$ID is still there after runc delete" >&2
  exit 1
fi
echo "mon_groups/: [$(ls "$RESCTRL_MNT/mon_groups" | tr '\n' ' ')]"
busctl call org.rdtmon1 /org/rdtmon1 org.rdtmon1.Manager ListGroups
