#!/usr/bin/env bash
# `dst stop` of a mirror in the middle of a full resync (two 1G file-backed
# legs, no --resync-rate, so several region reads or writes are almost
# always in flight; 1G so that the copy, about 1 s, is still running when
# the stop comes): the daemon stops cleanly (no sanitizer report, no crash, its pid
# file gone), and `dst start` later finishes the job: leg 1 is copied whole
# again (its label, written when dst resume took the new disk, still has
# generation 0: it was never in sync), health AA, the legs byte-identical,
# the data intact.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
. "$TESTS_DIR/func/lib_mirror.sh"
need qemu-io nbdinfo

step "mirror mt over two 1G exports; 0x6b over 200M"
mr_legs mt 1G 1G
mr_mirror mt
L1=${LEG_NODE[1]}
qio "$M_URI" "write -P 0x6b 0 200M" "flush"
mr_settle mt

step "replace leg 1 by an empty file: a full resync of 1024 regions starts"
leg_kill9 1
mr_wait mt health AD 5 "health after leg 1 died"
leg_blank 1
mr_log_mark mt
leg_restart 1
mr_leg_refused mt 1 10
mr_leg_take mt 1
mr_wait_log mt "mirror: resync of 1024 regions starts" 10 "the full resync starts"

step "dst stop mt while it copies"
prog=$(show_attr mt resync/progress)
note "progress at the stop: $prog"
[ -n "$prog" ] || fail "the resync was over before the stop (no resync/progress)"
st_stop mt
mr_log_has mt "stopped" "log: stopped"

step "dst start mt: leg 1 is copied whole again"
mr_log_mark mt
st_start mt
M_PID=$ST_PID M_URI=$ST_URI
mr_wait mt health AA 60 "health after the restart"
mr_log_has mt "leg $L1 was never in sync: it is copied whole" "log: leg 1 copied whole"
mr_legs_identical "after the resync"
qio "$M_URI" "read -P 0x6b 0 200M"

step "stop"
st_stop mt
stop_export mt-leg0
stop_export mt-leg1
echo "PASS"
