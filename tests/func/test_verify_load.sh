#!/usr/bin/env bash
# dst verify while the storage is in use never takes a write racing the
# comparison for a mismatch. A 2-leg mirror of 32 MiB over file-backed dst
# exports; fio (2 jobs, random writes of 4K..1M at QD32 with crc32c verify)
# writes and reads back 0..16M through the storage for a few seconds, while
# dst verify and then dst verify --repair run over the whole mirror again
# and again: each exits 0, finds no mismatch and repairs nothing; fio ends
# without an error; the legs are identical afterwards and a last verify of
# the quiet mirror finds nothing.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
. "$TESTS_DIR/func/lib_mirror.sh"
. "$TESTS_DIR/func/lib_verify.sh"
need fio nbdinfo
fio --enghelp=nbd >/dev/null 2>&1 || skip "fio has no nbd engine"

step "mirror ml over two 32M exports; fio write+verify in the background"
mr_legs ml 32M 32M
mr_mirror ml
mr_log_mark ml
mr_fio_start "$M_URI" 8 "$T_TMP/fio.out"

step "verify and verify --repair under the load"
n=0
t_end=$(($(date +%s) + 7))
while [ "$(date +%s)" -lt "$t_end" ] && pid_alive "$FIO_PID"; do
	if [ $((n % 2)) -eq 0 ]; then
		vf_run 0 ml
	else
		vf_run 0 ml --repair
		assert_eq "$(show_attr ml verify/repaired_blocks)" 0 "blocks repaired under the load (pass $n)"
	fi
	assert_eq "$(show_attr ml verify/mismatch_blocks)" 0 "mismatch blocks under the load (pass $n)"
	assert_eq "$(show_attr ml verify/regions_checked)" 32 "regions checked (pass $n)"
	n=$((n + 1))
done
note "$n verify passes under the load"
assert_ge "$n" 2 "verify passes while fio ran (one plain, one --repair)"
assert_eq "$(vf_logged ml)" "" "mismatches logged under the load"
mr_fio_wait
assert_ge "$(show_attr ml io/writes)" 100 "writes through ml during the test"

step "quiet: legs identical, a last verify finds nothing"
mr_settle ml
mr_legs_identical "after the load"
vf_run 0 ml
assert_eq "$(show_attr ml verify/mismatch_blocks)" 0 "mismatch blocks after the load"
assert_eq "$(vf_logged ml)" "" "mismatches logged"

step "stop"
assert_eq "$(show_attr ml io/errors)" 0 "io errors on ml"
st_stop ml
stop_export ml-leg0
stop_export ml-leg1
echo "PASS"
