#!/bin/sh
# rdtmon's main job, shown end to end without hardware or the host's system bus: the
# resctrl emulator stands in for /sys/fs/resctrl, a private dbus-daemon (with the real
# policy file) for the system bus. A container's life: the createRuntime hook makes its
# monitoring group, busctl lists it and reads its counters, the poststop hook removes it.
# Then a pod's container whose bandwidth the emulator drives at a known rate, as
# rdtmonctl list and rdtmonctl top show it, and beside it a noisy pod: which of them takes
# each L3 domain's bandwidth and cache, as rdtmonctl top --by domain shows it.
# A real runc container is used when runc can run one here, else a plain process stands
# in for the container's init. Run as root on Debian 12; it installs what it needs first
# and cleans up after itself.
set -eu
cd "$(dirname "$0")/.."
SRC=$(pwd)
test/setup-deps.sh
BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)" --target rdtmond rdtmon-hook resctrl-emu rdtmonctl >/dev/null
BIN=$(cd "$BUILD_DIR" && pwd)

WORK=$(mktemp -d /tmp/rdtmon-demo.XXXXXX)
MNT=$WORK/resctrl
EMU_PID= BUS_PID= SVC_PID= CTR_PID= NOISY_PID=
cleanup() {
  set +e
  [ -n "$CTR_PID" ] && kill "$CTR_PID" 2>/dev/null
  [ -n "$NOISY_PID" ] && kill "$NOISY_PID" 2>/dev/null
  [ -n "$SVC_PID" ] && kill "$SVC_PID" 2>/dev/null && wait "$SVC_PID" 2>/dev/null
  [ -n "$BUS_PID" ] && kill "$BUS_PID" 2>/dev/null
  if [ -n "$EMU_PID" ]; then
    kill "$EMU_PID" 2>/dev/null
    wait "$EMU_PID" 2>/dev/null
  fi
  grep -q " $MNT " /proc/self/mounts && umount -l "$MNT"
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
wait_for() { # wait_for TEST-EXPRESSION...
  i=0
  until "$@"; do
    i=$((i + 1))
    [ $i -lt 500 ] || { echo "timed out waiting for: $*" >&2; exit 1; }
    sleep 0.02
  done
}

step "resctrl emulator mounted at $MNT (2 L3 domains of 4000 MB/s and 32 MiB, 16 RMIDs)"
mkdir -p "$MNT"
# The host's own tasks (in the root group, undriven) use 10 % of each domain between them.
"$BIN/test/emulator/resctrl-emu" "$MNT" --num-rmids 16 --l3-domains 2 --foreground \
  --domain-mbps 4000 --l3-size-kib 32768 --control "$WORK/emu.sock" &
EMU_PID=$!
wait_for test -d "$MNT/info"
# One command to the emulator's control socket (test/emulator/README.md); perl-base is
# on every Debian system.
emu_ctl() {
  perl -MIO::Socket::UNIX -e '
    my $s = IO::Socket::UNIX->new(Peer => $ARGV[0]) or die "emulator control: $!\n";
    print $s "$ARGV[1]\n";
    my $r = <$s>;
    die "emulator control: $ARGV[1]: $r" unless $r =~ /^ok/;' "$WORK/emu.sock" "$*"
}
grep " $MNT " /proc/self/mounts
ls "$MNT"
echo "num_rmids: $(cat "$MNT/info/L3_MON/num_rmids")  mon_features: $(tr '\n' ' ' <"$MNT/info/L3_MON/mon_features")"

step "private system bus with the real org.rdtmon1.conf policy"
sed -e "s|@LISTEN@|unix:path=$WORK/bus.sock|" -e "s|@POLICY_FILE@|$SRC/dbus/org.rdtmon1.conf|" \
  test/support/private-bus.conf.in >"$WORK/bus.conf"
# --print-address writes once the socket listens; the socket file alone appears earlier.
dbus-daemon --config-file="$WORK/bus.conf" --nofork --nopidfile --nosyslog \
  --print-address=3 3>"$WORK/bus.addr" 2>"$WORK/dbus.log" &
BUS_PID=$!
wait_for test -s "$WORK/bus.addr"
export DBUS_SYSTEM_BUS_ADDRESS="unix:path=$WORK/bus.sock"
echo "DBUS_SYSTEM_BUS_ADDRESS=$DBUS_SYSTEM_BUS_ADDRESS"

step "rdtmond serving org.rdtmon1"
mkdir -p "$WORK/runc"
cat >"$WORK/rdtmond.json" <<CONF
{ "gc": { "intervalSeconds": 60, "graceSeconds": 30 },
  "containerSources": [ { "stateDirs": ["$WORK/runc"] } ] }
CONF
"$BIN/service/rdtmond" --config "$WORK/rdtmond.json" --resctrl "$MNT" \
  --state-dir "$WORK/state" --no-mount 2>"$WORK/rdtmond.log" &
SVC_PID=$!
has_name() { busctl status org.rdtmon1 >/dev/null 2>&1; }
wait_for has_name
busctl introspect org.rdtmon1 /org/rdtmon1 org.rdtmon1.Manager

plain_process_demo() {
  step "a container starts: its init process, then the createRuntime hook"
  sleep 600 &
  CTR_PID=$!
  ID=demo-$(date +%s)
  mkdir -p "$WORK/runc/$ID" "$WORK/bundle"
  echo '{"ociVersion":"1.0.2","linux":{}}' >"$WORK/bundle/config.json"
  STATE="{\"ociVersion\":\"1.0.2\",\"id\":\"$ID\",\"status\":\"creating\",\"pid\":$CTR_PID,\"bundle\":\"$WORK/bundle\",\"annotations\":{}}"
  echo "$STATE"
  echo "$STATE" | "$BIN/hook/rdtmon-hook" create
  echo "hook exit status: $?"
  echo "mon_groups/: $(ls "$MNT/mon_groups")"
  echo "mon_groups/$ID/tasks: $(tr '\n' ' ' <"$MNT/mon_groups/$ID/tasks")(container pid $CTR_PID)"

  step "busctl ListGroups and GetCounters"
  busctl call org.rdtmon1 /org/rdtmon1 org.rdtmon1.Manager ListGroups
  sleep 0.3
  busctl --json=pretty call org.rdtmon1 /org/rdtmon1 org.rdtmon1.Manager GetCounters s "$ID"
  busctl get-property org.rdtmon1 /org/rdtmon1 org.rdtmon1.Manager GroupCount Supported NumRmids

  step "the container stops: the poststop hook"
  kill "$CTR_PID"
  CTR_PID=
  rmdir "$WORK/runc/$ID"
  echo "{\"ociVersion\":\"1.0.2\",\"id\":\"$ID\",\"status\":\"stopped\",\"bundle\":\"$WORK/bundle\"}" |
    "$BIN/hook/rdtmon-hook" delete
  echo "hook exit status: $?"
  echo "mon_groups/: [$(ls "$MNT/mon_groups")]"
  busctl call org.rdtmon1 /org/rdtmon1 org.rdtmon1.Manager ListGroups

}

step "a real runc container through the shipped hooks.d files"
rc=0
RDTMON_HOOK="$BIN/hook/rdtmon-hook" HOOKSD_DIR="$BIN/hooks.d" RESCTRL_MNT="$MNT" \
  RUNC_ROOT="$WORK/runc" sh test/runtimes/demo-runc.sh || rc=$?
if [ "$rc" = 77 ]; then
  echo "runc cannot run containers on this machine: a plain process stands in"
  plain_process_demo
elif [ "$rc" != 0 ]; then
  exit "$rc"
fi

step "rdtmonctl: a pod's container, its bandwidth driven by the emulator"
sleep 600 &
CTR_PID=$!
ID=$(printf 'demo-pod-%s' "$(date +%s)")
mkdir -p "$WORK/runc/$ID" "$WORK/bundle"
echo '{"ociVersion":"1.0.2","linux":{}}' >"$WORK/bundle/config.json"
# The CRI annotations containerd sets: the hook turns them into the group's labels.
STATE=$(jq -cn --arg id "$ID" --argjson pid "$CTR_PID" --arg bundle "$WORK/bundle" \
  '{ociVersion: "1.0.2", id: $id, status: "creating", pid: $pid, bundle: $bundle,
    annotations: {"io.kubernetes.cri.sandbox-name": "web-7d9f",
                  "io.kubernetes.cri.sandbox-namespace": "shop",
                  "io.kubernetes.cri.container-name": "nginx",
                  "io.kubernetes.cri.sandbox-uid": "3f1c2a9e-0b1d-4c7e-9a55-1d2e3f4a5b6c"}}')
echo "$STATE" | "$BIN/hook/rdtmon-hook" create
TOTAL_MBS=200 LOCAL_MBS=150 LLC_BYTES=6291456
echo "emulator: drive mon_groups/$ID at $TOTAL_MBS MB/s total, $LOCAL_MBS MB/s local, $LLC_BYTES bytes of LLC"
emu_ctl drive "mon_groups/$ID" $((TOTAL_MBS * 1000000)) $((LOCAL_MBS * 1000000)) $LLC_BYTES
echo "\$ rdtmonctl list"
"$BIN/ctl/rdtmonctl" list
# Through a pipe, top writes its two intervals one after the other instead of clearing
# the terminal.
echo "\$ rdtmonctl top -n 2 | cat"
"$BIN/ctl/rdtmonctl" top -n 2 | cat
# The same rate as JSON, checked: within 10 % of what the emulator drives.
measured=$("$BIN/ctl/rdtmonctl" top -n 1 -d 1 --json |
  jq -r --arg id "$ID" '.containers[] | select(.container_id == $id) | .mbm_total_bytes_per_second')
awk -v m="$measured" -v d="$TOTAL_MBS" 'BEGIN {
  mbs = m / 1e6; printf "measured %.1f MB/s MBM total, driven %d MB/s\n", mbs, d
  exit !(mbs > d * 0.9 && mbs < d * 1.1) }' || { echo "demo: the measured rate is off" >&2; exit 1; }

step "rdtmonctl top --by domain: a noisy pod beside it, and who takes each domain"
sleep 600 &
NOISY_PID=$!
NOISY=$(printf 'demo-db-%s' "$(date +%s)")
mkdir -p "$WORK/runc/$NOISY"
jq -cn --arg id "$NOISY" --argjson pid "$NOISY_PID" --arg bundle "$WORK/bundle" \
  '{ociVersion: "1.0.2", id: $id, status: "creating", pid: $pid, bundle: $bundle,
    annotations: {"io.kubernetes.cri.sandbox-name": "db-0",
                  "io.kubernetes.cri.sandbox-namespace": "data",
                  "io.kubernetes.cri.container-name": "postgres",
                  "io.kubernetes.cri.sandbox-uid": "8a2b6c1d-5e4f-4a3b-9c2d-7e6f5a4b3c2d"}}' |
  "$BIN/hook/rdtmon-hook" create
echo "emulator: drive mon_groups/$NOISY at 2400 MB/s total, 1800 MB/s local, 20 MiB of LLC"
emu_ctl drive "mon_groups/$NOISY" 2400000000 1800000000 20971520
echo "\$ rdtmonctl top --by domain -n 1 -d 2"
"$BIN/ctl/rdtmonctl" top --by domain -n 1 -d 2
# Checked: on each domain the pods' and the outside's shares add up to the whole, and the
# noisy pod takes most of it.
"$BIN/ctl/rdtmonctl" top --by domain -n 1 -d 1 --json | jq -e '
  .domains | length == 2 and all(.[];
    ([.pods[].bandwidth_share, .outside[].bandwidth_share] | add) as $sum |
    $sum > 0.97 and $sum < 1.03 and .pods[0].name == "data/db-0" and
    .pods[0].bandwidth_share > 0.5)' >/dev/null ||
  { echo "demo: the domain shares do not add up" >&2; exit 1; }
echo "the shares on each domain add up to its total; data/db-0 takes most of it"
for pid in "$CTR_PID" "$NOISY_PID"; do kill "$pid"; done
CTR_PID= NOISY_PID=
for c in "$ID" "$NOISY"; do
  rmdir "$WORK/runc/$c"
  echo "{\"ociVersion\":\"1.0.2\",\"id\":\"$c\",\"status\":\"stopped\",\"bundle\":\"$WORK/bundle\"}" |
    "$BIN/hook/rdtmon-hook" delete
done

step "rdtmond's log"
cat "$WORK/rdtmond.log"
