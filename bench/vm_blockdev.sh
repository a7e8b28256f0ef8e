#!/usr/bin/env bash
# bench/vm_blockdev.sh - a storage as a block device three ways, in a VM with
# a real kernel (issues 17 and 18): fio on /dev/ublkbN (`dst start NAME
# --ublk`: requests through io_uring, user copy), on /dev/nbdN (`dst start
# NAME -f /dev/nbdN`, kernel NBD over netlink) and on the loop device over
# the same storage's FUSE file (`dst start NAME --fuse FILE`, `dst attach
# --direct-io`).
# Run it in the guest, as root:
#
#   make all && DST_VM_TIMEOUT=900 tests/vm/run bench/vm_blockdev.sh
#
# (tests/vm/run passes only DST_* variables into the guest: give BENCH_*
# through env, e.g. tests/vm/run /usr/bin/env BENCH_REPEAT=5 bench/vm_blockdev.sh.)
#
# One storage serves both columns: alg_linear over two `dst export mem:`
# nodes of $BENCH_SIZE/2 on loopback, prefilled once. Its daemon has one
# frontend at a time, so the storage is stopped and started again with the
# next one between columns (the nodes and their data stay).
#   ublk: dst start NAME --ublk                -> /dev/ublkbN
#   knbd: dst start NAME -f /dev/nbd0          -> /dev/nbd0
#   fuse: dst start NAME --fuse FILE; dst attach NAME --direct-io -> /dev/loopN
#
# Rows (fio, libaio, direct=1, one job): seq read 1M QD16, seq write 1M QD16,
# rand read 4K QD32, rand write 4K QD32. Each row runs on the three columns
# back to back (the order rotates with the repeats); the table has the median
# of BENCH_REPEAT runs of each, and the median and range of the ublk/fuse and
# ublk/knbd ratios of the back-to-back runs. Under TCG (no KVM) the guest's times are not real
# times: only the ratios mean anything, and the output says which it was.
#
# Environment:
#   BENCH_RUNTIME=5     seconds per fio run
#   BENCH_REPEAT=3      runs per cell
#   BENCH_SIZE=256M     storage size (both nodes together; the guest has 1.5G)
#   BENCH_OUT=FILE      also write the table to FILE (a path the guest can
#                       write: under the checkout it is read-only, /tmp is the
#                       guest's own)
#   DST_BUILD=build     where dstd and dst are
#
# Not a test: make vm-check does not run it. Everything it starts is stopped
# by PID, the loop device detached, on any exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DST_BUILD=${DST_BUILD:-build}
DST="$ROOT/$DST_BUILD/dst"
RUNTIME=${BENCH_RUNTIME:-5}
REPEAT=${BENCH_REPEAT:-3}
SIZE=${BENCH_SIZE:-256M}

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
# shellcheck source=bench/lib_rows.sh
. "$ROOT/bench/lib_rows.sh"

[ "$(id -u)" = 0 ] || die "needs root: run it in a VM with tests/vm/run bench/vm_blockdev.sh"
[ -e /dev/nbd0 ] || die "no /dev/nbd0 (this kernel has no nbd): run it with tests/vm/run bench/vm_blockdev.sh"
[ -e /dev/ublk-control ] || die "no /dev/ublk-control (this kernel has no ublk): run it with tests/vm/run bench/vm_blockdev.sh"
[ -c /dev/fuse ] || die "no /dev/fuse"
[ -e /dev/loop-control ] || die "no loop devices"
for tool in fio losetup ss python3 numfmt; do
	command -v "$tool" >/dev/null || die "$tool not found (run scripts/deps.sh)"
done
[ -x "$DST" ] || die "$DST not built (run make)"

# What runs the guest: systemd-detect-virt --vm says kvm, or qemu for TCG
# (without --vm it sees the host's container through the shared root).
ACCEL=$(systemd-detect-virt --vm 2>/dev/null || true)
case $ACCEL in
kvm) ACCEL_NOTE="KVM" ;;
qemu) ACCEL_NOTE="TCG (emulated CPU: the times are not real times, only the ratios mean anything)" ;;
*) ACCEL_NOTE="${ACCEL:-unknown}" ;;
esac

WORK=$(mktemp -d "${TMPDIR:-/tmp}/dst-bench-vm.XXXXXX")
mkdir -p "$WORK/state" "$WORK/fio" "$WORK/log" "$WORK/res"
export DST_STATE_DIR="$WORK/state"
STORAGE=bench-bd
NODES=(bench-bd-n1 bench-bd-n2)
NBD=
for d in /sys/block/nbd*; do
	[ -e "$d/pid" ] && continue
	NBD=/dev/$(basename "$d")
	break
done
[ -n "$NBD" ] || die "every /dev/nbdN is connected already"
FUSE_FILE=$WORK/dst.dev
COL= # the frontend the storage runs with now: ublk, knbd, fuse or none
UBLK_Q= UBLK_D= # its queues and depth, as dst show says
DEV=

is_mounted() {
	awk -v p="$1" '$5 == p { f = 1 } END { exit !f }' /proc/self/mountinfo
}

cleanup() {
	local rc=$? n
	set +e
	[ -n "$CHILD" ] && kill_pid "$CHILD"
	# dst stop detaches the loop device, unmounts the FUSE file or
	# disconnects the nbd device.
	"$DST" stop "$STORAGE" --timeout 20 >/dev/null 2>&1
	for n in "${NODES[@]}"; do "$DST" stop "$n" --force --timeout 10 >/dev/null 2>&1; done
	for n in "$STORAGE" "${NODES[@]}"; do
		[ -s "$DST_STATE_DIR/$n.pid" ] && kill_pid "$(cat "$DST_STATE_DIR/$n.pid")"
	done
	is_mounted "$FUSE_FILE" && umount -l "$FUSE_FILE"
	rm -rf "$WORK"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# use COLUMN: the storage running with that frontend, its device in DEV.
use() {
	[ "$COL" = "$1" ] && return 0
	if [ "$COL" != none ]; then
		"$DST" stop "$STORAGE" --timeout 20 >>"$WORK/log/$STORAGE.out" 2>&1 || die "dst stop $STORAGE"
	fi
	# Each start says its one frontend; --no-* forgets the others (the
	# config keeps what a start was given).
	if [ "$1" = ublk ]; then
		"$DST" start "$STORAGE" --ublk --no-fuse >>"$WORK/log/$STORAGE.out" 2>&1 ||
			{ cat "$WORK/log/$STORAGE.out" >&2; die "dst start $STORAGE --ublk"; }
		local show
		show=$("$DST" show "$STORAGE")
		DEV=$(awk -F' : ' -v k="$STORAGE/ublk_device" '$1 == k { print $2 }' <<<"$show")
		UBLK_Q=$(awk -F' : ' -v k="$STORAGE/ublk_queues" '$1 == k { print $2 }' <<<"$show")
		UBLK_D=$(awk -F' : ' -v k="$STORAGE/ublk_depth" '$1 == k { print $2 }' <<<"$show")
	elif [ "$1" = knbd ]; then
		"$DST" start "$STORAGE" -f "$NBD" --no-ublk >>"$WORK/log/$STORAGE.out" 2>&1 ||
			{ cat "$WORK/log/$STORAGE.out" >&2; die "dst start $STORAGE -f $NBD"; }
		DEV=$NBD
	else
		"$DST" start "$STORAGE" --fuse "$FUSE_FILE" --no-ublk >>"$WORK/log/$STORAGE.out" 2>&1 ||
			{ cat "$WORK/log/$STORAGE.out" >&2; die "dst start $STORAGE --fuse"; }
		DEV=$("$DST" attach "$STORAGE" --direct-io | tail -1) || die "dst attach"
		# Before dst attach stat'ed the FUSE file, Linux 6.12's loop
		# driver made a 0-byte device of it: say so if it ever does
		# again, and attach it again.
		if [ "$(blockdev --getsize64 "$DEV")" = 0 ]; then
			note "$DEV has size 0 after dst attach ($(losetup -l -n "$DEV")); attaching again"
			"$DST" detach "$STORAGE" >/dev/null || die "dst detach"
			DEV=$("$DST" attach "$STORAGE" --direct-io | tail -1) || die "dst attach"
		fi
	fi
	COL=$1
	BYTES=$("$DST" show "$STORAGE" | awk -F' : ' -v k="$STORAGE/bytes" '$1 == k { print $2 }')
	SERVER_PIDS=("$(cat "$DST_STATE_DIR/$STORAGE.pid")")
	for n in "${NODES[@]}"; do SERVER_PIDS+=("$(cat "$DST_STATE_DIR/$n.pid")"); done
	# The device has the storage's size before fio opens it.
	for _ in $(seq 50); do
		[ "$(blockdev --getsize64 "$DEV" 2>/dev/null)" = "$BYTES" ] && return 0
		sleep 0.1
	done
	die "$DEV has $(blockdev --getsize64 "$DEV" 2>&1), not the storage's $BYTES bytes ($(losetup -l "$DEV" 2>&1 | tail -1))"
}

# ---- the topology ----

half=$(($(numfmt --from=iec "$SIZE") / 2 / 1048576))M
note "two dst export mem:$half nodes, a linear storage over them; /dev/ublkbN, $NBD and a FUSE file + loop device"
uris=()
for n in "${NODES[@]}"; do
	port=$(free_port)
	"$DST" export "mem:$half" --name "$n" --listen "127.0.0.1:$port" --buffers 32M \
		>"$WORK/log/$n.out" 2>&1 || { cat "$WORK/log/$n.out" >&2; die "dst export $n"; }
	uris+=("nbd://127.0.0.1:$port")
done
{
	"$DST" create "$STORAGE" --alg linear &&
		"$DST" add "$STORAGE" --remote "${uris[0]}" &&
		"$DST" add "$STORAGE" --remote "${uris[1]}"
} >"$WORK/log/$STORAGE.out" 2>&1 || { cat "$WORK/log/$STORAGE.out" >&2; die "storage"; }
COL=none
use knbd
note "prefill through $DEV"
child fio --name=prefill --filename="$DEV" --ioengine=libaio --direct=1 --rw=write --bs=1M \
	--iodepth=16 --output="$WORK/fio/prefill.out" >/dev/null 2>&1 || die "prefill"

# ---- rows ----



note "fio libaio direct=1, ${RUNTIME}s per run, median of $REPEAT; guest: $ACCEL_NOTE, $(nproc) cpus, $(uname -r)"
T0=$SECONDS
for row in "${ROWS[@]}"; do
	for rep in $(seq "$REPEAT"); do
		# Start with the column already running, the others in turn.
		case $COL in
		ublk) order=(ublk knbd fuse) ;;
		knbd) order=(knbd fuse ublk) ;;
		*) order=(fuse ublk knbd) ;;
		esac
		for col in "${order[@]}"; do
			use "$col"
			run_dev_row "$col" "$DEV" "$row" "$rep" "${SERVER_PIDS[@]}"
		done
	done
done

# ---- table ----

ublk_queues() { echo "${UBLK_Q:-?}"; }
ublk_depth() { echo "${UBLK_D:-?}"; }


{
	echo
	echo "## Block device in a VM: ublk vs FUSE + loop vs kernel NBD $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "Command: \`DST_VM_TIMEOUT=900 tests/vm/run /usr/bin/env BENCH_REPEAT=$REPEAT BENCH_RUNTIME=$RUNTIME BENCH_SIZE=$SIZE bench/vm_blockdev.sh\`."
	echo "Guest: $ACCEL_NOTE; $(nproc) cpus, $(awk '/MemTotal/ { printf "%d MiB", $2 / 1024 }' /proc/meminfo), kernel $(uname -r)."
	echo "fio $(fio --version | sed 's/^fio-//'), libaio, direct=1, 1 job; $RUNTIME s runs, median of $REPEAT."
	echo "One dst storage (alg_linear over two \`dst export mem:$half\` nodes on loopback), prefilled;"
	echo "ublk is \`dst start --ublk\` ($(ublk_queues) queues of $(ublk_depth), user copy), knbd is \`dst start -f $NBD\` (kernel NBD),"
	echo "fuse is \`dst start --fuse\` + \`dst attach --direct-io\` (loop)."
	echo "Values: MiB/s (seq) or IOPS (rand), medians; CPU = the storage's and nodes' utime+stime per GiB"
	echo "moved. Ratios: the median of the ratios of back-to-back runs, and their range."
	echo
	echo "| row | ublk | fuse | knbd | ublk/fuse | ublk/knbd |"
	echo "|---|---:|---:|---:|---:|---:|"
	for row in "${ROWS[@]}"; do
		u=${ROW_UNIT[$row]}
		a=$(cell ublk "$row" 1) b=$(cell fuse "$row" 1) c=$(cell knbd "$row" 1)
		echo "| ${ROW_NAME[$row]} ($u) | $(fmt_val "$a" "$u") | $(fmt_val "$b" "$u") | $(fmt_val "$c" "$u") | $(pair_ratios ublk fuse "$row" 1) | $(pair_ratios ublk knbd "$row" 1) |"
	done
	for row in "${ROWS[@]}"; do
		a=$(cell ublk "$row" 2) b=$(cell fuse "$row" 2) c=$(cell knbd "$row" 2)
		echo "| CPU ms/GiB ${ROW_NAME[$row]} | $(fmt_val "$a" ms) | $(fmt_val "$b" ms) | $(fmt_val "$c" ms) | $(pair_ratios ublk fuse "$row" 2) | $(pair_ratios ublk knbd "$row" 2) |"
	done
} | tee ${BENCH_OUT:+"$BENCH_OUT"}
note "done in $((SECONDS - T0)) s"
