#!/usr/bin/env bash
# test_storage_fencing.sh - a request timeout never lets a resent write be
# overtaken by the old copy of it:
#  1. a dst export node (it fences): SIGSTOP of the export with a write in
#     flight and --request-timeout 2; the storage reconnects, the export
#     (continued) settles the storage's old connection before it answers the
#     new one; a newer write and a flush afterwards survive.
#  2. an nbdkit node (no fencing) whose next write stalls 6 s, with
#     --request-timeout 2: the storage does not reconnect a live connection
#     (a resend could be overtaken), the write waits and completes, and a
#     newer write after it survives the old one's landing time. dst show says
#     which nodes fence.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
need qemu-io nbdkit

step "a linear storage over a dst export (fences) and an nbdkit eval node (does not)"
st_export f0 8M
F0_URI=$URI F0_PID=$PID F0_IMG=$IMG
export KDISK=$T_TMP/k.img KSTALL=$T_TMP/stall
truncate -s $((8 * MiB + 4096)) "$KDISK"
# The next write after $KSTALL appears sleeps 6 s (once).
st_nbdkit eval get_size="echo $((8 * MiB + 4096))" \
	pread='dd if=$KDISK iflag=skip_bytes,count_bytes skip=$4 count=$3 status=none' \
	pwrite='if [ -e $KSTALL ]; then rm -f $KSTALL; sleep 6; fi; dd of=$KDISK oflag=seek_bytes conv=notrunc seek=$4 status=none'
st_create fen linear --request-timeout 2
st_add fen --remote "$F0_URI"
st_add fen --remote "$NBDKIT_URI"
st_start fen
FEN=$ST_URI
assert_eq "$(show_attr fen n-0/fencing)" yes "fencing of the dst export node"
assert_contains "$(show_attr fen n-16384/fencing)" "no (not a dst export" "fencing of the nbdkit node"

step "1. SIGSTOP of the export with a write in flight; the newer write survives"
qio "$FEN" "write -P 0x11 0 64k" "flush"
kill -STOP "$F0_PID"
bg sh -c 'qemu-io -f raw -c "write -P 0xaa 0 64k" "$1" >"$2" 2>&1' sh "$FEN" "$T_TMP/w1.out"
W1=$BG_PID
sleep 3.5 # past the request timeout: the storage drops the connection, dials again
kill -CONT "$F0_PID"
bg_wait "$W1" || fail "the stalled write failed"
assert_contains "$(cat "$T_TMP/w1.out")" "wrote 65536/65536" "the stalled write"
qio "$FEN" "write -P 0xbb 0 64k" "flush"
sleep 1
qio "$FEN" "read -P 0xbb 0 64k"
assert_file_pattern "$F0_IMG" 0 65536 0xbb "the newer write on the export's disk"
assert_ge "$(show_attr fen n-0/reconnects)" 1 "the storage reconnected to the export"
assert_contains "$(cat "$DST_STATE_DIR/fen.log")" "no reply for 2 s" "the request timeout"
# The export let the storage's new connection go on only once the old one
# was gone: it read its end (disconnected), or fenced it and waited for its
# requests in the disk ("settled"). Which of the two depends on what the
# export reads first after SIGCONT; either way the old connection's end
# comes before the new one is ready.
old_end=$(grep -nE "client [^ ]+: (disconnected|fenced)" "$DST_STATE_DIR/f0.log" | tail -1 | cut -d: -f1)
new_ready=$(grep -n "ready (read-write, structured replies, base:allocation)" "$DST_STATE_DIR/f0.log" |
	tail -1 | cut -d: -f1)
[ -n "$old_end" ] && [ -n "$new_ready" ] || fail "no end of the old connection or no new one in f0.log"
assert_ge "$new_ready" "$old_end" "the new connection is ready after the old one ended (f0.log lines)"

step "2. a stalled write on the nbdkit node: waited for, not resent; the newer write survives"
B=$((8 * MiB)) # the nbdkit node's first byte in the storage
r0=$(show_attr fen n-16384/reconnects)
touch "$KSTALL"
bg sh -c 'qemu-io -f raw -c "write -P 0xcc $2 64k" "$1" >"$3" 2>&1' sh "$FEN" "$B" "$T_TMP/w2.out"
W2=$BG_PID
sleep 3.5
pid_alive "$W2" || fail "the stalled write finished early: it was resent instead of waited for"
bg_wait "$W2" || fail "the stalled write failed"
assert_contains "$(cat "$T_TMP/w2.out")" "wrote 65536/65536" "the stalled write"
qio "$FEN" "write -P 0xdd $B 64k" "flush"
sleep 3 # past when a resent write's old copy would have landed
qio "$FEN" "read -P 0xdd $B 64k"
assert_file_pattern "$KDISK" 0 65536 0xdd "the newer write on the nbdkit node's disk"
assert_eq "$(show_attr fen n-16384/reconnects)" "$r0" "reconnects of the nbdkit node"
assert_eq "$(show_attr fen n-16384/stalls)" 1 "stalls counted on the nbdkit node"
assert_contains "$(cat "$DST_STATE_DIR/fen.log")" "not reconnecting: the node does not fence" \
	"the log says why it waits"

step "stop"
st_stop fen
stop_export f0
echo "PASS: $TEST_NAME"
