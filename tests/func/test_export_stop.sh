#!/usr/bin/env bash
# Graceful stop: dst stop --force (and SIGTERM) during a heavy fio write load
# ends the daemon within a few seconds; requests in flight get complete
# replies; idle clients do not hold the stop up; the config survives for dst
# start. (A plain dst stop refuses while a client is connected: checked with
# the idle clients here, and with a storage on top in test_export_stop_busy.)
. "$(dirname "$0")/lib.sh"
need fio

STOP_LIMIT=${STOP_LIMIT:-8} # seconds; the server's grace period is 10 s

# fio_load URI: a long random-write load (stopped by the test).
fio_load() {
	fio --name=load --ioengine=nbd --uri="$1" --rw=randwrite --bs=64k --iodepth=32 \
		--numjobs=4 --size=32M --offset_increment=32M --time_based --runtime=120 \
		--verify_state_save=0 >"$T_TMP/fio.out" 2>&1
}

# wait_writes NAME N: wait (up to 20 s) until the export has counted N writes.
wait_writes() {
	for _ in $(seq 200); do
		[ "$(show_attr "$1" io/writes)" -ge "$2" ] && return 0
		sleep 0.1
	done
	fail "the load never reached $2 writes on $1"
}

# elapsed_ms START_MS
elapsed_ms() { echo $(($(date +%s%3N) - $1)); }

truncate -s 128M "$T_TMP/stop.img"
for kind in file mem; do
	disk=$T_TMP/stop.img
	[ $kind = mem ] && disk=mem:128M
	step "dst stop --force during a fio write load ($kind export)"
	start_export "stop-$kind" "$disk"
	pid=$PID
	[ $kind = file ] && FILE_PORT=$PORT
	bg fio_load "$URI"
	fio_pid=$BG_PID
	wait_writes "stop-$kind" 500
	note "inflight when stopping: $(show_attr "stop-$kind" io/inflight)"
	t0=$(date +%s%3N)
	dst_ok stop "stop-$kind" --force >/dev/null
	ms=$(elapsed_ms "$t0")
	note "dst stop returned after ${ms} ms"
	# dst stop returns once the daemon let go of its pid lock; the process
	# itself may take a moment more to exit (the ASan leak check runs last).
	wait_gone "$pid" 5 || fail "pid $pid still alive 5 s after dst stop returned"
	assert_le "$ms" $((STOP_LIMIT * 1000)) "milliseconds to stop under load"
	[ ! -e "$DST_STATE_DIR/stop-$kind.pid" ] || fail "pid file left"
	[ -f "$DST_STATE_DIR/stop-$kind.conf" ] || fail "config removed by dst stop"
	grep -q "stopping: requested by dst stop" "$DST_STATE_DIR/stop-$kind.log" || fail "log does not say why it stopped"
	grep -q "info: stopped" "$DST_STATE_DIR/stop-$kind.log" || fail "log does not say it stopped"
	check_log "$DST_STATE_DIR/stop-$kind.log"
	# fio loses its server: it must end by itself, with an error.
	wait_gone "$fio_pid" 15 || fail "fio still running 15 s after the server stopped"
	bg_wait "$fio_pid" && note "fio exited 0" || note "fio exited with an error, as expected"
done

step "SIGTERM during a fio write load"
start_export stop-term mem:128M
pid=$PID
bg fio_load "$URI"
fio_pid=$BG_PID
wait_writes stop-term 500
t0=$(date +%s%3N)
kill -TERM "$pid"
wait_gone "$pid" "$STOP_LIMIT" || fail "daemon still running $STOP_LIMIT s after SIGTERM"
note "gone after $(elapsed_ms "$t0") ms"
grep -q "stopping: SIGTERM" "$DST_STATE_DIR/stop-term.log" || fail "log does not mention SIGTERM"
[ ! -e "$DST_STATE_DIR/stop-term.pid" ] || fail "pid file left after SIGTERM"
check_log "$DST_STATE_DIR/stop-term.log"
wait_gone "$fio_pid" 15 || fail "fio still running after the server stopped"
bg_wait "$fio_pid"

step "requests in flight at the stop get complete replies, then a clean close"
start_export stop-inflight mem:64M
run_ok "inflight_at_stop" nbd_raw --during "'$DST' stop stop-inflight --force >/dev/null" 127.0.0.1 "$PORT" inflight_at_stop
cat "$T_TMP/run.out"
wait_gone "$PID" 5 || fail "daemon still running"
check_log "$DST_STATE_DIR/stop-inflight.log"

step "idle clients (one in transmission, one mid-handshake) do not delay the stop"
dst_ok start stop-inflight >/dev/null
pid=$(export_pid stop-inflight)
python3 - "$PORT" >"$T_TMP/idle.out" 2>&1 <<'PY' &
import socket, struct, sys, time
port = int(sys.argv[1])
a = socket.create_connection(("127.0.0.1", port))        # stays in transmission
a.recv(18, socket.MSG_WAITALL); a.sendall(struct.pack(">I", 3))
go = struct.pack(">IH", 0, 0)
a.sendall(struct.pack(">QII", 0x49484156454F5054, 7, len(go)) + go)
b = socket.create_connection(("127.0.0.1", port))        # stays mid-handshake
print("ready", flush=True)
a.settimeout(30); b.settimeout(30)
t0 = time.time()
try:
    while a.recv(65536): pass
except OSError: pass
print("a closed after %.1fs" % (time.time() - t0), flush=True)
PY
idle_pid=$!
T_PIDS+=("$idle_pid")
for _ in $(seq 50); do grep -q ready "$T_TMP/idle.out" && break; sleep 0.1; done
sleep 0.3
assert_eq "$(show_attr stop-inflight clients)" 2 "clients connected"
# Without --force: refused, naming the one in transmission (the one still
# in its handshake uses nothing yet).
run_fails "dst stop with a client connected" "$DST" stop stop-inflight
check_stderr "$T_TMP/run.out" "dst stop"
assert_contains "$RUN_OUT" "'stop-inflight' not stopped: 1 client connected: 127.0.0.1:" "dst stop's refusal"
assert_contains "$RUN_OUT" " from python3 $idle_pid" "dst stop's refusal names the client's process"
assert_contains "$RUN_OUT" "--force" "dst stop's refusal"
[ "$(wc -l <"$T_TMP/run.out")" -eq 1 ] || fail "dst stop's refusal is not one line"
pid_alive "$pid" || fail "the export died after a refused stop"
grep -q "dst stop refused: 1 client connected" "$DST_STATE_DIR/stop-inflight.log" || fail "the log does not say the stop was refused"
t0=$(date +%s%3N)
dst_ok stop stop-inflight --force >/dev/null
ms=$(elapsed_ms "$t0")
note "dst stop with 2 idle clients returned after ${ms} ms"
assert_le "$ms" 3000 "milliseconds to stop with idle clients"
wait_gone "$idle_pid" 5 || fail "the idle client was not disconnected"
grep -q "a closed" "$T_TMP/idle.out" || fail "the idle client saw no close"
check_log "$DST_STATE_DIR/stop-inflight.log"

step "dst start after a stop serves again"
dst_ok start stop-file >/dev/null
track_export stop-file
run_ok "raw read after restart" nbd_raw 127.0.0.1 "$FILE_PORT" read:0:1M
stop_export stop-file
echo "PASS"
