#!/usr/bin/env bash
# Failover of remote nodes under load (alg_linear over two file-backed
# `dst export` nodes, so their data survives a restart of the export):
#  1. kill -9 of one export while fio writes with crc32c verify at QD32, the
#     export restarted ~2 s later on the same port with the same file:
#     fio sees no error and every block verifies, the node reconnected and
#     its requests were resent, the storage daemon is the same process.
#  2. SIGSTOP of one export under load with --request-timeout 2: the hang is
#     noticed ("no reply for 2 s"), the connection is remade after SIGCONT,
#     fio sees no error and the data verifies.
#  3. --io-timeout 0 (queue forever): with the node killed, a read and a
#     write to its range are still pending after 5 s, not failed; the
#     export restarted, both complete, the read with the right data.
# The network-cut cases (nftables in a network namespace) are in
# test_storage_failover_net.sh.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=lib_storage.sh
. "$TESTS_DIR/func/lib_storage.sh"
# shellcheck source=lib_failover.sh
. "$TESTS_DIR/func/lib_failover.sh"
need fio qemu-io nbdinfo nbdcopy

# ---------------------------------------------------------------------------
step "1. storage ka: alg_linear over k0 + k1 (file-backed, 32M each), default timeouts"
st_export k0 32M
K0_URI=$URI K0_IMG=$IMG
st_export k1 32M
K1_URI=$URI K1_IMG=$IMG K1_PORT=$PORT K1_PID=$PID
st_create ka linear
st_add ka --remote "$K0_URI"
st_add ka --remote "$K1_URI"
st_start ka --listen "127.0.0.1:$(free_port)"
KA=$ST_URI KA_PID=$ST_PID

step "1. fio randwrite + verify (12 s); kill -9 k1 during it, restart it 2 s later on the same port"
fo_fio_start "$KA" 12 "$T_TMP/fio.ka"
fo_sleep_under_load 2
fo_expect_load ka n-65536
kill -KILL "$K1_PID"
wait_gone "$K1_PID" 10 || fail "export k1 survived kill -9"
sleep 0.5
assert_eq "$(show_attr ka n-65536/state)" reconnecting "n-65536/state while k1 is dead"
assert_ge "$(show_attr ka n-65536/waiting)" 1 "requests waiting for the dead node (it was under load)"
assert_eq "$(show_attr ka n-0/state)" up "n-0/state while k1 is dead"
# Its reads now: every read it completes from here on comes after its
# return (sampled after the return, a loaded machine may already have run
# the last verify pass).
READS_BACK=$(show_attr ka n-65536/io/reads)
sleep 1
dst_ok export "$K1_IMG" --name k1 --listen "127.0.0.1:$K1_PORT" >/dev/null
note "k1 restarted on port $K1_PORT (pid $(export_pid k1))"
fo_wait_up ka n-65536 15
fo_fio_wait "$T_TMP/fio.ka" || fail "fio through ka across kill -9 and restart of k1"
fo_check_after ka n-65536 "$READS_BACK" 1
assert_ge "$(show_attr ka n-65536/resent)" 1 "n-65536/resent"
assert_eq "$(export_pid ka)" "$KA_PID" "the storage daemon is the same process"
pid_alive "$KA_PID" || fail "the storage daemon died"
fo_log_has ka "node $K1_URI: (the node closed the connection|receive: Connection reset by peer|send: (Broken pipe|Connection reset by peer)); reconnecting" \
	"the storage noticed the killed export"
fo_log_has ka "node $K1_URI: back after" "the storage logged the node's return"
step "1. the device is the two backing files end to end"
assert_eq "$(dev_sha "$KA")" "$(node_data "$K0_IMG" "$K1_IMG" | sha256sum | cut -d' ' -f1)" \
	"sha256 of ka vs. its backing files"

# ---------------------------------------------------------------------------
step "2. storage hs: alg_linear over h0 + h1 (file-backed, 32M each), --request-timeout 2"
st_export h0 32M
H0_URI=$URI H0_IMG=$IMG
st_export h1 32M
H1_URI=$URI H1_IMG=$IMG H1_PID=$PID
st_create hs linear --request-timeout 2
st_add hs --remote "$H0_URI"
st_add hs --remote "$H1_URI"
st_start hs --listen "127.0.0.1:$(free_port)"
HS=$ST_URI HS_PID=$ST_PID

step "2. fio randwrite + verify (12 s); SIGSTOP h1 for 4.5 s during it"
fo_fio_start "$HS" 12 "$T_TMP/fio.hs"
fo_sleep_under_load 2
fo_expect_load hs n-65536
kill -STOP "$H1_PID"
T_STOPPED=$H1_PID
sleep 4.5
# The hang was noticed while it lasted (the kernel still ACKs a stopped
# process's socket, so only the request timeout can tell).
assert_eq "$(show_attr hs n-65536/state)" reconnecting "n-65536/state while h1 hangs"
assert_contains "$(show_attr hs n-65536/error)" "no reply for 2 s" "n-65536/error while h1 hangs"
assert_eq "$(show_attr hs n-65536/reconnects)" 0 "n-65536/reconnects while h1 still hangs"
READS_BACK=$(show_attr hs n-65536/io/reads) # as in part 1: before the return
kill -CONT "$H1_PID"
T_STOPPED=
fo_wait_up hs n-65536 15
fo_fio_wait "$T_TMP/fio.hs" || fail "fio through hs across SIGSTOP/SIGCONT of h1"
fo_check_after hs n-65536 "$READS_BACK" 1
assert_eq "$(export_pid hs)" "$HS_PID" "the storage daemon is the same process"
assert_eq "$(export_pid h1)" "$H1_PID" "h1 is the same process (stopped, not restarted)"
fo_log_has hs "node $H1_URI: no reply for 2 s \\([0-9]+ requests in flight\\); reconnecting" \
	"the storage noticed the hung export"
step "2. the device is the two backing files end to end"
assert_eq "$(dev_sha "$HS")" "$(node_data "$H0_IMG" "$H1_IMG" | sha256sum | cut -d' ' -f1)" \
	"sha256 of hs vs. its backing files"

# ---------------------------------------------------------------------------
step "3. storage fz: alg_linear over z0 + z1 (file-backed, 8M each), --io-timeout 0"
st_export z0 8M
Z0_URI=$URI
st_export z1 8M
Z1_URI=$URI Z1_IMG=$IMG Z1_PORT=$PORT Z1_PID=$PID
st_create fz linear --io-timeout 0
st_add fz --remote "$Z0_URI"
st_add fz --remote "$Z1_URI"
st_start fz --listen "127.0.0.1:$(free_port)"
FZ=$ST_URI FZ_PID=$ST_PID
# z1 holds the storage's 8M..16M: 0x5a at 9M (read later), 0x11 at 12M
# (overwritten while z1 is dead).
qio "$FZ" "write -P 0x5a $((9 * MiB)) 256k" "write -P 0x11 $((12 * MiB)) 64k" \
	"write -P 0x0a 0 64k" "flush"

step "3. kill -9 z1; a read and a write to its range wait (io-timeout 0)"
kill -KILL "$Z1_PID"
wait_gone "$Z1_PID" 10 || fail "export z1 survived kill -9"
t0=$(date +%s%3N)
bg sh -c "timeout 60 qemu-io -f raw -r -c 'read -P 0x5a $((9 * MiB)) 256k' '$FZ' >'$T_TMP/zread.out' 2>&1"
ZREAD=$BG_PID
bg sh -c "timeout 60 qemu-io -f raw -c 'write -P 0x22 $((12 * MiB)) 64k' -c flush '$FZ' >'$T_TMP/zwrite.out' 2>&1"
ZWRITE=$BG_PID
sleep 1
# The other node is not held up meanwhile.
qio "$FZ" "read -P 0x0a 0 64k" "write -P 0x0b $((4 * MiB)) 64k" "read -P 0x0b $((4 * MiB)) 64k"
sleep 4
pid_alive "$ZREAD" || fail "the read from the dead node ended within 5 s (io-timeout 0): $(cat "$T_TMP/zread.out")"
pid_alive "$ZWRITE" || fail "the write to the dead node ended within 5 s (io-timeout 0): $(cat "$T_TMP/zwrite.out")"
note "after $(($(date +%s%3N) - t0)) ms the read and the write are still pending"
assert_eq "$(show_attr fz n-16384/state)" reconnecting "n-16384/state with io-timeout 0 after 5 s"
assert_ge "$(show_attr fz n-16384/waiting)" 2 "requests waiting for the dead node"
assert_ge "$(show_attr fz n-16384/down_for)" 4 "n-16384/down_for"
assert_eq "$(show_attr fz n-16384/io/errors)" 0 "n-16384/io/errors (nothing failed)"
assert_eq "$(show_attr fz io/errors)" 0 "fz io/errors (nothing failed)"

step "3. restart z1 on its port: the pending read gets the right data, the write lands"
dst_ok export "$Z1_IMG" --name z1 --listen "127.0.0.1:$Z1_PORT" >/dev/null
rc=0
bg_wait "$ZREAD" || rc=$?
note "read ended after $(($(date +%s%3N) - t0)) ms (status $rc): $(tr '\n' ' ' <"$T_TMP/zread.out")"
[ $rc -eq 0 ] || fail "the pending read failed after the node came back (status $rc)"
assert_not_contains "$(cat "$T_TMP/zread.out")" "Pattern verification failed" "the pending read's data"
assert_contains "$(cat "$T_TMP/zread.out")" "read 262144/262144 bytes at offset $((9 * MiB))" "the pending read"
rc=0
bg_wait "$ZWRITE" || rc=$?
[ $rc -eq 0 ] || fail "the pending write failed after the node came back (status $rc): $(cat "$T_TMP/zwrite.out")"
assert_contains "$(cat "$T_TMP/zwrite.out")" "wrote 65536/65536 bytes at offset $((12 * MiB))" "the pending write"
assert_eq "$(show_attr fz n-16384/state)" up "n-16384/state after z1 came back"
assert_ge "$(show_attr fz n-16384/reconnects)" 1 "n-16384/reconnects"
assert_file_pattern "$Z1_IMG" $((4 * MiB)) 65536 0x22 "the write made while z1 was dead, in its backing file"
assert_file_pattern "$Z1_IMG" $((1 * MiB)) 262144 0x5a "z1's old data, in its backing file"
qio "$FZ" "read -P 0x22 $((12 * MiB)) 64k" "read -P 0x5a $((9 * MiB)) 256k"
assert_eq "$(export_pid fz)" "$FZ_PID" "the storage daemon is the same process"

step "stop"
for s in ka hs fz; do
	assert_eq "$(show_attr "$s" clients)" 0 "clients left connected to $s"
	st_stop "$s"
done
for e in k0 k1 h0 h1 z0 z1; do
	stop_export "$e"
done
echo "PASS"
