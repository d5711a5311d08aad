#!/bin/bash
# demo-runc.sh (what test/demo.sh runs) works against the fixture and shows the group.
. "$(dirname "$0")/lib.sh"
probe_runtime runc
fixture -- "$RUNC_ROOT"
push_cleanup 'cleanup_runc_root "$RUNC_ROOT"'
rc=0
DBUS_SYSTEM_BUS_ADDRESS=$BUS_ADDR RESCTRL_MNT=$MNT RUNC_ROOT=$RUNC_ROOT \
  sh "$(dirname "$0")/demo-runc.sh" >"$WORK/demo.out" 2>&1 || rc=$?
cat "$WORK/demo.out" >&2
[ "$rc" = 0 ] || fail "demo-runc.sh exited $rc"
grep -q '^mon_groups/demo-runc-[0-9]*/tasks: [0-9]* [0-9]* [0-9]* [0-9]* $' "$WORK/demo.out" ||
  fail "the demo did not show the container's group with init + 3 children"
[ -z "$(ls "$MNT/mon_groups")" ] || fail "the demo left a group behind"
[ -z "$(runc_ list -q)" ] || fail "the demo left a container behind"
pass "demo-runc.sh ran one runc container through the hook"
