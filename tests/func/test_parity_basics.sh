#!/usr/bin/env bash
# alg_parity, healthy: bad input, placement, show, and data through three
# geometries, each over file-backed `dst export` nodes.
#  - bad input, one line each, nothing changed: --data/--parity missing or
#    out of range (--data 0 or 1, --parity 0 or 4, K+M of 16 and 17),
#    --parity or --data without --alg parity, a bad --chunk, a node of
#    another size, a 7th node of a 4+2, dst start with 5 nodes of 6;
#    `-A alg_parity` (the old flag style) is accepted.
#  - 4+2, chunk 64K, six 16M nodes (one a 32M disk narrowed with --size):
#    64M; dst show's attributes; dst status healthy; whole-row writes use
#    the FULL plan, 64K and 4K writes RMW or RCW, none DEGRADED or
#    NOPARITY; row r's data chunk i is in node (i + 6 - r % 6)'s file at
#    r * 64K; fio crc32c write+verify; the parity of every row of the node
#    files is right (tests/tools/parity_check), and the device is the files'
#    data chunks in row order.
#  - 3+1 (default chunk, nodes of 16M + 4K: the size is rounded down to
#    the chunk) and 2+2 with --chunk 4K: fio verify, parity, placement.
#  - 2+2 created without --assume-clean over nodes full of random bytes:
#    the parity is made right before the storage says every node is in sync.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
. "$TESTS_DIR/func/lib_mirror.sh"
. "$TESTS_DIR/func/lib_parity.sh"
need fio qemu-io nbdinfo nbdcopy

step "bad input to dst create"
bad_input "--alg parity without --data" "--data" -- create b --alg parity --parity 2
bad_input "--alg parity without --parity" "--parity" -- create b --alg parity --data 4
bad_input "--data 1" "--data 1" -- create b --alg parity --data 1 --parity 1
bad_input "--data 0 (M >= K+M)" "--data 0" -- create b --alg parity --data 0 --parity 2
bad_input "--parity 0" "--parity 0" -- create b --alg parity --data 4 --parity 0
bad_input "--parity 4" "--parity 4" -- create b --alg parity --data 4 --parity 4
bad_input "16 nodes a row" "16" -- create b --alg parity --data 13 --parity 3
bad_input "17 nodes a row" "17" -- create b --alg parity --data 14 --parity 3
bad_input "--data not a number" "--data" -- create b --alg parity --data four --parity 2
bad_input "--parity with --alg stripe" "--parity" -- create b --alg stripe --parity 2
bad_input "--data with --alg mirror" "--data" -- create b --alg mirror --data 2
bad_input "--chunk not a power of two" "--chunk" -- create b --alg parity --data 4 --parity 2 --chunk 48K
bad_input "--chunk below 4K" "--chunk" -- create b --alg parity --data 4 --parity 2 --chunk 2K
[ ! -e "$DST_STATE_DIR/b.conf" ] || fail "a config b was written"
dst_ok create old -A alg_parity --data 2 --parity 1 >/dev/null
assert_contains "$(cat "$DST_STATE_DIR/old.conf")" "alg = alg_parity" "old.conf after dst create -A alg_parity"
dst_ok delete old >/dev/null

step "4+2 over six 16M nodes, one of them a 32M disk narrowed with --size"
mr_legs pb 16M 16M 16M 16M 16M
st_export big 32M
BIG_URI=$URI BIG_IMG=$IMG
st_export extra 16M
EXTRA_URI=$URI
st_create pb parity --data 4 --parity 2 --assume-clean
for i in 0 1 2 3 4; do st_add pb --remote "${LEG_URI[i]}"; done
bad_input "dst start with 5 nodes of 6" "needs 6 nodes" "has 5" -- start pb --listen "127.0.0.1:$(free_port)"
bad_input "a node of another size" "equal size" -- add pb --remote "$BIG_URI"
st_add pb --remote "$BIG_URI" --size 32768
LEG_IMG[5]=$BIG_IMG LEG_URI[5]=$BIG_URI LEG_EXPORT[5]=big
bad_input "a 7th node of a 4+2" "6" -- add pb --remote "$EXTRA_URI"
stop_export extra
st_start pb --listen "127.0.0.1:$(free_port)"
pr_attach pb 4 2

step "dst show and dst status of the healthy 4+2"
assert_eq "$P_SIZE" $((64 * MiB)) "pb/bytes (4 x 16M)"
assert_eq "$(dev_size "$P_URI")" $((64 * MiB)) "the size a client sees"
assert_eq "$(show_attr pb alg)" alg_parity "pb/alg"
assert_eq "$(show_attr pb health)" AAAAAA "pb/health"
for n in "${LEG_NODE[@]}"; do
	assert_eq "$(show_attr pb "$n/health")" A "pb/$n/health"
done
assert_eq "$(show_attr pb parity/data)" 4 "pb/parity/data"
assert_eq "$(show_attr pb parity/parity)" 2 "pb/parity/parity"
assert_eq "$P_CHUNK" 65536 "pb/parity/chunk (the default)"
assert_eq "$(show_attr pb parity/code)" "isa-l cauchy rs(4,2)" "pb/parity/code"
for a in parity/stale_regions parity/behind_regions parity/lost_rows parity/reconstructed_reads \
	bitmap/dirty resync/rate resync/regions_copied; do
	assert_eq "$(show_attr pb "$a")" 0 "pb/$a of a new storage"
done
for k in full rmw rcw degraded noparity; do
	assert_eq "$(pr_plan pb $k)" 0 "pb/parity/plans/$k before any write"
done
rs=$(show_attr pb region_size)
[[ $rs =~ ^[0-9]+$ ]] && [ "$rs" -ge 4096 ] || fail "pb/region_size is '$rs'"
pr_status_is pb 0 "dst status pb exit (healthy)"

step "whole-row writes (256K, aligned) of rows 0..6: the FULL plan"
cmds=()
for r in 0 1 2 3 4 5 6; do cmds+=("write -P $((0x20 + r)) $((r * 4 * P_CHUNK)) $((4 * P_CHUNK))"); done
qio "$P_URI" "${cmds[@]}" "flush"
assert_ge "$(pr_plan pb full)" 7 "pb/parity/plans/full after 7 whole-row writes"
pr_check "whole-row writes"

step "one 64K write per data chunk of rows 0..6 (pattern 0xRI): RMW or RCW; where each lands"
f0=$(pr_plan pb full)
cmds=()
for r in 0 1 2 3 4 5 6; do
	for i in 0 1 2 3; do cmds+=("write -P $((0x80 + r * 16 + i)) $(((r * 4 + i) * P_CHUNK)) $P_CHUNK"); done
done
qio "$P_URI" "${cmds[@]}" "flush"
small=$(($(pr_plan pb rmw) + $(pr_plan pb rcw)))
assert_ge "$small" 28 "RMW + RCW plans after 28 one-chunk writes"
assert_eq "$(pr_plan pb full)" "$f0" "FULL plans for one-chunk writes"
for r in 0 1 2 3 4 5 6; do
	for i in 0 1 2 3; do
		x=$(pr_node_of $r $i)
		assert_file_pattern "${LEG_IMG[x]}" $((r * P_CHUNK)) "$P_CHUNK" $((0x80 + r * 16 + i)) \
			"row $r data chunk $i on node $x"
	done
done
# The rotation by hand, for a few: row 1's first chunk is on the last node,
# row 5's data chunk 3 on node 4; row 6 is placed as row 0.
assert_eq "$(pr_node_of 1 0) $(pr_node_of 5 3) $(pr_node_of 6 2) $(pr_node_of 2 4)" "5 4 2 2" "pr_node_of"
pr_check "one-chunk writes"

step "4K writes inside chunks, and one across two chunks of a row"
qio "$P_URI" "write -P 0x41 $((8 * P_CHUNK + 4096)) 4096" "write -P 0x42 $((13 * P_CHUNK - 4096)) 8192" \
	"write -P 0x43 $((P_SIZE - 4096)) 4096" "flush"
qio "$P_URI" "read -P 0x41 $((8 * P_CHUNK + 4096)) 4096" "read -P 0x42 $((13 * P_CHUNK - 4096)) 8192" \
	"read -P 0x43 $((P_SIZE - 4096)) 4096" "read -P $((0x80 + 2 * 16)) $((8 * P_CHUNK)) 4096"
assert_ge $(($(pr_plan pb rmw) + $(pr_plan pb rcw))) $((small + 3)) "RMW + RCW plans after three small writes"
pr_check "4K writes"

step "fio randwrite 4K..1M + crc32c verify, 4 jobs x QD32 over 32M"
st_fio_verify "$P_URI" 4 8M || fail "fio verify through pb"
st_fio_verify "$P_URI" 4 8M --verify_only=1 >/dev/null || fail "fio verify_only through pb"
for n in "${LEG_NODE[@]}"; do
	assert_ge "$(show_attr pb "$n/io/writes")" 1 "writes on $n"
	assert_eq "$(show_attr pb "$n/io/errors")" 0 "io errors on $n"
done
for k in degraded noparity; do
	assert_eq "$(pr_plan pb $k)" 0 "pb/parity/plans/$k with every node in sync"
done
assert_eq "$(show_attr pb parity/reconstructed_reads)" 0 "reconstructed reads with every node in sync"
assert_eq "$(show_attr pb io/errors)" 0 "pb/io/errors"
note "plans: full $(pr_plan pb full), rmw $(pr_plan pb rmw), rcw $(pr_plan pb rcw)"
pr_settle pb
pr_check "after fio"
pr_same_as_files "$P_URI" "4+2 after fio"
st_stop pb

step "3+1, default chunk, nodes of 16M + 4K: 48M (rounded down to the chunk)"
mr_legs p31 16388K 16388K 16388K 16388K
pr_parity p31 3 1
assert_eq "$P_SIZE" $((48 * MiB)) "p31/bytes"
assert_eq "$(show_attr p31 parity/code)" "isa-l cauchy rs(3,1)" "p31/parity/code"
assert_eq "$(show_attr p31 health)" AAAA "p31/health"
st_fio_verify "$P_URI" 3 16M || fail "fio verify through p31"
pr_settle p31
pr_check "3+1 after fio"
pr_same_as_files "$P_URI" "3+1 after fio"
st_stop p31

step "2+2, --chunk 4K, four 8M nodes"
mr_legs p22 8M 8M 8M 8M
pr_parity p22 2 2 --chunk 4K
assert_eq "$P_CHUNK" 4096 "p22/parity/chunk"
assert_eq "$P_SIZE" $((16 * MiB)) "p22/bytes"
st_fio_verify "$P_URI" 2 8M || fail "fio verify through p22"
pr_settle p22
pr_check "2+2 after fio"
pr_same_as_files "$P_URI" "2+2 after fio"
st_stop p22

step "2+2 without --assume-clean over nodes of random bytes: the parity is made right"
mr_legs pz 8M 8M 8M 8M
for f in "${LEG_IMG[@]}"; do
	head -c $((8 * MiB)) /dev/urandom | dd of="$f" conv=notrunc status=none || fail "filling $f"
done
PR_INITIAL_SYNC=1 pr_parity pz 2 2
pr_settle pz
pr_check "an initial sync over random bytes"
pr_same_as_files "$P_URI" "after the initial sync"
st_fio_verify "$P_URI" 2 4M || fail "fio verify through pz"
pr_settle pz
pr_check "pz after fio"

step "stop"
st_stop pz
for e in "${LEG_EXPORT[@]}"; do stop_export "$e"; done
echo "PASS"
