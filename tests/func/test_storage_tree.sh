#!/usr/bin/env bash
# A two-level tree: storage A (alg_linear over two exports) is served on a
# Unix socket in the temp dir and is itself a remote node of storage B
# (alg_linear over A and a third export), served on TCP. fio crc32c verify
# through B; bytes written through B read back through A, and from the
# exports, where the two layouts predict.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
need fio qemu-io nbdinfo nbdcopy

step "exports: ta0 16M, ta1 8M (under A), tb 16M (under B)"
st_export ta0 16M
A0=$URI A0_IMG=$IMG
st_export ta1 8M
A1=$URI A1_IMG=$IMG
st_export tb 16M
TB=$URI TB_IMG=$IMG

step "storage A over ta0 + ta1, on a Unix socket"
st_create A linear
st_add A --remote "$A0"
st_add A --remote "$A1"
st_start A --socket "$T_TMP/A.sock"
A_URI=$ST_URI
assert_eq "$A_URI" "nbd+unix:///?socket=$T_TMP/A.sock" "A/uri"
assert_eq "$(dev_size "$A_URI")" $((24 * MiB)) "size of A"

step "storage B over A (a remote node) + tb, on TCP"
st_create B linear
st_add B --remote "$A_URI"
st_add B --remote "$TB"
BPORT=$(free_port)
st_start B --listen "127.0.0.1:$BPORT"
B_URI=$ST_URI
assert_eq "$B_URI" "nbd://127.0.0.1:$BPORT" "B/uri"
assert_eq "$(show_attr B n-0/type)" "R: $A_URI" "B/n-0/type names A's socket"
# A is a disk like any other to B: B's label of n-0 takes A's last 4 KiB.
assert_eq "$(show_attr B n-0/size)" $(((24 * MiB - 4096) / 512)) \
	"B/n-0/size: A's size, asked from A, less B's label"
assert_eq "$(show_attr B nodes)" "sectors (start [size]): 0 [49144] | 49144 [32768]" "B/nodes"
assert_eq "$(dev_size "$B_URI")" $((40 * MiB - 4096)) "size of B"

step "fio randwrite 4K..1M + crc32c verify through B, 4 jobs x QD32"
st_fio_verify "$B_URI" 4 10M || fail "fio verify through the tree"
st_fio_verify "$B_URI" 4 10M --verify_only=1 || fail "fio verify_only through the tree"
assert_ge "$(show_attr A io/writes)" 1 "writes reached A"
assert_eq "$(show_attr A io/errors)" 0 "io errors on A"
assert_eq "$(show_attr B io/errors)" 0 "io errors on B"

step "a pattern written through B reads back through A and from the exports"
# B 16M-4K..16M+4K: A's own boundary (ta0 | ta1). B 24M-8K..24M: B's
# boundary (A's last data block on ta1 | tb); A's very last 4K is B's label.
qio "$B_URI" "write -P 0xe1 $((16 * MiB - 4096)) 8192" "write -P 0xe2 $((24 * MiB - 8192)) 8192" "flush"
assert_node_pattern "$A_URI" $((16 * MiB - 4096)) 8192 0xe1 "B 16M+-4K through A"
assert_node_pattern "$A_URI" $((24 * MiB - 8192)) 4096 0xe2 "B 24M-8K through A (before B's label)"
assert_node_pattern "$A0" $((16 * MiB - 4096)) 4096 0xe1 "on ta0 at its end"
assert_node_pattern "$A1" 0 4096 0xe1 "on ta1 at 0"
assert_node_pattern "$A1" $((8 * MiB - 8192)) 4096 0xe2 "on ta1 before B's label"
assert_node_pattern "$TB" 0 4096 0xe2 "on tb at 0"
want=$({ node_data "$A0_IMG" "$A1_IMG" | head -c $((24 * MiB - 4096)); node_data "$TB_IMG"; } |
	sha256sum | cut -d' ' -f1)
assert_eq "$(dev_sha "$B_URI")" "$want" "sha256 of B vs. the three backing files"
want=$(node_data "$A0_IMG" "$A1_IMG" | sha256sum | cut -d' ' -f1)
assert_eq "$(dev_sha "$A_URI")" "$want" "sha256 of A vs. its two backing files"

step "stop B, then A"
assert_eq "$(show_attr B clients)" 0 "clients of B left connected"
st_stop B
assert_eq "$(show_attr A clients)" 0 "clients of A left after B stopped"
st_stop A
stop_export ta0
stop_export ta1
stop_export tb
echo "PASS"
