#!/usr/bin/env bash
# test_labels_convert.sh - storages made before node labels existed (their
# configs written as dst wrote them then: no uuid on a linear storage, no
# label= on node lines) keep working unchecked, and `dst label` gives their
# nodes labels where there is room, never over data: a linear node whose
# disk has 4 KiB past its data gets one, a node that fills its disk stays
# unlabelled (said, with the way out), a mirror's legs get theirs in place
# of their older header. Afterwards the data is intact and a blank disk at a
# labelled node's place is refused.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
need qemu-io

step "an old linear storage: l0 has room past its data, l1 fills its disk"
truncate -s $((8 * MiB + 4096)) "$T_TMP/l0.img"
truncate -s $((8 * MiB)) "$T_TMP/l1.img"
cat >"$DST_STATE_DIR/old.conf" <<EOF
# written by dst; edit with the dst tool
type = storage
alg = alg_linear
node = disk start=0 size=16384 $T_TMP/l0.img
node = disk start=16384 size=16384 $T_TMP/l1.img
EOF
st_start old
qio "$ST_URI" "write -P 0x31 0 8M" "write -P 0x32 8M 8M" "flush"
st_stop old
tail_l0=$(tail -c 4096 "$T_TMP/l0.img" | md5sum)

step "dst label refuses a running storage"
st_start old
run_fails "dst label of a running storage" "$DST" label old
assert_contains "$RUN_OUT" "is running" "dst label while running"
st_stop old

step "dst label: a UUID, l0 labelled past its data, l1 left as it was"
out=$(dst label old) || fail "dst label old"
note "$out"
assert_contains "$out" "'old' gets UUID" "a UUID for an old linear storage"
assert_contains "$out" "n-0 ($T_TMP/l0.img): labelled at byte $((8 * MiB))" "l0's label"
assert_contains "$out" "n-16384 ($T_TMP/l1.img): its data fills the disk" "l1 has no room"
assert_contains "$out" "dst replace" "the way out is named"
assert_contains "$(grep '^node' "$DST_STATE_DIR/old.conf" | head -1)" "label=$((8 * MiB)) id=" "l0's node line"
assert_not_contains "$(grep '^node' "$DST_STATE_DIR/old.conf" | tail -1)" "label=" "l1's node line"
tail -c 4096 "$T_TMP/l0.img" | head -c 8 | grep -q DSTLABL1 || fail "no label on l0"
assert_file_pattern "$T_TMP/l0.img" 0 $((8 * MiB)) 0x31 "l0's data after dst label"
assert_file_pattern "$T_TMP/l1.img" 0 $((8 * MiB)) 0x32 "l1's data after dst label (not written over)"
[ "$(tail -c 4096 "$T_TMP/l0.img" | md5sum)" != "$tail_l0" ] || fail "l0's last block did not change"
out=$(dst label old) || fail "dst label old, again"
assert_contains "$out" "0 nodes labelled, 1 left unlabelled" "a second dst label changes nothing"

step "the storage starts with its data; a blank l0 is refused"
st_start old
qio "$ST_URI" "read -P 0x31 0 8M" "read -P 0x32 8M 8M"
st_stop old
mv "$T_TMP/l0.img" "$T_TMP/l0.keep"
truncate -s $((8 * MiB + 4096)) "$T_TMP/l0.img"
run_fails "start with a blank disk for n-0" "$DST" start old
assert_contains "$RUN_OUT" "no label: a blank disk" "a blank disk under a converted node"
mv "$T_TMP/l0.keep" "$T_TMP/l0.img"

step "an old mirror (leg headers of the older format) gets labels in their place"
st_export m0 8M
M0=$URI M0_IMG=$IMG
st_export m1 8M
M1=$URI M1_IMG=$IMG
cat >"$DST_STATE_DIR/om.conf" <<EOF
# written by dst; edit with the dst tool
type = storage
alg = alg_mirror
uuid = 00112233445566778899aabbccddeeff
node = remote start=0 size=16392 $M0
node = remote start=16392 size=16392 $M1
EOF
st_start om
qio "$ST_URI" "write -P 0x41 0 1M" "flush"
for img in "$M0_IMG" "$M1_IMG"; do
	tail -c 4096 "$img" | head -c 8 | grep -q DSTMLEG1 || fail "$img has no older leg header"
done
st_stop om
out=$(dst label om) || fail "dst label om"
note "$out"
assert_contains "$out" "2 nodes labelled, 0 left unlabelled" "both legs labelled"
for img in "$M0_IMG" "$M1_IMG"; do
	tail -c 4096 "$img" | head -c 8 | grep -q DSTLABL1 || fail "$img has no label after dst label"
done
st_start om
assert_eq "$(show_attr om health)" AA "health of the converted mirror"
qio "$ST_URI" "read -P 0x41 0 1M"
st_stop om

step "another storage's disk is not taken by dst label"
cat >"$DST_STATE_DIR/thief.conf" <<EOF
# written by dst; edit with the dst tool
type = storage
alg = alg_linear
node = remote start=0 size=16384 $M0
EOF
run_fails "dst label over another storage's leg" "$DST" label thief
assert_contains "$RUN_OUT" "carries the label of storage om" "a foreign disk at dst label"
stop_export m0
stop_export m1
echo "PASS: $TEST_NAME"
