# shellcheck shell=bash disable=SC2034
# Shared fixture of the containerd tests (sourced, bash), on top of the runtime tests' one
# (test/runtimes/lib.sh: emulator, private bus, rdtmond, busybox bundles, cleanup stack).
# It adds the two views a Kubernetes node with rdtmon has:
#   - the node's: the rdtmon package installed (STAGE_ROOT, laid out by stage.sh) over this
#     machine's /, with the private bus as the system bus. runc (and containerd, whose shims
#     run runc) run in it, so the injected hooks run exactly as injected.
#   - the hook-injector plugin's: an empty root holding only what the DaemonSet's volumes
#     give it, read from the shipped manifest (deploy/kubernetes/daemonset.yaml), each
#     hostPath taken from the node's view. The hooks library is run there.
# Needed in the environment besides lib.sh's: STAGE_ROOT (stage.sh's OUT/root).
. "$(dirname "${BASH_SOURCE[0]}")/../runtimes/lib.sh"
: "${STAGE_ROOT:?}"
CTD_DIR=$RDTMON_SRC/test/containerd
MANIFEST_DIR=$RDTMON_SRC/deploy/kubernetes
STOCK_MANIFEST=$CTD_DIR/stock-daemonset.yaml
HOOK_PATH=/usr/libexec/rdtmon/rdtmon-hook
NODE=$WORK/node

# build_tools all|probe: this tree's Go programs (and with all, containerd and crictl),
# built once per machine; sets PROBE_BIN (and CONTAINERD_BIN, CRICTL_BIN).
build_tools() {
  local out
  out=$(bash "$CTD_DIR/build-tools.sh" "$1" 2>"$WORK/build-tools.log") ||
    fail "building the Go tools failed: $(tail -n 30 "$WORK/build-tools.log")"
  eval "$out"
  sed 's/^/    /' "$WORK/build-tools.log" >&2
}

# The node's files: a copy of the staged package (kubelet creates DirectoryOrCreate
# hostPaths in it, as it would on a node).
make_node() {
  [ -x "$STAGE_ROOT$HOOK_PATH" ] || fail "no staged hook at $STAGE_ROOT$HOOK_PATH (stage.sh)"
  mkdir -p "$NODE"
  cp -a "$STAGE_ROOT/." "$NODE/"
}

# ---- the manifests ---------------------------------------------------------------------
# kustomization_daemonset DIR: checks that the kustomization uses only what these tests
# understand (so the DaemonSet file is what gets deployed, volumes and all) and prints the
# path of its one DaemonSet resource.
kustomization_daemonset() {
  local dir=$1 k extra res
  k=$("$PROBE_BIN/yaml2json" "$dir/kustomization.yaml") || fail "cannot read $dir/kustomization.yaml"
  extra=$(jq -r 'keys - ["apiVersion","kind","namespace","resources","images","labels"]
    | join(" ")' <<<"$k")
  [ -z "$extra" ] || fail "$dir/kustomization.yaml uses $extra, which the tests do not model"
  [ "$(jq -r '[.labels[]?.includeSelectors] | any' <<<"$k")" = false ] ||
    fail "labels with includeSelectors would change the DaemonSet's selector"
  for res in $(jq -r '.resources[]' <<<"$k"); do
    case $res in *://* | ../*) fail "remote or outside resource $res in $dir" ;; esac
    [ "$("$PROBE_BIN/yaml2json" "$dir/$res" | jq -r .kind)" = DaemonSet ] && echo "$dir/$res"
  done
}
# manifest_json FILE: the DaemonSet as JSON.
manifest_json() { "$PROBE_BIN/yaml2json" "$1" || fail "cannot read $1"; }
# plugin_mounts: reads a DaemonSet (JSON) on stdin and prints, for each volumeMount of its
# container "plugin", "hostPath TYPE mountPath READONLY" (tab-separated). A mount whose
# volume is not a hostPath is an error: the tests model hostPaths only.
plugin_mounts() {
  jq -r '.spec.template.spec as $s
    | ($s.volumes | map({key: .name, value: .}) | from_entries) as $v
    | $s.containers[] | select(.name == "plugin") | .volumeMounts[]
    | . as $m
    | ($v[$m.name] // error("volumeMount \($m.name) has no volume")) as $vol
    | ($vol.hostPath // error("volume \($m.name) is not a hostPath")) as $hp
    | [$hp.path, ($hp.type // ""), $m.mountPath, ($m.readOnly // false | tostring)] | @tsv'
}

# ---- the plugin's view -----------------------------------------------------------------
# in_plugin_view MOUNTS NRI_SOCKET PROGRAM ARGS...: runs PROGRAM (a static binary) chrooted
# into an empty root holding only MOUNTS (plugin_mounts' lines): each hostPath from the
# node's view (NODE), or NRI_SOCKET for the NRI socket (none when empty: then socket
# volumes are left out), bound at its mountPath, read-only where the manifest says so.
# hostPath types are honoured as kubelet does: DirectoryOrCreate is created on the node,
# Directory and Socket must exist (exit 3: kubelet would not start the pod).
# With IN_BG set (IN_BG=1 in_plugin_view ... &) the background job is PROGRAM itself, so
# $! is its pid (the same holds for in_node_view).
in_plugin_view() {
  local mounts=$1 sock=$2
  shift 2
  local root
  root=$(mktemp -d "$WORK/plugin-root.XXXXXX")
  ${IN_BG:+exec} unshare -m --propagation private bash -c '
    set -eu
    root=$1 node=$2 sock=$3 mounts=$4 prog=$5
    shift 5
    mount -t tmpfs -o mode=755 plugin-root "$root"
    while IFS=$(printf "\t") read -r host type path ro; do
      [ -n "$host" ] || continue
      case $type in
        Socket)
          [ -n "$sock" ] || continue
          src=$sock
          [ -S "$src" ] || { echo "hostPath $host: no socket" >&2; exit 3; } ;;
        DirectoryOrCreate) src=$node$host; mkdir -p "$src" ;;
        Directory) src=$node$host
          [ -d "$src" ] || { echo "hostPath $host: no such directory on the node" >&2; exit 3; } ;;
        *) echo "hostPath type \"$type\" of $host is not modelled" >&2; exit 3 ;;
      esac
      if [ -d "$src" ]; then
        mkdir -p "$root$path"
      else
        mkdir -p "$root$(dirname "$path")"
        : >"$root$path"
      fi
      mount --bind "$src" "$root$path"
      [ "$ro" = true ] && mount -o remount,bind,ro "$root$path"
    done <<<"$mounts"
    mkdir -p "$root/.bin"
    : >"$root/.bin/prog"
    mount --bind "$prog" "$root/.bin/prog"
    exec chroot "$root" /.bin/prog "$@"
  ' in_plugin_view "$root" "$NODE" "$sock" "$mounts" "$@"
}

# probe MOUNTS [ARGS...]: the hooks the hook-injector would inject (hooks-probe's JSON) in a
# plugin view with MOUNTS.
probe() {
  local mounts=$1
  shift
  in_plugin_view "$mounts" "" "$PROBE_BIN/hooks-probe" "$@" 2>"$WORK/probe.err" ||
    fail "hooks-probe failed: $(cat "$WORK/probe.err")"
}
# expected_hooks: the OCI hooks object the node's hooks.d files must give (each file's
# hook under each of its stages), read from the staged files themselves.
expected_hooks() {
  jq -s 'reduce .[] as $f ({}; reduce $f.stages[] as $s (.; .[$s] += [$f.hook]))' \
    "$NODE/usr/share/containers/oci/hooks.d/50-rdtmon-create.json" \
    "$NODE/usr/share/containers/oci/hooks.d/50-rdtmon-delete.json"
}
# rdtmon_hooks_injected HOOKS-JSON: both rdtmon hooks, with the stage, path and args the
# package means, and nothing else.
rdtmon_hooks_injected() {
  jq -e --arg p "$HOOK_PATH" '
    (.createRuntime | length) == 1 and (.poststop | length) == 1
    and .createRuntime[0].path == $p and .createRuntime[0].args == ["rdtmon-hook", "create"]
    and .poststop[0].path == $p and .poststop[0].args == ["rdtmon-hook", "delete"]
    and (keys | sort) == ["createRuntime", "poststop"]' <<<"$1" >/dev/null
}

# ---- the node's view -------------------------------------------------------------------
# in_node_view PROGRAM ARGS...: runs PROGRAM in a private mount namespace where the staged
# package is installed over this machine's /usr/libexec (an overlay, nothing written) and
# the system bus socket is the private bus. Hooks run by runc there find the hook where
# the hooks.d files say and reach rdtmond as on a node.
in_node_view() {
  ${IN_BG:+exec} unshare -m --propagation private bash -c '
    set -eu
    node=$1 bus=$2
    shift 2
    mount -t overlay node-libexec -o "lowerdir=$node/usr/libexec:/usr/libexec" /usr/libexec
    mkdir -p /run/dbus
    mount -t tmpfs -o mode=755 node-dbus /run/dbus
    : >/run/dbus/system_bus_socket
    mount --bind "$bus" /run/dbus/system_bus_socket
    exec "$@"
  ' in_node_view "$NODE" "$BUS_SOCK" "$@"
}
