#!/usr/bin/env bash
# Node failover under a mounted filesystem on kernel NBD, in a real kernel
# (run inside the VM by tests/vm/run; make vm-check):
#  1. ext4 on /dev/nbdN of an alg_stripe over two file-backed dst exports
#     (64K chunks: every file's IO reaches both nodes). fio writes files in
#     the filesystem with O_DIRECT (2 jobs, QD32), then verifies every block
#     (crc32c); kill -9 of one export while fio writes, files written and
#     synced while it is dead, the export restarted on its port with its
#     file 2 s later: the requests that waited for it complete, fio sees no
#     error and every block verifies, the sync completes, the kernel logs no
#     I/O or ext4 error, the node was reconnected; after umount e2fsck -fn is
#     clean and every file matches its checksum on a fresh mount.
#  2. ext4 on /dev/nbdN of a 2-leg alg_mirror; one leg's export killed with
#     -9 for good under the same fio load: no error reaches the filesystem,
#     the mirror goes on with one leg (AD), files intact, e2fsck clean.
# The kernel gets no NBD_ATTR_TIMEOUT from dst: it does not fail a request
# that waits longer than the block layer's 30 s (tried by hand: a write held
# 45 s by a dead node completed when the node came back, nothing logged);
# here a failover takes a few seconds. Outside a guest with nbd it skips.
# Files are on the guest's tmpfs /tmp.
. "$(dirname "$0")/../func/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
. "$TESTS_DIR/func/lib_fuse.sh"
. "$TESTS_DIR/func/lib_failover.sh"
. "$TESTS_DIR/vm/lib_knbd.sh"
need_knbd fio mkfs.ext4 e2fsck mount umount python3 sha256sum
MNT=$T_TMP/mnt
mkdir -p "$MNT"
track_mount "$MNT"

# fs_fio_start DIR OUT: fio on two 6M files in DIR in the background:
# libaio, O_DIRECT, 4K..256K random writes at QD32, at most 512 KiB/s per
# job (so that the writing lasts 12 s, long enough for the fault however
# fast the guest, and a `dst show` costs two seconds in it), then crc32c
# verify of every block: the verify reads come after every write, so after
# the fault. Sets FIO_PID, FIO_OUT.
fs_fio_start() {
	local dir=$1 out=$2
	mkdir -p "$dir"
	bg fio_run 240 "$out" --name=fsload --directory="$dir" --ioengine=libaio --direct=1 \
		--rw=randwrite --bssplit=4k/40:16k/20:64k/20:256k/20 --blockalign=4k --iodepth=32 \
		--numjobs=2 --size=6M --rate=512k --verify=crc32c --verify_fatal=1 --do_verify=1 \
		--verify_state_save=0 --group_reporting
	FIO_PID=$BG_PID
	FIO_OUT=$out
	note "fio on two files in $dir (pid $FIO_PID)"
}

# wait_writes STORAGE NODE W0: until fio's writes reach NODE (its io/writes
# grows past W0, what it was before fio) while fio runs.
wait_writes() {
	local _
	for _ in $(seq 60); do
		pid_alive "$FIO_PID" || {
			tail -20 "$FIO_OUT" >&2
			fail "fio ended before the fault"
		}
		[ "$(show_attr "$1" "$2/io/writes")" -gt "$3" ] && return 0
		sleep 0.5
	done
	fail "fio's writes did not reach $2 in 30 s"
}

# fs_fio_wait: fs_fio_start's fio ended with no error and no bad block.
fs_fio_wait() {
	fo_fio_wait "$FIO_OUT" || fail "fio on the filesystem: an error or a bad block"
	grep -q 'err= 0' "$FIO_OUT" || fail "fio on the filesystem: no err= 0 line"
}

# fs_check DEV TREE LIST: umount, e2fsck -fn clean, mount again, the tree
# matches, umount.
fs_check() {
	run_ok "umount" umount "$MNT"
	run_ok "e2fsck -fn $1" e2fsck -fn "$1"
	note "e2fsck -fn: $(tail -1 "$T_TMP/run.out")"
	run_ok "mount" mount "$1" "$MNT"
	check_tree "$2" "$3"
	run_ok "umount" umount "$MNT"
}

# ---------------------------------------------------------------------------
step "1. ext4 on alg_stripe over two file-backed exports of 48M, dst start fs -f NBD"
free_nbd
knbd_export f0 48M
F0_URI=$URI
knbd_export f1 48M
F1_IMG=$IMG F1_PORT=$PORT F1_PID=$PID F1_URI=$URI
N1=n-$((48 * MiB / 512)) # the node's name: n-START (sectors)
st_create fs stripe
st_add fs --remote "$F0_URI"
st_add fs --remote "$F1_URI"
knbd_start fs "$NBD"
FS_PID=$ST_PID
wait_size "$NBD" $((96 * MiB))
run_ok "mkfs.ext4" mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$NBD"
run_ok "mount" mount "$NBD" "$MNT"
write_tree "$MNT/before" 20 "$T_TMP/before.sha256"
sync

step "1. fio in the filesystem; kill -9 f1 once its writes reach f1, files written meanwhile, f1 back 2 s later"
dmesg_mark
W0=$(show_attr fs "$N1/io/writes")
fs_fio_start "$MNT/fio" "$T_TMP/fio.stripe"
wait_writes fs "$N1" "$W0"
kill -KILL "$F1_PID"
wait_gone "$F1_PID" 10 || fail "export f1 survived kill -9"
rm -f "$DST_STATE_DIR/f1.pid"
T_DOWN=$(date +%s%3N)
# Buffered writes and a sync while the node is dead: the sync waits for it.
bg during_writer "$MNT/during"
SYNC_PID=$BG_PID
sleep 1
show_snap fs
assert_eq "$(snap "$N1/state")" reconnecting "$N1/state while f1 is dead"
assert_ge "$(snap "$N1/waiting")" 1 "requests waiting for the dead node"
READS_BACK=$(snap "$N1/io/reads") # none while it is dead
sleep 1
dst_ok export "$F1_IMG" --name f1 --listen "127.0.0.1:$F1_PORT" >/dev/null
note "f1 restarted on port $F1_PORT after $(($(date +%s%3N) - T_DOWN)) ms (pid $(export_pid f1))"
fo_wait_up fs "$N1" 30
bg_wait "$SYNC_PID" || fail "the files written while f1 was dead, or their sync, failed"
fs_fio_wait
show_snap fs
note "$N1: reconnects $(snap "$N1/reconnects"), resent $(snap "$N1/resent"), reads $READS_BACK -> $(snap "$N1/io/reads")"
assert_eq "$(snap "$N1/state")" up "$N1/state after the failover"
assert_ge "$(snap "$N1/reconnects")" 1 "$N1/reconnects"
# (resent counts the requests that were in flight at the kill: with fio's
# writes spaced out that may be none; the waiting ones were checked above.)
assert_eq "$(snap n-0/io/errors)" 0 "n-0/io/errors"
assert_eq "$(snap "$N1/io/errors")" 0 "$N1/io/errors"
assert_eq "$(snap io/errors)" 0 "fs io/errors"
assert_ge "$(snap "$N1/io/reads")" $((READS_BACK + 1)) "reads of $N1 after it came back (fio's verify)"
assert_eq "$(export_pid fs)" "$FS_PID" "the storage daemon is the same process"
knbd_connected "$NBD" fs
dmesg_clean "$NBD" "failover of a stripe node under ext4"
(cd "$MNT/during" && sha256sum ./g?) >"$T_TMP/during.sha256" || fail "sha256sum of the files written during the outage"

step "1. umount, e2fsck -fn, files intact"
fs_check "$NBD" "$MNT/before" "$T_TMP/before.sha256"
run_ok "mount" mount "$NBD" "$MNT"
check_tree "$MNT/during" "$T_TMP/during.sha256"
run_ok "umount" umount "$MNT"
knbd_stop fs "$NBD"
stop_export f0
stop_export f1

# ---------------------------------------------------------------------------
step "2. ext4 on alg_mirror of two 48M legs, dst start fm -f NBD"
free_nbd
knbd_export m0 48M
M0_URI=$URI
knbd_export m1 48M
M1_PID=$PID M1_URI=$URI
st_create fm mirror --assume-clean
st_add fm --remote "$M0_URI"
st_add fm --remote "$M1_URI"
knbd_start fm "$NBD"
wait_size "$NBD" "$(show_attr fm bytes)"
run_ok "mkfs.ext4" mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$NBD"
run_ok "mount" mount "$NBD" "$MNT"
write_tree "$MNT/before" 20 "$T_TMP/mbefore.sha256"
sync

step "2. fio in the filesystem; kill -9 m1 once fio's writes reach it, for good"
dmesg_mark
W0=$(show_attr fm n-0/io/writes)
fs_fio_start "$MNT/fio" "$T_TMP/fio.mirror"
wait_writes fm n-0 "$W0"
kill -KILL "$M1_PID"
wait_gone "$M1_PID" 10 || fail "export m1 survived kill -9"
rm -f "$DST_STATE_DIR/m1.pid"
fs_fio_wait
show_snap fm
assert_eq "$(snap health)" AD "fm health after m1 was killed"
assert_eq "$(snap io/errors)" 0 "fm io/errors"
knbd_connected "$NBD" fm
dmesg_clean "$NBD" "a mirror leg lost under ext4"
check_tree "$MNT/before" "$T_TMP/mbefore.sha256"

step "2. umount, e2fsck -fn, files intact on one leg"
fs_check "$NBD" "$MNT/before" "$T_TMP/mbefore.sha256"
knbd_stop fm "$NBD"
stop_export m0
echo "PASS"
