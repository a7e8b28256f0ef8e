#!/usr/bin/env bash
# bench/fuse.sh - a storage as a block device (issue 6): fio on the loop
# device over dst's FUSE file against the same storage through nbdfuse
# (libnbd's FUSE client) and a loop device, side by side in one run.
#
# One topology serves both columns: two `dst export mem:` nodes of
# $BENCH_SIZE/2, one dst alg_linear storage over them that serves NBD on its
# Unix socket and, with --fuse, the file dst.dev.
#   dst-fuse: dst attach --direct-io             -> /dev/loopA over dst.dev
#   nbdfuse:  nbdfuse nbd.dev nbd+unix://...sock -> losetup --direct-io=on
#             -> /dev/loopB over nbd.dev (nbdfuse's defaults: multi-threaded,
#             multi-conn)
# So the columns differ only in the FUSE server: dst's, inside the storage
# daemon, or nbdfuse, one more process and one more NBD hop in front of it.
#
# Rows (fio, libaio, direct=1 on the loop device, one job): seq read 1M QD16,
# seq write 1M QD16, rand read 4K QD32, rand write 4K QD32. Each row runs on
# both devices back to back (the order flips on even repeats); the table has
# the median of BENCH_REPEAT runs of each, and the median and range of the
# dst-fuse/nbdfuse ratios of the back-to-back pairs (a pair sees the same
# machine: the ratio of two medians would mix runs minutes apart when other
# load comes and goes). CPU is the
# utime+stime of the user-space servers (storage daemon and nodes, plus
# nbdfuse for its column) per GiB moved; the kernel's loop and FUSE work runs
# in fio's and kernel threads' time and is not counted on either side.
#
# Environment:
#   BENCH_RUNTIME=10    seconds per fio run
#   BENCH_REPEAT=1      runs per cell (3 for RESULTS.md)
#   BENCH_SIZE=2G       storage size (both nodes together)
#   BENCH_DIR=DIR       scratch dir (default: mktemp); BENCH_KEEP=1 keeps it
#   BENCH_OUT=FILE      also write the table to FILE
#   DST_BUILD=build     where dstd and dst are
#
# Needs root (losetup), /dev/fuse, loop devices, fio and nbdfuse (Debian:
# libnbd-bin). Everything it starts is stopped by PID, every loop device and
# mount it made is undone, on any exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DST_BUILD=${DST_BUILD:-build}
DST="$ROOT/$DST_BUILD/dst"
RUNTIME=${BENCH_RUNTIME:-10}
REPEAT=${BENCH_REPEAT:-1}
SIZE=${BENCH_SIZE:-2G}

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
# shellcheck source=bench/lib_rows.sh
. "$ROOT/bench/lib_rows.sh"

[ "$(id -u)" = 0 ] || die "needs root (losetup)"
[ -c /dev/fuse ] || die "no /dev/fuse"
for tool in fio nbdfuse losetup fusermount3 nbdinfo ss python3 numfmt; do
	command -v "$tool" >/dev/null || die "$tool not found (run scripts/deps.sh)"
done
[ -x "$DST" ] || die "$DST not built (run make)"

if [ -n "${BENCH_DIR:-}" ]; then
	WORK=$BENCH_DIR
	mkdir -p "$WORK"
else
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/dst-bench-fuse.XXXXXX")
fi
mkdir -p "$WORK/state" "$WORK/fio" "$WORK/log" "$WORK/res"
export DST_STATE_DIR="$WORK/state"
STORAGE=bench-fuse
NODES=(bench-fuse-n1 bench-fuse-n2)
DST_FILE=$WORK/dst.dev
NBD_FILE=$WORK/nbd.dev
LOOP_DST='' LOOP_NBD='' NBDFUSE_PID=''

is_mounted() {
	awk -v p="$1" '$5 == p { f = 1 } END { exit !f }' /proc/self/mountinfo
}

cleanup() {
	local rc=$? n
	set +e
	[ -n "$CHILD" ] && kill_pid "$CHILD"
	[ -n "$LOOP_NBD" ] && losetup -d "$LOOP_NBD"
	if [ -n "$NBDFUSE_PID" ]; then
		is_mounted "$NBD_FILE" && fusermount3 -u "$NBD_FILE"
		kill_pid "$NBDFUSE_PID"
		is_mounted "$NBD_FILE" && umount -l "$NBD_FILE"
	fi
	# dst stop detaches loopA and unmounts dst.dev.
	"$DST" stop "$STORAGE" --timeout 20 >/dev/null 2>&1
	for n in "${NODES[@]}"; do "$DST" stop "$n" --force --timeout 10 >/dev/null 2>&1; done
	for n in "$STORAGE" "${NODES[@]}"; do
		[ -s "$DST_STATE_DIR/$n.pid" ] && kill_pid "$(cat "$DST_STATE_DIR/$n.pid")"
	done
	is_mounted "$DST_FILE" && umount -l "$DST_FILE"
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

# ---- the topology ----

half=$(($(numfmt --from=iec "$SIZE") / 2 / 1048576))M
note "two dst export mem:$half nodes, a linear storage with --fuse, nbdfuse on its socket"
uris=()
for n in "${NODES[@]}"; do
	port=$(free_port)
	"$DST" export "mem:$half" --name "$n" --listen "127.0.0.1:$port" >"$WORK/log/$n.out" 2>&1 ||
		{ cat "$WORK/log/$n.out" >&2; die "dst export $n"; }
	uris+=("nbd://127.0.0.1:$port")
done
{
	"$DST" create "$STORAGE" --alg linear &&
		"$DST" add "$STORAGE" --remote "${uris[0]}" &&
		"$DST" add "$STORAGE" --remote "${uris[1]}" &&
		"$DST" start "$STORAGE" --fuse "$DST_FILE"
} >"$WORK/log/$STORAGE.out" 2>&1 || { cat "$WORK/log/$STORAGE.out" >&2; die "storage"; }
SERVER_PIDS=("$(cat "$DST_STATE_DIR/$STORAGE.pid")")
for n in "${NODES[@]}"; do SERVER_PIDS+=("$(cat "$DST_STATE_DIR/$n.pid")"); done
LOOP_DST=$("$DST" attach "$STORAGE" --direct-io) || die "dst attach"
LOOP_DST=$(tail -1 <<<"$LOOP_DST")

touch "$NBD_FILE"
nbdfuse -P "$WORK/nbdfuse.pid" "$NBD_FILE" "nbd+unix:///?socket=$DST_STATE_DIR/$STORAGE.sock" \
	>"$WORK/log/nbdfuse.out" 2>&1 &
for _ in $(seq 100); do
	[ -s "$WORK/nbdfuse.pid" ] && break
	sleep 0.1
done
[ -s "$WORK/nbdfuse.pid" ] || { cat "$WORK/log/nbdfuse.out" >&2; die "nbdfuse did not come up"; }
NBDFUSE_PID=$(cat "$WORK/nbdfuse.pid")
LOOP_NBD=$(losetup --find --show --direct-io=on "$NBD_FILE") || die "losetup on $NBD_FILE"
note "dst-fuse: $LOOP_DST over $DST_FILE; nbdfuse: $LOOP_NBD over $NBD_FILE (pid $NBDFUSE_PID)"

note "prefill through $LOOP_DST"
child fio --name=prefill --filename="$LOOP_DST" --ioengine=libaio --direct=1 --rw=write --bs=1M \
	--iodepth=16 --output="$WORK/fio/prefill.out" >/dev/null 2>&1 || die "prefill"

# ---- rows ----



note "fio libaio direct=1 on the loop devices, ${RUNTIME}s per run, median of $REPEAT; $(nproc) cpus, $(uname -r)"
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
T0=$SECONDS
for row in "${ROWS[@]}"; do
	for rep in $(seq "$REPEAT"); do
		if ((rep % 2)); then order=(dst-fuse nbdfuse); else order=(nbdfuse dst-fuse); fi
		for col in "${order[@]}"; do
			if [ "$col" = dst-fuse ]; then
				run_dev_row dst-fuse "$LOOP_DST" "$row" "$rep" "${SERVER_PIDS[@]}"
			else
				run_dev_row nbdfuse "$LOOP_NBD" "$row" "$rep" "${SERVER_PIDS[@]}" "$NBDFUSE_PID"
			fi
		done
	done
done

# ---- table ----


{
	echo
	echo "## FUSE frontend benchmark $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "Command: \`sudo BENCH_REPEAT=$REPEAT BENCH_RUNTIME=$RUNTIME BENCH_SIZE=$SIZE bench/fuse.sh\`."
	echo "fio $(fio --version | sed 's/^fio-//'), libaio, direct=1, 1 job, on loop devices with direct IO;" \
		"$RUNTIME s runs, median of $REPEAT; $(nproc) cpus, kernel $(uname -r)."
	echo "Both columns are the same dst storage (alg_linear over two \`dst export mem:$half\` nodes on loopback):"
	echo "dst-fuse is its own FUSE file (\`dst start --fuse\`, \`dst attach --direct-io\`), nbdfuse is"
	echo "nbdfuse $(nbdfuse --version 2>/dev/null | head -1 | awk '{print $2}') on its NBD socket plus \`losetup --direct-io=on\`."
	echo "Load average (1/5/15 min) before: $LOAD0, after: $(cut -d' ' -f1-3 /proc/loadavg)."
	echo "Values: MiB/s (seq) or IOPS (rand), medians; CPU = user-space servers' utime+stime per GiB"
	echo "moved. dst-fuse/nbdfuse: the median of the ratios of back-to-back pairs, and their range."
	echo
	echo "| row | dst-fuse | nbdfuse | dst-fuse/nbdfuse |"
	echo "|---|---:|---:|---:|"
	for row in "${ROWS[@]}"; do
		u=${ROW_UNIT[$row]}
		a=$(cell dst-fuse "$row" 1) b=$(cell nbdfuse "$row" 1)
		echo "| ${ROW_NAME[$row]} ($u) | $(fmt_val "$a" "$u") | $(fmt_val "$b" "$u") | $(pair_ratios dst-fuse nbdfuse "$row" 1) |"
	done
	for row in "${ROWS[@]}"; do
		a=$(cell dst-fuse "$row" 2) b=$(cell nbdfuse "$row" 2)
		echo "| CPU ms/GiB ${ROW_NAME[$row]} | $(fmt_val "$a" ms) | $(fmt_val "$b" ms) | $(pair_ratios dst-fuse nbdfuse "$row" 2) |"
	done
} | tee ${BENCH_OUT:+"$BENCH_OUT"}
note "done in $((SECONDS - T0)) s"
