#!/usr/bin/env bash
# Power-cut durability of acknowledged writes (run inside the VM by
# tests/vm/run; make vm-check), the dm-log-writes method: every export
# node's disk is a log-writes device, which records each write its disk
# completed, in order, with every FLUSH and FUA. A client of our own
# (tests/tools/durability.py) writes self-describing 4 KiB blocks through
# the storage with FUA now and then and FLUSHes sent while writes are in
# flight, and after each round puts a mark in the logs; fio with crc32c
# verify runs beside it. Then each log is replayed onto a blank disk to
# every FLUSH, FUA and mark entry (a power cut there): every block is whole
# and at least as new as what the client had been promised by the last mark
# before that point. Storages: linear over one export; a mirror of two
# exports with both legs logged, each leg's log on its own (either leg may
# be the survivor). At the end, a full replay equals the disk itself.
. "$(dirname "$0")/../func/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
. "$TESTS_DIR/func/lib_fuse.sh"
. "$TESTS_DIR/vm/lib_dm.sh"
need_dm linear log-writes
need fio cmp blkdiscard
need_nbdpy
LW=$TESTS_DIR/tools/durability.py

DATA=$((32 * MiB + 4096)) # 32 MiB of data and the node's label (or leg header)
LOGSZ=$((128 * MiB))
BLOCKS=512  # the checker's blocks: 2 MiB from byte 0
ROUNDS=16
FIO_OFF=$((16 * MiB))

# logged_disk NAME: pieces NAME-data (logged through NAME-lw into NAME-log)
# and NAME-replay, a blank disk of the same size for the replay.
logged_disk() {
	dm_carve "$1-data" "$DATA"
	dm_carve "$1-log" "$LOGSZ"
	dm_carve "$1-replay" "$DATA"
	dm_logwrites "$1-lw" "/dev/mapper/$1-data" "/dev/mapper/$1-log"
}

# load URI LOGDEV...: the durability client and fio with verify at once.
load() {
	local uri=$1 rc=0 t0=$SECONDS
	shift
	bg fio_run 240 "$T_TMP/fio.out" --name=dur --ioengine=nbd --uri="$uri" \
		--rw=randwrite --bssplit=4k/40:16k/20:64k/20:256k/20 --blockalign=4k \
		--iodepth=16 --offset="$FIO_OFF" --size=4M --fsync=16 \
		--verify=crc32c --verify_fatal=1 --do_verify=1 --verify_state_save=0
	local fio_pid=$BG_PID
	"$NBDPY" "$LW" write "$uri" 0 $BLOCKS $ROUNDS "$T_TMP/journal" "$@" ||
		fail "the durability client through $uri"
	bg_wait "$fio_pid" || rc=$?
	if [ $rc -ne 0 ] || grep -qiE 'verify: bad|verify failed' "$T_TMP/fio.out"; then
		tail -30 "$T_TMP/fio.out" >&2
		fail "fio with verify through $uri"
	fi
	note "(load: $((SECONDS - t0)) s)"
	note "fio: $(grep -E '^ *WRITE:' "$T_TMP/fio.out" | sed 's/^ *//' | cut -c1-70)"
}

# replay_check NAME: replay NAME-log onto NAME-replay, checking every point;
# then the whole log replayed must equal the disk.
replay_check() {
	local out rc=0 t0=$SECONDS
	out=$("$NBDPY" "$LW" check "/dev/mapper/$1-log" 0 "/dev/mapper/$1-replay" "$T_TMP/journal" 2>&1) || rc=$?
	printf '%s\n' "$out" | sed 's/^/   /'
	note "($1: replayed and checked in $((SECONDS - t0)) s)"
	[ $rc -eq 0 ] || fail "$1: acknowledged writes lost at a replay point"
	out=$(cmp "/dev/mapper/$1-data" "/dev/mapper/$1-replay" 2>&1) ||
		fail "$1: the log replayed to its end differs from the disk: $out"
	note "$1: the whole log replayed equals the disk"
}

step "linear storage over one export whose disk is logged (dm-log-writes)"
logged_disk lin
start_export lin-node /dev/mapper/lin-lw
st_create lin linear
st_add lin --remote "$URI"
st_start lin
load "$ST_URI" lin-lw
st_stop lin
stop_export lin-node
dm_remove lin-lw
python3 "$TESTS_DIR/tools/logwrites.py" list /dev/mapper/lin-log >"$T_TMP/lin.entries" ||
	fail "logwrites.py list"
note "lin log: $(head -1 "$T_TMP/lin.entries" | tr -d '#'), $(grep -c ' FLUSH' "$T_TMP/lin.entries") FLUSH, $(grep -c 'FUA' "$T_TMP/lin.entries") FUA, $(grep -c ' MARK ' "$T_TMP/lin.entries") marks"
replay_check lin

step "mirror of two exports, both legs logged: each leg's log on its own"
logged_disk m0
logged_disk m1
start_export m-leg0 /dev/mapper/m0-lw
U0=$URI
start_export m-leg1 /dev/mapper/m1-lw
U1=$URI
st_create mir mirror --assume-clean
st_add mir --remote "$U0"
st_add mir --remote "$U1"
st_start mir
SIZE=$(show_attr mir bytes)
load "$ST_URI" m0-lw m1-lw
assert_eq "$(show_attr mir health)" AA "mirror health after the load"
st_stop mir
stop_export m-leg0
stop_export m-leg1
dm_remove m0-lw
dm_remove m1-lw
out=$(cmp -n "$SIZE" /dev/mapper/m0-data /dev/mapper/m1-data 2>&1) ||
	fail "the mirror's legs differ over its $SIZE bytes: $out"
replay_check m0
replay_check m1
echo "PASS"
