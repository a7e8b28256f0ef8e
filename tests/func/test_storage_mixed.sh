#!/usr/bin/env bash
# A storage mixing node kinds: a local --disk file served in-process, a
# `dst export` node and an nbdkit node (any NBD server is a node). fio crc32c
# verify through it; the device is the three nodes end to end (the nbdkit
# node read through nbdkit itself); reads of the local node sent from its
# page cache (io/direct_reads) and writes to its cached pages done inline
# (io/inline_writes), bytes checked; --size narrowing a node; then
# the same kinds under alg_stripe.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
need fio qemu-io nbdinfo nbdcopy nbdkit
need_nbdpy

step "nodes: a local file (40M), a dst export (8M), nbdkit memory (32M)"
truncate -s $((40 * MiB + 4096)) "$T_TMP/local.img" # 40M of data, then its label
st_export mx 8M
X_URI=$URI X_IMG=$IMG
st_nbdkit memory $((32 * MiB + 4096)) # 32M of data, then its label
K_URI=$NBDKIT_URI K_PID=$NBDKIT_PID

step "storage mix: alg_linear over the three"
st_create mix linear
st_add mix --disk "$T_TMP/local.img"
st_add mix --remote "$X_URI"
st_add mix --remote "$K_URI"
st_start mix
MIX=$ST_URI
assert_eq "$(dev_size "$MIX")" $((80 * MiB)) "size of the mixed storage"
assert_eq "$(show_attr mix n-0/type)" "L: $T_TMP/local.img" "n-0/type (local)"
assert_eq "$(show_attr mix n-81920/type)" "R: ${X_URI#nbd://}" "n-81920/type (dst export)"
assert_eq "$(show_attr mix n-98304/type)" "R: ${K_URI#nbd://}" "n-98304/type (nbdkit)"
assert_eq "$(show_attr mix nodes)" "sectors (start [size]): 0 [81920] | 81920 [16384] | 98304 [65536]" "nodes line"

step "fio randwrite 4K..1M + crc32c verify, 4 jobs x QD32 over all three kinds"
st_fio_verify "$MIX" 4 20M || fail "fio verify through the mixed storage"
st_fio_verify "$MIX" 4 20M --verify_only=1 || fail "fio verify_only through the mixed storage"
for n in n-0 n-81920 n-98304; do
	assert_ge "$(show_attr mix "$n/io/writes")" 1 "writes counted on node $n"
	assert_eq "$(show_attr mix "$n/io/errors")" 0 "io errors on node $n"
done
assert_eq "$(show_attr mix n-0/state)" up "n-0/state (local)"
case $(stat -f -c %T "$T_TMP") in
ext2/ext3 | xfs | btrfs | f2fs | tmpfs) assert_contains "$(show_attr mix n-0/inline)" on "n-0/inline" ;;
*) assert_contains "$(show_attr mix n-0/inline)" off "n-0/inline on $(stat -f -c %T "$T_TMP")" ;;
esac

step "patterns across both boundaries, read back from each node"
qio "$MIX" "write -P 0xd1 $((40 * MiB - 8192)) 16384" "write -P 0xd2 $((48 * MiB - 8192)) 16384" "flush"
assert_file_pattern "$T_TMP/local.img" $((40 * MiB - 8192)) 8192 0xd1 "end of the local node"
assert_node_pattern "$X_URI" 0 8192 0xd1 "start of the export node"
assert_node_pattern "$X_URI" $((8 * MiB - 8192)) 8192 0xd2 "end of the export node"
assert_node_pattern "$K_URI" 0 8192 0xd2 "start of the nbdkit node"

step "writes to the local node's cached pages are done inline"
# Pages of the local file that were read are cached: a write to them is a
# pwrite(2) on the loop, not an io_uring request (io/inline_writes). (Not
# with qemu-io, whose writes are FUA: those need the disk, so the ring.)
qio "$MIX" "read $((4 * MiB)) $MiB"
inl0=$(show_attr mix n-0/io/inline_writes)
nbdpy "h.connect_uri('$MIX'); h.pwrite(b'\xd3' * 65536, $((4 * MiB + 4096))); h.flush()" ||
	fail "write to cached pages of the local node"
assert_eq "$(($(show_attr mix n-0/io/inline_writes) - inl0))" 1 "the write was done inline"
assert_file_pattern "$T_TMP/local.img" $((4 * MiB + 4096)) 65536 0xd3 "the inline write's bytes in the file"
nbdpy "h.connect_uri('$MIX'); h.pwrite(b'\xd4' * 4096, $((4 * MiB)), nbd.CMD_FLAG_FUA)" ||
	fail "FUA write to cached pages of the local node"
assert_eq "$(($(show_attr mix n-0/io/inline_writes) - inl0))" 1 "a FUA write is not done inline"
assert_file_pattern "$T_TMP/local.img" $((4 * MiB)) 4096 0xd4 "the FUA write's bytes in the file"

step "the device is local file + export file + nbdkit's memory, end to end"
nbdcopy "$K_URI" "$T_TMP/k.bin" || fail "nbdcopy from nbdkit"
want=$(node_data "$T_TMP/local.img" "$X_IMG" "$T_TMP/k.bin" | sha256sum | cut -d' ' -f1)
assert_eq "$(dev_sha "$MIX")" "$want" "sha256 of the device vs. its nodes"

step "reads of the local node go out from its page cache, the others' from buffers"
# pread OFF LEN: LEN bytes of the storage at OFF, on stdout, in one request.
pread() { nbdpy "h.connect_uri('$MIX'); import sys; sys.stdout.buffer.write(h.pread($2, $1))"; }
direct0=$(show_attr mix io/direct_reads)
# 1 MiB reads inside the local node (cached: it was just read whole), then
# 2 MiB inside the export node.
pread 0 $MiB >"$T_TMP/l1.bin" || fail "read of the local node"
pread $MiB $MiB >"$T_TMP/l2.bin" || fail "read of the local node"
pread $((42 * MiB)) $((2 * MiB)) >"$T_TMP/x.bin" || fail "read of the export node"
direct1=$(show_attr mix io/direct_reads)
assert_eq "$((direct1 - direct0))" 2 "reads lent by the local node (io/direct_reads)"
head -c $((2 * MiB)) "$T_TMP/local.img" >"$T_TMP/l.want"
dd if="$X_IMG" of="$T_TMP/x.want" bs=1M skip=2 count=2 status=none
assert_eq "$(cat "$T_TMP/l1.bin" "$T_TMP/l2.bin" | cmp - "$T_TMP/l.want" && echo same)" same \
	"lent reads carry the local node's bytes"
assert_eq "$(cmp "$T_TMP/x.bin" "$T_TMP/x.want" && echo same)" same "the export node's bytes"
st_stop mix

step "--size narrows a node: only its first sectors are used"
# Its disks carry mix's labels: dst delete mix takes them off, and nar may have them.
dst_ok delete mix >/dev/null
mid_before=$(head -c $((40 * MiB)) "$T_TMP/local.img" | tail -c +$((2 * MiB + 1)) | md5sum)
st_create nar linear
st_add nar --disk "$T_TMP/local.img" --size 4096
st_add nar --remote "$X_URI"
st_start nar
assert_eq "$(show_attr nar nodes)" "sectors (start [size]): 0 [4096] | 4096 [16384]" "nar/nodes"
assert_eq "$(dev_size "$ST_URI")" $((10 * MiB)) "size of nar"
qio "$ST_URI" "write -P 0xd6 0 $((10 * MiB))" "flush"
assert_file_pattern "$T_TMP/local.img" 0 $((2 * MiB)) 0xd6 "the narrowed node's first 2M"
assert_eq "$(head -c $((40 * MiB)) "$T_TMP/local.img" | tail -c +$((2 * MiB + 1)) | md5sum)" "$mid_before" \
	"the narrowed node's disk from 2M to its label is untouched"
assert_node_pattern "$X_URI" 0 $((8 * MiB)) 0xd6 "the export node after the narrowed one"
st_stop nar

step "the same kinds under alg_stripe (16M each, chunk 64K)"
truncate -s $((16 * MiB + 4096)) "$T_TMP/local2.img"
st_export mx2 16M
X2_URI=$URI
st_nbdkit memory $((16 * MiB + 4096))
K2_URI=$NBDKIT_URI
st_create smix stripe
st_add smix --disk "$T_TMP/local2.img"
st_add smix --remote "$X2_URI"
st_add smix --remote "$K2_URI"
st_start smix
assert_eq "$(dev_size "$ST_URI")" $((48 * MiB)) "size of the mixed stripe"
st_fio_verify "$ST_URI" 4 12M || fail "fio verify through the mixed stripe"
qio "$ST_URI" "write -P 0xd3 64k 64k" "write -P 0xd4 128k 64k" "write -P 0xd5 192k 64k" "flush"
assert_node_pattern "$X2_URI" 0 65536 0xd3 "chunk 1 on the export node"
assert_node_pattern "$K2_URI" 0 65536 0xd4 "chunk 2 on the nbdkit node"
assert_file_pattern "$T_TMP/local2.img" 65536 65536 0xd5 "chunk 3 on the local node at 64K"
st_stop smix

step "stop"
stop_export mx
stop_export mx2
kill_pid "$K_PID"
kill_pid "$NBDKIT_PID"
echo "PASS"
