#!/usr/bin/env bash
# fio with crc32c verification on the loop device of a storage's FUSE file
# (libaio, direct=1, QD32, 4K..1M requests across node and chunk boundaries),
# over a 2-node alg_stripe storage; again from a fresh loop device without
# direct IO (verify only); and on the FUSE file itself. Then the file's own
# semantics: fallocate punch-hole and zero-range read back as zeroes (on the
# nodes too), blkdiscard on the loop device likewise, fsync reaches the
# nodes, truncate and writes past the end are refused, `dst stat` has a row
# for the FUSE file. More requests than request slots (backpressure: the
# daemon stops reading /dev/fuse) with a verified writer among them. A punch of 9 GiB over two nodes (sent in 1 GiB pieces:
# one NBD request carries less than 4 GiB).
# run.sh: group loop (loop devices: the cleanup of one test must not meet another's)
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
. "$TESTS_DIR/func/lib_fuse.sh"
need_fuse fio fallocate blkdiscard qemu-io

# fio_verify FILE JOBS SIZE [fio options]: like st_fio_verify, on a file or
# block device with libaio and O_DIRECT.
fio_verify() {
	local file=$1 jobs=$2 size=$3
	shift 3
	fio_run 120 "$T_TMP/fio.out" --name=verify --filename="$file" --ioengine=libaio --direct=1 \
		--rw=randwrite --bssplit=4k/30:16k/20:64k/20:256k/15:1m/15 --blockalign=4k \
		--iodepth=32 --numjobs="$jobs" --size="$size" --offset_increment="$size" \
		--verify=crc32c --verify_fatal=1 --do_verify=1 --verify_state_save=0 \
		--group_reporting "$@" || {
		tail -30 "$T_TMP/fio.out" >&2
		return 1
	}
	if grep -qiE 'verify: bad|crc32c: verify failed|bad magic' "$T_TMP/fio.out"; then
		grep -iE 'verify' "$T_TMP/fio.out" | head -10 >&2
		return 1
	fi
	grep -E '^ *(READ|WRITE):' "$T_TMP/fio.out" | sed 's/^ */   /'
}

step "two export nodes of 64M, a stripe storage (64K chunks) with a FUSE file"
st_export sa 64M
SA=$URI
st_export sb 64M
SB=$URI
st_create fio stripe
st_add fio --remote "$SA"
st_add fio --remote "$SB"
FILE=$T_TMP/fio.dev
track_fuse "$FILE"
st_start fio --fuse "$FILE"
fuse_attach fio --direct-io

step "fio randwrite + crc32c verify on $LOOP: 2 jobs x 48M, QD32, 4K..1M"
fio_verify "$LOOP" 2 48M || fail "fio verify on the loop device"
assert_eq "$(show_attr fio fuse_file/io/errors)" 0 "errors on the FUSE file"
assert_ge "$(show_attr fio fuse_file/io/writes)" 1000 "writes through the FUSE file"
for n in n-0 n-131072; do
	assert_ge "$(show_attr fio "$n/io/writes")" 100 "writes on node $n"
	assert_eq "$(show_attr fio "$n/io/errors")" 0 "errors on node $n"
done

step "verify only, from a new loop device without direct IO"
dst_ok detach fio >/dev/null
fuse_attach fio
fio_verify "$LOOP" 2 48M --verify_only=1 || fail "fio verify_only on a buffered loop device"
dst_ok detach fio >/dev/null

step "fio randwrite + crc32c verify on the FUSE file itself"
fio_verify "$FILE" 2 16M --offset=96M || fail "fio verify on the FUSE file"
assert_eq "$(show_attr fio fuse_file/io/errors)" 0 "errors on the FUSE file"

step "fallocate: punch hole and zero range read back as zeroes, on the nodes too"
qio "$(st_uri fio)" "write -P 0x5a 0 4M" "flush"
run_ok "fallocate --punch-hole" fallocate --punch-hole --keep-size --offset 65536 --length 196608 "$FILE"
run_ok "fallocate --zero-range" fallocate --zero-range --keep-size --offset 1048576 --length 131072 "$FILE"
assert_file_pattern "$FILE" 65536 196608 0 "the punched range through the FUSE file"
assert_file_pattern "$FILE" 1048576 131072 0 "the zeroed range through the FUSE file"
assert_file_pattern "$FILE" 0 65536 0x5a "before the punched range"
assert_file_pattern "$FILE" 262144 786432 0x5a "between the ranges"
# 64K chunks round-robin: storage chunk c is on node c % 2 at (c / 2) * 64K.
# The punched 64K..256K is chunks 1..3: node a's 64K..128K (chunk 2), node
# b's 0..128K (chunks 1 and 3).
assert_node_pattern "$SA" 65536 65536 0 "the punched chunk 2 on node a"
assert_node_pattern "$SA" 0 65536 0x5a "chunk 0 on node a"
assert_node_pattern "$SB" 0 131072 0 "the punched chunks 1 and 3 on node b"
assert_ge "$(show_attr fio fuse_file/io/zeroes)" 2 "zeroes through the FUSE file"
run_fails "fallocate that would grow the file" fallocate --offset $((128 * MiB - 4096)) --length 8192 "$FILE"

step "blkdiscard on the loop device: the FUSE file reads zeroes there"
fuse_attach fio --direct-io
qio "$(st_uri fio)" "write -P 0x6b 8M 1M" "flush"
run_ok "blkdiscard" blkdiscard --offset $((8 * MiB)) --length $((MiB)) "$LOOP"
assert_file_pattern "$FILE" $((8 * MiB)) $((MiB)) 0 "the discarded range"

step "fsync reaches the nodes; truncate and writes past the end are refused"
f0=$(show_attr fio n-0/io/flushes)
run_ok "dd conv=fsync to the FUSE file" dd if=/dev/zero of="$FILE" bs=4k count=1 seek=100 conv=notrunc,fsync status=none
assert_ge "$(show_attr fio n-0/io/flushes)" $((f0 + 1)) "flushes on node n-0 after fsync"
run_fails "truncate of the FUSE file" truncate -s 0 "$FILE"
assert_contains "$RUN_OUT" "Operation not permitted" "truncate"
assert_eq "$(stat -c %s "$FILE")" $((128 * MiB)) "size after the refused truncate"
run_fails "a write past the end" dd if=/dev/zero of="$FILE" bs=4k count=1 seek=$((32 * 1024)) conv=notrunc status=none
assert_contains "$RUN_OUT" "No space left on device" "write past the end"
out=$(dst stat fio) || fail "dst stat fio"
assert_contains "$out" "fio/fuse_file" "dst stat has a row for the FUSE file"

step "more requests than request slots: 128 synchronous readers beside a verified async writer"
e0=$(show_attr fio fuse_file/io/errors) # the refused write past the end counted one
fio_run 120 "$T_TMP/bp.out" \
	--name=w --filename="$FILE" --ioengine=libaio --direct=1 --rw=randwrite --bs=64k --iodepth=32 \
	--size=16M --offset=96M --verify=crc32c --verify_fatal=1 --do_verify=1 --verify_state_save=0 \
	--name=r --filename="$FILE" --ioengine=psync --direct=1 --rw=randread --bs=128k --numjobs=128 \
	--size=64M --offset=0 --time_based --runtime=3 ||
	{ tail -30 "$T_TMP/bp.out" >&2; fail "fio with more requests than slots"; }
assert_eq "$(show_attr fio fuse_file/io/inflight_peak)" 64 "peak of requests in flight (all 64 slots)"
assert_ge "$(show_attr fio fuse_file/io/backpressure)" 1 "times the daemon stopped reading /dev/fuse"
assert_eq "$(show_attr fio fuse_file/io/errors)" "$e0" "errors on the FUSE file"

step "stop"
dst_ok stop fio >/dev/null
wait_gone "$ST_PID" 10 || fail "fio still runs"
! is_mounted "$FILE" || fail "$FILE still mounted"
check_log "$DST_STATE_DIR/fio.log"
stop_export sa
stop_export sb

step "a 9 GiB punch over two sparse 5 GiB nodes (more than one NBD request can carry to node a)"
st_export ba 5G
BA=$URI
st_export bb 5G
BB=$URI
st_create big linear
st_add big --remote "$BA"
st_add big --remote "$BB"
BIG=$T_TMP/big.dev
track_fuse "$BIG"
st_start big --fuse "$BIG"
for off in $((100 * MiB)) $((4900 * MiB)) $((5200 * MiB)) $((9 * 1024 * MiB)); do
	printf 'mark' | dd of="$BIG" bs=4 seek=$((off / 4)) conv=notrunc status=none || fail "marker at $off"
done
run_ok "fallocate --punch-hole of 9 GiB" fallocate --punch-hole --keep-size --offset 0 --length $((9 * 1024 * MiB)) "$BIG"
for off in $((100 * MiB)) $((4900 * MiB)) $((5200 * MiB)); do
	assert_file_pattern "$BIG" "$off" 4 0 "marker at $off after the punch"
done
assert_eq "$(dd if="$BIG" bs=4 skip=$((9 * 1024 * MiB / 4)) count=1 status=none)" mark "the marker just past the punch"
assert_eq "$(show_attr big fuse_file/io/errors)" 0 "errors on the big FUSE file"
st_stop big
stop_export ba
stop_export bb
echo "PASS"
