#!/usr/bin/env bash
# Flood, against `dst export mem:...`: 16 fio clients at queue depth 32
# (1 MiB random reads and writes: up to 512 MiB asked for at once, against a
# buffer budget of 32 MiB) for 12 s. Meanwhile a well-behaved client (qemu-io) still gets
# answers within a bound, the daemon's memory stays within its buffer budget
# plus what fio wrote to the memory disk plus a stated overhead, and the
# buffer peak within the budget. Then, with the server at --max-clients,
# more clients are closed at accept, logged and counted, and those already
# in are unaffected.
# run.sh: alone
. "$(dirname "$0")/lib.sh"
# shellcheck source=lib_limits.sh
. "$TESTS_DIR/func/lib_limits.sh"
need fio python3 qemu-io

MiB=1048576
JOBS=16
REGION_MIB=4 # each fio job writes only its own 4 MiB: 64 MiB of memory disk
# Besides the buffer pool and the disk's data: the program, client buffers,
# the disk's chunk tables, and in the ASan build of make check the
# sanitizer's shadow memory and (limited here) quarantine.
OVERHEAD_MIB=64
export ASAN_OPTIONS="${ASAN_OPTIONS}:quarantine_size_mb=16"

step "export with --buffers 32M --max-clients 20"
start_export fl mem:1G --buffers 32M --max-clients 20
budget=$(show_attr fl mem/buffer_budget)
assert_eq "$budget" $((32 * MiB)) "mem/buffer_budget"

step "$JOBS fio clients x QD32 x 1 MiB randrw for 12 s; qemu-io probes meanwhile"
bg rss_watch "$PID" "$T_TMP/rss"
rss_pid=$BG_PID
bg fio_run 40 "$T_TMP/fio.out" --name=flood --ioengine=nbd --uri="$URI" --rw=randrw --bs=1M \
	--iodepth=32 --numjobs=$JOBS --size=${REGION_MIB}M --offset_increment=${REGION_MIB}M \
	--time_based --runtime=12 --group_reporting
flood=$BG_PID
sleep 2
probe_loop 8 "$URI" "$T_TMP/probe"
bg_wait "$flood" || { tail -20 "$T_TMP/fio.out"; fail "fio flood failed"; }
grep -E '^ *(read|write):' "$T_TMP/fio.out" | sed 's/^ */   /'
probe_check "$T_TMP/probe" 3000 "qemu-io during the flood"
kill_pid "$rss_pid"
rss=$(max_of "$T_TMP/rss")
limit=$((budget / MiB + JOBS * REGION_MIB + OVERHEAD_MIB))
note "VmRSS peak $((rss / 1024)) MiB; limit: budget $((budget / MiB)) + disk $((JOBS * REGION_MIB)) + overhead $OVERHEAD_MIB = $limit MiB"
assert_le "$rss" $((limit * 1024)) "daemon VmRSS (KiB)"
peak=$(show_attr fl mem/buffer_peak)
note "buffer peak $((peak / 1024)) KiB of $((budget / 1024))"
assert_le "$peak" "$budget" "mem/buffer_peak"
assert_eq "$(show_attr fl io/errors)" 0 "io/errors"
assert_eq "$(show_attr fl clients_refused)" 0 "clients refused under 20"

step "18 clients hold on; 8 more are refused at accept (max-clients 20)"
bg nbd_load 127.0.0.1 "$PORT" hold 18 6 >"$T_TMP/hold.out"
hold=$BG_PID
sleep 3
out=$(nbd_load 127.0.0.1 "$PORT" hold 8 0) || fail "nbd_load hold failed"
note "18 first: $(cat "$T_TMP/hold.out"); 8 more: $out"
assert_eq "$(kv "$(cat "$T_TMP/hold.out")" ok)" 18 "clients in of the first 18"
assert_eq "$(kv "$out" ok)" 2 "clients in of 8 more"
assert_eq "$(kv "$out" refused)" 6 "clients refused of 8 more"
assert_eq "$(show_attr fl clients_refused)" 6 "clients_refused"
assert_eq "$(grep -c 'refused: too many clients (max-clients)' "$DST_STATE_DIR/fl.log")" 6 \
	"'refused: too many clients' lines in the log"
bg_wait "$hold" || fail "nbd_load hold failed"
run_ok "qemu-io once they are gone" qemu-io -f raw -r -c 'read 0 4k' "$URI"
stop_export fl
echo "PASS"
