#!/usr/bin/env bash
# The config is the source of truth: kill -9 the storage daemon, `dst start`
# it again, and it is the same storage (same nodes, size, URI) with the same
# data (sha256 of the whole device through nbdcopy before and after). Also
# after a clean stop/start, and for a storage with a local --disk node.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
need nbdcopy nbdinfo qemu-io

step "storage per: alg_linear over two exports and a local file"
st_export p0 16M
P0=$URI
st_export p1 8M
P1=$URI
truncate -s $((8 * MiB + 4096)) "$T_TMP/local.img" # 8M of data, then its label
st_create per linear
st_add per --remote "$P0"
st_add per --disk "$T_TMP/local.img"
st_add per --remote "$P1"
PPORT=$(free_port)
st_start per --listen "127.0.0.1:$PPORT"
PER=$ST_URI PID1=$ST_PID
assert_eq "$(dev_size "$PER")" $((32 * MiB)) "size"
conf1=$(conf_md5 per)
nodes1=$(show_attr per nodes)

step "fill it with random data, checksum the device"
head -c $((32 * MiB)) /dev/urandom >"$T_TMP/data.bin"
run_ok "nbdcopy data to the storage" nbdcopy "$T_TMP/data.bin" "$PER"
want=$(sha256sum <"$T_TMP/data.bin" | cut -d' ' -f1)
assert_eq "$(dev_sha "$PER")" "$want" "sha256 of the device before the kill"

step "kill -9 the storage daemon"
kill -KILL "$PID1"
wait_gone "$PID1" 10 || fail "storage daemon $PID1 survived kill -9"
assert_eq "$(conf_md5 per)" "$conf1" "md5 of per.conf after the kill"
run_fails "nbdinfo on the dead storage" nbdinfo --size "$PER"

step "dst start again: same storage, same data"
st_start per
PID2=$ST_PID
[ "$PID2" != "$PID1" ] || fail "the pid did not change"
assert_eq "$ST_URI" "$PER" "per/uri after restart (the --listen was saved)"
assert_eq "$(dev_size "$PER")" $((32 * MiB)) "size after restart"
assert_eq "$(show_attr per nodes)" "$nodes1" "nodes line after restart"
assert_eq "$(show_attr per n-32768/type)" "L: $T_TMP/local.img" "the local node after restart"
assert_eq "$(dev_sha "$PER")" "$want" "sha256 of the device after kill -9 + start"
assert_eq "$(conf_md5 per)" "$conf1" "md5 of per.conf after the restart"

step "it still takes writes; a clean stop/start keeps them"
qio "$PER" "write -P 0x99 $((16 * MiB - 4096)) 8192" "write -P 0x98 $((24 * MiB - 4096)) 8192" "flush"
want2=$(dev_sha "$PER")
st_stop per
st_start per
assert_eq "$(dev_sha "$PER")" "$want2" "sha256 after stop + start"
qio "$PER" "read -P 0x99 $((16 * MiB - 4096)) 8192" "read -P 0x98 $((24 * MiB - 4096)) 8192"

step "kill -9 while fio is writing: restart works, the flushed data is there"
qio "$PER" "write -P 0x77 $((8 * MiB)) $((4 * MiB))" "flush"
bg fio --name=load --ioengine=nbd --uri="$PER" --rw=randwrite --bs=64k --iodepth=32 \
	--size=8M --time_based --runtime=20 --output=/dev/null
FPID=$BG_PID
sleep 1
pid_alive "$FPID" || fail "fio load ended early"
kill -KILL "$ST_PID"
wait_gone "$ST_PID" 10 || fail "storage daemon survived kill -9"
bg_wait "$FPID" && fail "fio did not notice the storage died" || true
st_start per
assert_eq "$(dev_size "$PER")" $((32 * MiB)) "size after the second kill -9"
qio "$PER" "read -P 0x77 $((8 * MiB)) $((4 * MiB))" "read -P 0x99 $((16 * MiB - 4096)) 8192" \
	"read -P 0x98 $((24 * MiB - 4096)) 8192"
st_fio_verify "$PER" 2 4M || fail "fio verify after the restart"

step "the default Unix socket: kill -9 leaves a stale socket file, start copes"
st_create per2 linear
truncate -s $((4 * MiB + 4096)) "$T_TMP/local2.img"
st_add per2 --disk "$T_TMP/local2.img"
st_start per2
P2_URI=$ST_URI
qio "$P2_URI" "write -P 0x66 0 1M" "flush"
kill -KILL "$ST_PID"
wait_gone "$ST_PID" 10 || fail "per2 survived kill -9"
st_start per2
assert_eq "$ST_URI" "$P2_URI" "per2/uri after restart"
qio "$P2_URI" "read -P 0x66 0 1M"
st_stop per2

step "stop"
st_stop per
stop_export p0
stop_export p1
echo "PASS"
