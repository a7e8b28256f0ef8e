#!/usr/bin/env bash
# The ublk device under load, in a real kernel (run inside the VM by
# tests/vm/run; make vm-check). Storages over dst export nodes, started with
# `ublk = auto` (lib_ublk.sh's ublk_start), on the raw /dev/ublkbN:
#  1. a 2-node alg_stripe (64K chunks): fio crc32c verify (libaio, O_DIRECT,
#     4K..256K) at QD1 and at QD128, 2 jobs each pinned to its own CPU
#     (cpus_allowed_policy=split) on separate ranges: every one of the
#     device's queues carries requests in each run (ublk_io/queue_requests),
#     QD128 gives a real depth at the daemon (in_flight_peak > 32), no error;
#  2. blkdiscard -z and blkdiscard reach the storage as WRITE_ZEROES and
#     discards (ublk_io/write_zeroes, discards), read back as zeroes on the
#     device and in the nodes' files (a file export punches holes), the data
#     around them untouched; an fsync of the device gives flushes;
#  3. fio verify on the device while one stripe node's export is killed with
#     -9 and restarted on its port a few seconds later, once dst show has
#     seen fio's requests wait for it: fio sees no error and every
#     block verifies, the kernel logs no error, the node reconnected, the
#     same daemon serves the device;
#  4. a 2-leg alg_mirror (a file and an export) under fio verify, the
#     export killed for good: no error reaches fio or the kernel, the
#     mirror goes on with one leg (health AD), every block verifies.
# Outside a guest with ublk it skips. Files are on the guest's tmpfs /tmp.
. "$(dirname "$0")/../func/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
. "$TESTS_DIR/func/lib_fuse.sh"
. "$TESTS_DIR/func/lib_failover.sh"
. "$TESTS_DIR/vm/lib_knbd.sh"
. "$TESTS_DIR/vm/lib_ublk.sh"
need_ublk fio blkdiscard python3
# Two jobs on two CPUs submit to two hardware queues (blk-mq maps each CPU
# to a queue): that is how the test reaches both of the device's queues.
[ "$(nproc)" -ge 2 ] || skip "needs 2 CPUs to load 2 ublk queues (tests/vm/run gives 2)"
PIN=(--numjobs=2 --cpus_allowed=0-1 --cpus_allowed_policy=split)

# dev_fio_start DEV OUT: fio verify on DEV in the background, 2 pinned jobs
# x 2M (16M..20M) of 4K..256K writes at QD32, at most 512 KiB/s per job (the
# writing lasts 4 s however fast the guest: the fault comes after fio's
# first writes, well before the end; requests that wait for a dead node
# hold fio's writing up until it is back), then crc32c verify of every
# block: the verify reads come after the fault. Sets FIO_PID, FIO_OUT.
dev_fio_start() {
	bg fio_run 180 "$2" --name=load --filename="$1" --ioengine=libaio --direct=1 \
		--rw=randwrite --bssplit=4k/40:16k/20:64k/20:256k/20 --blockalign=4k --iodepth=32 \
		"${PIN[@]}" --size=2M --offset=16M --offset_increment=2M --rate=512k \
		--verify=crc32c --verify_fatal=1 --do_verify=1 --verify_state_save=0 --group_reporting
	FIO_PID=$BG_PID
	FIO_OUT=$2
	note "fio on $1 (pid $FIO_PID)"
}

# dev_writes DEV: the writes DEV completed so far (its sysfs stat; no dst
# show, which costs a second or two in the guest).
dev_writes() {
	local -a f
	read -ra f <"/sys/block/${1#/dev/}/stat"
	echo "${f[4]}"
}

# wait_dev_writes DEV W0: until DEV completed 8 writes past W0 (fio's
# writes are flowing: with 64K chunks, to every node of a stripe) while
# fio runs.
wait_dev_writes() {
	local _
	for _ in $(seq 300); do
		pid_alive "$FIO_PID" || {
			tail -20 "$FIO_OUT" >&2
			fail "fio ended before the fault"
		}
		[ "$(dev_writes "$1")" -ge $(($2 + 8)) ] && return 0
		sleep 0.1
	done
	fail "fio's writes did not reach $1 in 30 s"
}

# wait_up STORAGE NODE SECONDS: until the node's state is up.
wait_up() {
	local t0=$SECONDS
	while show_snap "$1" && [ "$(snap "$2/state")" != up ]; do
		[ $((SECONDS - t0)) -lt "$3" ] || fail "$1/$2 not up $3 s after its export came back (state $(snap "$2/state"))"
		sleep 0.2
	done
	note "$1/$2 up again after $((SECONDS - t0)) s"
}

# ---------------------------------------------------------------------------
step "1. alg_stripe over two exports of 32M (64K chunks), on ublk"
knbd_export ua 32M
UA_IMG=$IMG UA=$URI
knbd_export ub 32M
UB_IMG=$IMG UB=$URI UB_PORT=$PORT UB_PID=$PID
st_create us stripe
st_add us --remote "$UA"
st_add us --remote "$UB"
ublk_start us
US_PID=$ST_PID
N1=n-$((32 * MiB / 512)) # the second node's name: n-START (sectors)
assert_ge "$(snap ublk_queues)" 2 "us/ublk_queues"
Q0=$(snap ublk_io/queue_requests)
Q=/sys/block/${UBLK#/dev/}/queue
note "${UBLK#/dev/}: $(snap ublk_queues) queues of $(snap ublk_depth), max_sectors_kb $(<"$Q/max_sectors_kb")," \
	"discard_max_bytes $(<"$Q/discard_max_bytes"), write_cache $(<"$Q/write_cache")"

step "1. fio verify at QD1: 2 pinned jobs x 1M (0..2M)"
blk_fio_verify "$UBLK" "$T_TMP/fio.qd1" 120 --iodepth=1 "${PIN[@]}" --size=1M --offset_increment=1M
show_snap us
Q1=$(snap ublk_io/queue_requests)
ublk_queues_grew "$Q0" "$Q1" "fio at QD1"
note "QD1: queue_requests $Q0 -> $Q1, in_flight_peak $(snap ublk_io/in_flight_peak)"

step "1. fio verify at QD128: 2 pinned jobs x 6M (16M..28M)"
blk_fio_verify "$UBLK" "$T_TMP/fio.qd128" 180 --iodepth=128 "${PIN[@]}" --size=6M \
	--offset=16M --offset_increment=6M
show_snap us
Q2=$(snap ublk_io/queue_requests)
ublk_queues_grew "$Q1" "$Q2" "fio at QD128"
note "QD128: queue_requests $Q1 -> $Q2, in_flight_peak $(snap ublk_io/in_flight_peak)," \
	"buffer_waits $(snap ublk_io/buffer_waits), reads $(snap ublk_io/reads), writes $(snap ublk_io/writes)"
assert_ge "$(snap ublk_io/in_flight_peak)" 33 "us/ublk_io/in_flight_peak after fio at QD128"
assert_eq "$(snap ublk_io/errors)" 0 "us/ublk_io/errors"
assert_eq "$(snap io/errors)" 0 "us/io/errors"
for n in n-0 "$N1"; do
	assert_ge "$(snap "$n/io/writes")" 50 "writes on node $n"
	assert_eq "$(snap "$n/io/errors")" 0 "errors on node $n"
done

step "2. blkdiscard -z and blkdiscard reach the storage and read back as zeroes; fsync flushes"
# 8M..10M (chunks 128..159) 0x5a, written with O_DIRECT and an fsync;
# discard 8M+64K..9M (chunks 129..143), zero 9M..9M+320K (chunks 144..148).
# Chunk c of the stripe is chunk c/2 of node c%2: the device's 8M..10M is
# each node's 4M..5M; the discarded and zeroed chunks are node a's 65..74
# and node b's 64..73.
# The baselines from the last snapshot (each dst show costs seconds in
# the guest): between it and the next, the only fsync is dev_fill's.
f0=$(snap ublk_io/flushes) d0=$(snap ublk_io/discards) z0=$(snap ublk_io/write_zeroes)
dev_fill "$UBLK" $((8 * MiB)) $((2 * MiB)) 0x5a
run_ok "blkdiscard" blkdiscard --offset $((8 * MiB + 65536)) --length $((MiB - 65536)) "$UBLK"
run_ok "blkdiscard -z" blkdiscard -z --offset $((9 * MiB)) --length $((5 * 65536)) "$UBLK"
show_snap us
note "flushes $f0 -> $(snap ublk_io/flushes), discards $d0 -> $(snap ublk_io/discards)," \
	"write_zeroes $z0 -> $(snap ublk_io/write_zeroes)"
# The device has a volatile cache (the storage takes FLUSH): the fsync is
# a flush at the daemon.
assert_ge "$(snap ublk_io/flushes)" $((f0 + 1)) "us/ublk_io/flushes after the fsync of $UBLK"
assert_ge "$(snap ublk_io/discards)" $((d0 + 1)) "us/ublk_io/discards after blkdiscard"
# BLKZEROOUT goes as REQ_OP_WRITE_ZEROES (the device offers it), not as
# writes of zeroes.
assert_ge "$(snap ublk_io/write_zeroes)" $((z0 + 1)) "us/ublk_io/write_zeroes after blkdiscard -z"
assert_eq "$(snap ublk_io/errors)" 0 "us/ublk_io/errors"
# On the device, and in the nodes' files (each node's 4M is the device's
# 8M): node a keeps chunk 128 and 150..158, node b 149..159.
has_patterns "the discarded and zeroed range and around it, on $UBLK and in the nodes' files" \
	"$UBLK:$((8 * MiB + 65536)):$((MiB - 65536 + 5 * 65536)):0" \
	"$UBLK:$((8 * MiB)):65536:0x5a" \
	"$UBLK:$((9 * MiB + 5 * 65536)):$((MiB - 5 * 65536)):0x5a" \
	"$UA_IMG:$((4 * MiB)):65536:0x5a" \
	"$UA_IMG:$((4 * MiB + 65536)):$((10 * 65536)):0" \
	"$UB_IMG:$((4 * MiB)):$((10 * 65536)):0" \
	"$UA_IMG:$((4 * MiB + 11 * 65536)):$((5 * 65536)):0x5a" \
	"$UB_IMG:$((4 * MiB + 10 * 65536)):$((6 * 65536)):0x5a"

# ---------------------------------------------------------------------------
step "3. fio verify on $UBLK; kill -9 ub once fio's writes flow, ub back a few seconds later"
dmesg_mark
W0=$(dev_writes "$UBLK")
dev_fio_start "$UBLK" "$T_TMP/fio.failover"
wait_dev_writes "$UBLK" "$W0"
kill -KILL "$UB_PID"
wait_gone "$UB_PID" 10 || fail "export ub survived kill -9"
rm -f "$DST_STATE_DIR/ub.pid"
T_DOWN=$(date +%s%3N)
sleep 1
show_snap us
assert_eq "$(snap "$N1/state")" reconnecting "$N1/state while ub is dead"
# fio's requests hit the dead node: they wait for it (not fail).
assert_ge "$(snap "$N1/waiting")" 1 "requests waiting for the dead node"
dst_ok export "$UB_IMG" --name ub --listen "127.0.0.1:$UB_PORT" --buffers 32M >/dev/null
note "ub restarted on port $UB_PORT after $(($(date +%s%3N) - T_DOWN)) ms (pid $(export_pid ub))"
wait_up us "$N1" 30
fo_fio_wait "$FIO_OUT" || fail "fio on $UBLK across the failover: an error or a bad block"
show_snap us
note "$N1: reconnects $(snap "$N1/reconnects"), resent $(snap "$N1/resent")"
assert_eq "$(snap "$N1/state")" up "$N1/state after the failover"
assert_ge "$(snap "$N1/reconnects")" 1 "$N1/reconnects"
assert_eq "$(snap "$N1/io/errors")" 0 "$N1/io/errors"
assert_eq "$(snap ublk_io/errors)" 0 "us/ublk_io/errors after the failover"
assert_eq "$(snap io/errors)" 0 "us/io/errors after the failover"
assert_eq "$(snap ublk_state)" live "us/ublk_state after the failover"
assert_eq "$(export_pid us)" "$US_PID" "the storage daemon is the same process"
dmesg_clean "$UBLK" "failover of a stripe node under fio on ublk"
ublk_stop us "$UBLK"
stop_export ua
stop_export ub

# ---------------------------------------------------------------------------
step "4. alg_mirror of a 24M file and a 24M export on ublk: fio verify, the export killed for good"
# One leg a local file (an export less to start and stop in the slow
# guest), the other the export that dies.
truncate -s $((24 * MiB + 4096)) "$T_TMP/ma.img" || fail "truncate"
knbd_export mb 24M
MB=$URI MB_PID=$PID
st_create um mirror --assume-clean
st_add um --disk "$T_TMP/ma.img"
st_add um --remote "$MB"
ublk_start um
assert_eq "$(snap health)" AA "um health before the fault"
dmesg_mark
W0=$(dev_writes "$UBLK")
dev_fio_start "$UBLK" "$T_TMP/fio.mirror"
wait_dev_writes "$UBLK" "$W0"
kill -KILL "$MB_PID"
wait_gone "$MB_PID" 10 || fail "export mb survived kill -9"
rm -f "$DST_STATE_DIR/mb.pid"
fo_fio_wait "$FIO_OUT" || fail "fio on the mirror on $UBLK: an error or a bad block"
show_snap um
assert_eq "$(snap health)" AD "um health after mb was killed"
assert_eq "$(snap ublk_io/errors)" 0 "um/ublk_io/errors"
assert_eq "$(snap io/errors)" 0 "um/io/errors"
assert_eq "$(snap ublk_state)" live "um/ublk_state"
dmesg_clean "$UBLK" "a mirror leg lost under fio on ublk"
ublk_stop um "$UBLK"
echo "PASS"
