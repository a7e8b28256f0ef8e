# shellcheck shell=bash
# lib_knbd.sh - helpers for the VM tests of the kernel NBD device under load
# (test_kernel_nbd_fio.sh, _failover.sh, _restart.sh); source it after
# lib.sh, lib_storage.sh and lib_fuse.sh:
#
#   . "$(dirname "$0")/../func/lib.sh"
#   . "$TESTS_DIR/func/lib_storage.sh"
#   . "$TESTS_DIR/func/lib_fuse.sh"
#   . "$TESTS_DIR/vm/lib_knbd.sh"

# free_port (lib.sh's, without python): a port of 127.0.0.1 nobody listens
# on now. start_export tries another if it was taken meanwhile.
free_port() {
	local p _
	for _ in $(seq 50); do
		p=$((20000 + RANDOM % 30000))
		[ -z "$(ss -Htln "sport = :$p")" ] && echo "$p" && return 0
	done
	fail "no free port found"
}

# knbd_export NAME SIZE: like lib_storage.sh's st_export (a sparse file of
# SIZE and 4 KiB for the label, exported by dst export) with a small buffer
# budget: allocating the default 128M costs seconds in the guest. Sets IMG,
# PORT, URI, PID.
knbd_export() {
	IMG=$T_TMP/$1.img
	{ truncate -s "$2" "$IMG" && truncate -s +4096 "$IMG"; } || fail "truncate $IMG"
	start_export "$1" "$IMG" --buffers 32M
}

# show_snap NAME: one `dst show NAME` into SHOW (each dst costs a second or
# two in the guest); snap KEY: the value of NAME/KEY in it.
show_snap() {
	SHOW_NAME=$1
	SHOW=$("$DST" show "$1" 2>"$T_TMP/dst.err") || {
		cat "$T_TMP/dst.err" >&2
		fail "dst show $1 failed"
	}
	check_stderr "$T_TMP/dst.err" "dst show"
}
snap() {
	awk -v k="$SHOW_NAME/$1" -F' : ' '$1 == k { print $2; exit }' <<<"$SHOW"
}

# need_knbd TOOLS...: skip unless this is a guest with kernel NBD (root, the
# nbd driver) and the tools are there.
need_knbd() {
	[ "$(id -u)" = 0 ] || skip "needs root (kernel NBD, mount): run it with tests/vm/run"
	[ -e /dev/nbd0 ] || skip "no /dev/nbd0 (this kernel has no nbd): run it with tests/vm/run"
	need blockdev "$@"
}

# knbd_start NAME DEV [dst start options]: dst start NAME -f DEV, tracked for
# the cleanup; the device is connected for dst:NAME. Sets ST_PID.
knbd_start() {
	local name=$1 dev=$2 rc=0
	shift 2
	"$DST" start "$name" -f "$dev" "$@" >"$T_TMP/start.out" 2>"$T_TMP/start.err" || rc=$?
	check_stderr "$T_TMP/start.err" "dst start $name -f $dev"
	[ $rc -eq 0 ] || {
		cat "$T_TMP/start.err" >&2
		fail "dst start $name -f $dev exited with status $rc"
	}
	track_export "$name"
	ST_PID=$(export_pid "$name") || fail "no pid file for $name"
	knbd_connected "$dev" "$name"
	note "storage $name on $dev (pid $ST_PID)"
}

# knbd_connected DEV NAME: DEV is connected, for dst:NAME.
knbd_connected() {
	local b=/sys/block/${1#/dev/}
	[ -e "$b/pid" ] || fail "$1 is not connected ($b/pid missing)"
	assert_eq "$(cat "$b/backend" 2>/dev/null)" "dst:$2" "backend of $1"
}

# knbd_stop NAME DEV: dst stop; the daemon is gone, its log clean and the
# device disconnected.
knbd_stop() {
	stop_export "$1"
	[ ! -e "/sys/block/${2#/dev/}/pid" ] || fail "$2 is still connected after dst stop $1"
}

# blk_fio_verify DEV OUT SECONDS [fio options]: random writes of 4K..256K
# with libaio and O_DIRECT, then crc32c verify of every block; the options
# give at least --iodepth and --size. Fails the test on an error or a bad
# block; prints fio's summary lines.
blk_fio_verify() {
	local dev=$1 out=$2 limit=$3
	shift 3
	fio_run "$limit" "$out" --name=verify --filename="$dev" --ioengine=libaio --direct=1 \
		--rw=randwrite --bssplit=4k/40:16k/20:64k/20:256k/20 --blockalign=4k \
		--verify=crc32c --verify_fatal=1 --do_verify=1 --verify_state_save=0 \
		--group_reporting "$@" || {
		tail -30 "$out" >&2
		fail "fio verify on $dev ($*)"
	}
	if grep -qiE 'verify: bad|crc32c: verify failed|bad magic' "$out"; then
		grep -iE 'verify' "$out" | head -10 >&2
		fail "fio verify on $dev ($*): bad blocks"
	fi
	grep -E '^ *(READ|WRITE):' "$out" | sed 's/^ */   /'
}

# pattern LEN BYTE: LEN bytes of BYTE (0xNN) on stdout.
pattern() {
	head -c "$1" /dev/zero | tr '\0' "\\$(printf %o "$2")"
}

# has_patterns WHAT FILE:OFFSET:LEN:BYTE...: each range of each file (a
# file, or a block device read with O_DIRECT, past the page cache) is all
# BYTE (0xNN). One python for all: every program started costs half a
# second in the guest.
has_patterns() {
	local what=$1
	shift
	python3 - "$@" <<'PYEOF' || fail "$what"
import mmap, os, stat, sys
bad = 0
for spec in sys.argv[1:]:
    path, off, ln, byte = spec.rsplit(":", 3)
    off, ln, byte = int(off), int(ln), int(byte, 0)
    flags = os.O_RDONLY
    if stat.S_ISBLK(os.stat(path).st_mode):
        flags |= os.O_DIRECT
    fd = os.open(path, flags)
    buf = mmap.mmap(-1, ln)  # page-aligned, as O_DIRECT wants
    n = os.preadv(fd, [buf], off)
    os.close(fd)
    d = buf[:n]
    if n != ln or d.count(byte) != ln:
        at = next((i for i, b in enumerate(d) if b != byte), n)
        got = d[at] if at < n else None
        print(f"{path}: at offset {off + at}: got {got!r}, expected {byte:#x} "
              f"in {off}+{ln} ({n} bytes read)", file=sys.stderr)
        bad += 1
sys.exit(1 if bad else 0)
PYEOF
}

# dev_fill FILE OFFSET LEN BYTE: write LEN bytes of BYTE (0xNN) at OFFSET
# (both multiples of 64 KiB), with O_DIRECT to a block device, then fsync.
dev_fill() {
	local flag=
	[ -b "$1" ] && flag=oflag=direct
	# shellcheck disable=SC2086 # no flag for a file
	pattern "$3" "$4" | dd of="$1" $flag conv=fsync,notrunc bs=64k iflag=fullblock \
		seek=$(($2 / 65536)) status=none || fail "write of $4 to $1 at $2"
}

# dmesg_mark: remember how many kernel log lines there are now.
dmesg_mark() {
	DMESG_MARK=$(dmesg | wc -l)
}

# dmesg_since: the kernel log lines since dmesg_mark.
dmesg_since() {
	dmesg | tail -n +$((DMESG_MARK + 1))
}

# dmesg_clean DEV WHAT [EXPECTED]: since dmesg_mark the kernel logged no I/O
# error, ext4 error, journal abort or request timeout, for DEV or at all;
# the lines about DEV are shown (a warning such as "Possible stuck request"
# is not an error). Lines matching the ERE EXPECTED are not errors either
# (a test that kills the daemon expects "Dead connection").
dmesg_clean() {
	local dev=${1#/dev/} since
	since=$(dmesg_since)
	if [ -n "${3:-}" ]; then
		since=$(grep -Ev "$3" <<<"$since")
	fi
	if grep -E "$dev|EXT4-fs|I/O error|Buffer I/O|blk_update_request" <<<"$since" >"$T_TMP/dmesg.dev"; then
		sed 's/^/   dmesg: /' "$T_TMP/dmesg.dev" | head -20
	fi
	if grep -Ei 'I/O error|EXT4-fs error|EXT4-fs warning|Aborting journal|Remounting filesystem read-only|Buffer I/O error|blk_update_request|Connection timed out|Dead connection|shutting down sockets' <<<"$since" >"$T_TMP/dmesg.bad"; then
		cat "$T_TMP/dmesg.bad" >&2
		fail "$2: the kernel logged errors"
	fi
}

# during_writer DIR: 8 files of 300000 random bytes in DIR, then sync.
during_writer() {
	local i
	mkdir -p "$1" || return 1
	for i in 0 1 2 3 4 5 6 7; do
		head -c 300000 /dev/urandom >"$1/g$i" || return 1
	done
	sync
}
