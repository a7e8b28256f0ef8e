# shellcheck shell=bash
# bench/lib.sh - helpers every benchmark script sources: messages, processes
# started and stopped by PID, free ports, CPU time, medians and table cells.
#
# Expects $WORK (the script's scratch dir) before free_port or cell is used.

die() { echo "bench: $*" >&2; exit 1; }
note() { echo "bench: $*" >&2; }

pid_alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }

# kill_pid PID: SIGTERM, wait up to 10 s, then SIGKILL. Only that PID.
kill_pid() {
	local pid=$1 _
	pid_alive "$pid" || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for _ in $(seq 100); do
		pid_alive "$pid" || return 0
		sleep 0.1
	done
	note "pid $pid ignored SIGTERM; killing it"
	kill -KILL "$pid" 2>/dev/null || true
}

# child CMD...: run CMD in the background and wait for it, so that a signal
# reaches the script's trap at once (bash runs traps only between commands)
# and the trap can stop CMD too ($CHILD).
CHILD=
child() {
	local rc=0
	"$@" &
	CHILD=$!
	wait "$CHILD" || rc=$?
	CHILD=
	return $rc
}

# free_port: a TCP port on 127.0.0.1 that nobody listens on now, and that
# this run has not handed out before (a server may not have bound it yet).
free_port() {
	local p _
	for _ in $(seq 200); do
		p=$((20000 + RANDOM % 30000))
		if [ -z "$(ss -Htln "sport = :$p")" ] && ! grep -qx "$p" "$WORK/ports" 2>/dev/null; then
			echo "$p" >>"$WORK/ports"
			echo "$p"
			return 0
		fi
	done
	die "no free port found"
}

# cpu_ticks PIDS...: utime+stime (all threads) summed over the PIDS, given as
# separate arguments or comma-separated.
cpu_ticks() {
	local total=0 pid stat
	# shellcheck disable=SC2048 # split PIDS on commas and spaces on purpose
	for pid in ${*//,/ }; do
		stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
		stat=${stat##*) } # fields after "(comm) ": state is field 3
		# shellcheck disable=SC2086 # split into fields on purpose
		set -- $stat
		total=$((total + ${12} + ${13})) # fields 14 and 15 of stat
	done
	echo "$total"
}

# median: of the numbers on stdin, one per line.
median() {
	sort -g | awk '{ v[NR] = $1 } END {
		if (NR) print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# cell NAME ROW FIELD: the median over the repeats of field FIELD (1: value,
# 2: CPU) of $WORK/res/NAME.ROW.*, or nothing.
cell() {
	local f vals=()
	for f in "$WORK/res/$1.$2".*; do
		[ -f "$f" ] && vals+=("$(cut -d' ' -f"$3" "$f")")
	done
	[ ${#vals[@]} -gt 0 ] || return 0
	printf '%s\n' "${vals[@]}" | median
}

# fmt_val VALUE UNIT: "-" if empty, 61.2k for IOPS, else rounded.
fmt_val() {
	[ -n "$1" ] || { echo "-"; return; }
	if [ "$2" = IOPS ]; then
		awk -v v="$1" 'BEGIN { printf "%.1fk", v / 1000 }'
	else
		awk -v v="$1" 'BEGIN { printf "%.0f", v }'
	fi
}

# ratio A B: A/B as "1.23x", or "-".
ratio() {
	if [ -z "$1" ] || [ -z "$2" ]; then echo "-"; return; fi
	awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "-"; else printf "%.2fx", a / b }'
}

# ratio_range A B ROW FIELD: " (MIN-MAX)" of A/B over the repeats in which both
# have a result (FIELD 1: value, 2: CPU), or nothing with fewer than two: how
# far apart the back-to-back runs of a pair were.
ratio_range() {
	local f rep b
	for f in "$WORK/res/$1.$3".*; do
		rep=${f##*.}
		b="$WORK/res/$2.$3.$rep"
		if [ -f "$f" ] && [ -f "$b" ]; then
			echo "$(cut -d' ' -f"$4" "$f") $(cut -d' ' -f"$4" "$b")"
		fi
	done | awk '$2 > 0 { r = $1 / $2; if (!n || r < lo) lo = r; if (!n || r > hi) hi = r; n++ }
		END { if (n > 1) printf " (%.2f-%.2f)", lo, hi }'
}
