#!/usr/bin/env bash
# kill -9 of a parity storage's dstd in the middle of writes (4+2, six 16M
# file-backed exports, 64M), and no write hole after it:
#  - 0..16M is written and verified by fio first (crc32c): the data at rest;
#  - then under load: fio randwrite at QD32 on 16M..32M, and a writer that
#    writes 64K patterns (each over two chunks of a row, so that a row's
#    data and parity writes are in flight together) one qemu-io at a time
#    on 32M..48M, recording each write once qemu-io has exited 0
#    (acknowledged). dstd is killed under that load; rows may be left with
#    data and parity of different writes.
#  - `dst start` again: the regions of the bitmap get their parity
#    recomputed (stale_regions back to 0) before every node is A; then every
#    row's parity in the node files is right, every acknowledged write reads
#    back, fio --verify_only finds the data at rest;
#  - and the parity is not only right but used: with a node holding data
#    killed, the same reads (now rebuilt from the others) give the same
#    bytes; the node back, a fio verify pass over the storage.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
. "$TESTS_DIR/func/lib_mirror.sh"
. "$TESTS_DIR/func/lib_parity.sh"
need fio qemu-io nbdinfo nbdcopy

step "parity pc: 4+2 over six 16M exports; 0..16M written and verified by fio"
mr_legs pc 16M 16M 16M 16M 16M 16M
pr_parity pc 4 2
PC_URI=$P_URI
# rest_fio ARGS: the fio job of the data at rest (0..16M), with ARGS.
rest_fio() {
	st_fio_verify "$PC_URI" 2 8M --randseed=7 "$@"
}
rest_fio >/dev/null || fail "fio write+verify of 0..16M"

# writer URI ACKED: 64K writes at 32M + 32K + i*128K (i = 0..127: each
# spans the end of one chunk and the start of the next), pattern i % 255 +
# 1, one qemu-io per write, until one fails; each acknowledged write is
# appended to ACKED as "offset pattern".
writer() {
	local uri=$1 acked=$2 i off pat
	for i in $(seq 0 127); do
		off=$((32 * MiB + 32768 + i * 131072)) pat=$((i % 255 + 1))
		qemu-io -f raw -c "write -P $pat $off 65536" "$uri" >/dev/null 2>&1 || break
		echo "$off $pat" >>"$acked"
	done
}

step "load: fio randwrite QD32 on 16M..32M, and the pattern writer on 32M..48M"
: >"$T_TMP/acked"
fio_load() { fio "$@" >"$T_TMP/fio.load" 2>&1; }
bg fio_load --name=load --ioengine=nbd --uri="$PC_URI" --rw=randwrite \
	--bssplit=4k/40:64k/30:1m/30 --blockalign=4k --iodepth=32 --offset=16M --size=16M \
	--time_based --runtime=30 --norandommap
FIO_LOAD=$BG_PID
bg writer "$PC_URI" "$T_TMP/acked"
WRITER=$BG_PID
for _ in $(seq 100); do
	[ "$(grep -c '' "$T_TMP/acked")" -ge 10 ] && break
	sleep 0.1
done
pid_alive "$FIO_LOAD" || { cat "$T_TMP/fio.load" >&2; fail "fio ended before the kill"; }
pid_alive "$WRITER" || fail "the writer ended before the kill"
dirty=$(show_attr pc bitmap/dirty)
note "before the kill: $(grep -c '' "$T_TMP/acked") writes acknowledged, $dirty regions dirty," \
	"writes $(show_attr pc io/writes)"
assert_ge "$dirty" 1 "dirty regions under load"

step "kill -9 dstd ($P_PID) under the load"
kill -KILL "$P_PID"
wait_gone "$P_PID" 10 || fail "dstd survived kill -9"
for _ in $(seq 100); do
	pid_alive "$WRITER" || pid_alive "$FIO_LOAD" || break
	sleep 0.1
done
pid_alive "$WRITER" && fail "the writer still runs 10 s after dstd died"
pid_alive "$FIO_LOAD" && fail "fio still runs 10 s after dstd died"
wait "$FIO_LOAD" 2>/dev/null
nacked=$(grep -c '' "$T_TMP/acked")
assert_ge "$nacked" 10 "acknowledged writes"
assert_le "$nacked" 127 "acknowledged writes (the writer was cut short)"
[ -s "$DST_STATE_DIR/pc.bitmap" ] || fail "no bitmap file after the kill"
note "$nacked writes acknowledged; rows with a wrong parity in the files now: $(pr_check_bad)"

step "dst start pc again: the bitmap's regions get their parity recomputed"
mr_log_mark pc
st_start pc
[ "$ST_URI" = "$PC_URI" ] || fail "pc came back on $ST_URI, not $PC_URI"
stale=$(show_attr pc parity/stale_regions)
note "right after the start: stale_regions $stale, health $(show_attr pc health)"
pr_attach pc 4 2
pr_settle pc
mr_log_has pc "parity: ([0-9]+) regions had writes in flight when the storage stopped" "log: the bitmap's regions at start"
n=$(tail -n +$((MR_LOG_MARK + 1)) "$DST_STATE_DIR/pc.log" | sed -n 's/.*parity: \([0-9]*\) regions had writes in flight.*/\1/p' | head -1)
# fio's QD32 was writing at the kill: some regions were in flight. (Not
# "as many as bitmap/dirty said before": the sweep may clear some of those
# between that look and the kill.)
assert_ge "$n" 1 "regions in flight at the kill, found at start ($dirty dirty a moment before the kill)"
mr_log_has pc "parity: resync of $n regions starts \(recomputing parity" "log: their parity recomputed"
assert_ge "$(show_attr pc resync/rows_recomputed)" 1 "pc/resync/rows_recomputed"
pr_check "after the crash and the restart"

step "every acknowledged write reads back, the data at rest verifies"
MR_WRITTEN=()
while read -r off pat; do MR_WRITTEN+=("$off $pat"); done <"$T_TMP/acked"
pr_check_written "$P_URI" "after the crash"
rest_fio --verify_only=1 >/dev/null || fail "fio verify_only of 0..16M after the crash"
nbdcopy "$P_URI" "$T_TMP/healthy.bin" || fail "nbdcopy of pc"

step "node 1's export killed: the same bytes, rebuilt from the other nodes"
leg_kill9 1
mr_wait pc health "$(pr_letters A 1 D)" 5 "health with node 1 out"
rr0=$(show_attr pc parity/reconstructed_reads)
pr_check_written "$P_URI" "degraded, after the crash"
rest_fio --verify_only=1 >/dev/null || fail "fio verify_only of 0..16M, degraded, after the crash"
nbdcopy "$P_URI" "$T_TMP/degraded.bin" || fail "nbdcopy of pc, degraded"
cmp "$T_TMP/healthy.bin" "$T_TMP/degraded.bin" || fail "the device read degraded differs from the device read healthy"
assert_ge "$(show_attr pc parity/reconstructed_reads)" $((rr0 + 1)) "reads rebuilt with node 1 out"
rm -f "$T_TMP/healthy.bin" "$T_TMP/degraded.bin"
leg_restart 1
pr_settle pc

step "the storage works on: a fio verify pass over all of it"
st_fio_verify "$P_URI" 4 16M || fail "fio verify after the restart"
pr_settle pc
pr_check "after fio on the restarted storage"
pr_same_as_files "$P_URI" "after the crash"

step "stop"
assert_eq "$(show_attr pc io/errors)" 0 "pc/io/errors"
st_stop pc
for e in "${LEG_EXPORT[@]}"; do stop_export "$e"; done
echo "PASS"
