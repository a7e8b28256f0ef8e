#!/usr/bin/env bash
# A mirror started with a leg that cannot be reached (two 16M file-backed
# legs): it starts without the leg (health AD, a log line says so), serves
# reads and writes from the other, and when the leg's export comes back the
# leg is checked and gets only the regions written meanwhile (legs identical
# after). Refused, with one clear line and nothing started: a start where
# the only reachable leg is the one that was NOT in sync when the mirror
# stopped (it would serve old data), a start with no leg reachable, and the
# first start of a new mirror with a leg missing.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
. "$TESTS_DIR/func/lib_mirror.sh"
need qemu-io

step "mirror md over two 16M legs; data written; stopped; leg 1's export stopped"
mr_legs md 16M 16M
mr_mirror md
qio "$M_URI" "write -P 0x31 0 3M"
mr_settle md
st_stop md
stop_export md-leg1

step "dst start with leg 1 down: starts without it"
dst_ok start md >/dev/null
track_export md
M_PID=$(export_pid md)
assert_eq "$(show_attr md health)" AD "health when started without leg 1"
grep -q "leg ${LEG_NODE[1]} .*cannot be reached" "$DST_STATE_DIR/md.log" ||
	fail "no log line says the mirror started without ${LEG_NODE[1]}"
M_URI=$(st_uri md)
qio "$M_URI" "read -P 0x31 0 3M" "write -P 0x32 8M 2M"

step "leg 1 comes back: checked, only the regions written meanwhile copied"
c0=$(mr_copied md)
leg_restart 1
mr_wait md health AA 20 "after leg 1 answered"
assert_eq $(($(mr_copied md) - c0)) 2 "regions copied to leg 1 (8M+2M: two 1M regions)"
mr_legs_identical "after the degraded start"
qio "$M_URI" "read -P 0x32 8M 2M"

step "refused: only the leg that was not in sync can be reached"
# Leg 0 dies while the mirror runs: leg 1 alone is in sync when it stops.
leg_kill9 0
qio "$M_URI" "write -P 0x33 4M 1M"
mr_wait md health DA 10 "after leg 0 died"
st_stop md
leg_restart 0
stop_export md-leg1
rc=0
out=$("$DST" start md 2>&1) || rc=$?
note "dst start md -> $rc: $out"
[ $rc -ne 0 ] || fail "the mirror started from the leg that missed writes"
assert_contains "$out" "old data" "why the start was refused"
[ -z "$(export_pid md 2>/dev/null)" ] || ! pid_alive "$(export_pid md)" || fail "a daemon runs after the refused start"

step "refused: no leg reachable; and a new mirror with a leg missing"
stop_export md-leg0
rc=0
out=$("$DST" start md 2>&1) || rc=$?
[ $rc -ne 0 ] || fail "the mirror started with no leg reachable"
assert_contains "$out" "no leg" "why the start was refused"
truncate -s 16M "$T_TMP/n0.img" "$T_TMP/n1.img"
st_export nn0 16M
N0=$URI
st_export nn1 16M
N1=$URI
st_create fresh mirror
st_add fresh --remote "$N0"
st_add fresh --remote "$N1"
stop_export nn1
rc=0
out=$("$DST" start fresh 2>&1) || rc=$?
[ $rc -ne 0 ] || fail "a new mirror started with a leg missing"
assert_contains "$out" "every leg" "why the new mirror's start was refused"

step "the stale leg back with the good one: starts, resyncs from the good one"
leg_restart 0
leg_restart 1
dst_ok start md >/dev/null
mr_wait md health AA 20 "after both legs are back"
qio "$(st_uri md)" "read -P 0x33 4M 1M" "read -P 0x32 8M 2M"
mr_legs_identical "after the refused starts"
st_stop md
stop_export md-leg0
stop_export md-leg1
stop_export nn0
echo "PASS"
