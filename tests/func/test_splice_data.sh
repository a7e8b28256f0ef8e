#!/usr/bin/env bash
# The data of spliced and copied requests (issue 21), and which path each
# took:
#  - alg_linear over two `dst export mem:32M` nodes: fio with crc32c verify,
#    one job each of 1M, 256K, 64K and 4K random writes at QD16 on both
#    nodes (no request crosses the node boundary), then verify reads; the
#    storage's spliced bytes grew by most of the large IO's, the copied ones
#    by at least the 4K IO's, and together by exactly what fio moved; each
#    node's counters likewise. qemu-io writes and reads 1M straddling the
#    node boundary (split over two nodes: copied; right on both nodes), 1M
#    within one node (spliced) and 4M (more than a pipe holds: copied).
#    nbdcopy of a random 40M file in (across the boundary) and out, cmp. The
#    device is the nodes' data end to end. Raw clients (tests/tools/
#    nbd_raw.py): payloads dripped in more pieces than a pipe has slots,
#    odd sizes packed in one burst, clients gone mid-payload or with
#    spliced replies unread: the stream stays in sync.
#  - alg_mirror over two file-backed exports: the same fio mix (each write
#    goes to both legs: the legs' counters count it twice), nbdcopy of a
#    random file in and out, raw clients; after a flush the legs' files
#    are identical.
# Every request's pipe is back in the pool once its IO is over.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
. "$TESTS_DIR/func/lib_mirror.sh"
. "$TESTS_DIR/func/lib_splice.sh"
need fio qemu-io nbdinfo nbdcopy

# ---------------------------------------------------------------------------
step "linear sl over two dst export mem:32M nodes"
start_export sl0 mem:32M
SL0=$URI
start_export sl1 mem:32M
SL1=$URI
st_create sl linear
st_add sl --remote "$SL0"
st_add sl --remote "$SL1"
st_start sl --listen "127.0.0.1:$(free_port)"
SL=$ST_URI
# dst add keeps a node's last 4 KiB for its label.
B=$((32 * MiB - 4096)) # where node 1 begins
N1=n-$((B / 512))
assert_eq "$(show_attr sl nodes)" "sectors (start [size]): 0 [$((B / 512))] | $((B / 512)) [$((B / 512))]" "sl's nodes"
sp_assert_attr sl splice/state "on" "a storage served in plaintext over plaintext nodes"
sp_assert_attr sl n-0/splice yes "n-0, a plaintext node"
sp_assert_attr sl "$N1/splice" yes "$N1, a plaintext node"

step "fio write+verify: 1M, 256K on n-0; 64K, 4K, 1M on $N1 (QD16 each)"
sp_mark sl n-0 "$N1"
sp_fio_jobs "$SL" "$T_TMP/fio.sl" 1m@0+16M 256k@16M+8M 64k@36M+8M 4k@44M+2M 1m@48M+12M
sp_counters sl n-0 "$N1"
LARGE=$((44 * MiB)) SMALL=$((2 * MiB))
for d in read write; do
	sp_assert_delta sl "splice/${d}_spliced_bytes" ge "$(sp_most $LARGE)" "$d payload of >= 64K requests spliced"
	sp_assert_delta sl "splice/${d}_copied_bytes" ge $SMALL "$d payload of 4K requests copied"
	sp_assert_delta sl "splice/${d}_copied_bytes" le $((LARGE + SMALL - $(sp_most $LARGE))) "$d payload copied"
done
for d in read write; do
	assert_eq $(($(sp_delta sl "splice/${d}_spliced_bytes") + $(sp_delta sl "splice/${d}_copied_bytes"))) \
		$((LARGE + SMALL)) "$d payload spliced + copied (what fio moved)"
done
# Each node: its requests' payload both ways (n-0 24M, $N1 20M + 2M).
assert_eq $(($(sp_delta sl n-0/spliced_bytes) + $(sp_delta sl n-0/copied_bytes))) $((48 * MiB)) \
	"n-0's payload spliced + copied"
assert_eq $(($(sp_delta sl "$N1/spliced_bytes") + $(sp_delta sl "$N1/copied_bytes"))) $((44 * MiB)) \
	"$N1's payload spliced + copied"
sp_assert_delta sl n-0/spliced_bytes ge "$(sp_most $((48 * MiB)))" "n-0's payload (all of it >= 256K) spliced"
sp_assert_delta sl "$N1/spliced_bytes" ge "$(sp_most $((40 * MiB)))" "$N1's payload of >= 64K requests spliced"
sp_assert_delta sl "$N1/copied_bytes" ge $((4 * MiB)) "$N1's 4K requests' payload copied"
assert_eq "$(show_attr sl io/errors)" 0 "sl io/errors"
sp_idle_pipes sl 2

step "qemu-io: 1M across the node boundary (split: copied), 1M within $N1 (spliced), 4M (copied)"
sp_mark sl n-0 "$N1"
qio "$SL" "write -P 0xa5 $((B - 512 * 1024)) 1M" "flush"
sp_counters sl n-0 "$N1"
sp_assert_delta sl splice/write_copied_bytes eq $MiB "a write split over two nodes: copied"
sp_assert_delta sl splice/write_spliced_bytes eq 0 "a write split over two nodes: nothing spliced"
assert_node_pattern "$SL0" $((B - 512 * 1024)) $((512 * 1024)) 0xa5 "the straddling write's first half, on node 0"
assert_node_pattern "$SL1" 0 $((512 * 1024)) 0xa5 "the straddling write's second half, on node 1"
sp_mark sl n-0 "$N1"
qio "$SL" "read -P 0xa5 $((B - 512 * 1024)) 1M" "read -P 0xa5 $((B - 4096)) 8K"
sp_counters sl n-0 "$N1"
sp_assert_delta sl splice/read_copied_bytes eq $((MiB + 8192)) "reads split over two nodes: copied"
sp_assert_delta sl splice/read_spliced_bytes eq 0 "reads split over two nodes: nothing spliced"
sp_mark sl n-0 "$N1"
qio "$SL" "write -P 0x5c $((50 * MiB + 4096)) 1M" "flush"
sp_assert_delta sl splice/write_spliced_bytes eq $MiB "a 1M write within one node: spliced"
sp_assert_delta sl splice/write_copied_bytes eq 0 "a 1M write within one node: nothing copied"
assert_node_pattern "$SL1" $((50 * MiB + 4096 - B)) $MiB 0x5c "the 1M write within $N1, on node 1"
sp_mark sl n-0 "$N1"
qio "$SL" "read -P 0x5c $((50 * MiB + 4096)) 1M" "read -P 0x5c $((51 * MiB)) 4K"
sp_counters sl n-0 "$N1"
sp_assert_delta sl splice/read_spliced_bytes eq $MiB "a 1M read within one node: spliced"
sp_assert_delta sl splice/read_copied_bytes eq 4096 "a 4K read within one node: copied"
sp_assert_delta sl "$N1/spliced_bytes" eq $MiB "$N1: the 1M read spliced"
sp_assert_delta sl n-0/spliced_bytes eq 0 "n-0 had no IO"
sp_mark sl n-0 "$N1"
qio "$SL" "write -P 0x5d $((52 * MiB)) 4M" "flush" "read -P 0x5d $((52 * MiB)) 4M"
sp_counters sl n-0 "$N1"
sp_assert_delta sl splice/write_copied_bytes eq $((4 * MiB)) "a 4M write (more than a pipe holds): copied"
sp_assert_delta sl splice/read_copied_bytes eq $((4 * MiB)) "a 4M read (more than a pipe holds): copied"
sp_assert_delta sl splice/write_spliced_bytes eq 0 "a 4M write: nothing spliced"
sp_assert_delta sl splice/read_spliced_bytes eq 0 "a 4M read: nothing spliced"
assert_node_pattern "$SL1" $((52 * MiB - B)) $((4 * MiB)) 0x5d "the 4M write, on node 1"

step "nbdcopy a random 40M file into sl (across the boundary) and out again"
sp_random "$T_TMP/rand40" $((40 * MiB))
sp_mark sl n-0 "$N1"
run_ok "nbdcopy into sl" nbdcopy "$T_TMP/rand40" "$SL"
sp_counters sl n-0 "$N1"
sp_assert_delta sl splice/write_spliced_bytes ge "$(sp_most $((40 * MiB)))" "nbdcopy's 256K writes spliced"
# Its 256K request at 32M-256K holds the node boundary.
sp_assert_delta sl splice/write_copied_bytes ge $((256 * 1024)) "nbdcopy's write across the boundary copied"
sp_mark sl n-0 "$N1"
run_ok "nbdcopy out of sl" nbdcopy "$SL" "$T_TMP/sl.out"
sp_counters sl n-0 "$N1"
sp_assert_delta sl splice/read_spliced_bytes ge "$(sp_most $((40 * MiB)))" "nbdcopy's 256K reads spliced"
cmp -n $((40 * MiB)) "$T_TMP/rand40" "$T_TMP/sl.out" || fail "nbdcopy in and out of sl: the data differs"
assert_eq "$(stat -c %s "$T_TMP/sl.out")" $((2 * B)) "size of what nbdcopy read out of sl"

step "the device is the nodes' data end to end"
run_ok "nbdcopy out of node 0" nbdcopy "$SL0" "$T_TMP/sl0.out"
run_ok "nbdcopy out of node 1" nbdcopy "$SL1" "$T_TMP/sl1.out"
assert_eq "$(sha256sum <"$T_TMP/sl.out" | cut -d' ' -f1)" \
	"$(node_data "$T_TMP/sl0.out" "$T_TMP/sl1.out" | sha256sum | cut -d' ' -f1)" \
	"sha256 of sl vs. its nodes' data"
assert_eq "$(show_attr sl io/errors)" 0 "sl io/errors"
sp_idle_pipes sl 2

step "raw clients on sl: framing around spliced payloads, clients gone mid-payload"
# After a spliced payload the server reads one header at a time; a payload
# that comes in more pieces than its pipe has slots goes on in a buffer; a
# client may vanish with its payload half in a pipe, or with spliced replies
# unread. Each scenario checks the stream stays in sync and the server
# serves on.
run_ok "nbd_raw on sl" nbd_raw 127.0.0.1 "${SL##*:}" drip_large_writes stream_sync slow_drip \
	pipelined oor_write unknown_flags vanish_mid_payload vanish_with_inflight disc_with_inflight
sed 's/^/   /' "$T_TMP/run.out"
sp_idle_pipes sl 2

# ---------------------------------------------------------------------------
step "mirror sm over two file-backed 32M exports"
mr_legs sm 32M 32M
mr_mirror sm
L0=${LEG_NODE[0]} L1=${LEG_NODE[1]}
sp_assert_attr sm splice/state "on" "a mirror served in plaintext over plaintext legs"
sp_assert_attr sm "$L0/splice" yes "$L0, a plaintext leg"
sp_assert_attr sm "$L1/splice" yes "$L1, a plaintext leg"

step "fio write+verify on sm: 1M, 256K, 64K, 4K, 1M (QD16 each)"
sp_mark sm "$L0" "$L1"
sp_fio_jobs "$M_URI" "$T_TMP/fio.sm" 1m@0+10M 256k@10M+6M 64k@16M+6M 4k@22M+2M 1m@24M+8M
sp_counters sm "$L0" "$L1"
LARGE=$((30 * MiB)) SMALL=$((2 * MiB))
for d in read write; do
	sp_assert_delta sm "splice/${d}_spliced_bytes" ge "$(sp_most $LARGE)" "$d payload of >= 64K requests spliced"
	sp_assert_delta sm "splice/${d}_copied_bytes" ge $SMALL "$d payload of 4K requests copied"
done
for d in read write; do
	assert_eq $(($(sp_delta sm "splice/${d}_spliced_bytes") + $(sp_delta sm "splice/${d}_copied_bytes"))) \
		$((LARGE + SMALL)) "$d payload spliced + copied (what fio moved)"
done
# Every write went to both legs, every read to one of them.
assert_eq $(($(sp_delta sm "$L0/spliced_bytes") + $(sp_delta sm "$L0/copied_bytes") +
	$(sp_delta sm "$L1/spliced_bytes") + $(sp_delta sm "$L1/copied_bytes"))) $((3 * 32 * MiB)) \
	"the legs' payload spliced + copied (writes twice, reads once)"
# The mirrored writes alone: each leg got all of them, tee'd.
sp_assert_delta sm "$L0/spliced_bytes" ge "$(sp_most $LARGE)" "$L0: the large writes spliced"
sp_assert_delta sm "$L1/spliced_bytes" ge "$(sp_most $LARGE)" "$L1: the large writes spliced"
qio "$M_URI" "flush"
mr_legs_identical "after fio"

step "nbdcopy a random 24M file into sm and out again"
sp_random "$T_TMP/rand24" $((24 * MiB))
sp_mark sm "$L0" "$L1"
run_ok "nbdcopy into sm" nbdcopy "$T_TMP/rand24" "$M_URI"
sp_assert_delta sm splice/write_spliced_bytes ge "$(sp_most $((24 * MiB)))" "nbdcopy's writes spliced"
run_ok "nbdcopy out of sm" nbdcopy "$M_URI" "$T_TMP/sm.out"
sp_counters sm "$L0" "$L1"
sp_assert_delta sm splice/read_spliced_bytes ge "$(sp_most $((24 * MiB)))" "nbdcopy's reads spliced"
cmp -n $((24 * MiB)) "$T_TMP/rand24" "$T_TMP/sm.out" || fail "nbdcopy in and out of sm: the data differs"
qio "$M_URI" "write -P 0x3c $((30 * MiB)) 1M" "flush" "read -P 0x3c $((30 * MiB)) 1M"
mr_legs_identical "after nbdcopy and a flush"
assert_file_pattern "${LEG_IMG[0]}" $((30 * MiB)) $MiB 0x3c "the last write, on leg 0"
assert_file_pattern "${LEG_IMG[1]}" $((30 * MiB)) $MiB 0x3c "the last write, on leg 1"
cmp -n $((24 * MiB)) "$T_TMP/rand24" "${LEG_IMG[1]}" || fail "the random file is not on leg 1"
assert_eq "$(show_attr sm io/errors)" 0 "sm io/errors"
assert_eq "$(show_attr sm health)" AA "sm health"
sp_idle_pipes sm 2

step "raw clients on sm: dripped 1M writes, a client gone mid-payload (nothing of it on a leg)"
run_ok "nbd_raw on sm" nbd_raw 127.0.0.1 "${M_URI##*:}" drip_large_writes stream_sync vanish_mid_payload
sed 's/^/   /' "$T_TMP/run.out"
qio "$M_URI" "flush"
mr_legs_identical "after the raw clients"
# vanish_mid_payload sent 100000 bytes of 'z' of a 1M write at 0, and left.
! file_pattern "${LEG_IMG[0]}" 0 100000 0x7a 2>/dev/null || fail "a write whose client left mid-payload is on leg 0"
assert_eq "$(show_attr sm health)" AA "sm health after the raw clients"
sp_idle_pipes sm 2

step "stop"
st_stop sl
st_stop sm
for e in sl0 sl1 sm-leg0 sm-leg1; do
	stop_export "$e"
done
echo "PASS"
