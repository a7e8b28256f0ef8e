#!/usr/bin/env bash
# dst verify of a mirror whose legs are not all dst exports: leg 0 a dst
# export (its checksums), leg 1 nbdkit's file plugin (no dst:csum-4k: its
# data is read) and leg 2 a local file of the storage's host (read). Legs
# made to differ in their files are found exactly, by method
# checksums+data; what the run found reaches dst status (degraded, "legs
# differ") and the metrics (dst_verify_*), and --repair from leg 0 puts both
# back to healthy, the files equal.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
. "$TESTS_DIR/func/lib_mirror.sh"
. "$TESTS_DIR/func/lib_metrics.sh"
. "$TESTS_DIR/func/lib_verify.sh"
need nbdkit nbdinfo
need_prom

SIZE=$((8 * MiB))
vf_data "$T_TMP/data.bin" "$SIZE" 7
for i in 0 1 2; do
	cp "$T_TMP/data.bin" "$T_TMP/leg$i.img" && truncate -s +4096 "$T_TMP/leg$i.img" ||
		fail "making leg$i.img"
done
start_export vx-leg0 "$T_TMP/leg0.img"
LEG0_URI=$URI
st_nbdkit file "$T_TMP/leg1.img"

step "a mirror over a dst export, nbdkit and a local file, legs alike"
st_create vx mirror --assume-clean
st_add vx --remote "$LEG0_URI"
st_add vx --remote "$NBDKIT_URI"
st_add vx --disk "$T_TMP/leg2.img"
st_start vx --listen "127.0.0.1:$(free_port)"
M_NAME=vx
mr_leg_nodes vx 3
assert_eq "$(show_attr vx "${LEG_NODE[0]}/csum")" dst:csum-4k "leg 0 offers checksums"
vf_run 0 vx
assert_eq "$(show_attr vx verify/method)" checksums+data "the method of a mixed mirror"
assert_eq "$(show_attr vx verify/csum_bytes)" "$SIZE" "bytes compared by checksum (leg 0)"
assert_eq "$(show_attr vx verify/data_bytes)" $((2 * SIZE)) "bytes read (legs 1 and 2)"

step "legs 1 and 2 made to differ in their files: found exactly"
vf_flip "$T_TMP/leg1.img" $((3 * MiB + 8192)) 4096
vf_flip "$T_TMP/leg2.img" $((5 * MiB)) $((3 * 4096))
vf_flip "$T_TMP/leg2.img" $((SIZE - 4096)) 4096
mr_log_mark vx
vf_run 3 vx
vf_expect_ranges "the mixed mirror" "$((3 * MiB + 8192)) 4096
$((5 * MiB)) 12288
$((SIZE - 4096)) 4096" "$(vf_logged vx | cut -d' ' -f1,2)"
assert_eq "$(show_attr vx verify/mismatch_blocks)" 5 "verify/mismatch_blocks"
assert_eq "$(vf_logged vx | cut -d' ' -f3,4 | sort | uniq -c | tr -s ' ')" \
	" 1 ${LEG_NODE[1]} ${LEG_NODE[0]}
 2 ${LEG_NODE[2]} ${LEG_NODE[0]}" "the legs the log names (leg 1 once, leg 2 twice, each against leg 0)"

step "dst status and the metrics say the legs differ"
rc=0
out=$("$DST" status vx) || rc=$?
note "$out"
assert_eq "$rc" 1 "dst status exit (degraded: the legs differ)"
assert_contains "$out" "legs differ: 5 blocks" "dst status line"
json=$("$DST" status vx --json) || true
assert_eq "$(python3 -c 'import json,sys; print(json.load(sys.stdin)["vx"]["differing_blocks"])' <<<"$json")" 5 \
	"dst status --json differing_blocks"
metrics_save "$T_TMP/m1.prom" vx
assert_metric "$T_TMP/m1.prom" dst_verify_last_mismatch_blocks storage=vx -- 5 "dst_verify_last_mismatch_blocks"
assert_metric "$T_TMP/m1.prom" dst_verify_mismatch_blocks_total storage=vx -- 5 "dst_verify_mismatch_blocks_total"
assert_metric "$T_TMP/m1.prom" dst_verify_running storage=vx -- 0 "dst_verify_running"

step "--repair from leg 0: healthy again, the files equal"
vf_run 0 vx --repair
assert_eq "$(show_attr vx verify/repaired_blocks)" 5 "verify/repaired_blocks"
assert_eq "$(show_attr vx verify/source)" "${LEG_NODE[0]}" "verify/source"
rc=0
out=$("$DST" status vx) || rc=$?
assert_eq "$rc" 0 "dst status exit after the repair"
assert_not_contains "$out" "legs differ" "dst status line after the repair"
for i in 1 2; do
	cmp -n "$SIZE" "$T_TMP/leg0.img" "$T_TMP/leg$i.img" || fail "leg $i differs from leg 0 after --repair"
done
vf_run 0 vx
st_stop vx
kill_pid "$NBDKIT_PID"
stop_export vx-leg0
echo "PASS"
