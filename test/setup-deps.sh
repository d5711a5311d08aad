#!/bin/sh
# Installs everything rdtmon needs to build, test, fuzz, package and boot-test on Debian 12.
# Idempotent: packages already present are left alone; apt's lists are refreshed only when
# something is missing.
set -eu

PACKAGES="build-essential cmake pkg-config clang clang-format libclang-rt-14-dev
  libsdbus-c++-dev libsdbus-c++-bin libsystemd-dev nlohmann-json3-dev
  libcli11-dev libmicrohttpd-dev libgnutls28-dev libyaml-cpp-dev libcrypt-dev
  prometheus curl openssl iproute2
  libgtest-dev libgmock-dev libfuse3-dev fuse3
  dbus dbus-daemon systemd util-linux procps jq
  debhelper devscripts lintian fakeroot rpm
  runc crun podman busybox-static
  debootstrap systemd-container"

missing=""
for p in $PACKAGES; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup-deps: missing packages:$missing (run as root to install them)" >&2
    exit 1
  fi
  echo "setup-deps: installing$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $missing
  # Debian's prometheus package enables and starts its own server (port 9090, every
  # interface) where systemd runs. The tests need only its binaries and start their own on
  # loopback, so a server this script brought along is stopped and disabled again.
  case " $missing " in
    *" prometheus "*)
      if [ -d /run/systemd/system ]; then
        echo "setup-deps: disabling the prometheus.service the package started (tests run their own)"
        systemctl disable --now prometheus.service >/dev/null 2>&1 || true
      fi
      ;;
  esac
fi
