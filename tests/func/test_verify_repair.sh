#!/usr/bin/env bash
# dst verify finds exactly the blocks in which a mirror's legs differ, and
# --repair makes them agree. A 2-leg mirror of 16 MiB over two file-backed
# dst exports (leg 1 on another host: a network namespace, when the test
# runs as root) is written whole with known data (nbdcopy); then the legs are
# made to differ behind its back: bytes inverted in the backing files at
# chosen 4 KiB-aligned ranges (four on leg 1, one of them across a region
# boundary and one in the last block before the label, one on leg 0, the
# source). `dst verify --wait` exits 3, logs exactly those ranges (checksums:
# the exports' read counters barely move), changes nothing; --range finds
# only what is in the range; --abort stops a slow verify (dst replace of a
# leg is refused while it runs); --repair exits 0
# with every block repaired from leg 0; a third verify finds nothing; the
# storage's data and both legs' data areas are then the data written with
# leg 0's change. Bad input is refused in one line with status 1.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
. "$TESTS_DIR/func/lib_mirror.sh"
. "$TESTS_DIR/func/lib_netns.sh"
. "$TESTS_DIR/func/lib_verify.sh"
need nbdcopy nbdinfo
vf_hosts vr 248 mv

step "mirror mv over two 16M exports, written whole with known data"
mr_legs mv 16M
img=$T_TMP/mv-leg1.img
{ truncate -s 16M "$img" && truncate -s +4096 "$img"; } || fail "truncate $img"
vf_leg_export 1 mv-leg1 "$img"
mr_mirror mv
L0=${LEG_NODE[0]} L1=${LEG_NODE[1]}
vf_data "$T_TMP/data.bin" "$M_SIZE" 19
run_ok "nbdcopy of the data into mv" nbdcopy "$T_TMP/data.bin" "$M_URI"
mr_settle mv
mr_legs_identical "after the write"
cmp -n "$M_SIZE" "$T_TMP/data.bin" "${LEG_IMG[0]}" >/dev/null || fail "leg 0 does not hold the data written"

step "the legs made to differ behind the mirror's back"
# "OFFSET LENGTH" on leg 1: one block; five blocks; four blocks across the
# boundary of regions 7 and 8; the last block of the data area.
BAD1="$((MiB + 8192)) 4096
$((5 * MiB + 65536)) 20480
$((8 * MiB - 8192)) 16384
$((M_SIZE - 4096)) 4096"
# On leg 0 (the source: repair copies these bytes to leg 1).
BAD0="$((12 * MiB + 524288)) 8192"
while read -r o l; do vf_flip "${LEG_IMG[1]}" "$o" "$l"; done <<<"$BAD1"
while read -r o l; do vf_flip "${LEG_IMG[0]}" "$o" "$l"; done <<<"$BAD0"
cp "$T_TMP/data.bin" "$T_TMP/expect.bin"
while read -r o l; do vf_flip "$T_TMP/expect.bin" "$o" "$l"; done <<<"$BAD0"
ALL="$BAD1
$BAD0"
NBAD=$(vf_blocks "$ALL")
note "$NBAD blocks changed in $(grep -c '' <<<"$ALL") ranges"
sum0=$(head -c "$M_SIZE" "${LEG_IMG[0]}" | sha256sum) sum1=$(head -c "$M_SIZE" "${LEG_IMG[1]}" | sha256sum)

step "dst verify --wait: exit 3, exactly those ranges in the log, the legs untouched"
mr_log_mark mv
r0=$(export_attr mv-leg0 io/read_bytes) r1=$(export_attr mv-leg1 io/read_bytes)
vf_run 3 mv
assert_eq "$(show_attr mv verify/state)" "done" "verify/state"
assert_eq "$(show_attr mv verify/progress)" "16/16 regions" "verify/progress"
assert_eq "$(show_attr mv verify/percent)" 100 "verify/percent"
assert_eq "$(show_attr mv verify/regions_checked)" 16 "verify/regions_checked"
assert_eq "$(show_attr mv verify/mismatch_blocks)" "$NBAD" "verify/mismatch_blocks"
assert_eq "$(show_attr mv verify/repaired_blocks)" 0 "verify/repaired_blocks without --repair"
assert_eq "$(show_attr mv verify/method)" checksums "verify/method over two dst exports"
assert_eq "$(show_attr mv verify/data_bytes)" 0 "verify/data_bytes over two dst exports"
assert_ge "$(show_attr mv verify/csum_bytes)" "$M_SIZE" "verify/csum_bytes"
nr=$(show_attr mv verify/mismatch_ranges)
note "mismatch_ranges $nr, csum_bytes $(show_attr mv verify/csum_bytes)"
assert_ge "$nr" 5 "verify/mismatch_ranges (5 ranges made)"
assert_le "$nr" 6 "verify/mismatch_ranges (5 ranges, one across two regions)"
logged=$(vf_logged mv)
printf '   log: %s\n' "$logged"
vf_expect_ranges "dst verify" "$ALL" "$(cut -d' ' -f1,2 <<<"$logged")"
[ -z "$(awk -v n="$L1" -v s="$L0" '$3 != n || $4 != s || NF != 4' <<<"$logged")" ] ||
	fail "every mismatch should say '$L1 differs from $L0' and not repaired"
mr_log_has mv "verify: done" "the verify's last line"
# The same in dst show --json.
dst_ok show mv --json >"$T_TMP/show.json"
python3 - "$T_TMP/show.json" "$NBAD" <<'EOF' || fail "dst show mv --json: verify"
import json, sys
doc = json.load(open(sys.argv[1]))
v = doc.get("mv", doc).get("verify")
if not isinstance(v, dict):
    sys.exit("no verify object in %s" % sorted(doc))
if v.get("state") != "done" or str(v.get("mismatch_blocks")) != sys.argv[2]:
    sys.exit("verify in JSON: %r" % v)
EOF
# Checksums crossed the network, not the data.
d0=$(($(export_attr mv-leg0 io/read_bytes) - r0)) d1=$(($(export_attr mv-leg1 io/read_bytes) - r1))
note "data read from the exports during the verify: $d0 and $d1 bytes"
assert_le "$d0" $((M_SIZE / 16)) "bytes read as data from leg 0's export during a checksum verify"
assert_le "$d1" $((M_SIZE / 16)) "bytes read as data from leg 1's export during a checksum verify"
assert_eq "$(head -c "$M_SIZE" "${LEG_IMG[0]}" | sha256sum)" "$sum0" "leg 0 after a verify without --repair"
assert_eq "$(head -c "$M_SIZE" "${LEG_IMG[1]}" | sha256sum)" "$sum1" "leg 1 after a verify without --repair"

step "--range: one without the changed blocks finds none, one with a range finds just it"
mr_log_mark mv
vf_run 0 mv --range $((2 * MiB)):$((3 * MiB))
assert_eq "$(show_attr mv verify/regions_checked)" 3 "regions checked by --range 2M:3M"
assert_eq "$(show_attr mv verify/mismatch_blocks)" 0 "mismatch_blocks in 2M..5M"
assert_eq "$(vf_logged mv)" "" "mismatches logged for 2M..5M"
mr_log_mark mv
vf_run 3 mv --range $((4 * MiB)):$((2 * MiB))
assert_eq "$(show_attr mv verify/mismatch_blocks)" 5 "mismatch_blocks in 4M..6M"
vf_expect_ranges "dst verify --range 4M:2M" "$((5 * MiB + 65536)) 20480" "$(vf_logged mv | cut -d' ' -f1,2)"

step "--abort of a slow verify (--rate 1M); a second verify meanwhile is refused"
bg "$DST" verify mv --rate 1M --wait
VPID=$BG_PID
mr_wait mv verify/state running 5 "the slow verify runs"
bad_input "a second verify" verify -- verify mv
# A leg is not moved while a verify runs: a repair would write the old leg
# behind the migration's copy.
truncate -s 17M "$T_TMP/spare.img" || fail "truncate spare.img"
bad_input "dst replace during a verify" "dst verify is running" -- \
	replace mv "$L1" --disk "$T_TMP/spare.img"
dst_ok verify mv --abort >/dev/null
rc=0
bg_wait "$VPID" || rc=$?
assert_eq "$rc" 1 "exit status of dst verify --wait when aborted"
assert_eq "$(show_attr mv verify/state)" aborted "verify/state after --abort"
p=$(show_attr mv verify/progress)
note "aborted at $p"
[[ $p =~ ^([0-9]+)/16\ regions$ ]] || fail "verify/progress after --abort: '$p'"
assert_le "${BASH_REMATCH[1]}" 15 "regions verified before --abort"
bad_input "--abort with no verify running" verify -- verify mv --abort

step "dst verify --repair --wait: exit 0, every block repaired from $L0"
mr_log_mark mv
vf_run 0 mv --repair
assert_eq "$(show_attr mv verify/state)" "done" "verify/state after --repair"
assert_eq "$(show_attr mv verify/mismatch_blocks)" "$NBAD" "verify/mismatch_blocks with --repair"
assert_eq "$(show_attr mv verify/repaired_blocks)" "$NBAD" "verify/repaired_blocks"
assert_contains "$(show_attr mv verify/source)" "$L0" "verify/source"
logged=$(vf_logged mv)
vf_expect_ranges "dst verify --repair" "$ALL" "$(cut -d' ' -f1,2 <<<"$logged")"
[ -z "$(awk '$5 != "repaired"' <<<"$logged")" ] || fail "a mismatch line of --repair without (repaired)"

step "a third verify finds nothing; storage and legs hold the data with leg 0's change"
mr_log_mark mv
vf_run 0 mv
assert_eq "$(show_attr mv verify/mismatch_blocks)" 0 "mismatch_blocks after the repair"
assert_eq "$(vf_logged mv)" "" "mismatches logged after the repair"
mr_legs_identical "after the repair"
cmp -n "$M_SIZE" "$T_TMP/expect.bin" "${LEG_IMG[1]}" || fail "leg 1 is not the data with leg 0's change"
assert_eq "$(dev_sha "$M_URI")" "$(sha256sum <"$T_TMP/expect.bin" | cut -d' ' -f1)" "the storage's data"

step "bad input: one line, status 1, nothing changed"
bad_input "--range without a length" range -- verify mv --range $((MiB))
bad_input "--range of length 0" range -- verify mv --range 0:0
bad_input "--range past the end" range -- verify mv --range $((15 * MiB)):$((2 * MiB))
bad_input "--range not a number" range -- verify mv --range abc:1M
bad_input "--rate not a number" rate -- verify mv --rate fast
bad_input "--rate negative" rate -- verify mv --rate -5M
bad_input "no such storage" nosuch -- verify nosuch
st_export lin-node 4M
st_create lin linear
st_add lin --remote "$URI"
st_start lin
bad_input "a linear storage" mirror -- verify lin
st_stop lin
assert_eq "$(show_attr mv verify/state)" "done" "mv's verify/state after the bad input"

step "stop; dst verify of the stopped mirror is refused"
assert_eq "$(show_attr mv io/errors)" 0 "io errors on mv"
st_stop mv
bad_input "a stopped storage" running -- verify mv
stop_export mv-leg0
stop_export mv-leg1
stop_export lin-node
echo "PASS"
