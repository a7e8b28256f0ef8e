#!/usr/bin/env bash
# alg_parity 4+2 (six 16M file-backed `dst export` nodes, 64M) while fio
# writes and verifies (crc32c) all along:
#  - dst replace of a live node (node 2) onto a new export: a migration
#    (--rate 8M: it overlaps the writes);
#    it ends done, the config and dst show name the new node, the old
#    node's file is no longer written;
#  - node 3's export killed, and the dead node replaced by a new, empty
#    export: rebuilt there from the other nodes (--resync-rate 8M: dst show
#    has its progress meanwhile, the node is S), every node A again;
#  - dst suspend of node 4: D at once, dst status degraded, IO goes on (not
#    held: writes and reads of its chunks are served degraded) and none goes
#    to the node; dst resume: back to A, given fewer regions than the
#    storage has;
#  - fio sees no error; every row's parity in the node files (the new ones
#    in place of the replaced) is right; the device is their data.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
. "$TESTS_DIR/func/lib_mirror.sh"
. "$TESTS_DIR/func/lib_parity.sh"
need fio qemu-io nbdinfo nbdcopy

# later WHY: a failed check that does not stop the test (what comes after
# it still runs); the test fails at its end.
LATER=()
later() {
	echo "FAIL (later): $*" >&2
	LATER+=("$*")
}

# conf_nodes NAME: the URIs of NAME.conf's node lines, in order.
conf_nodes() {
	sed -n 's/^node = .* //p' "$DST_STATE_DIR/$1.conf"
}

step "parity pr: 4+2 over six 16M exports, and fio write+verify runs"
mr_legs pr 16M 16M 16M 16M 16M 16M
pr_parity pr 4 2
RS=$(show_attr pr region_size)
# region_size: node bytes (rows) per bit of the bitmap.
REGIONS=$(((P_ROWS * P_CHUNK + RS - 1) / RS))
pr_load_start "$P_URI" "$T_TMP/fio.replace"
sleep 1

step "dst replace of live node 2 (${LEG_NODE[2]}) onto a new export, under load"
st_export pr-new2 16M
NEW2_URI=$URI NEW2_IMG=$IMG
OLD2_IMG=${LEG_IMG[2]}
# --rate 8M: about 2 s of copy under the writes.
out=$(timeout 60 "$DST" replace pr "${LEG_NODE[2]}" --remote "$NEW2_URI" --rate 8M --wait 2>&1) ||
	fail "dst replace pr ${LEG_NODE[2]} --remote $NEW2_URI --wait: $out"
note "$(printf '%s\n' "$out" | tail -1)"
mr_fio_alive
last=$(show_attr pr last_migration)
note "last_migration: $last"
assert_contains "$last" "done" "pr/last_migration"
assert_eq "$(show_attr pr "${LEG_NODE[2]}/uri")" "$NEW2_URI" "${LEG_NODE[2]}/uri after the migration"
assert_eq "$(conf_nodes pr | sed -n 3p)" "$NEW2_URI" "the config's third node after the migration"
assert_eq "$(show_attr pr health)" "$(pr_letters A)" "health after the migration"
old_md5=$(md5sum <"$OLD2_IMG")
LEG_IMG[2]=$NEW2_IMG LEG_URI[2]=$NEW2_URI LEG_EXPORT[2]=pr-new2
sleep 1
mr_fio_alive
assert_eq "$(md5sum <"$OLD2_IMG")" "$old_md5" "md5 of the old node 2's file a second after the switch"
stop_export pr-leg2

step "node 3 (${LEG_NODE[3]}) killed, and replaced by a new empty export: rebuilt there"
leg_kill9 3
mr_wait pr health "$(pr_letters A 3 D)" 5 "health with node 3 dead"
pr_status_is pr 1 "dst status pr exit with node 3 dead"
st_export pr-new3 16M
NEW3_URI=$URI NEW3_IMG=$IMG
# --resync-rate 8M (dst set, live): the rebuild of 16M takes about 2 s,
# long enough to see its progress on a loaded machine.
dst_ok set pr --resync-rate 8M >/dev/null
assert_eq "$(show_attr pr resync/rate)" $((8 * MiB)) "pr/resync/rate after dst set"
c0=$(mr_copied pr)
mr_log_mark pr
out=$(timeout 60 "$DST" replace pr "${LEG_NODE[3]}" --remote "$NEW3_URI" --wait 2>&1) ||
	fail "dst replace pr ${LEG_NODE[3]} (dead) --remote $NEW3_URI --wait: $out"
note "$(printf '%s\n' "$out" | tail -1)"
LEG_IMG[3]=$NEW3_IMG LEG_URI[3]=$NEW3_URI LEG_EXPORT[3]=pr-new3
# One snapshot per look: read one attribute at a time, the rebuild could
# end between the progress and the health read after it.
seen=
for _ in $(seq 50); do
	snap=$(show_attrs pr resync/progress resync/percent resync/mib_s resync/eta_s health)
	mapfile -t v <<<"$snap"
	if [ -n "${v[0]}" ]; then
		seen="${v[0]}, ${v[1]} %, ${v[2]} MiB/s, eta ${v[3]} s, health ${v[4]}"
		break
	fi
	sleep 0.1
done
[ -n "$seen" ] || fail "no resync/progress in dst show during the rate-limited rebuild"
note "rebuild: $seen"
[[ $seen =~ ^[0-9]+/[0-9]+\ regions,\ [0-9]+\ %,\ [0-9.]+\ MiB/s,\ eta\ [0-9]+\ s,\ health\ AAASAA$ ]] ||
	fail "the resync attributes during the rebuild: $seen"
mr_wait pr health "$(pr_letters A)" 30 "health after the rebuild onto the new node"
[ -z "$(show_attr pr resync/progress)" ] || fail "resync/progress still shown after the rebuild"
dst_ok set pr --resync-rate 0 >/dev/null
mr_fio_alive
assert_eq "$(show_attr pr "${LEG_NODE[3]}/uri")" "$NEW3_URI" "${LEG_NODE[3]}/uri after the rebuild"
assert_eq "$(conf_nodes pr | sed -n 4p)" "$NEW3_URI" "the config's fourth node after the rebuild"
note "regions_copied grew by $(($(mr_copied pr) - c0)) (of $REGIONS); last_migration: $(show_attr pr last_migration)"
assert_eq "$(tail -c 4096 "$NEW3_IMG" | head -c 8)" DSTLABL1 "label magic on the new node 3"

step "dst suspend node 4 (${LEG_NODE[4]}) under load: D at once, IO goes on degraded"
N4=${LEG_NODE[4]}
out=$(dst suspend pr "$N4") || fail "dst suspend pr $N4"
note "$out"
assert_eq "$(show_attr pr "$N4/health")" D "$N4/health right after dst suspend"
assert_eq "$(show_attr pr health)" "$(pr_letters A 4 D)" "pr/health with $N4 suspended"
pr_status_is pr 1 "dst status pr exit with $N4 suspended"
w4=$(show_attr pr "$N4/io/writes") r4=$(show_attr pr "$N4/io/reads")
rr0=$(show_attr pr parity/reconstructed_reads)
c0=$(mr_copied pr)
# Writes and a read of 16 rows (every node holds data in some) besides
# fio's; each must end (a request held for the suspended node would not).
MR_WRITTEN=()
for off in $((40 * MiB)) $((50 * MiB + 4096)); do
	MR_PAT=$((MR_PAT + 1))
	timeout 10 qemu-io -f raw -c "write -P $MR_PAT $off 65536" -c flush "$P_URI" >"$T_TMP/qio.out" 2>&1 ||
		later "a write at $off while $N4 is suspended did not end in 10 s (or failed): $(tail -1 "$T_TMP/qio.out")"
	MR_WRITTEN+=("$off $MR_PAT")
done
timeout 10 qemu-io -f raw -r -c "read 0 $((16 * 4 * P_CHUNK))" "$P_URI" >"$T_TMP/qio.out" 2>&1 ||
	later "a read of 16 rows while $N4 is suspended did not end in 10 s (or failed)"
# fio's writes go on: at least 10 more are served. fio writes in runs of
# 3 s, each followed by its verify (reads only) and a restart, so a fixed
# window could fall between two runs' writes on a loaded machine: look for
# up to 10 s instead.
w=$(show_attr pr io/writes)
t0=$(date +%s%N)
for _ in $(seq 100); do
	w1=$(show_attr pr io/writes)
	[ "$w1" -ge $((w + 10)) ] && break
	sleep 0.1
done
ms=$((($(date +%s%N) - t0) / 1000000))
sleep 1
mr_fio_alive
held=$(show_attr pr "$N4/held")
[ "${held:-0}" = 0 ] || later "$N4/held is $held with $N4 suspended 1 s after fio's writes went on: requests wait for it, not served degraded"
note "with $N4 suspended: held ${held:-0}, $((w1 - w)) writes served in $ms ms, io/inflight $(show_attr pr io/inflight)"
[ "$w1" -ge $((w + 10)) ] || later "writes served in 10 s while $N4 is suspended (fio writes all along): $((w1 - w))"
assert_ge "$(show_attr pr parity/reconstructed_reads)" $((rr0 + 1)) "reads rebuilt while $N4 is suspended"
assert_eq "$(show_attr pr "$N4/io/writes")" "$w4" "writes sent to the suspended $N4"
assert_eq "$(show_attr pr "$N4/io/reads")" "$r4" "reads sent to the suspended $N4"
assert_ge "$(show_attr pr parity/behind_regions)" 1 "behind_regions while $N4 is suspended"

step "dst resume node 4: back to A with only the regions written meanwhile"
dst_ok resume pr "$N4" >/dev/null
mr_wait pr health "$(pr_letters A)" 20 "health after dst resume $N4"
copied=$(($(mr_copied pr) - c0))
note "regions given back to $N4: $copied (of $REGIONS)"
assert_ge "$copied" 1 "regions given back to $N4"
assert_le "$copied" $((REGIONS / 2)) "regions given back to $N4 (fio writes a quarter of the storage)"
# fio's writes reach the node again. Looked for up to 10 s: right after
# the resume, fio may be between two runs' writes (verifying, or starting).
for _ in $(seq 100); do
	[ "$(show_attr pr "$N4/io/writes")" -gt "$w4" ] && break
	sleep 0.1
done
assert_ge "$(show_attr pr "$N4/io/writes")" $((w4 + 1)) "writes on $N4 within 10 s of its resume"
pr_status_is pr 0 "dst status pr exit after the resume"

step "the load ends without error; parity right on the current nodes' files"
sleep 1
pr_load_stop
assert_eq "$(show_attr pr io/errors)" 0 "pr/io/errors"
pr_settle pr
pr_check_written "$P_URI" "the writes made while $N4 was suspended"
pr_check "after the migration, the rebuild and the suspend"
pr_same_as_files "$P_URI" "after the migration, the rebuild and the suspend"

step "stop"
st_stop pr
for e in "${LEG_EXPORT[@]}"; do stop_export "$e"; done
[ ${#LATER[@]} -eq 0 ] || fail "${#LATER[@]} check(s) failed: ${LATER[*]}"
echo "PASS"
