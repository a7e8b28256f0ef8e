#!/usr/bin/env bash
# bench/run.sh - side-by-side NBD benchmarks: dst against nbdkit and qemu-nbd.
#
# Every server is driven by the same client (fio's nbd engine, one job, one
# connection) over loopback TCP, with the same backing, back to back in one run:
#
#   (a) memory: dst export mem:2G        vs nbdkit memory 2G
#   (b) file:   dst export FILE          vs nbdkit file FILE  vs qemu-nbd FILE
#               (one 2 GiB file, prefilled, served from the page cache)
#   (c) storage (bench/storage.sh): dst 2-node linear storage of memory nodes
#               vs nbdkit nbd-plugin proxy -> nbdkit memory vs nbdkit memory (a)
#               vs the same dst storage with DST_SPLICE=0 (dst-storage-copy:
#               every payload copied through the storage daemon's memory)
#   (d) mirror (bench/storage.sh): dst 2-leg mirror of memory nodes vs the
#               same storage over one memory node (the write cost of mirroring)
#               vs qemu-nbd's quorum driver over two memory nodes (qemu-quorum)
#   (e) resync (bench/storage.sh): a full resync of a mirror leg vs nbdcopy
#               of the same bytes between two nbdkit memory servers
#   (f) local storage (bench/storage.sh): dst 2-node linear storage over two
#               local files vs nbdkit split plugin over the same files
#   (g) relay ceiling (bench/relay.c, as bench/relay.sh): 1 MiB messages over
#               loopback TCP directly, through a copying and a splicing relay;
#               run right after sections (a), (c), (d), so that it sees the
#               same machine as their rows
#   Then the goals of issue 21 against the ratios of (c) and (d).
#
# Rows: seq read 1M QD16, seq write 1M QD16, rand read 4K QD32, rand write 4K QD32.
# For each run we also read the server's CPU time (utime+stime of every server
# process, from /proc/PID/stat) and report CPU milliseconds per GiB moved.
# Tables show medians over the repeats and ratios of the medians; with more
# than one repeat, a ratio is followed by the range of the per-repeat ratios
# (peers of a row run back to back, so each repeat is a pair).
#
# Environment:
#   BENCH_RUNTIME=10    seconds per fio run (2 for a smoke test)
#   BENCH_REPEAT=1      runs per cell; the table shows the median (3 for RESULTS.md)
#   BENCH_SIZE=2G       size of every backing (memory disks and the file)
#   BENCH_ORDER=row     row: all servers of a section up at once, each row run
#                       on them back to back (fair under drifting noise);
#                       server: one server at a time, its four rows, then the next
#   BENCH_ONLY="..."    only these servers (names as in the table, e.g.
#                       "dst-mem nbdkit-mem", or issue 21's "dst-storage
#                       nbdkit-proxy nbdkit-mem dst-mirror dst-single
#                       qemu-quorum"); default: all
#   BENCH_RELAY=0|1     section (g); default: on when dst-storage runs
#   BENCH_RELAY_GIB=4   GiB per relay run (BENCH_REPEAT runs of each path)
#   BENCH_MIRROR_SIZE   size of each node of (d) (default: half of BENCH_SIZE)
#   BENCH_RESYNC_SIZE   size of each leg of (e) (default: BENCH_MIRROR_SIZE)
#   BENCH_QUORUM_LEGS=dst|nbdkit  the nodes under qemu-quorum: `dst export
#                       mem:` (default, as the dst mirror's legs) or `nbdkit
#                       memory`
#   BENCH_DIR=DIR       scratch dir for the file, logs, state (default: mktemp)
#   BENCH_KEEP=1        keep BENCH_DIR (fio JSON, server logs) afterwards
#   BENCH_OUT=FILE      also write the final tables to FILE
#   BENCH_LOCAL_ALG=stripe|mirror  section (f) with that algorithm, not linear
#   BENCH_PERF=1        perf record -g each dst server during its rows
#                       (perturbs the numbers; data in BENCH_DIR/perf.*)
#   DST_BUILD=build     where dstd and dst are
#
# Servers listen on 127.0.0.1 only, on free ports; each is started, measured and
# stopped by PID; an EXIT trap stops whatever is left.
#
# Layout: start_* functions start one server (or topology) and print
# "PIDS URI"; run_row/run_rows drive fio against a URI and measure PIDS;
# run_group runs a section; bench/storage.sh adds the storage topologies.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DST_BUILD=${DST_BUILD:-build}
DST="$ROOT/$DST_BUILD/dst"
RUNTIME=${BENCH_RUNTIME:-10}
REPEAT=${BENCH_REPEAT:-1}
SIZE=${BENCH_SIZE:-2G}
ONLY=${BENCH_ONLY:-}
RELAY_GIB=${BENCH_RELAY_GIB:-4}
CLK_TCK=$(getconf CLK_TCK)

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
# shellcheck source=bench/lib_rows.sh
. "$ROOT/bench/lib_rows.sh"
# shellcheck source=bench/lib_relay.sh
. "$ROOT/bench/lib_relay.sh"

for tool in fio nbdkit qemu-nbd nbdinfo ss python3 numfmt; do
	command -v "$tool" >/dev/null || die "$tool not found (run scripts/deps.sh)"
done
[ -x "$DST" ] || die "$DST not built (run make)"
fio --enghelp=nbd >/dev/null 2>&1 || die "fio has no nbd engine"

if [ -n "${BENCH_DIR:-}" ]; then
	WORK=$BENCH_DIR
	mkdir -p "$WORK"
else
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/dst-bench.XXXXXX")
fi
mkdir -p "$WORK/state" "$WORK/fio" "$WORK/log" "$WORK/res"
export DST_STATE_DIR="$WORK/state"
PIDS_FILE="$WORK/pids" # every server pid we ever started, for the trap
: >"$PIDS_FILE"
DST_NAMES_FILE="$WORK/dst-names"
: >"$DST_NAMES_FILE"

# ---------------------------------------------------------------------------
# process helpers (more in lib.sh)

cleanup() {
	local rc=$? name pid
	set +e
	[ -n "${CHILD:-}" ] && kill_pid "$CHILD"
	while read -r name; do
		[ -n "$name" ] && "$DST" stop "$name" --force --timeout 5 >/dev/null 2>&1
	done <"$DST_NAMES_FILE"
	while read -r pid; do
		kill_pid "$pid"
	done <"$PIDS_FILE"
	if [ -n "${BENCH_KEEP:-}" ] || [ -n "${BENCH_DIR:-}" ]; then
		[ -n "${BENCH_KEEP:-}" ] && note "kept $WORK"
		rm -f "$WORK/disk.img" "$WORK/node1.img" "$WORK/node2.img"
	else
		rm -rf "$WORK"
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

track_pid() { echo "$1" >>"$PIDS_FILE"; }

# wait_nbd URI PID: until an NBD client can connect (the server PID must live).
wait_nbd() {
	local uri=$1 pid=$2 i
	for i in $(seq 150); do
		pid_alive "$pid" || return 1
		nbdinfo --size "$uri" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

# wait_pidfile FILE: until FILE holds a live pid; prints it.
wait_pidfile() {
	local f=$1 i pid
	for i in $(seq 150); do
		if [ -s "$f" ]; then
			pid=$(cat "$f")
			pid_alive "$pid" && { echo "$pid"; return 0; }
		fi
		sleep 0.1
	done
	return 1
}

# ---------------------------------------------------------------------------
# Server starters. Each starts one server (or topology) listening on
# 127.0.0.1, waits until it serves, and prints "PIDS URI" where PIDS is the
# comma-separated list of server processes whose CPU counts for it.
# stop_server PIDS stops them (dst daemons through `dst stop` first).

start_dst() { # start_dst NAME DISK [PORT]
	local name=$1 disk=$2 port pid
	port=${3:-$(free_port)}
	echo "$name" >>"$DST_NAMES_FILE"
	"$DST" export "$disk" --listen "127.0.0.1:$port" --name "$name" \
		>"$WORK/log/$name.out" 2>&1 || { cat "$WORK/log/$name.out" >&2; return 1; }
	pid=$(wait_pidfile "$DST_STATE_DIR/$name.pid") || return 1
	track_pid "$pid"
	wait_nbd "nbd://127.0.0.1:$port" "$pid" || return 1
	echo "$pid nbd://127.0.0.1:$port"
}

start_nbdkit() { # start_nbdkit NAME PLUGIN ARGS...
	local name=$1 port pid
	shift
	port=$(free_port)
	nbdkit -i 127.0.0.1 -p "$port" -P "$WORK/$name.pid" "$@" \
		>"$WORK/log/$name.out" 2>&1 || { cat "$WORK/log/$name.out" >&2; return 1; }
	pid=$(wait_pidfile "$WORK/$name.pid") || return 1
	track_pid "$pid"
	wait_nbd "nbd://127.0.0.1:$port" "$pid" || return 1
	echo "$pid nbd://127.0.0.1:$port"
}

start_dst_mem() { start_dst dst-mem "mem:$SIZE"; }
start_nbdkit_mem() { start_nbdkit nbdkit-mem memory "$SIZE"; }
start_dst_file() { start_dst dst-file "$FILE"; }
start_nbdkit_file() { start_nbdkit nbdkit-file file "$FILE"; }

start_qemu_file() {
	local port pid
	port=$(free_port)
	# --fork returns once it serves; -e 0: any number of clients; -t: persistent.
	qemu-nbd -f raw --cache=writeback --aio=threads -t -e 0 -x '' \
		-b 127.0.0.1 -p "$port" --fork --pid-file="$WORK/qemu-file.pid" "$FILE" \
		>"$WORK/log/qemu-file.out" 2>&1 || { cat "$WORK/log/qemu-file.out" >&2; return 1; }
	pid=$(wait_pidfile "$WORK/qemu-file.pid") || return 1
	track_pid "$pid"
	wait_nbd "nbd://127.0.0.1:$port" "$pid" || return 1
	echo "$pid nbd://127.0.0.1:$port"
}

stop_server() { # stop_server PIDS
	local pid name pidf
	for pid in ${1//,/ }; do
		for pidf in "$DST_STATE_DIR"/*.pid; do
			if [ ! -s "$pidf" ] || [ "$(cat "$pidf")" != "$pid" ]; then continue; fi
			name=$(basename "$pidf" .pid)
			"$DST" stop "$name" --force --timeout 10 >/dev/null 2>&1 || true
		done
		kill_pid "$pid"
	done
}

# ---------------------------------------------------------------------------
# fio


# prefill URI: write every byte once, so that reads never hit holes and
# writes never pay first-touch allocation.
# write_backing FILE SIZE: FILE written whole (1 MiB writes) and synced, so
# that the rows find it allocated and in the page cache.
write_backing() {
	local file=$1 size=$2
	note "writing $size backing file $file"
	child fio --name=mkfile --filename="$file" --rw=write --bs=1M --size="$size" \
		--ioengine=psync --output-format=json --output="$WORK/fio/mkfile.json" \
		>"$WORK/log/fio-mkfile.out" 2>&1 || die "cannot write $file"
	sync "$file"
}

prefill() {
	local uri=$1 t0=$SECONDS
	child fio --name=prefill --ioengine=nbd --uri="$uri" --rw=write --bs=1M \
		--iodepth=16 --numjobs=1 --output-format=json \
		--output="$WORK/fio/prefill.json" >"$WORK/log/fio-prefill.out" 2>&1 ||
		{ cat "$WORK/log/fio-prefill.out" >&2; return 1; }
	note "  prefilled in $((SECONDS - t0)) s"
}

# run_row SERVER URI PIDS ROW REP: one fio run; records "VALUE CPU_MS_PER_GIB"
# in $WORK/res/SERVER.ROW.REP. CPU is the utime+stime delta of PIDS.
run_row() {
	local server=$1 uri=$2 pids=$3 row=$4 rep=$5 json c0 c1 out bytes val cpu perfpid=
	json="$WORK/fio/$server.$row.$rep.json"
	if [ -n "${BENCH_PERF:-}" ] && [[ $server == dst* ]] && [ "$RUNTIME" -gt 3 ]; then
		perf record -g -p "${pids%%,*}" -o "$WORK/perf.$server.$row.$rep.data" \
			-- sleep $((RUNTIME - 2)) >/dev/null 2>&1 &
		perfpid=$!
	fi
	c0=$(cpu_ticks "$pids")
	# shellcheck disable=SC2086
	child fio --name="$row" --ioengine=nbd --uri="$uri" ${ROW_ARGS[$row]} \
		--numjobs=1 --time_based --runtime="$RUNTIME" \
		--output-format=json --output="$json" \
		>"$WORK/log/fio-$server.$row.$rep.out" 2>&1 ||
		{ cat "$WORK/log/fio-$server.$row.$rep.out" >&2; return 1; }
	c1=$(cpu_ticks "$pids")
	if [ -n "$perfpid" ]; then wait "$perfpid" || true; fi
	out=$(fio_result "$json" "$row") || return 1
	read -r bytes val <<<"$out"
	cpu=$(cpu_per_gib "$bytes" $((c1 - c0)))
	echo "$val $cpu" >"$WORK/res/$server.$row.$rep"
	note "  $(printf '%-13s %-19s %10.1f %-5s  cpu %7.1f ms/GiB' "$server" "${ROW_NAME[$row]}" "$val" "${ROW_UNIT[$row]}" "$cpu")"
}

# run_rows SERVER URI PIDS REP: the four rows against one server.
run_rows() {
	local row
	for row in "${ROWS[@]}"; do
		run_row "$1" "$2" "$3" "$row" "$4" || return 1
	done
}

# Started servers of the current group: name -> PIDS, name -> URI.
declare -A S_PIDS=() S_URI=()

# up SERVER STARTER PREFILL(0|1): start a server (and prefill it).
up() {
	local server=$1 starter=$2 fill=$3 out
	note "starting $server"
	out=$($starter) || die "$server failed to start (logs in $WORK/log)"
	read -r "S_PIDS[$server]" "S_URI[$server]" <<<"$out"
	if [ "$fill" = 1 ]; then
		prefill "${S_URI[$server]}" || die "prefill of $server failed"
	fi
}

down() { # down SERVER
	stop_server "${S_PIDS[$1]}"
	unset "S_PIDS[$1]" "S_URI[$1]"
}

# run_group ENTRY...: ENTRY is "SERVER STARTER PREFILL".
# BENCH_ORDER=row (default): start every server of the group, then for each
#   row and repeat run the servers back to back (reversed order on even
#   repeats), so that peers see the same machine noise; stop them all.
# BENCH_ORDER=server: per repeat, start one server, run its four rows, stop it.
run_group() {
	local entry server starter fill row rep i
	local names=() starters=() fills=()
	for entry in "$@"; do
		read -r server starter fill <<<"$entry"
		wanted "$server" || continue
		# a starter may come with a STARTER_available check (see storage.sh)
		if declare -F "${starter}_available" >/dev/null && ! "${starter}_available"; then
			note "$server: skipped ($("${starter}_why"))"
			continue
		fi
		names+=("$server")
		starters+=("$starter")
		fills+=("$fill")
	done
	[ ${#names[@]} -gt 0 ] || return 0
	if [ "${BENCH_ORDER:-row}" = server ]; then
		for rep in $(seq "$REPEAT"); do
			for i in "${!names[@]}"; do
				server=${names[$i]}
				[[ $server == *-file ]] && sync "$FILE"
				up "$server" "${starters[$i]}" "${fills[$i]}"
				run_rows "$server" "${S_URI[$server]}" "${S_PIDS[$server]}" "$rep" ||
					die "fio against $server failed"
				down "$server"
			done
		done
		return 0
	fi
	for i in "${!names[@]}"; do
		up "${names[$i]}" "${starters[$i]}" "${fills[$i]}"
	done
	local order=("${names[@]}") rorder=()
	for ((i = ${#names[@]} - 1; i >= 0; i--)); do rorder+=("${names[$i]}"); done
	for row in "${ROWS[@]}"; do
		for rep in $(seq "$REPEAT"); do
			if ((rep % 2)); then order=("${names[@]}"); else order=("${rorder[@]}"); fi
			for server in "${order[@]}"; do
				run_row "$server" "${S_URI[$server]}" "${S_PIDS[$server]}" "$row" "$rep" ||
					die "fio against $server failed"
			done
		done
	done
	for server in "${names[@]}"; do down "$server"; done
}

wanted() { [ -z "$ONLY" ] || [[ " $ONLY " == *" $1 "* ]]; }

# ---------------------------------------------------------------------------
# results

# table TITLE DST_SERVER PEER... : throughput then CPU, with dst/peer ratios.
table() {
	local title=$1 ours=$2 row s line
	shift 2
	local peers=("$@") any=0
	for s in "$ours" "${peers[@]}"; do
		for row in "${ROWS[@]}"; do [ -n "$(cell "$s" "$row" 1)" ] && any=1; done
	done
	[ $any = 1 ] || return 0
	echo
	echo "### $title"
	echo
	line="| row | $ours"
	for s in "${peers[@]}"; do line+=" | $s"; done
	for s in "${peers[@]}"; do line+=" | $ours/$s"; done
	echo "$line |"
	echo "|---|---:$(printf '|---:%.0s' "${peers[@]}" "${peers[@]}")|"
	for row in "${ROWS[@]}"; do
		local u=${ROW_UNIT[$row]} v
		v=$(cell "$ours" "$row" 1)
		line="| ${ROW_NAME[$row]} ($u) | $(fmt_val "$v" "$u")"
		for s in "${peers[@]}"; do line+=" | $(fmt_val "$(cell "$s" "$row" 1)" "$u")"; done
		for s in "${peers[@]}"; do
			line+=" | $(ratio "$v" "$(cell "$s" "$row" 1)")$(ratio_range "$ours" "$s" "$row" 1)"
		done
		echo "$line |"
	done
	for row in "${ROWS[@]}"; do
		local c
		c=$(cell "$ours" "$row" 2)
		line="| CPU ms/GiB ${ROW_NAME[$row]} | $(fmt_val "$c" ms)"
		for s in "${peers[@]}"; do line+=" | $(fmt_val "$(cell "$s" "$row" 2)" ms)"; done
		for s in "${peers[@]}"; do line+=" | $(ratio "$c" "$(cell "$s" "$row" 2)")"; done
		echo "$line |"
	done
}

# relay_table: section (g), and what a second hop costs in the rows of this
# run next to what it costs the relays (each as a fraction of its one hop).
relay_table() {
	local d s v one
	d=$(cell relay-direct relay 1)
	[ -n "$d" ] || return 0
	echo
	echo "### (g) relay ceiling: bench/relay.c ($RELAY_GIB GiB per run, median of $REPEAT), right after (a), (c), (d)"
	echo
	relay_header
	relay_rows
	echo
	echo "CPU: source, relay and sink together, per GiB moved."
	one=$(cell nbdkit-mem seqread 1)
	[ -n "$one" ] || return 0
	v="Seq read 1M QD16 over 2 hops as a fraction of one nbdkit hop in this run:"
	for s in nbdkit-proxy dst-storage; do
		[ -n "$(cell "$s" seqread 1)" ] && v+=" $s $(ratio "$(cell "$s" seqread 1)" "$one"),"
	done
	echo "$v against the relays' $(ratio "$(cell relay-copy relay 1)" "$d") (copy) and" \
		"$(ratio "$(cell relay-splice relay 1)" "$d") (splice)."
}

# ---------------------------------------------------------------------------
# the runs

# shellcheck source=bench/storage.sh
. "$ROOT/bench/storage.sh"

FILE="$WORK/disk.img"
need_file=0
for s in dst-file nbdkit-file qemu-file; do wanted "$s" && need_file=1; done
[ $need_file = 1 ] && write_backing "$FILE" "$SIZE"
for s in dst-local nbdkit-split; do
	if wanted "$s"; then
		write_local_nodes
		break
	fi
done

# Groups of servers measured together: name, starter, prefill through NBD
# first (1) or not (0). The memory group also holds the storage topologies of
# storage.sh, so its single-hop nbdkit-mem column is measured alongside them.
MEM_GROUP=(
	"dst-mem start_dst_mem 1"
	"nbdkit-mem start_nbdkit_mem 1"
	"${STORAGE_SERVERS[@]}"
)
FILE_GROUP=(
	"dst-file start_dst_file 0"
	"nbdkit-file start_nbdkit_file 0"
	"qemu-file start_qemu_file 0"
	"${LOCAL_SERVERS[@]}"
)

note "fio nbd engine, ${RUNTIME}s per run, median of $REPEAT, order ${BENCH_ORDER:-row};" \
	"$(nproc) cpus, $(uname -r)"
T0=$SECONDS
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
run_group "${MEM_GROUP[@]}"
if [ "${BENCH_RELAY:-$(wanted dst-storage && echo 1)}" = 1 ]; then
	note "relay ceiling: bench/relay.c, $RELAY_GIB GiB per run"
	relay_build "$WORK/relay"
	relay_runs "$WORK/relay" "$REPEAT" "$RELAY_GIB"
fi
run_group "${FILE_GROUP[@]}"
resync_bench

{
	echo
	echo "## dst benchmark $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "fio $(fio --version | sed 's/^fio-//') nbd engine, 1 job, loopback TCP, ${RUNTIME} s runs, median of $REPEAT;" \
		"$(nproc) cpus, kernel $(uname -r); backing $SIZE."
	echo "Load average (1/5/15 min) before: $LOAD0, after: $(cut -d' ' -f1-3 /proc/loadavg)" \
		"(the client and every server share the machine: other load skews the numbers)."
	echo "Values: MiB/s (seq) or IOPS (rand); CPU = server utime+stime per GiB moved (lower is better)."
	table "(a) memory backing" dst-mem nbdkit-mem
	table "(b) file backing (page cache)" dst-file nbdkit-file qemu-file
	storage_table
	relay_table
	storage_goals
} | tee ${BENCH_OUT:+"$BENCH_OUT"}
note "done in $((SECONDS - T0)) s"
