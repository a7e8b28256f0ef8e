# shellcheck shell=bash
# lib_fuse.sh - helpers for the FUSE frontend tests (test_fuse_*.sh); source
# it after lib.sh and lib_storage.sh:
#
#   . "$(dirname "$0")/lib.sh"
#   . "$TESTS_DIR/func/lib_storage.sh"
#   . "$TESTS_DIR/func/lib_fuse.sh"
#
# Loop devices and mounts are machine-wide: everything a test mounts or
# attaches is tracked, and the EXIT trap undoes it even when the test fails:
# filesystems unmounted, loop devices detached (only if still backed by what
# the test attached them to), daemons stopped by PID, then FUSE files the
# test made that are still mounted (a daemon killed with -9) detached.

T_MOUNTS=()     # mount points of filesystems the test mounted
T_LOOPS=()      # "DEV BACK-MAJ:MIN" of loop devices the test (or dst attach) set up
T_FUSE_FILES=() # FUSE file paths the test's storages use
# dst attach links DIR/NAME to the loop device (/dev/dst by default): the
# test's own dir, not the machine's.
export DST_DEV_DIR=$T_TMP/devdst

# need_fuse: skip unless this machine can run the FUSE tests.
need_fuse() {
	[ "$(id -u)" = 0 ] || skip "needs root (mount, losetup)"
	[ -c /dev/fuse ] || skip "no /dev/fuse: this kernel has no FUSE (modprobe fuse)"
	[ -e /dev/loop-control ] || skip "no /dev/loop-control: this kernel has no loop devices"
	need losetup mount umount mkfs.ext4 fsck.ext4 "$@"
}

# is_mounted PATH: PATH is a mount point now (also when its FUSE daemon is
# dead and stat(2) fails with ENOTCONN).
is_mounted() {
	awk -v p="$1" '$5 == p { found = 1 } END { exit !found }' /proc/self/mountinfo
}

# mount_fstype PATH: the type of what is mounted at PATH ("fuse.dst").
mount_fstype() {
	awk -v p="$1" '$5 == p { for (i = 7; i <= NF; i++) if ($i == "-") { t = $(i + 1); break } } END { print t }' /proc/self/mountinfo
}

# loop_back DEV: "MAJ:MIN" of the file loop device DEV is backed by, or "".
loop_back() {
	losetup --list --noheadings --output BACK-MAJ:MIN "$1" 2>/dev/null | tr -d ' '
}

# track_loop DEV: detach DEV on exit if it is still what it is now.
track_loop() {
	T_LOOPS+=("$1 $(loop_back "$1")")
}

# track_mount DIR / track_fuse PATH
track_mount() { T_MOUNTS+=("$1"); }
track_fuse() { T_FUSE_FILES+=("$1"); }

# fuse_attach NAME [--direct-io]: dst attach; the device it printed (last
# line) in $LOOP, tracked. (Not in $(...): the tracking must reach the trap.)
fuse_attach() {
	local out
	out=$(dst attach "$@") || fail "dst attach $* failed"
	LOOP=$(printf '%s\n' "$out" | tail -1)
	case $LOOP in /dev/loop*) ;; *) fail "dst attach $*: printed '$LOOP', not a loop device" ;; esac
	track_loop "$LOOP"
	note "dst attach $*: $LOOP"
}

# loops_over PATH: loop devices whose backing file is PATH.
loops_over() {
	losetup --list --noheadings --output NAME,BACK-FILE 2>/dev/null | awk -v p="$1" '$2 == p { print $1 }'
}

# free_nbd: NBD, a /dev/nbdN nobody has connected (no pid in sysfs), or skip.
free_nbd() {
	local d
	NBD=
	for d in /sys/block/nbd*; do
		[ -e "$d/pid" ] && continue
		NBD=/dev/$(basename "$d")
		break
	done
	[ -n "$NBD" ] || skip "every /dev/nbdN is connected already"
}

# wait_size DEV BYTES: the device has that size within 5 s.
wait_size() {
	local _
	for _ in $(seq 50); do
		[ "$(blockdev --getsize64 "$1" 2>/dev/null)" = "$2" ] && return 0
		sleep 0.1
	done
	assert_eq "$(blockdev --getsize64 "$1")" "$2" "size of $1"
}

fuse_cleanup() {
	local rc=$? m entry dev back name pid p
	set +e
	for m in "${T_MOUNTS[@]}"; do
		if is_mounted "$m"; then
			umount "$m" 2>/dev/null || umount -l "$m"
			echo "   cleanup: unmounted $m"
		fi
	done
	for entry in "${T_LOOPS[@]}"; do
		dev=${entry%% *} back=${entry#* }
		# Still over what we attached it to; or over a file with no path
		# any more ("/": a dead FUSE mount, detached) that cannot be
		# stat'ed: ours still, since a device is only reused once detached.
		if [ -n "$back" ] && { [ "$(loop_back "$dev")" = "$back" ] ||
			{ [ "$(cat "/sys/block/${dev#/dev/}/loop/backing_file" 2>/dev/null)" = / ] &&
				[ -z "$(loop_back "$dev")" ]; }; }; then
			losetup -d "$dev" && echo "   cleanup: detached $dev"
		fi
	done
	# Stopping a daemon unmounts its FUSE file; one that was killed left a
	# dead mount, detached below.
	for name in "${T_EXPORTS[@]}"; do
		pid=$(export_pid "$name") || continue
		pid_alive "$pid" && kill_pid "$pid"
	done
	for p in "${T_FUSE_FILES[@]}"; do
		if is_mounted "$p"; then
			umount -l "$p" && echo "   cleanup: detached the FUSE mount at $p"
		fi
	done
	(exit $rc)
	st_cleanup
}
trap fuse_cleanup EXIT

# ext4_mount DEV [MKFS_OPTION...]: a new ext4 on DEV mounted on
# MNT=$T_TMP/mnt, unmounted at exit if still mounted.
ext4_mount() {
	local dev=$1
	shift
	run_ok "mkfs.ext4 $dev" mkfs.ext4 -q -F "$@" "$dev"
	MNT=$T_TMP/mnt
	mkdir -p "$MNT"
	track_mount "$MNT"
	run_ok "mount $dev" mount "$dev" "$MNT"
}

# write_tree DIR N LIST: N files of 1 byte..1 MiB of random data in nested
# directories under DIR, plus an empty one and a 4 MiB one; their sha256
# list (paths relative to DIR) into LIST.
write_tree() {
	local dir=$1 n=$2 list=$3
	python3 - "$dir" "$n" <<'EOF' || fail "writing the file tree in $1"
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(6)
for i in range(n):
    d = os.path.join(root, "d%d" % (i % 7), "e%d" % (i % 3))
    os.makedirs(d, exist_ok=True)
    size = rnd.choice([1, 511, 4096, 4097, 65536, 200000, 1 << 20])
    with open(os.path.join(d, "f%03d" % i), "wb") as f:
        f.write(os.urandom(size))
open(os.path.join(root, "empty"), "wb").close()
with open(os.path.join(root, "big"), "wb") as f:
    f.write(os.urandom(4 << 20))
EOF
	(cd "$dir" && find . -type f -print0 | sort -z | xargs -0 sha256sum) >"$list" ||
		fail "sha256sum of the tree in $dir"
}

# check_tree DIR LIST: every file of LIST has its checksum, and DIR holds no
# other file.
check_tree() {
	local dir=$1 list=$2 out
	out=$(cd "$dir" && sha256sum --quiet -c "$list" 2>&1) || {
		printf '%s\n' "$out" | head -20 >&2
		fail "checksums of the tree in $dir do not match"
	}
	[ "$(cd "$dir" && find . -type f | wc -l)" -eq "$(wc -l <"$list")" ] ||
		fail "the tree in $dir has a different number of files than was written"
}
