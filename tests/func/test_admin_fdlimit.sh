#!/usr/bin/env bash
# Control connections are capped and timed out: of 40 idle connections to
# an export's NAME.ctl, 32 are held and 8 get "error: too many control
# connections" at once, as does dst stat (after trying for a second);
# after 5 s the 32 are closed and dst show answers.
# dstd at its descriptor limit never spins. A storage's daemon is held to a
# few spare descriptors (prlimit) and 2,000 idle connections are opened to
# its control socket: the daemon hits EMFILE, drops what it cannot take,
# logs it once, and its CPU time and log stay small; idle control
# connections are closed after 5 s, so `dst show` works again while the
# flood still holds its sockets; a node killed and restarted meanwhile
# reconnects and IO works. Then the same against the NBD listener of an
# export (max-clients raised so that the descriptor limit is what bites):
# a real client gets in once the idle ones time out.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
need prlimit qemu-io nbdinfo

FLOOD="python3 $TESTS_DIR/tools/conn_flood.py"

# cpu_ticks PID: user + system time of PID, in clock ticks.
cpu_ticks() {
	awk '{ print $14 + $15 }' "/proc/$1/stat"
}
# tighten PID N: let PID have only N descriptors more than it has open.
tighten() {
	local n
	n=$(($(find "/proc/$1/fd" -mindepth 1 | wc -l) + $2))
	prlimit --pid "$1" --nofile="$n:$n" || fail "prlimit on pid $1"
	note "pid $1 may open $n descriptors"
}
# wait_file FILE SECONDS
wait_file() {
	local t
	for t in $(seq $(($2 * 10))); do
		[ -s "$1" ] && return 0
		sleep 0.1
	done
	return 1
}
TICK=$(getconf CLK_TCK)

step "the control socket: 40 idle connections, 32 held, 8 refused, all closed after 5 s"
st_export d0 8M
D0_IMG=$IMG D0_PORT=$PORT D0_PID=$PID
cat >"$T_TMP/cap.py" <<'PY'
import socket, sys, time
path, out = sys.argv[1], sys.argv[2]
socks = []
for _ in range(40):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    socks.append(s)
    time.sleep(0.01)
t0 = time.monotonic()
# What each got within 1 s: the refusals come at once.
time.sleep(1)
early = []
for s in socks:
    s.setblocking(False)
    try:
        early.append(s.recv(200))
    except BlockingIOError:
        early.append(None)
    s.setblocking(True)
refused = sum(1 for d in early if d and d.startswith(b"error: too many control connections"))
held = sum(1 for d in early if d is None)
# The held ones end (EOF) after about 5 s.
ends = []
for s, d in zip(socks, early):
    if d is None:
        s.settimeout(15)
        d = s.recv(200)
        ends.append((time.monotonic() - t0, d))
late = max(t for t, _ in ends) if ends else 0
early_end = min(t for t, _ in ends) if ends else 0
with open(out, "w") as f:
    f.write("refused %d held %d eof %d first %.1f last %.1f\n" % (
        refused, held, sum(1 for _, d in ends if d == b""), early_end, late))
PY
bg python3 "$T_TMP/cap.py" "$DST_STATE_DIR/d0.ctl" "$T_TMP/cap.out"
CAP_PID=$BG_PID
sleep 1
rc=0
t0=$(date +%s%3N)
out=$(timeout 10 "$DST" stat d0 2>&1) || rc=$?
ms=$(($(date +%s%3N) - t0))
note "dst stat past the cap: status $rc after $ms ms: $out"
# (It tries again for a second before it gives up.)
assert_ge "$ms" 900 "ms dst stat kept trying past the cap"
[ $rc -ne 0 ] || fail "dst stat answered while 32 control connections were held"
assert_contains "$out" "too many control connections" "dst stat past the cap"
bg_wait "$CAP_PID" || fail "the control connection client failed"
cap=$(cat "$T_TMP/cap.out")
note "$cap"
read -r _ refused _ held _ eof _ first _ last <<<"$cap"
assert_eq "$refused" 8 "connections refused past the cap"
assert_eq "$held" 32 "connections held (the cap)"
assert_eq "$eof" 32 "held connections closed by the daemon"
assert_ge "${first%.*}" 3 "seconds before the first idle connection was closed"
assert_le "${last%.*}" 8 "seconds until the last idle connection was closed"
dst_ok show d0 >/dev/null

step "storage fl: alg_linear over d0, its dstd held to 12 spare descriptors"
st_create fl linear --io-timeout 60
st_add fl --remote "nbd://127.0.0.1:$D0_PORT"
SPORT=$(free_port)
st_start fl --listen "127.0.0.1:$SPORT"
FL=$ST_URI FL_PID=$ST_PID
qio "$FL" "write -P 0x5a 0 1M" "flush"
tighten "$FL_PID" 12
LOG=$DST_STATE_DIR/fl.log
log0=$(wc -l <"$LOG")
cpu0=$(cpu_ticks "$FL_PID")
t0=$(date +%s)

step "2,000 idle connections to fl.ctl"
rm -f "$T_TMP/ready"
bg sh -c "$FLOOD --unix '$DST_STATE_DIR/fl.ctl' --count 2000 --open-for 3 --hold 12 --ready '$T_TMP/ready' >'$T_TMP/flood.out' 2>&1"
FLOOD_PID=$BG_PID
wait_file "$T_TMP/ready" 10 || fail "the flood did not finish opening in 10 s"
note "flood: $(cat "$T_TMP/ready")"
pid_alive "$FL_PID" || fail "dstd of fl died under the flood"

step "the node is killed and restarted while the flood holds its sockets"
kill -KILL "$D0_PID"
wait_gone "$D0_PID" 10 || fail "export d0 survived kill -9"
dst_ok export "$D0_IMG" --name d0 --listen "127.0.0.1:$D0_PORT" >/dev/null

step "dst show answers again once the idle connections time out (5 s), the node up again"
# Until then a dst show may be dropped at the limit (an error, never a hang).
ok=0
for _ in $(seq 60); do
	if out=$(timeout 5 "$DST" show fl 2>&1) &&
		grep -qx 'fl/n-0/state : up' <<<"$out"; then
		ok=1
		break
	fi
	sleep 0.25
done
[ $ok = 1 ] || fail "dst show fl never showed n-0 up during the flood: $out"
pid_alive "$FLOOD_PID" || fail "the flood ended before dst show answered: the test proves nothing"
note "dst show answered, n-0 up, $(($(date +%s) - t0)) s after the flood began"

step "IO works through the reconnected node"
qio "$FL" "read -P 0x5a 0 1M" "write -P 0x6b 1M 1M" "flush" "read -P 0x6b 1M 1M"

bg_wait "$FLOOD_PID" || fail "the flood client failed: $(cat "$T_TMP/flood.out")"
flood=$(cat "$T_TMP/flood.out")
note "flood: $flood"
opened=$(printf '%s\n' "$flood" | sed -n 's/^opened \([0-9]*\),.*/\1/p')
closed=$(printf '%s\n' "$flood" | sed -n 's/.*closed-by-server \([0-9]*\).*/\1/p')
assert_ge "$opened" 100 "connections the flood opened"
assert_eq "$closed" "$opened" "connections dstd answered or closed within the hold (none left hanging)"

step "fl's daemon did not spin, and its log stayed small"
secs=$(($(date +%s) - t0))
cpu=$(($(cpu_ticks "$FL_PID") - cpu0))
added=$(($(wc -l <"$LOG") - log0))
note "$cpu ticks of CPU (at $TICK/s) in $secs s; $added log lines"
assert_le "$cpu" $((TICK * secs / 4)) "CPU ticks of dstd during the flood (a quarter of the wall time at most)"
assert_le "$added" 100 "log lines added during the flood"
emfile=$(grep -c "control socket.*accept: Too many open files" "$LOG")
assert_ge "$emfile" 1 "EMFILE episodes logged (the flood must reach the limit)"
assert_le "$emfile" 5 "EMFILE episodes logged"
st_stop fl

step "export ex: max-clients 10000, 2 s handshake timeout, 12 spare descriptors"
truncate -s 8M "$T_TMP/ex.img"
start_export ex "$T_TMP/ex.img" --max-clients 10000 --handshake-timeout 2
EX_PID=$PID EX_URI=$URI EX_PORT=$PORT
tighten "$EX_PID" 12
LOG=$DST_STATE_DIR/ex.log
log0=$(wc -l <"$LOG")
cpu0=$(cpu_ticks "$EX_PID")
t0=$(date +%s)

step "2,000 idle TCP connections to its NBD listener"
rm -f "$T_TMP/ready"
bg sh -c "$FLOOD --tcp 127.0.0.1:$EX_PORT --count 2000 --open-for 3 --hold 10 --ready '$T_TMP/ready' >'$T_TMP/flood.out' 2>&1"
FLOOD_PID=$BG_PID
wait_file "$T_TMP/ready" 10 || fail "the flood did not finish opening in 10 s"
note "flood: $(cat "$T_TMP/ready")"

step "a real client gets in while the flood holds its sockets"
ok=0
for _ in $(seq 40); do
	if size=$(timeout 5 nbdinfo --size "$EX_URI" 2>&1); then
		ok=1
		break
	fi
	sleep 0.25
done
[ $ok = 1 ] || fail "nbdinfo never got in during the flood: $size"
assert_eq "$size" $((8 * MiB)) "size nbdinfo saw"
pid_alive "$FLOOD_PID" || fail "the flood ended before nbdinfo got in: the test proves nothing"
bg_wait "$FLOOD_PID" || fail "the flood client failed: $(cat "$T_TMP/flood.out")"
note "flood: $(cat "$T_TMP/flood.out")"

step "ex's daemon did not spin, and its log stayed small"
secs=$(($(date +%s) - t0))
cpu=$(($(cpu_ticks "$EX_PID") - cpu0))
added=$(($(wc -l <"$LOG") - log0))
note "$cpu ticks of CPU (at $TICK/s) in $secs s; $added log lines"
assert_le "$cpu" $((TICK * secs / 4)) "CPU ticks of dstd during the flood"
# Each client it took is logged (connected, then its end): at most about a
# line per connection offered, where a spin writes thousands a second.
assert_le "$added" 2000 "log lines added during the flood of 2,000 connections"
emfile=$(grep -c "accept: Too many open files" "$LOG")
assert_ge "$emfile" 1 "EMFILE episodes logged (the flood must reach the limit)"
assert_le "$emfile" 5 "EMFILE episodes logged"
stop_export ex
stop_export d0 --force
