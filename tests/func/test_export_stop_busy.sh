#!/usr/bin/env bash
# dst stop of an export that clients use (issue 15): with a storage on top
# (a remote node on the export) and a qemu-io holding a connection on its
# Unix socket, a plain dst stop exits 1 with one line naming each client
# (its address, and the process: "dstd PID (storage sb)", "qemu-io PID"),
# the log says it was refused, and the export keeps serving the storage;
# dst stop --force stops it and the storage sees its node go; restarted,
# and with the storage stopped first, a plain dst stop works again.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
need qemu-io

step "export bz (a file, TCP and a Unix socket); storage sb with a remote node on it"
truncate -s 16M "$T_TMP/bz.img"
start_export bz "$T_TMP/bz.img" --socket "$T_TMP/bz.sock"
BZ_PID=$PID
st_create sb linear --io-timeout 2
st_add sb --remote "$URI"
st_start sb
SB=$ST_URI SB_PID=$ST_PID
qio "$SB" "write -P 0x5a 0 64k" "flush"

step "qemu-io holds a connection on bz's Unix socket"
mkfifo "$T_TMP/qio.in"
qemu-io -f raw "nbd+unix:///?socket=$T_TMP/bz.sock" <"$T_TMP/qio.in" >"$T_TMP/qio.out" 2>&1 &
QIO_PID=$!
T_PIDS+=("$QIO_PID")
exec 3>"$T_TMP/qio.in" # qemu-io waits for commands until this closes
for _ in $(seq 50); do
	[ "$(show_attr bz clients)" = 2 ] && break
	sleep 0.1
done
assert_eq "$(show_attr bz clients)" 2 "clients of bz"

step "dst stop bz: refused, naming the storage and qemu-io"
run_fails "dst stop of an export in use" "$DST" stop bz
check_stderr "$T_TMP/run.out" "dst stop"
note "refused: $RUN_OUT"
[ "$(wc -l <"$T_TMP/run.out")" -eq 1 ] || fail "the refusal is not one line"
assert_contains "$RUN_OUT" "dst: 'bz' not stopped: 2 clients connected: " "dst stop's refusal"
assert_contains "$RUN_OUT" "127.0.0.1:" "dst stop's refusal names the storage's address"
assert_contains "$RUN_OUT" " from dstd $SB_PID (storage sb)" "dst stop's refusal names the storage"
assert_contains "$RUN_OUT" "a Unix socket client from qemu-io $QIO_PID" "dst stop's refusal names qemu-io"
assert_contains "$RUN_OUT" "'dst stop bz --force'" "dst stop's refusal says how to stop anyway"
grep -q "dst stop refused: 2 clients connected" "$DST_STATE_DIR/bz.log" || fail "bz.log does not say the stop was refused"

step "bz still serves: the storage reads and writes"
pid_alive "$BZ_PID" || fail "bz died after a refused stop"
assert_eq "$(show_attr bz state)" running "bz/state"
qio "$SB" "read -P 0x5a 0 64k" "write -P 0x5b 64k 64k" "flush"
assert_eq "$(show_attr sb io/errors)" 0 "io errors of sb"

step "qemu-io leaves: the refusal names the storage alone"
exec 3>&-
wait_gone "$QIO_PID" 10 || fail "qemu-io did not exit at the end of its input"
run_fails "dst stop with the storage connected" "$DST" stop bz
assert_contains "$RUN_OUT" "1 client connected: 127.0.0.1:" "dst stop's refusal"
assert_contains "$RUN_OUT" " from dstd $SB_PID (storage sb)" "dst stop's refusal"

step "dst stop bz --force: it stops; the storage's node goes down"
stop_export bz --force
grep -q "stopping: requested by dst stop --force" "$DST_STATE_DIR/bz.log" || fail "bz.log does not say it was forced"
rc=0
qemu-io -f raw -c "read 0 4k" "$SB" >"$T_TMP/read.out" 2>&1 || rc=$?
grep -q "Input/output error" "$T_TMP/read.out" || { cat "$T_TMP/read.out" >&2; fail "a read of sb's lost node did not fail with EIO (status $rc)"; }

step "restarted, with the storage stopped first, a plain dst stop works"
dst_ok start bz >/dev/null
track_export bz
st_stop sb
stop_export bz
echo "PASS"
