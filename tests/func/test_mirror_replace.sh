#!/usr/bin/env bash
# A mirror leg replaced by an empty disk at the same address (two 32M
# file-backed legs, --resync-rate 8M so the copy can be watched): data is
# written (fio crc32c), leg 1's export is stopped, the mirror marks it dead,
# its file is replaced by an empty sparse file of the same size and the
# export restarted on the same port. The leg answers but carries no label of
# this storage: it is not used (state foreign) until the administrator takes
# the new disk with dst suspend + dst resume --remote (which labels it); the
# mirror then copies every region: while it copies, `dst show` says AS with progress,
# percent, MiB/s and ETA, reads go to leg 0 only, and a write lands on both
# legs; then regions_copied grew by the number of regions, health AA, the new
# leg carries the storage's header, the legs are byte-identical, and fio
# verifies the old data with reads from both legs.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
. "$TESTS_DIR/func/lib_mirror.sh"
need fio qemu-io nbdinfo

step "mirror mr over two 32M exports, --resync-rate 8M; fio writes data"
mr_legs mr 32M 32M
mr_mirror mr --resync-rate 8M
L1=${LEG_NODE[1]}
NREG=32
assert_eq "$(show_attr mr sync)" "$NREG/$NREG regions" "regions of mr"
st_fio_verify "$M_URI" 2 12M || fail "fio verify through mr"
mr_settle mr
mr_legs_identical "after fio"
uuid=$(sed -n 's/^uuid = //p' "$DST_STATE_DIR/mr.conf")

step "stop leg 1's export (--force: the mirror is its client); the mirror marks it dead"
mr_log_mark mr
stop_export mr-leg1 --force
mr_wait mr health AD 5 "health after leg 1's export stopped"

step "replace leg 1's file by an empty sparse file of the same size; restart the export"
leg_blank 1
assert_eq "$(du -k "${LEG_IMG[1]}" | cut -f1)" 0 "blocks of the new, empty leg file"
c0=$(mr_copied mr)
leg_restart 1
mr_leg_refused mr 1 10
assert_eq "$(show_attr mr health)" AD "health while the new disk is not taken"
mr_leg_take mr 1
mr_wait_log mr "mirror: leg $L1 came back with generation 0, older than its [0-9]*: copying it whole" 10 \
	"the new disk is copied whole"
mr_wait_log mr "mirror: resync of $NREG regions starts" 5 "a full resync starts"

step "while it copies (8 MiB/s): AS, progress in dst show, reads from leg 0 only, writes to both"
assert_eq "$(show_attr mr health)" AS "health during the full resync"
assert_eq "$(show_attr mr "$L1/leg")" S "leg letter of $L1 during the resync"
prog=$(show_attr mr resync/progress)
pct=$(show_attr mr resync/percent)
mibs=$(show_attr mr resync/mib_s)
eta=$(show_attr mr resync/eta_s)
note "progress $prog, $pct %, $mibs MiB/s, eta $eta s"
[[ $prog =~ ^([0-9]+)/$NREG\ regions$ ]] || fail "resync/progress '$prog'"
assert_le "${BASH_REMATCH[1]}" $((NREG - 1)) "regions done early in the resync"
assert_le "$pct" 99 "resync/percent early in the resync"
[ -n "$mibs" ] && [ -n "$eta" ] || fail "no resync/mib_s or resync/eta_s during the resync"
r1=$(show_attr mr "$L1/io/reads")
r0=$(show_attr mr "${LEG_NODE[0]}/io/reads")
st_fio_verify "$M_URI" 2 12M --verify_only=1 >/dev/null || fail "fio verify_only during the resync"
assert_eq "$(show_attr mr "$L1/io/reads")" "$r1" "reads sent to the syncing leg"
assert_ge "$(show_attr mr "${LEG_NODE[0]}/io/reads")" $((r0 + 1)) "reads on leg 0 during the resync"
# Writes to regions 24 and 31 (past fio's 0..24M), before the copy gets there.
MR_WRITTEN=()
mr_writes "$M_URI" $((24 * MiB + 8192)) $((31 * MiB))
assert_eq "$(show_attr mr health)" AS "health (the resync is still going)"
# The progress moves.
sleep 1
prog2=$(show_attr mr resync/progress)
note "progress after 1 s: $prog2"
[ "$prog2" != "$prog" ] || [ "$(show_attr mr health)" = AA ] || fail "resync/progress did not move in 1 s: $prog2"

step "the full resync ends: every region copied, health AA, legs identical"
mr_wait mr health AA 20 "health after the full resync"
copied=$(($(mr_copied mr) - c0))
assert_eq "$copied" "$NREG" "regions copied to the replaced leg (regions_copied delta)"
mr_log_has mr "mirror: leg $L1 in sync again: $NREG regions copied" "log: in sync again"
# --resync-rate 8M: 32 MiB take about 4 s.
secs=$(sed -n "s/.*leg $L1 in sync again: $NREG regions copied in \([0-9.]*\) s.*/\1/p" "$DST_STATE_DIR/mr.log" | tail -1)
awk -v s="$secs" 'BEGIN { exit !(s >= 3.0 && s <= 15) }' ||
	fail "the full resync took $secs s; with --resync-rate 8M it should take about 4 s"
[ -z "$(show_attr mr resync/progress)" ] || fail "resync/progress still shown after the resync"
mr_legs_identical "after the full resync"
assert_eq "$(tail -c 4096 "${LEG_IMG[1]}" | head -c 8)" DSTLABL1 "label magic on the new leg"
assert_eq "$(tail -c 4096 "${LEG_IMG[1]}" | head -c 32 | tail -c 16 | od -An -tx1 | tr -d ' \n')" "$uuid" \
	"the storage's UUID on the new leg"
mr_check_written "$M_URI" "writes during the full resync"

step "the old data verifies, read from both legs"
mr_settle mr
r1=$(show_attr mr "$L1/io/reads")
st_fio_verify "$M_URI" 2 12M --verify_only=1 || fail "fio verify_only after the full resync"
assert_ge "$(show_attr mr "$L1/io/reads")" $((r1 + 1)) "reads on the replaced leg after the resync"

step "stop"
assert_eq "$(export_pid mr)" "$M_PID" "the storage daemon is the same process"
assert_eq "$(show_attr mr io/errors)" 0 "io errors on the storage"
st_stop mr
stop_export mr-leg0
stop_export mr-leg1
echo "PASS"
