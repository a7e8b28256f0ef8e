#!/usr/bin/env bash
# Reads of a storage's local nodes sent from the nodes' own memory (lent
# through the storage), and the node operations that must not wait for them.
#
# alg_linear over two local files of random data (8M + 56M):
# - nbdcopy of the whole device (4 connections x 64 requests) in a loop while
#   the second node is suspended and resumed 4 times: every copy is
#   byte-identical to the two files (reads lent when a suspend came are
#   answered from a copy in their buffers), each suspend answers "drained",
#   io/direct_reads shows the reads were lent, nothing stays in flight on
#   either node afterwards (a lent read never given back would).
# - a client that sends 1 MiB reads of the second node and never reads the
#   replies: its reads are lent and stay unsent (in flight on the node), yet
#   dst suspend of that node returns within seconds, drained.
# - resume --disk onto a copy of the node, under the copy loop.
# - dst remove of the last node while that deaf client holds reads of it:
#   the node is closed within seconds (the daemon lets its file go), the
#   device is the first node; ASan clean (a node closed while its memory
#   was still being sent would show as a read of unmapped memory).
# - alg_stripe over two local files: 1 MiB reads spanning 64K chunks go out
#   as pieces of both nodes' page cache (io/direct_reads), bytes checked.
# - alg_mirror over two local files: reads lent by the leg that answers,
#   bytes checked; a leg suspended and resumed under the copy loop, legs
#   identical after the resync.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
. "$TESTS_DIR/func/lib_limits.sh"
. "$TESTS_DIR/func/lib_mirror.sh"
need nbdcopy

A=$T_TMP/a.img B=$T_TMP/b.img
head -c $((8 * MiB)) /dev/urandom >"$A"
head -c $((56 * MiB)) /dev/urandom >"$B"
cat "$A" "$B" >"$T_TMP/want.bin"
N2=n-16384 # the second node's name: its first sector

step "storage lr: alg_linear over two local files"
PORT=$(free_port)
st_create lr linear
# The files are images whose data the storage keeps: --import (no label).
st_add lr --disk "$A" --import
st_add lr --disk "$B" --import
st_start lr --listen "127.0.0.1:$PORT"
LR=nbd://127.0.0.1:$PORT
assert_eq "$(dev_size "$LR")" $((64 * MiB)) "size"
assert_eq "$(dev_sha "$LR")" "$(sha256sum <"$T_TMP/want.bin" | cut -d' ' -f1)" "device = the two files"

# copy_loop N: N nbdcopy passes of the device, each compared with want.bin;
# exits non-zero at the first difference or failure.
copy_loop() {
	local i
	for i in $(seq "$1"); do
		nbdcopy --connections=4 --requests=64 "$LR" "$T_TMP/copy.bin" ||
			{ echo "nbdcopy pass $i failed"; return 1; }
		cmp "$T_TMP/copy.bin" "$T_TMP/want.bin" || { echo "pass $i differs"; return 1; }
	done
}

# is_open FILE: the storage daemon has FILE open.
is_open() { grep -q "$1" <<<"$(ls -l "/proc/$ST_PID/fd" 2>/dev/null)"; }

step "suspend and resume $N2 four times while the device is copied"
d0=$(show_attr lr io/direct_reads)
bg copy_loop 6
COPY=$BG_PID
for i in 1 2 3 4; do
	sleep 0.2
	out=$(timeout 10 "$DST" suspend lr $N2) || fail "dst suspend, round $i"
	assert_contains "$out" "suspended $N2 of 'lr': drained" "suspend round $i"
	sleep 0.2
	dst resume lr $N2 >/dev/null || fail "dst resume, round $i"
done
bg_wait "$COPY" || fail "the copies under suspend/resume"
d1=$(show_attr lr io/direct_reads)
assert_ge "$((d1 - d0))" 100 "reads lent by the local nodes during the copies"
for n in n-0 $N2; do
	assert_eq "$(show_attr lr "$n/io/inflight")" 0 "$n/io/inflight after the load"
done

# deaf_reads: a client sends 40 reads of 1 MiB, all on the second node (the
# first at offset 0 is on n-0), never reads the replies, holds on for 8 s.
deaf_reads() {
	bg nbd_load 127.0.0.1 "$PORT" deaf 1 40 1024K 8 >"$T_TMP/deaf.out"
	DEAF=$BG_PID
	for _ in $(seq 50); do
		[ "$(show_attr lr $N2/io/inflight)" -gt 0 ] && return 0
		sleep 0.1
	done
	fail "the deaf client's reads are not in flight on $N2"
}

step "a client that never reads its replies does not hold up a suspend"
deaf_reads
t0=$(date +%s%3N)
out=$(timeout 10 "$DST" suspend lr $N2) || fail "dst suspend with unsent lent reads"
t1=$(date +%s%3N)
assert_contains "$out" "suspended $N2 of 'lr': drained" "dst suspend's answer"
[ $((t1 - t0)) -lt 4000 ] || fail "dst suspend took $((t1 - t0)) ms (the deaf client holds for 8 s)"
assert_eq "$(show_attr lr $N2/io/inflight)" 0 "$N2/io/inflight once suspended"
dst resume lr $N2 >/dev/null || fail "dst resume"
kill_pid "$DEAF"

step "resume --disk onto a copy of the node, under the copy loop"
cp "$B" "$T_TMP/b2.img"
bg copy_loop 3
COPY=$BG_PID
sleep 0.2
timeout 10 "$DST" suspend lr $N2 >/dev/null || fail "dst suspend before the move"
dst resume lr $N2 --disk "$T_TMP/b2.img" >/dev/null || fail "dst resume --disk"
bg_wait "$COPY" || fail "the copies across the move"
assert_eq "$(show_attr lr $N2/type)" "L: $T_TMP/b2.img" "$N2/type"

step "remove the last node while a client that never reads holds reads of it"
deaf_reads
timeout 10 "$DST" remove lr $N2 >/dev/null || fail "dst remove of the last node"
for _ in $(seq 40); do
	is_open b2.img || break
	sleep 0.1
done
is_open b2.img && fail "the removed node's file is still open 4 s later"
kill_pid "$DEAF"
assert_eq "$(dev_size "$LR")" $((8 * MiB)) "size after the remove"
nbdcopy "$LR" "$T_TMP/copy.bin" || fail "nbdcopy after the remove"
assert_eq "$(cmp "$T_TMP/copy.bin" "$A" && echo same)" same "the device is the first node"
assert_eq "$(show_attr lr n-0/io/inflight)" 0 "n-0/io/inflight at the end"
st_stop lr

step "alg_stripe over two local files (chunk 64K): 1 MiB reads lent piece by piece"
head -c $((16 * MiB)) /dev/urandom >"$T_TMP/s1.img"
head -c $((16 * MiB)) /dev/urandom >"$T_TMP/s2.img"
python3 - "$T_TMP/s1.img" "$T_TMP/s2.img" "$T_TMP/swant.bin" <<'PY'
import sys
a, b = open(sys.argv[1], 'rb').read(), open(sys.argv[2], 'rb').read()
c = 65536
with open(sys.argv[3], 'wb') as out:
    for i in range(0, len(a), c):
        out.write(a[i:i + c] + b[i:i + c])
PY
st_create ls stripe --chunk 64K
st_add ls --disk "$T_TMP/s1.img" --import
st_add ls --disk "$T_TMP/s2.img" --import
st_start ls
cat "$T_TMP/s1.img" "$T_TMP/s2.img" >/dev/null # in the page cache: lendable
d0=$(show_attr ls io/direct_reads)
nbdcopy --request-size=$MiB "$ST_URI" "$T_TMP/scopy.bin" || fail "nbdcopy of the stripe"
assert_eq "$(cmp "$T_TMP/scopy.bin" "$T_TMP/swant.bin" && echo same)" same \
	"the stripe read whole = its chunks interleaved"
d1=$(show_attr ls io/direct_reads)
assert_ge "$((d1 - d0))" 16 "1 MiB stripe reads sent from the nodes' page cache"
for n in n-0 n-32768; do
	assert_eq "$(show_attr ls "$n/io/inflight")" 0 "stripe $n/io/inflight after the copy"
done
st_stop ls

step "alg_mirror over two local files: reads lent by the leg that answers them"
truncate -s 16M "$T_TMP/m0.img" "$T_TMP/m1.img"
st_create lm mirror
st_add lm --disk "$T_TMP/m0.img"
st_add lm --disk "$T_TMP/m1.img"
st_start lm
LM=$ST_URI
M_SIZE=$(show_attr lm bytes)
LEG_IMG=("$T_TMP/m0.img" "$T_TMP/m1.img")
mr_leg_nodes lm 2
mr_settle lm
head -c "$M_SIZE" /dev/urandom >"$T_TMP/mwant.bin"
nbdcopy "$T_TMP/mwant.bin" "$LM" || fail "nbdcopy into the mirror"
cat "$T_TMP/m0.img" "$T_TMP/m1.img" >/dev/null # in the page cache: lendable
d0=$(show_attr lm io/direct_reads)
nbdcopy --request-size=$MiB "$LM" "$T_TMP/mcopy.bin" || fail "nbdcopy from the mirror"
assert_eq "$(cmp "$T_TMP/mcopy.bin" "$T_TMP/mwant.bin" && echo same)" same "the mirror read back"
d1=$(show_attr lm io/direct_reads)
assert_ge "$((d1 - d0))" 8 "mirror reads sent from a leg's page cache"
# copy_loop reads $LR against want.bin: point them at the mirror.
LR=$LM
cp "$T_TMP/mwant.bin" "$T_TMP/want.bin"
bg copy_loop 4
COPY=$BG_PID
sleep 0.2
out=$(timeout 10 "$DST" suspend lm "${LEG_NODE[1]}") || fail "dst suspend of a mirror leg"
assert_contains "$out" "drained" "dst suspend of a mirror leg"
sleep 0.2
dst resume lm "${LEG_NODE[1]}" >/dev/null || fail "dst resume of the mirror leg"
bg_wait "$COPY" || fail "copies of the mirror across a leg's suspend"
mr_settle lm
mr_legs_identical "after the leg's resume"
for n in "${LEG_NODE[@]}"; do
	assert_eq "$(show_attr lm "$n/io/inflight")" 0 "mirror $n/io/inflight at the end"
done
st_stop lm
echo "PASS"
