#!/usr/bin/env bash
# Metrics of a storage, its nodes and its exports, read with Prometheus'
# own parser (python3-prometheus-client): alg_linear over two 8M `dst
# export` nodes, started with --metrics-listen; qemu-io writes exactly 1M
# to node n-0 and 2M to node n-16384 and reads 512K from each: the
# storage's and each node's byte and op counters say exactly that, each
# latency histogram counts as many requests as the op counters, the
# exports' counters grew by what their node did. The same page over HTTP
# (Prometheus text and, asked by Accept header, OpenMetrics ending # EOF),
# 404 for another path. dst metrics merges every daemon (HELP/TYPE once), a
# configured storage that is not running is dst_up 0, --textfile writes a
# parseable file atomically; a metrics port in use fails dst start with the
# reason. An export serves its own page too. A node whose export is killed shows as down.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
. "$TESTS_DIR/func/lib_metrics.sh"
need qemu-io
need_prom

M=$T_TMP/m.prom
step "two 8M export nodes, alg_linear over them, --metrics-listen on a free port"
EPORT=$(free_port)
truncate -s $((8 * MiB + 4096)) "$T_TMP/ma.img" # and its label
start_export ma "$T_TMP/ma.img" --metrics-listen "127.0.0.1:$EPORT"
A_PID=$PID A_URI=$URI
st_export mb 8M
B_PID=$PID B_URI=$URI
st_create lin linear --request-timeout 2
st_add lin --remote "$A_URI"
st_add lin --remote "$B_URI"
MPORT=$(free_port)
st_start lin --metrics-listen "$MPORT"
URL=http://127.0.0.1:$MPORT/metrics
assert_eq "$(show_attr lin metrics)" "$URL" "dst show lin/metrics"

step "known IO with qemu-io: 1M written to n-0, 2M to n-16384, 512K read from each"
metrics_save "$T_TMP/before.prom"
A_W0=$(mval "$T_TMP/before.prom" get dst_export_written_bytes_total export=ma)
B_W0=$(mval "$T_TMP/before.prom" get dst_export_written_bytes_total export=mb)
qio "$ST_URI" "write -P 0xa1 0 1M" "write -P 0xb2 $((9 * MiB)) 2M" \
	"read -P 0xa1 0 512K" "read -P 0xb2 $((9 * MiB)) 512K"
metrics_save "$M"

step "the storage's counters"
assert_metric "$M" dst_up name=lin type=storage -- 1 "dst_up of the storage"
assert_metric "$M" dst_storage_written_bytes_total storage=lin -- $((3 * MiB)) "bytes written to lin"
assert_metric "$M" dst_storage_read_bytes_total storage=lin -- $((1 * MiB)) "bytes read from lin"
assert_metric "$M" dst_storage_ops_total storage=lin op=write -- 2 "writes to lin"
assert_metric "$M" dst_storage_ops_total storage=lin op=read -- 2 "reads from lin"
assert_metric "$M" dst_storage_errors_total storage=lin -- 0 "errors of lin"
assert_metric "$M" dst_storage_inflight_requests storage=lin -- 0 "requests in flight on lin"
assert_metric "$M" dst_storage_request_duration_seconds_count storage=lin op=write -- 2 "write latency histogram of lin"
assert_metric "$M" dst_storage_request_duration_seconds_count storage=lin op=read -- 2 "read latency histogram of lin"
assert_metric "$M" dst_storage_size_bytes storage=lin -- $((16 * MiB)) "size of lin"
assert_metric "$M" dst_storage_nodes storage=lin -- 2 "nodes of lin"
assert_metric "$M" dst_storage_info storage=lin alg=alg_linear -- 1 "algorithm of lin"

step "each node's counters, by kind"
for n in n-0:1 n-16384:2; do
	node=${n%:*} mib=${n#*:}
	assert_metric "$M" dst_node_written_bytes_total storage=lin node="$node" kind=client -- $((mib * MiB)) "bytes written to $node"
	assert_metric "$M" dst_node_read_bytes_total storage=lin node="$node" kind=client -- $((MiB / 2)) "bytes read from $node"
	assert_metric "$M" dst_node_ops_total storage=lin node="$node" kind=client op=write -- 1 "writes to $node"
	assert_metric "$M" dst_node_ops_total storage=lin node="$node" kind=client op=read -- 1 "reads from $node"
	assert_metric "$M" dst_node_request_duration_seconds_count storage=lin node="$node" op=write -- 1 "write latency histogram of $node"
	assert_metric "$M" dst_node_request_duration_seconds_count storage=lin node="$node" op=read -- 1 "read latency histogram of $node"
	assert_metric "$M" dst_node_written_bytes_total storage=lin node="$node" kind=resync -- 0 "resync bytes on $node (a linear storage)"
	assert_metric "$M" dst_node_up storage=lin node="$node" -- 1 "$node up"
	assert_metric "$M" dst_node_state storage=lin node="$node" state=up -- 1 "$node's state"
	assert_metric "$M" dst_node_reconnects_total storage=lin node="$node" -- 0 "$node's reconnects"
	assert_metric "$M" dst_node_size_bytes storage=lin node="$node" -- $((8 * MiB)) "size of $node"
done
assert_metric "$M" dst_node_info storage=lin node=n-16384 spec="$B_URI" type=remote -- 1 "n-16384's spec"

step "each export's counters grew by what its node did"
assert_eq $(($(mval "$M" get dst_export_written_bytes_total export=ma) - A_W0)) $((1 * MiB)) "bytes written to export ma"
assert_eq $(($(mval "$M" get dst_export_written_bytes_total export=mb) - B_W0)) $((2 * MiB)) "bytes written to export mb"
assert_eq "$(mval "http://127.0.0.1:$EPORT/metrics" get dst_export_written_bytes_total export=ma)" \
	"$(mval "$M" get dst_export_written_bytes_total export=ma)" "export ma's bytes written, over its own HTTP"

step "HELP and TYPE once per family, every family with the dst_ prefix"
dups=$(grep '^# TYPE' "$M" | sort | uniq -d)
assert_eq "$dups" "" "families listed twice"
bad=$(grep -v '^#' "$M" | grep -v '^dst_' || true)
assert_eq "$bad" "" "samples without the dst_ prefix"

step "over HTTP: Prometheus text, OpenMetrics on request, 404 elsewhere"
mval "$URL" check >/dev/null
assert_metric "$URL" dst_storage_written_bytes_total storage=lin -- $((3 * MiB)) "bytes written to lin, over HTTP"
mval --om "$URL" check >/dev/null
assert_eq "$(mval --om "$URL" get dst_node_written_bytes_total storage=lin node=n-0 kind=client)" $((1 * MiB)) "n-0's bytes written, OpenMetrics over HTTP"
code=$(python3 -c 'import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(sys.argv[1], timeout=10)
    print(200)
except urllib.error.HTTPError as e:
    print(e.code)' "http://127.0.0.1:$MPORT/other")
assert_eq "$code" 404 "HTTP status of /other"
dst metrics --openmetrics >"$T_TMP/om.prom" || fail "dst metrics --openmetrics"
mval --om "$T_TMP/om.prom" check >/dev/null

step "a storage that is not running: dst_up 0; dst metrics NAME; --textfile"
st_create idle linear
st_add idle --disk "mem:4M"
if "$DST" start idle --metrics-listen "$MPORT" >/dev/null 2>"$T_TMP/start.err"; then
	fail "dst start idle --metrics-listen on lin's port succeeded"
fi
assert_contains "$(cat "$T_TMP/start.err")" "metrics-listen $MPORT: cannot listen: Address already in use" "error of a metrics port in use"
assert_eq "$(grep -c metrics-listen "$DST_STATE_DIR/idle.conf")" 0 "metrics-listen saved after the failed start"
if "$DST" start idle --metrics-listen "1.2.3:x" 2>"$T_TMP/start.err"; then
	fail "dst start idle --metrics-listen 1.2.3:x succeeded"
fi
assert_contains "$(cat "$T_TMP/start.err")" "--metrics-listen 1.2.3:x: expected PORT or ADDR:PORT" "error of a bad --metrics-listen"
metrics_save "$M"
assert_metric "$M" dst_up name=idle type=storage -- 0 "dst_up of a storage not started"
assert_metric "$M" dst_up name=ma type=export -- 1 "dst_up of export ma"
metrics_save "$T_TMP/one.prom" idle
assert_eq "$(mval "$T_TMP/one.prom" families)" dst_up "families of dst metrics idle"
if "$DST" metrics --textfile "$T_TMP/tf/dst.prom" 2>"$T_TMP/tf.err"; then
	fail "dst metrics --textfile into a missing directory succeeded"
fi
assert_contains "$(cat "$T_TMP/tf.err")" "--textfile $T_TMP/tf/dst.prom: No such file or directory" "error of --textfile into a missing directory"
mkdir "$T_TMP/tf"
dst_ok metrics --textfile "$T_TMP/tf/dst.prom"
mval "$T_TMP/tf/dst.prom" check >/dev/null
assert_metric "$T_TMP/tf/dst.prom" dst_up name=lin type=storage -- 1 "dst_up of lin in the textfile"
assert_eq "$(ls "$T_TMP/tf")" dst.prom "files in the textfile dir (no temporary left)"

step "export mb killed: its node shows down"
kill -KILL "$B_PID"
wait_gone "$B_PID" 10 || fail "export mb survived kill -9"
rm -f "$DST_STATE_DIR/mb.pid"
qemu-io -f raw -c "read 9M 4K" "$ST_URI" >/dev/null 2>&1 &
T_PIDS+=($!)
for _ in $(seq 50); do
	metrics_save "$M" lin
	[ "$(mval "$M" get dst_node_up storage=lin node=n-16384)" = 0 ] && break
	sleep 0.2
done
assert_metric "$M" dst_node_up storage=lin node=n-16384 -- 0 "n-16384 up after its export was killed"
assert_metric "$M" dst_node_state storage=lin node=n-16384 state=up -- 0 "n-16384 in state up after its export was killed"
state=$(show_attr lin n-16384/state)
assert_metric "$M" dst_node_state storage=lin node=n-16384 state="$state" -- 1 "n-16384's state gauge vs dst show ($state)"
assert_metric "$M" dst_node_up storage=lin node=n-0 -- 1 "n-0 up"
