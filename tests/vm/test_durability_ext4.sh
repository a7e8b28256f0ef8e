#!/usr/bin/env bash
# Power-cut durability of a filesystem on dst (run inside the VM by
# tests/vm/run; make vm-check), the dm-log-writes method: ext4 on the kernel
# NBD device of a linear storage (`dst start NAME -f /dev/nbdN`) whose one
# export node's disk is a log-writes device. A metadata-heavy workload
# (tests/tools/fsdurability.py: creates, appends, renames, unlinks,
# truncates, mkdir/rmdir, symlinks) fsyncs a new file now and then and
# marks the log after each fsync returns. Then the log is replayed onto a
# blank disk to every FLUSH, FUA and mark after mkfs (a power cut there):
# after journal recovery, e2fsck -fn is clean at every point, and every
# file fsynced before it reads back whole.
. "$(dirname "$0")/../func/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
. "$TESTS_DIR/func/lib_fuse.sh"
. "$TESTS_DIR/vm/lib_dm.sh"
need_dm linear log-writes
[ -e /dev/nbd0 ] || skip "no /dev/nbd0 (this kernel has no nbd): run it with tests/vm/run"
need mkfs.ext4 e2fsck debugfs python3 blockdev
FS=$TESTS_DIR/tools/fsdurability.py

DATA=$((16 * MiB + 4096)) # 16 MiB of data and the node's label
SIZE=$((16 * MiB))
dm_carve ex-data "$DATA"
dm_carve ex-log $((64 * MiB))
dm_logwrites ex-lw /dev/mapper/ex-data /dev/mapper/ex-log

step "ext4 on the kernel NBD device of a linear storage over a logged export"
free_nbd
start_export ex-node /dev/mapper/ex-lw
st_create ex linear
st_add ex --remote "$URI"
rc=0
"$DST" start ex -f "$NBD" >"$T_TMP/start.out" 2>"$T_TMP/start.err" || rc=$?
check_stderr "$T_TMP/start.err" "dst start -f $NBD"
[ $rc -eq 0 ] || { cat "$T_TMP/start.err" >&2; fail "dst start ex -f $NBD"; }
track_export ex
EX_PID=$(export_pid ex) || fail "no pid file for ex"
wait_size "$NBD" "$SIZE"
run_ok "mkfs.ext4" mkfs.ext4 -q -F -E nodiscard,lazy_itable_init=0,lazy_journal_init=0 "$NBD"
run_ok "flush after mkfs" blockdev --flushbufs "$NBD"
dm_mark ex-lw mkfs
MNT=$T_TMP/mnt
mkdir -p "$MNT"
track_mount "$MNT"
run_ok "mount" mount -t ext4 "$NBD" "$MNT"

step "metadata-heavy workload, a mark after each fsync"
t0=$SECONDS
out=$(python3 "$FS" load "$MNT" 48 "$T_TMP/journal" ex-lw 2>&1) ||
	{ printf '%s\n' "$out" >&2; fail "the workload on ext4 over $NBD"; }
note "$out ($((SECONDS - t0)) s)"
run_ok "umount" umount "$MNT"
dst_ok stop ex >/dev/null
wait_gone "$EX_PID" 10 || fail "ex still runs after dst stop"
check_log "$DST_STATE_DIR/ex.log"
stop_export ex-node
dm_remove ex-lw

step "replay to every FLUSH, FUA and mark after mkfs: fsck clean, fsynced files whole"
truncate -s "$DATA" "$T_TMP/replay.img" || fail "truncate"
t0=$SECONDS
rc=0
out=$(python3 "$FS" check /dev/mapper/ex-log "$T_TMP/replay.img" mkfs "$T_TMP/journal" 2>&1) || rc=$?
printf '%s\n' "$out" | sed 's/^/   /'
note "(replayed and checked in $((SECONDS - t0)) s)"
[ $rc -eq 0 ] || fail "ext4 on dst lost fsynced files or was left unclean at a replay point"
cmp -n "$SIZE" /dev/mapper/ex-data "$T_TMP/replay.img" >/dev/null ||
	fail "the log replayed to its end differs from the disk"
note "the whole log replayed equals the disk"
echo "PASS"
