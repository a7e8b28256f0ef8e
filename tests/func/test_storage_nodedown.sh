#!/usr/bin/env bash
# A node that stays away longer than the storage's io-timeout (alg_linear
# over two exports, --io-timeout 3): after kill -9 of one export, IO to the
# other node's range keeps working (reads, writes, flush) and is never held
# up, IO to the dead node's range waits, then fails with EIO once the node
# has been unreachable for io-timeout; `dst show` says reconnecting, then
# failed; the daemon stays up. The export restarted on its port: the node is
# up again by itself and serves its range with its old data. Then a hung
# node (SIGSTOP) with --request-timeout 2: the connection is dropped, its IO
# fails after io-timeout, and SIGCONT brings it back.
# run.sh: alone
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
need qemu-io nbdinfo

EIO=5
# raw_ops PORT OPS...: nbd_raw.py plain IO on one connection; output in
# $RAW_OUT, status returned. Prints "OP: ok" or "OP: error N" per op.
raw_ops() {
	local port=$1 rc=0
	shift
	RAW_OUT=$(timeout 20 $NBD_RAW 127.0.0.1 "$port" "$@" 2>&1) || rc=$?
	return $rc
}
# now_ms: for bounded-time checks.
now_ms() { date +%s%3N; }

step "storage dn: alg_linear over d0 (16M) + d1 (16M), on TCP"
st_export d0 16M
D0=$URI
st_export d1 16M
D1=$URI D1_PID=$PID
D1_IMG=$IMG D1_PORT=$PORT
st_create dn linear --io-timeout 3
st_add dn --remote "$D0"
st_add dn --remote "$D1"
DPORT=$(free_port)
st_start dn --listen "127.0.0.1:$DPORT"
DN=$ST_URI DN_PID=$ST_PID
qio "$DN" "write -P 0x41 0 1M" "write -P 0x42 $((16 * MiB)) 1M" "flush"

step "kill -9 the export behind n-32768"
kill -KILL "$D1_PID"
wait_gone "$D1_PID" 10 || fail "export d1 survived kill -9"

step "IO to the dead node's range waits, then fails with EIO after io-timeout (3 s)"
t0=$(now_ms)
bg sh -c "timeout 20 $NBD_RAW 127.0.0.1 $DPORT read:$((16 * MiB)):4096 >'$T_TMP/dead.out' 2>&1"
DEAD=$BG_PID
sleep 0.5
assert_eq "$(show_attr dn n-32768/state)" reconnecting "n-32768/state while within io-timeout"
raw_ops "$DPORT" "read:0:64K:0x41" || fail "IO to the live node while the other was down: $RAW_OUT"
assert_le $(($(now_ms) - t0)) 2500 "ms until IO to the live node completed while the other was down"
rc=0
bg_wait "$DEAD" || rc=$?
dead_ms=$(($(now_ms) - t0))
note "the read from the dead node failed after $dead_ms ms (status $rc)"
[ $rc -ne 0 ] || fail "read from the dead node's range succeeded"
[ $rc -ne 124 ] || fail "the read from the dead node did not fail within 20 s (io-timeout = 3)"
assert_ge "$dead_ms" 2500 "ms the read waited for the dead node (io-timeout = 3)"
assert_le "$dead_ms" 8000 "ms until the dead node's IO failed (io-timeout = 3)"
assert_contains "$(cat "$T_TMP/dead.out")" "error $EIO" "read from the dead node: NBD error"
t0=$(now_ms)
raw_ops "$DPORT" "write:$((20 * MiB)):4096:0x43" && fail "write to the dead node's range succeeded"
assert_contains "$RAW_OUT" "error $EIO" "write to the dead node: NBD error"
# A request crossing the boundary fails as a whole (answered once, first error).
raw_ops "$DPORT" "write:$((16 * MiB - 4096)):8192:0x44" && fail "write across into the dead node succeeded"
assert_contains "$RAW_OUT" "error $EIO" "write across the boundary into the dead node"
assert_le $(($(now_ms) - t0)) 3000 "ms until two requests to a node past io-timeout failed"
rc=0
out=$(qemu-io -f raw -c "read -P 0x42 $((16 * MiB)) 4096" "$DN" 2>&1) || rc=$?
[ $rc -ne 0 ] || fail "qemu-io read from the dead node's range succeeded"
assert_contains "$out" "Input/output error" "qemu-io's error from the dead node"

step "IO to the live node's range keeps working"
raw_ops "$DPORT" "read:0:1M:0x41" "write:$((8 * MiB)):1M:0x45" "read:$((8 * MiB)):1M:0x45" ||
	fail "IO to the live node after the other died: $RAW_OUT"
qio "$DN" "read -P 0x41 0 1M" "write -P 0x46 $((16 * MiB - 65536)) 65536" "read -P 0x46 $((16 * MiB - 65536)) 65536"
assert_node_pattern "$D0" $((16 * MiB - 65536)) 65536 0x46 "write to the live node reached it"
assert_eq "$(export_pid dn)" "$DN_PID" "the storage daemon is still the same process"
pid_alive "$DN_PID" || fail "the storage daemon died"

step "dst show: the dead node is failed, the live one up"
assert_eq "$(show_attr dn n-32768/state)" failed "n-32768/state past io-timeout"
assert_contains "$(show_attr dn n-32768/error)" "Connection refused" "n-32768/error"
assert_eq "$(show_attr dn n-0/state)" up "n-0/state"
assert_ge "$(show_attr dn n-32768/io/errors)" 1 "n-32768/io/errors"
assert_eq "$(show_attr dn n-0/io/errors)" 0 "n-0/io/errors"

step "FLUSH still succeeds for a client that only wrote to the live node"
# Nothing acknowledged is waiting on the dead node (everything was flushed
# before it died, and every write to it since failed), so there is nothing
# a flush could lose.
raw_ops "$DPORT" "write:$((4 * MiB)):64K:0x47" "flush" ||
	fail "write + flush on the live node's range after the other node died: $RAW_OUT"

step "the export comes back on its port: the node is up again, with its data"
dst_ok export "$D1_IMG" --name d1 --listen "127.0.0.1:$D1_PORT" >/dev/null
for _ in $(seq 50); do
	[ "$(show_attr dn n-32768/state)" = up ] && break
	sleep 0.2
done
assert_eq "$(show_attr dn n-32768/state)" up "n-32768/state after its export came back"
assert_ge "$(show_attr dn n-32768/reconnects)" 1 "n-32768/reconnects"
raw_ops "$DPORT" "read:$((16 * MiB)):1M:0x42" "write:$((20 * MiB)):4096:0x48" "read:$((20 * MiB)):4096:0x48" ||
	fail "IO to the node that came back: $RAW_OUT"

step "a hung node: --request-timeout 2 --io-timeout 2, SIGSTOP its export"
st_export h0 8M
H0=$URI
st_export h1 8M
H1=$URI H1_PID=$PID
st_create hung linear --request-timeout 2 --io-timeout 2
st_add hung --remote "$H0"
st_add hung --remote "$H1"
HPORT=$(free_port)
st_start hung --listen "127.0.0.1:$HPORT"
raw_ops "$HPORT" "write:0:64K:0x51" "write:$((8 * MiB)):64K:0x52" "flush" || fail "IO before the hang: $RAW_OUT"
kill -STOP "$H1_PID"
T_STOPPED=$H1_PID
t0=$(now_ms)
bg sh -c "timeout 20 $NBD_RAW 127.0.0.1 $HPORT read:$((8 * MiB)):4096 >'$T_TMP/hung.out' 2>&1"
HUNG=$BG_PID
sleep 0.5
raw_ops "$HPORT" "read:0:64K:0x51" "write:$((4 * MiB)):64K:0x53" "read:$((4 * MiB)):64K:0x53" ||
	fail "IO to the live node while the other hangs: $RAW_OUT"
live_ms=$(($(now_ms) - t0))
assert_le "$live_ms" 2500 "ms until IO to the live node completed while the other hung"
rc=0
bg_wait "$HUNG" || rc=$?
hung_ms=$(($(now_ms) - t0))
note "the read from the hung node failed after $hung_ms ms (status $rc)"
[ $rc -ne 0 ] || fail "the read from the hung node succeeded"
[ $rc -ne 124 ] || fail "the read from the hung node did not fail within 20 s"
assert_ge "$hung_ms" 3500 "ms the read waited (request-timeout 2 + io-timeout 2)"
assert_le "$hung_ms" 9000 "ms until the hung node's IO failed (request-timeout 2 + io-timeout 2)"
assert_contains "$(cat "$T_TMP/hung.out")" "error $EIO" "the hung node's read: NBD error"
assert_eq "$(show_attr hung n-16384/state)" failed "n-16384/state after the timeout"
assert_contains "$(show_attr hung n-16384/error)" "no reply for 2 s" "n-16384/error while it hangs"

step "SIGCONT: the hung node is reconnected and serves again"
kill -CONT "$H1_PID"
T_STOPPED=
for _ in $(seq 75); do
	[ "$(show_attr hung n-16384/state)" = up ] && break
	sleep 0.2
done
assert_eq "$(show_attr hung n-16384/state)" up "n-16384/state after SIGCONT"
raw_ops "$HPORT" "read:$((8 * MiB)):64K:0x52" || fail "IO to the node after SIGCONT: $RAW_OUT"

step "stop"
st_stop dn
st_stop hung
stop_export d0
stop_export d1
stop_export h0
stop_export h1
echo "PASS"
