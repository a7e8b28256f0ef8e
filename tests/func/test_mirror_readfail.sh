#!/usr/bin/env bash
# Reads retried on the other leg (two 256M file-backed legs, 0x5a written
# over the whole device): fio random reads (4K..256K, 2 jobs x QD32) check
# every byte against the pattern, pass after pass. Leg 1 is killed with SIGKILL
# under that load: the reads in flight on it fail at the node (its
# io/errors grows) and are answered from leg 0, the client sees no error.
# Leg 1 comes back (nothing written meanwhile: 0 regions to copy) and takes
# reads again; then leg 0 is killed and the reads go on from leg 1. fio
# sees no error, the storage counts none.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
. "$TESTS_DIR/func/lib_mirror.sh"
need fio qemu-io nbdinfo

step "mirror mf over two 256M exports; 0x5a over all of it"
mr_legs mf 256M 256M
mr_mirror mf
L0=${LEG_NODE[0]} L1=${LEG_NODE[1]}
qio "$M_URI" "write -P 0x5a 0 $M_SIZE" "flush"
mr_settle mf

# fio verifies a read job's data in one pass only (time_based or not), so
# the load is passes back to back (each reads 256 MiB) until the file
# stop-reads exists; any error ends it.
read_passes() {
	local n=0
	while [ ! -e "$T_TMP/stop-reads" ]; do
		n=$((n + 1))
		fio --name=reads --ioengine=nbd --uri="$M_URI" \
			--rw=randread --bssplit=4k/40:64k/30:256k/30 --blockalign=4k --iodepth=32 \
			--numjobs=2 --size=$((M_SIZE / 2)) --offset_increment=$((M_SIZE / 2)) \
			--norandommap --verify=pattern --verify_pattern=0x5a --verify_fatal=1 \
			--group_reporting >"$T_TMP/fio.pass" 2>&1 &&
			grep -q 'err= 0' "$T_TMP/fio.pass" && ! grep -Eq 'err= *[1-9]|verify failed' "$T_TMP/fio.pass" || {
			echo "pass $n failed:"
			cat "$T_TMP/fio.pass"
			return 1
		}
		grep -E '^ *READ:' "$T_TMP/fio.pass" | sed "s/^ */pass $n: /" | cut -c1-110
	done
	echo "$n passes, no error"
}

step "fio random reads with pattern verify, passes back to back"
fio_passes_bg() { read_passes >"$T_TMP/fio.read" 2>&1; }
bg fio_passes_bg
FIO_PID=$BG_PID FIO_OUT=$T_TMP/fio.read
sleep 2
mr_fio_alive
r0=$(show_attr mf "$L0/io/reads") r1=$(show_attr mf "$L1/io/reads")
note "reads so far: $L0 $r0, $L1 $r1"
assert_ge "$r1" 1 "reads on $L1 before the kill"

step "kill -9 leg 1 while reads are in flight on it"
# Between two passes nothing is in flight, and the tick may mark the leg
# dead before the next pass: then no read failed there. Up to 3 tries.
for try in 1 2 3; do
	e1=$(show_attr mf "$L1/io/errors")
	pid1=$(leg_pid 1)
	for _ in $(seq 200); do
		infl=$(show_attr mf "$L1/io/inflight")
		[ "$infl" -gt 0 ] && break
		sleep 0.01
	done
	kill -KILL "$pid1"
	note "try $try: $L1/io/inflight $infl just before the kill of pid $pid1"
	leg_kill9_wait 1 "$pid1"
	mr_wait mf health AD 5 "health after leg 1 died"
	failed=$(($(show_attr mf "$L1/io/errors") - e1))
	note "try $try: $failed reads failed on $L1 (retried on $L0)"
	[ "$failed" -gt 0 ] && break
	[ $try -lt 3 ] || break
	leg_restart 1
	mr_wait mf health AA 15 "health after leg 1 came back"
done
assert_ge "$failed" 1 "reads that failed on the killed leg (retried on the other), in 3 tries"
mr_fio_alive
r0=$(show_attr mf "$L0/io/reads")
sleep 1
mr_fio_alive
assert_ge "$(show_attr mf "$L0/io/reads")" $((r0 + 1)) "reads on $L0 after leg 1 died"

step "leg 1 comes back (nothing to copy) and takes reads again"
c0=$(mr_copied mf)
leg_restart 1
mr_wait mf health AA 15 "health after leg 1 came back"
assert_eq $(($(mr_copied mf) - c0)) 0 "regions copied (nothing was written)"
r1=$(show_attr mf "$L1/io/reads")
sleep 1
mr_fio_alive
assert_ge "$(show_attr mf "$L1/io/reads")" $((r1 + 1)) "reads on $L1 after it came back"

step "kill -9 leg 0 under the read load: the reads go on from leg 1"
leg_kill9 0
mr_wait mf health DA 5 "health after leg 0 died"
r1=$(show_attr mf "$L1/io/reads")
sleep 1
assert_ge "$(show_attr mf "$L1/io/reads")" $((r1 + 1)) "reads on $L1 after leg 0 died"
mr_fio_alive
touch "$T_TMP/stop-reads"
rc=0
bg_wait "$FIO_PID" || rc=$?
[ $rc -eq 0 ] || { tail -30 "$FIO_OUT" >&2; fail "fio read passes through mf: status $rc"; }
note "$(tail -1 "$FIO_OUT")"
assert_eq "$(show_attr mf io/errors)" 0 "io errors on the storage (the client saw none)"

step "stop"
leg_restart 0
mr_wait mf health AA 15 "health after leg 0 came back"
assert_eq "$(export_pid mf)" "$M_PID" "the storage daemon is the same process"
st_stop mf
stop_export mf-leg0
stop_export mf-leg1
echo "PASS"
