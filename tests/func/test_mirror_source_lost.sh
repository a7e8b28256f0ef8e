#!/usr/bin/env bash
# The source leg lost in the middle of a resync (two 16M file-backed legs,
# --resync-rate 2M so the copy takes about 8 s): leg 1 is replaced by an
# empty file, taken with dst suspend + dst resume --remote (which labels
# it), and is being copied whole from leg 0 when leg 0 is killed. IO
# fails (no leg in sync: DS), "resync stopped: no in-sync leg left". Leg 0
# comes back: it was the last in sync, so it is taken back (AS) and the
# resync must go on by itself until leg 1 is in sync: health AA, the legs
# byte-identical, the data intact.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
. "$TESTS_DIR/func/lib_mirror.sh"
need qemu-io nbdinfo

step "mirror ms over two 16M exports, --resync-rate 2M; 0x33 over 15M"
mr_legs ms 16M 16M
mr_mirror ms --resync-rate 2M
L0=${LEG_NODE[0]} L1=${LEG_NODE[1]}
qio "$M_URI" "write -P 0x33 0 15M" "flush"
mr_settle ms

step "replace leg 1 by an empty file: a full resync from leg 0 starts"
leg_kill9 1
mr_wait ms health AD 5 "health after leg 1 died"
leg_blank 1
mr_log_mark ms
leg_restart 1
mr_leg_refused ms 1 10
mr_leg_take ms 1
mr_wait_log ms "mirror: resync of 16 regions starts" 10 "the full resync starts"
sleep 1.5
note "progress: $(show_attr ms resync/progress)"
assert_eq "$(show_attr ms health)" AS "health during the resync"

step "kill -9 leg 0 (the source) during the resync"
leg_kill9 0
mr_wait ms health DS 5 "health with the source dead"
mr_wait_log ms "mirror: resync stopped: no in-sync leg left" 5 "log: resync stopped"
c_mid=$(mr_copied ms)
note "$c_mid regions copied before the source died"
assert_le "$c_mid" 15 "regions copied before the source died (the resync was not over)"
run_fails "a read with no leg in sync" qemu-io -f raw -r -c "read 0 4096" "$M_URI"
assert_contains "$RUN_OUT" "Input/output error" "a read with no leg in sync"

step "leg 0 comes back: taken back as the last in sync; the resync must go on"
leg_restart 0
mr_wait_log ms "mirror: leg $L0 is back; it was the last in sync" 15 "log: leg 0 taken back"
mr_wait ms health AA 15 "health after the source came back (the resync of leg 1 must finish)"
mr_log_has ms "mirror: leg $L1 in sync again" "log: leg 1 in sync"
mr_legs_identical "after the resumed resync"
qio "$M_URI" "read -P 0x33 0 15M"

step "stop"
assert_eq "$(export_pid ms)" "$M_PID" "the storage daemon is the same process"
st_stop ms
stop_export ms-leg0
stop_export ms-leg1
echo "PASS"
