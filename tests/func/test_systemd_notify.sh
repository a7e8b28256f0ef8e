#!/usr/bin/env bash
# dstd under a service manager (Type=notify): started as the systemd unit
# does (`dstd --foreground NAME` with $NOTIFY_SOCKET set; here the socket is
# a python3 AF_UNIX datagram listener), it sends READY=1 (with its MAINPID)
# once the storage serves, also when a node is not up yet, and STOPPING=1
# when `dst stop` stops it. Without $NOTIFY_SOCKET nothing changes (every
# other test).
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
need qemu-io

NOTES=$T_TMP/notify.txt
# wait_note LINE SECONDS: until LINE is in the notifications received.
wait_note() {
	for _ in $(seq $(($2 * 10))); do
		grep -qx "$1" "$NOTES" 2>/dev/null && return 0
		sleep 0.1
	done
	cat "$NOTES" >&2
	return 1
}

step "a notification socket; storage sn: alg_linear over n0 (8M) + n1 (8M, not started)"
bg python3 "$TESTS_DIR/tools/notify_listen.py" "$T_TMP/notify.sock" "$NOTES"
wait_note LISTENING=1 10 || fail "the notification listener did not start"
st_export n0 8M
N0=$URI
st_export n1 8M
N1=$URI
st_create sn linear
st_add sn --remote "$N0"
st_add sn --remote "$N1"
stop_export n1

step "dstd --foreground sn with NOTIFY_SOCKET: READY=1 once it serves"
NOTIFY_SOCKET=$T_TMP/notify.sock "$DSTD" --foreground sn 2>"$T_TMP/sn.stderr" &
SN_PID=$!
T_PIDS+=("$SN_PID")
wait_note READY=1 15 || fail "no READY=1 from dstd within 15 s"
# Ready means serving: a client gets in at once, without retrying.
qio "nbd+unix:///?socket=$DST_STATE_DIR/sn.sock" "write -P 0x5a 0 64K" "read -P 0x5a 0 64K"
assert_contains "$(cat "$NOTES")" "MAINPID=$SN_PID" "MAINPID in the notification"
assert_contains "$(cat "$NOTES")" "STATUS=serving storage sn" "STATUS in the notification"
assert_eq "$(show_attr sn n-16384/state)" connecting "the node not up yet, while ready"
grep -qx STOPPING=1 "$NOTES" && fail "STOPPING=1 before any stop"

step "dst stop sn: STOPPING=1, then dstd exits 0"
dst_ok stop sn >/dev/null
wait_note STOPPING=1 10 || fail "no STOPPING=1 from dstd on dst stop"
rc=0
wait "$SN_PID" || rc=$?
assert_eq "$rc" 0 "dstd's exit status after dst stop"
check_log "$T_TMP/sn.stderr"
assert_eq "$(grep -c '^READY=1$' "$NOTES")" 1 "READY=1 notifications"
stop_export n0
echo "PASS"
