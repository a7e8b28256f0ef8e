#!/usr/bin/env bash
# Spliced requests across faults (issue 21): a spliced write keeps its
# payload until the node answers, so that a request resent after a
# reconnect still has its bytes. Under fio 1M random writes with crc32c
# verify at QD16 (every request large enough to splice):
#  a. alg_linear over two file-backed exports: kill -9 of node 1's export,
#     restarted 1.5 s later on its port with its file: IO to it waits and
#     resumes, fio sees no error and every block verifies, the node
#     reconnected and resent, the device is the two files end to end;
#  b. alg_mirror over two file-backed exports: kill -9 of leg 1's export,
#     restarted: the mirror goes on with leg 0 (AD), resyncs leg 1 (AA),
#     fio verifies, the legs' files are identical;
#  c. (alg_linear of a) dst suspend of node 1 while fio writes to it: the
#     writes, and a qemu-io write, are held (node 1 does no IO), then
#     complete after dst resume, with the right data.
# Each time most of the payload was spliced, and every pipe is back in the
# pool after.
# Network cuts are in test_splice_netcut.sh.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
. "$TESTS_DIR/func/lib_failover.sh"
. "$TESTS_DIR/func/lib_mirror.sh"
. "$TESTS_DIR/func/lib_splice.sh"
need fio qemu-io nbdinfo nbdcopy

# mostly_spliced NAME WHAT: since sp_mark, at least 3/4 of NAME's read and
# of its write payload was spliced, and some of each moved.
mostly_spliced() {
	local d s c
	sp_counters "$1"
	for d in read write; do
		s=$(sp_delta "$1" "splice/${d}_spliced_bytes") || exit 1
		c=$(sp_delta "$1" "splice/${d}_copied_bytes") || exit 1
		assert_ge "$s" "$(sp_most $((s + c)))" "$2: $d payload spliced (of $((s + c)) bytes)"
		assert_ge "$s" "$MiB" "$2: $d payload spliced"
	done
}

# ---------------------------------------------------------------------------
step "a. linear fk over f0 + f1 (file-backed, 32M each)"
st_export f0 32M
F0=$URI F0_IMG=$IMG
st_export f1 32M
F1=$URI F1_IMG=$IMG F1_PORT=$PORT F1_PID=$PID
st_create fk linear
st_add fk --remote "$F0"
st_add fk --remote "$F1"
st_start fk --listen "127.0.0.1:$(free_port)"
FK=$ST_URI FK_PID=$ST_PID
N1="n-65536"

step "a. fio 1M write+verify on both nodes (10 s); kill -9 f1 after 2 s, restart it 1.5 s later"
sp_mark fk
sp_fio_start "$FK" 10 "$T_TMP/fio.fk" --size=24M --offset_increment=32M
fo_sleep_under_load 2
fo_expect_load fk $N1
kill -KILL "$F1_PID"
wait_gone "$F1_PID" 10 || fail "export f1 survived kill -9"
rm -f "$DST_STATE_DIR/f1.pid"
sleep 0.5
assert_eq "$(show_attr fk $N1/state)" reconnecting "$N1/state while f1 is dead"
assert_ge "$(show_attr fk $N1/waiting)" 1 "requests waiting for the dead node (1M writes at QD16)"
READS_BACK=$(show_attr fk $N1/io/reads) # what it reads from here on, it reads after its return
sleep 1
for _ in $(seq 20); do # the port may be held for a moment by the killed process
	"$DST" export "$F1_IMG" --name f1 --listen "127.0.0.1:$F1_PORT" >/dev/null 2>"$T_TMP/dst.err" && break
	grep -q "Address already in use" "$T_TMP/dst.err" || { cat "$T_TMP/dst.err" >&2; fail "restart of f1"; }
	sleep 0.25
done
check_stderr "$T_TMP/dst.err" "dst export (restart of f1)"
pid_alive "$(export_pid f1)" || fail "f1 did not come back on port $F1_PORT"
note "f1 restarted on port $F1_PORT (pid $(export_pid f1))"
fo_wait_up fk $N1 15
sp_fio_wait
fo_check_after fk $N1 "$READS_BACK" 1
assert_ge "$(show_attr fk $N1/resent)" 1 "$N1/resent (the 1M writes in flight when f1 died)"
assert_eq "$(export_pid fk)" "$FK_PID" "the storage daemon is the same process"
fo_log_has fk "node $F1: back after" "the storage logged the node's return"
mostly_spliced fk "fio across the kill of f1"
sp_idle_pipes fk 2
step "a. the device is the two backing files end to end"
assert_eq "$(dev_sha "$FK")" "$(node_data "$F0_IMG" "$F1_IMG" | sha256sum | cut -d' ' -f1)" \
	"sha256 of fk vs. its backing files"

# ---------------------------------------------------------------------------
step "b. mirror mf over two file-backed 32M exports"
mr_legs mf 32M 32M
mr_mirror mf
L1=${LEG_NODE[1]}

step "b. fio 1M write+verify (8 s); kill -9 leg 1 after 2 s, restart it 1 s after it is taken out"
sp_mark mf
sp_fio_start "$M_URI" 8 "$T_TMP/fio.mf"
sleep 2
sp_fio_alive
assert_ge "$(show_attr mf "$L1/io/writes")" 1 "writes on $L1 before the kill"
mr_log_mark mf
leg_kill9 1
mr_wait mf health AD 5 "health after kill -9 of leg 1"
w0=$(show_attr mf "${LEG_NODE[0]}/io/writes")
sleep 1
sp_fio_alive
assert_ge "$(show_attr mf "${LEG_NODE[0]}/io/writes")" $((w0 + 1)) "writes reach leg 0 while leg 1 is dead"
c0=$(mr_copied mf)
leg_restart 1
mr_wait mf health AA 15 "health after leg 1 came back"
mr_log_has mf "mirror: leg $L1 in sync again: [0-9]+ regions copied" "log: leg 1 in sync again"
assert_ge $(($(mr_copied mf) - c0)) 1 "regions copied to leg 1"
sp_fio_wait
assert_eq "$(show_attr mf io/errors)" 0 "io errors on the mirror (the client saw none)"
assert_eq "$(show_attr mf health)" AA "health after the load"
mostly_spliced mf "fio across the kill of leg 1"
sp_idle_pipes mf 2
qio "$M_URI" "flush"
mr_legs_identical "after the resync and the rest of the load"
assert_eq "$(dev_sha "$M_URI")" "$(head -c "$M_SIZE" "${LEG_IMG[1]}" | sha256sum | cut -d' ' -f1)" \
	"sha256 of mf vs. leg 1's file"

# ---------------------------------------------------------------------------
step "c. dst suspend $N1 of fk while fio writes 1M to it, dst resume 2.5 s later"
qio "$FK" "write -P 0x6c $((34 * MiB)) 1M" "flush"
sp_mark fk
# Node 1 only: fk's 40M..56M (8M..24M of f1).
sp_fio_start "$FK" 6 "$T_TMP/fio.sus" --numjobs=1 --offset=40M --size=16M
w0=$(show_attr fk $N1/io/writes)
for _ in $(seq 50); do # until the writes are under way
	[ "$(show_attr fk $N1/io/writes)" -ge $((w0 + 16)) ] && break
	sleep 0.1
done
sp_fio_alive
assert_ge "$(show_attr fk $N1/io/writes)" $((w0 + 16)) "fio's writes on $N1 before the suspend"
out=$(dst suspend fk $N1) || fail "dst suspend fk $N1"
note "$out"
assert_contains "$out" "suspended $N1 of 'fk': drained" "dst suspend's answer"
bg timeout 60 qemu-io -f raw -c "write -P 0x6d $((34 * MiB)) 1M" "$FK" >"$T_TMP/sus_write.out" 2>&1
SUS_WRITE=$BG_PID
w1=$(show_attr fk $N1/io/writes)
sleep 2.5
sp_fio_alive
pid_alive "$SUS_WRITE" || { cat "$T_TMP/sus_write.out" >&2; fail "a 1M write to the suspended node did not wait"; }
assert_ge "$(show_attr fk $N1/held)" 2 "$N1/held (fio's writes and qemu-io's)"
assert_eq "$(show_attr fk $N1/io/writes)" "$w1" "writes done by $N1 while suspended"
assert_eq "$(show_attr fk $N1/io/inflight)" 0 "$N1/io/inflight while suspended"
assert_file_pattern "$F1_IMG" $((2 * MiB)) "$MiB" 0x6c "f1 while the write to it is held"
out=$(dst resume fk $N1) || fail "dst resume fk $N1"
assert_eq "$out" "resumed $N1 of 'fk'" "dst resume's answer"
rc=0
bg_wait "$SUS_WRITE" || rc=$?
if [ $rc -ne 0 ] || grep -qiE 'fail|error' "$T_TMP/sus_write.out"; then
	cat "$T_TMP/sus_write.out" >&2
	fail "the held 1M write after the resume: status $rc"
fi
assert_contains "$(cat "$T_TMP/sus_write.out")" "wrote 1048576/1048576 bytes at offset $((34 * MiB))" "the held write"
sp_fio_wait
assert_ge "$(show_attr fk $N1/io/writes)" $((w1 + 1)) "writes done by $N1 after the resume"
assert_file_pattern "$F1_IMG" $((2 * MiB)) "$MiB" 0x6d "the held write, in f1's file"
qio "$FK" "read -P 0x6d $((34 * MiB)) 1M"
assert_eq "$(show_attr fk io/errors)" 0 "fk io/errors"
mostly_spliced fk "fio and qemu-io across the suspend of $N1"
sp_idle_pipes fk 2
assert_eq "$(dev_sha "$FK")" "$(node_data "$F0_IMG" "$F1_IMG" | sha256sum | cut -d' ' -f1)" \
	"sha256 of fk vs. its backing files after the suspend"

step "stop"
st_stop fk
st_stop mf
for e in f0 f1 mf-leg0 mf-leg1; do
	stop_export "$e"
done
echo "PASS"
