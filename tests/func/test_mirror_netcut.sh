#!/usr/bin/env bash
# A mirror leg cut off by the network (alg_mirror, --request-timeout 2): leg
# 0 is a file-backed export on 127.0.0.1, leg 1 one that runs inside a
# network namespace the test makes (a veth pair in a private /30).
#  - Under a fio crc32c write+verify load (2 jobs x QD32), an nftables rule
#    in the namespace DROPs the leg's TCP traffic both ways for 4 s: the leg's
#    requests go unanswered, the mirror drops the connection and marks the
#    leg dead (AD), the writes go on to leg 0; the rule is removed: the leg
#    reconnects by itself and is resynced, health AA. fio sees no error and
#    every block verifies; the leg files are byte-identical.
#  - An idle cut: DROP again with no IO (the leg stays A: nothing is sent),
#    then writes to 4 regions wait for the request timeout and succeed with
#    leg 0; the rule removed: exactly those 4 regions are copied.
# The namespace, the veth pair and the nft table go away on exit, after
# every process, whatever happened.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
. "$TESTS_DIR/func/lib_mirror.sh"
. "$TESTS_DIR/func/lib_netns.sh"
need fio qemu-io nbdinfo

netns_need
netns_pick mr 251
trap 'netns_cleanup mn' EXIT
cut_on() {
	netns_drop "$NPORT"
	note "nft: leg 1's TCP traffic dropped both ways"
}
cut_off() {
	netns_undrop
	note "nft: rules removed"
}
netns_setup

step "leg 0 on 127.0.0.1, leg 1 inside the namespace on $NODE_IP:10809"
mr_legs mn 32M
N1_IMG=$T_TMP/mn-leg1.img
truncate -s 32M "$N1_IMG" || fail "truncate $N1_IMG"
NPORT=10809 # the namespace's ports are all ours
track_export mn-leg1
nsx "$DST" export "$N1_IMG" --name mn-leg1 --listen "$NODE_IP:$NPORT" --allow "$HOST_IP/32" ||
	fail "dst export in $NS"
check_stderr "$T_TMP/nsx.out" "dst export in $NS"
N1_PID=$(export_pid mn-leg1) || fail "no pid file for mn-leg1"
pid_alive "$N1_PID" || fail "export mn-leg1 (pid $N1_PID) is not running"
assert_eq "$(ip netns identify "$N1_PID")" "$NS" "the network namespace of leg 1's export"
LEG_EXPORT[1]=mn-leg1 LEG_IMG[1]=$N1_IMG LEG_PORT[1]=$NPORT LEG_URI[1]=nbd://$NODE_IP:$NPORT
note "export mn-leg1: $N1_IMG on ${LEG_URI[1]} in $NS (pid $N1_PID)"

step "mirror mn over them, --request-timeout 2"
mr_mirror mn --request-timeout 2
L1=${LEG_NODE[1]}
assert_eq "$(show_attr mn "$L1/state")" up "$L1/state"

step "fio write+verify for 16 s; DROP leg 1's TCP both ways for 4 s after 2 s"
mr_fio_start "$M_URI" 16 "$T_TMP/fio.cut"
sleep 2
mr_fio_alive
assert_ge "$(show_attr mn "$L1/io/writes")" 1 "writes on $L1 before the cut"
mr_log_mark mn
cut_on
mr_wait mn health AD 8 "health with leg 1 cut off (request timeout 2 s)"
mr_log_has mn "node ${LEG_URI[1]}: (no reply for 2 s|(receive|send): Connection timed out)" \
	"the mirror noticed the silent network"
w0=$(show_attr mn "${LEG_NODE[0]}/io/writes")
sleep 1.5
mr_fio_alive
assert_ge "$(show_attr mn "${LEG_NODE[0]}/io/writes")" $((w0 + 1)) "writes reach leg 0 while leg 1 is cut off"
assert_ge "$(show_attr mn bitmap/dirty)" 1 "dirty regions while leg 1 is cut off"
c0=$(mr_copied mn)
cut_off
mr_wait mn health AA 25 "health after the network came back"
mr_log_has mn "mirror: leg $L1 is back; resyncing [0-9]+ dirty regions" "log: leg back"
mr_log_has mn "mirror: leg $L1 in sync again: [0-9]+ regions copied" "log: in sync again"
assert_ge $(($(mr_copied mn) - c0)) 1 "regions copied after the cut"
assert_ge "$(show_attr mn "$L1/reconnects")" 1 "$L1/reconnects"
mr_fio_wait
assert_eq "$(show_attr mn io/errors)" 0 "io errors on the storage (the client saw none)"
mr_settle mn
mr_legs_identical "after the cut under load"

step "an idle cut: DROP, then writes to 4 regions wait for the request timeout"
mr_log_mark mn
cut_on
sleep 1.5
assert_eq "$(show_attr mn health)" AA "health of an idle leg behind a silent network (nothing sent yet)"
t0=$(date +%s%3N)
MR_WRITTEN=()
mr_writes "$M_URI" $((1 * MiB)) $((12 * MiB + 4096)) $((25 * MiB)) $((M_SIZE - 65536))
write_ms=$(($(date +%s%3N) - t0))
note "the writes took $write_ms ms"
assert_ge "$write_ms" 1500 "ms the writes waited for the silent leg (request timeout 2 s)"
assert_le "$write_ms" 12000 "ms the writes took"
mr_wait mn health AD 5 "health after writes to the silent leg"
assert_eq "$(show_attr mn bitmap/dirty)" 4 "dirty regions"
c0=$(mr_copied mn)
cut_off
mr_wait mn health AA 25 "health after the network came back"
assert_eq $(($(mr_copied mn) - c0)) 4 "regions copied after the idle cut"
mr_log_has mn "mirror: resync of 4 regions starts" "log: resync starts"
mr_legs_identical "after the idle cut"
mr_check_written "$M_URI" "after the idle cut"

step "stop"
assert_eq "$(export_pid mn)" "$M_PID" "the storage daemon is the same process"
assert_eq "$(export_pid mn-leg1)" "$N1_PID" "leg 1's export is the same process"
st_stop mn
stop_export mn-leg0
# --force: a connection the cut left behind may still look open on leg 1's
# side (its FIN was dropped) until it is retransmitted, or keepalive gives
# up on it after about 25 s.
stop_export mn-leg1 --force
echo "PASS"
