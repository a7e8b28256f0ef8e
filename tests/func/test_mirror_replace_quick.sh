#!/usr/bin/env bash
# A mirror leg replaced quickly: right after a tick of the mirror's
# once-a-second timer, its export is killed, its file replaced by an empty
# sparse file of the same size and the export restarted on the same port at
# once (within the second, so the next tick may find it up again), with no
# client IO meanwhile; three tries. The node reconnects by itself, but its
# new disk has no label of this storage: the leg is not used (state
# foreign) and the mirror never serves the empty leg's zeroes to a client:
# after the restart, concurrent reads of the data written before (qemu-io
# aio_read with -P) return that data. Then the administrator takes the new
# disk (dst suspend + dst resume --remote, which labels it): it is copied
# whole and the legs end up byte-identical with regions_copied grown by the
# number of regions.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
. "$TESTS_DIR/func/lib_mirror.sh"
need qemu-io nbdinfo

step "mirror mq over two 16M exports; 0x5a written over the whole device"
mr_legs mq 16M 16M
mr_mirror mq
L1=${LEG_NODE[1]}
NREG=16
qio "$M_URI" "write -P 0x5a 0 $M_SIZE" "flush"
mr_settle mq
mr_legs_identical "after the writes"

# tick_sync: return right after a tick of the mirror's once-a-second timer:
# a 4K write to the last region sets its bit; the tick after the next one
# sweeps it clean, and we see that within a few tens of ms.
tick_sync() {
	qio "$M_URI" "write -P 0x5a $((M_SIZE - 4096)) 4096"
	for _ in $(seq 150); do
		[ "$(show_attr mq bitmap/dirty)" = 0 ] && return 0
		sleep 0.01
	done
	fail "the bitmap sweep did not clear the last region in 3 s"
}

# Three tries: a try whose outage a tick happened to see is an ordinary
# dead-leg replacement; one that falls between two ticks is the case here.
for try in 1 2 3; do
	step "try $try: right after a tick, kill -9 leg 1's export, replace its file, restart it"
	c0=$(mr_copied mq)
	r0=$(show_attr mq "$L1/reconnects")
	mr_log_mark mq
	tick_sync
	t0=$(date +%s%3N)
	leg_kill9 1
	leg_blank 1
	leg_restart 1
	mr_leg_refused mq 1 10
	note "leg 1 answered and was refused $(($(date +%s%3N) - t0)) ms after the kill"
	assert_eq "$(show_attr mq "$L1/reconnects")" "$r0" "$L1/reconnects (never back on the blank disk)"
	assert_eq "$(show_attr mq "$L1/error")" "no label: a blank disk" "why leg 1 is not used"
	if grep -q "mirror: leg $L1 .* failed" <<<"$(tail -n +$((MR_LOG_MARK + 1)) "$DST_STATE_DIR/mq.log")"; then
		note "a tick saw the leg down (marked dead)"
	else
		note "the leg was down and back between two ticks, never marked dead"
	fi
	sleep 2 # two more ticks
	note "2 s later: health $(show_attr mq health), $L1/leg $(show_attr mq "$L1/leg"), regions copied $(($(mr_copied mq) - c0))"

	step "try $try: concurrent reads return the data, never the new leg's zeroes"
	cmds=()
	for i in $(seq 0 15); do cmds+=(-c "aio_read -P 0x5a $((i % 8 * MiB)) $MiB"); done
	rc=0
	qemu-io -f raw -r "${cmds[@]}" -c aio_flush "$M_URI" >"$T_TMP/reads.out" 2>&1 || rc=$?
	note "reads so far: leg 0 $(show_attr mq "${LEG_NODE[0]}/io/reads"), leg 1 $(show_attr mq "$L1/io/reads")"
	if [ $rc -ne 0 ] || grep -q "Pattern verification failed" "$T_TMP/reads.out"; then
		grep -m3 -E "failed|error" "$T_TMP/reads.out" >&2
		fail "try $try: reads through mq after the quick replacement did not return the data (qemu-io status $rc): the replaced leg served its zeroes"
	fi

	step "try $try: the new disk taken with dst resume is copied whole"
	mr_leg_take mq 1
	mr_wait_log mq "mirror: leg $L1 came back with generation 0" 5 "the new disk is copied whole"
	mr_wait mq health AA 20 "health after the full resync"
	assert_eq $(($(mr_copied mq) - c0)) "$NREG" "regions copied to the replaced leg"
	mr_legs_identical "after the quick replacement"
done

step "stop"
st_stop mq
stop_export mq-leg0
stop_export mq-leg1
echo "PASS"
