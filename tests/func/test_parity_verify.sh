#!/usr/bin/env bash
# dst verify of an alg_parity storage finds exactly the parity blocks that do
# not match their row's data, and --repair rewrites them. A 4+2 storage over
# six file-backed dst exports (64 KiB chunks, 16 MiB nodes) is written whole
# with known data (nbdcopy); a first verify finds nothing (exit 0, method
# parity, every row checked). Then parity is changed behind its back:
# bytes inverted in the backing files of the nodes holding parity 0 of row 0
# (one block) and parity 1 of row 37 (three blocks), and one data block of
# row 100 (its row's two parity chunks then differ: two blocks). The verify
# exits 3, logs exactly those rows, nodes and counts, and changes nothing;
# --repair exits 0 with every block repaired; a third verify finds nothing;
# the storage reads back the data written, but row 100's changed block,
# which the data nodes hold and the repair kept (the data is the source).
# Refused, one line each: a verify while a node is out (suspended), a second
# verify while one runs (--rate), --abort with none running; dst replace of
# a node while a verify runs.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
. "$TESTS_DIR/func/lib_mirror.sh"
. "$TESTS_DIR/func/lib_verify.sh"
need nbdcopy

CHUNK=65536 K=4 N=6
step "parity pv: 4+2 over six 16M exports, written whole with known data"
mr_legs pv 16M 16M 16M 16M 16M 16M
st_create pv parity --data $K --parity 2 --assume-clean
for i in "${!LEG_URI[@]}"; do
	st_add pv --remote "${LEG_URI[i]}"
done
st_start pv --listen "127.0.0.1:$(free_port)"
mr_leg_nodes_parity() {
	mapfile -t LEG_NODE < <("$DST" show pv | sed -n 's|^pv/\(n-[0-9]*\)/health : .*|\1|p')
	[ ${#LEG_NODE[@]} -eq $N ] || fail "dst show pv lists ${#LEG_NODE[@]} nodes, expected $N"
}
mr_leg_nodes_parity
SIZE=$(show_attr pv bytes)
assert_eq "$SIZE" $((K * 16 * MiB)) "a 4+2 storage of 16 MiB nodes"
vf_data "$T_TMP/data.bin" "$SIZE" 23
run_ok "nbdcopy of the data into pv" nbdcopy "$T_TMP/data.bin" "$ST_URI"

step "a first verify finds every row's parity right"
vf_run 0 pv
assert_contains "$VF_OUT" "(parity): 16 regions, 0 blocks differ in 0 ranges, 0 repaired" "summary"
assert_eq "$(show_attr pv verify/rows_checked)" 256 "rows checked"
assert_eq "$(show_attr pv verify/method)" parity "method"

# node X holds role C of row R at (C + N - R % N) % N; its chunk at R*CHUNK.
node_of() { echo $((($2 + N - $1 % N) % N)); }
step "parity changed behind the storage's back"
mr_log_mark pv
p0=$(node_of 0 $K)              # parity 0 of row 0
p1=$(node_of 37 $((K + 1)))     # parity 1 of row 37
d2=$(node_of 100 2)             # data chunk 2 of row 100
vf_flip "${LEG_IMG[p0]}" 8192 100
vf_flip "${LEG_IMG[p1]}" $((37 * CHUNK + 4096)) $((3 * 4096))
vf_flip "${LEG_IMG[d2]}" $((100 * CHUNK + 61440)) 10
before=$(cat "${LEG_IMG[@]}" | md5sum)
vf_run 3 pv
assert_contains "$VF_OUT" "(parity): 16 regions, 6 blocks differ in 3 ranges, 0 repaired" "summary"
logged=$(tail -n +$((MR_LOG_MARK + 1)) "$DST_STATE_DIR/pv.log" | grep 'verify: mismatch' | sed 's/.*verify: //')
note "logged:"$'\n'"$logged"
assert_eq "$(grep -c '' <<<"$logged")" 4 "mismatch lines (row 100: both parity chunks)"
assert_contains "$logged" "mismatch at row 0 (offset 0 length 262144): 1 blocks of parity 0 on ${LEG_NODE[p0]} differ from the data" "row 0"
assert_contains "$logged" "mismatch at row 37 (offset $((37 * 262144)) length 262144): 3 blocks of parity 1 on ${LEG_NODE[p1]} differ" "row 37"
assert_contains "$logged" "mismatch at row 100 (offset $((100 * 262144)) length 262144): 1 blocks of parity 0 on ${LEG_NODE[$(node_of 100 $K)]}" "row 100, parity 0"
assert_contains "$logged" "mismatch at row 100 (offset $((100 * 262144)) length 262144): 1 blocks of parity 1 on ${LEG_NODE[$(node_of 100 $((K + 1)))]}" "row 100, parity 1"
assert_eq "$(cat "${LEG_IMG[@]}" | md5sum)" "$before" "the nodes' bytes after a verify without --repair"
assert_eq "$(show_attr pv verify/mismatch_blocks)" 6 "verify/mismatch_blocks"

step "bad input, one line each, nothing changed"
st_export pv-spare 16M
vf_start pv --rate 64K
bad_input "a second verify while one runs" "already running" -- verify pv
bad_input "dst replace while a verify runs" "verify is running" -- replace pv "${LEG_NODE[1]}" --remote "$URI"
dst_ok verify pv --abort >/dev/null
assert_eq "$(vf_wait pv 10)" aborted "verify/state after --abort"
bad_input "--abort with no verify running" "no verify is running" -- verify pv --abort
dst_ok suspend pv "${LEG_NODE[3]}" >/dev/null
bad_input "a verify with a node out" "every node must be in sync" -- verify pv
dst_ok resume pv "${LEG_NODE[3]}" >/dev/null
mr_wait pv health AAAAAA 30 "health after resume"

step "--repair rewrites the parity from the data; a third verify finds nothing"
vf_run 0 pv --repair
assert_contains "$VF_OUT" "6 blocks differ in 3 ranges, 6 repaired" "repair summary"
vf_run 0 pv
assert_contains "$VF_OUT" "0 blocks differ in 0 ranges, 0 repaired" "after the repair"
vf_flip "$T_TMP/data.bin" $((100 * 262144 + 2 * CHUNK + 61440)) 10
run_ok "nbdcopy of the storage" nbdcopy "$ST_URI" "$T_TMP/back.bin"
cmp "$T_TMP/data.bin" "$T_TMP/back.bin" || fail "the storage does not read back the data (with row 100's changed bytes)"
