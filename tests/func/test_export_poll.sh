#!/usr/bin/env bash
# The daemon's event loop polls a little before it sleeps once it has
# answered a request (common/ev.c), so that a pipelining client's next
# request finds it awake and its send does not have to wake it. On by
# default (poll/max_us 50): under 4K QD32 its polls catch requests
# (poll/hits), or, on a machine busy with other work, give the CPU way
# (poll/preempted: test_ev_poll shows both apart); an idle daemon does not
# poll at all; DST_POLL_US=0 turns it off, a bad value keeps the default
# with a warning in the log. Data written and read through fio (verified),
# nbdcopy and qemu-io is right either way.
. "$(dirname "$0")/lib.sh"
need fio nbdcopy qemu-io

MiB=1048576
head -c $((8 * MiB)) /dev/urandom >"$T_TMP/src.bin"

# load NAME URI: 4K random writes at QD32 read back and verified, 2 s of 4K
# random reads at QD32, an image copied in and out with nbdcopy, a pattern
# written and checked with qemu-io.
load() {
	local name=$1 uri=$2
	fio_run 120 "$T_TMP/fio-w.$name.out" --name=w --ioengine=nbd --uri="$uri" \
		--rw=randwrite --bs=4k --iodepth=32 --size=16M --offset=16M \
		--verify=crc32c --verify_fatal=1 --do_verify=1 --verify_state_save=0 ||
		{ tail -20 "$T_TMP/fio-w.$name.out" >&2; fail "fio 4K writes verified against $name"; }
	fio_run 120 "$T_TMP/fio-r.$name.out" --name=r --ioengine=nbd --uri="$uri" \
		--rw=randread --bs=4k --iodepth=32 --size=16M --offset=16M \
		--time_based --runtime=2 ||
		{ tail -20 "$T_TMP/fio-r.$name.out" >&2; fail "fio 4K reads against $name"; }
	run_ok "nbdcopy an image to $name" nbdcopy "$T_TMP/src.bin" "$uri"
	run_ok "nbdcopy it back from $name" nbdcopy --requests=16 "$uri" "$T_TMP/back.$name.bin"
	assert_eq "$(cmp -n $((8 * MiB)) "$T_TMP/src.bin" "$T_TMP/back.$name.bin" && echo same)" \
		same "the image read back from $name"
	run_ok "qemu-io pattern on $name" qemu-io -f raw -c 'write -P 0xa5 40M 256k' \
		-c 'read -P 0xa5 40M 256k' -c 'read -P 0xa5 40M 4k' "$uri"
	assert_not_contains "$(cat "$T_TMP/run.out")" "verification failed" "qemu-io's pattern on $name"
}

step "polling on by default: a QD32 client's requests caught by polls"
start_export poll-on mem:64M
ON_URI=$URI
assert_eq "$(show_attr poll-on poll/max_us)" 50 "poll/max_us by default"
load poll-on "$ON_URI"
polls=$(show_attr poll-on poll/polls)
hits=$(show_attr poll-on poll/hits)
preempted=$(show_attr poll-on poll/preempted)
note "polls $polls, hits $hits, preempted $preempted, $(show_attr poll-on poll/ns) ns polling"
assert_ge "$((hits + preempted))" 1 "polls that caught a request (poll/hits) or gave way (poll/preempted)"
assert_ge "$polls" "$((hits > preempted ? hits : preempted))" "polls (every hit and every poll cut short is a poll)"

step "an idle daemon does not poll"
sleep 1
polls0=$(show_attr poll-on poll/polls)
ns0=$(show_attr poll-on poll/ns)
sleep 1
run_ok "nbdinfo" nbdinfo --size "$ON_URI" # a connection, no request
sleep 0.5
assert_eq "$(show_attr poll-on poll/polls)" "$polls0" "polls while idle"
assert_eq "$(show_attr poll-on poll/ns)" "$ns0" "time spent polling while idle"
stop_export poll-on

step "DST_POLL_US=0: no polling, same data"
DST_POLL_US=0 start_export poll-off mem:64M
assert_eq "$(show_attr poll-off poll/max_us)" 0 "poll/max_us with DST_POLL_US=0"
load poll-off "$URI"
assert_eq "$(show_attr poll-off poll/polls)" 0 "polls with polling off"
assert_eq "$(show_attr poll-off poll/hits)" 0 "hits with polling off"
assert_eq "$(show_attr poll-off poll/ns)" 0 "time spent polling with polling off"
stop_export poll-off

step "DST_POLL_US out of range: the default, and a warning"
DST_POLL_US=5000 start_export poll-bad mem:16M
assert_eq "$(show_attr poll-bad poll/max_us)" 50 "poll/max_us with DST_POLL_US=5000"
assert_contains "$(cat "$DST_STATE_DIR/poll-bad.log")" "DST_POLL_US '5000'" "the warning in the log"
stop_export poll-bad

echo "PASS"
