#!/usr/bin/env bash
# Backpressure: with a small buffer budget (--buffers 1M, rounded up by the
# server to 32 MiB so one maximum-size request fits), fio keeps 4 jobs x
# QD32 x 2 MiB = 256 MiB in flight, eight times the budget. Nothing may fail:
# the server stops reading until buffers come back. The buffer peak must
# stay within the budget. Then clients of maximum-size requests. Requests
# are 2 MiB and the disk a file because reads of up to 1 MiB from a mem disk,
# or from a file's cached pages, take no buffer (they are sent from the
# disk's own memory).
# run.sh: alone
. "$(dirname "$0")/lib.sh"
need fio

MiB=1048576

step "export with --buffers 1M"
truncate -s 256M "$T_TMP/bp.img"
start_export bp "$T_TMP/bp.img" --buffers 1M
budget=$(show_attr bp mem/buffer_budget)
note "buffer budget: $budget bytes"
assert_eq "$budget" $((32 * MiB)) "budget (1M rounded up to one 32 MiB max request)"

step "fio: 4 jobs x QD32 x 2M randwrite with crc32c verify (256 MiB in flight)"
fio_run 45 "$T_TMP/bp.out" --name=bp --ioengine=nbd --uri="$URI" --rw=randwrite --bs=2M \
	--iodepth=32 --numjobs=4 --size=48M --offset_increment=64M --verify=crc32c --verify_fatal=1 \
	--do_verify=1 --verify_state_save=0 --group_reporting || { tail -30 "$T_TMP/bp.out"; fail "fio failed"; }
grep -E '^ *(READ|WRITE):' "$T_TMP/bp.out" | sed 's/^ */   /'
peak=$(show_attr bp mem/buffer_peak)
note "buffer peak: $peak bytes"
assert_le "$peak" "$budget" "buffer peak"
assert_ge "$peak" $((16 * MiB)) "buffer peak (the load did fill the pool)"
assert_eq "$(show_attr bp io/errors)" 0 "io/errors"
assert_eq "$(show_attr bp mem/buffer_in_use)" 0 "buffers in use when idle"
assert_ge "$(show_attr bp io/writes)" 96 "io/writes"

# The budget holds one 32 MiB buffer: 32 MiB requests need the whole pool
# while the other client keeps taking 4 KiB buffers. Three rounds, since
# a stall here depends on timing.
for round in 1 2 3; do
	step "mixed sizes, round $round: 32 MiB writes+verify reads and 4 KiB reads from two clients"
	bg fio_run 40 "$T_TMP/big.out" --name=big --ioengine=nbd --uri="$URI" --rw=write --bs=32M \
		--iodepth=4 --size=128M --verify=crc32c --verify_fatal=1 --do_verify=1 --verify_state_save=0
	big=$BG_PID
	bg fio_run 40 "$T_TMP/small.out" --name=small --ioengine=nbd --uri="$URI" --rw=randread --bs=4k \
		--iodepth=32 --offset=128M --size=64M --time_based --runtime=3 --randseed=$round
	small=$BG_PID
	bg_wait $big || { tail -5 "$T_TMP/big.out"; fail "fio with 32 MiB writes (and reads, to verify) failed"; }
	bg_wait $small || { tail -5 "$T_TMP/small.out"; fail "fio with 4 KiB reads beside them failed"; }
	assert_le "$(show_attr bp mem/buffer_peak)" "$budget" "buffer peak after 32 MiB requests"
	assert_eq "$(show_attr bp io/errors)" 0 "io/errors"
done

step "raw client: max-size IO and 600 pipelined reads against the small budget"
run_ok "raw" nbd_raw --name bp 127.0.0.1 "$PORT" max_size_io pipelined stream_sync
assert_le "$(show_attr bp mem/buffer_peak)" "$budget" "buffer peak after raw clients"
stop_export bp
echo "PASS"
