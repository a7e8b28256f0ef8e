#!/usr/bin/env bash
# alg_mirror basics over two file-backed `dst export` legs of different sizes
# (24M and 32M of data, each file 4 KiB more): the storage is the smaller
# leg less its 4 KiB label block; each leg's last block holds the label
# (magic, the storage's UUID); fio
# crc32c verify at QD32 x 3 jobs with 4K..1M requests goes through; then
# the two leg files are identical over the data range and equal what a
# client reads; a read load at QD32 is spread over both legs (both legs'
# io/reads grow); WRITE_ZEROES, TRIM and an unaligned FUA write land on
# both legs. Bad input: --region-size 3000 and 2G, --region-size or
# --resync-rate on linear, a bad --resync-rate, --start on a mirror leg, a
# leg added to or removed from a running mirror (one line each, state dir
# unchanged); a 1-leg and a 9-leg mirror are refused at start with a clear
# message and leave no daemon.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
. "$TESTS_DIR/func/lib_mirror.sh"
need fio qemu-io nbdinfo nbdcopy

step "two legs: 24M and 32M file-backed exports; mirror mb over them"
mr_legs mb 24M 32M
mr_mirror mb
assert_eq "$M_SIZE" $((24 * MiB)) "storage size (smallest leg - its 4 KiB label)"
assert_eq "$(dev_size "$M_URI")" $((24 * MiB)) "size a client sees"
assert_eq "$(show_attr mb alg)" alg_mirror "alg"
assert_eq "$(show_attr mb health)" AA "health of a new mirror"
assert_eq "$(show_attr mb region_size)" $MiB "default region size"
assert_eq "$(show_attr mb sync)" "24/24 regions" "sync of a new mirror"
assert_eq "$(show_attr mb bitmap/dirty)" 0 "dirty regions of a new mirror"
assert_eq "$(show_attr mb resync/regions_copied)" 0 "regions copied at start"
for i in 0 1; do
	assert_eq "$(show_attr mb "${LEG_NODE[i]}/leg")" A "leg letter of ${LEG_NODE[i]}"
done
assert_contains "$(cat "$DST_STATE_DIR/mb.log")" "a new mirror, its legs taken as identical (--assume-clean)" "log of a new mirror"
[ -s "$DST_STATE_DIR/mb.bitmap" ] || fail "no bitmap file mb.bitmap in the state dir"
assert_eq "$(head -c 8 "$DST_STATE_DIR/mb.bitmap")" DSTMBM01 "bitmap file magic"

step "each leg's last 4 KiB block carries the label with the storage's UUID"
uuid=$(sed -n 's/^uuid = //p' "$DST_STATE_DIR/mb.conf")
[ ${#uuid} -eq 32 ] || fail "no uuid in mb.conf: '$uuid'"
for i in 0 1; do
	sz=$(stat -c %s "${LEG_IMG[i]}")
	assert_eq "$(tail -c 4096 "${LEG_IMG[i]}" | head -c 8)" DSTLABL1 "label magic at the end of leg $i"
	assert_eq "$(tail -c 4096 "${LEG_IMG[i]}" | head -c 32 | tail -c 16 | od -An -tx1 | tr -d ' \n')" "$uuid" \
		"UUID in leg $i's label"
	note "leg $i ($sz bytes): label at $((sz - 4096))"
done

step "fio randwrite 4K..1M + crc32c verify, 3 jobs x QD32 x 7M"
st_fio_verify "$M_URI" 3 7M || fail "fio verify through the mirror"
assert_eq "$(show_attr mb io/errors)" 0 "io errors on the storage"
for i in 0 1; do
	assert_ge "$(show_attr mb "${LEG_NODE[i]}/io/writes")" 1 "writes on leg ${LEG_NODE[i]}"
	assert_eq "$(show_attr mb "${LEG_NODE[i]}/io/errors")" 0 "io errors on leg ${LEG_NODE[i]}"
done
w0=$(show_attr mb "${LEG_NODE[0]}/io/write_bytes")
w1=$(show_attr mb "${LEG_NODE[1]}/io/write_bytes")
assert_eq "$w1" "$w0" "bytes written to leg 1 vs leg 0 (every write goes to both)"
assert_ge "$w0" $((21 * MiB)) "bytes written to each leg"

step "both leg files are identical over the data range, and are what a client reads"
mr_legs_identical "after fio"
want=$(head -c "$M_SIZE" "${LEG_IMG[0]}" | sha256sum | cut -d' ' -f1)
assert_eq "$(dev_sha "$M_URI")" "$want" "sha256 of the device vs. leg 0's data range"
[ "$want" != "$(head -c "$M_SIZE" /dev/zero | sha256sum | cut -d' ' -f1)" ] || fail "leg 0 is all zeroes after fio"
# The last block of the device is data on both legs, not a header.
qio "$M_URI" "write -P 0x5e $((M_SIZE - 4096)) 4096" "flush"
assert_file_pattern "${LEG_IMG[0]}" $((M_SIZE - 4096)) 4096 0x5e "last data block on leg 0"
assert_file_pattern "${LEG_IMG[1]}" $((M_SIZE - 4096)) 4096 0x5e "last data block on leg 1"
assert_eq "$(tail -c 4096 "${LEG_IMG[0]}" | head -c 8)" DSTLABL1 "leg 0's label after a write to the last data block"
run_fails "a write past the end" qemu-io -f raw -c "write -P 0x5f $M_SIZE 4096" "$M_URI"

step "WRITE_ZEROES, TRIM and FUA writes reach both legs (past fio's 0..21M)"
ZO=$((21 * MiB + 512 * 1024)) DO=$((22 * MiB + 512 * 1024)) FO=$((23 * MiB + 512 * 1024 + 512))
qio "$M_URI" "write -P 0x5c $ZO $((2 * MiB))" "flush"
qio "$M_URI" "write -z $ZO $MiB" "discard $DO $MiB" "write -f -P 0x5d $FO 7680" "flush"
for i in 0 1; do
	assert_file_pattern "${LEG_IMG[i]}" $ZO $MiB 0 "write -z on leg $i (across a region boundary)"
	assert_file_pattern "${LEG_IMG[i]}" $DO $MiB 0 "discard on leg $i (across a region boundary)"
	assert_file_pattern "${LEG_IMG[i]}" $FO 7680 0x5d "unaligned FUA write on leg $i"
done
mr_legs_identical "after write -z, discard and a FUA write"
qio "$M_URI" "read -P 0 $ZO $((2 * MiB))" "read -P 0x5d $FO 7680"

step "reads are spread over both legs (fio verify_only, 3 jobs x QD32)"
r0=$(show_attr mb "${LEG_NODE[0]}/io/reads")
r1=$(show_attr mb "${LEG_NODE[1]}/io/reads")
st_fio_verify "$M_URI" 3 7M --verify_only=1 || fail "fio verify_only through the mirror"
d0=$(($(show_attr mb "${LEG_NODE[0]}/io/reads") - r0))
d1=$(($(show_attr mb "${LEG_NODE[1]}/io/reads") - r1))
note "reads during verify_only: leg 0 $d0, leg 1 $d1"
assert_ge "$d0" 1 "reads on leg 0 during a QD32 read load"
assert_ge "$d1" 1 "reads on leg 1 during a QD32 read load"
# Each leg got a fair share (least busy leg wins): neither under 10%.
assert_ge $((d0 * 10)) $((d0 + d1)) "leg 0's share of the reads x10"
assert_ge $((d1 * 10)) $((d0 + d1)) "leg 1's share of the reads x10"

step "bad input to create and add"
bad_input "--region-size not a power of two" region-size 3000 -- create bad1 --alg mirror --region-size 3000
bad_input "--region-size too large" region-size -- create bad1 --alg mirror --region-size 2G
bad_input "--region-size too small" region-size -- create bad1 --alg mirror --region-size 2K
bad_input "--region-size on alg_linear" region-size mirror -- create bad1 --alg linear --region-size 1M
bad_input "--resync-rate on alg_stripe" resync-rate mirror -- create bad1 --alg stripe --resync-rate 10M
bad_input "--resync-rate too small" resync-rate -- create bad1 --alg mirror --resync-rate 1
st_export spare 24M
SPARE=$URI
bad_input "--start on a mirror leg (a reachable node)" start "whole device" -- add mb --remote "$SPARE" --start 100
bad_input "the same leg twice" "${LEG_URI[0]}" -- add mb --remote "${LEG_URI[0]}"
bad_input "a leg added to a running mirror" running mirror -- add mb --remote "$SPARE"
bad_input "a leg removed from a running mirror" running stop -- remove mb "${LEG_NODE[1]}"

step "a 1-leg mirror is refused at start"
st_create one mirror
st_add one --remote "$SPARE"
rc=0
"$DST" start one --listen "127.0.0.1:$(free_port)" >"$T_TMP/one.out" 2>"$T_TMP/one.err" || rc=$?
check_stderr "$T_TMP/one.err" "dst start one"
note "dst start one -> status $rc: $(cat "$T_TMP/one.err")"
[ $rc -ne 0 ] || fail "a 1-leg mirror started"
[ $rc -lt 128 ] || fail "dst start died with signal $((rc - 128))"
assert_contains "$(cat "$T_TMP/one.err")" "at least 2 legs" "message for a 1-leg mirror"
assert_contains "$(cat "$T_TMP/one.err")" "dst add" "the message says how to fix it"
[ ! -e "$DST_STATE_DIR/one.pid" ] || fail "a pid file was left by the refused start"
[ ! -e "$DST_STATE_DIR/one.bitmap" ] || note "(a bitmap file was left by the refused start)"

step "a 9th leg is refused by dst add, a 9-leg config by dst start"
st_create nine mirror
for i in $(seq 8); do st_add nine --disk "mem:$((8 + i))M"; done
bad_input "a 9th mirror leg" "8 legs" -- add nine --disk mem:17M
# A config edited by hand past the limit is refused at start.
echo "node = disk start=999999 size=34816 mem:17M" >>"$DST_STATE_DIR/nine.conf"
rc=0
"$DST" start nine --listen "127.0.0.1:$(free_port)" >"$T_TMP/nine.out" 2>"$T_TMP/nine.err" || rc=$?
check_stderr "$T_TMP/nine.err" "dst start nine"
note "dst start nine -> status $rc: $(cat "$T_TMP/nine.err")"
[ $rc -ne 0 ] && [ $rc -lt 128 ] || fail "a 9-leg mirror: dst start status $rc"
assert_contains "$(cat "$T_TMP/nine.err")" "at most 8 legs" "message for a 9-leg mirror"
[ ! -e "$DST_STATE_DIR/nine.pid" ] || fail "a pid file was left by the refused start"

step "--region-size 64K is kept and used"
st_create small mirror --region-size 64K --assume-clean
st_add small --disk mem:4M
st_add small --disk mem:5M
st_start small --listen "127.0.0.1:$(free_port)"
assert_eq "$(show_attr small region_size)" 65536 "region_size of small"
assert_eq "$(show_attr small sync)" "64/64 regions" "regions of a 4M-4K mirror with 64K regions"
qio "$ST_URI" "write -P 0x11 0 4096" "write -P 0x12 $((65536 * 10 - 512)) 1024"
assert_eq "$(show_attr small bitmap/dirty)" 3 "dirty 64K regions after writes to regions 0, 9 and 10"
st_stop small

step "stop"
assert_eq "$(show_attr mb clients)" 0 "clients left connected"
assert_eq "$(export_pid mb)" "$M_PID" "the storage daemon is the same process"
st_stop mb
assert_eq "$(head -c 8 "$DST_STATE_DIR/mb.bitmap")" DSTMBM01 "the bitmap file is kept after stop"
stop_export spare
stop_export mb-leg0
stop_export mb-leg1
echo "PASS"
