#!/usr/bin/env bash
# Every connect and handshake to a node has a timeout (DST_CONNECT_TIMEOUT
# here, 30 s by default for dst, 10 s a try for dstd). Against a server
# that accepts TCP and never speaks: dst add fails in time, naming the node
# and the handshake; dst start of a storage whose node is such a server
# fails naming it; a node that comes back as such a server is tried again
# and again (the daemon does not hang on it) and is up once the real
# export is back. Against a node that answers the handshake but not reads
# (nbdkit's delay filter): dst add fails on its label read, in time.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
need qemu-io

export DST_CONNECT_TIMEOUT=2
now_ms() { date +%s%3N; }
# silent PORTFILE [PORT]: start the silent server (what it says at its end
# in PORTFILE.out); sets SILENT_PID, SILENT_PORT.
silent() {
	rm -f "$1"
	python3 "$TESTS_DIR/tools/silent_server.py" "$@" >"$1.out" 2>&1 &
	SILENT_PID=$!
	T_PIDS+=("$SILENT_PID")
	for _ in $(seq 50); do
		[ -s "$1" ] && break
		sleep 0.1
	done
	SILENT_PORT=$(cat "$1") || fail "the silent server did not start"
}

step "dst add of a server that accepts and never speaks: fails in time, naming it"
silent "$T_TMP/s1.port"
S1=nbd://127.0.0.1:$SILENT_PORT
st_create t linear
t0=$(now_ms)
bad_input "a silent node" "node $S1" "handshake: timed out after 2 s" -- add t --remote "$S1"
ms=$(($(now_ms) - t0))
note "dst add failed after $ms ms"
assert_ge "$ms" 1900 "ms dst add waited for the silent node"
assert_le "$ms" 8000 "ms until dst add gave up on the silent node (DST_CONNECT_TIMEOUT=2)"

step "dst start of a storage whose node never speaks: starts in time, saying the node is not up"
# A node that is not up yet at start is waited for (boot order); a silent
# server is one of those: the start must neither hang on it nor fail.
echo "node = remote start=0 size=16384 $S1" >>"$DST_STATE_DIR/t.conf"
t0=$(now_ms)
rc=0
out=$(timeout 60 "$DST" start t 2>&1) || rc=$?
ms=$(($(now_ms) - t0))
note "dst start t -> status $rc after $ms ms: $out"
[ $rc -ne 124 ] || fail "dst start hung on a silent node"
[ $rc -eq 0 ] || fail "dst start failed on a node that is not up yet: $out"
track_export t
assert_contains "$out" "node n-0 ($S1) is not up yet" "dst start names the node"
assert_le "$ms" 15000 "ms until dst start returned with the silent node"
state=$(show_attr t n-0/state)
[ "$state" = connecting ] || fail "n-0's state is '$state' while its server is silent, expected connecting"
st_stop t
kill_pid "$SILENT_PID"

step "a node that comes back silent is tried again and again, and is up once its export is"
st_export d0 8M
D0_IMG=$IMG D0_PORT=$PORT D0_PID=$PID
st_create dr linear --io-timeout 60
st_add dr --remote "$URI"
st_start dr
DR=$ST_URI DR_PID=$ST_PID
qio "$DR" "write -P 0x3c 0 1M" "flush"
kill -KILL "$D0_PID"
wait_gone "$D0_PID" 10 || fail "export d0 survived kill -9"
silent "$T_TMP/s2.port" "$D0_PORT"
# Attempts time out after 2 s each, then back off: a few in 8 s.
sleep 8
pid_alive "$DR_PID" || fail "dstd of dr died"
out=$(timeout 5 "$DST" show dr 2>&1) || fail "dst show dr did not answer while its node was silent: $out"
assert_contains "$out" "dr/n-0/state : reconnecting" "n-0 while its server is silent"
kill -TERM "$SILENT_PID"
wait "$SILENT_PID" 2>/dev/null
tries=$(sed -n 's/^silent_server: took \([0-9]*\) connections$/\1/p' "$T_TMP/s2.port.out")
note "the node was tried $tries times in 8 s while its server was silent"
# Each try waits 2 s for the greeting, then backs off: 2 at least, no storm.
assert_ge "$tries" 2 "tries on the silent server"
assert_le "$tries" 6 "tries on the silent server in 8 s"
dst_ok export "$D0_IMG" --name d0 --listen "127.0.0.1:$D0_PORT" >/dev/null
up=0
for _ in $(seq 100); do
	[ "$(show_attr dr n-0/state)" = up ] && up=1 && break
	sleep 0.2
done
[ $up = 1 ] || fail "n-0 not up within 20 s of its export coming back"
qio "$DR" "read -P 0x3c 0 1M"
st_stop dr

step "dst add of a node that answers the handshake but no read: fails in time"
if command -v nbdkit >/dev/null && nbdkit --dump-plugin memory >/dev/null 2>&1 &&
	nbdkit --filter=delay null --dump-plugin >/dev/null 2>&1; then
	st_nbdkit --filter=delay memory 16M rdelay=60
	st_create t2 linear
	t0=$(now_ms)
	bad_input "a node that does not answer reads" "$NBDKIT_URI" "label block" \
		"timed out after 2 s" -- add t2 --remote "$NBDKIT_URI"
	ms=$(($(now_ms) - t0))
	note "dst add failed after $ms ms"
	assert_le "$ms" 10000 "ms until dst add gave up on the node's label read"
	kill_pid "$NBDKIT_PID"
else
	note "skipped: nbdkit with the delay filter is not installed"
fi
stop_export d0 --force
