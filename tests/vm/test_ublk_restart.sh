#!/usr/bin/env bash
# A storage's daemon killed with -9 while ext4 on its /dev/ublkbN is mounted
# and being written, by fio with crc32c verify and by writers that fsync
# each file (run inside the VM by tests/vm/run; make vm-check): the device
# stays, its IO waits (the kernel quiesced it: user recovery); `dst start`
# takes it back and the requests the dead daemon had taken are sent again:
# fio finishes with 0 errors and every block verifies, the writers finish,
# what was fsynced before the kill and what was written across it is all
# there, the kernel logs no IO or ext4 error, fsck is clean. Twice: in the
# writing, and again later (a device taken back is taken back again). Then
# a third time, started first without --ublk: the log says the device is
# still there and waits, and the start with --ublk takes it back.
# Outside a guest with ublk it skips.
. "$(dirname "$0")/../func/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
. "$TESTS_DIR/func/lib_fuse.sh"
. "$TESTS_DIR/func/lib_failover.sh"
. "$TESTS_DIR/vm/lib_knbd.sh"
. "$TESTS_DIR/vm/lib_ublk.sh"
need_ublk mkfs.ext4 fsck.ext4 python3 sha256sum fio dmesg
dmesg_mark

# kill_dstd: kill -9 the storage's daemon; the device stays, IO waits.
kill_dstd() {
	local pid
	pid=$(export_pid ur) || fail "no pid file for ur"
	kill -9 "$pid"
	wait_gone "$pid" 10 || fail "dstd $pid still runs after kill -9"
	[ -b "$UBLK" ] || fail "$UBLK went away when its daemon died"
}

# restart_dstd N: dst start takes the device back (the Nth time).
restart_dstd() {
	local rc=0 n
	"$DST" start ur >"$T_TMP/restart.out" 2>"$T_TMP/restart.err" || rc=$?
	[ $rc -eq 0 ] || {
		cat "$T_TMP/restart.out" "$T_TMP/restart.err" >&2
		fail "dst start ur after kill -9 (status $rc)"
	}
	check_stderr "$T_TMP/restart.err" "dst start ur after kill -9"
	assert_contains "$(cat "$T_TMP/restart.out")" "ublk device $UBLK (taken back" \
		"dst start output"
	n=$(grep -c "taking back $UBLK, left by dstd" "$DST_STATE_DIR/ur.log")
	[ "$n" = "$1" ] || {
		log_tail "$DST_STATE_DIR/ur.log" >&2
		fail "the restarted daemon did not say it took $UBLK back ($n times, not $1)"
	}
	assert_eq "$(show_attr ur ublk_recoveries)" 1 "ur/ublk_recoveries"
}

step "a linear storage of a dst export and a local file on ublk, ext4 mounted"
knbd_export na 48M
truncate -s $((32 * MiB + 4096)) "$T_TMP/local.img" || fail "truncate"
st_create ur linear
st_add ur --remote "$URI"
st_add ur --disk "$T_TMP/local.img"
ublk_start ur
ext4_mount "$UBLK"
write_tree "$MNT/before" 20 "$T_TMP/before.sha256"
run_ok "sync" sync

step "fio with verify and fsyncing writers on ext4; kill -9 of dstd: IO waits"
# Each writer (tests/tools/fsync_writer.py): files of 64 KiB written and
# fsynced one after another, each file's checksum recorded only once its
# fsync returned.
PY=$(command -v python3)
mkdir -p "$MNT/fio"
# Writes limited to 12 s, so both kills land in them; the verify reads come
# after every write, so after both restarts.
bg fio_run 240 "$T_TMP/fio.out" --name=restart --directory="$MNT/fio" --ioengine=libaio \
	--direct=1 --rw=randwrite --bssplit=4k/40:16k/20:64k/20:256k/20 --blockalign=4k \
	--iodepth=32 --numjobs=2 --size=6M --rate=512k --verify=crc32c --verify_fatal=1 \
	--do_verify=1 --verify_state_save=0 --group_reporting
FIO_PID=$BG_PID
bg "$PY" "$TESTS_DIR/tools/fsync_writer.py" "$MNT/w1" 60 "$T_TMP/w1.sha256"
W1=$BG_PID
for _ in $(seq 300); do
	[ "$(cat "$T_TMP/w1.sha256" 2>/dev/null | wc -l)" -ge 4 ] && break
	sleep 0.1
done
w0=$(show_attr ur ublk_io/writes)
[ "$w0" -gt 0 ] || fail "no writes reached ur before the kill"
kill_dstd
sleep 2
n1=$(wc -l <"$T_TMP/w1.sha256")
sleep 2
pid_alive "$W1" || fail "the writer ended while the daemon was dead"
pid_alive "$FIO_PID" || fail "fio ended while the daemon was dead"
assert_eq "$(wc -l <"$T_TMP/w1.sha256")" "$n1" "files the writer finished while the daemon was dead"
note "IO waits ($n1 files written before the kill)"

step "dst start ur: $UBLK taken back, IO goes on"
restart_dstd 1
for _ in $(seq 100); do
	[ "$(show_attr ur ublk_io/writes)" -gt 20 ] && break
	sleep 0.2
done
[ "$(show_attr ur ublk_io/writes)" -gt 20 ] || fail "IO did not go on after the restart"

step "kill -9 again, dst start again"
kill_dstd
sleep 1
restart_dstd 2
start=$(date +%s)
fo_fio_wait "$T_TMP/fio.out" || fail "fio across two kills of dstd: an error or a bad block"
assert_contains "$(cat "$T_TMP/fio.out")" "err= 0" "fio's result"
bg_wait "$W1" 180 || fail "the writer failed across the kills"
note "fio and the writer done $(($(date +%s) - start)) s after the second restart"
assert_eq "$(wc -l <"$T_TMP/w1.sha256")" 60 "files of the writer"
(cd "$MNT/w1" && sha256sum --quiet -c "$T_TMP/w1.sha256") || fail "the writer's files differ"
check_tree "$MNT/before" "$T_TMP/before.sha256"
assert_eq "$(show_attr ur ublk_io/errors)" 0 "ur/ublk_io/errors"
dmesg_clean "$UBLK" "fio and writers across kill -9 of dstd"

step "killed again, then started without --ublk: the log says the device waits; --ublk takes it back"
kill_dstd
dst_ok start ur --no-ublk >/dev/null
grep -q "its ublk device $UBLK is still there (quiesced" "$DST_STATE_DIR/ur.log" || {
	log_tail "$DST_STATE_DIR/ur.log" >&2
	fail "a start without --ublk did not say $UBLK of ur is still there"
}
[ -b "$UBLK" ] || fail "$UBLK went away under a start without --ublk"
stop_export ur
"$DST" start ur --ublk >"$T_TMP/restart.out" 2>&1 || {
	cat "$T_TMP/restart.out" >&2
	fail "dst start ur --ublk after a start without it"
}
assert_contains "$(cat "$T_TMP/restart.out")" "ublk device $UBLK (taken back" "dst start output"
assert_eq "$(show_attr ur ublk_recoveries)" 1 "ur/ublk_recoveries"
check_tree "$MNT/before" "$T_TMP/before.sha256"

step "umount, fsck clean, dst stop deletes the device"
run_ok "umount" umount "$MNT"
run_ok "fsck.ext4 -f -n" fsck.ext4 -f -n "$UBLK"
ublk_stop ur "$UBLK"
stop_export na
echo "PASS"
