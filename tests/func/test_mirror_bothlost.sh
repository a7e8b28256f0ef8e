#!/usr/bin/env bash
# Both legs of a mirror lost (two 16M file-backed legs): leg 1 is killed
# first and a region is written with leg 0 alone, then leg 0 is killed too.
# Every read and write fails at once with EIO (qemu-io: "Input/output
# error", NBD error 5), `dst show` says DD and the log says IO fails until a
# leg is back; the daemon stays up (same pid). Leg 1 comes back first: it
# was not the last leg in sync (it misses the region written meanwhile), so
# it is not taken and IO still fails, rather than serving stale data. Leg 0
# comes back: it was the last in sync, the service resumes (every write made
# before reads back, the one leg 1 missed too), and leg 1 is resynced with
# exactly the region it missed: health AA, the legs byte-identical.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
. "$TESTS_DIR/func/lib_mirror.sh"
need qemu-io nbdinfo
EIO=5

step "mirror mx over two 16M exports; data written on both legs"
mr_legs mx 16M 16M
mr_mirror mx
L0=${LEG_NODE[0]} L1=${LEG_NODE[1]}
MPORT=${M_URI##*:}
MR_WRITTEN=()
mr_writes "$M_URI" 0 $((3 * MiB + 4096)) $((8 * MiB))
mr_settle mx

step "kill -9 leg 1; write region 5 with leg 0 alone"
leg_kill9 1
mr_wait mx health AD 5 "health after leg 1 died"
mr_writes "$M_URI" $((5 * MiB + 65536))
assert_eq "$(show_attr mx bitmap/dirty)" 1 "dirty regions (leg 1 missed region 5)"

step "kill -9 leg 0 too: IO fails with EIO, the daemon stays up"
mr_log_mark mx
leg_kill9 0
mr_wait mx health DD 5 "health with both legs dead"
mr_log_has mx "mirror: leg $L0 \(${LEG_URI[0]}\) failed \(.*\); 0 of 2 legs in sync: IO fails until a leg is back" \
	"the log says IO fails"
e0=$(show_attr mx io/errors)
rc=0
out=$(timeout 20 qemu-io -f raw -c "read 0 4096" "$M_URI" 2>&1) || rc=$?
note "qemu-io read: status $rc: $(printf '%s' "$out" | head -1)"
[ $rc -ne 124 ] || fail "qemu-io read with both legs dead hung for 20 s"
assert_contains "$out" "Input/output error" "qemu-io read with both legs dead"
rc=0
out=$(timeout 20 qemu-io -f raw -c "write -P 0x77 $((2 * MiB)) 4096" "$M_URI" 2>&1) || rc=$?
note "qemu-io write: status $rc: $(printf '%s' "$out" | head -1)"
assert_contains "$out" "Input/output error" "qemu-io write with both legs dead"
t0=$(date +%s%3N)
rc=0
raw=$(timeout 20 $NBD_RAW 127.0.0.1 "$MPORT" read:0:4096 "write:$((2 * MiB)):4096:0x77" flush 2>&1) || rc=$?
note "nbd_raw: $(printf '%s' "$raw" | tr '\n' ' ')"
assert_contains "$raw" "error $EIO" "NBD error of a read with both legs dead"
assert_le $(($(date +%s%3N) - t0)) 3000 "ms until IO with both legs dead failed (at once, no wait)"
assert_ge "$(show_attr mx io/errors)" $((e0 + 2)) "io/errors counted by the storage"
assert_eq "$(show_attr mx bitmap/dirty)" 1 "dirty regions (failed writes set no bits)"
assert_eq "$(export_pid mx)" "$M_PID" "the daemon's pid"
pid_alive "$M_PID" || fail "the storage daemon died with both legs lost"
assert_eq "$(show_attr mx state)" running "mx/state"

step "leg 1 comes back first: not the last in sync, so not taken; IO still fails"
mr_log_mark mx
leg_restart 1
mr_wait mx "$L1/state" up 15 "leg 1's node reconnected"
sleep 2.5 # two ticks: the header is read, the leg is not taken
assert_eq "$(show_attr mx health)" DD "health with only the stale leg back"
rc=0
out=$(timeout 20 qemu-io -f raw -c "read 0 4096" "$M_URI" 2>&1) || rc=$?
assert_contains "$out" "Input/output error" "a read with only the stale leg back"
rc=0
out=$(timeout 20 qemu-io -f raw -c "read -P 0 $((5 * MiB + 65536)) 65536" "$M_URI" 2>&1) || rc=$?
assert_not_contains "$out" "read 65536/65536" "the stale leg must not serve the region it missed"
assert_eq "$(export_pid mx)" "$M_PID" "the daemon's pid"

step "leg 0 comes back: the service resumes with every write, leg 1 is resynced"
c0=$(mr_copied mx)
leg_restart 0
mr_wait_log mx "mirror: leg $L0 is back; it was the last in sync" 15 "log: the last leg in sync is taken back"
mr_wait mx health AA 20 "health after both legs came back"
mr_log_has mx "mirror: leg $L1 is back; resyncing 1 dirty regions" "log: leg 1 back"
mr_log_has mx "mirror: leg $L1 in sync again: 1 regions copied" "log: leg 1 in sync"
assert_eq $(($(mr_copied mx) - c0)) 1 "regions copied to leg 1"
mr_check_written "$M_URI" "after both legs came back"
mr_legs_identical "after both legs came back"
qio "$M_URI" "write -P 0x78 $((2 * MiB)) 4096" "read -P 0x78 $((2 * MiB)) 4096"
assert_eq "$(export_pid mx)" "$M_PID" "the daemon's pid"

step "stop"
mr_settle mx
st_stop mx
stop_export mx-leg0
stop_export mx-leg1
echo "PASS"
