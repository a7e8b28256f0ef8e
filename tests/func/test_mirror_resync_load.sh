#!/usr/bin/env bash
# A mirror's full resync without --resync-rate (several regions copied at
# once) while 8 fio writers (crc32c verify) write into the regions being
# copied (alg_mirror over two 64M file-backed exports):
#  - leg 1 is killed, its file emptied (no header: it must be copied whole),
#    its export restarted in the middle of the writes;
#  - fio sees no error and every block verifies; every region is copied
#    (regions_copied); health AA; the legs byte-identical afterwards.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
. "$TESTS_DIR/func/lib_mirror.sh"
need fio

step "mirror rl over two 64M file-backed exports, no --resync-rate"
mr_legs rl 64M 64M
mr_mirror rl
regions=$(((M_SIZE + MiB - 1) / MiB))
assert_eq "$regions" 64 "regions of rl"

step "kill -9 leg 1; empty its file (new media: taken with dst resume, copied whole)"
leg_kill9 1
mr_wait rl health AD 5 "health after kill -9 of leg 1"
leg_blank 1

step "8 sequential writers (2 MiB/s each, every block once) over the whole disk; leg 1 back after 1 s"
# Every block is written once, so a region copied over a write that raced
# with it stays wrong (later writes would heal it) and cmp sees it.
c0=$(mr_copied rl)
mr_log_mark rl
bg fio_run 60 "$T_TMP/fio.seq" --name=seq --ioengine=nbd --uri="$M_URI" --rw=write \
	--bs=64k --iodepth=4 --numjobs=8 --size=8M --offset_increment=8M --rate=2m \
	--verify=crc32c --verify_fatal=1 --do_verify=1 --verify_state_save=0 --group_reporting
FIO_PID=$BG_PID FIO_OUT=$T_TMP/fio.seq
sleep 1
mr_fio_alive
leg_restart 1
mr_leg_refused rl 1 10
mr_leg_take rl 1
mr_wait rl health AA 30 "health after leg 1 came back"
mr_fio_alive
mr_fio_wait
mr_log_has rl "mirror: resync of $regions regions starts" "log: a whole copy"
assert_eq $(($(mr_copied rl) - c0)) "$regions" "regions copied to leg 1"
assert_eq "$(show_attr rl io/errors)" 0 "io errors on the storage"
mr_legs_identical "after a whole copy under 8 writers"
echo "PASS"
