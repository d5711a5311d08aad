# shellcheck shell=bash disable=SC2034,SC2120
# Shared fixture of the runtime tests (sourced, bash): a resctrl emulator, a private
# dbus-daemon with the real org.rdtmon1.conf policy, rdtmond on it, busybox OCI bundles
# whose hooks come from the shipped hooks.d files, and a cleanup stack that undoes every
# container, mount and process even when a test fails half-way.
#
# Needed in the environment (test/runtimes/CMakeLists.txt sets them):
#   RDTMOND RDTMON_HOOK RESCTRL_EMU   the built binaries
#   HOOKSD_DIR                        the configured hooks.d files (build dir)
#   RDTMON_SRC                        the source tree (for dbus/org.rdtmon1.conf)
set -eu
set -o pipefail

: "${RDTMOND:?}" "${RDTMON_HOOK:?}" "${RESCTRL_EMU:?}" "${HOOKSD_DIR:?}" "${RDTMON_SRC:?}"
export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH"

TEST_NAME=$(basename "$0" .sh)
WORK=$(mktemp -d "/tmp/rdtmon-rt-$TEST_NAME.XXXXXX")
chmod 755 "$WORK"
MNT=$WORK/resctrl
BUS_SOCK=$WORK/bus.sock
BUS_ADDR=unix:path=$BUS_SOCK
EMU_SOCK=$WORK/emu.sock
EMU_PID="" BUS_PID="" SVC_PID="" MON_PID=""
# A short unique prefix for container ids: tests run in parallel with each other.
IDP="rt$$"

# ---- reporting -------------------------------------------------------------------------
log() { printf '[%s] %s\n' "$TEST_NAME" "$*" >&2; }
fail() {
  printf '[%s] FAIL: %s\n' "$TEST_NAME" "$*" >&2
  exit 1
}
skip() {
  printf '[%s] SKIP: %s\n' "$TEST_NAME" "$*" >&2
  exit 77
}
pass() { log "ok: $*"; }
# wait_for SECONDS COMMAND...: polls every 20 ms.
wait_for() {
  local limit=$(($1 * 50)) i=0
  shift
  until "$@"; do
    i=$((i + 1))
    [ "$i" -lt "$limit" ] || return 1
    sleep 0.02
  done
}

# ---- cleanup stack ---------------------------------------------------------------------
# Every resource pushes the command that releases it; they run last-in first-out on exit,
# whatever the exit status. Each runs with errors ignored.
CLEANUPS=()
push_cleanup() { CLEANUPS+=("$1"); }
run_cleanups() {
  local rc=$? i
  set +e
  trap - EXIT INT TERM
  for ((i = ${#CLEANUPS[@]} - 1; i >= 0; i--)); do
    eval "${CLEANUPS[$i]}" >/dev/null 2>&1
  done
  # Anything still mounted below WORK (podman's overlay, the emulator) goes before rm.
  grep -o " ${WORK}[^ ]*" /proc/self/mounts | sort -r | while read -r m; do umount -l "$m"; done
  if [ "$rc" != 0 ] && [ "$rc" != 77 ] && [ -f "$WORK/rdtmond.log" ]; then
    printf '[%s] rdtmond log:\n' "$TEST_NAME" >&2
    sed 's/^/    /' "$WORK/rdtmond.log" >&2
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap run_cleanups EXIT
trap 'exit 130' INT TERM

kill_wait() { # kill_wait PID: SIGTERM, then SIGKILL after 5 s; reaps it.
  local pid=$1 i=0
  kill "$pid" 2>/dev/null || return 0
  while kill -0 "$pid" 2>/dev/null && [ $i -lt 250 ]; do
    sleep 0.02
    i=$((i + 1))
  done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# ---- the emulator ----------------------------------------------------------------------
start_emulator() { # start_emulator [resctrl-emu options...]
  mkdir -p "$MNT"
  "$RESCTRL_EMU" "$MNT" --foreground --control "$EMU_SOCK" "$@" 2>"$WORK/emu.log" &
  EMU_PID=$!
  push_cleanup "stop_emulator"
  wait_for 10 test -d "$MNT/info" || fail "resctrl-emu did not mount: $(cat "$WORK/emu.log")"
}
stop_emulator() {
  [ -n "$EMU_PID" ] || return 0
  # SIGTERM makes it unmount and exit; a hung FUSE server is aborted through fusectl.
  kill "$EMU_PID" 2>/dev/null
  local i=0
  while kill -0 "$EMU_PID" 2>/dev/null && [ $i -lt 250 ]; do
    sleep 0.02
    i=$((i + 1))
  done
  if kill -0 "$EMU_PID" 2>/dev/null; then
    local dev
    dev=$(stat -c %d "$MNT" 2>/dev/null || true)
    [ -n "$dev" ] && [ -e "/sys/fs/fuse/connections/$dev/abort" ] &&
      echo 1 >"/sys/fs/fuse/connections/$dev/abort"
    kill -9 "$EMU_PID" 2>/dev/null
  fi
  wait "$EMU_PID" 2>/dev/null
  grep -q " $MNT " /proc/self/mounts && umount -l "$MNT"
  EMU_PID=""
}
# tasks of a group relative to the mount, one per line, sorted numerically.
group_tasks() { sort -n "$MNT/$1/tasks"; }
group_exists() { [ -d "$MNT/$1" ]; }
group_absent() { [ ! -e "$MNT/$1" ]; }

has_line() { grep -qx -- "$2" "$1" 2>/dev/null; } # has_line FILE LINE

# ---- the private bus and rdtmond -------------------------------------------------------
start_bus() {
  sed -e "s|@LISTEN@|$BUS_ADDR|" -e "s|@POLICY_FILE@|$RDTMON_SRC/dbus/org.rdtmon1.conf|" \
    "$RDTMON_SRC/test/support/private-bus.conf.in" >"$WORK/bus.conf"
  # --print-address writes once the socket listens; the socket file alone appears earlier.
  dbus-daemon --config-file="$WORK/bus.conf" --nofork --nopidfile --nosyslog \
    --print-address=3 3>"$WORK/bus.addr" 2>"$WORK/bus.log" &
  BUS_PID=$!
  push_cleanup 'kill_wait "$BUS_PID"'
  wait_for 10 test -s "$WORK/bus.addr" || fail "dbus-daemon did not start: $(cat "$WORK/bus.log")"
}
bus() { busctl --address="$BUS_ADDR" "$@"; }
manager() { bus call org.rdtmon1 /org/rdtmon1 org.rdtmon1.Manager "$@"; }
name_owned() { bus status org.rdtmon1 >/dev/null 2>&1; }

# start_rdtmond CONFIG-JSON: rdtmond --resctrl MNT --state-dir --config --no-mount.
start_rdtmond() {
  printf '%s\n' "${1:-{\}}" >"$WORK/rdtmond.json"
  mkdir -p "$WORK/state"
  DBUS_SYSTEM_BUS_ADDRESS=$BUS_ADDR "$RDTMOND" --config "$WORK/rdtmond.json" \
    --resctrl "$MNT" --state-dir "$WORK/state" --no-mount >>"$WORK/rdtmond.log" 2>&1 &
  SVC_PID=$!
  push_cleanup 'stop_rdtmond'
  wait_for 20 name_owned || fail "rdtmond did not take org.rdtmon1: $(cat "$WORK/rdtmond.log")"
}
stop_rdtmond() {
  [ -n "$SVC_PID" ] || return 0
  kill_wait "$SVC_PID"
  SVC_PID=""
}

# Records the Manager's GroupRemoved signals into $WORK/signals.log (dbus-monitor format).
start_signal_monitor() {
  dbus-monitor --address "$BUS_ADDR" \
    "type='signal',interface='org.rdtmon1.Manager'" >"$WORK/signals.log" 2>&1 &
  MON_PID=$!
  push_cleanup 'kill_wait "$MON_PID"'
  # dbus-monitor prints NameAcquired/NameLost once it is a monitor.
  wait_for 10 grep -q NameLost "$WORK/signals.log" ||
    fail "dbus-monitor did not start: $(cat "$WORK/signals.log")"
}
# saw_removed ID REASON: a GroupRemoved(ID, REASON) was recorded.
saw_removed() {
  awk -v id="$1" -v why="$2" '
    /member=GroupRemoved/ { n = 1; next }
    n == 1 { n = ($0 ~ "string \"" id "\"$") ? 2 : 0; next }
    n == 2 { if ($0 ~ "string \"" why "\"$") found = 1; n = 0 }
    END { exit !found }' "$WORK/signals.log"
}
# listed ID: ListGroups has ID.
listed() { manager ListGroups | grep -q "\"$1\""; }

# The standard fixture: emulator, bus, rdtmond with the given container state dirs.
# fixture [--num-rmids N] -- STATEDIR...
# FIXTURE_GROUPS, when set, is the JSON object of rdtmond's "groups" key.
fixture() {
  local emu_args=() dirs
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do
    emu_args+=("$1")
    shift
  done
  [ $# -gt 0 ] && shift
  start_emulator "${emu_args[@]}"
  start_bus
  dirs=$(printf '%s\n' "$@" | jq -R . | jq -cs .)
  mkdir -p "$@"
  start_rdtmond "{ \"gc\": { \"intervalSeconds\": 3600, \"graceSeconds\": 0 },
    ${FIXTURE_GROUPS:+\"groups\": $FIXTURE_GROUPS,}
    \"containerSources\": [ { \"stateDirs\": $dirs } ] }"
}

# ---- hooks from the shipped hooks.d files ----------------------------------------------
# The shipped files name the installed hook (/usr/libexec/rdtmon/rdtmon-hook). A test copy
# changes exactly two things: hook.path becomes the built binary, and hook.env points the
# hook at the private bus (a runtime runs hooks with only the env listed there). args,
# timeout, when and stages are kept as shipped. Extra create arguments (e.g.
# --fail-closed) may be appended for a test copy.
shipped_hook() { # shipped_hook create|delete [extra args...] -> JSON file on stdout
  local f="$HOOKSD_DIR/50-rdtmon-$1.json"
  shift
  [ -f "$f" ] || fail "shipped hooks.d file $f missing"
  local extra='[]'
  [ $# -eq 0 ] || extra=$(printf '%s\n' "$@" | jq -R . | jq -cs .)
  jq --arg path "$RDTMON_HOOK" --arg env "DBUS_SYSTEM_BUS_ADDRESS=$BUS_ADDR" \
    --argjson extra "$extra" '.hook.path = $path | .hook.env = [$env] | .hook.args += $extra' \
    "$f"
}
# make_hooksd DIR [extra create args...]: a hooks.d dir for podman --hooks-dir.
make_hooksd() {
  local dir=$1
  shift
  mkdir -p "$dir"
  shipped_hook create "$@" >"$dir/50-rdtmon-create.json"
  shipped_hook delete >"$dir/50-rdtmon-delete.json"
}
# oci_hooks [extra create args...]: the config.json "hooks" object built from the
# hooks.d files: each file's hook (path, args, env, timeout) under each of its stages.
oci_hooks() {
  { shipped_hook create "$@"; shipped_hook delete; } | jq -s '
    reduce .[] as $f ({}; reduce $f.stages[] as $s (.; .[$s] += [$f.hook]))'
}

# ---- busybox rootfs and bundles --------------------------------------------------------
BUSYBOX=/bin/busybox
make_rootfs() { # make_rootfs DIR
  local dir=$1 a
  [ -x "$BUSYBOX" ] || fail "$BUSYBOX missing (busybox-static is installed by setup-deps)"
  mkdir -p "$dir/bin" "$dir/tmp" "$dir/proc" "$dir/sys" "$dir/dev" "$dir/etc"
  cp "$BUSYBOX" "$dir/bin/busybox"
  for a in sh sleep cat echo kill ls true false; do ln -sf busybox "$dir/bin/$a"; done
  echo 'root:x:0:0:root:/:/bin/sh' >"$dir/etc/passwd"
  echo 'root:x:0:' >"$dir/etc/group"
}
ROOTFS=""
# make_bundle DIR HOOKS-JSON ARGS-JSON: runc spec, then: not rootless, no terminal, the
# given process args, the given hooks, a read-write busybox rootfs shared by all bundles.
make_bundle() {
  local dir=$1 hooks=$2 args=$3
  if [ -z "$ROOTFS" ]; then
    ROOTFS=$WORK/rootfs
    make_rootfs "$ROOTFS"
  fi
  mkdir -p "$dir"
  (cd "$dir" && rm -f config.json && runc spec)
  jq --arg root "$ROOTFS" --argjson hooks "$hooks" --argjson args "$args" '
    .root = {path: $root, readonly: true}
    | .process.terminal = false
    | .process.args = $args
    | .hooks = $hooks
    | if ($hooks | length) == 0 then del(.hooks) else . end' \
    "$dir/config.json" >"$dir/config.json.new"
  mv "$dir/config.json.new" "$dir/config.json"
}

# The container: forks three children, says "ready", sleeps until SIGTERM, then kills
# its children, says "bye" and exits 7.
CONTAINER_ARGS='["sh","-c","sleep 1000 & a=$!; sleep 1000 & b=$!; sleep 1000 & c=$!; trap \"kill $a $b $c; echo bye; exit 7\" TERM; echo ready; wait; wait"]'

# Children of a host pid (one per line).
children_of() { pgrep -P "$1" | sort -n; }
# Every thread of the host pid and of its children, sorted: what the container's group must
# hold (thread ids, as resctrl lists them).
container_threads() {
  local p
  for p in "$1" $(children_of "$1"); do ls "/proc/$p/task"; done | sort -n
}

# ---- runc / crun -----------------------------------------------------------------------
# The runtimes' own state roots live in WORK, so rdtmond's stateDirs source reads exactly
# the containers of this test and nothing leaks into /run/runc or /run/crun.
RUNC_ROOT=$WORK/runc-root
CRUN_ROOT=$WORK/crun-root
runc_() { runc --root "$RUNC_ROOT" "$@"; }
# Deletes every container left in a runc root (a failed test); poststop runs for each.
cleanup_runc_root() {
  local id
  for id in $(runc --root "$1" list -q 2>/dev/null); do
    runc --root "$1" kill "$id" KILL
    runc --root "$1" delete -f "$id"
  done
}
# crun needs a private mount namespace without the cgroup2 mount on this hybrid host.
crun_ns() { # crun_ns ARGS...: crun --root CRUN_ROOT ARGS in such a namespace
  unshare -m sh -c 'mountpoint -q /sys/fs/cgroup/unified && umount /sys/fs/cgroup/unified
    exec crun --root "$0" "$@"' "$CRUN_ROOT" "$@"
}
cleanup_crun_root() {
  local id
  for id in $(crun_ns list -q 2>/dev/null); do
    crun_ns kill "$id" KILL
    crun_ns delete -f "$id"
  done
}

# Skips (77) when the runtime cannot run a plain container here at all: this is the
# "runtime binary cannot run on this machine" case. Not being installed is a failure.
# probe_runtime runc|crun
probe_runtime() {
  local rt=$1 out
  command -v "$rt" >/dev/null || fail "$rt is not installed (test/setup-deps.sh installs it)"
  out=$("$rt" --version 2>&1) || skip "$rt cannot run on this machine: $out"
  make_bundle "$WORK/probe" '{}' '["true"]'
  case $rt in
    runc) out=$(cd "$WORK/probe" && runc_ run "${IDP}-probe" 2>&1 </dev/null) ;;
    crun) out=$(cd "$WORK/probe" && crun_ns run "${IDP}-probe" 2>&1 </dev/null) ;;
  esac || skip "$rt cannot run a plain busybox container on this machine: $out"
}

# ---- the shared lifecycle test of runc and crun ----------------------------------------
# lifecycle runc|crun: a container through the shipped hooks, checked while it runs, its
# exit status and output, then after the runtime deletes it.
lifecycle() {
  local rt=$1 id="${IDP}-$1" pid expected actual rc
  local b="$WORK/bundle-$rt" out="$WORK/$rt.out" err="$WORK/$rt.err"
  # After the shipped hooks, one more createRuntime hook records the state the runtime
  # passes, to check the status word (runc "creating", crun "created").
  make_bundle "$b" "$(oci_hooks | jq --arg f "$WORK/$rt.state" \
    '.createRuntime += [{path: "/bin/sh", args: ["sh", "-c", "cat > \"$0\"", $f]}]')" \
    "$CONTAINER_ARGS"
  case $rt in
    # --keep: the test deletes it itself, to see the group outlive the exit until delete.
    runc) (cd "$b" && exec runc --root "$RUNC_ROOT" run --keep "$id" >"$out" 2>"$err" </dev/null) & ;;
    # crun run has no --keep: it deletes the container (poststop) as soon as it exits.
    crun) (cd "$b" && crun_ns run "$id" >"$out" 2>"$err" </dev/null) & ;;
  esac
  local run_pid=$!
  push_cleanup "kill_wait $run_pid"
  wait_for 30 has_line "$out" ready ||
    fail "$rt container did not start: $(cat "$err" "$out")"
  case $rt in
    runc) pid=$(runc_ state "$id" | jq -r .pid) ;;
    crun) pid=$(crun_ns state "$id" | jq -r .pid) ;;
  esac
  [ -n "$pid" ] && [ "$pid" -gt 0 ] || fail "no pid for $id"
  local want=creating
  [ "$rt" = crun ] && want=created
  [ "$(jq -r .status "$WORK/$rt.state")" = "$want" ] ||
    fail "$rt passed state $(cat "$WORK/$rt.state") to createRuntime, expected status $want"
  pass "$rt passes status \"$want\" to the createRuntime hooks"

  group_exists "mon_groups/$id" || fail "mon_groups/$id missing while $id runs"
  pass "mon_groups/$id exists while the $rt container runs (init pid $pid)"
  [ "$(children_of "$pid" | wc -l)" = 3 ] ||
    fail "the container should have 3 children: $(children_of "$pid" | tr '\n' ' ')"
  expected=$(container_threads "$pid")
  actual=$(group_tasks "mon_groups/$id")
  [ "$expected" = "$actual" ] ||
    fail "mon_groups/$id/tasks is [$(echo $actual)], the container is [$(echo $expected)]"
  pass "its tasks are exactly the init process and the 3 children forked after the move: $(echo $actual)"
  listed "$id" || fail "ListGroups does not show $id: $(manager ListGroups)"
  pass "busctl ListGroups shows it"

  case $rt in
    runc) runc_ kill "$id" TERM ;;
    crun) crun_ns kill "$id" TERM ;;
  esac
  rc=0
  wait "$run_pid" || rc=$?
  [ "$rc" = 7 ] || fail "$rt run exited $rc, the container exits 7: $(cat "$err")"
  [ "$(cat "$out")" = "$(printf 'ready\nbye')" ] || fail "container output changed: $(cat "$out")"
  [ ! -s "$err" ] || fail "$rt wrote to stderr: $(cat "$err")"
  pass "exit status 7 and output 'ready','bye' unchanged, nothing on stderr"

  if [ "$rt" = runc ]; then
    group_exists "mon_groups/$id" || fail "group gone before runc delete"
    [ -z "$(group_tasks "mon_groups/$id")" ] || fail "exited container's group still has tasks"
    runc_ delete "$id" || fail "runc delete $id failed"
  fi
  # The delete hook sends the removal and does not wait for it.
  wait_for 5 group_absent "mon_groups/$id" || fail "mon_groups/$id still there after $rt delete"
  ! listed "$id" || fail "ListGroups still shows $id after delete"
  wait_for 5 saw_removed "$id" requested ||
    fail "no GroupRemoved($id, requested): $(cat "$WORK/signals.log")"
  pass "after $rt delete the group is gone and GroupRemoved($id, requested) was emitted"
}

# ---- podman ----------------------------------------------------------------------------
# Private storage, run root, tmp, network and volume dirs under WORK: nothing touches the
# host's podman state. runc as the runtime, cgroupfs, no events, no network (design.md).
PODMAN_DIR=$WORK/podman
PODMAN_HOOKS=$PODMAN_DIR/hooks.d
PODMAN_IMAGE=localhost/rdtmon-busybox:test
# Ulimits no higher than this machine's hard limits (root lacks CAP_SYS_RESOURCE): the
# values design.md gives (nofile 20000, nproc 32768), lowered to the hard limit if needed.
min_limit() { if [ "$2" = unlimited ] || [ "$1" -le "$2" ]; then echo "$1"; else echo "$2"; fi; }
NOFILE=$(min_limit 20000 "$(ulimit -Hn)")
NPROC=$(min_limit 32768 "$(ulimit -Hu)")
PODMAN_ULIMITS=(--ulimit "nofile=$NOFILE:$NOFILE" --ulimit "nproc=$NPROC:$NPROC")
# runc's state root: podman as root passes runc none of its own, so runc would keep its
# state in its default /run/runc; --runtime-flag puts it where rdtmond's stateDirs source
# of the tests looks, and keeps the host's /run/runc out of the tests.
PODMAN_RUNC_ROOT=$PODMAN_DIR/runroot/runc
podman_() {
  podman --root "$PODMAN_DIR/root" --runroot "$PODMAN_DIR/runroot" \
    --tmpdir "$PODMAN_DIR/tmp" --network-config-dir "$PODMAN_DIR/net" \
    --volumepath "$PODMAN_DIR/volumes" --storage-driver overlay \
    --runtime runc --runtime-flag "root=$PODMAN_RUNC_ROOT" \
    --cgroup-manager cgroupfs --events-backend none \
    --hooks-dir "$PODMAN_HOOKS" "$@"
}
# podman_setup [extra create args...]: the hooks dir from the shipped files and the image.
podman_setup() {
  command -v podman >/dev/null || fail "podman is not installed (test/setup-deps.sh installs it)"
  local out
  out=$(podman --version 2>&1) || skip "podman cannot run on this machine: $out"
  mkdir -p "$PODMAN_DIR"/{root,runroot,tmp,net,volumes} "$PODMAN_HOOKS"
  push_cleanup 'podman_ rm -a -f -t 0'
  if [ -z "$ROOTFS" ]; then
    ROOTFS=$WORK/rootfs
    make_rootfs "$ROOTFS"
  fi
  tar -C "$ROOTFS" -cf "$PODMAN_DIR/rootfs.tar" .
  podman_ import -q "$PODMAN_DIR/rootfs.tar" "$PODMAN_IMAGE" >/dev/null ||
    fail "podman import failed"
  # Not being able to run a plain container at all (no hooks yet: the hooks dir is still
  # empty) is the runtime's problem, not rdtmon's.
  out=$(podman_ run --rm --network none "${PODMAN_ULIMITS[@]}" "$PODMAN_IMAGE" true 2>&1) ||
    skip "podman cannot run a plain container on this machine: $out"
  make_hooksd "$PODMAN_HOOKS" "$@"
}
# podman_start NAME [podman run options...]: a detached CONTAINER_ARGS container; prints
# its full id (the OCI id the hooks see).
podman_start() {
  local name=$1
  shift
  podman_ run -d --name "$name" --network none "${PODMAN_ULIMITS[@]}" "$@" "$PODMAN_IMAGE" \
    sh -c "$(jq -r '.[2]' <<<"$CONTAINER_ARGS")"
}
podman_ready() { podman_ logs "$1" 2>/dev/null | grep -qx ready; }

# runc_detached ID BUNDLE: runc run -d with the container's stdio in WORK/ID.{out,err};
# returns once the container said "ready". The container is deleted on cleanup.
runc_detached() {
  local id=$1 b=$2
  (cd "$b" && runc_ run -d "$id" >"$WORK/$id.out" 2>"$WORK/$id.err" </dev/null) ||
    fail "runc run -d $id failed: $(cat "$WORK/$id.err")"
  wait_for 30 has_line "$WORK/$id.out" ready || fail "$id did not start: $(cat "$WORK/$id.err")"
}
