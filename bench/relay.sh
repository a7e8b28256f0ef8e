#!/usr/bin/env bash
# bench/relay.sh - the loopback ceiling under a 2-hop storage (bench/relay.c):
# bytes from a source to a sink directly, and through a relay process that
# copies or splices, RELAY_REPEAT times each (default 3, alternating), with
# the median. bench/run.sh runs the same in the same minutes as its storage
# rows (BENCH_RELAY); this is the measurement alone.
#   RELAY_GIB=4   bytes per run
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=bench/lib.sh
. bench/lib.sh
# shellcheck source=bench/lib_relay.sh
. bench/lib_relay.sh
BIN=${BUILD:-build}/bench/relay
REPEAT=${RELAY_REPEAT:-3}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/dst-relay.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/res"
relay_build "$BIN"
relay_runs "$BIN" "$REPEAT" "${RELAY_GIB:-4}"
echo
echo "Median of $REPEAT; CPU: all three processes, per GiB moved."
echo
relay_header
relay_rows
