#!/usr/bin/env bash
# Kernel NBD under fio, in a real kernel (run inside the VM by tests/vm/run;
# make vm-check). Storages over dst export nodes, attached with `dst start
# NAME -f /dev/nbdN`:
#  1. a 2-node alg_stripe: fio crc32c verify (libaio, O_DIRECT, 4K..256K) at
#     QD1 and at QD32 (2 jobs); blkdiscard and blkdiscard -z (BLKZEROOUT) on
#     the device read back as zeroes, on the device and in the nodes' backing
#     files, and the data around them is untouched;
#  2. a 2-leg alg_mirror: fio crc32c verify at QD32; both legs' files hold
#     the same data afterwards;
#  3. a linear storage whose node is a --readonly export: the device is
#     read-only (BLKROGET, sysfs ro), reads give the node's data, writes fail;
#  4. the seed's form, `dst -n NAME -A alg_linear -f /dev/nbdN -a HOST -p
#     PORT [-R]` twice: the device comes up with both nodes, carries data
#     (the nodes' files are the device end to end), `dst -n NAME -D` takes it
#     down;
#  5. `dst attach` right after `dst start --fuse` gives a loop device of the
#     storage's size (it was 0 on this kernel before dst attach stat'ed the
#     FUSE file).
# Outside a guest with nbd it skips. Files are on the guest's tmpfs /tmp.
. "$(dirname "$0")/../func/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
. "$TESTS_DIR/func/lib_fuse.sh"
. "$TESTS_DIR/vm/lib_knbd.sh"
need_knbd fio blkdiscard python3 cmp

# ---------------------------------------------------------------------------
step "1. alg_stripe over two exports of 32M (64K chunks), dst start ks -f NBD"
free_nbd
knbd_export sa 32M
SA_IMG=$IMG SA=$URI
knbd_export sb 32M
SB_IMG=$IMG SB=$URI
st_create ks stripe
st_add ks --remote "$SA"
st_add ks --remote "$SB"
knbd_start ks "$NBD"
wait_size "$NBD" $((64 * MiB))
Q=/sys/block/${NBD#/dev/}/queue
note "${NBD#/dev/}: max_sectors_kb $(<"$Q/max_sectors_kb"), discard_max_bytes $(<"$Q/discard_max_bytes")," \
	"write_zeroes_max_bytes $(<"$Q/write_zeroes_max_bytes")"

step "1. fio verify at QD1: 4M of 4K..256K writes, then read back"
blk_fio_verify "$NBD" "$T_TMP/fio.qd1" 120 --iodepth=1 --size=4M
step "1. fio verify at QD32: 2 jobs x 8M (16M..32M)"
blk_fio_verify "$NBD" "$T_TMP/fio.qd32" 180 --iodepth=32 --numjobs=2 --size=8M \
	--offset=16M --offset_increment=8M
show_snap ks
for n in n-0 n-65536; do
	assert_ge "$(snap "$n/io/writes")" 50 "writes on node $n"
	assert_eq "$(snap "$n/io/errors")" 0 "errors on node $n"
done
assert_eq "$(snap io/errors)" 0 "ks io/errors"

step "1. blkdiscard and blkdiscard -z read back as zeroes"
# 8M..10M (chunks 128..159) 0x5a; discard 8M+64K..9M (chunks 129..143),
# zero 9M..9M+320K (chunks 144..148). Chunk c of the stripe is chunk c/2 of
# node c%2: the device's 8M..10M is each node's 4M..5M; the discarded and
# zeroed chunks are node a's 65..74 and node b's 64..73.
dev_fill "$NBD" $((8 * MiB)) $((2 * MiB)) 0x5a
show_snap ks
t0=$(snap io/trims) z0=$(snap io/zeroes)
run_ok "blkdiscard" blkdiscard --offset $((8 * MiB + 65536)) --length $((MiB - 65536)) "$NBD"
run_ok "blkdiscard -z" blkdiscard -z --offset $((9 * MiB)) --length $((5 * 65536)) "$NBD"
has_patterns "the discarded and zeroed range, and around it, on $NBD" \
	"$NBD:$((8 * MiB + 65536)):$((MiB - 65536 + 5 * 65536)):0" \
	"$NBD:$((8 * MiB)):65536:0x5a" \
	"$NBD:$((9 * MiB + 5 * 65536)):$((MiB - 5 * 65536)):0x5a"
show_snap ks
note "at the storage: trims $t0 -> $(snap io/trims), zeroes $z0 -> $(snap io/zeroes)," \
	"writes $(snap io/writes)"
assert_ge "$(snap io/trims)" $((t0 + 1)) "trims at the storage after blkdiscard"
# dst offers WRITE_ZEROES: the kernel sends BLKZEROOUT as such, not as
# writes of zeroes.
assert_ge "$(cat "/sys/block/$(basename "$NBD")/queue/write_zeroes_max_bytes")" 1 \
	"write_zeroes_max_bytes of $NBD"
assert_ge "$(snap io/zeroes)" $((z0 + 1)) "WRITE_ZEROES at the storage after blkdiscard -z"
# In the nodes' files (each node's 4M is the device's 8M): node a keeps
# chunk 128 and 150..158, node b 149..159.
has_patterns "the discarded and zeroed range in the nodes' files" \
	"$SA_IMG:$((4 * MiB)):65536:0x5a" \
	"$SA_IMG:$((4 * MiB + 65536)):$((10 * 65536)):0" \
	"$SB_IMG:$((4 * MiB)):$((10 * 65536)):0" \
	"$SA_IMG:$((4 * MiB + 11 * 65536)):$((5 * 65536)):0x5a" \
	"$SB_IMG:$((4 * MiB + 10 * 65536)):$((6 * 65536)):0x5a"
knbd_stop ks "$NBD"

# ---------------------------------------------------------------------------
step "2. alg_mirror of two 40M legs, dst start km -f NBD: fio verify at QD32"
free_nbd
knbd_export ma 40M
MA_IMG=$IMG MA=$URI
knbd_export mb 40M
MB_IMG=$IMG MB=$URI
st_create km mirror --assume-clean
st_add km --remote "$MA"
st_add km --remote "$MB"
knbd_start km "$NBD"
KM_BYTES=$(show_attr km bytes)
wait_size "$NBD" "$KM_BYTES"
blk_fio_verify "$NBD" "$T_TMP/fio.mirror" 180 --iodepth=32 --numjobs=2 --size=6M --offset_increment=6M
show_snap km
assert_eq "$(snap io/errors)" 0 "km io/errors"
assert_eq "$(snap health)" AA "km health (both legs in sync)"
knbd_stop km "$NBD"
# The data starts at 0 on every leg (the labels at the end differ).
cmp -n "$KM_BYTES" "$MA_IMG" "$MB_IMG" >&2 || fail "the mirror's legs differ after fio"
note "the legs' files hold the same $KM_BYTES bytes of data"

# ---------------------------------------------------------------------------
step "3. a linear storage over a --readonly export: a read-only device"
free_nbd
knbd_export ro 16M
RO_IMG=$IMG RO_PORT=$PORT
st_create kr linear
st_add kr --remote "$URI"
stop_export ro
dev_fill "$RO_IMG" 0 $((MiB)) 0x3c
dst_ok export "$RO_IMG" --name ro --listen "127.0.0.1:$RO_PORT" --readonly >/dev/null
knbd_start kr "$NBD"
wait_size "$NBD" $((16 * MiB))
assert_eq "$(blockdev --getro "$NBD")" 1 "BLKROGET of $NBD"
assert_eq "$(<"/sys/block/${NBD#/dev/}/ro")" 1 "sysfs ro of $NBD"
run_fails "a write to the read-only device" dd if=/dev/zero of="$NBD" bs=64k count=1 oflag=direct conv=notrunc status=none
note "the write: $RUN_OUT"
has_patterns "the read-only device's data, and the node's file after the refused write" \
	"$NBD:0:$((MiB)):0x3c" "$RO_IMG:0:$((MiB)):0x3c"
w=$(show_attr kr io/writes)
assert_eq "${w:-0}" 0 "writes that reached the read-only storage"
knbd_stop kr "$NBD"
stop_export ro

# ---------------------------------------------------------------------------
step "4. the seed's form: dst -n seed -A alg_linear -f NBD -a 127.0.0.1 -p PORT, twice, -R"
free_nbd
knbd_export s0 16M
S0_IMG=$IMG S0_PORT=$PORT
knbd_export s1 16M
S1_IMG=$IMG S1_PORT=$PORT
dst_ok -n seed -A alg_linear -f "$NBD" -a 127.0.0.1 -p "$S0_PORT" >/dev/null
[ ! -e "/sys/block/${NBD#/dev/}/pid" ] || fail "$NBD connected before -R"
out=$(dst -n seed -A alg_linear -f "$NBD" -a 127.0.0.1 -p "$S1_PORT" -R) || fail "the seed's -R"
assert_contains "$out" "started 'seed'" "the seed's -R"
track_export seed
SEED_PID=$(export_pid seed) || fail "no pid file for seed"
knbd_connected "$NBD" seed
wait_size "$NBD" $((32 * MiB))
blk_fio_verify "$NBD" "$T_TMP/fio.seed" 120 --iodepth=16 --size=8M --offset=12M
dev_fill "$NBD" $((16 * MiB - 65536)) $((2 * 65536)) 0xa7
assert_eq "$(sha256sum <"$NBD" | cut -d' ' -f1)" "$(node_data "$S0_IMG" "$S1_IMG" | sha256sum | cut -d' ' -f1)" \
	"sha256 of $NBD vs. the nodes' files end to end"
has_patterns "the write across the nodes' boundary, in their files" \
	"$S0_IMG:$((16 * MiB - 65536)):65536:0xa7" "$S1_IMG:0:65536:0xa7"
dst_ok -n seed -D >/dev/null
wait_gone "$SEED_PID" 10 || fail "seed still runs after dst -n seed -D"
[ ! -e "/sys/block/${NBD#/dev/}/pid" ] || fail "$NBD still connected after dst -n seed -D"
[ ! -e "$DST_STATE_DIR/seed.conf" ] || fail "seed.conf left after -D"
check_log "$DST_STATE_DIR/seed.log"

# ---------------------------------------------------------------------------
step "5. dst start --fuse, then dst attach at once: the loop device has the storage's size"
# Linux 6.12's loop driver takes the size from the FUSE file's inode, which
# is 0 until something stats the file: dst attach does, first.
truncate -s $((8 * MiB + 4096)) "$T_TMP/kf.img" || fail "truncate"
st_create kf linear
st_add kf --disk "$T_TMP/kf.img"
track_fuse "$T_TMP/kf.dev"
st_start kf --fuse "$T_TMP/kf.dev"
fuse_attach kf --direct-io
wait_size "$LOOP" $((8 * MiB))
st_stop kf

for e in sa sb ma mb s0 s1; do
	stop_export "$e"
done
echo "PASS"
