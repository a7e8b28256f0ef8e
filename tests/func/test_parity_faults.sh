#!/usr/bin/env bash
# alg_parity 4+2 (six 16M file-backed `dst export` nodes, 64M) under a fio
# crc32c write+verify load that runs while nodes die and come back:
#  - each node in turn is killed (kill -9 of its export): it goes D, dst
#    status says degraded, IO goes on (fio's verify passes read its chunks
#    back rebuilt from the others: reconstructed_reads grows while a node
#    holding data is out); writes made meanwhile are counted in
#    behind_regions; its export restarted on the same port with the same
#    file: it goes S then A, and is given fewer regions than the whole
#    storage has (fio writes a quarter of it);
#  - then two at once (M = 2), and back;
#  - fio sees no error and every block verifies; afterwards every row's
#    parity in the node files is right and the device is the files' data.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
. "$TESTS_DIR/func/lib_mirror.sh"
. "$TESTS_DIR/func/lib_parity.sh"
need fio qemu-io nbdinfo nbdcopy

step "parity pf: 4+2 over six 16M exports"
mr_legs pf 16M 16M 16M 16M 16M 16M
pr_parity pf 4 2
RS=$(show_attr pf region_size)
# region_size: node bytes (rows) per bit of the bitmap.
REGIONS=$(((P_ROWS * P_CHUNK + RS - 1) / RS))
note "$REGIONS regions of $RS bytes"

# out_and_back I...: kill -9 the exports of nodes I..., wait for D, let the
# load run degraded for a second, restart them; wait for A. Checks the
# letters, dst status, behind_regions and what was copied back.
out_and_back() {
	local i d=() want rr0 c0 beh copied pids=() p
	for i in "$@"; do d+=("$i" D); done
	want=$(pr_letters A "${d[@]}")
	mr_fio_alive
	mr_log_mark pf
	for i in "$@"; do
		p=$(leg_pid "$i") || fail "node $i: no pid file"
		pids+=("$p")
		kill -KILL "$p"
	done
	for i in "$@"; do
		leg_kill9_wait "$i" "${pids[0]}"
		pids=("${pids[@]:1}")
	done
	mr_wait pf health "$want" 5 "health with node(s) $* killed"
	for i in "$@"; do
		assert_eq "$(show_attr pf "${LEG_NODE[i]}/health")" D "${LEG_NODE[i]}/health"
	done
	pr_status_is pf 1 "dst status pf exit with node(s) $* out"
	# Besides fio's load: a write past fio's 16M, and a read of 16 rows
	# (every node holds data in 4 rows of 6: some must be rebuilt).
	rr0=$(show_attr pf parity/reconstructed_reads)
	mr_writes "$P_URI" $((20 * MiB + ${#MR_WRITTEN[@]} * 65536))
	qio "$P_URI" "read 0 $((16 * 4 * P_CHUNK))"
	sleep 0.5
	mr_fio_alive
	beh=$(show_attr pf parity/behind_regions)
	note "degraded: behind_regions $beh, reconstructed_reads $rr0 -> $(show_attr pf parity/reconstructed_reads)," \
		"plans degraded $(pr_plan pf degraded), noparity $(pr_plan pf noparity)"
	assert_ge "$beh" 1 "behind_regions while node(s) $* are out under writes"
	assert_ge "$(show_attr pf parity/reconstructed_reads)" $((rr0 + 1)) "reads reconstructed while node(s) $* are out"
	c0=$(mr_copied pf)
	for i in "$@"; do leg_restart "$i"; done
	mr_wait pf health "$(pr_letters A)" 20 "health after node(s) $* came back"
	mr_wait pf parity/behind_regions 0 5 "behind_regions after node(s) $* came back"
	copied=$(($(mr_copied pf) - c0))
	note "regions copied back: $copied (of $REGIONS)"
	assert_ge "$copied" 1 "regions given back to node(s) $*"
	# Counted per node given back; fio writes a quarter of the storage.
	assert_le "$copied" $(($# * REGIONS / 2)) "regions given back to node(s) $*"
	pr_status_is pf 0 "dst status pf exit once every node is back"
}

step "fio write+verify runs; each node in turn killed and brought back"
pr_load_start "$P_URI" "$T_TMP/fio.faults"
sleep 1
t0=$SECONDS
for i in 0 1 2 3 4 5; do
	step "node $i (${LEG_NODE[i]}) out and back"
	out_and_back "$i"
done

step "two nodes at once: 1 and 4, then 0 and 5"
out_and_back 1 4
out_and_back 0 5
note "faults took $((SECONDS - t0)) s"
mr_fio_alive
pr_load_stop
assert_eq "$(show_attr pf io/errors)" 0 "pf/io/errors (the client saw none)"

step "afterwards: every row's parity right, the device is the files' data, every write there"
pr_settle pf
pr_check_written "$P_URI" "the writes made with nodes out"
assert_eq "$(show_attr pf parity/lost_rows)" 0 "pf/parity/lost_rows"
pr_check "after the faults"
pr_same_as_files "$P_URI" "after the faults"

step "stop"
assert_eq "$(export_pid pf)" "$P_PID" "the storage daemon is the same process"
st_stop pf
for e in "${LEG_EXPORT[@]}"; do stop_export "$e"; done
echo "PASS"
