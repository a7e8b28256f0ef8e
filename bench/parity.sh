#!/usr/bin/env bash
# bench/parity.sh - alg_parity 4+2 against a 3-way alg_mirror (issue 20):
# the same tolerance (any two nodes lost), 1.5x against 3x the bytes.
#
# Topology, all on 127.0.0.1: six `dst export` nodes of files (BENCH_SIZE/4
# each, plus 4 KiB for the label) under a 4+2 parity storage (chunk 64K),
# and three `dst export` nodes of files (BENCH_SIZE each) under a 3-leg
# mirror; both storages BENCH_SIZE, created with --assume-clean and written
# whole once (1M writes) before the rows, so reads never hit holes.
#
# Rows (fio nbd engine, 1 job, 1 connection, BENCH_RUNTIME s each, the two
# storages back to back, their order swapped every other repeat):
#   seq write 1M QD16   full rows: 1M is 4 rows of 4 x 64K, row-aligned
#   seq read 1M QD16, rand write 4K QD32, rand read 4K QD32
#   seq read 1M QD16 with one node out (its export stopped), then with two:
#     parity rotates over the nodes, so a node out holds data in 4 rows of
#     6 (those chunks are rebuilt from 4 others) and parity in 2; the
#     mirror's rows with one and two legs out, for reference.
# Each row: MiB/s or IOPS, and CPU ms per GiB moved of the storage's dstd
# alone (where the parity math runs) and of all its processes (dstd and its
# nodes). Medians of BENCH_REPEAT.
# Goals: full-row seq write >= 1.5x the mirror's (it moves half the bytes);
# rand 4K write >= 0.5x the mirror's; seq read with a node out >= 0.5x the
# healthy seq read.
#
# Environment:
#   BENCH_SIZE=1G       size of each storage (a multiple of 4 MiB)
#   BENCH_RUNTIME=10    seconds per fio run
#   BENCH_REPEAT=3      repeats; the table shows medians
#   BENCH_NODEDIR=DIR   where the node files go (default: the scratch dir;
#                       not tmpfs, see bench/verify.sh)
#   BENCH_DIR=DIR       scratch dir for logs and state (default: mktemp)
#   BENCH_KEEP=1        keep BENCH_DIR afterwards
#   DST_BUILD=build     where dstd and dst are
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DST_BUILD=${DST_BUILD:-build}
DST="$ROOT/$DST_BUILD/dst"
REPEAT=${BENCH_REPEAT:-3}
RUNTIME=${BENCH_RUNTIME:-10}
SIZE=${BENCH_SIZE:-1G}
K=4 M=2 CHUNK=65536 LEGS=3

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
# shellcheck source=bench/lib_rows.sh
. "$ROOT/bench/lib_rows.sh"

for tool in fio nbdinfo ss python3 numfmt; do
	command -v "$tool" >/dev/null || die "$tool not found (run scripts/deps.sh)"
done
[ -x "$DST" ] || die "$DST not built (run make)"
"$DST" create --help 2>&1 | grep -q parity || die "this dst has no alg_parity"
BYTES=$(numfmt --from=iec "$SIZE")
[ $((BYTES % (4 * 1048576))) -eq 0 ] || die "BENCH_SIZE must be a multiple of 4 MiB"
NODE_BYTES=$((BYTES / K))

if [ -n "${BENCH_DIR:-}" ]; then
	WORK=$BENCH_DIR
	mkdir -p "$WORK"
else
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/dst-bench-parity.XXXXXX")
fi
mkdir -p "$WORK/state" "$WORK/log" "$WORK/res" "$WORK/fio"
export DST_STATE_DIR="$WORK/state"
NODEDIR=${BENCH_NODEDIR:-$WORK}
PIDS=()  # dst daemons we started
FILES=() # node files we made
EXPORTS=()

cleanup() {
	local rc=$? name pid
	set +e
	[ -n "${CHILD:-}" ] && kill_pid "$CHILD"
	for name in bench-parity bench-pmirror "${EXPORTS[@]}"; do
		[ -e "$DST_STATE_DIR/$name.pid" ] && "$DST" stop "$name" --force --timeout 10 >/dev/null 2>&1
	done
	for pid in "${PIDS[@]}"; do kill_pid "$pid"; done
	rm -f "${FILES[@]}"
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

# attr NAME KEY: one attribute of `dst show NAME`. (awk reads it all: an
# early exit could kill dst with SIGPIPE, and pipefail the script.)
attr() {
	"$DST" show "$1" 2>/dev/null | awk -v k="$1/$2" -F' : ' '$1 == k && !n++ { print $2 }'
}

# wait_attr NAME KEY VALUE SECONDS: until the attribute has that value.
wait_attr() {
	for _ in $(seq $(($4 * 10))); do
		[ "$(attr "$1" "$2")" = "$3" ] && return 0
		sleep 0.1
	done
	die "$1/$2 is '$(attr "$1" "$2")' after $4 s, expected '$3'"
}

# node NAME BYTES: a sparse file of BYTES + 4 KiB exported as NAME on a free
# port; sets N_URI, N_PORT, N_FILE.
node() {
	local pid
	N_FILE=$(mktemp "$NODEDIR/dst-bench-$1.XXXXXX")
	FILES+=("$N_FILE")
	truncate -s $(($2 + 4096)) "$N_FILE"
	N_PORT=$(free_port)
	"$DST" export "$N_FILE" --name "$1" --listen "127.0.0.1:$N_PORT" >"$WORK/log/$1.out" 2>&1 ||
		{ cat "$WORK/log/$1.out" >&2; die "dst export of $1"; }
	pid=$(cat "$DST_STATE_DIR/$1.pid")
	PIDS+=("$pid")
	EXPORTS+=("$1")
	N_URI=nbd://127.0.0.1:$N_PORT
}

# node_restart NAME: its export again, same file, same port.
node_restart() {
	local pid _
	for _ in $(seq 50); do
		"$DST" export "${NODE_FILE[$1]}" --name "$1" --listen "127.0.0.1:${NODE_PORT[$1]}" \
			>"$WORK/log/$1.out" 2>&1 && break
		grep -q "Address already in use" "$WORK/log/$1.out" || { cat "$WORK/log/$1.out" >&2; die "restart of $1"; }
		sleep 0.2
	done
	pid=$(cat "$DST_STATE_DIR/$1.pid")
	PIDS+=("$pid")
	NODE_PID[$1]=$pid
}

# storage NAME ALG URIS... -- CREATE-OPTIONS...: create, add, start on a
# free port; S_PID[NAME], S_URI[NAME].
storage() {
	local name=$1 alg=$2 uris=() port
	shift 2
	while [ "$1" != -- ]; do
		uris+=("$1")
		shift
	done
	shift
	port=$(free_port)
	{
		"$DST" create "$name" --alg "$alg" --assume-clean "$@" || exit 1
		for u in "${uris[@]}"; do "$DST" add "$name" --remote "$u" || exit 1; done
		"$DST" start "$name" --listen "127.0.0.1:$port"
	} >"$WORK/log/$name.out" 2>&1 || { cat "$WORK/log/$name.out" >&2; die "setting up $name"; }
	S_PID[$name]=$(cat "$DST_STATE_DIR/$name.pid")
	PIDS+=("${S_PID[$name]}")
	S_URI[$name]=nbd://127.0.0.1:$port
}

# prefill NAME: every byte written once, 1M at QD16.
prefill() {
	local t0=$SECONDS
	child fio --name=prefill --ioengine=nbd --uri="${S_URI[$1]}" --rw=write --bs=1M --iodepth=16 \
		--output-format=json --output="$WORK/fio/prefill.$1.json" >"$WORK/log/prefill.$1.out" 2>&1 ||
		{ cat "$WORK/log/prefill.$1.out" >&2; die "prefill of $1"; }
	note "  $1 prefilled in $((SECONDS - t0)) s"
}

# row COL NAME ROW REP [TAG]: fio ROW (lib_rows.sh) on storage NAME; records
# "VALUE DSTD_CPU ALL_CPU" (MiB/s or IOPS; ms per GiB) in
# $WORK/res/COL.ROW[TAG].REP.
row() {
	local col=$1 name=$2 r=$3 rep=$4 tag=${5:-} json d0 a0 d1 a1 out bytes val
	json="$WORK/fio/$col.$r$tag.$rep.json"
	d0=$(cpu_ticks "${S_PID[$name]}") a0=$(cpu_ticks "${S_PID[$name]}" "${S_NODES[$name]}")
	# shellcheck disable=SC2086 # ROW_ARGS are words
	child fio --name="$r" --ioengine=nbd --uri="${S_URI[$name]}" ${ROW_ARGS[$r]} \
		--numjobs=1 --time_based --runtime="$RUNTIME" --output-format=json --output="$json" \
		>"$WORK/log/fio-$col.$r$tag.$rep.out" 2>&1 ||
		{ cat "$WORK/log/fio-$col.$r$tag.$rep.out" >&2; die "fio $r on $name"; }
	d1=$(cpu_ticks "${S_PID[$name]}") a1=$(cpu_ticks "${S_PID[$name]}" "${S_NODES[$name]}")
	out=$(fio_result "$json" "$r") || exit 1
	read -r bytes val <<<"$out"
	echo "$val $(cpu_per_gib "$bytes" $((d1 - d0))) $(cpu_per_gib "$bytes" $((a1 - a0)))" \
		>"$WORK/res/$col.$r$tag.$rep"
	note "  $(printf '%-7s %-26s %10.1f %-5s  dstd %7.1f  all %7.1f ms/GiB' "$col" \
		"${ROW_NAME[$r]}$tag" "$val" "${ROW_UNIT[$r]}" "$(cut -d' ' -f2 "$WORK/res/$col.$r$tag.$rep")" \
		"$(cut -d' ' -f3 "$WORK/res/$col.$r$tag.$rep")")"
}

# node_pids NAME: S_NODES[NAME], the pids of its nodes' exports running now
# (their CPU is counted in the rows' "all").
node_pids() {
	local n
	S_NODES[$1]=
	for n in ${S_NODENAMES[$1]}; do
		if [ -n "${NODE_PID[$n]}" ]; then S_NODES[$1]+="${NODE_PID[$n]} "; fi
	done
}

# nodes_out NAME NODE...: stop these nodes' exports (--force: the storage is their
# client); waits until the storage's health has that many D.
nodes_out() {
	local name=$1 n want health
	shift
	for n in "$@"; do
		"$DST" stop "$n" --force --timeout 10 >/dev/null 2>&1 || die "dst stop $n"
		NODE_PID[$n]=
	done
	node_pids "$name"
	for _ in $(seq 100); do
		health=$(attr "$name" health)
		want=$(tr -cd D <<<"$health")
		[ ${#want} -ge $# ] && return 0
		sleep 0.1
	done
	die "$name/health is '$health' with $# nodes stopped"
}

# nodes_back NAME NODE...: their exports again; waits until every node is A.
nodes_back() {
	local name=$1 n
	shift
	for n in "$@"; do node_restart "$n"; done
	node_pids "$name"
	wait_attr "$name" health "$(attr "$name" health | sed 's/[DS]/A/g')" 120
}

declare -A S_PID=() S_URI=() S_NODES=() S_NODENAMES=() NODE_FILE=() NODE_PORT=() NODE_PID=()

note "nodes: $((K + M)) x $((NODE_BYTES / 1048576)) MiB (parity), $LEGS x $((BYTES / 1048576)) MiB (mirror), files in $NODEDIR"
uris=()
for i in $(seq 0 $((K + M - 1))); do
	node "bench-pn$i" "$NODE_BYTES"
	uris+=("$N_URI")
	NODE_FILE[bench-pn$i]=$N_FILE NODE_PORT[bench-pn$i]=$N_PORT NODE_PID[bench-pn$i]=${PIDS[-1]}
	S_NODENAMES[bench-parity]+="bench-pn$i "
done
storage bench-parity parity "${uris[@]}" -- --data $K --parity $M --chunk $CHUNK
uris=()
for i in $(seq 0 $((LEGS - 1))); do
	node "bench-ml$i" "$BYTES"
	uris+=("$N_URI")
	NODE_FILE[bench-ml$i]=$N_FILE NODE_PORT[bench-ml$i]=$N_PORT NODE_PID[bench-ml$i]=${PIDS[-1]}
	S_NODENAMES[bench-pmirror]+="bench-ml$i "
done
storage bench-pmirror mirror "${uris[@]}" --
for name in bench-parity bench-pmirror; do
	node_pids "$name"
	[ "$(attr "$name" bytes)" = "$BYTES" ] || die "$name has $(attr "$name" bytes) bytes, expected $BYTES"
	prefill "$name"
done

declare -A COL=([bench-parity]=parity [bench-pmirror]=mirror)
for rep in $(seq "$REPEAT"); do
	note "repeat $rep of $REPEAT"
	order=(bench-parity bench-pmirror)
	[ $((rep % 2)) -eq 0 ] && order=(bench-pmirror bench-parity)
	for r in seqwrite seqread randwrite randread; do
		for name in "${order[@]}"; do row "${COL[$name]}" "$name" "$r" "$rep"; done
	done
	nodes_out bench-parity bench-pn0
	row parity bench-parity seqread "$rep" -1out
	nodes_out bench-parity bench-pn1
	row parity bench-parity seqread "$rep" -2out
	nodes_out bench-pmirror bench-ml0
	row mirror bench-pmirror seqread "$rep" -1out
	nodes_out bench-pmirror bench-ml1
	row mirror bench-pmirror seqread "$rep" -2out
	nodes_back bench-parity bench-pn0 bench-pn1
	nodes_back bench-pmirror bench-ml0 bench-ml1
done

# tline ROW TAG: a table line, parity and mirror side by side.
tline() {
	local r=$1 tag=${2:-} p m label
	p=$(cell parity "$r$tag" 1) m=$(cell mirror "$r$tag" 1)
	case $tag in
	-1out) label="${ROW_NAME[$r]}, 1 node out" ;;
	-2out) label="${ROW_NAME[$r]}, 2 nodes out" ;;
	*) label=${ROW_NAME[$r]} ;;
	esac
	printf '| %s | %s | %s | %s | %s / %s | %s / %s |\n' "$label" \
		"$(fmt_val "$p" "${ROW_UNIT[$r]}")" "$(fmt_val "$m" "${ROW_UNIT[$r]}")" "$(ratio "$p" "$m")" \
		"$(fmt_val "$(cell parity "$r$tag" 2)" x)" "$(fmt_val "$(cell parity "$r$tag" 3)" x)" \
		"$(fmt_val "$(cell mirror "$r$tag" 2)" x)" "$(fmt_val "$(cell mirror "$r$tag" 3)" x)"
}

# goal WHAT A B MIN: "WHAT: A/B = R (goal >= MIN): met|NOT met".
goal() {
	local r
	r=$(awk -v a="$2" -v b="$3" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print 0 }')
	printf -- '- %s: %sx (goal >= %sx): %s\n' "$1" "$r" "$4" \
		"$(awk -v r="$r" -v g="$4" 'BEGIN { print (r >= g ? "met" : "NOT met") }')"
}

echo
echo "### alg_parity $K+$M (chunk $((CHUNK / 1024))K) vs a $LEGS-way alg_mirror, $SIZE each, over dst exports of files; median of $REPEAT"
echo
echo "fio $(fio --version | sed 's/^fio-//') nbd engine, 1 job, loopback TCP, $RUNTIME s runs. CPU: ms per GiB moved, dstd of the storage / dstd and its nodes."
echo
echo "| row | parity | mirror | parity/mirror | parity CPU dstd / all | mirror CPU dstd / all |"
echo "|---|---:|---:|---:|---:|---:|"
for r in seqwrite seqread randwrite randread; do tline "$r"; done
tline seqread -1out
tline seqread -2out
echo
goal "full-row seq write, parity vs mirror" "$(cell parity seqwrite 1)" "$(cell mirror seqwrite 1)" 1.5
goal "rand 4K write, parity vs mirror" "$(cell parity randwrite 1)" "$(cell mirror randwrite 1)" 0.5
goal "seq read with one node out vs healthy (parity)" "$(cell parity seqread-1out 1)" "$(cell parity seqread 1)" 0.5
