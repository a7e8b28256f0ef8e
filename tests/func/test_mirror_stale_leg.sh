#!/usr/bin/env bash
# A leg that comes back with an old image of itself (two 16M file-backed
# legs): leg 1's file is copied aside while the mirror is in sync (its header
# then has generation G). Later leg 1 dies, 0x22 is written with leg 0 alone,
# leg 1 comes back and is resynced (its header now says a later generation),
# the bitmap is swept clean. Then leg 1's export is stopped and its file
# rolled back to the old copy (a restored backup, a snapshot rolled back):
# it carries this storage's UUID, but the old generation G. The mirror must
# not trust it: its regions must be copied again (the write of 0x22 must be
# on leg 1 afterwards, and reads must never return the old 0x11), rather
# than only the (zero) dirty regions.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
. "$TESTS_DIR/func/lib_mirror.sh"
need qemu-io nbdinfo

# leg_gen FILE: the generation in a leg file's header (label: big-endian u64 at 64).
leg_gen() {
	python3 - "$1" <<'EOF'
import os, struct, sys
with open(sys.argv[1], "rb") as f:
    f.seek(os.path.getsize(sys.argv[1]) - 4096)
    b = f.read(72)
print(struct.unpack(">Q", b[64:72])[0] if b[:8] == b"DSTLABL1" else -1)
EOF
}

step "mirror mo over two 16M exports; 0x11 over 8M; a copy of leg 1's file"
mr_legs mo 16M 16M
mr_mirror mo
L1=${LEG_NODE[1]}
qio "$M_URI" "write -P 0x11 0 8M" "flush"
mr_settle mo
cp --sparse=always "${LEG_IMG[1]}" "$T_TMP/leg1.old"
g_old=$(leg_gen "$T_TMP/leg1.old")
note "generation in the old copy of leg 1: $g_old"

step "leg 1 dies; 0x22 over 0..2M with leg 0 alone; leg 1 comes back and is resynced"
leg_kill9 1
mr_wait mo health AD 5 "health after leg 1 died"
qio "$M_URI" "write -P 0x22 0 2M" "flush"
leg_restart 1
mr_wait mo health AA 15 "health after leg 1 came back"
mr_settle mo
assert_file_pattern "${LEG_IMG[1]}" 0 $((2 * MiB)) 0x22 "leg 1 after its resync"
g_new=$(leg_gen "${LEG_IMG[1]}")
note "generation on leg 1 now: $g_new"
[ "$g_new" -gt "$g_old" ] || fail "leg 1's generation did not grow ($g_old -> $g_new)"

step "roll leg 1 back to its old image (same UUID, generation $g_old)"
mr_log_mark mo
c0=$(mr_copied mo)
stop_export mo-leg1 --force # the mirror is still its client
mr_wait mo health AD 5 "health after leg 1's export stopped"
cp --sparse=always "$T_TMP/leg1.old" "${LEG_IMG[1]}"
assert_file_pattern "${LEG_IMG[1]}" 0 $((2 * MiB)) 0x11 "the rolled-back leg 1 file"
leg_restart 1
mr_wait mo health AA 15 "health after the rolled-back leg 1 came back"
note "log: $(tail -n +$((MR_LOG_MARK + 1)) "$DST_STATE_DIR/mo.log" | grep mirror | cut -d' ' -f3- | tr '\n' '|')"
note "regions copied: $(($(mr_copied mo) - c0))"

step "the old image must not be trusted: 0x22 on both legs, reads never return 0x11"
cmds=()
for i in $(seq 0 15); do cmds+=(-c "aio_read -P 0x22 $((i % 2 * MiB)) $MiB"); done
qemu-io -f raw -r "${cmds[@]}" -c aio_flush "$M_URI" >"$T_TMP/reads.out" 2>&1
note "reads: leg 0 $(show_attr mo "${LEG_NODE[0]}/io/reads"), leg 1 $(show_attr mo "$L1/io/reads")"
if grep -q "Pattern verification failed" "$T_TMP/reads.out" || ! file_pattern "${LEG_IMG[1]}" 0 $((2 * MiB)) 0x22; then
	grep -m2 "failed" "$T_TMP/reads.out" >&2
	fail "a leg rolled back to an old image of itself (generation $g_old < $g_new) was taken as in sync: its stale data is served"
fi
mr_legs_identical "after the rolled-back leg came back"

step "stop"
st_stop mo
stop_export mo-leg0
stop_export mo-leg1
echo "PASS"
