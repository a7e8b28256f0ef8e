# shellcheck shell=bash
# lib_netns.sh - a node behind a cuttable network, for the tests that cut
# one with nftables (test_storage_failover_net.sh, test_mirror_netcut.sh);
# source it after lib.sh and lib_storage.sh.
#
# netns_need: skip unless root with ip and nft.
# netns_pick TAG OCTET: names unique to this run (namespace dstTAG-PID, veth
#   dTAGPIDh/dTAGPIDn, nft table dstTAG) and a /30 of 10.OCTET.0.0/16 chosen
#   from our pid, moved on while any address of it is in use here. Sets NS,
#   VH, VN, NFT_TABLE, NET, HOST_IP, NODE_IP.
# netns_setup: the namespace, the veth pair between it and us, and an nft
#   table with input and output chains inside it.
# netns_cleanup STORAGE: for `trap 'netns_cleanup NAME' EXIT`. Every process
#   goes before the namespace does (a storage still running would retry its
#   node's address over the default route once the veth is gone): the
#   storage first, so that fio's pending IO is answered, then fio, then the
#   exports; lib's cleanup then finds them stopped and checks the logs.
# nsx CMD...: run CMD in the namespace; on failure show what it said.
# netns_drop PORT / netns_undrop: drop the TCP traffic of a port in the
#   namespace both ways / remove every rule.

netns_need() {
	[ "$(id -u)" -eq 0 ] || skip "the network namespace and nftables need root"
	command -v ip >/dev/null 2>&1 || skip "ip (iproute2) is not installed: no network namespace"
	command -v nft >/dev/null 2>&1 || skip "nft (nftables) is not installed"
}

netns_pick() {
	local tag=$1 octet=$2 idx a b
	NS=dst$tag-$$
	VH=d$tag$$h # host side of the veth pair
	VN=d$tag$$n # namespace side
	NFT_TABLE=dst$tag
	NS_MADE='' VETH_MADE=''
	idx=$(($$ % 16384))
	for _ in $(seq 64); do
		a=$((idx / 64)) b=$((idx % 64 * 4))
		NET=10.$octet.$a.$b
		HOST_IP=10.$octet.$a.$((b + 1))
		NODE_IP=10.$octet.$a.$((b + 2))
		ip -o -4 addr show | grep -qE " 10\.$octet\.$a\.($b|$((b + 1))|$((b + 2))|$((b + 3)))/" || break
		idx=$(((idx + 1) % 16384))
	done
}

netns_cleanup() {
	local rc=$? storage=$1 pid name
	set +e
	if pid=$(export_pid "$storage") && pid_alive "$pid"; then
		echo "   cleanup: stopping storage $storage (pid $pid)"
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

nsx() {
	local rc=0
	ip netns exec "$NS" "$@" >"$T_TMP/nsx.out" 2>&1 || rc=$?
	[ $rc -eq 0 ] || cat "$T_TMP/nsx.out" >&2
	return $rc
}

netns_setup() {
	step "network namespace $NS: veth $VH ($HOST_IP) <-> $VN ($NODE_IP), $NET/30"
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
}

netns_drop() {
	nsx nft add rule inet "$NFT_TABLE" in tcp dport "$1" drop || fail "nft drop rule (in)"
	nsx nft add rule inet "$NFT_TABLE" out tcp sport "$1" drop || fail "nft drop rule (out)"
}

netns_undrop() {
	nsx nft flush chain inet "$NFT_TABLE" in || fail "nft flush (in)"
	nsx nft flush chain inet "$NFT_TABLE" out || fail "nft flush (out)"
}
