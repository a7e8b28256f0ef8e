#!/usr/bin/env bash
# FLUSH and FUA reach the file: bytes written through NBD are in the backing
# file, and once a FLUSH (or a FUA write) is answered their pages in the
# page cache are clean, i.e. written to the disk (checked with cachestat(2)).
. "$(dirname "$0")/lib.sh"
need qemu-io

MiB=1048576
CACHESTAT="python3 $TESTS_DIR/tools/cachestat.py"

# dirty OFF LEN: dirty + writeback pages of the backing file in that range.
dirty() {
	local out
	out=$($CACHESTAT "$IMG" "$1" "$2") || return $?
	set -- $out
	echo $(($2 + $3))
}

IMG=$T_TMP/flush.img
truncate -s 64M "$IMG"
start_export flush "$IMG"

step "qemu-io write + flush: the bytes are in the backing file"
run_ok "qemu-io write + flush" qemu-io -f raw -c "write -P 0xa5 1M 1M" -c flush "$URI"
python3 -c 'import sys; d = open(sys.argv[1], "rb").read()[1 << 20:2 << 20]; sys.exit(d != b"\xa5" * (1 << 20))' "$IMG" ||
	fail "bytes written and flushed are not in the backing file"
assert_ge "$(show_attr flush io/flushes)" 1 "io/flushes after qemu-io flush"

have_cachestat=1
$CACHESTAT "$IMG" >/dev/null 2>&1 || { [ $? -eq 77 ] && have_cachestat=0; }
if [ $have_cachestat = 0 ]; then
	note "this kernel has no cachestat(2): skipping the page-cache checks"
else
	step "without FLUSH, written pages are dirty (control: the check can tell)"
	# Our raw client: unlike qemu-io it does not flush when it disconnects.
	ok=0
	for _ in 1 2 3; do
		run_ok "raw write" nbd_raw 127.0.0.1 "$PORT" write:8M:1M:0x11
		d=$(dirty $((8 * MiB)) $MiB)
		note "dirty pages in [8M, 9M) after a plain write: $d"
		[ "$d" -gt 0 ] && { ok=1; break; }
	done
	[ $ok = 1 ] || fail "pages never dirty after a plain write: cannot check durability here"

	step "a FUA write is on disk when answered"
	run_ok "raw FUA write" nbd_raw 127.0.0.1 "$PORT" write:16M:1M:0x22:fua
	d=$(dirty $((16 * MiB)) $MiB)
	note "dirty pages in [16M, 17M) after a FUA write: $d"
	assert_eq "$d" 0 "dirty pages after a FUA write"
	run_ok "qemu-io write -f" qemu-io -f raw -c "write -f -P 0x33 24M 1M" "$URI"
	assert_eq "$(dirty $((24 * MiB)) $MiB)" 0 "dirty pages after qemu-io write -f"

	step "FLUSH: every dirty page of the file is written"
	run_ok "raw write" nbd_raw 127.0.0.1 "$PORT" write:32M:2M:0x44
	flushes=$(show_attr flush io/flushes)
	run_ok "raw flush" nbd_raw 127.0.0.1 "$PORT" flush
	assert_eq "$(dirty 0 0)" 0 "dirty pages of the whole file after FLUSH"
	assert_eq "$(show_attr flush io/flushes)" $((flushes + 1)) "io/flushes counts the FLUSH"
fi

step "the data of every write is in the file"
python3 - "$IMG" "$have_cachestat" <<'EOF' || fail "backing file content differs"
import sys
d = open(sys.argv[1], "rb").read()
M = 1 << 20
want = {1: 0xa5, 8: 0x11, 16: 0x22, 24: 0x33, 32: 0x44, 33: 0x44}
if sys.argv[2] != "1":
    want = {1: 0xa5}
for mb, b in want.items():
    if d[mb * M:(mb + 1) * M] != bytes([b]) * M:
        sys.exit("MiB %d is not 0x%02x" % (mb, b))
EOF

step "FLUSH and FUA on a mem: export are accepted too"
start_export flush-mem mem:16M
run_ok "qemu-io on mem" qemu-io -f raw -c "write -f -P 0x66 0 64k" -c flush -c "read -P 0x66 0 64k" "$URI"
run_ok "raw on mem" nbd_raw 127.0.0.1 "$PORT" write:64k:64k:0x67:fua flush read:64k:64k:0x67
stop_export flush-mem
stop_export flush
echo "PASS"
