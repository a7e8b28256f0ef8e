#!/usr/bin/env bash
# Stopping a storage while one of its nodes is unreachable and a client's
# request waits for it (alg_linear over two file-backed exports, default
# io-timeout 120): `dst stop` must not wait for the node. The daemon stops
# taking clients, gives those it has its 10 s grace period, and exits; the
# waiting request gets an answer (an error) or its connection is closed. It
# must not sit until the node's io-timeout runs out (or forever with
# --io-timeout 0).
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=lib_storage.sh
. "$TESTS_DIR/func/lib_storage.sh"
need qemu-io nbdinfo

step "storage sd: alg_linear over s0 + s1 (file-backed, 8M each), default timeouts"
st_export s0 8M
S0_URI=$URI
st_export s1 8M
S1_URI=$URI S1_PID=$PID
st_create sd linear
st_add sd --remote "$S0_URI"
st_add sd --remote "$S1_URI"
st_start sd --listen "127.0.0.1:$(free_port)"
SD=$ST_URI SD_PID=$ST_PID
qio "$SD" "write -P 0x61 0 64k" "write -P 0x62 $((9 * MiB)) 64k" "flush"

step "kill -9 s1; a read of its range waits"
kill -KILL "$S1_PID"
wait_gone "$S1_PID" 10 || fail "export s1 survived kill -9"
bg sh -c "timeout 120 qemu-io -f raw -r -c 'read -P 0x62 $((9 * MiB)) 4k' '$SD' >'$T_TMP/read.out' 2>&1"
READ=$BG_PID
sleep 1
pid_alive "$READ" || fail "the read of the dead node's range ended at once: $(cat "$T_TMP/read.out")"
assert_eq "$(show_attr sd n-16384/state)" reconnecting "n-16384/state"
assert_ge "$(show_attr sd n-16384/waiting)" 1 "requests waiting for the dead node"

step "dst stop sd --timeout 25: the daemon exits after its grace period, not after io-timeout"
t0=$(date +%s%3N)
rc=0
"$DST" stop sd --timeout 25 >"$T_TMP/stop.out" 2>&1 || rc=$?
stop_ms=$(($(date +%s%3N) - t0))
check_stderr "$T_TMP/stop.out" "dst stop"
note "dst stop: status $rc after $stop_ms ms: $(tr '\n' ' ' <"$T_TMP/stop.out")"
if [ $rc -ne 0 ]; then
	log_tail "$DST_STATE_DIR/sd.log" 6 >&2
	fail "dst stop of a storage with an unreachable node failed after $stop_ms ms (status $rc): the daemon (pid $SD_PID) waits for the node"
fi
assert_le "$stop_ms" 15000 "ms dst stop took (grace period 10 s)"
wait_gone "$SD_PID" 5 || fail "storage daemon $SD_PID still running after dst stop"
check_log "$DST_STATE_DIR/sd.log"
rc=0
wait_gone "$READ" 10 || fail "the waiting read did not end when the storage stopped"
bg_wait "$READ" || rc=$?
note "the waiting read ended with status $rc: $(tr '\n' ' ' <"$T_TMP/read.out")"
[ $rc -ne 0 ] || fail "the read of the dead node's range succeeded"
[ $rc -ne 124 ] || fail "the read of the dead node's range never got an answer"

step "stop"
stop_export s0
echo "PASS"
