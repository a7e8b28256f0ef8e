#!/usr/bin/env bash
# A bad NAME.conf (written by hand or damaged) is refused by dst and dstd
# alike, with one line naming the file, the line and the key: a NUL byte,
# a key given twice, a value out of range or unknown; a FIFO, a directory
# in its place are refused without being read (dst show of a FIFO used to
# hang for ever). dst start fails and starts no daemon, as does dstd run
# by itself; dst show (with and
# without NAME) returns within its timeout and says what is wrong.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"

GOOD="# written by dst; edit with the dst tool
type = storage
alg = alg_mirror
uuid = 00112233445566778899aabbccddeeff
node = disk start=0 size=16384 mem:8M
node = disk start=16384 size=16384 mem:8192K"

# refused WHAT NEEDLE...: bc.conf is bad; dst start and dst show bc fail
# with one line holding the path and every NEEDLE, in bounded time.
refused() {
	local what=$1 out rc cmd lines n
	shift
	for cmd in start show; do
		rc=0
		out=$(timeout 10 "$DST" "$cmd" bc 2>&1 >/dev/null) || rc=$?
		note "$what: dst $cmd bc -> status $rc: $out"
		[ $rc -ne 124 ] || fail "$what: dst $cmd hung"
		[ $rc -ne 0 ] || fail "$what: dst $cmd succeeded"
		[ $rc -lt 128 ] || fail "$what: dst $cmd died with signal $((rc - 128))"
		lines=$(printf '%s\n' "$out" | grep -c '')
		assert_eq "$lines" 1 "$what: lines of dst $cmd's error"
		assert_contains "$out" "$DST_STATE_DIR/bc.conf" "$what: dst $cmd names the file"
		for n in "$@"; do
			assert_contains "$out" "$n" "$what: dst $cmd's message"
		done
	done
	[ ! -e "$DST_STATE_DIR/bc.pid" ] || fail "$what: a pid file was left by the failed start"
	# dstd itself, as a unit file would run it, refuses it the same way.
	rc=0
	out=$(timeout 10 "$DSTD" --foreground bc 2>&1) || rc=$?
	note "$what: dstd --foreground bc -> status $rc: $out"
	[ $rc -ne 124 ] || fail "$what: dstd hung"
	[ $rc -ne 0 ] || fail "$what: dstd ran with it"
	assert_contains "$out" "$DST_STATE_DIR/bc.conf" "$what: dstd names the file"
	for n in "$@"; do
		assert_contains "$out" "$n" "$what: dstd's message"
	done
	# dst show of everything still shows the good storage, and says
	# what is wrong with the bad one.
	rc=0
	out=$(timeout 10 "$DST" show 2>&1) || rc=$?
	[ $rc -ne 124 ] || fail "$what: dst show (all) hung"
	assert_contains "$out" "ok/alg : alg_linear" "$what: dst show (all) shows the good storage"
	assert_contains "$out" "bc.conf" "$what: dst show (all) reports the bad one"
}
# conf TEXT: write bc.conf (printf format: \0 is a NUL byte)
conf() {
	rm -rf "$DST_STATE_DIR/bc.conf"
	printf "$1" >"$DST_STATE_DIR/bc.conf"
}

step "a good storage beside the bad ones; the good bc config starts"
st_create ok linear
st_add ok --disk mem:4M
printf '%s\n' "$GOOD" >"$DST_STATE_DIR/bc.conf"
st_start bc
st_stop bc

step "bad contents"
conf "$GOOD\nregion-size = 1M\0\nregion-size = 0\n"
refused "a NUL byte" "line 7" "NUL byte"
conf "$GOOD\nalg = alg_linear\n"
refused "a key given twice" "line 7" "alg given twice (first on line 3)"
conf "$GOOD\nregion-size = 0\n"
refused "region-size = 0" "line 7" "region-size '0'" "power of two"
conf "$GOOD\nresync-rate = 0\n"
refused "resync-rate = 0" "line 7" "resync-rate '0'"
conf "$GOOD\nio-timeout = forever\n"
refused "io-timeout not a number" "line 7" "io-timeout 'forever'"
conf "${GOOD/alg_mirror/alg_raid5}\n"
refused "an unknown algorithm" "line 3" "alg 'alg_raid5'"
conf "${GOOD/uuid = 00/uuid = zz}\n"
refused "a bad uuid" "line 4" "uuid 'zz"

step "not a regular file"
rm -f "$DST_STATE_DIR/bc.conf"
mkfifo "$DST_STATE_DIR/bc.conf"
refused "a FIFO" "not a regular file (a FIFO)"
rm -f "$DST_STATE_DIR/bc.conf"
mkdir "$DST_STATE_DIR/bc.conf"
refused "a directory" "not a regular file (a directory)"
rmdir "$DST_STATE_DIR/bc.conf"
ln -s /dev/zero "$DST_STATE_DIR/bc.conf"
refused "a symlink to a device" "not a regular file (a device)"
rm -f "$DST_STATE_DIR/bc.conf"

step "and good again"
printf '%s\n' "$GOOD" >"$DST_STATE_DIR/bc.conf"
st_start bc
st_stop bc
