# shellcheck shell=bash
# bench/lib_relay.sh - the loopback ceiling under any 2-hop storage
# (bench/relay.c) for bench/relay.sh and bench/run.sh: build the program, run
# its paths (direct, copy and splice relay, and the same to two sinks) alternating, and print
# their medians as a table. Source after bench/lib.sh; the script sets ROOT
# and WORK (with res/ in it).

RELAY_MODES=(direct copy splice copy2 tee)
declare -A RELAY_PATH=([direct]="direct: source -> sink (one hop)"
	[copy]="copy relay: source -> relay (read + write) -> sink"
	[splice]="splice relay: source -> relay (socket -> pipe -> socket) -> sink"
	[copy2]="copy relay to two sinks (a mirror's ceiling): read + write twice"
	[tee]="tee relay to two sinks (a mirror's ceiling): splice, tee, splice twice")

# relay_build BIN: compile bench/relay.c into BIN.
relay_build() {
	mkdir -p "$(dirname "$1")"
	${CC:-cc} -O2 -Wall -Wextra -Werror -o "$1" "$ROOT/bench/relay.c" ||
		die "cannot build $1 from bench/relay.c"
}

# relay_runs BIN REPEAT GIB: REPEAT runs of each path, alternating, GIB GiB
# each; records "MiB/s CPU_MS_PER_GIB" (CPU of all three processes) in
# $WORK/res/relay-MODE.relay.REP.
relay_runs() {
	local bin=$1 repeat=$2 gib=$3 rep mode line
	for rep in $(seq "$repeat"); do
		for mode in "${RELAY_MODES[@]}"; do
			line=$("$bin" "$mode" "$gib") || die "bench/relay $mode failed"
			note "  relay: $line"
			# "MODE N MiB/s  cpu S s/GiB"
			awk '{ printf "%s %.1f\n", $2, $5 * 1000 }' <<<"$line" >"$WORK/res/relay-$mode.relay.$rep"
		done
	done
}

# relay_rows: the table's rows, one per path: MiB/s, fraction of the direct
# path, CPU ms per GiB.
relay_rows() {
	local d mode v
	d=$(cell relay-direct relay 1)
	for mode in "${RELAY_MODES[@]}"; do
		v=$(cell "relay-$mode" relay 1)
		[ -n "$v" ] || continue
		echo "| ${RELAY_PATH[$mode]} | $(fmt_val "$v" MiB/s) | $(ratio "$v" "$d") |" \
			"$(fmt_val "$(cell "relay-$mode" relay 2)" ms) |"
	done
}

relay_header() {
	echo "| path (1 MiB messages, loopback TCP, no NBD) | MiB/s | vs direct | CPU ms/GiB |"
	echo "|---|---:|---:|---:|"
}
