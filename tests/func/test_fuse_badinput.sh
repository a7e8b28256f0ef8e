#!/usr/bin/env bash
# Bad input around the FUSE frontend, each with a clear one-line error and
# nothing changed (config, state dir, the file that was there):
#  - --fuse PATH that exists and is not ours: a file with data, a directory,
#    a symlink, a character device, a missing directory, a bind mount, the
#    live FUSE file of another storage;
#  - no FUSE in the kernel: /dev/fuse missing (simulated in a private mount
#    namespace whose /dev has no fuse node);
#  - -f /dev/nbdN where the kernel has no NBD driver;
#  - --fuse on an export, --fuse with --no-fuse;
#  - dst stop while the loop device is mounted, while a loop device set up
#    by hand is over the file, while the file is bind-mounted elsewhere: the
#    message names the mount point or the device, and the storage keeps
#    serving; it stops once that is undone;
#  - dst detach while mounted; dst attach twice, without a FUSE file, of a
#    storage that is not running; dst detach of nothing;
#  - the FUSE file unmounted from outside: the daemon says so, keeps serving
#    NBD, stops cleanly and mounts it again on the next start.
# run.sh: group loop (loop devices: the cleanup of one test must not meet another's)
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
. "$TESTS_DIR/func/lib_fuse.sh"
need_fuse unshare

step "an export node and two storages over it"
st_export bn 32M
truncate -s 16M "$T_TMP/d1.img" "$T_TMP/d2.img"
st_create bi linear
st_add bi --remote "$URI"
st_create b2 linear
st_add b2 --disk "$T_TMP/d1.img"

step "--fuse PATH that is not dst's to take"
printf 'precious bytes\n' >"$T_TMP/data.file"
bad_input "a file with data" "$T_TMP/data.file" "15 bytes" "refusing" -- start bi --fuse "$T_TMP/data.file"
assert_eq "$(cat "$T_TMP/data.file")" "precious bytes" "the file's content after the refusal"
mkdir "$T_TMP/adir"
bad_input "a directory" "$T_TMP/adir" "a directory" -- start bi --fuse "$T_TMP/adir"
ln -s "$T_TMP/data.file" "$T_TMP/alink"
bad_input "a symlink" "$T_TMP/alink" "symbolic link" -- start bi --fuse "$T_TMP/alink"
bad_input "a character device" "/dev/null" "character device" -- start bi --fuse /dev/null
bad_input "a missing directory" "$T_TMP/nodir" "No such file or directory" -- start bi --fuse "$T_TMP/nodir/file"
touch "$T_TMP/bound" "$T_TMP/src"
run_ok "bind mount" mount --bind "$T_TMP/src" "$T_TMP/bound"
track_mount "$T_TMP/bound"
bad_input "a mount point" "$T_TMP/bound" "already a mount point" -- start bi --fuse "$T_TMP/bound"
run_ok "umount" umount "$T_TMP/bound"
track_fuse "$T_TMP/b2.dev"
st_start b2 --fuse "$T_TMP/b2.dev"
B2_PID=$ST_PID
bad_input "another storage's live FUSE file" "$T_TMP/b2.dev" "dst storage 'b2'" -- start bi --fuse "$T_TMP/b2.dev"
[ ! -e "$DST_STATE_DIR/bi.pid" ] || fail "bi runs after the refusals"
! grep -q '^fuse' "$DST_STATE_DIR/bi.conf" || fail "a refused --fuse was saved in bi.conf"

step "no FUSE in the kernel: /dev/fuse missing"
# A private mount namespace whose /dev holds only what dst needs besides.
mkdir "$T_TMP/fakedev"
for n in null zero full random urandom; do cp -a "/dev/$n" "$T_TMP/fakedev/" || fail "copy /dev/$n"; done
before=$(state_snapshot)
rc=0
# shellcheck disable=SC2016 # expanded by the inner sh
unshare --mount --propagation private sh -c 'mount --bind "$1" /dev && exec "$2" start bi --fuse "$3"' \
	sh "$T_TMP/fakedev" "$DST" "$T_TMP/nofuse.dev" >"$T_TMP/nofuse.out" 2>"$T_TMP/nofuse.err" || rc=$?
check_stderr "$T_TMP/nofuse.err" "dst start in a namespace without /dev/fuse"
note "status $rc: $(cat "$T_TMP/nofuse.err")"
[ $rc -ne 0 ] || fail "dst start --fuse without /dev/fuse succeeded"
assert_eq "$(grep -c '' "$T_TMP/nofuse.err")" 1 "lines on stderr without /dev/fuse"
assert_contains "$(cat "$T_TMP/nofuse.err")" "FUSE is not available: /dev/fuse: No such file or directory" "error without /dev/fuse"
assert_contains "$(cat "$T_TMP/nofuse.err")" "modprobe fuse" "error without /dev/fuse"
assert_eq "$(state_snapshot)" "$before" "the state dir after the refusal"
[ ! -e "$T_TMP/nofuse.dev" ] || fail "the FUSE file was created although FUSE is missing"

step "-f /dev/nbdN, --fuse on an export, --fuse with --no-fuse"
if [ -e /dev/nbd0 ]; then
	note "this kernel has /dev/nbd0: the kernel NBD error is test_fuse_kernel_nbd's"
else
	bad_input "-f /dev/nbd0 without kernel NBD" "kernel NBD is not available" "/dev/nbd0" "modprobe nbd" -- start bi -f /dev/nbd0
fi
bad_input "--fuse on an export" "export node" -- start bn --fuse "$T_TMP/x.dev"
bad_input "--fuse with --no-fuse" "--no-fuse" -- start bi --fuse "$T_TMP/x.dev" --no-fuse

step "dst attach / detach errors"
bad_input "attach a storage that is not running" "not running" -- attach bi
st_start bi
bad_input "attach a storage without a FUSE file" "no FUSE file" -- attach bi
bad_input "detach with nothing attached" "not attached" -- detach bi
st_stop bi
bad_input "attach --bogus" "--bogus" -- attach b2 --bogus
bad_input "detach --direct-io" "--direct-io" -- detach b2 --direct-io

step "dst stop / detach while the loop device is mounted"
fuse_attach b2 --direct-io
bad_input "attach twice" "already attached to $LOOP" -- attach b2
run_ok "mkfs.ext4" mkfs.ext4 -q -F "$LOOP"
MNT=$T_TMP/mnt
mkdir -p "$MNT"
track_mount "$MNT"
run_ok "mount" mount "$LOOP" "$MNT"
echo hello >"$MNT/hello"
bad_input "stop while mounted" "$LOOP" "is mounted on $MNT" "umount $MNT" -- stop b2
bad_input "detach while mounted" "$LOOP" "is mounted on $MNT" -- detach b2
pid_alive "$B2_PID" || fail "b2 stopped although it was refused"
assert_eq "$(show_attr b2 loop)" "$LOOP" "b2/loop after the refusals"
assert_eq "$(cat "$MNT/hello")" hello "the mounted filesystem after the refusals"
run_ok "umount" umount "$MNT"

step "dst stop while a loop device set up by hand is over the FUSE file"
OTHER=$(losetup --find --show "$T_TMP/b2.dev") || fail "losetup by hand"
track_loop "$OTHER"
bad_input "stop with a foreign loop device" "$OTHER" "not set up by 'dst attach'" "losetup -d $OTHER" -- stop b2
run_ok "mount the foreign loop device" mount "$OTHER" "$MNT"
bad_input "stop with a foreign loop device mounted" "$OTHER" "is mounted on $MNT" -- stop b2
run_ok "umount" umount "$MNT"
run_ok "losetup -d" losetup -d "$OTHER"

step "dst stop while the FUSE file is bind-mounted elsewhere"
touch "$T_TMP/bind2"
run_ok "bind mount of the FUSE file" mount --bind "$T_TMP/b2.dev" "$T_TMP/bind2"
track_mount "$T_TMP/bind2"
bad_input "stop with a bind mount" "also mounted on $T_TMP/bind2" -- stop b2
run_ok "umount" umount "$T_TMP/bind2"
pid_alive "$B2_PID" || fail "b2 stopped although it was refused"

step "now dst stop works: detaches, unmounts"
out=$(dst stop b2) || fail "dst stop b2"
assert_contains "$out" "detached $LOOP" "dst stop b2"
wait_gone "$B2_PID" 10 || fail "b2 still runs"
! is_mounted "$T_TMP/b2.dev" || fail "b2.dev still mounted"
[ -z "$(loops_over "$T_TMP/b2.dev")" ] || fail "a loop device is still over b2.dev"
check_log "$DST_STATE_DIR/b2.log"

step "the FUSE file unmounted from outside"
st_start b2
run_ok "umount of the FUSE file" umount "$T_TMP/b2.dev"
for _ in $(seq 50); do
	[ "$(show_attr b2 fuse_file/state)" = lost ] && break
	sleep 0.1
done
assert_eq "$(show_attr b2 fuse_file/state)" lost "b2/fuse_file/state after an outside umount"
grep -q "unmounted from outside" "$DST_STATE_DIR/b2.log" || fail "the log does not say the FUSE file went away"
bad_input "attach a FUSE file that is gone" "not mounted" "lost" -- attach b2
qio "$(st_uri b2)" "write -P 0x33 0 64k" "read -P 0x33 0 64k"
st_stop b2
st_start b2
assert_eq "$(show_attr b2 fuse_file/state)" mounted "b2/fuse_file/state after the next start"
assert_file_pattern "$T_TMP/b2.dev" 0 65536 0x33 "the FUSE file after the next start"
st_stop b2
check_log "$DST_STATE_DIR/bi.log"
stop_export bn
echo "PASS"
