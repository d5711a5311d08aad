#!/bin/bash
# The booted-system test: the built .deb installed with apt into a debootstrapped Debian 12
# root, booted with systemd-nspawn (systemd as PID 1, a real system bus), the resctrl
# emulator running on the host and bound into the guest. From inside the guest
# (nsenter into its PID 1) it checks D-Bus activation, the sandbox, the installed hook
# driven by a non-root multi-threaded process, the installed policy, restart, the journal,
# rdtmonctl selftest and stop. Everything is undone on exit, whether the checks pass or not.
#   usage: boot-test.sh RDTMON_DEB RESCTRL_EMU THREADED_SLEEPER
# The Debian root is made from Debian's mirror. Outside CI it is cached in
# ${RDTMON_TEST_CACHE:-/var/cache/rdtmon-test} (set RDTMON_TEST_CACHE=none to disable);
# with CI set it is always made from nothing.
set -eu

deb=${1:?usage: $0 RDTMON_DEB RESCTRL_EMU THREADED_SLEEPER}
emu_bin=${2:?usage: $0 RDTMON_DEB RESCTRL_EMU THREADED_SLEEPER}
sleeper_bin=${3:?usage: $0 RDTMON_DEB RESCTRL_EMU THREADED_SLEEPER}
mirror=${RDTMON_TEST_MIRROR:-http://deb.debian.org/debian}
include="systemd,systemd-sysv,dbus,libsdbus-c++1,util-linux"
t0=$(date +%s)

say() { echo "boot-test [$(( $(date +%s) - t0 ))s]: $*"; }
skip() { echo "boot-test: SKIP: $*"; exit 77; }
fail() { echo "boot-test: FAIL: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || skip "needs root"
for tool in debootstrap systemd-nspawn nsenter fusermount3 findmnt; do
    command -v "$tool" >/dev/null || skip "$tool not installed (test/setup-deps.sh installs it)"
done
[ -c /dev/fuse ] || skip "no /dev/fuse"
for f in "$deb" "$emu_bin" "$sleeper_bin"; do
    [ -f "$f" ] || fail "$f: no such file"
done

work=$(mktemp -d /var/tmp/rdtmon-boot.XXXXXX)
root="$work/root"
emu="$work/resctrl"
emu_pid=""
nspawn_pid=""
guest=""     # host pid of the guest's systemd (PID 1 inside)

cleanup() {
    rc=$?
    set +e
    if [ "$rc" != 0 ] && [ -n "$guest" ] && [ -d "/proc/$guest" ]; then
        echo "---- guest journal (rdtmond) ----" >&2
        nsenter -t "$guest" -a journalctl -u rdtmond --no-pager -o short-monotonic 2>&1 | tail -n 40 >&2
    fi
    if [ -n "$nspawn_pid" ] && kill -0 "$nspawn_pid" 2>/dev/null; then
        if [ -n "$guest" ] && [ -d "/proc/$guest" ]; then
            nsenter -t "$guest" -a systemctl poweroff --no-block >/dev/null 2>&1
        fi
        for _ in $(seq 1 60); do
            kill -0 "$nspawn_pid" 2>/dev/null || break
            sleep 0.5
        done
        if kill -0 "$nspawn_pid" 2>/dev/null; then
            echo "boot-test: guest did not power off in 30 s; killing systemd-nspawn" >&2
            kill -TERM "$nspawn_pid"; sleep 3; kill -KILL "$nspawn_pid" 2>/dev/null
        fi
        wait "$nspawn_pid" 2>/dev/null
    fi
    if [ -n "$emu_pid" ]; then
        fusermount3 -u "$emu" 2>/dev/null || umount -l "$emu" 2>/dev/null
        for _ in $(seq 1 20); do
            kill -0 "$emu_pid" 2>/dev/null || break
            sleep 0.25
        done
        kill -KILL "$emu_pid" 2>/dev/null
        wait "$emu_pid" 2>/dev/null
    fi
    # Anything still mounted below the work dir (should be nothing) goes, lazily.
    findmnt -rn -o TARGET | grep -F "$work" | sort -r | while read -r m; do umount -l "$m"; done
    if findmnt -rn -o TARGET | grep -qF "$work"; then
        echo "boot-test: mounts remain under $work; not removing it" >&2
    else
        rm -rf --one-file-system "$work"
    fi
    [ "$rc" = 0 ] && echo "boot-test: cleaned up" || echo "boot-test: cleaned up after a failure" >&2
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the Debian root ----------------------------------------------------------------------
cache=${RDTMON_TEST_CACHE:-/var/cache/rdtmon-test}
[ -n "${CI:-}" ] && cache=none
stamp="bookworm minbase $include $mirror"
if [ "$cache" != none ] && [ -f "$cache/root.stamp" ] && [ "$(cat "$cache/root.stamp")" = "$stamp" ]; then
    say "Debian 12 root from the cache $cache"
    cp -a "$cache/root" "$root"
else
    say "debootstrap --variant=minbase --include=$include bookworm"
    if ! debootstrap --variant=minbase --include="$include" bookworm "$root" "$mirror" \
            >"$work/debootstrap.log" 2>&1; then
        tail -n 30 "$work/debootstrap.log" >&2
        fail "debootstrap failed"
    fi
    if [ "$cache" != none ]; then
        mkdir -p "$cache"
        rm -rf --one-file-system "$cache/root" "$cache/root.stamp"
        cp -a "$root" "$cache/root" && printf '%s\n' "$stamp" >"$cache/root.stamp"
    fi
fi
say "root ready"

# --- install the package with apt, so that its dependencies resolve ------------------------
cp "$deb" "$root/tmp/rdtmon.deb"
inroot() { chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@"; }
if ! inroot apt-get install -y --no-install-recommends /tmp/rdtmon.deb >"$work/apt.log" 2>&1; then
    # A dependency is missing from the root: fetch the lists and try again.
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    inroot apt-get update >>"$work/apt.log" 2>&1 || true
    inroot apt-get install -y --no-install-recommends /tmp/rdtmon.deb >>"$work/apt.log" 2>&1 \
        || { cat "$work/apt.log" >&2; fail "apt-get install rdtmon.deb in the guest"; }
fi
# shellcheck disable=SC2016
inroot dpkg-query -W -f='${Status} ${Version}\n' rdtmon | grep -q '^install ok installed' \
    || fail "rdtmon is not installed in the guest"
[ -L "$root/etc/systemd/system/multi-user.target.wants/rdtmond.service" ] \
    || fail "the package did not enable rdtmond.service"
[ -L "$root/etc/systemd/system/dbus-org.rdtmon1.service" ] \
    || fail "the package did not create the alias dbus-org.rdtmon1.service"
say "rdtmon installed with apt; unit enabled with its D-Bus alias"

# The guest's resctrl is the emulator, bound to /var/lib/rdtmon-test/resctrl. That path is
# not /sys/fs/resctrl (this host's kernel has no resctrl, so the read-only /sys that
# nspawn gives the guest has no such directory to bind onto): the config points rdtmond at
# it, and a drop-in adds it to the unit's ReadWritePaths= - the unit itself is unchanged.
guest_resctrl=/var/lib/rdtmon-test/resctrl
mkdir -p "$root$guest_resctrl" "$root/etc/rdtmon" "$root/etc/systemd/system/rdtmond.service.d"
cat >"$root/etc/rdtmon/rdtmond.json" <<JSON
{ "resctrl": { "path": "$guest_resctrl", "mount": false },
  "gc": { "intervalSeconds": 3600, "graceSeconds": 3600 } }
JSON
printf '[Service]\nReadWritePaths=%s\n' "$guest_resctrl" \
    >"$root/etc/systemd/system/rdtmond.service.d/10-test-resctrl.conf"
install -m 755 "$sleeper_bin" "$root/usr/local/bin/threaded-sleeper"
# No getty on a console nobody reads; a root password is not needed (nsenter).
ln -sf /dev/null "$root/etc/systemd/system/console-getty.service"

# --- the emulator on the host ---------------------------------------------------------------
mkdir -p "$emu"
"$emu_bin" "$emu" --foreground --num-rmids 32 >"$work/emu.log" 2>&1 &
emu_pid=$!
for _ in $(seq 1 100); do
    [ -d "$emu/info" ] && break
    kill -0 "$emu_pid" 2>/dev/null || { cat "$work/emu.log" >&2; fail "resctrl-emu exited"; }
    sleep 0.1
done
[ -d "$emu/info" ] || fail "resctrl-emu did not come up at $emu"
say "resctrl-emu serving $emu"

# --- boot ---------------------------------------------------------------------------------
systemd-nspawn -D "$root" -b --register=no --keep-unit --console=passive \
    --machine=rdtmon-boot-test --bind="$emu:$guest_resctrl" </dev/null >"$work/nspawn.log" 2>&1 &
nspawn_pid=$!
for _ in $(seq 1 200); do
    kill -0 "$nspawn_pid" 2>/dev/null || { cat "$work/nspawn.log" >&2; fail "systemd-nspawn exited"; }
    for c in $(pgrep -P "$nspawn_pid" 2>/dev/null); do
        if grep -qE '^NSpid:.*[[:space:]]1$' "/proc/$c/status" 2>/dev/null; then
            guest=$c
        fi
    done
    [ -n "$guest" ] && break
    sleep 0.1
done
[ -n "$guest" ] || fail "no PID 1 found under systemd-nspawn ($nspawn_pid)"
g() { nsenter -t "$guest" -a env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"; }
# Until the guest's systemd listens, systemctl cannot connect: retry, for 180 s in all.
# "offline" is retried too: it is what systemctl says before systemd has created
# /run/systemd/system, which on a loaded machine comes well after PID 1 exists.
state=""
deadline=$(( $(date +%s) + 180 ))
while [ "$(date +%s)" -lt "$deadline" ]; do
    state=$(timeout 60 nsenter -t "$guest" -a systemctl is-system-running --wait 2>&1 || true)
    case "$state" in running|degraded|maintenance|stopping) break ;; esac
    kill -0 "$nspawn_pid" 2>/dev/null || break
    sleep 1
done
case "$state" in
    running|degraded) ;;
    *) cat "$work/nspawn.log" >&2; fail "guest did not finish booting: '$state'" ;;
esac
say "guest booted ($state); its systemd is host pid $guest"
[ "$state" = degraded ] && g systemctl --failed --no-legend --plain | sed 's/^/  failed unit (not ours): /'

# Host pids of everything in the guest's pid namespace named $1.
guest_ns=$(readlink "/proc/$guest/ns/pid")
host_pids_named() {
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/ns/pid" 2>/dev/null)" = "$guest_ns" ] || continue
        [ "$(cat "$p/comm" 2>/dev/null)" = "$1" ] && echo "${p#/proc/}"
    done
    return 0
}

# --- 1. started on boot, then D-Bus activation on the real system bus -----------------------
[ "$(g systemctl is-active rdtmond)" = active ] || fail "rdtmond is not active after boot (enabled by the package)"
g systemctl stop rdtmond
[ "$(g systemctl is-active rdtmond || true)" = inactive ] || fail "rdtmond did not stop"
out=$(g busctl call org.rdtmon1 /org/rdtmon1 org.rdtmon1.Manager ListGroups 2>&1) \
    || fail "busctl ListGroups: $out"
[ "$out" = "a(ssuto) 0" ] || fail "ListGroups on a fresh system: '$out'"
[ "$(g systemctl is-active rdtmond)" = active ] || fail "busctl did not activate rdtmond"
say "ok: started on boot; busctl ListGroups activated it through dbus-org.rdtmon1.service"

# --- 2. the sandbox is applied ---------------------------------------------------------------
main=$(g systemctl show -p MainPID --value rdtmond)
[ "$main" -gt 1 ] || fail "no MainPID"
mounts=$(g cat "/proc/$main/mountinfo")
root_opts=$(printf '%s\n' "$mounts" | awk '$5 == "/" { print $6 }' | tail -n 1)
case ",$root_opts," in *,ro,*) ;; *) fail "/ is not read-only for rdtmond (ProtectSystem=strict): $root_opts" ;; esac
rw_opts=$(printf '%s\n' "$mounts" | awk -v p="$guest_resctrl" '$5 == p { print $6 }' | tail -n 1)
case ",$rw_opts," in *,rw,*) ;; *) fail "$guest_resctrl is not writable for rdtmond: '$rw_opts'" ;; esac
printf '%s\n' "$mounts" | awk '$5 == "/tmp"' | grep -q . || fail "no private /tmp (PrivateTmp=)"
status=$(g cat "/proc/$main/status")
printf '%s\n' "$status" | grep -qE '^CapEff:[[:space:]]+0+$' || fail "rdtmond has capabilities: $(printf '%s\n' "$status" | grep CapEff)"
printf '%s\n' "$status" | grep -qE '^CapBnd:[[:space:]]+0+$' || fail "rdtmond's bounding set is not empty"
printf '%s\n' "$status" | grep -qE '^NoNewPrivs:[[:space:]]+1$' || fail "NoNewPrivs is not set"
printf '%s\n' "$status" | grep -qE '^Seccomp:[[:space:]]+2$' || fail "no seccomp filter"
[ "$(g readlink "/proc/$main/ns/net")" != "$(g readlink /proc/1/ns/net)" ] || fail "not in a private network namespace"
say "ok: sandbox applied (/ ro, $guest_resctrl rw, private /tmp and network, no capabilities, NoNewPrivs, seccomp)"

# --- 3. the installed hook, for a non-root multi-threaded process in the guest ---------------
id=ctr-boot-test-1
gpid=$(g sh -c 'setpriv --reuid=65534 --regid=65534 --clear-groups /usr/local/bin/threaded-sleeper 3 </dev/null >/dev/null 2>&1 & echo $!')
sleep 0.5
hpid=""
for p in $(host_pids_named threaded-sleepe); do
    [ "$(awk '/^NSpid:/ { print $NF }' "/proc/$p/status")" = "$gpid" ] && hpid=$p
done
[ -n "$hpid" ] || fail "the sleeper (guest pid $gpid) is not running"
[ "$(stat -c %u "/proc/$hpid")" = 65534 ] || fail "the sleeper does not run as nobody"
g mkdir -p "/run/bundles/$id"
g sh -c "echo '{\"ociVersion\": \"1.0.2\", \"linux\": {}}' > /run/bundles/$id/config.json"
hookjson="{\"ociVersion\":\"1.0.2\",\"id\":\"$id\",\"status\":\"created\",\"pid\":$gpid,\"bundle\":\"/run/bundles/$id\"}"
hook=$(g sh -c "sed -n 's/.*\"path\": \"\\(.*\\)\".*/\\1/p' /usr/share/containers/oci/hooks.d/50-rdtmon-create.json")
[ "$hook" = /usr/libexec/rdtmon/rdtmon-hook ] || fail "hooks.d config names '$hook'"
printf '%s' "$hookjson" | g "$hook" create --fail-closed 2>"$work/hook.err" \
    || { cat "$work/hook.err" >&2; fail "rdtmon-hook create --fail-closed failed"; }
[ -d "$emu/mon_groups/$id" ] || fail "no group $id in the emulator"
want=$(ls "/proc/$hpid/task" | sort -n)
got=$(sort -n "$emu/mon_groups/$id/tasks")
[ "$(printf '%s\n' "$want" | wc -l)" -ge 4 ] || fail "the sleeper has fewer than 4 threads"
# shellcheck disable=SC2086
[ "$want" = "$got" ] || fail "tasks of $id: got '$(printf '%s ' $got)', want every thread '$(printf '%s ' $want)'"
out=$(g busctl call org.rdtmon1 /org/rdtmon1 org.rdtmon1.Manager ListGroups)
case "$out" in *"\"$id\" \"$guest_resctrl/mon_groups/$id\" $gpid "*) ;; *) fail "ListGroups does not show $id: $out" ;; esac
say "ok: installed hook made $id with all $(printf '%s\n' "$want" | wc -l) threads (host tids) of a uid-65534 process; busctl lists it"

# --- 4. the installed policy refuses CreateGroup to nobody -----------------------------------
# dbus-send prints the error's name and message: the bus's own refusal reads "Rejected
# send message" (the service's in-code check, which would also deny, says otherwise).
if out=$(g setpriv --reuid=65534 --regid=65534 --clear-groups dbus-send --system --print-reply \
        --dest=org.rdtmon1 /org/rdtmon1 org.rdtmon1.Manager.CreateGroup \
        string:ctr-by-nobody "uint32:$gpid" 2>&1); then
    fail "CreateGroup as nobody succeeded: $out"
fi
case "$out" in
    *org.freedesktop.DBus.Error.AccessDenied*"Rejected send message"*) ;;
    *) fail "CreateGroup as nobody was not refused by the bus policy: $out" ;;
esac
printf '%s\n' "$out" | sed 's/^/    /'
[ ! -e "$emu/mon_groups/ctr-by-nobody" ] || fail "a group was made for nobody"
out=$(g setpriv --reuid=65534 --regid=65534 --clear-groups \
        busctl call org.rdtmon1 /org/rdtmon1 org.rdtmon1.Manager ListGroups 2>&1) \
    || fail "ListGroups as nobody: $out"
case "$out" in *"\"$id\""*) ;; *) fail "ListGroups as nobody: $out" ;; esac
say "ok: CreateGroup as nobody rejected by the installed policy; ListGroups allowed"

# --- 5. restart keeps the group owned and listed ---------------------------------------------
g systemctl restart rdtmond
[ "$(g systemctl is-active rdtmond)" = active ] || fail "rdtmond not active after restart"
main2=$(g systemctl show -p MainPID --value rdtmond)
[ "$main2" != "$main" ] || fail "MainPID unchanged after restart"
out=$(g busctl call org.rdtmon1 /org/rdtmon1 org.rdtmon1.Manager ListGroups)
case "$out" in *"\"$id\""*) ;; *) fail "$id not listed after restart: $out" ;; esac
[ "$(sort -n "$emu/mon_groups/$id/tasks")" = "$want" ] || fail "tasks of $id changed across the restart"
# Owned: the installed delete hook removes it (RemoveGroup succeeds only for owned groups).
# poststop comes after the container's end; the hook does not wait for the removal.
g sh -c "kill -9 $gpid; while kill -0 $gpid 2>/dev/null; do sleep 0.05; done"
printf '%s' "${hookjson/created/stopped}" | g "$hook" delete --fail-closed 2>"$work/hook.err" \
    || { cat "$work/hook.err" >&2; fail "rdtmon-hook delete after restart failed"; }
for _ in $(seq 50); do [ -e "$emu/mon_groups/$id" ] || break; sleep 0.1; done
[ ! -e "$emu/mon_groups/$id" ] || fail "$id still in resctrl after the delete hook"
say "ok: restart kept $id listed and owned (the delete hook removed it afterwards)"

# --- 6. the journal -----------------------------------------------------------------------------
journal=$(g journalctl -u rdtmond --no-pager -o cat)
printf '%s\n' "$journal" | grep -F "$id" | grep -qi creat || fail "no journal line about creating $id"
printf '%s\n' "$journal" | grep -F "$id" | grep -qi remov || fail "no journal line about removing $id"
say "ok: journalctl -u rdtmond shows $id:"
printf '%s\n' "$journal" | grep -F "$id" | sed 's/^/    /'

# The hook's own lines reach the journal too (runc and crun drop a successful hook's stderr).
optout="$id-optout"
printf '%s' "{\"ociVersion\":\"1.0.2\",\"id\":\"$optout\",\"status\":\"created\",\"pid\":$gpid,\"bundle\":\"/run/bundles/$id\",\"annotations\":{\"org.rdtmon.monitoring\":\"false\"}}" \
    | g "$hook" create 2>/dev/null || fail "rdtmon-hook create with the opt-out annotation failed"
[ ! -e "$emu/mon_groups/$optout" ] || fail "an opted-out container got a group"
seen=""
for _ in $(seq 50); do
    seen=$(g journalctl -t rdtmon-hook "CONTAINER_ID=$optout" --no-pager -o cat 2>/dev/null || true)
    [ -n "$seen" ] && break
    sleep 0.1
done
case "$seen" in *"container $optout: skipped create"*) ;; *) fail "the hook's skip line is not in the journal: '$seen'" ;; esac
say "ok: journalctl -t rdtmon-hook CONTAINER_ID=$optout: $seen"

# --- 7. the installed rdtmonctl selftest passes against the emulator and leaves nothing ---------
st=$(g rdtmonctl selftest --json 2>&1) || fail "rdtmonctl selftest failed: $st"
printf '%s' "$st" | jq -e '.passed and .left_behind == [] and .node.emulated
    and ([.checks[] | select(.result == "fail")] | length) == 0' >/dev/null \
    || fail "rdtmonctl selftest did not pass: $st"
if ls "$emu/mon_groups" | grep -q '^rdtmon-selftest-'; then
    fail "rdtmonctl selftest left a group: $(ls "$emu/mon_groups")"
fi
say "ok: the installed rdtmonctl selftest passed $(printf '%s' "$st" | jq '[.checks[] | select(.result == "pass")] | length') checks and left no group"

# --- 8. stop leaves no process -------------------------------------------------------------------
g systemctl stop rdtmond
[ "$(g systemctl is-active rdtmond || true)" = inactive ] || fail "rdtmond is not inactive after stop"
left=$(host_pids_named rdtmond)
[ -z "$left" ] || fail "rdtmond processes left after stop: $left"
say "ok: systemctl stop left no rdtmond process"

say "PASS"
