#!/usr/bin/env bash
# Kernel NBD in a real kernel (run inside the VM by tests/vm/run; make
# vm-check): a linear storage over a dst export, started with `dst start NAME
# -f /dev/nbdN`, carries ext4: files written with checksums, unmounted, the
# storage stopped (the device disconnected) and started again without -f
# (the device was saved in its config): fsck is clean, every file matches.
# Outside a guest with nbd it skips. Temp files and the state dir are on the
# guest's tmpfs /tmp.
. "$(dirname "$0")/../func/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
. "$TESTS_DIR/func/lib_fuse.sh"
[ "$(id -u)" = 0 ] || skip "needs root (kernel NBD, mount): run it with tests/vm/run"
[ -e /dev/nbd0 ] || skip "no /dev/nbd0 (this kernel has no nbd): run it with tests/vm/run"
need mkfs.ext4 fsck.ext4 blockdev python3 sha256sum

free_nbd
SYSPID=/sys/block/$(basename "$NBD")/pid

step "a linear storage of a dst export and a local file, started with -f $NBD"
st_export na 48M
NA=$URI
truncate -s $((16 * MiB + 4096)) "$T_TMP/local.img" || fail "truncate"
st_create kn linear
st_add kn --remote "$NA"
st_add kn --disk "$T_TMP/local.img"
rc=0
"$DST" start kn -f "$NBD" >"$T_TMP/start.out" 2>"$T_TMP/start.err" || rc=$?
check_stderr "$T_TMP/start.err" "dst start -f $NBD"
[ $rc -eq 0 ] || {
	cat "$T_TMP/start.err" >&2
	fail "dst start kn -f $NBD"
}
track_export kn
KN_PID=$(export_pid kn) || fail "no pid file for kn"
assert_eq "$(show_attr kn nbd_device)" "$NBD" "kn/nbd_device"
wait_size "$NBD" $((64 * MiB))
[ -e "$SYSPID" ] || fail "$NBD is not connected ($SYSPID missing)"
assert_eq "$(cat "/sys/block/$(basename "$NBD")/backend" 2>/dev/null)" "dst:kn" "backend of $NBD"

step "ext4 on $NBD: files with checksums, umount"
ext4_mount "$NBD"
write_tree "$MNT/tree" 40 "$T_TMP/tree.sha256"
check_tree "$MNT/tree" "$T_TMP/tree.sha256"
run_ok "umount" umount "$MNT"

step "dst stop disconnects $NBD"
dst_ok stop kn >/dev/null
wait_gone "$KN_PID" 10 || fail "kn still runs after dst stop"
[ ! -e "$SYSPID" ] || fail "$NBD is still connected after dst stop"
run_fails "mount of the disconnected $NBD" mount "$NBD" "$MNT"

step "dst start kn again (no -f): $NBD back, fsck clean, files intact"
dst_ok start kn >/dev/null
KN_PID=$(export_pid kn) || fail "no pid file for kn after the restart"
wait_size "$NBD" $((64 * MiB))
run_ok "fsck.ext4 -f -n" fsck.ext4 -f -n "$NBD"
run_ok "mount" mount "$NBD" "$MNT"
check_tree "$MNT/tree" "$T_TMP/tree.sha256"
run_ok "umount" umount "$MNT"
dst_ok stop kn >/dev/null
wait_gone "$KN_PID" 10 || fail "kn still runs after dst stop"
[ ! -e "$SYSPID" ] || fail "$NBD is still connected after the second dst stop"
check_log "$DST_STATE_DIR/kn.log"
stop_export na
echo "PASS"
