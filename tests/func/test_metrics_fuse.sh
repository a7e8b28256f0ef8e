#!/usr/bin/env bash
# FUSE IO in the storage's totals: alg_linear over two local 8M files,
# started with --fuse; 1M written to the FUSE file with dd (O_DIRECT) and
# 512K read back: the storage's metrics (and dst show's io/ attributes)
# count exactly those bytes, as the FUSE file's own counters do, and the
# nodes under it the same; the latency histograms count every request.
# run.sh: group loop (loop devices: the cleanup of one test must not meet another's)
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
. "$TESTS_DIR/func/lib_fuse.sh"
. "$TESTS_DIR/func/lib_metrics.sh"
need_fuse dd
need_prom

M=$T_TMP/m.prom
step "alg_linear over two local 8M files, with a FUSE file"
# 4K more each for its label: each node holds 8M.
truncate -s $((8 * MiB + 4096)) "$T_TMP/a.img" "$T_TMP/b.img"
st_create fl linear
st_add fl --disk "$T_TMP/a.img"
st_add fl --disk "$T_TMP/b.img"
FILE=$T_TMP/fl.dev
track_fuse "$FILE"
st_start fl --fuse "$FILE"

step "1M written at 7.5M (across both nodes) and 512K read, through the FUSE file"
run_ok "dd write" dd if=/dev/urandom of="$FILE" bs=512K count=2 seek=15 oflag=direct conv=notrunc status=none
run_ok "dd read" dd if="$FILE" of=/dev/null bs=512K count=1 skip=15 iflag=direct status=none
metrics_save "$M" fl

step "the storage's totals count the FUSE file's IO"
assert_eq "$(show_attr fl fuse_file/io/write_bytes)" $((1 * MiB)) "dst show: fuse_file/io/write_bytes"
assert_eq "$(show_attr fl io/write_bytes)" $((1 * MiB)) "dst show: the storage's io/write_bytes"
assert_eq "$(show_attr fl io/read_bytes)" $((MiB / 2)) "dst show: the storage's io/read_bytes"
assert_metric "$M" dst_storage_written_bytes_total storage=fl -- $((1 * MiB)) "bytes written to fl"
assert_metric "$M" dst_storage_read_bytes_total storage=fl -- $((MiB / 2)) "bytes read from fl"
writes=$(mval "$M" get dst_storage_ops_total storage=fl op=write)
reads=$(mval "$M" get dst_storage_ops_total storage=fl op=read)
[ "$writes" -ge 1 ] || fail "writes to fl: $writes"
[ "$reads" -ge 1 ] || fail "reads from fl: $reads"
assert_eq "$writes" "$(show_attr fl fuse_file/io/writes)" "writes to fl vs the FUSE file's"
assert_metric "$M" dst_storage_request_duration_seconds_count storage=fl op=write -- "$writes" "write latency histogram of fl"
assert_metric "$M" dst_storage_request_duration_seconds_count storage=fl op=read -- "$reads" "read latency histogram of fl"
assert_metric "$M" dst_storage_errors_total storage=fl -- 0 "errors of fl"

step "and the nodes under it: 512K written to each"
assert_metric "$M" dst_node_written_bytes_total storage=fl node=n-0 kind=client -- $((MiB / 2)) "bytes written to n-0"
assert_metric "$M" dst_node_written_bytes_total storage=fl node=n-16384 kind=client -- $((MiB / 2)) "bytes written to n-16384"
assert_metric "$M" dst_node_read_bytes_total storage=fl node=n-0 kind=client -- $((MiB / 2)) "bytes read from n-0"
assert_metric "$M" dst_node_info storage=fl node=n-0 spec="$T_TMP/a.img" type=local -- 1 "n-0's spec"
