# shellcheck shell=bash
# bench/lib_rows.sh - the four fio rows every benchmark runs (seq read and
# write 1M QD16, rand read and write 4K QD32), how fio's result becomes a
# row's value and CPU per GiB, and, for the benchmarks that compare two block
# devices of one storage side by side (bench/fuse.sh, bench/vm_blockdev.sh),
# a row on a device (libaio, direct=1) and the ratios of the pairs. Source it
# after bench/lib.sh; the script sets WORK (with fio/, log/ and res/ in it)
# and RUNTIME.

ROWS=(seqread seqwrite randread randwrite)
declare -A ROW_NAME=([seqread]="seq read 1M QD16" [seqwrite]="seq write 1M QD16"
	[randread]="rand read 4K QD32" [randwrite]="rand write 4K QD32")
declare -A ROW_ARGS=([seqread]="--rw=read --bs=1M --iodepth=16"
	[seqwrite]="--rw=write --bs=1M --iodepth=16"
	[randread]="--rw=randread --bs=4k --iodepth=32 --norandommap"
	[randwrite]="--rw=randwrite --bs=4k --iodepth=32 --norandommap")
declare -A ROW_UNIT=([seqread]=MiB/s [seqwrite]=MiB/s [randread]=IOPS [randwrite]=IOPS)

# fio_result JSON ROW: "BYTES VALUE" of fio's JSON output for ROW: the bytes
# moved, and MiB/s or IOPS (ROW_UNIT). Dies if fio reports an error.
fio_result() {
	# (No <(...) for the caller: a VM guest may have no /dev/fd.)
	python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
r, w = j["read"], j["write"]
if j.get("error"):
    sys.exit("fio error %d" % j["error"])
v = r["iops"] + w["iops"] if sys.argv[2] == "IOPS" else (r["bw_bytes"] + w["bw_bytes"]) / 1048576
print(r["io_bytes"] + w["io_bytes"], v)' "$1" "${ROW_UNIT[$2]}" || die "fio's output $1"
}

# cpu_per_gib BYTES TICKS: CPU milliseconds per GiB moved.
cpu_per_gib() {
	awk -v b="$1" -v t="$2" -v hz="$(getconf CLK_TCK)" \
		'BEGIN { printf "%.1f", b ? t * 1000 / hz / (b / 1073741824) : 0 }'
}

# run_dev_row COLUMN DEVICE ROW REP PIDS...: fio ROW on DEVICE for RUNTIME
# seconds; "VALUE CPU" (MiB/s or IOPS, and the PIDS' utime+stime in ms per
# GiB moved) into $WORK/res/COLUMN.ROW.REP.
run_dev_row() {
	local col=$1 dev=$2 row=$3 rep=$4 json c0 c1 out bytes val cpu
	shift 4
	json="$WORK/fio/$col.$row.$rep.json"
	c0=$(cpu_ticks "$@")
	# shellcheck disable=SC2086 # ROW_ARGS are words
	child fio --name="$row" --filename="$dev" --ioengine=libaio --direct=1 ${ROW_ARGS[$row]} \
		--numjobs=1 --time_based --runtime="$RUNTIME" --output-format=json --output="$json" \
		>"$WORK/log/fio-$col.$row.$rep.out" 2>&1 ||
		{ cat "$WORK/log/fio-$col.$row.$rep.out" >&2; die "fio $row on $dev"; }
	c1=$(cpu_ticks "$@")
	out=$(fio_result "$json" "$row") || exit 1
	read -r bytes val <<<"$out"
	cpu=$(cpu_per_gib "$bytes" $((c1 - c0)))
	echo "$val $cpu" >"$WORK/res/$col.$row.$rep"
	note "  $(printf '%-9s %-19s %10.1f %-5s  cpu %7.1f ms/GiB' "$col" "${ROW_NAME[$row]}" "$val" "${ROW_UNIT[$row]}" "$cpu")"
}

# pair_ratios A B ROW FIELD: "MEDIAN (MIN-MAX)" of column A / column B over
# the repeats of ROW (FIELD 1: the value, 2: the CPU per GiB).
pair_ratios() {
	local rep a b
	for rep in $(seq "$REPEAT"); do
		a=$(cut -d' ' -f"$4" "$WORK/res/$1.$3.$rep") b=$(cut -d' ' -f"$4" "$WORK/res/$2.$3.$rep")
		awk -v a="$a" -v b="$b" 'BEGIN { if (b > 0) printf "%.4f\n", a / b }'
	done | sort -g | awk '{ v[NR] = $1 } END {
		m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		printf "%.2fx", m; if (NR > 1) printf " (%.2f-%.2f)", v[1], v[NR]; print "" }'
}
