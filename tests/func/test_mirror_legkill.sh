#!/usr/bin/env bash
# A mirror leg killed with SIGKILL (alg_mirror over two 32M file-backed
# exports):
#  - under a fio crc32c write+verify load (2 jobs x QD32, 4K..1M): fio sees
#    no error and every block verifies; `dst show` says AD, the log names
#    the failed leg; the writes go on to the live leg; the export restarted
#    on its port with its file: exactly the regions the bitmap had dirty are
#    copied, health AA, the legs byte-identical;
#  - with no IO at all: the once-a-second tick notices the broken
#    connection (AD); qemu-io writes touching exactly 6 distinct 1 MiB
#    regions (one straddles two regions, two hit the same one, one is the
#    last, short region) dirty exactly 6 bits; the dead leg's file misses
#    them; the export restarted: "resync of 6 regions starts", 6 copied
#    (regions_copied delta), health AA, every write on both legs and read
#    back, the legs byte-identical, and reads reach the returned leg again.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
. "$TESTS_DIR/func/lib_mirror.sh"
need fio qemu-io nbdinfo

step "mirror mk over two 32M file-backed exports"
mr_legs mk 32M 32M
mr_mirror mk
L1=${LEG_NODE[1]}
assert_eq "$M_SIZE" $((32 * MiB)) "size of mk"

step "fio write+verify for 8 s; kill -9 leg 1 ($L1) after 2 s"
mr_fio_start "$M_URI" 8 "$T_TMP/fio.kill"
sleep 2
mr_fio_alive
assert_ge "$(show_attr mk "$L1/io/writes")" 1 "writes on $L1 before the kill"
mr_log_mark mk
leg_kill9 1
mr_wait mk health AD 5 "health after kill -9 of leg 1"
assert_eq "$(show_attr mk "$L1/leg")" D "leg letter of $L1"
mr_log_has mk "mirror: leg $L1 \(${LEG_URI[1]}\) failed \(.*\); 1 of 2 legs in sync" "the log names the failed leg"
w0=$(show_attr mk "${LEG_NODE[0]}/io/writes")
sleep 1
mr_fio_alive
assert_ge "$(show_attr mk "${LEG_NODE[0]}/io/writes")" $((w0 + 1)) "writes reach leg 0 while leg 1 is dead"
mr_fio_wait
assert_eq "$(show_attr mk io/errors)" 0 "io errors on the storage (the client saw none)"
assert_eq "$(show_attr mk health)" AD "health after the load"
dirty=$(show_attr mk bitmap/dirty)
assert_ge "$dirty" 1 "dirty regions after writes with a dead leg"
assert_le "$dirty" 16 "dirty regions (fio wrote 0..16M only)"
assert_eq "$(show_attr mk sync)" "$((32 - dirty))/32 regions" "sync line with a dead leg"
sleep 1.5
assert_eq "$(show_attr mk bitmap/dirty)" "$dirty" "dirty regions are kept while a leg is dead (no sweep)"

step "restart leg 1's export: the $dirty dirty regions are copied"
c0=$(mr_copied mk)
mr_log_mark mk
leg_restart 1
mr_wait mk health AA 15 "health after leg 1 came back"
assert_eq $(($(mr_copied mk) - c0)) "$dirty" "regions copied to leg 1"
mr_log_has mk "mirror: leg $L1 is back; resyncing $dirty dirty regions" "log: leg back"
mr_log_has mk "mirror: resync of $dirty regions starts" "log: resync starts"
mr_log_has mk "mirror: leg $L1 in sync again: $dirty regions copied" "log: in sync again"
mr_legs_identical "after the resync of the fio load"

step "let the bitmap sweep settle"
mr_settle mk

step "kill -9 leg 1 again, no IO: the tick notices"
mr_log_mark mk
leg_kill9 1
mr_wait mk health AD 5 "health after kill -9 of an idle leg"
mr_log_has mk "mirror: leg $L1 .* failed" "the log names the failed leg"

step "qemu-io writes touching exactly 6 regions: 2, 5, 9+10 (straddling), 20 (twice), 31 (the last)"
mr_writes "$M_URI" $((2 * MiB)) $((5 * MiB + 100 * 1024)) $((10 * MiB - 32768)) \
	$((20 * MiB)) $((20 * MiB + 512 * 1024)) $((M_SIZE - 65536))
K=6
assert_eq "$(show_attr mk bitmap/dirty)" $K "dirty regions after the writes"
assert_eq "$(show_attr mk sync)" "$((32 - K))/32 regions" "sync line"
mr_files_have lacks "${LEG_IMG[1]}" || fail "the dead leg's file already has the writes"
mr_files_have has "${LEG_IMG[0]}" || fail "the live leg's file misses writes"
assert_eq "$(show_attr mk io/errors)" 0 "io errors on the storage"

step "restart leg 1's export: exactly $K regions are resynced"
c0=$(mr_copied mk)
mr_log_mark mk
leg_restart 1
mr_wait mk health AA 15 "health after leg 1 came back"
assert_eq $(($(mr_copied mk) - c0)) $K "regions copied to leg 1 (regions_copied delta)"
mr_log_has mk "mirror: leg $L1 is back; resyncing $K dirty regions" "log: leg back"
mr_log_has mk "mirror: resync of $K regions starts" "log: resync starts"
mr_log_has mk "mirror: leg $L1 in sync again: $K regions copied" "log: in sync again"
assert_ge "$(show_attr mk "$L1/reconnects")" 2 "$L1/reconnects"
mr_legs_identical "after the resync of $K regions"
mr_check_written "$M_URI" "after the resync"

step "reads reach the returned leg again"
r1=$(show_attr mk "$L1/io/reads")
st_fio_verify "$M_URI" 2 8M >/dev/null || fail "fio verify after the resync"
assert_ge "$(show_attr mk "$L1/io/reads")" $((r1 + 1)) "reads on $L1 after it is back in sync"
mr_settle mk

step "stop"
assert_eq "$(export_pid mk)" "$M_PID" "the storage daemon is the same process"
assert_eq "$(show_attr mk io/errors)" 0 "io errors on the storage"
st_stop mk
stop_export mk-leg0
stop_export mk-leg1
echo "PASS"
