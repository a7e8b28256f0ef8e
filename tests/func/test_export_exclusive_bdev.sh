#!/usr/bin/env bash
# One writer per disk (issue 15), with a block device (a loop device over a
# file): an export opens it read-write with O_EXCL, so mkfs.ext4 of it fails
# (EBUSY) and a second read-write export is refused naming the holder, while
# a --readonly export is let in; after dst stop the claim is gone (mkfs
# works); a mounted device is refused naming the mount point; kill -9 of
# the export frees the device too.
# run.sh: group loop (loop devices: the cleanup of one test must not meet another's)
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
. "$TESTS_DIR/func/lib_fuse.sh" # loop devices and mounts, undone on exit
[ "$(id -u)" = 0 ] || skip "needs root (losetup, mount)"
need losetup mkfs.ext4 mount umount qemu-io

truncate -s 64M "$T_TMP/b.img"
LOOP=$(losetup --find --show "$T_TMP/b.img" 2>"$T_TMP/losetup.err") ||
	skip "losetup failed: $(cat "$T_TMP/losetup.err")"
track_loop "$LOOP"
note "loop device $LOOP over b.img"

# mkfs_quiet: mkfs.ext4 of the loop device; its status.
mkfs_quiet() {
	mkfs.ext4 -q -F "$LOOP" >"$T_TMP/mkfs.out" 2>&1
}

step "export b1: $LOOP read-write, claimed with O_EXCL"
start_export b1 "$LOOP"
B1=$URI B1_PID=$PID
assert_eq "$(show_attr b1 claim)" "exclusive (O_EXCL)" "b1/claim"
qio "$B1" "write -P 0xb1 0 64k" "flush"

step "mkfs.ext4 of the exported device fails"
if mkfs_quiet; then
	fail "mkfs.ext4 $LOOP succeeded while b1 exports it"
fi
note "mkfs.ext4: $(tr '\n' ' ' <"$T_TMP/mkfs.out")"
qio "$B1" "read -P 0xb1 0 64k"

step "a second read-write export is refused, naming b1; --readonly is let in"
run_fails "a second export of $LOOP" "$DST" export "$LOOP" --name b2 --listen "127.0.0.1:$(free_port)"
check_stderr "$T_TMP/run.out" "dst export"
note "refused: $RUN_OUT"
assert_contains "$RUN_OUT" "export b2: $LOOP: in use by dstd $B1_PID (export b1)" "why b2 was refused"
[ "$(wc -l <"$T_TMP/run.out")" -eq 1 ] || fail "the refusal is not one line"
start_export b3 "$LOOP" --readonly
assert_eq "$(show_attr b3 claim)" "none (read-only)" "b3/claim"
run_ok "a read through b3" qemu-io -r -f raw -c "read -P 0xb1 0 64k" "$URI"
stop_export b3

step "after dst stop b1 the device is free: mkfs.ext4 works"
stop_export b1
mkfs_quiet || { cat "$T_TMP/mkfs.out" >&2; fail "mkfs.ext4 $LOOP after dst stop b1"; }

step "mounted, it is refused, naming the mount point"
mkdir -p "$T_TMP/mnt"
run_ok "mount $LOOP" mount "$LOOP" "$T_TMP/mnt"
track_mount "$T_TMP/mnt"
run_fails "an export of a mounted device" "$DST" export "$LOOP" --name b4 --listen "127.0.0.1:$(free_port)"
note "refused: $RUN_OUT"
assert_contains "$RUN_OUT" "export b4: $LOOP: in use: $LOOP is mounted on $T_TMP/mnt" "why b4 was refused"
run_ok "umount" umount "$T_TMP/mnt"

step "kill -9 of the export frees the device"
start_export b5 "$LOOP"
B5_PID=$PID
if mkfs_quiet; then
	fail "mkfs.ext4 $LOOP succeeded while b5 exports it"
fi
kill -KILL "$B5_PID"
wait_gone "$B5_PID" 10 || fail "b5 survived kill -9"
mkfs_quiet || { cat "$T_TMP/mkfs.out" >&2; fail "mkfs.ext4 $LOOP after kill -9 of b5"; }
start_export b6 "$LOOP"
stop_export b6
echo "PASS"
