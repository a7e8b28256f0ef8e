#!/usr/bin/env bash
# The ublk command line, on a host whatever its kernel: bad --ublk,
# --ublk-queues, --ublk-depth values and contradictions each give one line
# and change nothing; -f /dev/ublkbN is saved as ublk = N, and --no-ublk and
# `dst detach --ublk` forget it; a start that fails keeps the config as it
# was (no new ublk keys); `dst start --ublk` where the kernel has no
# ublk fails with the line that says to load ublk_drv, and the config is as
# it was; `dst attach --ublk` of a stopped storage says it is not running.
# Then what dst stop and dst detach now see besides mounts: a process that
# has the storage's loop device open is named, and stop is refused until it
# has closed it, while one that has it open only for a moment does not
# stop it. (The ublk device itself is tested in the VM, tests/vm.)
# run.sh: group loop (loop devices: the cleanup of one test must not meet another's)
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
. "$TESTS_DIR/func/lib_fuse.sh"

conf_ublk() { grep '^ublk' "$DST_STATE_DIR/ub.conf" || true; }

step "storage ub: alg_linear over a local 16M disk; an export ex"
truncate -s $((16 * MiB + 4096)) "$T_TMP/ub0.img" || fail "truncate"
st_create ub linear
st_add ub --disk "$T_TMP/ub0.img"
st_export ex 16M

step "bad values and contradictions: one line each, nothing changed"
bad_input "a word as ID" -- start ub --ublk=x
assert_contains "$BAD_ERR" "--ublk 'x': expected auto or a device number from 0 to 1048575" "--ublk=x"
bad_input "an ID past the range" "--ublk" "0 to 1048575" -- start ub --ublk 1048576
bad_input "0 queues" "--ublk-queues" "1 to 64" -- start ub --ublk --ublk-queues 0
bad_input "65 queues" "--ublk-queues" "1 to 64" -- start ub --ublk=2 --ublk-queues=65
bad_input "depth 0" "--ublk-depth" "1 to 1024" -- start ub --ublk-depth 0 --ublk
bad_input "depth 1025" "--ublk-depth" "1 to 1024" -- start ub --ublk --ublk-depth 1025
bad_input "--ublk with --no-ublk" "--ublk and --no-ublk contradict" -- start ub --ublk 3 --no-ublk
bad_input "queues of a storage without ublk" "--ublk-queues" "not served as a ublk device" -- start ub --ublk-queues 2
bad_input "-f with a bad ublk path" "/dev/ublkbN" "0 to 1048575" -- start ub -f /dev/ublkbx
bad_input "-f /dev/ublkbN with --ublk" "contradict" -- start ub -f /dev/ublkb2 --ublk 3
bad_input "two names" "expected exactly one NAME" -- start ub --ublk 3 other
bad_input "--ublk on an export" "export node, not a storage" -- start ex --ublk
bad_input "attach --ublk, stopped" "'ub' is not running" "dst start ub --ublk" -- attach ub --ublk
bad_input "attach --ublk --direct-io" "--direct-io is for the loop device" -- attach ub --ublk --direct-io
bad_input "attach: depth without --ublk" "--ublk-depth goes with --ublk" -- attach ub --ublk-depth 8
bad_input "attach: bad ID" "--ublk '-1'" -- attach ub --ublk=-1
bad_input "detach --ublk, none" "'ub' has no ublk device" -- detach ub --ublk
bad_input "attach --ublk of an export" "not a storage" -- attach ex --ublk 1
[ -z "$(conf_ublk)" ] || fail "ublk keys in ub.conf after refused commands: $(conf_ublk)"

step "-f /dev/ublkbN (the seed form) saves ublk = N; dst detach --ublk forgets it"
dst_ok -n ub -f /dev/ublkb5 >/dev/null
assert_eq "$(conf_ublk)" "ublk = 5" "ub.conf after dst -n ub -f /dev/ublkb5"
out=$(dst detach ub --ublk) || fail "dst detach ub --ublk (stopped, saved)"
assert_contains "$out" "'ub' will not be a ublk device at its starts" "dst detach --ublk"
[ -z "$(conf_ublk)" ] || fail "ublk keys left after dst detach --ublk: $(conf_ublk)"

step "a start that fails (its disk gone) leaves the config without the new ublk keys"
mv "$T_TMP/ub0.img" "$T_TMP/ub0.away" || fail "mv"
before=$(conf_md5 ub)
run_fails "dst start ub --ublk 3 with its disk gone" "$DST" start ub --ublk 3 --ublk-queues 2 --ublk-depth 64
assert_eq "$(conf_md5 ub)" "$before" "ub.conf's md5 after the failed start"
mv "$T_TMP/ub0.away" "$T_TMP/ub0.img" || fail "mv"

step "dst start --ublk: where the kernel has no ublk, one line and the config as it was"
# Each form names storage ub and device 3 (or auto): it reaches the
# daemon, which serves it or refuses it, never a complaint about the NAME.
for form in "ub --ublk 3" "--ublk 3 ub" "ub --ublk" "--ublk ub" "ub --ublk=3 --ublk-queues 2 --ublk-depth 64"; do
	want=3
	case $form in *"--ublk 3"* | *"--ublk=3"*) ;; *) want=auto ;; esac
	before=$(conf_md5 ub)
	rc=0
	# shellcheck disable=SC2086 # the form's words
	out=$("$DST" start $form 2>"$T_TMP/start.err") || rc=$?
	check_stderr "$T_TMP/start.err" "dst start $form"
	err=$(cat "$T_TMP/start.err")
	if [ $rc -ne 0 ]; then
		[ ! -e /dev/ublk-control ] || fail "dst start $form failed with /dev/ublk-control there: $err"
		assert_contains "$err" "modprobe ublk_drv" "dst start $form without ublk"
		assert_eq "$(grep -c '' <<<"$err")" 1 "lines of dst start $form's error"
		assert_eq "$(conf_md5 ub)" "$before" "ub.conf's md5 after the failed dst start $form"
		note "dst start $form: $err"
		continue
	fi
	track_export ub
	assert_eq "$(conf_ublk | head -1)" "ublk = $want" "ub.conf after dst start $form"
	dev=$(show_attr ub ublk_device)
	if [ -n "$dev" ]; then
		assert_contains "$out" "  ublk device $dev" "what dst start $form printed"
	else
		# The daemon side of ublk is not in this dstd: it ignores the key.
		[ ! -e /dev/ublk-control ] || fail "dst start $form: no ub/ublk_device with /dev/ublk-control there"
		note "dst start $form: saved ($want); this dstd has no ublk and serves ub without it"
	fi
	case $form in *--ublk-queues*)
		assert_contains "$(conf_ublk)" "ublk-queues = 2" "ub.conf after $form"
		assert_contains "$(conf_ublk)" "ublk-depth = 64" "ub.conf after $form"
		;;
	esac
	st_stop ub
done

step "a plain dst start keeps the saved ublk; --no-ublk forgets it and its queues"
dst_ok -n ub -f /dev/ublkb3 >/dev/null
printf 'ublk-queues = 2\nublk-depth = 64\n' >>"$DST_STATE_DIR/ub.conf"
before=$(conf_md5 ub)
rc=0
"$DST" start ub >/dev/null 2>"$T_TMP/start.err" || rc=$?
check_stderr "$T_TMP/start.err" "dst start ub"
if [ $rc -ne 0 ]; then
	assert_contains "$(cat "$T_TMP/start.err")" "ublk" "dst start ub (ublk = 3 saved) failed"
else
	track_export ub
	st_stop ub
fi
assert_eq "$(conf_md5 ub)" "$before" "ub.conf after a plain dst start"
st_start ub --no-ublk
[ -z "$(conf_ublk)" ] || fail "ublk keys left after dst start --no-ublk: $(conf_ublk)"
if [ ! -e /dev/ublk-control ]; then
	bad_input "attach --ublk, running: the daemon's answer" "'ub'" -- attach ub --ublk 9
	note "(that answer is the daemon's: no ublk in this kernel, or no ublk in this dstd)"
fi
st_stop ub

step "dst stop and dst detach name a process that has the loop device open"
if [ "$(id -u)" != 0 ] || [ ! -c /dev/fuse ] || [ ! -e /dev/loop-control ] || ! command -v losetup >/dev/null; then
	note "skipped: needs root, FUSE and loop devices"
	exit 0
fi
FILE=$T_TMP/ub.dev
track_fuse "$FILE"
st_start ub --fuse "$FILE"
fuse_attach ub
bg sleep 300 3<"$LOOP" # not stdin: a background job's is /dev/null
HOLDER=$BG_PID
bad_input "stop while open" "is open by sleep (pid $HOLDER); stop it first" "$LOOP" -- stop ub
bad_input "detach while open" "is open by sleep (pid $HOLDER)" -- detach ub
pid_alive "$ST_PID" || fail "the daemon of ub is gone after the refused stop"
kill_pid "$HOLDER"
# One that only looks for a moment (udev's blkid after a change) does not
# make stop fail: it looks again for up to a second.
bg sleep 0.3 3<"$LOOP"
st_stop ub
[ -z "$(loops_over "$FILE")" ] || fail "a loop device is left over $FILE after dst stop"
echo "PASS: $TEST_NAME"
