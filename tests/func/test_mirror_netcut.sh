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
need fio qemu-io nbdinfo

[ "$(id -u)" -eq 0 ] || skip "the network namespace and nftables need root"
command -v ip >/dev/null 2>&1 || skip "ip (iproute2) is not installed: no network namespace"
command -v nft >/dev/null 2>&1 || skip "nft (nftables) is not installed"

# Names unique to this run; a /30 of 10.251.0.0/16 chosen from our pid,
# moved on while any address of it is in use here.
NS=dstmr-$$
VH=dmr$$h # host side of the veth pair
VN=dmr$$n # namespace side
NFT_TABLE=dstmr
NS_MADE='' VETH_MADE=''
idx=$(($$ % 16384))
for _ in $(seq 64); do
	a=$((idx / 64)) b=$((idx % 64 * 4))
	HOST_IP=10.251.$a.$((b + 1))
	NODE_IP=10.251.$a.$((b + 2))
	ip -o -4 addr show | grep -qE " 10\.251\.$a\.($b|$((b + 1))|$((b + 2))|$((b + 3)))/" || break
	idx=$(((idx + 1) % 16384))
done

# On exit: the storage first (so that fio's pending IO is answered), then
# fio, then the exports, then the namespace; lib's cleanup then finds them
# stopped and checks the logs.
mr_net_cleanup() {
	local rc=$? pid name
	set +e
	if pid=$(export_pid mn) && pid_alive "$pid"; then
		echo "   cleanup: stopping storage mn (pid $pid)"
		kill_pid "$pid"
	fi
	for pid in "${T_PIDS[@]}"; do
		kill_pid "$pid"
	done
	for name in "${T_EXPORTS[@]}"; do
		if pid=$(export_pid "$name") && pid_alive "$pid"; then
			echo "   cleanup: stopping export $name (pid $pid)"
			kill_pid "$pid"
		fi
	done
	if [ -n "$NS_MADE" ]; then
		ip netns exec "$NS" nft delete table inet "$NFT_TABLE" 2>/dev/null
		[ -n "$VETH_MADE" ] && ip link del "$VH" 2>/dev/null
		ip netns del "$NS" || echo "   cleanup: ip netns del $NS failed" >&2
	fi
	(exit $rc)
	st_cleanup
}
trap mr_net_cleanup EXIT

# nsx CMD...: run CMD in the namespace; on failure show what it said.
nsx() {
	local rc=0
	ip netns exec "$NS" "$@" >"$T_TMP/nsx.out" 2>&1 || rc=$?
	[ $rc -eq 0 ] || cat "$T_TMP/nsx.out" >&2
	return $rc
}
cut_on() {
	nsx nft add rule inet "$NFT_TABLE" in tcp dport "$NPORT" drop || fail "nft drop rule (in)"
	nsx nft add rule inet "$NFT_TABLE" out tcp sport "$NPORT" drop || fail "nft drop rule (out)"
	note "nft: leg 1's TCP traffic dropped both ways"
}
cut_off() {
	nsx nft flush chain inet "$NFT_TABLE" in || fail "nft flush (in)"
	nsx nft flush chain inet "$NFT_TABLE" out || fail "nft flush (out)"
	note "nft: rules removed"
}

step "network namespace $NS: veth $VH ($HOST_IP) <-> $VN ($NODE_IP)"
ip netns add "$NS" 2>"$T_TMP/ns.err" || skip "ip netns add failed: $(cat "$T_TMP/ns.err")"
NS_MADE=1
ip link add "$VH" type veth peer name "$VN" 2>"$T_TMP/ns.err" || skip "no veth pair: $(cat "$T_TMP/ns.err")"
VETH_MADE=1
ip link set "$VN" netns "$NS" || fail "moving $VN into $NS"
ip addr add "$HOST_IP/30" dev "$VH" || fail "address on $VH"
ip link set "$VH" up || fail "$VH up"
nsx ip addr add "$NODE_IP/30" dev "$VN" || fail "address on $VN"
nsx ip link set "$VN" up || fail "$VN up"
nsx ip link set lo up || fail "lo up in $NS"
nsx nft add table inet "$NFT_TABLE" || skip "nftables does not work in a network namespace: $(cat "$T_TMP/nsx.out")"
nsx nft add chain inet "$NFT_TABLE" in '{ type filter hook input priority 0; policy accept; }' ||
	fail "nft input chain in $NS"
nsx nft add chain inet "$NFT_TABLE" out '{ type filter hook output priority 0; policy accept; }' ||
	fail "nft output chain in $NS"

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
stop_export mn-leg1
echo "PASS"
