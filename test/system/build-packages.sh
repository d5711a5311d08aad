#!/bin/sh
# Builds the .deb (dpkg-buildpackage -b -us -uc) and the .rpm (rpmbuild --nodeps -bb) from
# a temporary copy of the source tree, lints the .deb, and checks what both contain:
#   - every installed file is where design.md's table says (the unit dir is the one
#     pkg-config systemd gives: /lib/systemd/system on bookworm, %_unitdir on rpm);
#   - the two packages ship the same files (with /lib == /usr/lib, merged /usr);
#   - both carry the version of CMakeLists.txt's project(), and so do rdtmond, rdtmonctl
#     and rdtmon-exporter --version;
#   - rdtmond.service is enabled by the .deb's postinst, rdtmon-exporter.service is not.
# The packages are copied to OUT_DIR for the booted-system test.
#   usage: build-packages.sh SRC_DIR OUT_DIR [--check]
#   --check: run the test suites inside the package builds (default: DEB_BUILD_OPTIONS=
#            nocheck and rpmbuild --nocheck, because CI runs the suites itself).
# Nothing is written outside OUT_DIR and a temporary directory, which is removed on exit.
set -eu

src=${1:?usage: $0 SRC_DIR OUT_DIR [--check]}
out=${2:?usage: $0 SRC_DIR OUT_DIR [--check]}
check=no
[ "${3:-}" = --check ] && check=yes
src=$(cd "$src" && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)

for tool in dpkg-buildpackage lintian rpmbuild rpm dpkg-deb; do
    command -v "$tool" >/dev/null || { echo "build-packages: $tool not found (test/setup-deps.sh installs it)" >&2; exit 1; }
done

tmp=$(mktemp -d /tmp/rdtmon-pkg.XXXXXX)
rpm_pid=""
trap '[ -z "$rpm_pid" ] || { kill "$rpm_pid"; wait "$rpm_pid"; } 2>/dev/null; rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

fail() { echo "build-packages: FAIL: $*" >&2; exit 1; }
step() { echo "build-packages: $*"; }

version=$(sed -n 's/^project(rdtmon VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
[ -n "$version" ] || fail "no project(rdtmon VERSION ...) in $src/CMakeLists.txt"
step "version $version (from CMakeLists.txt)"

# A clean copy: no VCS data, no build trees, no earlier package build output.
tree="$tmp/rdtmon-$version"
mkdir "$tree"
tar -C "$src" --exclude-vcs --exclude='./build' --exclude='./build-*' --exclude='./obj-*' \
    --exclude='./debian/rdtmon' --exclude='./debian/.debhelper' --exclude='./debian/tmp' \
    --exclude='./debian/files' --exclude='./debian/*.substvars' --exclude='./debian/*.log' \
    --exclude='./debian/debhelper-build-stamp' -cf - . | tar -C "$tree" -xf -
mkdir -p "$tmp/rpmbuild/SOURCES"
tar -C "$tmp" -czf "$tmp/rpmbuild/SOURCES/rdtmon-$version.tar.gz" "rdtmon-$version"

# --- rpm, in the background -----------------------------------------------------------------
# The two package builds share nothing but the source tarball, and each spends part of its
# time on one core (configure, install, debhelper, lintian, rpm's scriptlets): side by
# side they take less time than one after the other. The rpm is checked after the deb.
step "rpmbuild --nodeps -bb (check: $check), beside the deb"
set -- --define "_topdir $tmp/rpmbuild" --define "rdtmon_version $version"
[ "$check" = yes ] || set -- "$@" --nocheck --without check
(
    start=$(date +%s)
    rpmbuild --nodeps -bb "$@" "$tree/rpm/rdtmon.spec" >"$tmp/rpm.log" 2>&1
    echo $(( $(date +%s) - start )) >"$tmp/rpm.seconds"
) &
rpm_pid=$!

# --- deb -----------------------------------------------------------------------------------
if [ "$check" = yes ]; then
    deb_opts=""
else
    deb_opts="nocheck"
fi
step "dpkg-buildpackage -b -us -uc (DEB_BUILD_OPTIONS=$deb_opts) in $tree"
start=$(date +%s)
if ! (cd "$tree" && DEB_BUILD_OPTIONS="$deb_opts" dpkg-buildpackage -b -us -uc -j2) \
        >"$tmp/deb.log" 2>&1; then
    tail -n 80 "$tmp/deb.log" >&2
    fail "dpkg-buildpackage failed"
fi
step "deb built in $(( $(date +%s) - start )) s"
if [ "$check" = yes ]; then
    grep -E '^(100% tests passed|[0-9]+% tests passed)' "$tmp/deb.log" || fail "no ctest summary in the deb build log"
fi
deb=$(ls "$tmp"/rdtmon_"$version"_*.deb 2>/dev/null | head -n 1)
[ -n "$deb" ] || fail "no rdtmon_${version}_*.deb was built"
changes=$(ls "$tmp"/rdtmon_"$version"_*.changes | head -n 1)

step "lintian (fails on errors and on warnings that are not overridden with a reason)"
if ! lintian --fail-on error,warning --display-info --tag-display-limit 0 "$changes" >"$tmp/lintian.log" 2>&1; then
    cat "$tmp/lintian.log" >&2
    fail "lintian"
fi
sed 's/^/  lintian: /' "$tmp/lintian.log"

# --- rpm (started above) -------------------------------------------------------------------
rpm_rc=0
wait "$rpm_pid" || rpm_rc=$?
rpm_pid=""
if [ "$rpm_rc" != 0 ]; then
    tail -n 80 "$tmp/rpm.log" >&2
    fail "rpmbuild failed"
fi
step "rpm built in $(cat "$tmp/rpm.seconds") s"
if [ "$check" = yes ]; then
    grep -E '[0-9]+% tests passed' "$tmp/rpm.log" || fail "no ctest summary in the rpm build log"
fi
rpmfile=""
for f in "$tmp"/rpmbuild/RPMS/*/rdtmon-"$version"-1*.rpm; do
    [ -f "$f" ] && rpmfile=$f
done
[ -n "$rpmfile" ] || fail "no rdtmon-$version-1*.rpm was built"

# --- contents ------------------------------------------------------------------------------
# Files only (directories are packaging detail), /lib -> /usr/lib (merged /usr), and no
# distribution-generated docs (changelog, copyright) - the example config stays.
dpkg-deb -c "$deb" | awk '$1 !~ /^d/ { print $6 }' | sed 's|^\./|/|; s|^/lib/|/usr/lib/|' \
    | grep -v -E '^/usr/share/doc/rdtmon/(changelog|copyright)' | sed 's/\.\(gz\|xz\|bz2\|zst\)$//' \
    | sort >"$tmp/deb.files"
rpm -qlp --nodigest --nosignature "$rpmfile" 2>/dev/null | while read -r f; do
    # rpm -ql lists directories owned with %dir too; keep the files.
    case "$f" in
        */hooks.d|*/oci|*/containers|*/libexec/rdtmon|*/share/rdtmon|*/share/rdtmon/prometheus) ;;
        *) echo "$f" ;;
    esac
done | sed 's|^/lib/|/usr/lib/|; s/\.\(gz\|xz\|bz2\|zst\)$//' \
    | grep -v -E '^/usr/lib/\.build-id|^/usr/share/licenses/rdtmon' | sort >"$tmp/rpm.files"
# The license is in both, where each distribution wants it (deb: doc/rdtmon/copyright,
# left out above; rpm: %license); check the rpm's is really there.
rpm -qlp --nodigest --nosignature "$rpmfile" 2>/dev/null | grep -q '^/usr/share/licenses/rdtmon.*/LICENSE$' \
    || fail "the .rpm does not ship LICENSE (%license)"

cat >"$tmp/expected.files" <<EOT
/etc/default/rdtmon-exporter
/usr/bin/rdtmonctl
/usr/lib/systemd/system/rdtmon-exporter.service
/usr/lib/systemd/system/rdtmond.service
/usr/libexec/rdtmon/rdtmon-hook
/usr/sbin/rdtmon-exporter
/usr/sbin/rdtmond
/usr/share/bash-completion/completions/rdtmonctl
/usr/share/containers/oci/hooks.d/50-rdtmon-create.json
/usr/share/containers/oci/hooks.d/50-rdtmon-delete.json
/usr/share/dbus-1/interfaces/org.rdtmon1.Group.xml
/usr/share/dbus-1/interfaces/org.rdtmon1.Manager.xml
/usr/share/dbus-1/system-services/org.rdtmon1.service
/usr/share/dbus-1/system.d/org.rdtmon1.conf
/usr/share/doc/rdtmon/rdtmond.json.example
/usr/share/man/man1/rdtmonctl.1
/usr/share/man/man8/rdtmon-exporter.8
/usr/share/man/man8/rdtmond.8
/usr/share/rdtmon/prometheus/rdtmon-thresholds.rules.yml
/usr/share/rdtmon/prometheus/rdtmon.rules.yml
EOT
sort -o "$tmp/expected.files" "$tmp/expected.files"
diff -u "$tmp/expected.files" "$tmp/deb.files" || fail "the .deb's files differ from design.md's table"
diff -u "$tmp/deb.files" "$tmp/rpm.files" || fail "the .rpm's files differ from the .deb's"
step "both packages ship exactly the $(wc -l <"$tmp/deb.files") files of the table"

debver=$(dpkg-deb -f "$deb" Version)
[ "$debver" = "$version" ] || fail ".deb version $debver != $version"
rpmver=$(rpm -qp --nodigest --nosignature --qf '%{VERSION}' "$rpmfile" 2>/dev/null)
[ "$rpmver" = "$version" ] || fail ".rpm version $rpmver != $version"
mkdir "$tmp/x"
dpkg-deb -x "$deb" "$tmp/x"
got=$("$tmp/x/usr/sbin/rdtmond" --version)
[ "$got" = "rdtmond $version" ] || fail "installed rdtmond --version says '$got', want 'rdtmond $version'"
for prog in usr/bin/rdtmonctl usr/sbin/rdtmon-exporter; do
    said=$("$tmp/x/$prog" --version)
    case "$said" in
        *"$version"*) ;;
        *) fail "installed /$prog --version says '$said', not $version" ;;
    esac
done
step "versions agree: CMake $version, deb $debver, rpm $rpmver, '$got', rdtmonctl, rdtmon-exporter"

# The installed unit and activation file point at the installed binaries, and the unit
# still passes systemd-analyze verify and the exposure limit.
grep -qx 'ExecStart=/usr/sbin/rdtmond --no-mount' "$tmp/x/lib/systemd/system/rdtmond.service" \
    || fail "installed unit does not run /usr/sbin/rdtmond --no-mount"
grep -qx 'SystemdService=dbus-org.rdtmon1.service' "$tmp/x/usr/share/dbus-1/system-services/org.rdtmon1.service" \
    || fail "activation file does not name dbus-org.rdtmon1.service"
for f in "$tmp"/x/usr/share/containers/oci/hooks.d/*.json; do
    grep -q '"path": "/usr/libexec/rdtmon/rdtmon-hook"' "$f" || fail "$f does not run /usr/libexec/rdtmon/rdtmon-hook"
done
sh "$src/test/check-unit.sh" "$tmp/x/lib/systemd/system/rdtmond.service"
exporter_unit="$tmp/x/lib/systemd/system/rdtmon-exporter.service"
grep -qx 'ExecStart=/usr/sbin/rdtmon-exporter $RDTMON_EXPORTER_ARGS' "$exporter_unit" \
    || fail "installed exporter unit does not run /usr/sbin/rdtmon-exporter \$RDTMON_EXPORTER_ARGS"
grep -qx 'EnvironmentFile=-/etc/default/rdtmon-exporter' "$exporter_unit" \
    || fail "installed exporter unit does not read /etc/default/rdtmon-exporter"
sh "$src/test/check-unit.sh" "$exporter_unit"
dpkg-deb -f "$deb" Depends | grep -q 'libmicrohttpd12' || fail "the .deb does not depend on libmicrohttpd (shlibs)"

# Maintainer scripts: systemd enable/start from dh_installsystemd; the D-Bus policy is
# reloaded by dbus's file trigger on /usr/share/dbus-1/system.d (interest-noawait).
dpkg-deb -e "$deb" "$tmp/ctl"
grep -q 'deb-systemd-helper' "$tmp/ctl/postinst" || fail "postinst does not enable the unit"
grep -q '_dh_action=start' "$tmp/ctl/postinst" && grep -q 'deb-systemd-invoke' "$tmp/ctl/postinst" || fail "postinst does not start the unit"
# The exporter opens a TCP port: installed, never enabled by the package. debhelper's
# snippet for a unit it must not enable re-enables it only where it was installed and
# enabled before (an admin's choice), inside "if deb-systemd-helper debian-installed";
# rdtmond's snippet enables it unconditionally on a first install.
grep -q "deb-systemd-helper enable 'rdtmond.service'" "$tmp/ctl/postinst" || fail "postinst does not enable rdtmond.service"
if grep -q "deb-systemd-helper debian-installed 'rdtmond.service'" "$tmp/ctl/postinst"; then
    fail "postinst does not enable rdtmond.service on a first install"
fi
grep -q "deb-systemd-helper debian-installed 'rdtmon-exporter.service'" "$tmp/ctl/postinst" \
    || { cat "$tmp/ctl/postinst" >&2; fail "postinst enables rdtmon-exporter.service on a first install"; }
grep -qx '/etc/default/rdtmon-exporter' "$tmp/ctl/conffiles" || fail "/etc/default/rdtmon-exporter is not a conffile"
rpm -qp --scripts --nodigest --nosignature "$rpmfile" 2>/dev/null >"$tmp/rpm.scripts"
if ! grep -q 'preset.*rdtmon-exporter.service' "$tmp/rpm.scripts" || ! grep -q 'try-restart' "$tmp/rpm.scripts"; then
    cat "$tmp/rpm.scripts" >&2
    fail "rpm scriptlets lack systemd preset/try-restart"
fi

cp "$deb" "$out/rdtmon_${version}.deb"
cp "$rpmfile" "$out/rdtmon-${version}.rpm"
cp "$tmp/lintian.log" "$out/lintian.log"
step "OK: $out/rdtmon_${version}.deb $out/rdtmon-${version}.rpm"
