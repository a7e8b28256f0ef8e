#!/usr/bin/env bash
# A hung mirror leg (SIGSTOP, not a close) under a fio crc32c write+verify
# load, on a mirror created with --request-timeout 2: the leg's connection
# is dropped after 2 s without a reply ("no reply for 2 s" in the log), the
# leg is marked dead (AD) and the writes go on to the other leg; fio sees no
# error. SIGCONT: the leg reconnects by itself, its dirty regions are copied
# while fio keeps writing, health AA; after fio every block has verified, and
# the leg files are byte-identical. Then an idle hang: nothing is sent to
# the stopped leg, so it stays A until writes to 3 regions wait for it for
# the request timeout and are answered from the other leg (no error, within
# a few seconds); SIGCONT brings it back with exactly those 3 regions copied.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
. "$TESTS_DIR/func/lib_mirror.sh"
need fio qemu-io nbdinfo

step "mirror mh over two 32M exports, --request-timeout 2"
mr_legs mh 32M 32M
mr_mirror mh --request-timeout 2
L1=${LEG_NODE[1]}
L1_PID=$(leg_pid 1)

step "fio write+verify for 14 s; SIGSTOP leg 1 ($L1) after 2 s"
mr_fio_start "$M_URI" 14 "$T_TMP/fio.hang"
sleep 2
mr_fio_alive
assert_ge "$(show_attr mh "$L1/io/writes")" 1 "writes on $L1 before the hang"
mr_log_mark mh
t0=$(date +%s%3N)
kill -STOP "$L1_PID"
T_STOPPED=$L1_PID
mr_wait mh health AD 8 "health after SIGSTOP of leg 1 (request timeout 2 s)"
hang_ms=$(($(date +%s%3N) - t0))
assert_ge "$hang_ms" 1500 "ms until the hung leg was given up (request timeout 2 s)"
mr_log_has mh "node ${LEG_URI[1]}: no reply for 2 s" "the log says why the connection was dropped"
mr_log_has mh "mirror: leg $L1 \(${LEG_URI[1]}\) failed" "the log names the failed leg"
w0=$(show_attr mh "${LEG_NODE[0]}/io/writes")
sleep 2
mr_fio_alive
assert_ge "$(show_attr mh "${LEG_NODE[0]}/io/writes")" $((w0 + 1)) "writes reach leg 0 while leg 1 hangs"
assert_eq "$(show_attr mh health)" AD "health while leg 1 hangs"
assert_ge "$(show_attr mh bitmap/dirty)" 1 "dirty regions while leg 1 hangs"

step "SIGCONT: leg 1 reconnects and is resynced while fio goes on"
c0=$(mr_copied mh)
kill -CONT "$L1_PID"
T_STOPPED=
mr_wait mh health AA 15 "health after SIGCONT"
mr_log_has mh "mirror: leg $L1 is back; resyncing [0-9]+ dirty regions" "log: leg back"
mr_log_has mh "mirror: leg $L1 in sync again: [0-9]+ regions copied" "log: in sync again"
copied=$(($(mr_copied mh) - c0))
assert_ge "$copied" 1 "regions copied to leg 1"
note "$copied regions copied after the hang"
mr_fio_alive
mr_fio_wait
assert_eq "$(show_attr mh io/errors)" 0 "io errors on the storage (the client saw none)"
mr_settle mh
mr_legs_identical "after the hang, the resync and fio"
assert_eq "$(leg_pid 1)" "$L1_PID" "leg 1's export is the same process"

step "an idle hang: SIGSTOP, then writes to 3 regions; they wait 2 s, not fail"
mr_log_mark mh
kill -STOP "$L1_PID"
T_STOPPED=$L1_PID
t0=$(date +%s%3N)
mr_writes "$M_URI" $((3 * MiB)) $((7 * MiB)) $((30 * MiB + 4096))
write_ms=$(($(date +%s%3N) - t0))
note "the writes took $write_ms ms"
assert_ge "$write_ms" 1500 "ms the writes waited for the hung leg (request timeout 2 s)"
assert_le "$write_ms" 10000 "ms the writes took with a hung leg"
mr_wait mh health AD 8 "health after writes to a hung leg"
assert_eq "$(show_attr mh bitmap/dirty)" 3 "dirty regions"
c0=$(mr_copied mh)
kill -CONT "$L1_PID"
T_STOPPED=
mr_wait mh health AA 15 "health after SIGCONT"
assert_eq $(($(mr_copied mh) - c0)) 3 "regions copied after the idle hang"
mr_log_has mh "mirror: resync of 3 regions starts" "log: resync starts"
mr_legs_identical "after the idle hang"
mr_check_written "$M_URI" "after the idle hang"

step "stop"
assert_eq "$(export_pid mh)" "$M_PID" "the storage daemon is the same process"
st_stop mh
stop_export mh-leg0
stop_export mh-leg1
echo "PASS"
