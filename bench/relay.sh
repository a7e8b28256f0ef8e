#!/usr/bin/env bash
# bench/relay.sh - the loopback ceiling under a 2-hop storage (bench/relay.c):
# bytes from a source to a sink directly, and through a relay process that
# copies or splices, RELAY_REPEAT times each (default 3, alternating), with
# the median. Compare the storage rows of bench/run.sh with these.
#   RELAY_GIB=4   bytes per run
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
BIN=${BUILD:-build}/bench/relay
mkdir -p "$(dirname "$BIN")"
${CC:-cc} -O2 -Wall -Wextra -Werror -o "$BIN" bench/relay.c
REPEAT=${RELAY_REPEAT:-3}
GIB=${RELAY_GIB:-4}
declare -A runs
for ((i = 0; i < REPEAT; i++)); do
	for mode in direct copy splice; do
		line=$("$BIN" "$mode" "$GIB")
		echo "relay: $line"
		runs[$mode]+="$(awk '{print $2}' <<<"$line") "
	done
done
d=$(tr ' ' '\n' <<<"${runs[direct]}" | grep . | median)
c=$(tr ' ' '\n' <<<"${runs[copy]}" | grep . | median)
s=$(tr ' ' '\n' <<<"${runs[splice]}" | grep . | median)
echo
echo "| path (1 MiB messages, loopback TCP, median of $REPEAT) | MiB/s | vs direct |"
echo "|---|---:|---:|"
echo "| direct: source -> sink (one hop) | $d | 1.00x |"
awk -v d="$d" -v c="$c" -v s="$s" 'BEGIN {
	printf "| copy relay: source -> relay (read+write) -> sink | %d | %.2fx |\n", c, c / d
	printf "| splice relay: source -> relay (socket-pipe-socket) -> sink | %d | %.2fx |\n", s, s / d
}'
