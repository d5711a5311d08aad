#!/bin/bash
# crun (status "created" at createRuntime) drives rdtmon-hook through the shipped hooks.d
# files. crun refuses this hybrid-cgroup host unless run in a private mount namespace
# with /sys/fs/cgroup/unified unmounted (design.md), which crun_ns does per call.
. "$(dirname "$0")/lib.sh"
probe_runtime crun
fixture -- "$CRUN_ROOT"
push_cleanup 'cleanup_crun_root'
start_signal_monitor
lifecycle crun
