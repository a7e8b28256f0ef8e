#!/usr/bin/env bash
# A filesystem on a mirror while one leg is killed and restarted: a 2-leg
# alg_mirror over two file-backed `dst export` legs (--request-timeout 2),
# started with --fuse and attached as a loop device, mkfs.ext4, mounted, a
# tree of files written; leg 1's export is killed with SIGKILL in the middle
# of writing a second tree (the mirror goes on with leg 0: health AD, no
# error reaches the filesystem); the export is restarted on its port with
# the same file: the dirty regions are resynced (health AA), unmount, fsck -f
# clean, both legs byte-identical over the data range; stop and start the
# storage, mount again: every checksum matches.
# run.sh: group loop (loop devices: the cleanup of one test must not meet another's)
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
. "$TESTS_DIR/func/lib_fuse.sh"
need_fuse python3 sha256sum cmp

# wait_attr NAME ATTR VALUE SECONDS WHAT
wait_attr() {
	local i
	for i in $(seq $(($4 * 5))); do
		[ "$(show_attr "$1" "$2")" = "$3" ] && return 0
		sleep 0.2
	done
	fail "$5: $1/$2 is '$(show_attr "$1" "$2")', expected '$3' within $4 s"
}

step "a mirror over two 96M file-backed legs, started with --fuse, attached"
st_export ma 96M
MA_URI=$URI MA_IMG=$IMG
st_export mb 96M
MB_URI=$URI MB_IMG=$IMG MB_PORT=$PORT MB_PID=$PID
st_create fm mirror --request-timeout 2 --assume-clean # two blank legs
st_add fm --remote "$MA_URI"
st_add fm --remote "$MB_URI"
FILE=$T_TMP/fm.dev
track_fuse "$FILE"
st_start fm --fuse "$FILE"
DATA=$((96 * MiB)) # each leg file is 4 KiB more: its last 4 KiB hold its label
assert_eq "$(stat -c %s "$FILE")" "$DATA" "size of the FUSE file"
assert_eq "$(show_attr fm health)" AA "health at start"
fuse_attach fm --direct-io

step "mkfs.ext4, mount, a first tree of files"
# No lazy init: ext4 would go on writing its tables in the background and
# keep regions dirty.
ext4_mount "$LOOP" -E lazy_itable_init=0,lazy_journal_init=0
write_tree "$MNT/t1" 60 "$T_TMP/t1.sha256"
run_ok "sync" sync -f "$MNT/t1/big"
# Let the bitmap sweep clean up, so what is dirty later is the second tree.
wait_attr fm bitmap/dirty 0 15 "the bitmap sweep after the first tree"

step "kill -9 leg n-196608's export while a second tree is written"
cat >"$T_TMP/writer.py" <<'PY'
import os, sys, time
root = sys.argv[1]
os.makedirs(root, exist_ok=True)
for i in range(80):
    with open(os.path.join(root, "g%03d" % i), "wb") as f:
        f.write(os.urandom(256 * 1024))
        f.flush()
        os.fsync(f.fileno())
    time.sleep(0.02)
PY
bg python3 "$T_TMP/writer.py" "$MNT/t2"
WRITER=$BG_PID
sleep 0.5
kill -KILL "$MB_PID"
wait_gone "$MB_PID" 10 || fail "leg export mb survived kill -9"
wait_attr fm health AD 10 "after the leg's export died"
bg_wait "$WRITER" || fail "writing files while a leg was down failed"
(cd "$MNT/t2" && sha256sum g*) >"$T_TMP/t2.sha256"
run_ok "sync" sync -f "$MNT/t2/g000"
note "$(show_attr fm bitmap/dirty) dirty regions while the leg is down"

step "the leg's export comes back on its port: dirty regions resynced"
c0=$(show_attr fm resync/regions_copied)
dst_ok export "$MB_IMG" --name mb --listen "127.0.0.1:$MB_PORT" >/dev/null
wait_attr fm health AA 20 "after the leg came back"
copied=$(($(show_attr fm resync/regions_copied) - c0))
note "$copied regions resynced (of $(($(show_attr fm region_size) > 0 ? DATA / $(show_attr fm region_size) : 0)))"
assert_ge "$copied" 1 "regions resynced to the returning leg"
assert_le "$copied" 95 "regions resynced: only the dirty ones, not the whole leg"
! grep -q "copying it whole" "$DST_STATE_DIR/fm.log" || fail "the returning leg was copied whole"

step "unmount, fsck -f clean, legs identical, checksums"
check_tree "$MNT/t1" "$T_TMP/t1.sha256"
(cd "$MNT/t2" && sha256sum -c --quiet "$T_TMP/t2.sha256") || fail "second tree checksums"
run_ok "umount" umount "$MNT"
run_ok "fsck.ext4 -f -n (clean)" fsck.ext4 -f -n "$LOOP"
# Both legs hold the device: flush and compare them over the data range.
cmp -n "$DATA" "$MA_IMG" "$MB_IMG" || fail "the legs differ over the data range after the resync"

step "stop and start the storage, mount again: every checksum matches"
out=$(dst stop fm) || fail "dst stop fm"
wait_gone "$ST_PID" 10 || fail "the storage daemon still runs"
check_log "$DST_STATE_DIR/fm.log"
st_start fm
assert_eq "$(show_attr fm health)" AA "health after the restart"
fuse_attach fm
run_ok "fsck.ext4 -f -n after the restart" fsck.ext4 -f -n "$LOOP"
run_ok "mount $LOOP again" mount "$LOOP" "$MNT"
check_tree "$MNT/t1" "$T_TMP/t1.sha256"
(cd "$MNT/t2" && sha256sum -c --quiet "$T_TMP/t2.sha256") || fail "second tree checksums after the restart"
run_ok "umount" umount "$MNT"
out=$(dst stop fm) || fail "dst stop fm"
wait_gone "$ST_PID" 10 || fail "the storage daemon still runs"
stop_export ma
stop_export mb
echo "PASS"
