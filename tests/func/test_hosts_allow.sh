#!/usr/bin/env bash
# A storage served to another host: `dst start --allow` (as dst export has).
# The storage (alg_linear over a local file) listens on the host side of a
# veth pair and on 127.0.0.1; real clients (nbdcopy, qemu-io) run inside a
# network namespace, the "other host".
#  - --allow NODE/32: the namespace's client writes and reads (checked
#    against the disk file); clients from any other address, loopback
#    included, are refused in the handshake and logged;
#  - --allow NODE/32:ro --allow HOST/32 (the rules replace the saved ones):
#    the namespace reads but its writes fail; the host side writes;
#  - --no-allow: loopback only again.
# dst show lists the rules, running and stopped.
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=lib_storage.sh
. "$TESTS_DIR/func/lib_storage.sh"
# shellcheck source=lib_netns.sh
. "$TESTS_DIR/func/lib_netns.sh"
need nbdinfo nbdcopy qemu-io
need_nbdpy

netns_need
netns_pick ha 251
trap 'netns_cleanup hs' EXIT
netns_setup

# nsq CMD...: qemu-io in the namespace; its output in $T_TMP/nsx.out.
nsq() {
	ip netns exec "$NS" qemu-io -f raw "$@" >"$T_TMP/nsx.out" 2>&1
}

step "storage hs: alg_linear over a 16 MiB file, on $HOST_IP and 127.0.0.1, --allow $NODE_IP/32"
DISK=$T_TMP/disk.img
{ truncate -s 16M "$DISK" && truncate -s +4096 "$DISK"; } || fail "truncate $DISK"
st_create hs linear
st_add hs --disk "$DISK"
PORT=$(free_port) LPORT=$(free_port)
st_start hs --listen "$HOST_IP:$PORT" --listen "127.0.0.1:$LPORT" --allow "$NODE_IP/32"
WAN=nbd://$HOST_IP:$PORT LOOP=nbd://127.0.0.1:$LPORT
assert_eq "$(show_attr hs allow)" "$NODE_IP/32:rw" "hs/allow"
assert_contains "$(cat "$DST_STATE_DIR/hs.conf")" "allow = $NODE_IP/32" "hs.conf keeps the rule"

step "the namespace ($NODE_IP) writes 4 MiB with nbdcopy and reads it back"
head -c 4M /dev/urandom >"$T_TMP/data" || fail "random data"
run_ok "nbdcopy into the storage from $NS" ip netns exec "$NS" nbdcopy "$T_TMP/data" "$WAN"
run_ok "nbdcopy out of the storage from $NS" ip netns exec "$NS" nbdcopy "$WAN" "$T_TMP/back"
assert_eq "$(head -c 4M "$T_TMP/back" | sha256sum)" "$(sha256sum <"$T_TMP/data")" "data read back in $NS"
assert_eq "$(head -c 4M "$DISK" | sha256sum)" "$(sha256sum <"$T_TMP/data")" "data on the disk file"
nsq -c "write -P 0x5a 8M 1M" -c "read -P 0x5a 8M 1M" "$WAN" || {
	cat "$T_TMP/nsx.out" >&2
	fail "qemu-io write+read from $NS"
}
assert_file_pattern "$DISK" $((8 * MiB)) "$MiB" 0x5a "qemu-io's write from $NS on the disk"

step "clients from other addresses are refused: $HOST_IP and 127.0.0.1"
for uri in "$WAN" "$LOOP"; do
	run_fails "nbdinfo $uri from this host" nbdinfo --size "$uri"
	assert_contains "$RUN_OUT" "server policy prevents" "nbdinfo's error for $uri"
done
log_has() { grep -Eq "$2" "$1" || fail "$3: no line matching '$2' in $(basename "$1")"; }
log_has "$DST_STATE_DIR/hs.log" "client $HOST_IP:[0-9]+: refused: address not allowed" "the refusal of $HOST_IP"
log_has "$DST_STATE_DIR/hs.log" "client 127\\.0\\.0\\.1:[0-9]+: refused: address not allowed" "the refusal of loopback"
assert_ge "$(show_attr hs clients_refused)" 2 "hs/clients_refused"

step "restart with --allow $NODE_IP/32:ro --allow $HOST_IP/32: the namespace is read-only"
st_stop hs
assert_eq "$(show_attr hs allow)" "$NODE_IP/32" "hs/allow of the stopped storage"
st_start hs --allow "$NODE_IP/32:ro" --allow "$HOST_IP/32"
RULES=$("$DST" show hs | grep '^hs/allow ')
assert_eq "$RULES" "hs/allow : $NODE_IP/32:ro
hs/allow : $HOST_IP/32:rw" "hs/allow after the restart (the old rule replaced)"
nsq -r -c "read -P 0x5a 8M 1M" "$WAN" || {
	cat "$T_TMP/nsx.out" >&2
	fail "read from $NS through an :ro rule"
}
# libnbd would refuse the write itself (strict mode): let the server judge.
OUT=$(ip netns exec "$NS" "$NBDPY" -c "import nbd
h = nbd.NBD()
h.set_strict_mode(0)
h.connect_uri('$WAN')
print('read-only' if h.is_read_only() else 'read-write')
try:
    h.pwrite(b'x' * 4096, 8 << 20)
    print('write succeeded')
except nbd.Error as e:
    print('write failed:', e.errno, e.string)
" 2>&1) || fail "python3-libnbd in $NS: $OUT"
note "python3-libnbd from $NS: $(printf '%s' "$OUT" | tr '\n' ' ')"
assert_contains "$OUT" "read-only" "the export flags seen from $NS"
assert_contains "$OUT" "write failed: EPERM" "a write through an :ro rule"
assert_file_pattern "$DISK" $((8 * MiB)) "$MiB" 0x5a "the disk after the refused write"
run_ok "read-only flag seen from $NS" ip netns exec "$NS" nbdinfo "$WAN"
assert_contains "$(cat "$T_TMP/run.out")" "is_read_only: true" "nbdinfo from $NS"
qio "$WAN" "write -P 0x22 12M 64k" "read -P 0x22 12M 64k"
assert_file_pattern "$DISK" $((12 * MiB)) 65536 0x22 "the write from $HOST_IP (rw rule)"

step "restart with --no-allow: loopback only again"
st_stop hs
st_start hs --no-allow
assert_eq "$(show_attr hs allow)" "loopback only (127.0.0.0/8, ::1):rw" "hs/allow after --no-allow"
assert_eq "$(grep -c "^allow" "$DST_STATE_DIR/hs.conf")" 0 "allow lines in hs.conf after --no-allow"
assert_eq "$(dev_size "$LOOP")" $((16 * MiB)) "size seen from 127.0.0.1"
rc=0
ip netns exec "$NS" nbdinfo --size "$WAN" >"$T_TMP/nsx.out" 2>&1 || rc=$?
[ $rc -ne 0 ] || fail "a client in $NS got in with no --allow rule"

step "bad rules change nothing"
bad_input "bad CIDR" "--allow" "10.0.0.0/33" -- start hs --allow 10.0.0.0/33
bad_input "both" "contradict" -- start hs --allow 10.0.0.0/8 --no-allow
st_stop hs
echo "PASS"
