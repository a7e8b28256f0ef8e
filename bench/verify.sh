#!/usr/bin/env bash
# bench/verify.sh - dst verify and the checksum resync (issue 19) against
# reading the data, side by side in one run.
#
# Topology: two `dst export` nodes of files (BENCH_SIZE of pseudo-random
# data each, plus 4 KiB for the label) on 127.0.0.1, and a
# 2-leg alg_mirror over them. Leg 1 starts as leg 0 with PERMILLE/1000 of its
# 4 KiB blocks inverted, scattered (99% identical by default).
#
# Each repeat:
#   resync-csum  a new mirror over the two legs (its initial sync copies leg
#                0 whole to leg 1): time from the log's "resync of N regions
#                starts" to "in sync again", bytes written to leg 1's export;
#   verify-csum  dst verify --wait of the synced mirror (checksums: 4 bytes
#                per 4 KiB cross the network);
#   verify-data  the same with `dst set --csum off` (the legs read as data);
#   nbdcopy      nbdcopy of both legs to null: at once, as verify reads both
#                legs at once: the cost of reading them (the baseline);
#   resync-copy  leg 1 made 99% identical again, a new mirror with
#                `dst set --csum off` before its start: the copy resync.
# Goals: verify-csum >= 4x faster than nbdcopy; resync-csum >= 5x faster
# than resync-copy. CPU: utime+stime of the three dst daemons (and of
# nbdcopy for its row), in ms per GiB of the mirror.
#
# A dst without `dst verify` (or without `dst set --csum`) gets only the
# rows it can run: nbdcopy and the resync of today (as resync-copy).
#
# Environment:
#   BENCH_SIZE=2G       size of the mirror (each leg)
#   BENCH_REPEAT=1      repeats; the table shows medians (3 for RESULTS.md)
#   BENCH_PERMILLE=10   blocks of leg 1 that differ, per mille
#   BENCH_LEGDIR=DIR    where the leg files go (default: the scratch dir).
#                       Not tmpfs: there SEEK_HOLE walks the file's pages
#                       up to the next hole, i.e. to its end in a full file,
#                       and the export answers a resync's block status with
#                       it, so a full resync over tmpfs files is quadratic
#                       (2 GiB: 30 s, 85% of the reading export's CPU in
#                       mapping_seek_hole_data).
#   BENCH_DIR=DIR       scratch dir for logs and state (default: mktemp)
#   BENCH_KEEP=1        keep BENCH_DIR afterwards
#   DST_BUILD=build     where dstd and dst are
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DST_BUILD=${DST_BUILD:-build}
DST="$ROOT/$DST_BUILD/dst"
REPEAT=${BENCH_REPEAT:-1}
SIZE=${BENCH_SIZE:-2G}
PERMILLE=${BENCH_PERMILLE:-10}
CLK_TCK=$(getconf CLK_TCK)
NAME=bench-vmirror

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

for tool in nbdcopy nbdinfo ss python3 numfmt; do
	command -v "$tool" >/dev/null || die "$tool not found (run scripts/deps.sh)"
done
[ -x "$DST" ] || die "$DST not built (run make)"
BYTES=$(numfmt --from=iec "$SIZE")
[ $((BYTES % 1048576)) -eq 0 ] || die "BENCH_SIZE must be a multiple of 1 MiB"

HAVE_VERIFY=0 HAVE_CSUM=0
"$DST" help verify >/dev/null 2>&1 && HAVE_VERIFY=1
"$DST" set --help 2>&1 | grep -q -- --csum && HAVE_CSUM=1

if [ -n "${BENCH_DIR:-}" ]; then
	WORK=$BENCH_DIR
	mkdir -p "$WORK"
else
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/dst-bench-verify.XXXXXX")
fi
mkdir -p "$WORK/state" "$WORK/log" "$WORK/res"
export DST_STATE_DIR="$WORK/state"
LEGDIR=${BENCH_LEGDIR:-$WORK}
LEG0=$(mktemp "$LEGDIR/dst-bench-leg0.XXXXXX")
LEG1=$(mktemp "$LEGDIR/dst-bench-leg1.XXXXXX")
PIDS=() # dst daemons we started

cleanup() {
	local rc=$? name
	set +e
	[ -n "${CHILD:-}" ] && kill_pid "$CHILD"
	for name in "$NAME" bench-vleg0 bench-vleg1; do
		[ -e "$DST_STATE_DIR/$name.pid" ] && "$DST" stop "$name" --force --timeout 10 >/dev/null 2>&1
	done
	for pid in "${PIDS[@]}"; do kill_pid "$pid"; done
	rm -f "$LEG0" "$LEG1"
	if [ -n "${BENCH_KEEP:-}" ]; then
		note "kept $WORK"
	elif [ -z "${BENCH_DIR:-}" ]; then
		rm -rf "$WORK"
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# attr NAME KEY: one attribute of `dst show NAME`.
attr() {
	"$DST" show "$1" 2>/dev/null | awk -v k="$1/$2" -F' : ' '$1 == k { print $2; exit }'
}

# log_ms FILE ERE: the timestamp (ms since the epoch) of FILE's last line
# matching ERE.
log_ms() {
	grep -E "$2" "$1" | tail -1 | cut -d' ' -f1 |
		python3 -c 'import sys, datetime; print(int(datetime.datetime.fromisoformat(sys.stdin.read().strip()).timestamp() * 1000))'
}

# record ROW REP SECONDS CPU_TICKS [EXTRA]: "SECONDS CPU_MS_PER_GIB EXTRA"
# in $WORK/res/ROW.REP.
record() {
	local cpu
	cpu=$(awk -v t="$4" -v hz="$CLK_TCK" -v b="$BYTES" 'BEGIN { printf "%.1f", t * 1000 / hz / (b / 1073741824) }')
	echo "$3 $cpu ${5:-}" >"$WORK/res/$1.$2"
	note "  $(printf '%-12s %8.2f s  %7.0f MiB/s of the mirror  cpu %7.1f ms/GiB  %s' "$1" "$3" \
		"$(awk -v s="$3" -v b="$BYTES" 'BEGIN { print (s > 0 ? b / 1048576 / s : 0) }')" "$cpu" "${5:-}")"
}

# ---------------------------------------------------------------------------
# The legs

# make_legs: leg 0 of pseudo-random data (no 4 KiB block repeats), leg 1 a
# copy of it; 4 KiB more each for the label.
make_legs() {
	local t0=$SECONDS
	note "writing two legs of $SIZE in $LEGDIR"
	python3 - "$LEG0" "$BYTES" <<'EOF' || die "writing $LEG0"
import random, sys
r = random.Random(19)
with open(sys.argv[1], "wb") as f:
    for _ in range(int(sys.argv[2]) >> 20):
        f.write(r.randbytes(1 << 20))
EOF
	truncate -s +4096 "$LEG0"
	cp "$LEG0" "$LEG1"
	sync "$LEG0" "$LEG1"
	note "  written in $((SECONDS - t0)) s"
}

# unlabel: zero both legs' label blocks (the last 4 KiB), so that the next
# dst add finds disks of no storage.
unlabel() {
	local f
	for f in "$LEG0" "$LEG1"; do
		dd if=/dev/zero of="$f" bs=4096 seek=$((BYTES / 4096)) count=1 conv=notrunc status=none ||
			die "clearing the label of $f"
	done
}

# scatter: invert PERMILLE/1000 of leg 1's blocks (always the same ones):
# leg 1, equal to leg 0 after a sync, is 99% identical to it again.
scatter() {
	python3 - "$LEG1" "$BYTES" "$PERMILLE" <<'EOF' || die "changing blocks of $LEG1"
import os, random, sys
path, size, pm = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
n = size // 4096
fd = os.open(path, os.O_RDWR)
for b in sorted(random.Random(20).sample(range(n), n * pm // 1000)):
    d = os.pread(fd, 4096, b * 4096)
    os.pwrite(fd, bytes(x ^ 0xFF for x in d), b * 4096)
os.close(fd)
EOF
}

# export_leg I FILE: `dst export FILE` as bench-vlegI on a free port.
export_leg() {
	local port pid
	port=$(free_port)
	"$DST" export "$2" --name "bench-vleg$1" --listen "127.0.0.1:$port" \
		>"$WORK/log/leg$1.out" 2>&1 || { cat "$WORK/log/leg$1.out" >&2; die "dst export of leg $1"; }
	pid=$(cat "$DST_STATE_DIR/bench-vleg$1.pid")
	PIDS+=("$pid")
	LEG_PID[$1]=$pid
	LEG_URI[$1]=nbd://127.0.0.1:$port
}

# ---------------------------------------------------------------------------
# The mirror

# mirror_up CSUM(on|off): a new mirror over the two legs, started; waits
# until its initial sync is over. Sets M_PID, SYNC_S (seconds of the
# sync, from the log), SYNC_TICKS (CPU of the three daemons meanwhile),
# SYNC_WRITTEN (bytes written to leg 1's export), SYNC_READ (bytes read as
# data from leg 0's export).
mirror_up() {
	local port w0 r0 c0 t log="$DST_STATE_DIR/$NAME.log"
	port=$(free_port)
	"$DST" delete "$NAME" >/dev/null 2>&1 || true
	rm -f "$log"
	unlabel
	{
		"$DST" create "$NAME" --alg mirror &&
			"$DST" add "$NAME" --remote "${LEG_URI[0]}" &&
			"$DST" add "$NAME" --remote "${LEG_URI[1]}"
	} >"$WORK/log/create.out" 2>&1 || { cat "$WORK/log/create.out" >&2; die "creating $NAME"; }
	if [ "$1" = off ]; then
		"$DST" set "$NAME" --csum off >"$WORK/log/set.out" 2>&1 || { cat "$WORK/log/set.out" >&2; die "dst set --csum off"; }
	fi
	w0=$(attr bench-vleg1 io/write_bytes) r0=$(attr bench-vleg0 io/read_bytes)
	c0=$(cpu_ticks "${LEG_PID[0]},${LEG_PID[1]}")
	"$DST" start "$NAME" --listen "127.0.0.1:$port" >"$WORK/log/start.out" 2>&1 ||
		{ cat "$WORK/log/start.out" >&2; die "dst start $NAME"; }
	M_PID=$(cat "$DST_STATE_DIR/$NAME.pid")
	PIDS+=("$M_PID")
	for t in $(seq 6000); do
		grep -q "in sync again" "$log" && break
		pid_alive "$M_PID" || die "$NAME died during its initial sync (see $log)"
		sleep 0.05
	done
	[ "$t" -lt 6000 ] || die "the initial sync of $NAME did not end in 300 s"
	SYNC_TICKS=$(($(cpu_ticks "$M_PID,${LEG_PID[0]},${LEG_PID[1]}") - c0))
	SYNC_WRITTEN=$(($(attr bench-vleg1 io/write_bytes) - w0))
	SYNC_READ=$(($(attr bench-vleg0 io/read_bytes) - r0))
	SYNC_S=$(awk -v a="$(log_ms "$log" "mirror: resync of [0-9]+ regions starts")" \
		-v b="$(log_ms "$log" "in sync again")" 'BEGIN { printf "%.3f", (b - a) / 1000 }')
	cmp -s -n "$BYTES" "$LEG0" "$LEG1" || die "the legs differ after the initial sync of $NAME"
}

mirror_down() {
	"$DST" stop "$NAME" --timeout 30 >/dev/null 2>&1 || die "dst stop $NAME"
	wait_gone_pid "$M_PID"
}

wait_gone_pid() {
	for _ in $(seq 100); do
		pid_alive "$1" || return 0
		sleep 0.1
	done
	die "pid $1 did not exit"
}

# ---------------------------------------------------------------------------
# The rows

# verify_row ROW REP: dst verify --wait of the running mirror. Timed from
# the log's "verify: check of N regions" to "verify: done" (--wait looks
# every 300 ms: its own time would be rounded up to that).
verify_row() {
	local c0 t0 t1 rc=0 log="$DST_STATE_DIR/$NAME.log"
	c0=$(cpu_ticks "$M_PID,${LEG_PID[0]},${LEG_PID[1]}")
	child "$DST" verify "$NAME" --wait >"$WORK/log/$1.$2.out" 2>"$WORK/log/$1.$2.err" || rc=$?
	[ $rc -eq 0 ] || { tail -3 "$WORK/log/$1.$2.err" >&2; die "dst verify $NAME --wait exited $rc"; }
	t0=$(log_ms "$log" "verify: check of [0-9]+ regions")
	t1=$(log_ms "$log" "verify: done:")
	record "$1" "$2" "$(awk -v ms=$((t1 - t0)) 'BEGIN { printf "%.3f", ms / 1000 }')" \
		$(($(cpu_ticks "$M_PID,${LEG_PID[0]},${LEG_PID[1]}") - c0)) \
		"($(attr "$NAME" verify/method): csum $(attr "$NAME" verify/csum_bytes), data $(attr "$NAME" verify/data_bytes) bytes)"
}

# nbdcopy_row REP: both legs read to null at once, as verify reads them.
nbdcopy_row() {
	local c0 tf real user sys a
	tf=$WORK/log/nbdcopy.$1.time
	c0=$(cpu_ticks "${LEG_PID[0]},${LEG_PID[1]}")
	{
		TIMEFORMAT='%R %U %S'
		time {
			nbdcopy "${LEG_URI[0]}" null: &
			a=$!
			nbdcopy "${LEG_URI[1]}" null: &
			wait $! && wait $a
		} >"$WORK/log/nbdcopy.$1.out" 2>&1
	} 2>"$tf" || { cat "$WORK/log/nbdcopy.$1.out" >&2; die "nbdcopy of the legs"; }
	read -r real user sys <"$tf"
	record nbdcopy "$1" "$real" \
		$(($(cpu_ticks "${LEG_PID[0]},${LEG_PID[1]}") - c0 + $(awk -v u="$user" -v s="$sys" -v hz="$CLK_TCK" 'BEGIN { printf "%d", (u + s) * hz }')))
}

# resync_row ROW REP CSUM: leg 1 made 99% identical, a new mirror, its sync.
resync_row() {
	scatter
	cmp -s -n "$BYTES" "$LEG0" "$LEG1" && die "leg 1 did not change"
	mirror_up "$3"
	sync "$LEG1" # its writeback is not the next row's
	record "$1" "$2" "$SYNC_S" "$SYNC_TICKS" "(leg 0 sent $SYNC_READ, leg 1 received $SYNC_WRITTEN bytes; same $(attr "$NAME" resync/bytes_same), copied $(attr "$NAME" resync/bytes_copied))"
}

# ---------------------------------------------------------------------------

make_legs
declare -a LEG_PID LEG_URI
export_leg 0 "$LEG0"
export_leg 1 "$LEG1"
[ $HAVE_VERIFY = 1 ] || note "this dst has no 'dst verify': no verify rows"
[ $HAVE_CSUM = 1 ] || note "this dst has no 'dst set --csum': its resync (today's copy) is the resync-copy row"

for rep in $(seq "$REPEAT"); do
	note "repeat $rep of $REPEAT"
	if [ $HAVE_CSUM = 1 ]; then
		resync_row resync-csum "$rep" on
	else
		resync_row resync-copy "$rep" on
	fi
	if [ $HAVE_VERIFY = 1 ]; then
		verify_row verify-csum "$rep"
		nbdcopy_row "$rep"
		if [ $HAVE_CSUM = 1 ]; then
			"$DST" set "$NAME" --csum off >/dev/null || die "dst set $NAME --csum off"
			verify_row verify-data "$rep"
		fi
	else
		nbdcopy_row "$rep"
	fi
	mirror_down
	if [ $HAVE_CSUM = 1 ]; then
		resync_row resync-copy "$rep" off
		mirror_down
	fi
done

# median ROW FIELD: of the repeats.
med() {
	local f
	for f in "$WORK/res/$1".*; do
		if [ -f "$f" ]; then cut -d' ' -f"$2" "$f"; fi
	done | median
}
# line ROW WHAT BASE: a table line; BASE the row the time ratio is against.
line() {
	local s c b
	s=$(med "$1" 1) c=$(med "$1" 2)
	[ -n "$s" ] || return 0
	b=$(med "$3" 1)
	printf '| %s | %.2f | %.0f | %.0f | %s |\n' "$2" "$s" "$(awk -v s="$s" -v b="$BYTES" 'BEGIN { print b / 1048576 / s }')" "$c" "$(ratio "$b" "$s")"
}
echo
echo "### verify of a $SIZE two-leg mirror over two dst exports (files in $LEGDIR), median of $REPEAT"
echo
echo "| row | seconds | MiB/s of the mirror | CPU ms/GiB | speed vs nbdcopy |"
echo "|---|---:|---:|---:|---:|"
line verify-csum "dst verify (checksums)" nbdcopy
line verify-data "dst verify --csum off (data)" nbdcopy
line nbdcopy "nbdcopy of both legs to null, at once" nbdcopy
echo
echo "### full resync of a $SIZE leg, $PERMILLE per mille of its blocks different, median of $REPEAT"
echo
echo "| row | seconds | MiB/s of the leg | CPU ms/GiB | speed vs copy |"
echo "|---|---:|---:|---:|---:|"
line resync-csum "resync with checksums" resync-copy
line resync-copy "resync --csum off (copy)" resync-copy
