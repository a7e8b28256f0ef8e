#!/usr/bin/env bash
# Spliced requests across a cut network (issue 21; alg_linear,
# --request-timeout 2): node n0 is a file-backed export on 127.0.0.1, node
# n1 one inside a network namespace the test makes (a veth pair in a
# private /30). While fio writes 1M blocks to n1 with crc32c verify at QD16
# and qemu-io reads 1M blocks of a known pattern from it (4 at a time, one
# qemu-io after another), an nftables rule in the namespace DROPs n1's TCP
# traffic both ways for 4 s, then is removed: the storage notices, waits,
# reconnects and resends the spliced requests it had in flight. fio sees no
# error and every block verifies, every read has the pattern (reads issued
# after the cut included), the device is the two backing files end to end,
# most of the payload was spliced, and every pipe is back in the pool. The
# namespace, the veth pair and the nft table go away on exit, whatever
# happened.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
. "$TESTS_DIR/func/lib_failover.sh"
. "$TESTS_DIR/func/lib_netns.sh"
. "$TESTS_DIR/func/lib_splice.sh"
need fio qemu-io nbdinfo nbdcopy

netns_need
netns_pick sp 249
trap 'netns_cleanup nc' EXIT
netns_setup

# read_loop URI OFFSET: until $T_TMP/reads.stop exists, one qemu-io after
# another, each with four 1M reads at once of [OFFSET, OFFSET+4M) that must
# have the pattern 0x77. Counts the runs that passed in reads.ok; a run that
# failed leaves its output in reads.bad and ends the loop.
read_loop() {
	local uri=$1 off=$2 n=0 rc
	while [ ! -e "$T_TMP/reads.stop" ]; do
		rc=0
		timeout 60 qemu-io -f raw -r -c "aio_read -P 0x77 $off 1M" -c "aio_read -P 0x77 $((off + MiB)) 1M" \
			-c "aio_read -P 0x77 $((off + 2 * MiB)) 1M" -c "aio_read -P 0x77 $((off + 3 * MiB)) 1M" \
			-c aio_flush "$uri" >"$T_TMP/reads.one" 2>&1 || rc=$?
		if [ $rc -ne 0 ] || grep -qiE 'fail|error|mismatch' "$T_TMP/reads.one" ||
			[ "$(grep -c 'read 1048576/1048576 bytes' "$T_TMP/reads.one")" -ne 4 ]; then
			{ echo "status $rc"; cat "$T_TMP/reads.one"; } >"$T_TMP/reads.bad"
			return 1
		fi
		n=$((n + 1))
		# Renamed into place: a reader never sees it empty.
		echo $n >"$T_TMP/reads.ok.new" && mv "$T_TMP/reads.ok.new" "$T_TMP/reads.ok"
	done
}

# reads_ok: the number of read_loop runs that passed so far.
reads_ok() {
	cat "$T_TMP/reads.ok" 2>/dev/null || echo 0
}

step "export n1 inside the namespace on $NODE_IP:10809, n0 on 127.0.0.1"
st_export n0 32M
N0_URI=$URI N0_IMG=$IMG
N1_IMG=$T_TMP/n1.img
{ truncate -s 32M "$N1_IMG" && truncate -s +4096 "$N1_IMG"; } || fail "truncate $N1_IMG"
NPORT=10809 # the namespace's ports are all ours
track_export n1
nsx "$DST" export "$N1_IMG" --name n1 --listen "$NODE_IP:$NPORT" --allow "$HOST_IP/32" ||
	fail "dst export in $NS"
check_stderr "$T_TMP/nsx.out" "dst export in $NS"
N1_PID=$(export_pid n1) || fail "no pid file for n1"
assert_eq "$(ip netns identify "$N1_PID")" "$NS" "the network namespace of export n1"
N1_URI=nbd://$NODE_IP:$NPORT
note "export n1: $N1_IMG on $N1_URI in $NS (pid $N1_PID)"

step "storage nc: alg_linear over n0 + n1, --request-timeout 2"
st_create nc linear --request-timeout 2
st_add nc --remote "$N0_URI"
st_add nc --remote "$N1_URI"
st_start nc --listen "127.0.0.1:$(free_port)"
NC=$ST_URI NC_PID=$ST_PID
N1="n-65536"
assert_eq "$(show_attr nc $N1/state)" up "$N1/state"
sp_assert_attr nc "$N1/splice" yes "$N1, a plaintext node"
# The reads' region: nc's 56M..60M, 24M..28M of n1.
qio "$NC" "write -P 0x77 $((56 * MiB)) 4M" "flush"

step "fio 1M write+verify on n1 (14 s) and 1M pattern reads; DROP n1's TCP both ways for 4 s after 2 s"
sp_mark nc $N1
sp_fio_start "$NC" 14 "$T_TMP/fio.nc" --numjobs=1 --offset=36M --size=16M
bg read_loop "$NC" $((56 * MiB))
READER=$BG_PID
fo_sleep_under_load 2
fo_expect_load nc $N1
pid_alive "$READER" || { cat "$T_TMP/reads.bad" >&2; fail "the pattern reads failed before the cut"; }
assert_ge "$(reads_ok)" 1 "qemu-io read runs before the cut"
netns_drop "$NPORT"
note "nft: n1's TCP traffic dropped both ways"
sleep 4
assert_eq "$(show_attr nc $N1/state)" reconnecting "$N1/state after 4 s of DROP"
assert_ge "$(show_attr nc $N1/waiting)" 1 "requests waiting for $N1 (it was under load)"
READS_BACK=$(show_attr nc $N1/io/reads) # from here on, reads of n1 come after its return
RUNS_CUT=$(reads_ok)
netns_undrop
note "nft: rules removed"
fo_wait_up nc $N1 15
fo_log_has nc "node $N1_URI: (receive: Connection timed out|send: Connection timed out|no reply for 2 s \\([0-9]+ requests in flight\\)); reconnecting" \
	"the storage noticed the silent network"
for _ in $(seq 100); do # two more runs of reads: one begun after the cut ended
	[ "$(reads_ok)" -ge $((RUNS_CUT + 2)) ] && break
	pid_alive "$READER" || break
	sleep 0.1
done
touch "$T_TMP/reads.stop"
rc=0
bg_wait "$READER" || rc=$?
[ $rc -eq 0 ] || { cat "$T_TMP/reads.bad" >&2; fail "the 1M pattern reads across the cut"; }
assert_ge "$(reads_ok)" $((RUNS_CUT + 2)) "qemu-io read runs after the cut"
note "$(reads_ok) runs of four 1M pattern reads, $RUNS_CUT of them before the end of the cut"
sp_fio_wait
fo_check_after nc $N1 "$READS_BACK" 1
assert_ge "$(show_attr nc $N1/resent)" 1 "$N1/resent (its requests in flight at the cut)"
assert_eq "$(export_pid nc)" "$NC_PID" "the storage daemon is the same process"
assert_eq "$(export_pid n1)" "$N1_PID" "export n1 is the same process"
sp_counters nc $N1
for d in read write; do
	s=$(sp_delta nc "splice/${d}_spliced_bytes")
	c=$(sp_delta nc "splice/${d}_copied_bytes")
	assert_ge "$s" "$(sp_most $((s + c)))" "$d payload spliced across the cut (of $((s + c)) bytes)"
done
sp_idle_pipes nc 2

step "the device is the two backing files end to end"
assert_eq "$(dev_sha "$NC")" "$(node_data "$N0_IMG" "$N1_IMG" | sha256sum | cut -d' ' -f1)" \
	"sha256 of nc vs. its backing files"

step "stop"
assert_eq "$(show_attr nc clients)" 0 "clients left connected"
st_stop nc
# The export may still hold the storage's connection from before the cut
# (the DROP swallowed its FIN): dst stop --force gives it its grace period.
stop_export n0
stop_export n1 --force
echo "PASS"
