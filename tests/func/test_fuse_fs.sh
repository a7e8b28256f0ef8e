#!/usr/bin/env bash
# A filesystem on a storage: a 2-node alg_linear storage over two `dst
# export` nodes, started with --fuse, attached as a loop device (direct IO),
# mkfs.ext4, mounted, a tree of files written with their checksums,
# unmounted, fsck -f clean; `dst stop` (detaches, unmounts), `dst start NAME`
# again with no options (the saved --fuse is reused), attached again (this
# time buffered), fsck clean, mounted, every checksum matches. The FUSE file
# and the storage's NBD view hold the same bytes. fsync reaches the nodes as
# flushes. (The same over alg_mirror, with a leg lost: test_fuse_mirror.sh.)
# run.sh: group loop (loop devices: the cleanup of one test must not meet another's)
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
. "$TESTS_DIR/func/lib_fuse.sh"
need_fuse nbdcopy nbdinfo python3 sha256sum

step "two export nodes of 96M, a linear storage over them, started with --fuse"
st_export fa 96M
FA_URI=$URI FA_IMG=$IMG
st_export fb 96M
FB_URI=$URI FB_IMG=$IMG
st_create fs linear
st_add fs --remote "$FA_URI"
st_add fs --remote "$FB_URI"
FILE=$T_TMP/fs.dev
track_fuse "$FILE"
st_start fs --fuse "$FILE"
assert_eq "$(show_attr fs fuse)" "$FILE" "fs/fuse"
assert_eq "$(mount_fstype "$FILE")" fuse.dst "type of the mount at the FUSE file"
assert_eq "$(stat -c %s "$FILE")" $((192 * MiB)) "size of the FUSE file"
assert_eq "$(stat -c %F "$FILE")" "regular file" "the FUSE file's type"
grep -qx "fuse = $FILE" "$DST_STATE_DIR/fs.conf" || fail "--fuse was not saved in fs.conf"

step "dst attach --direct-io: a loop device, shown as fs/loop"
fuse_attach fs --direct-io
assert_eq "$(show_attr fs loop)" "$LOOP" "fs/loop"
assert_eq "$(losetup --list --noheadings --output BACK-FILE "$LOOP" | tr -d ' ')" "$FILE" "backing file of $LOOP"
assert_eq "$(losetup --list --noheadings --output DIO "$LOOP" | tr -d ' ')" 1 "direct IO of $LOOP"
assert_eq "$(blockdev --getsize64 "$LOOP")" $((192 * MiB)) "size of $LOOP"

step "mkfs.ext4, mount, write a tree of files, unmount, fsck -f"
ext4_mount "$LOOP"
write_tree "$MNT/tree" 120 "$T_TMP/tree.sha256"
note "$(wc -l <"$T_TMP/tree.sha256") files, $(du -sm "$MNT/tree" | cut -f1) MiB"
flushes0=$(show_attr fs n-0/io/flushes)
run_ok "sync" sync -f "$MNT/tree/big"
assert_ge "$(show_attr fs n-0/io/flushes)" $((flushes0 + 1)) "flushes on node n-0 after sync"
check_tree "$MNT/tree" "$T_TMP/tree.sha256"
run_ok "umount" umount "$MNT"
run_ok "fsck.ext4 -f -n (clean, no changes)" fsck.ext4 -f -n "$LOOP"
assert_ge "$(show_attr fs fuse_file/io/flushes)" 1 "fsync on the FUSE file became flushes"
assert_eq "$(show_attr fs fuse_file/io/errors)" 0 "errors on the FUSE file"

step "the FUSE file and the storage's NBD socket hold the same bytes"
fsha=$(sha256sum <"$FILE" | cut -d' ' -f1)
assert_eq "$(dev_sha "$(st_uri fs)")" "$fsha" "sha256 over NBD vs. through the FUSE file"
want=$(node_data "$FA_IMG" "$FB_IMG" | sha256sum | cut -d' ' -f1)
assert_eq "$fsha" "$want" "sha256 of the FUSE file vs. the nodes' backing files end to end"

step "dst stop: detaches the loop device, unmounts the FUSE file"
out=$(dst stop fs) || fail "dst stop fs"
note "$out"
assert_contains "$out" "detached $LOOP" "dst stop output"
wait_gone "$ST_PID" 10 || fail "the storage daemon still runs"
[ -z "$(loops_over "$FILE")" ] || fail "a loop device is still over $FILE: $(loops_over "$FILE")"
! is_mounted "$FILE" || fail "$FILE is still mounted after dst stop"
[ -f "$FILE" ] && [ "$(stat -c %s "$FILE")" = 0 ] || fail "$FILE should stay as an empty file"
[ ! -e "$DST_STATE_DIR/fs.loop" ] || fail "fs.loop left after dst stop"
check_log "$DST_STATE_DIR/fs.log"
assert_eq "$(show_attr fs fuse)" "$FILE" "a stopped storage shows its saved FUSE file"

step "dst start fs (the saved --fuse), dst attach (buffered), fsck, mount, checksums"
st_start fs
assert_eq "$(show_attr fs fuse)" "$FILE" "fs/fuse after the restart"
fuse_attach fs
assert_eq "$(losetup --list --noheadings --output DIO "$LOOP" | tr -d ' ')" 0 "direct IO without --direct-io"
run_ok "fsck.ext4 -f -n after the restart" fsck.ext4 -f -n "$LOOP"
run_ok "mount $LOOP again" mount "$LOOP" "$MNT"
check_tree "$MNT/tree" "$T_TMP/tree.sha256"
note "all $(wc -l <"$T_TMP/tree.sha256") checksums match"
run_ok "umount" umount "$MNT"
out=$(dst stop fs) || fail "dst stop fs"
wait_gone "$ST_PID" 10 || fail "the storage daemon still runs"
[ -z "$(loops_over "$FILE")" ] || fail "a loop device is still over $FILE"
check_log "$DST_STATE_DIR/fs.log"
stop_export fa
stop_export fb
echo "PASS"
