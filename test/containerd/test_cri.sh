#!/bin/bash
# The real thing: a private containerd (built from its Go module, NRI on, runc, cgroupfs)
# running in the node's view (the staged rdtmon package, the private bus as system bus),
# the hook-injector plugin in the plugin's view laid out from the shipped DaemonSet and
# connected to that containerd's NRI socket, and crictl driving the CRI:
#   - crictl runp (host network, no CNI) + create + start: the container's group holds
#     every thread, and carries the pod's Labels from containerd's own annotations;
#     the sandbox (pause) container has no group;
#   - crictl stop + rm: the group is gone;
#   - a pod started while rdtmond is down: adopted at rdtmond's start (threads, labels,
#     Origin adopted; its sandbox not), and removed by crictl stop + rm;
#   - rdtmond's collector pointed at this containerd (its runc state root and
#     `crictl ps -a -q`): a container killed behind containerd's back, its runc state gone,
#     keeps its group while containerd still lists it and loses it (stale) once removed.
. "$(dirname "$0")/lib.sh"
build_tools all
make_node
probe_runtime runc
export PATH="$CONTAINERD_BIN:$CRICTL_BIN:$PATH"

CTD=$WORK/ctd
SOCK=$CTD/containerd.sock
NRI_SOCK=$CTD/nri.sock
CTD_RUNC_ROOT=$CTD/runc
CGROUP_PARENT=/rdtmon-ctd-$$
PAUSE_IMAGE=localhost/rdtmon-pause:test
BUSYBOX_IMAGE=localhost/rdtmon-busybox:test
CTD_PID="" PLUGIN_PID=""
mkdir -p "$CTD"/{root,state,tmp,opt,cni,pods} "$CTD_RUNC_ROOT"
# crictl's own config file, so that it reads none of the host's (nor warns about it).
printf 'runtime-endpoint: unix://%s\nimage-endpoint: unix://%s\ntimeout: 30\n' "$SOCK" "$SOCK" >"$CTD/crictl.yaml"
crictl_() { crictl --config "$CTD/crictl.yaml" "$@"; }
# wait_secs SECONDS COMMAND...: polls a slow COMMAND every 0.2 s until it succeeds.
wait_secs() {
  local end=$((SECONDS + $1))
  shift
  until "$@"; do
    [ "$SECONDS" -lt "$end" ] || return 1
    sleep 0.2
  done
}
ctd_up() { ctr --address "$SOCK" version >/dev/null 2>&1; }
cri_has_image() { crictl_ images -q "$BUSYBOX_IMAGE" 2>/dev/null | grep -q .; }
cri_exited() { crictl_ inspect "$1" 2>/dev/null | jq -e '.status.state == "CONTAINER_EXITED"' >/dev/null; }
ctr_() { ctr --address "$SOCK" --namespace k8s.io "$@"; }

# ---- images: OCI layouts made here from busybox-static (no registry is reachable) ------
# make_image NAME CMD-JSON TARFILE: a one-layer OCI image archive named NAME for ctr import.
make_image() {
  local name=$1 cmd=$2 tar=$3 d arch layer ld ls config cd cs manifest md ms
  d=$(mktemp -d "$WORK/image.XXXXXX")
  mkdir -p "$d/blobs/sha256"
  arch=$(dpkg --print-architecture)
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$ROOTFS" -cf "$d/layer" .
  ld=$(sha256sum "$d/layer" | cut -d' ' -f1)
  ls=$(stat -c %s "$d/layer")
  mv "$d/layer" "$d/blobs/sha256/$ld"
  jq -n --arg arch "$arch" --arg diff "sha256:$ld" --argjson cmd "$cmd" \
    '{architecture: $arch, os: "linux", config: {Env: ["PATH=/bin"], Cmd: $cmd},
      rootfs: {type: "layers", diff_ids: [$diff]}}' >"$d/config"
  cd=$(sha256sum "$d/config" | cut -d' ' -f1)
  cs=$(stat -c %s "$d/config")
  mv "$d/config" "$d/blobs/sha256/$cd"
  jq -n --arg cd "sha256:$cd" --argjson cs "$cs" --arg ld "sha256:$ld" --argjson ls "$ls" \
    '{schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $cd, size: $cs},
      layers: [{mediaType: "application/vnd.oci.image.layer.v1.tar", digest: $ld, size: $ls}]}' \
    >"$d/manifest"
  md=$(sha256sum "$d/manifest" | cut -d' ' -f1)
  ms=$(stat -c %s "$d/manifest")
  mv "$d/manifest" "$d/blobs/sha256/$md"
  jq -n --arg md "sha256:$md" --argjson ms "$ms" --arg name "$name" --arg arch "$arch" \
    '{schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: [{mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $md,
        size: $ms, platform: {architecture: $arch, os: "linux"},
        annotations: {"io.containerd.image.name": $name,
                      "org.opencontainers.image.ref.name": ($name | sub(".*:"; ""))}}]}' \
    >"$d/index.json"
  echo '{"imageLayoutVersion":"1.0.0"}' >"$d/oci-layout"
  tar -C "$d" -cf "$tar" oci-layout index.json blobs
}

# ---- containerd ------------------------------------------------------------------------
cat >"$CTD/config.toml" <<EOF
version = 4
root = "$CTD/root"
state = "$CTD/state"
temp = "$CTD/tmp"
imports = []
[plugins."io.containerd.server.v1.grpc"]
  address = "$SOCK"
[plugins."io.containerd.server.v1.ttrpc"]
  address = "$SOCK.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$CTD/opt"
[plugins."io.containerd.image-verifier.v1.bindir"]
  bin_dir = "$CTD/image-verifier"
[plugins."io.containerd.nri.v1.nri"]
  disable = false
  socket_path = "$NRI_SOCK"
  plugin_path = "$CTD/nri-plugins"
  plugin_config_path = "$CTD/nri-conf"
  plugin_registration_timeout = "10s"
  plugin_request_timeout = "10s"
[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "$PAUSE_IMAGE"
[plugins."io.containerd.cri.v1.runtime"]
  cdi_spec_dirs = []
  # Root here lacks CAP_SYS_RESOURCE: the sandbox's oom_score_adj (-998) cannot be set.
  restrict_oom_score_adj = true
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc)"
        Root = "$CTD_RUNC_ROOT"
        SystemdCgroup = false
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["$CTD/cni"]
    conf_dir = "$CTD/cni"
[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
EOF

start_containerd() {
  # Nothing of the host's: every path containerd would use must be under CTD.
  containerd --config "$CTD/config.toml" config dump >"$CTD/config.dump" 2>&1 ||
    fail "containerd rejects its config: $(cat "$CTD/config.dump")"
  ! grep -nE "(/run|/var/run|/var/lib|/opt)/(containerd|nri)" "$CTD/config.dump" ||
    fail "the private containerd would use host paths (above)"
  IN_BG=1 in_node_view containerd --config "$CTD/config.toml" --log-level info >"$CTD/containerd.log" 2>&1 &
  CTD_PID=$!
  push_cleanup 'stop_containerd'
  wait_secs 60 ctd_up ||
    fail "containerd did not start: $(tail -n 30 "$CTD/containerd.log")"
}
# Shims outlive containerd: they are found by the address they were given.
shim_pids() {
  local p
  for p in $(pgrep -f containerd-shim-runc-v2 || true); do
    tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF -- "$SOCK" && echo "$p"
  done
}
stop_containerd() {
  crictl_ rm -a -f >/dev/null 2>&1
  crictl_ rmp -a -f >/dev/null 2>&1
  [ -n "$CTD_PID" ] && kill_wait "$CTD_PID"
  local p
  for p in $(shim_pids); do kill -9 "$p"; done
  # Containers left by a failed run: deleted in the node's view, so poststop hooks run.
  for id in $(runc --root "$CTD_RUNC_ROOT/k8s.io" list -q 2>/dev/null); do
    in_node_view runc --root "$CTD_RUNC_ROOT/k8s.io" delete -f "$id"
  done
  for d in /sys/fs/cgroup/*/"$CGROUP_PARENT"; do
    [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \;
  done
  CTD_PID=""
}

# ---- rdtmond, pointed at this containerd -----------------------------------------------
start_emulator
start_bus
crictl_cmd=$(jq -cn --arg c "$CRICTL_BIN/crictl" --arg f "$CTD/crictl.yaml" \
  '[$c, "--config", $f, "ps", "-a", "-q"]')
# groups.exitGraceSeconds: the crash below is the collector's to judge, not the end's.
RDTMOND_CONFIG="{ \"gc\": { \"intervalSeconds\": 3600, \"graceSeconds\": 0 },
  \"groups\": { \"exitGraceSeconds\": 3600 },
  \"containerSources\": [ { \"stateDirs\": [\"$CTD_RUNC_ROOT/*\"] },
                          { \"command\": $crictl_cmd, \"timeoutSeconds\": 30 } ] }"
start_rdtmond "$RDTMOND_CONFIG"
start_signal_monitor

start_containerd
pass "containerd $(ctr --address "$SOCK" version | sed -n 's/^ *Version: *//p' | tail -n1) up with NRI on $NRI_SOCK"

# ---- the hook-injector plugin, in the view the shipped DaemonSet gives it --------------
ds=$(kustomization_daemonset "$MANIFEST_DIR")
ours=$(manifest_json "$ds")
mounts=$(plugin_mounts <<<"$ours") && [ -n "$mounts" ] || fail "no plugin mounts in $ds"
mapfile -t plugin_args < <(jq -r '.spec.template.spec.containers[] | select(.name == "plugin")
  | .args[]?' <<<"$ours")
IN_BG=1 in_plugin_view "$mounts" "$NRI_SOCK" "$PROBE_BIN/nri-hook-injector" "${plugin_args[@]}" \
  >"$CTD/plugin.log" 2>&1 &
PLUGIN_PID=$!
push_cleanup 'kill_wait "$PLUGIN_PID"'
wait_for 30 grep -q 'synchronizing plugin' "$CTD/containerd.log" ||
  fail "the plugin did not register: $(cat "$CTD/plugin.log")"
pass "hook-injector plugin (args ${plugin_args[*]}) registered over the DaemonSet's NRI socket mount"

# ---- images ----------------------------------------------------------------------------
ROOTFS=$WORK/rootfs
make_rootfs "$ROOTFS"
make_image "$PAUSE_IMAGE" '["/bin/sleep","2147483647"]' "$WORK/pause.tar"
make_image "$BUSYBOX_IMAGE" '["/bin/sh"]' "$WORK/busybox.tar"
for t in pause busybox; do
  ctr_ images import --snapshotter overlayfs "$WORK/$t.tar" >"$WORK/import.log" 2>&1 ||
    fail "ctr images import $t failed: $(cat "$WORK/import.log")"
done
wait_secs 30 cri_has_image || fail "the CRI does not see the imported image"

# ---- a pod through the CRI -------------------------------------------------------------
pod_json() { # pod_json NAME UID
  jq -n --arg name "$1" --arg uid "$2" --arg logs "$CTD/pods/$1" --arg cg "$CGROUP_PARENT" \
    '{metadata: {name: $name, namespace: "shop", uid: $uid, attempt: 0},
      log_directory: $logs,
      linux: {cgroup_parent: $cg, security_context: {namespace_options: {network: 2}}}}'
}
ctr_json() { # ctr_json NAME
  jq -n --arg name "$1" --arg image "$BUSYBOX_IMAGE" --argjson args "$CONTAINER_ARGS" \
    '{metadata: {name: $name}, image: {image: $image}, command: $args,
      log_path: ($name + ".log"), linux: {}}'
}
run_pod() { # run_pod NAME UID -> "POD_ID CONTAINER_ID", container started and ready
  local name=$1 uid=$2 pod cid
  pod_json "$name" "$uid" >"$WORK/$name-pod.json"
  ctr_json app >"$WORK/$name-ctr.json"
  pod=$(crictl_ runp "$WORK/$name-pod.json" 2>"$WORK/$name.err") ||
    fail "crictl runp $name failed: $(cat "$WORK/$name.err")"
  cid=$(crictl_ create "$pod" "$WORK/$name-ctr.json" "$WORK/$name-pod.json" 2>"$WORK/$name.err") ||
    fail "crictl create in $name failed: $(cat "$WORK/$name.err")"
  crictl_ start "$cid" >/dev/null 2>"$WORK/$name.err" ||
    fail "crictl start failed: $(cat "$WORK/$name.err") $(tail -n 20 "$CTD/containerd.log")"
  wait_for 30 grep -q ready "$CTD/pods/$name/app.log" ||
    fail "the container did not start: $(cat "$CTD/pods/$name/app.log" 2>&1)"
  echo "$pod $cid"
}
# group_labels ID: the Labels property of ID's group object, as a JSON object.
group_labels() {
  local path
  path=$(bus --json=short call org.rdtmon1 /org/rdtmon1 org.rdtmon1.Manager ListGroups |
    jq -r --arg id "$1" '.data[0][] | select(.[0] == $id) | .[4]')
  [ -n "$path" ] || return 1
  bus --json=short get-property org.rdtmon1 "$path" org.rdtmon1.Group Labels |
    jq -c '.data | to_entries | map({key, value: .value}) | from_entries'
}

read -r pod cid < <(run_pod web uid-0001)
pid=$(crictl_ inspect "$cid" | jq -r .info.pid)
[ -n "$pid" ] && [ "$pid" -gt 0 ] || fail "no pid for container $cid"
grep -q 'OCI hooks injected' "$CTD/plugin.log" || fail "the plugin says it injected nothing: $(cat "$CTD/plugin.log")"
group_exists "mon_groups/$cid" ||
  fail "no group for container $cid: $(ls "$MNT/mon_groups") plugin: $(cat "$CTD/plugin.log")"
expected=$(container_threads "$pid")
actual=$(group_tasks "mon_groups/$cid")
[ "$expected" = "$actual" ] ||
  fail "mon_groups/$cid/tasks is [$(echo $actual)], the container is [$(echo $expected)]"
pass "crictl runp/create/start: mon_groups/<container id> holds every thread: $(echo $actual)"

labels=$(group_labels "$cid") || fail "ListGroups has no $cid: $(manager ListGroups)"
want='{"container":"app","namespace":"shop","pod":"web","pod_uid":"uid-0001"}'
[ "$(jq -cS . <<<"$labels")" = "$want" ] || fail "Labels of $cid are $labels, want $want"
pass "its Labels from containerd's annotations: $labels"

group_absent "mon_groups/$pod" || fail "the sandbox (pause) container $pod got a group"
[ "$(ls "$MNT/mon_groups" | wc -l)" = 1 ] || fail "groups other than the container's: $(ls "$MNT/mon_groups")"
pass "the sandbox container got no group (the only group is the container's)"

# NRI never hands a sandbox to its plugins, and containerd 2.x builds the sandbox's spec
# without base_runtime_spec: no hook reaches it here. Where hooks do reach one (CRI-O runs
# hooks.d hooks for sandboxes), the hook steps aside by the sandbox's annotation. Checked
# with the annotations containerd really gives this sandbox: the installed hook, given the
# pause container's OCI state, makes no group.
sandbox=$(crictl_ inspectp "$pod")
ann=$(jq -c '.info.runtimeSpec.annotations' <<<"$sandbox")
jq -e '.["io.kubernetes.cri.container-type"] == "sandbox"' <<<"$ann" >/dev/null ||
  fail "containerd's sandbox annotations lack container-type=sandbox: $ann"
oci_state=$(jq -nc --arg id "$pod" --argjson pid "$(jq .info.pid <<<"$sandbox")" \
  --arg b "$CTD/state/io.containerd.runtime.v2.task/k8s.io/$pod" --argjson a "$ann" \
  '{ociVersion: "1.0.2", id: $id, status: "creating", pid: $pid, bundle: $b, annotations: $a}')
in_node_view "$HOOK_PATH" create <<<"$oci_state" 2>"$WORK/sandbox-hook.err" ||
  fail "the hook failed on the sandbox: $(cat "$WORK/sandbox-hook.err")"
group_absent "mon_groups/$pod" || fail "the hook made a group for the sandbox $pod"
pass "the hook, given the sandbox's own OCI state and annotations, steps aside: $(cat "$WORK/sandbox-hook.err")"

crictl_ stop "$cid" >/dev/null || fail "crictl stop failed"
crictl_ rm "$cid" >/dev/null || fail "crictl rm failed"
wait_secs 5 group_absent "mon_groups/$cid" || fail "mon_groups/$cid still there after crictl stop + rm"
wait_for 5 saw_removed "$cid" requested || fail "no GroupRemoved($cid, requested)"
crictl_ stopp "$pod" >/dev/null && crictl_ rmp "$pod" >/dev/null || fail "crictl stopp/rmp failed"
pass "crictl stop + rm: the group is gone, GroupRemoved(<id>, requested)"

# ---- adoption: a pod started while rdtmond is down -------------------------------------
stop_rdtmond
read -r lpod lcid < <(run_pod late uid-0003) # its hook fails open: no service
lpid=$(crictl_ inspect "$lcid" | jq -r .info.pid)
group_absent "mon_groups/$lcid" || fail "a group for $lcid although rdtmond was down"
start_rdtmond "$RDTMOND_CONFIG"
adopted() { [ "$(container_threads "$lpid")" = "$(group_tasks "mon_groups/$lcid" 2>/dev/null)" ]; }
wait_secs 20 adopted ||
  fail "$lcid not adopted with all its threads: $(ls "$MNT/mon_groups") $(cat "$WORK/rdtmond.log")"
labels=$(group_labels "$lcid") || fail "ListGroups has no $lcid: $(manager ListGroups)"
want='{"container":"app","namespace":"shop","pod":"late","pod_uid":"uid-0003"}'
[ "$(jq -cS . <<<"$labels")" = "$want" ] || fail "Labels of the adopted $lcid are $labels, want $want"
lpath=$(bus --json=short call org.rdtmon1 /org/rdtmon1 org.rdtmon1.Manager ListGroups |
  jq -r --arg id "$lcid" '.data[0][] | select(.[0] == $id) | .[4]')
origin=$(bus get-property org.rdtmon1 "$lpath" org.rdtmon1.Group Origin)
[ "$origin" = 's "adopted"' ] || fail "Origin of $lcid is $origin"
group_absent "mon_groups/$lpod" || fail "the sandbox $lpod was adopted"
pass "started while rdtmond was down, adopted at its start: every thread, Labels $labels, Origin adopted; the sandbox not"
crictl_ stop "$lcid" >/dev/null && crictl_ rm "$lcid" >/dev/null || fail "crictl stop/rm $lcid failed"
wait_secs 5 group_absent "mon_groups/$lcid" || fail "the adopted group is still there after crictl rm"
wait_for 5 saw_removed "$lcid" requested || fail "no GroupRemoved($lcid, requested)"
crictl_ stopp "$lpod" >/dev/null && crictl_ rmp "$lpod" >/dev/null || fail "crictl stopp/rmp failed"
pass "crictl stop + rm removes the adopted group like any other"

# ---- the collector against this containerd ---------------------------------------------
read -r pod cid < <(run_pod crash uid-0002)
pid=$(crictl_ inspect "$cid" | jq -r .info.pid)
group_exists "mon_groups/$cid" || fail "no group for the second container"
# Behind containerd's back, as in a crash: the container's runc state goes (so no poststop
# hook can run any more), and its shim and the container are killed with SIGKILL.
state=$CTD_RUNC_ROOT/k8s.io/$cid
[ -d "$state" ] || fail "no runc state at $state: the collector's stateDirs would be wrong"
mv "$state" "$WORK/hidden-state"
push_cleanup "[ -d '$WORK/hidden-state' ] && mv '$WORK/hidden-state' '$state'"
shim=$(ps -o ppid= -p "$pid" | tr -d ' ')
grep -q containerd-shim "/proc/$shim/cmdline" || fail "the parent of $pid is not a shim: $(ps -o args= -p "$shim")"
kill -9 "$shim" "$pid"
wait_secs 30 cri_exited "$cid" ||
  fail "containerd did not see the container exit: $(crictl_ inspect "$cid" | jq -c .status.state) $(grep -v level=info "$CTD/containerd.log" | tail -n 15)"
crictl_ ps -a -q | grep -qx "$cid" || fail "crictl ps -a -q does not list $cid in full: $(crictl_ ps -a -q)"
[ "$(manager GarbageCollect)" = "u 0" ] || fail "GarbageCollect removed a group containerd still lists"
group_exists "mon_groups/$cid" || fail "the group went while containerd still lists the container"
pass "killed -9, runc state gone: GarbageCollect keeps the group while crictl ps -a lists it"

crictl_ rm "$cid" >/dev/null 2>"$WORK/rm.err" || fail "crictl rm failed: $(cat "$WORK/rm.err")"
! crictl_ ps -a -q | grep -qx "$cid" || fail "crictl still lists $cid"
group_exists "mon_groups/$cid" || fail "the group went at crictl rm: a hook ran, this tests nothing"
[ "$(manager GarbageCollect)" = "u 1" ] || fail "GarbageCollect did not remove the stale group"
group_absent "mon_groups/$cid" || fail "the group is still in resctrl"
wait_for 5 saw_removed "$cid" stale || fail "no GroupRemoved($cid, stale)"
pass "once containerd forgot it, GarbageCollect removed the group: GroupRemoved(<id>, stale)"
# Back in place, the state lets runc delete the container's cgroups (the hook, fail-open,
# finds no group).
mv "$WORK/hidden-state" "$state"
in_node_view runc --root "$CTD_RUNC_ROOT/k8s.io" delete -f "$cid" 2>/dev/null || true
# The pod's shim is gone: its sandbox is left to the cleanup (rmp -f, then runc delete -f).
