#!/usr/bin/env bash
# A storage daemon with a FUSE file and a loop device killed with -9: the
# FUSE file is a dead mount ("Transport endpoint is not connected"), the loop
# device is left over its dead file. `dst start NAME` detaches the dead mount
# and mounts again (data intact through the new file); `dst attach` detaches
# the stale loop device and attaches a new one; `dst stop` cleans up. Killed
# again and not restarted: `dst delete` refuses while the stale loop device
# is there, `dst detach` removes it, then `dst delete` works.
# run.sh: group loop (loop devices: the cleanup of one test must not meet another's)
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
. "$TESTS_DIR/func/lib_fuse.sh"
need_fuse python3 sha256sum

step "a linear storage over two export nodes, FUSE file, loop device"
st_export ka 32M
KA=$URI
st_export kb 32M
KB=$URI
st_create kr linear
st_add kr --remote "$KA"
st_add kr --remote "$KB"
FILE=$T_TMP/kr.dev
track_fuse "$FILE"
st_start kr --fuse "$FILE"
fuse_attach kr --direct-io
OLD_LOOP=$LOOP

step "4 MiB of random data across the node boundary through the loop device, fsync"
head -c $((4 * MiB)) /dev/urandom >"$T_TMP/pattern"
run_ok "dd to $LOOP" dd if="$T_TMP/pattern" of="$LOOP" bs=1M seek=30 oflag=direct conv=fsync status=none
want=$(sha256sum <"$T_TMP/pattern" | cut -d' ' -f1)

step "kill -9 the storage daemon"
kill -KILL "$ST_PID"
wait_gone "$ST_PID" 10 || fail "the daemon survived kill -9"
is_mounted "$FILE" || fail "the dead FUSE mount should still be there"
err=$(stat "$FILE" 2>&1) && fail "stat of the dead FUSE file succeeded"
assert_contains "$err" "Transport endpoint is not connected" "stat of the dead FUSE file"
assert_eq "$(show_attr kr state)" stopped "kr/state after kill -9"
bad_input "delete while the stale loop device is there" "$OLD_LOOP" "dst detach kr" -- delete kr

step "dst start kr: the dead mount is detached, the FUSE file mounted again"
st_start kr
grep -q "detached the dead FUSE mount of 'kr'" "$DST_STATE_DIR/kr.log" || fail "the log does not say the dead mount was detached"
assert_eq "$(stat -c %s "$FILE")" $((64 * MiB)) "size of the FUSE file after the restart"
assert_eq "$(dd if="$FILE" bs=1M skip=30 count=4 status=none | sha256sum | cut -d' ' -f1)" "$want" \
	"the data written before kill -9, read through the new FUSE file"
[ -z "$(show_attr kr loop)" ] || fail "kr/loop shows the stale loop device as attached"
run_fails "reading the stale loop device" dd if="$OLD_LOOP" of=/dev/null bs=4k count=1 iflag=direct status=none

step "dst attach: the stale loop device is detached, a new one attached"
out=$(dst attach kr) || fail "dst attach kr"
note "$out"
assert_contains "$out" "detached $OLD_LOOP (stale)" "dst attach output"
LOOP=$(printf '%s\n' "$out" | tail -1)
track_loop "$LOOP"
assert_eq "$(show_attr kr loop)" "$LOOP" "kr/loop"
assert_eq "$(dd if="$LOOP" bs=1M skip=30 count=4 iflag=direct status=none | sha256sum | cut -d' ' -f1)" "$want" \
	"the data through the new loop device"
[ -z "$(losetup --list --noheadings --output NAME,BACK-FILE | awk -v d="$OLD_LOOP" '$1 == d && $2 == "/"')" ] ||
	fail "the stale loop device $OLD_LOOP is still set up"

step "dst stop, then kill -9 once more and do not restart"
dst_ok stop kr >/dev/null
wait_gone "$ST_PID" 10 || fail "kr still runs"
[ -z "$(loops_over "$FILE")" ] || fail "a loop device is still over $FILE"
! is_mounted "$FILE" || fail "$FILE still mounted after dst stop"
check_log "$DST_STATE_DIR/kr.log"
st_start kr
fuse_attach kr
kill -KILL "$ST_PID"
wait_gone "$ST_PID" 10 || fail "the daemon survived kill -9"
bad_input "delete with the stale loop device" "$LOOP" "dst detach kr" -- delete kr
out=$(dst detach kr) || fail "dst detach kr with the daemon dead"
assert_contains "$out" "detached $LOOP" "dst detach of the stale device"
[ ! -e "$DST_STATE_DIR/kr.loop" ] || fail "kr.loop left after dst detach"
run_ok "umount -l of the dead FUSE mount" umount -l "$FILE"
dst_ok delete kr >/dev/null
[ ! -e "$DST_STATE_DIR/kr.conf" ] || fail "kr.conf left after dst delete"
stop_export ka
stop_export kb
echo "PASS"
