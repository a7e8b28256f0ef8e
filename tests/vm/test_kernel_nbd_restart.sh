#!/usr/bin/env bash
# A storage's daemon killed with -9 while ext4 on its /dev/nbdN is mounted
# and being written (run inside the VM by tests/vm/run; make vm-check):
# the device stays, its IO waits; `dst start` takes the device back
# (NBD_CMD_RECONFIGURE with a new socket) instead of disconnecting it; the
# writers finish without an error, the kernel logs no IO error, what was
# fsynced before the kill and what was written across it is all there, and
# fsck is clean. Twice: once with the writers running, once under fio with
# verify. And the daemon's end of the kernel's socket cut while it runs
# (tests/tools/cut_socketpair.py): it gives the device a new one by itself.
# Outside a guest with nbd it skips.
. "$(dirname "$0")/../func/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
. "$TESTS_DIR/func/lib_fuse.sh"
. "$TESTS_DIR/vm/lib_knbd.sh"
need_knbd mkfs.ext4 fsck.ext4 python3 sha256sum fio dmesg

free_nbd
DEVNAME=$(basename "$NBD")
SYSPID=/sys/block/$DEVNAME/pid

# The kernel's log must show no error from here on. Expected: "Dead
# connection, failed to find a fallback" (a request finding the dead
# daemon's socket, before it waits for the next one).
dmesg_mark
DEAD='Dead connection, failed to find a fallback'

# kill_dstd: kill -9 the storage's daemon and make sure the device waits.
kill_dstd() {
	local pid
	pid=$(export_pid kn) || fail "no pid file for kn"
	kill -9 "$pid"
	wait_gone "$pid" 10 || fail "dstd $pid still runs after kill -9"
	[ -e "$SYSPID" ] || fail "$NBD was disconnected when its daemon died"
}

# restart_dstd N: dst start takes the device back (the Nth time).
restart_dstd() {
	local rc=0 n
	"$DST" start kn >"$T_TMP/restart.out" 2>"$T_TMP/restart.err" || rc=$?
	[ $rc -eq 0 ] || {
		cat "$T_TMP/restart.out" "$T_TMP/restart.err" >&2
		fail "dst start kn after kill -9 (status $rc)"
	}
	check_stderr "$T_TMP/restart.err" "dst start kn after kill -9"
	n=$(grep -c "taken back" "$DST_STATE_DIR/kn.log")
	[ "$n" = "$1" ] || {
		log_tail "$DST_STATE_DIR/kn.log" >&2
		fail "the restarted daemon did not say it took $NBD back ($n times, not $1)"
	}
	assert_contains "$(cat "$T_TMP/restart.out")" "kernel NBD device $NBD (taken back" \
		"dst start output"
}

step "a linear storage of a dst export and a local file on $NBD, ext4 mounted"
st_export na 48M
truncate -s $((16 * MiB + 4096)) "$T_TMP/local.img" || fail "truncate"
st_create kn linear
st_add kn --remote "$URI"
st_add kn --disk "$T_TMP/local.img"
dst_ok start kn -f "$NBD" >/dev/null
track_export kn
wait_size "$NBD" $((64 * MiB))
# What the dead daemon had taken the kernel sends again when its request
# timer next looks at it: within io_timeout (30 s by default; 5 s here, to
# keep the test short).
echo 5000 >"/sys/block/$DEVNAME/queue/io_timeout" || fail "setting the io_timeout of $NBD"
ext4_mount "$NBD"
write_tree "$MNT/before" 20 "$T_TMP/before.sha256"
run_ok "sync" sync

step "writers running; kill -9 of dstd: the device stays, IO waits"
# Each writer (tests/tools/fsync_writer.py): files of 64 KiB written and
# fsynced one after another, each file's checksum recorded only once its
# fsync returned.
PY=$(command -v python3)
bg "$PY" "$TESTS_DIR/tools/fsync_writer.py" "$MNT/w1" 80 "$T_TMP/w1.sha256"
W1=$BG_PID
bg "$PY" "$TESTS_DIR/tools/fsync_writer.py" "$MNT/w2" 80 "$T_TMP/w2.sha256"
W2=$BG_PID
# until both have a few files done
for _ in $(seq 300); do
	[ "$(cat "$T_TMP/w1.sha256" "$T_TMP/w2.sha256" 2>/dev/null | wc -l)" -ge 6 ] && break
	sleep 0.1
done
kill_dstd
sleep 2
n1=$(wc -l <"$T_TMP/w1.sha256")
sleep 2
pid_alive "$W1" && pid_alive "$W2" || fail "a writer ended while the daemon was dead"
assert_eq "$(wc -l <"$T_TMP/w1.sha256")" "$n1" "files writer 1 finished while the daemon was dead"
note "writers waiting ($n1 files of writer 1 done before the kill)"

step "dst start kn: $NBD taken back, the writers finish"
restart_dstd 1
assert_eq "$(show_attr kn nbd_reconnects)" 1 "kn/nbd_reconnects"
start=$(date +%s)
bg_wait "$W1" 180 || fail "writer 1 failed after the restart"
bg_wait "$W2" 180 || fail "writer 2 failed after the restart"
note "writers done $(($(date +%s) - start)) s after the restart"
assert_eq "$(wc -l <"$T_TMP/w1.sha256")" 80 "files of writer 1"
(cd "$MNT/w1" && sha256sum --quiet -c "$T_TMP/w1.sha256") || fail "writer 1's files differ"
(cd "$MNT/w2" && sha256sum --quiet -c "$T_TMP/w2.sha256") || fail "writer 2's files differ"
check_tree "$MNT/before" "$T_TMP/before.sha256"
dmesg_clean "$NBD" "writers across a kill -9 of dstd" "$DEAD"
rm -rf "$MNT/w1" "$MNT/w2" # room for fio

step "the daemon's end of the kernel's socket cut under a writer: it gives the device a new one"
bg "$PY" "$TESTS_DIR/tools/fsync_writer.py" "$MNT/w3" 40 "$T_TMP/w3.sha256"
W3=$BG_PID
for _ in $(seq 300); do
	[ "$(cat "$T_TMP/w3.sha256" 2>/dev/null | wc -l)" -ge 3 ] && break
	sleep 0.1
done
cut=$(python3 "$TESTS_DIR/tools/cut_socketpair.py" "$(export_pid kn)") ||
	fail "no socketpair to cut in kn's daemon"
assert_eq "$cut" 1 "sockets cut"
for _ in $(seq 100); do
	[ "$(show_attr kn nbd_reconnects)" = 2 ] && break
	sleep 0.1
done
assert_eq "$(show_attr kn nbd_reconnects)" 2 "kn/nbd_reconnects after the cut"
grep -q "its connection closed; reconnecting" "$DST_STATE_DIR/kn.log" ||
	fail "kn's log does not say the connection closed"
bg_wait "$W3" || fail "writer 3 failed across the cut"
(cd "$MNT/w3" && sha256sum --quiet -c "$T_TMP/w3.sha256") || fail "writer 3's files differ"
assert_eq "$(wc -l <"$T_TMP/w3.sha256")" 40 "files of writer 3"
dmesg_clean "$NBD" "a writer across the cut socket" "$DEAD"
rm -rf "$MNT/w3"

step "fio with verify on a file in the filesystem; kill -9 of dstd and restart mid-run"
bg fio --name=kn --filename="$MNT/fio.dat" --size=6M --eta=never --rw=randwrite --bs=4k \
	--ioengine=psync --direct=1 --fsync=16 --verify=crc32c --do_verify=1 \
	--verify_fatal=1 --randrepeat=0 --output="$T_TMP/fio.out"
FIO=$BG_PID
sleep 4
pid_alive "$FIO" || {
	cat "$T_TMP/fio.out" >&2
	fail "fio ended before the kill"
}
kill_dstd
sleep 2
restart_dstd 2
assert_eq "$(show_attr kn nbd_reconnects)" 1 "kn/nbd_reconnects of the new daemon"
bg_wait "$FIO" 240 || {
	cat "$T_TMP/fio.out" >&2
	fail "fio with verify failed across the restart"
}
grep -q "err= 0" "$T_TMP/fio.out" || {
	cat "$T_TMP/fio.out" >&2
	fail "fio reported errors"
}
dmesg_clean "$NBD" "fio across a kill -9 of dstd" "$DEAD"

step "umount, fsck clean; dst stop disconnects $NBD"
run_ok "umount" umount "$MNT"
run_ok "fsck.ext4 -f -n" fsck.ext4 -f -n "$NBD"
dst_ok stop kn >/dev/null
[ ! -e "$SYSPID" ] || fail "$NBD is still connected after dst stop"
check_log "$DST_STATE_DIR/kn.log"
stop_export na
echo "PASS"
