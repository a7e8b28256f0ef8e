# shellcheck shell=bash
# bench/storage.sh - sourced by bench/run.sh: the storage rows (issue 3), the
# mirror rows (issue 4, below) and a storage of local files (at the end).
#
# A 2-node linear dst storage of memory-backed export nodes, next to the same
# topology built from existing tools (nbdkit's nbd plugin proxying to nbdkit
# memory: 2 hops), next to a single nbdkit memory export (the nbdkit-mem column
# of the memory section, measured in the same run). All on loopback.
# Goals (issue 3): dst-storage >= 1.5x nbdkit-proxy on seq rows, >= 2.5x on
# 4K random rows, and >= 0.8x nbdkit-mem on 4K random read. Issue 21 adds
# >= 0.85x nbdkit-mem on seq read, a mirror's seq write >= 0.85x of one node,
# and a mirror ahead of qemu-nbd's quorum driver on every row: storage_goals
# (at the end) prints them against the run's medians.
#
# CPU counts every process of the topology: storage daemon + both nodes for
# dst, proxy + backend for nbdkit.
#
# Uses from run.sh: $DST, $SIZE, $WORK, $DST_STATE_DIR, $DST_NAMES_FILE,
# free_port, track_pid, wait_pidfile, wait_nbd, start_dst, start_nbdkit, table,
# write_backing.

# nbdkit nbd plugin (proxy) -> nbdkit memory $SIZE.
# shellcheck disable=SC2153 # SIZE is set by run.sh, which sources this file
start_nbdkit_proxy() {
	local out bpid buri port pid uri
	out=$(start_nbdkit nbdkit-proxy-backend memory "$SIZE") || return 1
	read -r bpid buri <<<"$out"
	port=${buri##*:}
	out=$(start_nbdkit nbdkit-proxy nbd hostname=127.0.0.1 port="$port") || return 1
	read -r pid uri <<<"$out"
	echo "$pid,$bpid $uri"
}

# dst: two `dst export mem:` nodes of $SIZE/2 each, assembled by a linear
# storage served on its own port. Uses the CLI of issue 3
# (dst create/add/start); skipped until that exists.
start_dst_storage_available() { "$DST" create --help >/dev/null 2>&1; }
start_dst_storage_why() { echo "dst has no 'create' command yet"; }

# dst-storage-copy: the same with DST_SPLICE=0 (payloads copied through the
# storage daemon's memory, as before issue 21): what splicing gains, in the
# same run.
start_dst_storage_copy() { BENCH_STORAGE_NAME=bench-storage-copy DST_SPLICE=0 start_dst_storage; }

start_dst_storage() {
	local half out p1 p2 u1 u2 port pid name=${BENCH_STORAGE_NAME:-bench-storage}
	half=$(($(numfmt --from=iec "$SIZE") / 2 / 1048576))M
	out=$(start_dst "$name-node1" "mem:$half") || return 1
	read -r p1 u1 <<<"$out"
	out=$(start_dst "$name-node2" "mem:$half") || return 1
	read -r p2 u2 <<<"$out"
	port=$(free_port)
	echo "$name" >>"$DST_NAMES_FILE"
	{
		"$DST" delete "$name" 2>/dev/null || true
		"$DST" create "$name" --alg linear &&
			"$DST" add "$name" --remote "$u1" &&
			"$DST" add "$name" --remote "$u2" &&
			"$DST" start "$name" --listen "127.0.0.1:$port"
	} >"$WORK/log/$name.out" 2>&1 || { cat "$WORK/log/$name.out" >&2; return 1; }
	pid=$(wait_pidfile "$DST_STATE_DIR/$name.pid") || return 1
	track_pid "$pid"
	wait_nbd "nbd://127.0.0.1:$port" "$pid" || return 1
	echo "$pid,$p1,$p2 nbd://127.0.0.1:$port"
}

# ---------------------------------------------------------------------------
# alg_mirror (issue 4): the write cost of mirroring, and resync throughput.
#
# dst-mirror: `dst create --alg mirror` over two `dst export mem:$MSIZE` legs;
# dst-single: the same storage daemon in front of one `dst export mem:$MSIZE`
# node (alg_linear), so the only difference is the second leg and the
# mirror's bookkeeping (write-intent bitmap). Both 2 hops, measured in the
# memory group. CPU counts the storage daemon and every node.
#
# Resync: a 2-leg mirror of `dst export mem:$RSIZE` legs, written whole; leg
# 2's export is stopped (a memory disk: its data is gone) and, once the
# mirror has marked it dead, started again empty on the same port: the
# mirror finds no header of its own there and copies every region (1 MiB,
# four at a time, no --resync-rate). Time from the log's "resync of N regions
# starts" to "in sync again". Against it: nbdcopy (its defaults: 4
# connections, 64 requests in flight) from an nbdkit memory server written
# whole to a fresh one, the same number of bytes. CPU: the three dst daemons
# vs nbdcopy and both nbdkits.
#
#   BENCH_MIRROR_SIZE  size of each mirror leg and of the single node
#                      (default: half of BENCH_SIZE)
#   BENCH_RESYNC_SIZE  size of each resync leg (default: BENCH_MIRROR_SIZE)

MSIZE=${BENCH_MIRROR_SIZE:-$(($(numfmt --from=iec "$SIZE") / 2 / 1048576))M}
RSIZE=${BENCH_RESYNC_SIZE:-$MSIZE}

# dst_storage_up NAME ALG NODE...: create, add, start on a free port;
# prints the daemon's pid and URI. A NODE with :// is a remote node's URI,
# anything else a local disk.
dst_storage_up() {
	local name=$1 alg=$2 port pid u
	shift 2
	port=$(free_port)
	echo "$name" >>"$DST_NAMES_FILE"
	{
		"$DST" delete "$name" 2>/dev/null || true
		# New memory legs are alike: no initial sync under the measurement.
		"$DST" create "$name" --alg "$alg" $([ "$alg" = mirror ] && echo --assume-clean) ||
			exit 1
		for u in "$@"; do
			if [[ $u == *://* ]]; then
				"$DST" add "$name" --remote "$u" || exit 1
			else
				# The prefilled files are images, served whole as nbdkit's
				# split plugin serves them: no label.
				"$DST" add "$name" --disk "$u" --import || exit 1
			fi
		done
		"$DST" start "$name" --listen "127.0.0.1:$port"
	} >"$WORK/log/$name.out" 2>&1 || { cat "$WORK/log/$name.out" >&2; return 1; }
	pid=$(wait_pidfile "$DST_STATE_DIR/$name.pid") || return 1
	track_pid "$pid"
	wait_nbd "nbd://127.0.0.1:$port" "$pid" || return 1
	echo "$pid nbd://127.0.0.1:$port"
}

start_dst_mirror() {
	local out p1 p2 u1 u2 pid uri
	out=$(start_dst bench-mleg1 "mem:$MSIZE") || return 1
	read -r p1 u1 <<<"$out"
	out=$(start_dst bench-mleg2 "mem:$MSIZE") || return 1
	read -r p2 u2 <<<"$out"
	out=$(dst_storage_up bench-mirror mirror "$u1" "$u2") || return 1
	read -r pid uri <<<"$out"
	echo "$pid,$p1,$p2 $uri"
}

# qemu-quorum: qemu-nbd serving qemu's quorum block driver whose two children
# are qemu's nbd client connected to two memory nodes. A write goes to both
# children and completes once both answered (vote-threshold=1: it succeeds if
# one did); read-pattern=fifo: reads go to the first child, to the second only
# if that fails. The legs are the dst mirror's kind, `dst export mem:$MSIZE`,
# so the two columns differ only in what mirrors; BENCH_QUORUM_LEGS=nbdkit
# puts it over `nbdkit memory` nodes instead. qemu's NBD server and its NBD
# client each keep at most 16 requests in flight per connection
# (MAX_NBD_REQUESTS in qemu): the QD32 rows see at most 16 through it. CPU
# counts qemu-nbd and both legs.
#
#   BENCH_QUORUM_LEGS  dst (default) or nbdkit: the kind of node under quorum
start_qemu_quorum_available() { grep -q -- --image-opts <<<"$(qemu-nbd --help 2>&1)"; }
start_qemu_quorum_why() { echo "qemu-nbd has no --image-opts"; }

start_qemu_quorum() {
	local out p1 p2 u1 u2 port pid opts i u
	case ${BENCH_QUORUM_LEGS:-dst} in
	dst)
		out=$(start_dst bench-qleg1 "mem:$MSIZE") || return 1
		read -r p1 u1 <<<"$out"
		out=$(start_dst bench-qleg2 "mem:$MSIZE") || return 1
		read -r p2 u2 <<<"$out"
		;;
	nbdkit)
		out=$(start_nbdkit nbdkit-qleg1 memory "$MSIZE") || return 1
		read -r p1 u1 <<<"$out"
		out=$(start_nbdkit nbdkit-qleg2 memory "$MSIZE") || return 1
		read -r p2 u2 <<<"$out"
		;;
	*) note "BENCH_QUORUM_LEGS must be dst or nbdkit"; return 1 ;;
	esac
	opts=driver=quorum,vote-threshold=1,read-pattern=fifo
	i=0
	for u in "$u1" "$u2"; do
		u=${u#nbd://}
		opts+=",children.$i.driver=nbd,children.$i.server.type=inet"
		opts+=",children.$i.server.host=${u%:*},children.$i.server.port=${u##*:}"
		i=$((i + 1))
	done
	port=$(free_port)
	# As start_qemu_file: --fork returns once it serves, -e 0 any number of
	# clients, -t persistent; the default cache mode (writeback: no FUA).
	qemu-nbd -t -e 0 -x '' -b 127.0.0.1 -p "$port" --fork \
		--pid-file="$WORK/qemu-quorum.pid" --image-opts "$opts" \
		>"$WORK/log/qemu-quorum.out" 2>&1 || { cat "$WORK/log/qemu-quorum.out" >&2; return 1; }
	pid=$(wait_pidfile "$WORK/qemu-quorum.pid") || return 1
	track_pid "$pid"
	wait_nbd "nbd://127.0.0.1:$port" "$pid" || return 1
	echo "$pid,$p1,$p2 nbd://127.0.0.1:$port"
}

start_dst_single() {
	local out p1 u1 pid uri
	out=$(start_dst bench-snode "mem:$MSIZE") || return 1
	read -r p1 u1 <<<"$out"
	out=$(dst_storage_up bench-single linear "$u1") || return 1
	read -r pid uri <<<"$out"
	echo "$pid,$p1 $uri"
}

# ---------------------------------------------------------------------------
# A storage of local disks: a 2-node linear dst storage over two files of
# $SIZE/2 (written before the run, served from the page cache), its nodes
# served inside the storage daemon, against nbdkit's split plugin (nbdkit's
# own concatenation of local files) over the same two files. One process
# each. In the file group; the files are $LOCAL1 and $LOCAL2.

LOCAL1="$WORK/node1.img"
LOCAL2="$WORK/node2.img"

# write_local_nodes: the two files, once, if a server of this section runs.
write_local_nodes() {
	local half
	half=$(($(numfmt --from=iec "$SIZE") / 2 / 1048576))M
	write_backing "$LOCAL1" "$half"
	write_backing "$LOCAL2" "$half"
}

# BENCH_LOCAL_ALG=stripe|mirror: the same two files as an alg_stripe (64K
# chunks) or an alg_mirror; nbdkit has neither, so its column stays the
# concatenation.
start_dst_local() { dst_storage_up bench-local "${BENCH_LOCAL_ALG:-linear}" "$LOCAL1" "$LOCAL2"; }
start_nbdkit_split() { start_nbdkit nbdkit-split split "$LOCAL1" "$LOCAL2"; }

# show_attr NAME ATTR: one attribute of `dst show NAME`.
bench_show_attr() {
	"$DST" show "$1" 2>/dev/null | awk -v k="$1/$2" -F' : ' '$1 == k { print $2; exit }'
}

# log_ms FILE ERE: the timestamp (ms since the epoch) of the last line of
# FILE matching ERE.
log_ms() {
	grep -E "$2" "$1" | tail -1 | cut -d' ' -f1 |
		python3 -c 'import sys, datetime; print(int(datetime.datetime.fromisoformat(sys.stdin.read().strip()).timestamp() * 1000))'
}

# resync_rep REP: one full resync of bench-resync's leg 2; records
# "MiB/s CPU_MS_PER_GIB" in $WORK/res/dst-resync.copy.REP.
resync_rep() {
	local rep=$1 log="$DST_STATE_DIR/bench-resync.log" n0 out p2 c0 c1 t0 t1 bytes mibs cpu
	# --force: the mirror is its client, and losing the leg is the point.
	"$DST" stop bench-rleg2 --force --timeout 10 >/dev/null 2>&1 || return 1
	for _ in $(seq 100); do
		[ "$(bench_show_attr bench-resync health)" = AD ] && break
		sleep 0.1
	done
	[ "$(bench_show_attr bench-resync health)" = AD ] || { note "the mirror did not mark leg 2 dead"; return 1; }
	n0=$(grep -c "in sync again" "$log")
	c0=$(cpu_ticks "$RS_PIDS")
	out=$(start_dst bench-rleg2 "mem:$RSIZE" "$RS_PORT2") || return 1
	read -r p2 _ <<<"$out"
	for _ in $(seq 3000); do
		[ "$(grep -c "in sync again" "$log")" -gt "$n0" ] && break
		sleep 0.1
	done
	[ "$(grep -c "in sync again" "$log")" -gt "$n0" ] || { note "resync did not finish in 300 s"; return 1; }
	c1=$(($(cpu_ticks "$RS_PIDS") + $(cpu_ticks "$p2")))
	RS_PIDS2=$p2
	t0=$(log_ms "$log" "mirror: resync of [0-9]+ regions starts")
	t1=$(log_ms "$log" "in sync again")
	bytes=$(bench_show_attr bench-resync bytes)
	mibs=$(awk -v b="$bytes" -v ms=$((t1 - t0)) 'BEGIN { printf "%.1f", (ms > 0 ? b / 1048576 / (ms / 1000) : 0) }')
	cpu=$(awk -v b="$bytes" -v t=$((c1 - c0)) -v hz="$CLK_TCK" 'BEGIN { printf "%.1f", t * 1000 / hz / (b / 1073741824) }')
	echo "$mibs $cpu" >"$WORK/res/dst-resync.copy.$rep"
	note "  $(printf '%-13s %-19s %10.1f MiB/s  cpu %7.1f ms/GiB  (%s)' dst-resync "full resync" "$mibs" "$cpu" \
		"$(grep "in sync again" "$log" | tail -1 | sed 's/.*: leg //')")"
}

# nbdcopy_rep REP: nbdcopy from the written source to a fresh nbdkit memory.
nbdcopy_rep() {
	local rep=$1 out dpid duri tf real user sys cpu mibs bytes c0 c1
	out=$(start_nbdkit "nbdkit-copydst-$rep" memory "$RSIZE") || return 1
	read -r dpid duri <<<"$out"
	bytes=$(nbdinfo --size "$NC_SRC")
	tf="$WORK/log/nbdcopy.$rep.time"
	c0=$(cpu_ticks "$NC_SPID,$dpid")
	{
		TIMEFORMAT='%R %U %S'
		time nbdcopy "$NC_SRC" "$duri" >"$WORK/log/nbdcopy.$rep.out" 2>&1
	} 2>"$tf" || { cat "$WORK/log/nbdcopy.$rep.out" >&2; return 1; }
	c1=$(cpu_ticks "$NC_SPID,$dpid")
	read -r real user sys <"$tf"
	mibs=$(awk -v b="$bytes" -v r="$real" 'BEGIN { printf "%.1f", b / 1048576 / r }')
	cpu=$(awk -v b="$bytes" -v t=$((c1 - c0)) -v hz="$CLK_TCK" -v u="$user" -v s="$sys" \
		'BEGIN { printf "%.1f", (t / hz + u + s) * 1000 / (b / 1073741824) }')
	echo "$mibs $cpu" >"$WORK/res/nbdcopy.copy.$rep"
	note "  $(printf '%-13s %-19s %10.1f MiB/s  cpu %7.1f ms/GiB' nbdcopy "copy" "$mibs" "$cpu")"
	stop_server "$dpid"
}

# resync_bench: both measurements, BENCH_REPEAT times each, alternating.
resync_bench() {
	local out p1 u1 p2 u2 pid uri rep
	wanted dst-resync || wanted nbdcopy || return 0
	command -v nbdcopy >/dev/null || { note "resync: skipped (no nbdcopy)"; return 0; }
	note "starting the resync mirror (2 x dst export mem:$RSIZE)"
	out=$(start_dst bench-rleg1 "mem:$RSIZE") || die "resync leg 1"
	read -r p1 u1 <<<"$out"
	out=$(start_dst bench-rleg2 "mem:$RSIZE") || die "resync leg 2"
	read -r p2 u2 <<<"$out"
	RS_PORT2=${u2##*:}
	out=$(dst_storage_up bench-resync mirror "$u1" "$u2") || die "resync mirror"
	read -r pid uri <<<"$out"
	RS_PIDS="$pid,$p1"
	prefill "$uri" || die "prefill of the resync mirror"
	note "starting nbdkit memory $RSIZE as the nbdcopy source"
	out=$(start_nbdkit nbdkit-copysrc memory "$RSIZE") || die "nbdkit source"
	read -r NC_SPID NC_SRC <<<"$out"
	prefill "$NC_SRC" || die "prefill of the nbdcopy source"
	for rep in $(seq "$REPEAT"); do
		resync_rep "$rep" || die "resync run $rep failed (logs in $WORK/log, $DST_STATE_DIR)"
		nbdcopy_rep "$rep" || die "nbdcopy run $rep failed"
	done
	stop_server "$pid"
	stop_server "$p1,${RS_PIDS2:-}"
	stop_server "$NC_SPID"
}

# Entries for run.sh's server list: name, starter, prefill.
# shellcheck disable=SC2034 # used by run.sh
STORAGE_SERVERS=(
	"dst-storage start_dst_storage 1"
	"dst-storage-copy start_dst_storage_copy 1"
	"nbdkit-proxy start_nbdkit_proxy 1"
	"dst-mirror start_dst_mirror 1"
	"dst-single start_dst_single 1"
	"qemu-quorum start_qemu_quorum 1"
)
# For the file group: no prefill (the files were written whole).
# shellcheck disable=SC2034 # used by run.sh
LOCAL_SERVERS=(
	"dst-local start_dst_local 0"
	"nbdkit-split start_nbdkit_split 0"
)

storage_table() {
	table "(c) 2-hop storage over memory nodes (nbdkit-mem: single hop, from (a))" \
		dst-storage nbdkit-proxy nbdkit-mem dst-storage-copy
	table "(d) write cost of mirroring: 2-leg mirror vs the same storage over one node, and vs qemu-nbd's quorum over two nodes (${BENCH_QUORUM_LEGS:-dst} legs; memory nodes of $MSIZE)" \
		dst-mirror dst-single qemu-quorum
	resync_table
	table "(f) storage (${BENCH_LOCAL_ALG:-linear}) over two local files (page cache) vs nbdkit's split plugin over the same files" \
		dst-local nbdkit-split
}

resync_table() {
	local dv dc nv nc
	dv=$(cell dst-resync copy 1) dc=$(cell dst-resync copy 2)
	nv=$(cell nbdcopy copy 1) nc=$(cell nbdcopy copy 2)
	[ -n "$dv$nv" ] || return 0
	echo
	echo "### (e) resync throughput: full copy of a $RSIZE mirror leg vs nbdcopy of the same bytes"
	echo
	echo "dst-resync: 2-leg mirror of \`dst export mem:$RSIZE\`, leg 2 restarted empty, 1 MiB regions"
	echo "copied four at a time; nbdcopy (defaults) from nbdkit memory (written whole) to a fresh one."
	echo
	echo "| row | dst-resync | nbdcopy | dst-resync/nbdcopy |"
	echo "|---|---:|---:|---:|"
	echo "| copy (MiB/s) | $(fmt_val "$dv" MiB/s) | $(fmt_val "$nv" MiB/s) | $(ratio "$dv" "$nv") |"
	echo "| CPU ms/GiB copied | $(fmt_val "$dc" ms) | $(fmt_val "$nc" ms) | $(ratio "$dc" "$nc") |"
}

# goal_line A B ROW OP LIMIT: "- A/B ROW: R (goal OP LIMIT): met|not met"
# from the medians of A and B, if both were measured. OP is >= or >.
goal_line() {
	local a b
	a=$(cell "$1" "$3" 1) b=$(cell "$2" "$3" 1)
	[ -n "$a" ] && [ -n "$b" ] || return 0
	awk -v a="$a" -v b="$b" -v op="$4" -v lim="$5" -v what="$1/$2 ${ROW_NAME[$3]}" 'BEGIN {
		if (b <= 0) exit
		r = a / b; ok = op == ">=" ? r >= lim : r > lim
		printf "- %s: %.2fx (goal %s %.2fx): %s\n", what, r, op, lim, ok ? "met" : "not met" }'
}

# storage_goals: issue 21's goals for sections (c) and (d), from the medians.
storage_goals() {
	local out row
	out=$(
		goal_line dst-storage nbdkit-proxy seqread ">=" 1.5
		goal_line dst-storage nbdkit-proxy seqwrite ">=" 1.5
		goal_line dst-storage nbdkit-mem seqread ">=" 0.85
		goal_line dst-storage nbdkit-proxy randread ">=" 2.5
		goal_line dst-storage nbdkit-proxy randwrite ">=" 2.5
		goal_line dst-mirror dst-single seqwrite ">=" 0.85
		for row in "${ROWS[@]}"; do goal_line dst-mirror qemu-quorum "$row" ">" 1; done
	)
	[ -n "$out" ] || return 0
	echo
	echo "### Goals of issue 21 (ratios of the medians of (c) and (d))"
	echo
	echo "$out"
}
