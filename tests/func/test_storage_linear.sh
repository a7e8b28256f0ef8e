#!/usr/bin/env bash
# alg_linear over three `dst export` nodes of unequal size (16M, 24M, 8M):
# fio crc32c verify at QD32 x 4 jobs with 4K..1M requests that cross the node
# boundaries; patterns written across each boundary land on each node at the
# offsets the linear layout predicts (read back through each node's own NBD
# server and from its backing file); the whole device equals the backing
# files laid end to end.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
need fio qemu-io nbdinfo nbdcopy

step "three export nodes: 16M, 24M, 8M"
st_export la 16M
A_URI=$URI A_IMG=$IMG
st_export lb 24M
B_URI=$URI B_IMG=$IMG
st_export lc 8M
C_URI=$URI C_IMG=$IMG

step "storage lin: alg_linear over them"
st_create lin linear
st_add lin --remote "$A_URI"
st_add lin --remote "$B_URI"
st_add lin --remote "$C_URI"
st_start lin
LIN=$ST_URI
assert_eq "$(dev_size "$LIN")" $((48 * MiB)) "size of the storage"
assert_eq "$(show_attr lin nodes)" "sectors (start [size]): 0 [32768] | 32768 [49152] | 81920 [16384]" "nodes line"

step "fio randwrite 4K..1M + crc32c verify, 4 jobs x QD32 (boundaries at 16M and 40M inside job regions)"
st_fio_verify "$LIN" 4 12M || fail "fio verify through the linear storage"
step "fio verify_only from new connections"
st_fio_verify "$LIN" 4 12M --verify_only=1 || fail "fio verify_only through the linear storage"
for n in n-0 n-32768 n-81920; do
	assert_ge "$(show_attr lin "$n/io/writes")" 1 "writes counted on node $n"
	assert_eq "$(show_attr lin "$n/io/errors")" 0 "io errors on node $n"
done
assert_eq "$(show_attr lin io/errors)" 0 "io errors on the storage"

step "the whole device is the three backing files end to end"
want=$(node_data "$A_IMG" "$B_IMG" "$C_IMG" | sha256sum | cut -d' ' -f1)
assert_eq "$(dev_sha "$LIN")" "$want" "sha256 of the device vs. the concatenated backing files"

step "patterns across each boundary land where the layout says"
B1=$((16 * MiB)) B2=$((40 * MiB))
qio "$LIN" \
	"write -P 0xb1 $((B1 - 4096)) 8192" \
	"write -P 0xb2 $((B2 - 1536)) 3072" \
	"write -P 0xb3 0 4096" \
	"write -P 0xb4 $((48 * MiB - 4096)) 4096" \
	"write -P 0xb5 $((B1 - 512 * 1024)) $((24 * MiB + 1024 * 1024))" \
	"flush"
# 0xb5 covers 15.5M..40.5M (all of node b and its neighbours' edges); b1 and
# b2 were overwritten there. Write them again on top.
qio "$LIN" "write -P 0xb1 $((B1 - 4096)) 8192" "write -P 0xb2 $((B2 - 1536)) 3072" "flush"
# Node a: 0..16M
assert_node_pattern "$A_URI" 0 4096 0xb3 "start of the device on node a"
assert_node_pattern "$A_URI" $((B1 - 512 * 1024)) $((512 * 1024 - 4096)) 0xb5 "node a before the first boundary"
assert_node_pattern "$A_URI" $((B1 - 4096)) 4096 0xb1 "first half of the 16M-straddling write on node a"
# Node b: 16M..40M, at node offsets 0..24M
assert_node_pattern "$B_URI" 0 4096 0xb1 "second half of the 16M-straddling write on node b"
assert_node_pattern "$B_URI" 4096 $((24 * MiB - 4096 - 1536)) 0xb5 "the middle of node b"
assert_node_pattern "$B_URI" $((24 * MiB - 1536)) 1536 0xb2 "first half of the 40M-straddling write on node b"
# Node c: 40M..48M, at node offsets 0..8M
assert_node_pattern "$C_URI" 0 1536 0xb2 "second half of the 40M-straddling write on node c"
assert_node_pattern "$C_URI" 1536 $((512 * 1024 - 1536)) 0xb5 "node c after the second boundary"
assert_node_pattern "$C_URI" $((8 * MiB - 4096)) 4096 0xb4 "end of the device on node c"
# And in the backing files themselves.
assert_file_pattern "$A_IMG" $((B1 - 4096)) 4096 0xb1 "backing file of node a"
assert_file_pattern "$B_IMG" 0 4096 0xb1 "backing file of node b (start)"
assert_file_pattern "$B_IMG" $((24 * MiB - 1536)) 1536 0xb2 "backing file of node b (end)"
assert_file_pattern "$C_IMG" 0 1536 0xb2 "backing file of node c (start)"
assert_file_pattern "$C_IMG" $((8 * MiB - 4096)) 4096 0xb4 "backing file of node c (end)"
# The patterns read back through the storage too, in one request each.
qio "$LIN" "read -P 0xb1 $((B1 - 4096)) 8192" "read -P 0xb2 $((B2 - 1536)) 3072" \
	"read -P 0xb5 $((B1 + 4096)) $((B2 - B1 - 4096 - 1536))" "read -P 0xb4 $((48 * MiB - 4096)) 4096"
# A wrong pattern is noticed (the checks above can fail).
run_fails "read -P with the wrong pattern" qemu-io -f raw -c "read -P 0xb2 $((B1 - 4096)) 8192" "$LIN"

step "WRITE_ZEROES, TRIM and FUA writes across the boundaries map like writes"
qio "$LIN" "write -z $((B1 - 65536)) 131072" "discard $((B2 - MiB)) $((2 * MiB))" \
	"write -f -P 0xb6 $((B1 + 8 * MiB - 4096)) 8192" "flush"
assert_node_pattern "$A_URI" $((B1 - 65536)) 65536 0 "write -z: end of node a"
assert_node_pattern "$B_URI" 0 65536 0 "write -z: start of node b"
assert_node_pattern "$B_URI" 65536 4096 0xb5 "write -z stopped at 16M+64K"
assert_node_pattern "$B_URI" $((24 * MiB - MiB)) $((MiB)) 0 "discard: last 1M of node b"
assert_node_pattern "$C_URI" 0 $((MiB)) 0 "discard: first 1M of node c"
assert_node_pattern "$B_URI" $((23 * MiB - 4096)) 4096 0xb5 "discard started at 39M"
assert_node_pattern "$B_URI" $((8 * MiB - 4096)) 8192 0xb6 "FUA write inside node b"
qio "$LIN" "read -P 0 $((B1 - 65536)) 131072" "read -P 0 $((B2 - MiB)) $((2 * MiB))"

step "BLOCK_STATUS: the storage's map of each node's range is the node's own map"
nbdinfo --map "$LIN" >"$T_TMP/map.lin" || fail "nbdinfo --map on the storage"
nbdinfo --map "$B_URI" >"$T_TMP/map.b" || fail "nbdinfo --map on node b"
nbdinfo --map "$C_URI" >"$T_TMP/map.c" || fail "nbdinfo --map on node c"
python3 - "$T_TMP/map.lin" "$T_TMP/map.b" "$T_TMP/map.c" $B1 $B2 <<'PY' || fail "the storage's block status disagrees with its nodes'"
import sys
def load(p):
    ext = []
    for ln in open(p):
        f = ln.split()
        if len(f) >= 3:
            ext.append((int(f[0]), int(f[1]), int(f[2])))
    return ext
def type_at(ext, off):
    for o, l, t in ext:
        if o <= off < o + l:
            return t
    sys.exit("offset %d not covered by the map" % off)
lin, b, c = load(sys.argv[1]), load(sys.argv[2]), load(sys.argv[3])
b1, b2 = int(sys.argv[4]), int(sys.argv[5])
step = 65536
n = 0
for x in range(0, b2 - b1, step):          # node b
    if type_at(lin, b1 + x) != type_at(b, x):
        sys.exit("storage %d: type %d, node b %d: type %d" % (b1 + x, type_at(lin, b1 + x), x, type_at(b, x)))
    n += 1
for x in range(0, 8 << 20, step):          # node c
    if type_at(lin, b2 + x) != type_at(c, x):
        sys.exit("storage %d: type %d, node c %d: type %d" % (b2 + x, type_at(lin, b2 + x), x, type_at(c, x)))
    n += 1
if not any(t & 2 for _, _, t in lin):
    print("   note: no zero extents reported (file system without holes?)")
print("   %d offsets agree" % n)
PY
want=$(node_data "$A_IMG" "$B_IMG" "$C_IMG" | sha256sum | cut -d' ' -f1)
assert_eq "$(dev_sha "$LIN")" "$want" "sha256 of the device after the pattern writes"

step "stop"
assert_eq "$(show_attr lin clients)" 0 "clients left connected"
st_stop lin
stop_export la
stop_export lb
stop_export lc
echo "PASS"
