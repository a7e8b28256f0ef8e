#!/usr/bin/env bash
# test_labels.sh - nothing is served from the wrong disk: every node carries
# a label (storage, place, disk id) that dst add writes and the storage
# checks on every connect and reconnect. A blank disk, another storage's
# disk or another node of the same storage at a node's address is not used
# (its IO waits, dst show says why) until the right disk is back; aliases
# of a node (localhost, the export name, the storage itself) are refused at
# add, replace and resume; a new mirror over legs that differ is made
# identical before it says so; a stripe of local disks refuses a blank one.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
need qemu-io

SOCK_URI() { echo "nbd+unix:///?socket=$DST_STATE_DIR/$1.sock"; }

step "a linear storage of two exported files: each node gets a label"
st_export a 8M
A_URI=$URI A_PORT=$PORT A_IMG=$IMG
st_export b 8M
B_URI=$URI B_PORT=$PORT B_IMG=$IMG
st_create st linear
st_add st --remote "$A_URI"
st_add st --remote "$B_URI"
conf=$(cat "$DST_STATE_DIR/st.conf")
assert_contains "$conf" "label=8388608 id=" "node line of a labelled node"
# The label sits in the disk's last 4 KiB, after the node's data.
tail -c 4096 "$A_IMG" | head -c 8 | grep -q DSTLABL1 || fail "no label at the end of a.img"
assert_contains "$(dst show st)" "nodes : sectors (start [size]): 0 [16384] | 16384 [16384]" \
	"node sizes leave the label out"

step "aliases of a node are refused at add"
for alias in "nbd://localhost:$A_PORT" "nbd://127.0.0.1:$A_PORT/a"; do
	run_fails "add $alias" "$DST" add st --remote "$alias"
	assert_contains "$RUN_OUT" "is the same disk as node n-0 ($A_URI) of 'st'" "alias $alias"
done

st_start st
URI_ST=$(SOCK_URI st)
qio "$URI_ST" "write -P 0x11 0 1M" "write -P 0x22 8M 1M"

step "the storage itself is refused as its own node"
run_fails "add itself" "$DST" add st --remote "$URI_ST"
assert_contains "$RUN_OUT" "is storage 'st' itself" "storage as its own node"

step "a tree that would loop is refused: st2 holds st, st may not hold st2"
st_create st2 linear
st_add st2 --remote "$URI_ST"
st_start st2
URI_ST2=$ST_URI
assert_contains "$(nbdinfo --json "$URI_ST2" | grep description)" "holds" "st2's description names what it holds"
run_fails "add st2 to st" "$DST" add st --remote "$URI_ST2"
assert_contains "$RUN_OUT" "is a storage that holds 'st'" "a loop of storages"
st_stop st2
dst_ok delete st2 >/dev/null

step "another storage cannot take a disk of this one"
st_create other linear
run_fails "add st's disk to other" "$DST" add other --remote "$B_URI"
assert_contains "$RUN_OUT" "carries the label of storage st" "foreign disk at add"
assert_contains "$RUN_OUT" "--relabel" "the way out is named"

step "a blank disk at n-16384's address is not used; IO waits for the right one"
stop_export b --force
truncate -s $((8 * MiB + 4096)) "$T_TMP/blank.img"
start_export b2 "$T_TMP/blank.img" --listen "127.0.0.1:$B_PORT"
for _ in $(seq 50); do
	[ "$(show_attr st n-16384/state)" = foreign ] && break
	sleep 0.2
done
assert_eq "$(show_attr st n-16384/state)" foreign "state of a node with a blank disk"
assert_eq "$(show_attr st n-16384/error)" "no label: a blank disk" "why it is not used"
assert_eq "$(grep -c 'not used: no label: a blank disk' "$DST_STATE_DIR/st.log")" 1 \
	"the refusal is logged once"
# A read of the node waits (it would time out only after io-timeout)...
bg sh -c 'qemu-io -f raw -c "read -P 0x22 8M 1M" "$1" >"$2" 2>&1' sh "$URI_ST" "$T_TMP/reader.out"
READER=$BG_PID
sleep 1
pid_alive "$READER" || fail "a read of the node with a blank disk did not wait"
# ...while the other node serves.
qio "$URI_ST" "read -P 0x11 0 1M"
# Nothing was written to the blank disk.
cmp -s -n $((8 * MiB + 4096)) "$T_TMP/blank.img" /dev/zero || fail "the blank disk was written to"

step "the right disk back: the waiting read completes with the data"
date +%T.%N; stop_export b2 --force
date +%T.%N; strace -f -tt -o /tmp/strace.out "$DST" export "$B_IMG" --name b --listen "127.0.0.1:$B_PORT" ; date +%T.%N
bg_wait "$READER" || fail "the waiting read failed once the right disk was back"
assert_contains "$(cat "$T_TMP/reader.out")" "read 1048576/1048576 bytes at offset 8388608" \
	"the waiting read"
assert_not_contains "$(cat "$T_TMP/reader.out")" "Pattern verification failed" "the waiting read"
assert_eq "$(show_attr st n-16384/state)" up "state with the right disk"
qio "$URI_ST" "read -P 0x22 8M 1M"

step "another node of the same storage at n-16384's address: not used"
stop_export b --force
# (A second export of a.img: --shared, since disks are claimed.)
start_export a2 "$A_IMG" --listen "127.0.0.1:$B_PORT" --shared
for _ in $(seq 50); do
	[ "$(show_attr st n-16384/state)" = foreign ] && break
	sleep 0.2
done
assert_contains "$(show_attr st n-16384/error)" "label of node n-0 of this storage" \
	"an alias at a node's address"
stop_export a2 --force
start_export b "$B_IMG" --listen "127.0.0.1:$B_PORT"

step "a stopped storage does not start on a blank disk, and says why"
st_stop st
stop_export b
start_export b3 "$T_TMP/blank.img" --listen "127.0.0.1:$B_PORT"
run_fails "start on a blank node" "$DST" start st
assert_contains "$RUN_OUT" "no label: a blank disk" "start refused"
stop_export b3
start_export b "$B_IMG" --listen "127.0.0.1:$B_PORT"
st_start st
qio "$URI_ST" "read -P 0x11 0 1M" "read -P 0x22 8M 1M"

step "replace and resume refuse another node and aliases; a new disk is labelled"
run_fails "replace onto n-0" "$DST" replace st n-16384 --remote "nbd://localhost:$A_PORT"
assert_contains "$RUN_OUT" "is the same disk as node n-0" "replace onto another node"
dst_ok suspend st n-16384 >/dev/null
run_fails "resume onto itself" "$DST" resume st n-16384 --remote "$URI_ST"
assert_contains "$RUN_OUT" "is storage 'st' itself" "resume onto the storage"
dst_ok resume st n-16384 >/dev/null
st_export c 8M
C_IMG=$IMG
dst_ok replace st n-16384 --remote "$URI" --wait >/dev/null
qio "$URI_ST" "read -P 0x22 8M 1M"
tail -c 4096 "$C_IMG" | head -c 8 | grep -q DSTLABL1 || fail "the new disk has no label"
assert_contains "$(cat "$DST_STATE_DIR/st.conf")" "$URI" "the config names the new disk"
# The old disk still carries n-16384's label, with the old disk id.
stop_export c --force
stop_export b --force
start_export b4 "$B_IMG" --listen "127.0.0.1:${URI##*:}"
for _ in $(seq 50); do
	[ "$(show_attr st n-16384/state)" = foreign ] && break
	sleep 0.2
done
assert_contains "$(show_attr st n-16384/error)" "a former disk of this node" "the replaced disk"
st_stop st

step "a disk with data where the label goes: refused, --import or --relabel"
head -c 8M /dev/urandom >"$T_TMP/data.img"
run_fails "add a disk with data" "$DST" add other --disk "$T_TMP/data.img"
assert_contains "$RUN_OUT" "holds data where its label goes" "data in the label block"
assert_contains "$RUN_OUT" "--import" "the way to keep the data is named"
before=$(md5sum <"$T_TMP/data.img")
dst_ok add other --disk "$T_TMP/data.img" --import >/dev/null
assert_eq "$(md5sum <"$T_TMP/data.img")" "$before" "--import changed the disk"
assert_not_contains "$(grep node "$DST_STATE_DIR/other.conf")" "label=" "an imported node"
assert_contains "$(dst show other)" "0 [16384]" "an imported node uses the whole disk"

step "a new mirror over legs that differ is made identical before it reports AA"
truncate -s 16M "$T_TMP/m0.img" "$T_TMP/m1.img"
dd if=/dev/urandom of="$T_TMP/m0.img" bs=1M count=4 conv=notrunc status=none
dd if=/dev/urandom of="$T_TMP/m1.img" bs=1M count=4 seek=8 conv=notrunc status=none
st_create m mirror
st_add m --disk "$T_TMP/m0.img"
st_add m --disk "$T_TMP/m1.img"
st_start m
for _ in $(seq 100); do
	[ "$(show_attr m health)" = AA ] && break
	sleep 0.1
done
assert_eq "$(show_attr m health)" AA "health after the initial sync"
assert_contains "$(cat "$DST_STATE_DIR/m.log")" "initial sync" "the initial sync is logged"
# 4M of data on n-0, the rest zero there: 12 of 16 regions are zeroed on the
# other leg (its random bytes at 8M..12M too), not copied.
assert_eq "$(show_attr m resync/regions_zeroed)" 12 "regions zero on the source, zeroed not copied"
bytes=$(dev_size "$(SOCK_URI m)")
cmp -n "$bytes" "$T_TMP/m0.img" "$T_TMP/m1.img" || fail "legs differ after the initial sync"

step "a mirror leg on a blank disk is not used; dst resume --disk labels and resyncs it"
dst_ok suspend m n-32768 >/dev/null
truncate -s 16M "$T_TMP/m2.img"
dst_ok resume m n-32768 --disk "$T_TMP/m2.img" >/dev/null
for _ in $(seq 100); do
	[ "$(show_attr m health)" = AA ] && break
	sleep 0.1
done
assert_eq "$(show_attr m health)" AA "health after resume onto a new disk"
cmp -n "$bytes" "$T_TMP/m0.img" "$T_TMP/m2.img" || fail "the new leg differs from n-0"
st_stop m
# The old leg disk may not come back as that leg.
sed -i "s|$T_TMP/m2.img|$T_TMP/m1.img|" "$DST_STATE_DIR/m.conf"
run_fails "start on a former leg disk" "$DST" start m
assert_contains "$RUN_OUT" "a former disk of this node" "a replaced leg disk at start"

step "a stripe of local disks: a blank disk in a node's place is refused, the right one taken"
truncate -s $((4 * MiB + 4096)) "$T_TMP/s0.img" "$T_TMP/s1.img"
st_create sp stripe
st_add sp --disk "$T_TMP/s0.img"
st_add sp --disk "$T_TMP/s1.img"
st_start sp
qio "$ST_URI" "write -P 0x5b 0 8M" "flush"
st_stop sp
mv "$T_TMP/s1.img" "$T_TMP/s1.keep"
truncate -s $((4 * MiB + 4096)) "$T_TMP/s1.img"
run_fails "start a stripe with a blank disk for n-8192" "$DST" start sp
assert_contains "$RUN_OUT" "node n-8192 ($T_TMP/s1.img): not used: no label: a blank disk" \
	"a blank disk in a stripe"
mv "$T_TMP/s1.keep" "$T_TMP/s1.img"
st_start sp
qio "$ST_URI" "read -P 0x5b 0 8M"
st_stop sp

echo "PASS: $TEST_NAME"
