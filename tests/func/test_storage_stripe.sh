#!/usr/bin/env bash
# alg_stripe over three equal `dst export` nodes, chunk 64K: fio crc32c verify
# at QD32 x 4 jobs with 4K..1M requests (crossing chunk boundaries); chunks
# 0,1,2,3 land on nodes 0,1,2,0 at node offsets 0,0,0,64K; a request across
# several chunks is split right; the whole device equals the backing files
# interleaved chunk by chunk; out-of-range requests get NBD errors.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
need fio qemu-io nbdinfo nbdcopy

CHUNK=65536
step "three export nodes of 16M"
st_export s0 16M
N0=$URI I0=$IMG
st_export s1 16M
N1=$URI I1=$IMG
st_export s2 16M
N2=$URI I2=$IMG

step "storage str: alg_stripe, chunk 64K, served on TCP"
st_create str stripe --chunk 64K
st_add str --remote "$N0"
st_add str --remote "$N1"
st_add str --remote "$N2"
SPORT=$(free_port)
st_start str --listen "127.0.0.1:$SPORT"
STR=$ST_URI
assert_eq "$STR" "nbd://127.0.0.1:$SPORT" "str/uri"
assert_eq "$(show_attr str alg)" alg_stripe "str/alg"
assert_eq "$(show_attr str chunk)" $CHUNK "str/chunk"
assert_eq "$(dev_size "$STR")" $((48 * MiB)) "size of the stripe"

step "chunks 0,1,2,3 land on nodes 0,1,2,0"
qio "$STR" "write -P 0xc0 0 64k" "write -P 0xc1 64k 64k" "write -P 0xc2 128k 64k" "write -P 0xc3 192k 64k" "flush"
assert_node_pattern "$N0" 0 $CHUNK 0xc0 "chunk 0 on node 0 at 0"
assert_node_pattern "$N1" 0 $CHUNK 0xc1 "chunk 1 on node 1 at 0"
assert_node_pattern "$N2" 0 $CHUNK 0xc2 "chunk 2 on node 2 at 0"
assert_node_pattern "$N0" $CHUNK $CHUNK 0xc3 "chunk 3 on node 0 at 64K"
assert_file_pattern "$I0" 0 $CHUNK 0xc0 "chunk 0 in node 0's file"
assert_file_pattern "$I1" 0 $CHUNK 0xc1 "chunk 1 in node 1's file"
assert_file_pattern "$I2" 0 $CHUNK 0xc2 "chunk 2 in node 2's file"
assert_file_pattern "$I0" $CHUNK $CHUNK 0xc3 "chunk 3 in node 0's file"
# Nothing else was written on the nodes.
assert_node_pattern "$N1" $CHUNK $CHUNK 0 "node 1 beyond its first chunk"
assert_node_pattern "$N2" $CHUNK $CHUNK 0 "node 2 beyond its first chunk"
assert_node_pattern "$N0" $((2 * CHUNK)) $CHUNK 0 "node 0 beyond its second chunk"

step "one request over chunks 4..7 (starting mid-chunk) is split across the nodes"
# Device 288K..480K: chunk 4 (node 1 at 64K) from 32K on, chunks 5 and 6
# whole (node 2 at 64K, node 0 at 128K), chunk 7 (node 1 at 128K) to 32K.
qio "$STR" "write -P 0xc4 $((4 * CHUNK + 32768)) $((3 * CHUNK))" "flush"
assert_node_pattern "$N1" $CHUNK 32768 0 "chunk 4 first half untouched (node 1)"
assert_node_pattern "$N1" $((CHUNK + 32768)) 32768 0xc4 "chunk 4 second half (node 1 at 96K)"
assert_node_pattern "$N2" $CHUNK $CHUNK 0xc4 "chunk 5 (node 2 at 64K)"
assert_node_pattern "$N0" $((2 * CHUNK)) $CHUNK 0xc4 "chunk 6 (node 0 at 128K)"
assert_node_pattern "$N1" $((2 * CHUNK)) 32768 0xc4 "chunk 7 first half (node 1 at 128K)"
assert_node_pattern "$N1" $((2 * CHUNK + 32768)) 32768 0 "chunk 7 second half untouched"
qio "$STR" "read -P 0xc3 $((3 * CHUNK)) $CHUNK" "read -P 0 $((4 * CHUNK)) 32768" \
	"read -P 0xc4 $((4 * CHUNK + 32768)) $((3 * CHUNK))" "read -P 0 $((7 * CHUNK + 32768)) 32768"

step "the last chunk of the device is the last chunk of node 2"
qio "$STR" "write -P 0xc5 $((48 * MiB - CHUNK)) $CHUNK" "flush"
assert_node_pattern "$N2" $((16 * MiB - CHUNK)) $CHUNK 0xc5 "last chunk on node 2"
assert_file_pattern "$I2" $((16 * MiB - CHUNK)) $CHUNK 0xc5 "last chunk in node 2's file"

step "fio randwrite 4K..1M + crc32c verify, 4 jobs x QD32"
st_fio_verify "$STR" 4 12M || fail "fio verify through the stripe"
st_fio_verify "$STR" 4 12M --verify_only=1 || fail "fio verify_only through the stripe"
for n in n-0 n-32768 n-65536; do
	assert_ge "$(show_attr str "$n/io/writes")" 1 "writes counted on node $n"
	assert_eq "$(show_attr str "$n/io/errors")" 0 "io errors on node $n"
done

step "the whole device is the node files interleaved chunk by chunk"
nbdcopy "$STR" "$T_TMP/dev.bin" || fail "nbdcopy of the stripe"
python3 - "$T_TMP/dev.bin" $CHUNK "$I0" "$I1" "$I2" <<'EOF' || fail "device and nodes disagree on the stripe layout"
import sys
dev = open(sys.argv[1], "rb").read()
chunk = int(sys.argv[2])
# Each node file ends with the node's 4 KiB label, which is not data.
nodes = [open(p, "rb").read()[:-4096] for p in sys.argv[3:]]
n = len(nodes)
assert len(dev) == sum(len(x) for x in nodes), "device size"
for k in range(len(dev) // chunk):
    want = nodes[k % n][(k // n) * chunk:(k // n + 1) * chunk]
    if dev[k * chunk:(k + 1) * chunk] != want:
        sys.exit("chunk %d (device offset %d) differs from node %d at %d" % (k, k * chunk, k % n, (k // n) * chunk))
print("   %d chunks checked" % (len(dev) // chunk))
EOF

step "out-of-range requests get NBD errors and the connection stays usable"
run_ok "nbd_raw oor_read oor_write" $NBD_RAW 127.0.0.1 "$SPORT" oor_read oor_write

step "stop"
assert_eq "$(show_attr str clients)" 0 "clients left connected"
st_stop str
stop_export s0
stop_export s1
stop_export s2
echo "PASS"
