#!/usr/bin/env bash
# Background IO in the metrics, apart from the clients': a 2-leg alg_mirror
# over 8M `dst export` legs; leg 1's export is killed, qemu-io writes 3M
# (three 1M regions) at offset 0, the export comes back on its port: the
# resync (at 1 MiB/s, to be seen running: 3 regions to copy, leg 1
# syncing) copies those three regions, and the metrics say so on each leg
# (kind="resync": 3M read from leg 0, 3M written to leg 1, nothing of it
# counted as client IO), as do dst show's io/resync_* attributes and the
# resync families. Then dst replace moves leg 0 to a new file: its
# migration bytes (kind="migrate") are the leg's size (its 8M and the 4K
# of its label), read and written.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
. "$TESTS_DIR/func/lib_mirror.sh"
. "$TESTS_DIR/func/lib_metrics.sh"
need qemu-io
need_prom

M=$T_TMP/m.prom
step "a mirror over two 8M legs"
mr_legs bg 8M 8M
# A resync of 1 MiB/s: three regions take two seconds, long enough to see it.
mr_mirror mm --request-timeout 2 --resync-rate 1M
L0=${LEG_NODE[0]} L1=${LEG_NODE[1]}

step "leg 1 killed, 3M written, leg 1 back: resynced"
leg_kill9 1
qio "$M_URI" "write -P 0x5a 0 3M" "flush"
metrics_save "$M" mm
assert_metric "$M" dst_mirror_leg_health storage=mm node="$L1" health=dead -- 1 "leg 1's health while its export is dead"
assert_metric "$M" dst_mirror_regions_dirty storage=mm -- 3 "dirty regions while leg 1 is dead"
assert_metric "$M" dst_node_up storage=mm node="$L1" -- 0 "leg 1 up while its export is dead"
leg_restart 1
for _ in $(seq 50); do
	metrics_save "$M" mm
	[ "$(mval "$M" get dst_resync_running storage=mm)" = 1 ] && break
	sleep 0.1
done
assert_metric "$M" dst_resync_running storage=mm -- 1 "a resync running once leg 1 is back"
assert_metric "$M" dst_resync_pass_regions storage=mm -- 3 "regions the resync pass copies"
done_r=$(mval "$M" get dst_resync_done_regions storage=mm)
[ "$done_r" -lt 3 ] || fail "resync done regions while it runs: $done_r"
assert_metric "$M" dst_mirror_leg_health storage=mm node="$L1" health=syncing -- 1 "leg 1's health while it is resynced"
mr_wait mm health AA 20 "leg 1 resynced"
metrics_save "$M" mm

step "the resync's IO, counted on each leg as kind=resync"
assert_metric "$M" dst_node_read_bytes_total storage=mm node="$L0" kind=resync -- $((3 * MiB)) "resync bytes read from leg 0"
assert_metric "$M" dst_node_written_bytes_total storage=mm node="$L1" kind=resync -- $((3 * MiB)) "resync bytes written to leg 1"
assert_metric "$M" dst_node_ops_total storage=mm node="$L1" kind=resync op=write -- 3 "resync writes to leg 1"
assert_metric "$M" dst_node_written_bytes_total storage=mm node="$L0" kind=resync -- 0 "resync bytes written to leg 0"
assert_metric "$M" dst_node_read_bytes_total storage=mm node="$L1" kind=resync -- 0 "resync bytes read from leg 1"
assert_metric "$M" dst_node_written_bytes_total storage=mm node="$L0" kind=client -- $((3 * MiB)) "client bytes written to leg 0"
assert_metric "$M" dst_node_written_bytes_total storage=mm node="$L1" kind=client -- 0 "client bytes written to leg 1 (dead then)"
assert_metric "$M" dst_storage_written_bytes_total storage=mm -- $((3 * MiB)) "bytes written to the storage"
assert_metric "$M" dst_resync_running storage=mm -- 0 "a resync running after it finished"
assert_metric "$M" dst_resync_regions_copied_total storage=mm -- 3 "regions the resync copied"
assert_metric "$M" dst_resync_done_bytes storage=mm -- $((3 * MiB)) "bytes of the last resync pass"
assert_metric "$M" dst_mirror_regions_in_sync storage=mm -- 8 "regions every leg holds"
for i in 0 1; do
	assert_metric "$M" dst_mirror_leg_health storage=mm node="${LEG_NODE[i]}" health=in_sync -- 1 "leg $i in sync"
done
assert_eq "$(show_attr mm "$L1/io/resync_write_bytes")" $((3 * MiB)) "dst show: leg 1's io/resync_write_bytes"
assert_eq "$(show_attr mm "$L0/io/resync_read_bytes")" $((3 * MiB)) "dst show: leg 0's io/resync_read_bytes"
assert_eq "$(show_attr mm "$L1/io/write_bytes")" 0 "dst show: leg 1's client io/write_bytes"

step "dst replace leg 0 onto a new file: its migration bytes"
NEW=$T_TMP/new0.img
truncate -s $((8 * MiB + 4096)) "$NEW"
dst_ok replace mm "$L0" --disk "$NEW" --wait >/dev/null
metrics_save "$M" mm
assert_metric "$M" dst_migration_running storage=mm -- 0 "a migration running after dst replace --wait"
LEG_BYTES=$((8 * MiB + 4096))
assert_metric "$M" dst_node_size_bytes storage=mm node="$L0" -- $LEG_BYTES "size of leg 0"
assert_metric "$M" dst_node_read_bytes_total storage=mm node="$L0" kind=migrate -- $LEG_BYTES "migration bytes read from leg 0"
assert_metric "$M" dst_node_written_bytes_total storage=mm node="$L0" kind=migrate -- $LEG_BYTES "migration bytes written to leg 0's new disk"
assert_metric "$M" dst_node_info storage=mm node="$L0" spec="$NEW" type=local -- 1 "leg 0's spec after the migration"
assert_eq "$(show_attr mm "$L0/io/migrate_write_bytes")" $LEG_BYTES "dst show: leg 0's io/migrate_write_bytes"
cmp -n $((8 * MiB)) "${LEG_IMG[1]}" "$NEW" || fail "the new leg 0 differs from leg 1"
