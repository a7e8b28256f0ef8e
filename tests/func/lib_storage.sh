# lib_storage.sh - helpers for the storage tests (test_storage_*.sh); source
# it after lib.sh:
#
#   . "$(dirname "$0")/lib.sh"
#   . "$TESTS_DIR/func/lib_storage.sh"   (lib.sh has cd to the temp dir)
#
# Storages run as dstd daemons with pid files in the state dir, like exports:
# st_start tracks them with lib.sh's track_export, so the EXIT trap stops
# them by PID and checks their logs. nbdkit nodes are tracked in T_PIDS.

MiB=1048576

# ---- nodes ----

# st_export NAME SIZE: a sparse file $T_TMP/NAME.img of SIZE (truncate
# syntax: 16M...) and 4 KiB more for the node's label, so that a node made
# of it holds SIZE (dst add puts the label in a disk's last 4 KiB), exported
# by `dst export` on a free port of 127.0.0.1. Sets IMG, PORT, URI, PID (see
# start_export).
st_export() {
	IMG=$T_TMP/$1.img
	{ truncate -s "$2" "$IMG" && truncate -s +4096 "$IMG"; } || fail "truncate $IMG"
	start_export "$1" "$IMG"
}

# node_data IMG...: what labelled nodes made of these backing files hold,
# one after another: each file but its last 4 KiB (the label).
node_data() {
	local f
	for f in "$@"; do
		head -c -4096 "$f" || fail "read $f"
	done
}

# st_nbdkit PLUGIN ARGS...: nbdkit -f on a free port of 127.0.0.1, in the
# background (tracked by PID); waits until it answers. Sets NBDKIT_PID,
# NBDKIT_URI.
st_nbdkit() {
	need nbdkit nbdinfo
	local port try t
	for try in 1 2 3; do
		port=$(free_port)
		bg nbdkit -f -i 127.0.0.1 -p "$port" "$@"
		NBDKIT_PID=$BG_PID
		NBDKIT_URI=nbd://127.0.0.1:$port
		for t in $(seq 50); do
			pid_alive "$NBDKIT_PID" || break
			nbdinfo --size "$NBDKIT_URI" >/dev/null 2>&1 && {
				note "nbdkit $1 on $NBDKIT_URI (pid $NBDKIT_PID)"
				return 0
			}
			sleep 0.1
		done
		kill_pid "$NBDKIT_PID"
	done
	fail "nbdkit $* did not come up"
}

# ---- storages ----

# st_create NAME ALG [dst create options...]
st_create() {
	local name=$1 alg=$2
	shift 2
	dst_ok create "$name" --alg "$alg" "$@" >/dev/null
}

# st_add NAME dst-add-options...
st_add() {
	dst_ok add "$@" >/dev/null
}

# st_start NAME [dst start options...]: start it, track its daemon for the
# cleanup. Sets ST_PID and ST_URI (its first NAME/uri).
st_start() {
	local name=$1
	dst_ok start "$@" >/dev/null
	track_export "$name"
	ST_PID=$(export_pid "$name") || fail "no pid file for storage $name after dst start"
	pid_alive "$ST_PID" || fail "storage $name: pid $ST_PID is not running"
	ST_URI=$(st_uri "$name")
	[ -n "$ST_URI" ] || fail "dst show $name has no $name/uri line"
	note "storage $name on $ST_URI (pid $ST_PID)"
}

# st_stop NAME: dst stop, daemon gone, log clean (stop_export is generic).
st_stop() {
	stop_export "$1"
}

# st_uri NAME: the first NAME/uri of `dst show NAME`.
st_uri() {
	show_attr "$1" uri
}

# dev_size URI: the size in bytes a new client sees.
dev_size() {
	nbdinfo --size "$1" 2>"$T_TMP/nbdinfo.err" || {
		cat "$T_TMP/nbdinfo.err" >&2
		fail "nbdinfo --size $1 failed"
	}
}

# dev_sha URI: sha256 of the whole device, read with nbdcopy.
dev_sha() {
	nbdcopy "$1" - 2>"$T_TMP/nbdcopy.err" | sha256sum | cut -d' ' -f1
	[ "${PIPESTATUS[0]}" -eq 0 ] || {
		cat "$T_TMP/nbdcopy.err" >&2
		fail "nbdcopy $1 failed"
	}
}

# ---- data checks ----

# st_fio_verify URI JOBS SIZE_PER_JOB [extra fio options]: random writes of
# mixed sizes (4K..1M, so requests cross node and chunk boundaries) at QD32,
# each job in its own region (offset_increment), then crc32c verify of every
# block. Prints fio's summary lines; returns 1 on any error.
st_fio_verify() {
	local uri=$1 jobs=$2 size=$3 out rc=0
	shift 3
	out=$(fio --name=verify --ioengine=nbd --uri="$uri" --rw=randwrite \
		--bssplit=4k/30:16k/20:64k/20:256k/15:1m/15 --blockalign=4k \
		--iodepth=32 --numjobs="$jobs" --size="$size" --offset_increment="$size" \
		--verify=crc32c --verify_fatal=1 --do_verify=1 --verify_state_save=0 \
		--group_reporting "$@" 2>&1) || rc=$?
	if [ $rc -ne 0 ] || ! grep -q 'err= 0' <<<"$out"; then
		printf '%s\n' "$out" | tail -30 >&2
		return 1
	fi
	if grep -qiE 'verify: bad|crc32c: verify failed' <<<"$out"; then
		printf '%s\n' "$out" | grep -iE 'verify' | head -10 >&2
		return 1
	fi
	printf '%s\n' "$out" | grep -E '^ *(READ|WRITE):' | sed 's/^ */   /'
	return 0
}

# qio URI CMDS...: qemu-io -f raw with one -c per argument; must succeed.
qio() {
	local uri=$1 a args=()
	shift
	for a in "$@"; do args+=(-c "$a"); done
	run_ok "qemu-io ${*} on $uri" qemu-io -f raw "${args[@]}" "$uri"
}

# file_pattern FILE OFFSET LEN BYTE: true if LEN bytes of FILE at OFFSET are
# all BYTE (0xNN).
file_pattern() {
	python3 - "$@" <<'EOF'
import sys
path, off, ln, byte = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4], 0)
with open(path, "rb") as f:
    f.seek(off)
    d = f.read(ln)
if d != bytes([byte]) * ln:
    bad = next((i for i, b in enumerate(d) if b != byte), len(d))
    got = d[bad] if bad < len(d) else None
    print(f"{path}: at offset {off + bad}: got {got!r}, expected {byte:#x} "
          f"({len(d)} of {ln} bytes read)", file=sys.stderr)
    sys.exit(1)
EOF
}

# assert_file_pattern FILE OFFSET LEN BYTE WHAT
assert_file_pattern() {
	file_pattern "$1" "$2" "$3" "$4" || fail "$5: bytes $2+$3 of $(basename "$1") are not $4"
}

# assert_node_pattern URI OFFSET LEN BYTE WHAT: read the node through its own
# NBD server and check the pattern.
assert_node_pattern() {
	local rc=0
	qemu-io -f raw -r -c "read -P $4 $2 $3" "$1" >"$T_TMP/qio.out" 2>&1 || rc=$?
	if [ $rc -ne 0 ] || grep -qiE 'fail|error|mismatch' "$T_TMP/qio.out"; then
		cat "$T_TMP/qio.out" >&2
		fail "$5: $1 bytes $2+$3 are not $4"
	fi
}

# ---- state dir ----

# state_snapshot: the state dir's configs (name and md5) and the names of
# its other files but logs, one per line. Compare two to show that a
# command changed nothing.
state_snapshot() {
	(
		cd "$DST_STATE_DIR" || exit 1
		for f in *; do
			[ -e "$f" ] || continue
			case $f in
			*.log) ;;
			*.conf) echo "$f $(md5sum <"$f" | cut -d' ' -f1)" ;;
			*) echo "$f" ;;
			esac
		done
	)
}

# conf_md5 NAME: md5 of NAME.conf, or "none".
conf_md5() {
	if [ -f "$DST_STATE_DIR/$1.conf" ]; then
		md5sum <"$DST_STATE_DIR/$1.conf" | cut -d' ' -f1
	else
		echo none
	fi
}

# bad_input WHAT NEEDLE... -- DST-ARGS...: dst DST-ARGS must exit non-zero,
# print exactly one line on stderr containing every NEEDLE (case-insensitive),
# nothing on stdout, and leave the state dir as it was. $BAD_ERR holds the
# message.
bad_input() {
	local what=$1 needles=() rc=0 before after n lines
	shift
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		needles+=("$1")
		shift
	done
	[ $# -gt 0 ] || fail "bad_input $what: missing --"
	shift
	before=$(state_snapshot)
	"$DST" "$@" >"$T_TMP/bad.out" 2>"$T_TMP/bad.err" || rc=$?
	check_stderr "$T_TMP/bad.err" "dst $*"
	BAD_ERR=$(cat "$T_TMP/bad.err")
	after=$(state_snapshot)
	note "$what: dst $* -> status $rc: $BAD_ERR"
	[ $rc -ne 0 ] || fail "$what: 'dst $*' exited 0"
	[ $rc -lt 128 ] || fail "$what: 'dst $*' died with signal $((rc - 128))"
	lines=$(grep -c '' "$T_TMP/bad.err")
	[ "$lines" -eq 1 ] || fail "$what: expected one line on stderr, got $lines: $BAD_ERR"
	[ ! -s "$T_TMP/bad.out" ] || fail "$what: unexpected stdout: $(head -3 "$T_TMP/bad.out")"
	for n in "${needles[@]}"; do
		grep -qiF -- "$n" <<<"$BAD_ERR" || fail "$what: message '$BAD_ERR' does not mention '$n'"
	done
	if [ "$before" != "$after" ]; then
		diff <(printf '%s\n' "$before") <(printf '%s\n' "$after") >&2
		fail "$what: the state dir changed"
	fi
}

# ---- cleanup ----

# A test that SIGSTOPs a process puts its pid in T_STOPPED: on exit it gets
# SIGCONT first, so lib.sh's cleanup can stop it with SIGTERM.
T_STOPPED=
st_cleanup() {
	local rc=$?
	[ -n "${T_STOPPED:-}" ] && kill -CONT $T_STOPPED 2>/dev/null
	(exit $rc)
	t_cleanup
}
trap st_cleanup EXIT
