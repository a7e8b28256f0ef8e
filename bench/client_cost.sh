#!/usr/bin/env bash
# bench/client_cost.sh - what a 4K request costs the client: `dst export
# mem:SIZE` against `nbdkit memory SIZE` on a machine where the client is the
# bottleneck. fio (nbd engine, one job, one connection) is pinned to one CPU
# and the servers to another, so the client's CPU is all it has, and every
# microsecond a server makes it spend is IOPS lost.
#
# Servers: dst (as dstd runs by default), dst-nopoll (the same with
# DST_POLL_US=0: its event loop sleeps as soon as it has nothing to do, as
# dstd did before it polled) and nbdkit. For each row (rand read and rand
# write 4K QD32 by default) they run one after the other, in an order that
# rotates every repeat, and the table shows medians: IOPS and the ratio to
# nbdkit; the client's CPU per IO (fio's usr+sys from its JSON) and the
# server's (utime+stime of its process, /proc/PID/stat), in microseconds;
# how often per IO the client woke a server thread (perf's sched:sched_waking
# counted in fio's context: over loopback a send that finds the server
# asleep wakes it in the sender's time); and the TCP data segments per IO
# each way as the server counts them (`ss -ti`, sampled mid-run): out are
# replies, in are requests. And the CPU that other processes used during the
# run (all CPUs' busy time from /proc/stat less the client's and the
# server's, in % of one CPU): on a shared machine this is what to look at
# before believing a row; CC_QUIET waits for the machine to calm down.
#
# Environment:
#   CC_RUNTIME=10       seconds per fio run
#   CC_REPEAT=3         runs per server and row (the table shows medians)
#   CC_SIZE=1G          size of the memory disks
#   CC_ROWS="randread randwrite"   fio --rw values, 4K QD32 each
#   CC_SERVERS="dst dst-nopoll nbdkit"   which servers, in this order
#   CC_BASE_DST=PATH    a dst binary (with its dstd beside it) of another
#                       build, e.g. an older commit's: adds server dst-base
#   CC_CLIENT_CPU=0     CPU fio is pinned to
#   CC_SERVER_CPU=1     CPU the servers are pinned to ("" for both: no pinning)
#   CC_QUIET=PCT        before each run, wait (up to CC_QUIET_WAIT=600 s)
#                       until the machine is at most PCT % busy (all CPUs)
#   CC_OUT=FILE         also write the final table to FILE
#   DST_BUILD=build     where dst and dstd are
#
# Servers listen on 127.0.0.1 on free ports; all are stopped by PID at exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DST="$ROOT/${DST_BUILD:-build}/dst"
RUNTIME=${CC_RUNTIME:-10}
REPEAT=${CC_REPEAT:-3}
SIZE=${CC_SIZE:-1G}
read -r -a ROWS <<<"${CC_ROWS:-randread randwrite}"
read -r -a SERVERS <<<"${CC_SERVERS:-dst dst-nopoll nbdkit}"
BASE_DST=${CC_BASE_DST:-}
if [ -n "$BASE_DST" ]; then
	[ -x "$BASE_DST" ] || die "CC_BASE_DST $BASE_DST is not an executable"
	SERVERS=(dst-base "${SERVERS[@]}")
fi
CCPU=${CC_CLIENT_CPU-0}
SCPU=${CC_SERVER_CPU-1}
CLK_TCK=$(getconf CLK_TCK)

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

for tool in fio nbdkit nbdinfo ss python3 taskset; do
	command -v "$tool" >/dev/null || die "$tool not found (run scripts/deps.sh)"
done
[ -x "$DST" ] || die "$DST not built (run make)"
fio --enghelp=nbd >/dev/null 2>&1 || die "fio has no nbd engine"
if [ -n "$SCPU" ] && [ "$(nproc)" -lt 2 ]; then
	die "pinning client and server apart needs 2 CPUs (CC_SERVER_CPU= pins nothing)"
fi
# Wake-ups are counted only where perf may count a tracepoint in fio.
WAKES=0
if command -v perf >/dev/null && perf stat -e sched:sched_waking true >/dev/null 2>&1; then
	WAKES=1
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/dst-client-cost.XXXXXX")
mkdir -p "$WORK/state" "$WORK/res"
export DST_STATE_DIR="$WORK/state"
SERVER_PIDS=()
DST_NAMES=()

cleanup() {
	local rc=$? pid name
	set +e
	[ -n "${CHILD:-}" ] && kill_pid "$CHILD"
	for name in "${DST_NAMES[@]}"; do
		"$DST" stop "$name" --force --timeout 5 >/dev/null 2>&1
	done
	for pid in "${SERVER_PIDS[@]}"; do kill_pid "$pid"; done
	rm -rf "$WORK"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

pin() { # pin CPU CMD...: CMD on CPU, or unpinned if CPU is empty
	local cpu=$1
	shift
	if [ -n "$cpu" ]; then taskset -c "$cpu" "$@"; else "$@"; fi
}

wait_served() { # wait_served URI PID
	local i
	for i in $(seq 150); do
		pid_alive "$2" || return 1
		nbdinfo --size "$1" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

wait_pidfile() { # wait_pidfile FILE: prints the live pid in FILE
	local i
	for i in $(seq 150); do
		if [ -s "$1" ] && pid_alive "$(cat "$1")"; then
			cat "$1"
			return 0
		fi
		sleep 0.1
	done
	return 1
}

declare -A PID URI
start_server() { # start_server NAME
	local s=$1 port
	port=$(free_port)
	case $s in
	dst | dst-nopoll | dst-base)
		local poll='' bin=$DST
		[ "$s" = dst-nopoll ] && poll=0
		[ "$s" = dst-base ] && bin=$BASE_DST
		DST_NAMES+=("$s")
		DST_POLL_US=${poll:-${DST_POLL_US:-}} pin "$SCPU" "$bin" export "mem:$SIZE" \
			--listen "127.0.0.1:$port" --name "$s" >"$WORK/$s.out" 2>&1 ||
			{ cat "$WORK/$s.out" >&2; die "dst export failed"; }
		PID[$s]=$(wait_pidfile "$DST_STATE_DIR/$s.pid") || die "dstd of $s did not start"
		;;
	nbdkit)
		pin "$SCPU" nbdkit -i 127.0.0.1 -p "$port" -P "$WORK/nbdkit.pid" memory "$SIZE" \
			>"$WORK/nbdkit.out" 2>&1 || { cat "$WORK/nbdkit.out" >&2; die "nbdkit failed"; }
		PID[$s]=$(wait_pidfile "$WORK/nbdkit.pid") || die "nbdkit did not start"
		;;
	*) die "unknown server $s (dst, dst-nopoll, nbdkit)" ;;
	esac
	SERVER_PIDS+=("${PID[$s]}")
	URI[$s]="nbd://127.0.0.1:$port"
	wait_served "${URI[$s]}" "${PID[$s]}" || die "$s does not serve ${URI[$s]}"
	# Reads then find data everywhere and writes never allocate.
	child pin "$CCPU" fio --name=prefill --ioengine=nbd --uri="${URI[$s]}" --rw=write \
		--bs=1M --iodepth=16 --output="$WORK/prefill.out" >/dev/null 2>&1 ||
		die "prefill of $s failed"
}

# seg_counters PORT: the server side's data_segs_out, data_segs_in and
# bytes_received on the connection on PORT, "OUT IN BYTES" (nothing if none).
seg_counters() {
	ss -Htin "sport = :$1" | python3 -c '
import re, sys
t = sys.stdin.read()
v = [re.search(k + r":(\d+)", t) for k in ("data_segs_out", "data_segs_in", "bytes_received")]
if all(v):
    print(*(m.group(1) for m in v))'
}

# run SERVER ROW REP: one fio run; "IOPS CLIENT_US SERVER_US WAKES SEGS_OUT
# SEGS_IN OTHERS" (all but IOPS and OTHERS per IO, "-" where not measured;
# OTHERS: % of a CPU used by other processes) into $WORK/res/SERVER.ROW.REP.
run() {
	local s=$1 row=$2 rep=$3 json c0 c1 a b port fpid rc=0 perf=()
	json="$WORK/$s.$row.$rep.json"
	port=${URI[$s]##*:}
	rm -f "$WORK/wakes"
	[ $WAKES = 1 ] && perf=(perf stat -x "," -e sched:sched_waking -o "$WORK/wakes" --)
	wait_quiet
	c0=$(cpu_ticks "${PID[$s]}")
	local all0 all1 w0 w1
	all0=$(busy_ticks) w0=$(date +%s%N)
	pin "$CCPU" "${perf[@]}" fio --name="$row" --ioengine=nbd --uri="${URI[$s]}" \
		--rw="$row" --bs=4k --iodepth=32 --norandommap --numjobs=1 --time_based \
		--runtime="$RUNTIME" --output-format=json --output="$json" >"$WORK/fio.out" 2>&1 &
	fpid=$!
	CHILD=$fpid
	# Segment counters over the middle of the run (the connection's own).
	sleep 1
	a=$(seg_counters "$port")
	sleep $((RUNTIME > 3 ? RUNTIME - 2 : 1))
	b=$(seg_counters "$port")
	wait "$fpid" || rc=$?
	CHILD=
	[ $rc = 0 ] || { cat "$WORK/fio.out" >&2; die "fio $row against $s failed"; }
	c1=$(cpu_ticks "${PID[$s]}")
	all1=$(busy_ticks) w1=$(date +%s%N)
	python3 - "$json" $((c1 - c0)) "$CLK_TCK" "$a" "$b" "$WORK/wakes" $((all1 - all0)) \
		$(((w1 - w0) / 1000000)) \
		>"$WORK/res/$s.$row.$rep" <<'EOF'
import json, os, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
if j.get("error"):
    sys.exit("fio error %d" % j["error"])
r, w = j["read"], j["write"]
ios = r["total_ios"] + w["total_ios"]
secs = j["job_runtime"] / 1000
client_us = (j["usr_cpu"] + j["sys_cpu"]) / 100 * secs / ios * 1e6
server_us = int(sys.argv[2]) / int(sys.argv[3]) / ios * 1e6
wakes = "-"
if os.path.exists(sys.argv[6]):
    for line in open(sys.argv[6]):
        f = line.strip().split(",")
        if len(f) > 2 and f[2] == "sched:sched_waking" and f[0].isdigit():
            wakes = "%.3f" % (int(f[0]) / ios)
# Segments per IO over the sampled span, IOs counted by the bytes the
# server received: a request is 28 bytes, a write's carries 4096 more.
segs = "- -"
a, b = sys.argv[4].split(), sys.argv[5].split()
if len(a) == 3 and len(b) == 3:
    d = [int(y) - int(x) for x, y in zip(a, b)]
    n = d[2] / (28 + 4096 * (w["total_ios"] > 0))
    if n > 0:
        segs = "%.2f %.2f" % (d[0] / n, d[1] / n)
# What the rest of the machine used meanwhile (from fio's start to its end,
# wall_ms), in % of one CPU.
others = int(sys.argv[7]) / int(sys.argv[3]) - int(sys.argv[2]) / int(sys.argv[3])
others -= (j["usr_cpu"] + j["sys_cpu"]) / 100 * secs
print("%.0f %.2f %.2f %s %s %.0f" % (ios / secs, client_us, server_us, wakes, segs,
                                     max(0, others) / (int(sys.argv[8]) / 1000) * 100))
EOF
	note "$(printf '%-10s %-9s rep %s: %s' "$s" "$row" "$rep" "$(cat "$WORK/res/$s.$row.$rep")")"
}

# busy_ticks: busy time of all CPUs so far (/proc/stat, in ticks).
busy_ticks() {
	awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat
}

# wait_quiet: with CC_QUIET, until the machine was at most CC_QUIET % busy
# over 2 s (or CC_QUIET_WAIT s have passed: then go on, and say so).
wait_quiet() {
	[ -n "${CC_QUIET:-}" ] || return 0
	local t0=$SECONDS b0 b1 pct
	while :; do
		b0=$(busy_ticks)
		sleep 2
		b1=$(busy_ticks)
		pct=$(((b1 - b0) * 100 / (2 * CLK_TCK * $(nproc))))
		[ "$pct" -le "$CC_QUIET" ] && return 0
		if [ $((SECONDS - t0)) -ge "${CC_QUIET_WAIT:-600}" ]; then
			note "machine still ${pct}% busy after ${CC_QUIET_WAIT:-600} s; running anyway"
			return 0
		fi
		sleep 3
	done
}

col() { # col SERVER ROW FIELD: median over the repeats ("-" if not measured)
	local f v
	v=$(for f in "$WORK/res/$1.$2".*; do cut -d' ' -f"$3" "$f"; done | grep -v '^-$' | median)
	echo "${v:--}"
}

note "client on CPU ${CCPU:-any}, servers on CPU ${SCPU:-any}; ${RUNTIME}s runs, median of $REPEAT"
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
for s in "${SERVERS[@]}"; do start_server "$s"; done
n=${#SERVERS[@]}
for row in "${ROWS[@]}"; do
	for rep in $(seq "$REPEAT"); do
		for i in $(seq 0 $((n - 1))); do
			run "${SERVERS[$(((i + rep - 1) % n))]}" "$row" "$rep"
		done
	done
done
{
	echo
	echo "### client cost $(date -u '+%Y-%m-%d %H:%M UTC'): dst export mem:$SIZE vs nbdkit memory $SIZE"
	echo
	echo "fio $(fio --version | sed 's/^fio-//') nbd engine, 4K QD32, 1 job, ${RUNTIME} s runs," \
		"median of $REPEAT, servers in rotating order; client on CPU ${CCPU:-any}," \
		"servers on CPU ${SCPU:-any}; $(nproc) cpus, kernel $(uname -r)."
	echo "Load average before: $LOAD0, after: $(cut -d' ' -f1-3 /proc/loadavg)."
	echo "Per IO: client and server CPU in us, the client's wake-ups of a server thread," \
		"TCP data segments out (replies) and in (requests) as the server counts them;" \
		"others: CPU used by other processes during the runs, % of one CPU."
	echo
	echo "| row | server | IOPS | vs nbdkit | client us/IO | server us/IO | client wake-ups/IO | segs out/IO | segs in/IO | others % |"
	echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
	for row in "${ROWS[@]}"; do
		ref=
		[[ " ${SERVERS[*]} " == *" nbdkit "* ]] && ref=$(col nbdkit "$row" 1)
		for s in "${SERVERS[@]}"; do
			v=$(col "$s" "$row" 1)
			echo "| $row | $s | $(fmt_val "$v" IOPS) | $(ratio "$v" "$ref") | $(col "$s" "$row" 2)" \
				"| $(col "$s" "$row" 3) | $(col "$s" "$row" 4) | $(col "$s" "$row" 5) | $(col "$s" "$row" 6)" \
				"| $(col "$s" "$row" 7) |"
		done
	done
} | tee ${CC_OUT:+"$CC_OUT"}
