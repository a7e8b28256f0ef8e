#!/usr/bin/env bash
# A mirror leg whose disk fails for a while (run inside the VM by
# tests/vm/run; make vm-check): two dst exports of block devices, leg 1's
# under dm-flakey. An export writes a block device through the page cache,
# so a write the disk cannot take is still acknowledged: the error comes
# back at the next FLUSH (fdatasync), and the mirror must take that as the
# leg's failure. Under fio with verify (and FLUSHes), flakey errors all IO
# of leg 1 for a few seconds: the leg is marked dead, no error reaches the
# client, and once the disk works again the leg is taken back and resynced.
# Writes that leg 1 had acknowledged before the fault but not yet flushed
# (written, then left alone long enough for the bitmap sweep) must be on
# both disks at the end too. Then the same just before a clean stop: the
# stop's FLUSH of every leg fails on leg 1, and the next start resyncs it.
# Last, the two disks, read under dst, are equal.
# (dm-flakey's drop_writes mode, which loses writes silently and still
# answers FLUSH, is no test for a mirror: nothing can notice it short of
# reading the legs back, dst verify.)
. "$(dirname "$0")/../func/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
. "$TESTS_DIR/func/lib_mirror.sh"
. "$TESTS_DIR/func/lib_fuse.sh"
. "$TESTS_DIR/vm/lib_dm.sh"
need_dm linear flakey
need fio cmp blockdev
need_nbdpy

DATA=$((32 * MiB + 4096)) # 32 MiB of data and the leg header
SECTORS=$((DATA / 512))
dm_carve f0 "$DATA"
dm_carve f1 "$DATA"
# flakey TABLE-TAIL: leg 1's disk reloaded with a flakey table: "0 3600"
# (up for an hour) or "0 0 3600" (every IO fails, for an hour).
flakey() {
	local out
	# --nolockfs: a plain suspend writes back the device's page cache
	# first, which would flush what this test leaves unflushed on purpose.
	out=$({ dmsetup suspend --nolockfs --noflush --noudevsync f1-fl &&
		dmsetup load f1-fl --table "0 $SECTORS flakey /dev/mapper/f1 $1" &&
		dmsetup resume --noudevsync f1-fl; } 2>&1) || fail "dmsetup reload of f1-fl ($1): $out"
}
dm_make f1-fl "0 $SECTORS flakey /dev/mapper/f1 0 3600 0"

step "a mirror over two exports of block devices, leg 1's under dm-flakey"
start_export m-leg0 /dev/mapper/f0
LEG_EXPORT=(m-leg0) LEG_URI=("$URI") LEG_PORT=("$PORT")
start_export m-leg1 /dev/mapper/f1-fl
LEG_EXPORT+=(m-leg1) LEG_URI+=("$URI") LEG_PORT+=("$PORT")
mr_mirror fm

step "writes acknowledged but not flushed, then the bitmap swept clean"
# libnbd, which sends no FLUSH at the end (qemu-io would).
nbdpy "h.connect_uri('$M_URI')
h.pwrite(b'\x5a' * $((2 * MiB)), $((20 * MiB)))
h.shutdown()" || fail "unflushed writes through $M_URI"
mr_wait fm bitmap/dirty 0 20 "the sweep after the unflushed writes"

step "leg 1's disk fails every IO; fio with verify (and FLUSHes) through the mirror"
mr_log_mark fm
flakey "0 0 3600"
note "leg 1's disk: every IO fails"
mr_fio_start "$M_URI" 18 "$T_TMP/fio.out" --fsync=16
# Its header still reads back (from the export's page cache), so the leg
# may be taken back at once and fail again at the next FLUSH: health flips
# between AD and AS faster than dst show can be polled here; the log says.
mr_wait_log fm "mirror: leg ${LEG_NODE[1]} .*failed \(Input/output error\)" 60 "leg 1 failed"
mr_fio_alive
sleep 4
note "leg 1 failed $(tail -n +$((MR_LOG_MARK + 1)) "$DST_STATE_DIR/fm.log" | grep -c "leg ${LEG_NODE[1]} .*failed") times while its disk failed"
flakey "0 3600 0"
note "leg 1's disk works again"
mr_wait fm health AA 60 "leg 1 resynced once its disk works"
mr_wait_log fm "mirror: leg ${LEG_NODE[1]} in sync again" 10 "the log says leg 1 was resynced"
note "regions copied: $(mr_copied fm)"
mr_fio_wait
assert_eq "$(show_attr fm io/errors)" 0 "errors the client saw"
mr_settle fm

step "a clean stop right after unflushed writes while leg 1's disk fails: the next start resyncs"
# The stop sends a FLUSH to every leg before it calls the mirror clean: leg
# 1's fails, so the bitmap keeps the regions and leg 1 is recorded as out
# of sync on leg 0. (If the once-a-second sweep's FLUSH fails first, the
# leg is dead already: the same outcome.) Without that FLUSH the stop
# marked the mirror clean and leg 1's disk kept its old data.
flakey "0 0 3600"
mr_log_mark fm
nbdpy "h.connect_uri('$M_URI')
h.pwrite(b'\xa5' * $((1 * MiB)), $((4 * MiB)))
h.shutdown()" || fail "unflushed writes through $M_URI before the stop"
dst_ok stop fm >/dev/null
wait_gone "$M_PID" 30 || fail "mirror fm still runs after dst stop"
tail -n +$((MR_LOG_MARK + 1)) "$DST_STATE_DIR/fm.log" | grep -q "leg ${LEG_NODE[1]} failed" ||
	fail "neither the sweep nor the stop saw leg 1's flush fail"
note "$(tail -n +$((MR_LOG_MARK + 1)) "$DST_STATE_DIR/fm.log" | grep -c "leg ${LEG_NODE[1]} failed its flush at stop") flush failure(s) of leg 1 at the stop itself"
flakey "0 3600 0"
dst_ok start fm >/dev/null
M_PID=$(export_pid fm) || fail "no pid file for fm after its restart"
mr_wait fm health AA 60 "leg 1 resynced after the restart"
mr_settle fm

step "the two disks are equal, and both have the unflushed writes"
st_stop fm
stop_export m-leg0
stop_export m-leg1
blockdev --flushbufs /dev/mapper/f0 /dev/mapper/f1 || fail "blockdev --flushbufs"
assert_file_pattern /dev/mapper/f0 $((20 * MiB)) $((2 * MiB)) 0x5a "leg 0's disk"
assert_file_pattern /dev/mapper/f1 $((20 * MiB)) $((2 * MiB)) 0x5a "leg 1's disk"
assert_file_pattern /dev/mapper/f0 $((4 * MiB)) $((1 * MiB)) 0xa5 "leg 0's disk (written before the stop)"
assert_file_pattern /dev/mapper/f1 $((4 * MiB)) $((1 * MiB)) 0xa5 "leg 1's disk (written before the stop)"
out=$(cmp -n "$M_SIZE" /dev/mapper/f0 /dev/mapper/f1 2>&1) ||
	fail "the legs' disks differ over the mirror's $M_SIZE bytes: $out"
check_log "$DST_STATE_DIR/fm.log"
note "the legs' disks are equal over $M_SIZE bytes"
echo "PASS"
