#!/usr/bin/env bash
# Reads served straight from the disk's memory (no copy into a server
# buffer): a mem disk's chunks across chunk boundaries with structured and
# simple replies, the io/direct_reads counter, TRIMs and writes racing the
# reads of the same blocks under ASan; a file export's cached pages sent from
# its mapping, and a file cut short under the export. (TLS exports send the
# same borrowed memory: test_tls_export.sh reads and writes them.)
. "$(dirname "$0")/lib.sh"
need nbdcopy fio
need_nbdpy

MiB=1048576

step "8 MiB of random data through a mem export, read back whole"
head -c $((8 * MiB)) /dev/urandom >"$T_TMP/src.bin"
start_export direct-mem mem:16M
MEM_URI=$URI
run_ok "nbdcopy to the export" nbdcopy "$T_TMP/src.bin" "$MEM_URI"
run_ok "nbdcopy from the export" nbdcopy --requests=16 "$MEM_URI" "$T_TMP/back.bin"
cp "$T_TMP/src.bin" "$T_TMP/want.bin"
truncate -s 16M "$T_TMP/want.bin" # the unwritten half reads as zeroes
assert_eq "$(cmp "$T_TMP/back.bin" "$T_TMP/want.bin" && echo same)" same "data read back"
direct=$(show_attr direct-mem io/direct_reads)
reads=$(show_attr direct-mem io/reads)
assert_ge "$direct" 1 "reads served from the disk's memory"
assert_eq "$direct" "$reads" "every read of a mem export served from its memory"

# Offsets and lengths that start and end inside 64 KiB chunks, the largest
# borrowed read (1 MiB) and one past it, and reads reaching into the unwritten
# half; each compared with the source, with both reply styles.
for structured in True False; do
	step "odd reads with structured replies = $structured"
	run_ok "libnbd reads" nbdpy "
import sys
h.set_request_structured_replies($structured)
h.connect_uri('$MEM_URI')
assert h.get_structured_replies_negotiated() == $structured
src = open('$T_TMP/src.bin', 'rb').read() + bytes(8 << 20)
cases = [(0, 1), (65535, 2), (65536 - 100, 65536 + 200), (12345, 1 << 20),
         ((1 << 20) - 7, (1 << 20) + 4096), (3 << 20, 32 << 20 >> 4),
         ((8 << 20) - 4096, 1 << 20), ((16 << 20) - 65537, 65537)]
for off, n in cases:
    got = h.pread(n, off)
    if got != src[off:off + n]:
        sys.exit('mismatch at %d+%d' % (off, n))
"
done

step "TRIMs and writes racing reads of the same blocks"
fio_ok=0
fio_run 60 "$T_TMP/fio.out" --ioengine=nbd --uri="$MEM_URI" --size=4M \
	--time_based --runtime=4 \
	--name=reader --rw=randread --bs=256k --iodepth=16 \
	--name=trimmer --rw=randtrim --bs=64k --iodepth=8 \
	--name=writer --rw=randwrite --bs=96k --iodepth=8 && fio_ok=1
[ "$fio_ok" = 1 ] || tail -20 "$T_TMP/fio.out"
assert_eq "$fio_ok" 1 "fio with reads, trims and writes on the same 4 MiB"
assert_eq "$(grep -c 'err= *0' "$T_TMP/fio.out")" 3 "fio jobs that ran without an error"
pid_alive "$(export_pid direct-mem)" || fail "the mem export died under racing trims"
run_ok "the export still answers" nbdpy "h.connect_uri('$MEM_URI'); h.pread(1 << 20, 0)"

step "a file export: cached pages are sent from its mapping, others read into a buffer"
truncate -s 8M "$T_TMP/disk.img"
start_export direct-file "$T_TMP/disk.img"
FILE_URI=$URI
run_ok "nbdcopy to the file export" nbdcopy "$T_TMP/src.bin" "$FILE_URI"
run_ok "nbdcopy from the file export" nbdcopy "$FILE_URI" "$T_TMP/back2.bin"
assert_eq "$(cmp "$T_TMP/back2.bin" "$T_TMP/src.bin" && echo same)" same "file data read back"
assert_ge "$(show_attr direct-file io/direct_reads)" 1 "file reads sent from the page cache"
# Cut the file to half under the export: the second half is no longer in
# the page cache, so its reads go through a buffer (and read as zeroes past
# the end) and nothing faults; the first half still reads right.
truncate -s 4M "$T_TMP/disk.img"
run_ok "reads across the new end" nbdpy "
h.connect_uri('$FILE_URI')
src = open('$T_TMP/src.bin', 'rb').read()
assert h.pread(1 << 20, 3 << 20) == src[3 << 20:4 << 20], 'first half changed'
assert h.pread(1 << 20, 4 << 20) == bytes(1 << 20), 'past the end is not zeroes'
assert h.pread(65536, (4 << 20) - 4096) == src[(4 << 20) - 4096:4 << 20] + bytes(61440)
"
pid_alive "$(export_pid direct-file)" || fail "the file export died reading past its cut end"

stop_export direct-file
stop_export direct-mem
