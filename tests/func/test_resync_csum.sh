#!/usr/bin/env bash
# A whole resync of a leg that is 99% identical moves only what differs.
# Two 64 MiB data files: A (pseudo-random) and B, a copy of A with 1% of its
# 4 KiB blocks inverted, scattered. A new mirror (no --assume-clean: its
# initial sync copies leg 0 whole to leg 1) over:
#  - two dst exports (A on 127.0.0.1, B on another host: a network
#    namespace, when the test runs as root): leg 1's export receives at most
#    3% of its size as written data (its io/write_bytes) and is read as data
#    not at all beyond that; resync/bytes_same is the 99% that matched and
#    resync/bytes_copied at least the changed blocks; leg 0's export, the
#    source, sends at most 5% of its size as data (checked last: the issue's
#    "moves at most a few percent of its bytes as data");
#  - a dst export (A) and nbdkit's file plugin (B): no checksums there, the
#    data fallback copies everything;
#  - two dst exports with `dst set NAME --csum off` (saved in the config):
#    everything copied, leg 1's export receives it all.
# Every time, the legs' data areas are then identical and equal to A.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
. "$TESTS_DIR/func/lib_mirror.sh"
. "$TESTS_DIR/func/lib_netns.sh"
. "$TESTS_DIR/func/lib_verify.sh"
need nbdinfo

# Leg 1 of the checksum resync on another host where we may make one.
vf_hosts rs 249 rc

SIZE=$((64 * MiB))
vf_data "$T_TMP/A.bin" "$SIZE" 41
cp "$T_TMP/A.bin" "$T_TMP/B.bin" || fail "cp"
NCH=$(vf_scatter "$T_TMP/B.bin" "$SIZE" 10 42)
note "B: $NCH of $((SIZE / BLK)) blocks of A changed"
assert_ge "$NCH" $((SIZE / BLK / 100)) "blocks changed in B"

# leg_file NAME DATA: a leg's backing file $T_TMP/NAME.img: DATA and 4 KiB
# for the label.
leg_file() {
	{ cp "$2" "$T_TMP/$1.img" && truncate -s +4096 "$T_TMP/$1.img"; } || fail "making $1.img"
	echo "$T_TMP/$1.img"
}

# legs_dst STORAGE [ns]: LEG_* for two dst exports, of A and of B; with ns,
# B's on the other host (vf_leg_export).
legs_dst() {
	local ns=$VF_NS
	LEG_IMG=() LEG_URI=() LEG_EXPORT=() LEG_PORT=()
	VF_NS=0
	vf_leg_export 0 "$1-leg0" "$(leg_file "$1-leg0" "$T_TMP/A.bin")"
	[ "${2:-}" = ns ] && VF_NS=$ns
	vf_leg_export 1 "$1-leg1" "$(leg_file "$1-leg1" "$T_TMP/B.bin")"
	VF_NS=$ns
}

# synced WHAT: the initial sync is over; the legs are A.
synced() {
	mr_settle "$M_NAME"
	MR_LOG_MARK=0
	mr_log_has "$M_NAME" "mirror: leg ${LEG_NODE[1]} in sync again" "$1: the end of the initial sync"
	mr_legs_identical "$1"
	cmp -n "$SIZE" "$T_TMP/A.bin" "${LEG_IMG[1]}" || fail "$1: leg 1 is not A"
	SAME=$(show_attr "$M_NAME" resync/bytes_same)
	COPIED=$(show_attr "$M_NAME" resync/bytes_copied)
	note "$1: resync/bytes_same $SAME, resync/bytes_copied $COPIED"
}

step "mirror rc over dst exports of A and B: the initial sync copies what differs"
legs_dst rc ns
w0=$(export_attr rc-leg1 io/write_bytes) r0=$(export_attr rc-leg1 io/read_bytes)
s0=$(export_attr rc-leg0 io/read_bytes)
MR_INITIAL_SYNC=1 mr_mirror rc
MR_LOG_MARK=0
mr_log_has rc "mirror: a new mirror: copying ${LEG_NODE[0]} to the other legs" "the initial sync"
assert_eq "$M_SIZE" "$SIZE" "size of rc"
synced "checksum resync"
w=$(($(export_attr rc-leg1 io/write_bytes) - w0)) r=$(($(export_attr rc-leg1 io/read_bytes) - r0))
note "leg 1's export: $w bytes written, $r bytes read during the sync ($((w * 1000 / SIZE)) per mille written)"
assert_ge "$w" $((NCH * BLK)) "bytes written to leg 1 (at least the changed blocks)"
assert_le "$w" $((SIZE * 3 / 100)) "bytes written to leg 1 by a checksum resync"
assert_le "$r" $((SIZE * 3 / 100)) "bytes read as data from leg 1 by a checksum resync"
assert_ge "$COPIED" $((NCH * BLK)) "resync/bytes_copied (at least the changed blocks)"
assert_le "$COPIED" $((SIZE * 3 / 100)) "resync/bytes_copied"
assert_ge "$SAME" $((SIZE - SIZE * 3 / 100)) "resync/bytes_same"
assert_le "$SAME" $((SIZE - NCH * BLK)) "resync/bytes_same (the changed blocks are not the same)"
SRC_READ=$(($(export_attr rc-leg0 io/read_bytes) - s0))
note "leg 0's export (the source) sent $SRC_READ bytes as data ($((SRC_READ * 1000 / SIZE)) per mille)"
st_stop rc
stop_export rc-leg0
stop_export rc-leg1

step "mirror rk over a dst export of A and nbdkit (file plugin) of B: the data fallback"
need nbdkit
LEG_IMG=() LEG_URI=() LEG_EXPORT=()
LEG_IMG[0]=$(leg_file rk-leg0 "$T_TMP/A.bin")
LEG_IMG[1]=$(leg_file rk-leg1 "$T_TMP/B.bin")
start_export rk-leg0 "${LEG_IMG[0]}"
LEG_URI[0]=$URI LEG_EXPORT[0]=rk-leg0
st_nbdkit file "${LEG_IMG[1]}"
LEG_URI[1]=$NBDKIT_URI
MR_INITIAL_SYNC=1 mr_mirror rk
synced "data resync to nbdkit"
assert_eq "$COPIED" "$SIZE" "resync/bytes_copied to an nbdkit leg"
assert_eq "$SAME" 0 "resync/bytes_same with an nbdkit leg"
st_stop rk
stop_export rk-leg0
kill_pid "$NBDKIT_PID"

step "mirror ro over dst exports of A and B with dst set --csum off: everything copied"
legs_dst ro
w0=$(export_attr ro-leg1 io/write_bytes)
st_create ro mirror
st_add ro --remote "${LEG_URI[0]}"
st_add ro --remote "${LEG_URI[1]}"
out=$(dst set ro --csum off) || fail "dst set ro --csum off"
note "$out"
grep -qx 'csum = off' "$DST_STATE_DIR/ro.conf" || fail "no 'csum = off' line in ro.conf"
st_start ro --listen "127.0.0.1:$(free_port)"
M_NAME=ro M_URI=$ST_URI M_PID=$ST_PID
M_SIZE=$(show_attr ro bytes)
mr_leg_nodes ro 2
synced "resync with --csum off"
w=$(($(export_attr ro-leg1 io/write_bytes) - w0))
note "leg 1's export: $w bytes written"
assert_ge "$w" "$SIZE" "bytes written to leg 1 with --csum off"
assert_eq "$COPIED" "$SIZE" "resync/bytes_copied with --csum off"
st_stop ro
stop_export ro-leg0
stop_export ro-leg1

step "the checksum resync moved at most a few percent of the source's bytes as data"
assert_le "$SRC_READ" $((SIZE * 5 / 100)) "bytes leg 0's export sent as data during the checksum resync"
echo "PASS"
