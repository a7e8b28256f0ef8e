#!/usr/bin/env bash
# kill -9 of the mirror's dstd during writes (two 32M file-backed legs): a
# fio random-write load at QD32 on 0..16M and a writer that writes 64K
# patterns one qemu-io at a time on 16M..32M, recording each write once
# qemu-io has exited 0 (acknowledged). dstd is killed under that load; its
# bitmap file holds the regions being written. `dst start` again: the log
# says the dirty regions are resynced from n-0, exactly that many regions
# are copied, health AA; every acknowledged write reads back through the
# storage and is on both legs' files; the legs are byte-identical.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
. "$TESTS_DIR/func/lib_mirror.sh"
need fio qemu-io nbdinfo

step "mirror mc over two 32M exports"
mr_legs mc 32M 32M
mr_mirror mc
L0=${LEG_NODE[0]}
MC_URI=$M_URI

# writer URI ACKED: 64K writes at 16M + i*64K (i = 0..223, below the last,
# short region), pattern i % 255 + 1, one qemu-io per write, until one
# fails; each acknowledged write is appended to ACKED as "offset pattern".
writer() {
	local uri=$1 acked=$2 i off pat
	for i in $(seq 0 223); do
		off=$((16 * MiB + i * 65536)) pat=$((i % 255 + 1))
		qemu-io -f raw -c "write -P $pat $off 65536" "$uri" >/dev/null 2>&1 || break
		echo "$off $pat" >>"$acked"
	done
}

step "load: fio randwrite QD32 on 0..16M, and the pattern writer on 16M..32M"
: >"$T_TMP/acked"
# (fio fails once dstd is gone: its output, errors too, goes to fio.load.)
fio_load() { fio "$@" >"$T_TMP/fio.load" 2>&1; }
bg fio_load --name=load --ioengine=nbd --uri="$MC_URI" --rw=randwrite \
	--bssplit=4k/40:64k/30:1m/30 --blockalign=4k --iodepth=32 --size=16M \
	--time_based --runtime=30 --norandommap
FIO_LOAD=$BG_PID
bg writer "$MC_URI" "$T_TMP/acked"
WRITER=$BG_PID
for _ in $(seq 100); do
	[ "$(grep -c '' "$T_TMP/acked")" -ge 20 ] && break
	sleep 0.1
done
pid_alive "$FIO_LOAD" || { cat "$T_TMP/fio.load" >&2; fail "fio ended before the kill"; }
pid_alive "$WRITER" || fail "the writer ended before the kill"
dirty=$(show_attr mc bitmap/dirty)
note "before the kill: $(grep -c '' "$T_TMP/acked") writes acknowledged, $dirty regions dirty, writes $(show_attr mc io/writes)"
assert_ge "$dirty" 1 "dirty regions under load"

step "kill -9 dstd ($M_PID) under the load"
kill -KILL "$M_PID"
wait_gone "$M_PID" 10 || fail "dstd survived kill -9"
# The clients see their connection die: the writer stops at its first
# failure, fio errors out.
for _ in $(seq 100); do
	pid_alive "$WRITER" || pid_alive "$FIO_LOAD" || break
	sleep 0.1
done
pid_alive "$WRITER" && fail "the writer still runs 10 s after dstd died"
pid_alive "$FIO_LOAD" && fail "fio still runs 10 s after dstd died"
wait "$FIO_LOAD" 2>/dev/null
nacked=$(grep -c '' "$T_TMP/acked")
note "$nacked writes were acknowledged before the kill"
assert_ge "$nacked" 20 "acknowledged writes"
assert_le "$nacked" 223 "acknowledged writes (the writer was cut short)"
[ -s "$DST_STATE_DIR/mc.bitmap" ] || fail "no bitmap file after the kill"
# Writes in flight at the kill may have reached one leg only.
if cmp -s -n "$M_SIZE" "${LEG_IMG[0]}" "${LEG_IMG[1]}"; then
	note "the legs happen to be identical after the kill"
else
	note "the legs differ after the kill: $(cmp -n "$M_SIZE" "${LEG_IMG[0]}" "${LEG_IMG[1]}" 2>&1 | head -1)"
fi

step "dst start mc again: the dirty regions are resynced from $L0"
mr_log_mark mc
st_start mc
M_PID=$ST_PID
[ "$ST_URI" = "$MC_URI" ] || fail "mc came back on $ST_URI, not $MC_URI"
mr_log_has mc "mirror .*mc\.bitmap: ([0-9]+) dirty regions: resyncing them from $L0" "log: dirty regions at start"
n=$(tail -n +$((MR_LOG_MARK + 1)) "$DST_STATE_DIR/mc.log" | sed -n 's/.*: \([0-9]*\) dirty regions: resyncing them from.*/\1/p' | head -1)
assert_ge "$n" 1 "dirty regions found at start"
assert_ge "$n" "$dirty" "dirty regions at start vs. before the kill (more may have been set after)"
mr_wait_log mc "mirror: resync of $n regions starts" 5 "log: resync starts"
mr_wait mc health AA 20 "health after the resync"
mr_log_has mc "in sync again: $n regions copied" "log: in sync again"
assert_eq "$(mr_copied mc)" "$n" "regions copied since the restart"

step "every acknowledged write is there, the legs are identical"
MR_WRITTEN=()
while read -r off pat; do MR_WRITTEN+=("$off $pat"); done <"$T_TMP/acked"
mr_check_written "$M_URI" "after the crash and the resync"
mr_legs_identical "after the crash and the resync"
mr_settle mc
# And the storage works on: a fio verify pass over all of it.
st_fio_verify "$M_URI" 2 15M || fail "fio verify after the restart"
mr_legs_identical "after fio verify on the restarted storage"

step "stop"
st_stop mc
stop_export mc-leg0
stop_export mc-leg1
echo "PASS"
