#!/usr/bin/env bash
# A verify survives a leg loss and a restart of its daemon. A 3-leg mirror
# of 16 MiB over file-backed dst exports, written whole, with 3 blocks of
# leg 1 changed behind its back at 3 MiB, 11 MiB and 14 MiB (one run each).
#  - A verify held back by --rate 4M; leg 2's export is killed (-9) in the
#    middle: the verify goes on with legs 0 and 1 (verify/legs_lost 1),
#    finishes (state done) and reports exactly the 3 changed runs.
#  - A verify at --rate 2M; the storage's dstd is killed (-9) in the middle and
#    started again: the log says `verify: resumed at region R of 16`, the
#    verify runs on, finishes and reports the changed runs (those of the
#    regions after R; all 3 when R is below 3).
#  - With two legs in sync left, a verify that loses leg 1 stops (state
#    stopped, the reason says fewer than two legs).
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
. "$TESTS_DIR/func/lib_mirror.sh"
. "$TESTS_DIR/func/lib_verify.sh"
need nbdcopy nbdinfo

step "mirror mf over three 16M exports, written whole; 3 runs of leg 1 changed"
mr_legs mf 16M 16M 16M
mr_mirror mf
vf_data "$T_TMP/data.bin" "$M_SIZE" 23
run_ok "nbdcopy of the data into mf" nbdcopy "$T_TMP/data.bin" "$M_URI"
mr_settle mf
BAD="$((3 * MiB + 4096)) 4096
$((11 * MiB)) 12288
$((14 * MiB + 65536)) 8192"
while read -r o l; do vf_flip "${LEG_IMG[1]}" "$o" "$l"; done <<<"$BAD"

# vf_progress NAME: regions done of the running verify.
vf_progress() {
	local p
	p=$(show_attr "$1" verify/progress)
	[[ $p =~ ^([0-9]+)/ ]] || fail "verify/progress '$p'"
	echo "${BASH_REMATCH[1]}"
}

# vf_wait_regions NAME N SECONDS: until N regions are verified.
vf_wait_regions() {
	for _ in $(seq $(($3 * 5))); do
		[ "$(vf_progress "$1")" -ge "$2" ] && return 0
		sleep 0.2
	done
	fail "the verify of $1 did not reach $2 regions in $3 s: $(show_attr "$1" verify/progress)"
}

step "a slow verify (--rate 4M); leg 2's export killed in the middle: it goes on with two legs"
mr_log_mark mf
vf_start mf --rate 4M
assert_eq "$(show_attr mf verify/state)" running "verify/state after dst verify"
vf_wait_regions mf 4 10
assert_le "$(vf_progress mf)" 12 "regions verified before the kill (--rate 4M)"
leg_kill9 2
st=$(vf_wait mf 30)
assert_eq "$st" "done" "verify/state after a leg loss with 3 legs"
assert_eq "$(show_attr mf verify/legs_lost)" 1 "verify/legs_lost"
assert_eq "$(show_attr mf verify/regions_checked)" 16 "regions checked"
assert_eq "$(show_attr mf verify/mismatch_blocks)" "$(vf_blocks "$BAD")" "mismatch blocks"
vf_expect_ranges "verify across a leg loss" "$BAD" "$(vf_logged mf | cut -d' ' -f1,2)"
mr_wait mf health AAD 10 "health after leg 2's loss"

step "a slow verify; the storage's dstd killed (-9) in the middle and started again: it resumes"
mr_log_mark mf
vf_start mf --rate 2M
vf_wait_regions mf 8 15
at=$(vf_progress mf)
kill -KILL "$M_PID"
wait_gone "$M_PID" 10 || fail "dstd survived kill -9"
note "dstd $M_PID killed at $(grep -c 'verify: mismatch' "$DST_STATE_DIR/mf.log") mismatch lines"
st_start mf
M_PID=$ST_PID
mr_wait_log mf "verify: resumed at region [0-9]+ of 16" 10 "the verify resumes after the restart"
R=$(tail -n +$((MR_LOG_MARK + 1)) "$DST_STATE_DIR/mf.log" | sed -n 's/.*verify: resumed at region \([0-9]*\) of 16.*/\1/p' | tail -1)
note "$at regions were done at the kill; resumed at $R"
# The daemon saves where the run is about once a second (2 MiB/s: 2
# regions); one save may be missed by the tick: 4 regions back.
assert_ge "$R" 2 "the region the verify resumed at ($at were done at the kill)"
assert_le "$R" "$at" "the region the verify resumed at ($at were done at the kill)"
assert_eq "$(show_attr mf verify/state)" running "verify/state after the restart"
st=$(vf_wait mf 30)
assert_eq "$st" "done" "verify/state after the resumed verify"
assert_eq "$(show_attr mf verify/regions_checked)" 16 "regions checked by the resumed verify"
assert_eq "$(show_attr mf verify/mismatch_blocks)" "$(vf_blocks "$BAD")" "mismatch blocks of the resumed verify (before and after the restart)"
# Every changed run is logged once in all (before or after the kill).
vf_expect_ranges "verify across a dstd restart" "$BAD" "$(vf_logged mf | cut -d' ' -f1,2 | sort -u)"
# A region verified again after the restart may be logged twice: say so.
dup=$(vf_logged mf | cut -d' ' -f1,2 | sort | uniq -d)
[ -z "$dup" ] || note "logged twice (before and after the restart): $dup"

step "two legs left: a verify that loses leg 1 stops"
mr_log_mark mf
vf_start mf --rate 4M
vf_wait_regions mf 2 10
leg_kill9 1
st=$(vf_wait mf 30)
assert_eq "$st" stopped "verify/state after losing one of two legs"
reason=$(show_attr mf verify/reason)
note "reason: $reason"
assert_contains "$reason" "fewer than two" "verify/reason"
p=$(vf_progress mf)
assert_le "$p" 15 "regions verified before the verify stopped"

step "stop"
st_stop mf
stop_export mf-leg0
echo "PASS"
