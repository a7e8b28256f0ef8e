#!/usr/bin/env bash
# Suspend and live migration of a node under a mounted filesystem on the
# ublk device (issue 18; run inside the VM by tests/vm/run; make vm-check).
# ext4 on /dev/ublkbN of an alg_linear storage over two file-backed dst
# exports (n-0 of 32M holds the filesystem's metadata and journal, n-65536
# of 8M file data), fio with crc32c verify (O_DIRECT) on a file wholly on
# each node:
#  1. `dst suspend` of n-65536 while fio writes its file: the node's
#     requests are held (what it had acknowledged is flushed first), and
#     meanwhile a whole fio run (writes and verify) on the file on n-0
#     completes and an fsync there returns; `dst resume`: the held requests
#     complete, fio finishes with no error and every block verifies, the
#     kernel logs no I/O or ext4 error.
#  2. `dst replace n-65536 --remote NEW --wait` while fio writes both files
#     and checksummed files are written and synced: the copy completes
#     with fio still writing, dst show and the config name the new node;
#     the old export has no client left (it stops without --force) and,
#     with it gone, fio verifies every block it wrote, e2fsck -fn is clean
#     after umount and every file matches on a fresh mount.
#  3. dst stop deletes the device, the daemon's log is clean.
# Outside a guest with ublk it skips. Files are on the guest's tmpfs /tmp.
. "$(dirname "$0")/../func/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
. "$TESTS_DIR/func/lib_fuse.sh"
. "$TESTS_DIR/vm/lib_knbd.sh"
. "$TESTS_DIR/vm/lib_ublk.sh"
need_ublk fio mkfs.ext4 e2fsck filefrag mount umount python3 sha256sum dmesg

N0=n-0
N1=n-$((32 * MiB / 512)) # the second node: n-START (sectors)

# file_node FILE: the node holding all of FILE's blocks ($N0 or $N1), or
# "both" (filefrag's physical extents, in the filesystem's blocks, against
# the node boundary at 32M of the device).
file_node() {
	filefrag -v "$1" >"$T_TMP/filefrag.out" 2>&1 || {
		cat "$T_TMP/filefrag.out" >&2
		fail "filefrag $1"
	}
	awk -v b=$((32 * MiB)) -v n0=$N0 -v n1=$N1 '
		/blocks of [0-9]+ bytes/ { match($0, /blocks of [0-9]+ bytes/); bs = substr($0, RSTART + 10, RLENGTH - 16) }
		/^ *[0-9]+: / {
			gsub(/\.\./, " ")
			split($0, f, /[: ]+/) # f[2] extent, f[3..4] logical, f[5..6] physical
			if (f[5] * bs < b) lo = 1
			if ((f[6] + 1) * bs > b) hi = 1
		}
		END {
			if (lo == hi) print "both"
			else if (lo) print n0
			else print n1
		}
	' "$T_TMP/filefrag.out"
}

# fio_job [fio options]: fio on the files of FIO_FILES, one job each:
# libaio, O_DIRECT, 4K..256K random writes at QD8, then crc32c verify of
# every block. Rate-limited where it must outlast a suspend or a copy
# however fast the guest (a `dst show` costs a second or two in it).
fio_job() {
	local f
	echo --ioengine=libaio --direct=1 --rw=randwrite --bssplit=4k/40:16k/20:64k/20:256k/20 \
		--blockalign=4k --iodepth=8 --verify=crc32c --verify_fatal=1 --verify_state_save=0 \
		--group_reporting "$@"
	for f in $FIO_FILES; do
		echo --name="$(basename "$f")" --filename="$f"
	done
}

# fio_check OUT WHAT: fio's output OUT has no error and no bad block;
# prints its summary lines.
fio_check() {
	if grep -qiE 'verify: bad|verify failed|bad magic|err= *[1-9]' "$1" || ! grep -qE 'err= *0' "$1"; then
		tail -30 "$1" >&2
		fail "$2: an error or a bad block"
	fi
	grep -E '^ *(READ|WRITE):' "$1" | sed 's/^ */   /'
}

# fio_start OUT [fio options]: fio_job in the background. Sets FIO_PID.
fio_start() {
	local out=$1
	shift
	# shellcheck disable=SC2046 # fio_job's words on purpose
	bg fio_run 240 "$out" $(fio_job --do_verify=1 "$@")
	FIO_PID=$BG_PID FIO_OUT=$out
}

# fio_wait: fio_start's fio ended with no error and no bad block.
fio_wait() {
	bg_wait "$FIO_PID" || {
		tail -30 "$FIO_OUT" >&2
		fail "fio on the filesystem failed"
	}
	fio_check "$FIO_OUT" "fio on the filesystem"
}

# fio_alive WHEN: fio still runs.
fio_alive() {
	pid_alive "$FIO_PID" || {
		tail -20 "$FIO_OUT" >&2
		fail "fio ended $1"
	}
}

# ---------------------------------------------------------------------------
step "ext4 on the ublk device of alg_linear over file-backed exports of 32M and 8M"
knbd_export f0 32M
F0_URI=$URI
knbd_export f1 8M
F1_URI=$URI
st_create um linear
st_add um --remote "$F0_URI"
st_add um --remote "$F1_URI"
ublk_start um
UM_PID=$ST_PID
assert_eq "$(snap "$N1/uri")" "$F1_URI" "$N1/uri"
dmesg_mark
ext4_mount "$UBLK" -E lazy_itable_init=0,lazy_journal_init=0
write_tree "$MNT/before" 8 "$T_TMP/before.sha256"
# Files for fio, allocated now: one wholly on each node (where ext4 puts
# them is its own business: take the first of each kind).
mkdir -p "$MNT/fio"
F0='' F1=''
for i in 0 1 2 3 4 5; do
	fallocate -l 3M "$MNT/fio/f$i" || fail "fallocate $MNT/fio/f$i"
	case $(file_node "$MNT/fio/f$i") in
	"$N0") [ -n "$F0" ] || F0=$MNT/fio/f$i ;;
	"$N1") [ -n "$F1" ] || F1=$MNT/fio/f$i ;;
	esac
	[ -n "$F0" ] && [ -n "$F1" ] && break
done
if [ -z "$F0" ] || [ -z "$F1" ]; then
	fail "no fio file wholly on each node (on $N0: '$F0', on $N1: '$F1')"
fi
run_ok "sync" sync
note "fio files: $(basename "$F0") on $N0, $(basename "$F1") on $N1"

# ---------------------------------------------------------------------------
step "1. fio on the file on $N1; dst suspend um $N1 once its writes reach it"
W1=$(show_attr um "$N1/io/writes")
FIO_FILES=$F1
fio_start "$T_TMP/fio.held" --size=2M --rate=256k # 8 s of writes
for _ in $(seq 60); do
	fio_alive "before the suspend"
	[ "$(show_attr um "$N1/io/writes")" -gt "$W1" ] && break
	sleep 0.5
done
out=$(dst suspend um "$N1") || fail "dst suspend um $N1"
note "$out"
assert_contains "$out" "suspended $N1 of 'um': drained" "dst suspend's answer"

step "1. while $N1 is suspended: fio writes and verifies the file on $N0, an fsync there returns"
t0=$(date +%s%3N)
FIO_FILES=$F0
# shellcheck disable=SC2046 # fio_job's words on purpose
fio_run 60 "$T_TMP/fio.other" $(fio_job --do_verify=1 --size=2M) || {
	tail -30 "$T_TMP/fio.other" >&2
	fail "fio on the file on $N0 while $N1 is suspended"
}
fio_check "$T_TMP/fio.other" "fio on the file on $N0 while $N1 is suspended"
note "done in $(($(date +%s%3N) - t0)) ms"
# A FLUSH of the storage does not wait for the suspended node: the suspend
# flushed what it had acknowledged, and its new writes are held, not done.
# (An fsync stuck in the kernel cannot be killed: wait for it, not on it.)
bg python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
os.pwrite(fd, os.urandom(65536), 0)
os.fsync(fd)' "$F0"
SYNC_PID=$BG_PID
for _ in $(seq 100); do
	pid_alive "$SYNC_PID" || break
	sleep 0.1
done
pid_alive "$SYNC_PID" && fail "an fsync of the file on $N0 waits for the suspended $N1"
bg_wait "$SYNC_PID" || fail "the fsync of the file on $N0 while $N1 is suspended failed"
fio_alive "while $N1 is suspended"
show_snap um
note "$N1: held $(snap "$N1/held"), io/writes $(snap "$N1/io/writes"); $N0: io/writes $(snap "$N0/io/writes")"
assert_eq "$(snap "$N1/suspended")" yes "$N1/suspended"
assert_ge "$(snap "$N1/held")" 1 "requests held for $N1 (fio's writes to its file)"
assert_eq "$(snap "$N1/io/inflight")" 0 "$N1/io/inflight while suspended"
assert_eq "$(snap ublk_state)" live "ublk_state while $N1 is suspended"
W1=$(snap "$N1/io/writes")

step "1. dst resume um $N1: the held writes complete, fio finishes"
out=$(dst resume um "$N1") || fail "dst resume um $N1"
assert_eq "$out" "resumed $N1 of 'um'" "dst resume's answer"
fio_wait
show_snap um
assert_eq "$(snap "$N1/suspended")" "" "$N1/suspended after resume"
assert_ge "$(snap "$N1/io/writes")" $((W1 + 1)) "$N1/io/writes after resume"
assert_eq "$(snap io/errors)" 0 "um io/errors"
assert_eq "$(snap ublk_io/errors)" 0 "um ublk_io/errors"

# ---------------------------------------------------------------------------
step "2. dst replace um $N1 --remote NEW --rate 4M --wait under fio and a file writer"
knbd_export f2 8M
F2_URI=$URI
# 10 s of writes: the copy of 8M (3 s in the optimised build under TCG)
# must end before they do.
FIO_FILES="$F0 $F1"
fio_start "$T_TMP/fio.replace" --size=2M --rate=192k
bg during_writer "$MNT/during"
DURING=$BG_PID
sleep 1
fio_alive "before the migration"
t0=$(date +%s%3N)
rc=0
"$DST" replace um "$N1" --remote "$F2_URI" --rate 4M --wait >"$T_TMP/replace.out" 2>&1 || rc=$?
check_stderr "$T_TMP/replace.out" "dst replace --wait"
note "dst replace --wait took $(($(date +%s%3N) - t0)) ms, status $rc: $(tail -1 "$T_TMP/replace.out")"
[ $rc -eq 0 ] || fail "dst replace --wait exited with status $rc"
assert_contains "$(tail -1 "$T_TMP/replace.out")" "done: $N1 now on $F2_URI" "last line of dst replace --wait"
fio_alive "before the migration ended: the copy did not overlap the load"
# The old export has no client left: it stops without --force. fio's
# verify reads come after, from the new node alone.
stop_export f1
bg_wait "$DURING" || fail "the files written during the copy, or their sync, failed"
fio_wait
show_snap um
assert_eq "$(snap "$N1/uri")" "$F2_URI" "$N1/uri after the migration"
assert_contains "$(snap last_migration)" "done: $N1 now on $F2_URI" "um/last_migration"
assert_eq "$(snap migration/node)" "" "migration/node after the migration"
assert_eq "$(snap io/errors)" 0 "um io/errors"
assert_eq "$(snap ublk_io/errors)" 0 "um ublk_io/errors"
assert_eq "$(snap ublk_state)" live "ublk_state after the migration"
assert_eq "$(export_pid um)" "$UM_PID" "the storage daemon is the same process"
grep -q "^node = .* $F2_URI\$" "$DST_STATE_DIR/um.conf" || fail "um.conf does not name $F2_URI"
if grep -q " $F1_URI\$" "$DST_STATE_DIR/um.conf"; then
	fail "um.conf still names the old node $F1_URI"
fi
(cd "$MNT/during" && sha256sum ./g?) >"$T_TMP/during.sha256" || fail "sha256sum of the files written during the copy"

step "2. umount, e2fsck -fn, files intact on a fresh mount"
run_ok "umount" umount "$MNT"
run_ok "e2fsck -fn" e2fsck -fn "$UBLK"
note "e2fsck -fn: $(tail -1 "$T_TMP/run.out")"
run_ok "mount" mount "$UBLK" "$MNT"
check_tree "$MNT/before" "$T_TMP/before.sha256"
check_tree "$MNT/during" "$T_TMP/during.sha256"
run_ok "umount" umount "$MNT"
dmesg_clean "$UBLK" "suspend, resume and migration of $N1 under ext4"

# ---------------------------------------------------------------------------
step "3. dst stop deletes $UBLK"
ublk_stop um "$UBLK"
stop_export f0
stop_export f2
echo "PASS"
