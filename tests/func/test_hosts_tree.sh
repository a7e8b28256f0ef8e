#!/usr/bin/env bash
# A tree of storages across two hosts: two network namespaces A and B joined
# by a veth pair, nothing else between them. The commands of the README's
# "Running dst across hosts", with the namespaces' addresses:
#   A: export ex (a 16 MiB file, on A's loopback), storage s1 (alg_linear
#      over ex) listening on A's veth address with --allow for B's address,
#      TLS required (PSK from psktool);
#   B: storage s2 (alg_linear over s1, reached across the veth with the
#      nbds://alice@...?tls-psk-file= URI nbdinfo takes).
# Data written through s2 (its Unix socket) is read back, checksums
# compared, through s1 (from B) and through the export, and is on the
# export's file. A client in A itself is not let into s1.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=lib_storage.sh
. "$TESTS_DIR/func/lib_storage.sh"
# shellcheck source=lib_netns.sh
. "$TESTS_DIR/func/lib_netns.sh"
# shellcheck source=lib_tls.sh
. "$TESTS_DIR/func/lib_tls.sh"
need nbdinfo nbdcopy

netns_need
netns_pick ht 252 # for NET and two addresses in it
NSA=dsthtA-$$ NSB=dsthtB-$$ VA=dhtA$$ VB=dhtB$$
A_IP=$HOST_IP B_IP=$NODE_IP
MADE=()
cleanup_tree() {
	local rc=$? name pid ns
	set +e
	# Storages first (top down), then the export, then the namespaces.
	for name in s2 s1 ex; do
		if pid=$(export_pid "$name") && pid_alive "$pid"; then
			echo "   cleanup: stopping $name (pid $pid)"
			kill_pid "$pid"
		fi
	done
	for ns in "${MADE[@]}"; do
		ip netns del "$ns" || echo "   cleanup: ip netns del $ns failed" >&2
	done
	(exit $rc)
	st_cleanup
}
trap cleanup_tree EXIT

# inns NS CMD...: run CMD in namespace NS, output to $T_TMP/in.out (shown on
# failure, checked for sanitizer reports).
inns() {
	local ns=$1 rc=0
	shift
	ip netns exec "$ns" "$@" >"$T_TMP/in.out" 2>&1 || rc=$?
	check_stderr "$T_TMP/in.out" "$* in $ns"
	[ $rc -eq 0 ] || {
		cat "$T_TMP/in.out" >&2
		fail "'$*' in $ns exited with status $rc"
	}
}

step "namespaces $NSA ($A_IP) and $NSB ($B_IP), joined by a veth pair"
for ns in "$NSA" "$NSB"; do
	ip netns add "$ns" 2>"$T_TMP/ns.err" || skip "ip netns add failed: $(cat "$T_TMP/ns.err")"
	MADE+=("$ns")
	inns "$ns" ip link set lo up
done
ip link add "$VA" netns "$NSA" type veth peer name "$VB" netns "$NSB" 2>"$T_TMP/ns.err" ||
	skip "no veth pair: $(cat "$T_TMP/ns.err")"
inns "$NSA" ip addr add "$A_IP/30" dev "$VA"
inns "$NSA" ip link set "$VA" up
inns "$NSB" ip addr add "$B_IP/30" dev "$VB"
inns "$NSB" ip link set "$VB" up

step "A: export ex on its loopback; storage s1 over it on $A_IP:10900 --allow $B_IP/32"
EX_IMG=$T_TMP/ex.img
{ truncate -s 16M "$EX_IMG" && truncate -s +4096 "$EX_IMG"; } || fail "truncate $EX_IMG"
inns "$NSA" "$DST" export "$EX_IMG" --name ex --listen 127.0.0.1:10809
track_export ex
dst_ok create s1 --alg linear >/dev/null
inns "$NSA" "$DST" add s1 --remote nbd://127.0.0.1:10809
KEYS=$T_TMP/keys.psk
tls_psk "$KEYS" alice
inns "$NSA" "$DST" start s1 --listen "$A_IP:10900" --allow "$B_IP/32" \
	--tls require --tls-psk "$KEYS"
track_export s1
assert_eq "$(show_attr s1 allow)" "$B_IP/32:rw" "s1/allow"
assert_eq "$(ip netns identify "$(export_pid s1)")" "$NSA" "the namespace of s1"

S1_URI="nbds://alice@$A_IP:10900/?tls-psk-file=$KEYS"
step "B: storage s2 over $S1_URI (s1, across the veth)"
inns "$NSB" nbdinfo --size "$S1_URI"
assert_eq "$(cat "$T_TMP/in.out")" $((16 * MiB)) "nbdinfo --size of s1 from $NSB"
dst_ok create s2 --alg linear >/dev/null
inns "$NSB" "$DST" add s2 --remote "$S1_URI"
inns "$NSB" "$DST" start s2
track_export s2
assert_eq "$(ip netns identify "$(export_pid s2)")" "$NSB" "the namespace of s2"
assert_eq "$(show_attr s2 n-0/state)" up "s2's node (s1 in $NSA)"
S2=$(st_uri s2)
log_has "$DST_STATE_DIR/s1.log" "client $B_IP:[0-9]+: TLS on, PSK user alice" "s2's connection to s1 over TLS"
# Each level keeps 4 KiB of its node for the label.
SIZE=$(dev_size "$S2")
assert_eq "$SIZE" $((16 * MiB - 4096)) "s2's size"

step "write $SIZE bytes through s2; read them back through s2, s1 and ex"
head -c "$SIZE" /dev/urandom >"$T_TMP/data" || fail "random data"
WANT=$(sha256sum <"$T_TMP/data" | cut -d' ' -f1)
run_ok "nbdcopy into s2" nbdcopy "$T_TMP/data" "$S2"
assert_eq "$(dev_sha "$S2")" "$WANT" "sha256 read through s2"
inns "$NSB" nbdcopy "$S1_URI" "$T_TMP/s1.back"
assert_eq "$(head -c "$SIZE" "$T_TMP/s1.back" | sha256sum | cut -d' ' -f1)" "$WANT" "sha256 through s1 (from $NSB)"
inns "$NSA" nbdcopy nbd://127.0.0.1:10809 "$T_TMP/ex.back"
assert_eq "$(head -c "$SIZE" "$T_TMP/ex.back" | sha256sum | cut -d' ' -f1)" "$WANT" "sha256 through the export"
assert_eq "$(head -c "$SIZE" "$EX_IMG" | sha256sum | cut -d' ' -f1)" "$WANT" "sha256 of the export's file"
assert_ge "$(show_attr s1 io/write_bytes)" "$SIZE" "bytes s1 took from s2"

step "a client in $NSA ($A_IP) is not let into s1"
rc=0
ip netns exec "$NSA" nbdinfo --size "nbd://$A_IP:10900" >"$T_TMP/in.out" 2>&1 || rc=$?
[ $rc -ne 0 ] || fail "a client from $A_IP got into s1"
assert_contains "$(cat "$T_TMP/in.out")" "policy" "nbdinfo's error"

step "stop top down"
st_stop s2
st_stop s1
stop_export ex
echo "PASS"
