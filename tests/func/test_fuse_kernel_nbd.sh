#!/usr/bin/env bash
# Kernel NBD instead of FUSE, where the kernel has it: `dst start NAME -f
# /dev/nbdN` attaches a 2-node linear storage over netlink; the block device
# has the storage's size, fio crc32c verify passes on it, ext4 on it survives
# umount + fsck; `dst stop` refuses while it is mounted, then disconnects
# it. Skipped, saying why, where the kernel has no nbd driver.
# run.sh: group loop (loop devices: the cleanup of one test must not meet another's)
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
. "$TESTS_DIR/func/lib_fuse.sh"
[ "$(id -u)" = 0 ] || skip "needs root (kernel NBD, mount)"
[ -e /dev/nbd0 ] || skip "no /dev/nbd0: this kernel has no NBD driver (modprobe nbd), so -f /dev/nbdN cannot be tested here (tests/vm/run runs it in a VM)"
need fio mkfs.ext4 fsck.ext4 blockdev python3 sha256sum

free_nbd

step "a linear storage over two export nodes, started with -f $NBD"
st_export na 32M
NA=$URI
st_export nb 32M
NB=$URI
st_create kn linear
st_add kn --remote "$NA"
st_add kn --remote "$NB"
rc=0
"$DST" start kn -f "$NBD" >"$T_TMP/start.out" 2>"$T_TMP/start.err" || rc=$?
check_stderr "$T_TMP/start.err" "dst start -f $NBD"
if [ $rc -ne 0 ]; then
	if grep -q "kernel NBD is not available" "$T_TMP/start.err"; then
		skip "$(sed 's/^dstd: //' "$T_TMP/start.err")"
	fi
	cat "$T_TMP/start.err" >&2
	fail "dst start kn -f $NBD"
fi
track_export kn
KN_PID=$(export_pid kn) || fail "no pid file for kn"
assert_eq "$(show_attr kn nbd_device)" "$NBD" "kn/nbd_device"
grep -qx "nbd-device = $NBD" "$DST_STATE_DIR/kn.conf" || fail "-f $NBD was not saved"
wait_size "$NBD" $((64 * MiB))

step "fio crc32c verify on $NBD"
fio_run 120 "$T_TMP/fio.out" --name=verify --filename="$NBD" --ioengine=libaio --direct=1 \
	--rw=randwrite --bssplit=4k/40:64k/30:1m/30 --iodepth=32 --size=48M \
	--verify=crc32c --verify_fatal=1 --do_verify=1 --verify_state_save=0 ||
	{ tail -30 "$T_TMP/fio.out" >&2; fail "fio verify on $NBD"; }

step "ext4 on $NBD: write, umount, fsck; dst stop refused while mounted"
ext4_mount "$NBD"
write_tree "$MNT/tree" 40 "$T_TMP/tree.sha256"
bad_input "stop while mounted" "$NBD" "is mounted on $MNT" -- stop kn
pid_alive "$KN_PID" || fail "kn stopped although it was refused"
check_tree "$MNT/tree" "$T_TMP/tree.sha256"
run_ok "umount" umount "$MNT"
run_ok "fsck.ext4 -f -n" fsck.ext4 -f -n "$NBD"

step "dst stop disconnects $NBD"
dst_ok stop kn >/dev/null
wait_gone "$KN_PID" 10 || fail "kn still runs"
[ ! -e "/sys/block/$(basename "$NBD")/pid" ] || fail "$NBD is still connected after dst stop"
check_log "$DST_STATE_DIR/kn.log"
stop_export na
stop_export nb
echo "PASS"
