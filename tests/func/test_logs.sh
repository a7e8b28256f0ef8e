#!/usr/bin/env bash
# Logs: a daemon's NAME.log under real logrotate, and repeated lines.
#  - logrotate runs the README's stanza (state dir substituted): NAME.log is
#    moved to NAME.log.1 and the postrotate's pkill -HUP makes the daemon
#    write a new NAME.log ("log reopened"); it keeps serving, new lines go to
#    the new file, the rotated one keeps the old ones; the process named by
#    a stale pid file is not signalled;
#  - logrotate with copytruncate: the daemon writes on at the start of the
#    truncated file (no hole of NUL bytes);
#  - 300 clients refused in a row (max-clients 1, a Unix socket: the same
#    line each time) leave one line and "last message repeated 299 times";
#  - a storage whose node refuses connections for 8 s (reconnect attempts
#    every backoff) writes only a handful of lines meanwhile.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
need logrotate qemu-io nbdinfo

LOG=$DST_STATE_DIR/lg.log
SOCK=$T_TMP/lg.sock

# wait_log FILE TEXT SECONDS: until FILE has a line containing TEXT.
wait_log() {
	for _ in $(seq $(($3 * 10))); do
		grep -qF -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	log_tail "$1" 10 >&2
	fail "no '$2' in $(basename "$1") after $3 s"
}

step "export lg (max-clients 1, also on a Unix socket)"
st_export lg 8M
stop_export lg
start_export lg "$IMG" --socket "$SOCK" --max-clients 1
LG_PID=$PID LG_URI=$URI

step "logrotate with the README's stanza: the daemon reopens its log on SIGHUP"
# The stanza as README.md shows it, for this test's state dir.
awk '/^\/var\/lib\/dst\/\*\.log \{/ { on = 1 } on { print } on && /^\}/ { exit }' \
	"$ROOT/README.md" | sed "s|/var/lib/dst|$DST_STATE_DIR|g" >"$T_TMP/logrotate.conf"
assert_contains "$(cat "$T_TMP/logrotate.conf")" "pkill -HUP" "the README's logrotate stanza"
old_lines=$(grep -c '' "$LOG")
# A stale pid file whose pid is now another process: not signalled.
bg sleep 60
STRANGER=$BG_PID
echo "$STRANGER" >"$DST_STATE_DIR/stale.pid"
run_ok "logrotate" logrotate -f -s "$T_TMP/logrotate.state" "$T_TMP/logrotate.conf"
[ -f "$LOG.1" ] || fail "no lg.log.1 after logrotate: $(ls "$DST_STATE_DIR")"
wait_log "$LOG" "log reopened" 5
pid_alive "$LG_PID" || fail "the export died of SIGHUP"
pid_alive "$STRANGER" || fail "the process of a stale pid file got SIGHUP"
kill_pid "$STRANGER"
rm -f "$DST_STATE_DIR/stale.pid"
assert_eq "$(grep -c '' "$LOG.1")" "$old_lines" "the rotated file has the old lines"
assert_contains "$(cat "$LOG.1")" "export lg: running (pid $LG_PID)" "the rotated file's first lines"
assert_not_contains "$(cat "$LOG.1")" "log reopened" "the rotated file"
run_ok "a client after the rotation" nbdinfo --size "$LG_URI"
wait_log "$LOG" "client 127.0.0.1:" 5
assert_not_contains "$(cat "$LOG.1")" "client 127.0.0.1:" "the rotated file after the rotation"
note "lg.log.1: $(grep -c '' "$LOG.1") lines, lg.log: $(grep -c '' "$LOG") lines"

step "logrotate with copytruncate: the daemon writes on at the file's start"
cat >"$T_TMP/copytruncate.conf" <<EOF
$LOG {
	rotate 1
	copytruncate
	nocompress
}
EOF
run_ok "logrotate copytruncate" logrotate -f -s "$T_TMP/logrotate2.state" "$T_TMP/copytruncate.conf"
assert_contains "$(cat "$LOG.1")" "log reopened" "the copy has the lines written before"
run_ok "a client after copytruncate" nbdinfo --size "$LG_URI"
wait_log "$LOG" "client 127.0.0.1:" 5
size=$(stat -c %s "$LOG")
assert_eq "$(tr -d '\000' <"$LOG" | wc -c)" "$size" "NUL bytes in lg.log after copytruncate"
assert_le "$size" 2000 "lg.log after copytruncate (only the new lines)"

step "300 clients refused in a row: one line and 'last message repeated 299 times'"
bg qemu-io -f raw -r -c "sleep 20000" "nbd+unix:///lg?socket=$SOCK"
HOLDER=$BG_PID
for _ in $(seq 50); do
	[ "$(show_attr lg clients)" = 1 ] && break
	sleep 0.1
done
assert_eq "$(show_attr lg clients)" 1 "clients while the holder is connected"
before=$(grep -c '' "$LOG")
python3 - "$SOCK" <<'EOF'
import socket, sys
for _ in range(300):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sys.argv[1])
    s.recv(1)  # the server closes it at once
    s.close()
EOF
kill_pid "$HOLDER" # its disconnection is a new line: the count is said before it
wait_log "$LOG" "last message repeated" 5
flood=$(tail -n +$((before + 1)) "$LOG")
assert_eq "$(grep -c 'client unix: refused: too many clients' <<<"$flood")" 1 "refusal lines written"
assert_contains "$flood" "warning: last message repeated 299 times" "the count of the others"
assert_le "$(grep -c '' <<<"$flood")" 10 "lines written for 300 refused clients"

step "a node refusing connections for 8 s: the storage's log stays small"
st_create ls linear
st_add ls --remote "$LG_URI"
st_start ls
SLOG=$DST_STATE_DIR/ls.log
before=$(grep -c '' "$SLOG")
kill -KILL "$LG_PID"
wait_gone "$LG_PID" 10 || fail "export lg survived kill -9"
rm -f "$DST_STATE_DIR/lg.pid"
wait_log "$SLOG" "event node-lost storage=ls" 10
sleep 8
added=$(tail -n +$((before + 1)) "$SLOG" | wc -l)
note "$added lines in 8 s of refused reconnects:"
tail -n +$((before + 1)) "$SLOG" | cut -d' ' -f3- | sed 's/^/   log: /'
assert_ge "$added" 3 "lines logged: the loss, its event, the first failed attempt"
assert_le "$added" 8 "lines logged while the node refuses connections"
assert_contains "$(cat "$SLOG")" "event degraded storage=ls" "the storage says it is degraded"
pid_alive "$ST_PID" || fail "the storage died"
dst_ok stop ls --force >/dev/null
wait_gone "$ST_PID" 10 || fail "storage ls still running after dst stop"
check_log "$SLOG"
echo "PASS"
