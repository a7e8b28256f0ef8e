#!/usr/bin/env bash
# test_mirror_move_host.sh - a mirror whose host died is started on another
# host from a copy of its config alone (no bitmap file there): its legs'
# labels say whether it stopped cleanly. Two hosts: A is a network namespace,
# B the test's own; the legs are exports both reach. On A the mirror takes
# fio's verified writes; then A loses its path to leg 1 (nftables in A's
# namespace), so a write reaches leg 0 only (leg 1 dead, its generation left
# behind); then A's dstd is killed -9 under a random-write load. On B,
# `dst start` of the copied config finds labels that say "not stopped
# cleanly" and copies the newest leg (leg 0) whole: the legs end up
# byte-identical, the write leg 1 missed reads back, and fio verifies the
# data written before the crash. Stopped cleanly on B and
# started again without its bitmap, it needs no resync.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
. "$TESTS_DIR/func/lib_netns.sh"
need fio qemu-io nbdinfo
netns_need
netns_pick mv 62
trap 'netns_cleanup mv' EXIT
netns_setup

step "two legs exported on $HOST_IP, reachable from host A ($NS) and host B (here)"
LEG_IMG=() LEG_URI=()
LEG_PORT=()
for i in 0 1; do
	img=$T_TMP/leg$i.img
	truncate -s $((16 * MiB + 4096)) "$img"
	p=$(free_port)
	LEG_PORT[i]=$p
	start_export "leg$i" "$img" --listen "$HOST_IP:$p" \
		--allow "$NODE_IP/32" --allow "$HOST_IP/32" --allow 127.0.0.1/32
	LEG_IMG[i]=$img LEG_URI[i]=nbd://$HOST_IP:$p
done

step "host A: the mirror, created and started in $NS"
HA=$T_TMP/hostA
mkdir -p "$HA"
DST_STATE_DIR=$HA dst_ok create mv --alg mirror --assume-clean --request-timeout 2 >/dev/null
DST_STATE_DIR=$HA dst_ok add mv --remote "${LEG_URI[0]}" >/dev/null
DST_STATE_DIR=$HA dst_ok add mv --remote "${LEG_URI[1]}" >/dev/null
nsx env DST_STATE_DIR="$HA" "$DST" start mv || fail "dst start mv on host A"
A_PID=$(cat "$HA/mv.pid") || fail "no pid file on host A"
T_PIDS+=("$A_PID")
assert_eq "$(ip netns identify "$A_PID")" "$NS" "host A's dstd runs in $NS"
A_URI="nbd+unix:///?socket=$HA/mv.sock"
assert_eq "$(DST_STATE_DIR=$HA show_attr mv health)" AA "health on host A"

step "host A: fio verified writes over 0..6M"
st_fio_verify "$A_URI" 2 3M || fail "fio verify on host A"

step "host A loses leg 1: a write at 6M reaches leg 0 only"
nsx nft add rule inet "$NFT_TABLE" out ip daddr "$HOST_IP" tcp dport "${LEG_PORT[1]}" drop ||
	fail "nft rule cutting leg 1 from host A"
qio "$A_URI" "write -P 0x77 6M 1M" "flush"
assert_eq "$(DST_STATE_DIR=$HA show_attr mv health)" AD "health on host A without leg 1"

step "host A: a random-write load over 8..16M"
bg fio_run 30 "$T_TMP/load.out" --name=load --ioengine=nbd --uri="$A_URI" --rw=randwrite \
	--bs=4k --iodepth=64 --offset=8M --size=8M --time_based --runtime=20 --randrepeat=0
LOAD=$BG_PID
sleep 2
pid_alive "$LOAD" || fail "the load stopped before the crash"

step "host A dies: kill -9 of its dstd under the load"
kill -KILL "$A_PID"
wait_gone "$A_PID" 10 || fail "host A's dstd survived kill -9"
kill_pid "$LOAD"
nsx nft flush chain inet "$NFT_TABLE" out || fail "nft flush"
! cmp -s -n $((16 * MiB)) "${LEG_IMG[0]}" "${LEG_IMG[1]}" || fail "the legs are alike after the crash"
assert_file_pattern "${LEG_IMG[0]}" $((6 * MiB)) $MiB 0x77 "the write on leg 0"

step "host B: the config copied, no bitmap; dst start copies the newest leg whole"
cp "$HA/mv.conf" "$DST_STATE_DIR/mv.conf"
[ ! -e "$DST_STATE_DIR/mv.bitmap" ] || fail "a bitmap on host B"
st_start mv
for _ in $(seq 150); do
	[ "$(show_attr mv health)" = AA ] && break
	sleep 0.2
done
assert_eq "$(show_attr mv health)" AA "health on host B after the resync"
assert_contains "$(cat "$DST_STATE_DIR/mv.log")" "did not stop cleanly (its labels say so): copying" \
	"host B saw the crash in the labels"
assert_ge "$(show_attr mv resync/regions_copied)" 16 "regions resynced on host B"
cmp -n $((16 * MiB)) "${LEG_IMG[0]}" "${LEG_IMG[1]}" || fail "the legs differ on host B after the resync"
st_fio_verify "$ST_URI" 2 3M --verify_only=1 >/dev/null || fail "fio verify on host B of host A's writes"
qio "$ST_URI" "read -P 0x77 6M 1M"

step "stopped cleanly on host B, started again without its bitmap (moved): nothing to resync"
st_stop mv
rm -f "$DST_STATE_DIR/mv.bitmap"
st_start mv
assert_eq "$(show_attr mv health)" AA "health after a clean move"
assert_eq "$(show_attr mv resync/regions_copied)" 0 "regions copied after a clean move"
assert_contains "$(cat "$DST_STATE_DIR/mv.log")" "labels say the mirror stopped cleanly" \
	"the clean stop was read from the labels"
st_fio_verify "$ST_URI" 2 3M --verify_only=1 >/dev/null || fail "fio verify after the clean move"
st_stop mv
echo "PASS: $TEST_NAME"
