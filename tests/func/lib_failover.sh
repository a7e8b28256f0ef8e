# shellcheck shell=bash
# lib_failover.sh - helpers for the failover tests (test_storage_failover*.sh);
# source it after lib.sh and lib_storage.sh.
#
# The load is fio with crc32c verify in cycles: time_based, each pass of
# each job writes its region's size in random 4K..1M requests at QD32, then
# reads back and verifies what it wrote, then the next pass begins, until
# the runtime is over (a pass cut by the end of the runtime is not
# verified). --norandommap lets a pass write a block more than once; fio then
# keeps the blocks' history in a tree that drops what was overwritten, so
# each block is checked against its last write. --serialize_overlap never
# puts two overlapping writes in flight (NBD does not order them).
# Reads at a node happen only in verify passes: a node whose read count grew
# after it came back had its data verified after the failover.

# fo_fio_start URI RUNTIME OUT: fio on URI in the background for RUNTIME
# seconds, 2 jobs x 30M (0..30M and 30M..60M), output in OUT. Sets FIO_PID.
fo_fio_start() {
	local uri=$1 runtime=$2 out=$3
	# fio_run kills fio if it runs far past its runtime (a stuck node must
	# fail the test, not hang it).
	bg fio_run $((runtime + 60)) "$out" --name=failover --ioengine=nbd --uri="$uri" \
		--rw=randwrite --bssplit=4k/30:16k/20:64k/20:256k/15:1m/15 --blockalign=4k \
		--iodepth=32 --numjobs=2 --size=30M --offset_increment=30M \
		--time_based --runtime="$runtime" --norandommap --serialize_overlap=1 \
		--verify=crc32c --verify_fatal=1 --do_verify=1 --verify_state_save=0 \
		--group_reporting
	FIO_PID=$BG_PID
	FIO_OUT=$out
	note "fio on $uri for $runtime s (pid $FIO_PID)"
}

# fo_sleep_under_load SECONDS: sleep; fio must still be running.
fo_sleep_under_load() {
	sleep "$1"
	pid_alive "$FIO_PID" || {
		tail -20 "$FIO_OUT" >&2
		fail "fio ended before the fault was injected"
	}
}

# fo_expect_load STORAGE NODE: the node is up and fio's writes reach it.
fo_expect_load() {
	assert_eq "$(show_attr "$1" "$2/state")" up "$2/state before the fault"
	assert_ge "$(show_attr "$1" "$2/io/writes")" 1 "$2/io/writes before the fault"
	assert_eq "$(show_attr "$1" "$2/reconnects")" 0 "$2/reconnects before the fault"
}

# fo_wait_up STORAGE NODE SECONDS: wait until the node's state is up.
fo_wait_up() {
	local t0 st
	t0=$(date +%s%3N)
	for _ in $(seq $(($3 * 5))); do
		st=$(show_attr "$1" "$2/state")
		[ "$st" = up ] && break
		sleep 0.2
	done
	[ "$st" = up ] || fail "$1/$2 is not up $3 s after its node came back (state $st, error: $(show_attr "$1" "$2/error"))"
	note "$1/$2 up again after $(($(date +%s%3N) - t0)) ms; reconnects $(show_attr "$1" "$2/reconnects"), resent $(show_attr "$1" "$2/resent")"
}

# fo_fio_wait OUT: wait for fo_fio_start's fio; true if it exited 0 with
# err=0 and no verify complaint. Prints its summary lines.
fo_fio_wait() {
	local out=$1 rc=0
	bg_wait "$FIO_PID" || rc=$?
	if [ $rc -ne 0 ] || grep -qiE 'verify: bad|verify failed|crc32c: verify' "$out"; then
		tail -40 "$out" >&2
		return 1
	fi
	grep -E '^ *(READ|WRITE):' "$out" | sed 's/^ */   /'
	return 0
}

# fo_check_after STORAGE NODE READS_WHEN_BACK MIN_RECONNECTS: after fio: the
# node is up, reconnected at least MIN_RECONNECTS times, no IO error
# anywhere, and fio verified data on it after it came back.
fo_check_after() {
	local s=$1 node=$2 reads n
	assert_eq "$(show_attr "$s" "$node/state")" up "$node/state after the failover"
	assert_ge "$(show_attr "$s" "$node/reconnects")" "$4" "$node/reconnects"
	for n in $(show_attr "$s" nodes | grep -oE '(^|\| |: )[0-9]+ \[' | grep -oE '[0-9]+'); do
		assert_eq "$(show_attr "$s" "n-$n/io/errors")" 0 "n-$n/io/errors"
	done
	assert_eq "$(show_attr "$s" io/errors)" 0 "$s io/errors"
	reads=$(show_attr "$s" "$node/io/reads")
	[ "$reads" -gt "$3" ] 2>/dev/null ||
		fail "no verify pass read $node after it came back (reads $3 -> $reads): fio's runtime ended too soon"
	note "$node: $((reads - $3)) verify reads after it came back"
}

# fo_log_has STORAGE ERE WHAT: the daemon's log has a line matching ERE.
fo_log_has() {
	grep -Eq "$2" "$DST_STATE_DIR/$1.log" || {
		log_tail "$DST_STATE_DIR/$1.log" 15 >&2
		fail "$3: no line matching '$2' in $1.log"
	}
}
