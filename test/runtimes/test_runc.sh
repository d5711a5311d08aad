#!/bin/bash
# runc drives rdtmon-hook through the shipped hooks.d files: createRuntime makes
# mon_groups/<id> holding the container, poststop (runc delete) removes it.
. "$(dirname "$0")/lib.sh"
probe_runtime runc
fixture -- "$RUNC_ROOT"
push_cleanup 'cleanup_runc_root "$RUNC_ROOT"'
start_signal_monitor
lifecycle runc
