#!/usr/bin/env bash
# run.sh - run every fuzz target that `make fuzz` built, for a while each.
#
#   tests/fuzz/run.sh BUILD_DIR SECONDS [JOBS]
#
# Each target BUILD_DIR/fuzz/fuzz_NAME runs SECONDS under libFuzzer, JOBS
# targets at a time. It starts from the checked-in seeds (tests/fuzz/corpus/
# NAME, only read) plus what earlier runs found (BUILD_DIR/corpus/NAME, where
# new inputs go). Its output goes to BUILD_DIR/logs/NAME.log. A crash, a
# sanitizer report, a failed FUZZ_ASSERT, a leak or a hang fails the run and
# leaves the input as BUILD_DIR/crashes/NAME-{crash,leak,timeout,oom}-HASH.
#
# To reproduce one: BUILD_DIR/fuzz/fuzz_NAME FILE. Once fixed, keep the input
# as tests/fuzz/regressions/NAME/SHORT-NAME: `make check` replays it
# (test_fuzz_replay) with the normal build.
#
# The last line is "N passed, N failed".
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
BUILD=${1:?usage: run.sh BUILD_DIR SECONDS [JOBS]}
SECONDS_EACH=${2:-60}
JOBS=${3:-1}
mkdir -p "$BUILD/logs" "$BUILD/crashes"

run_one() {
	local bin=$1 name log rc
	name=$(basename "$bin")
	name=${name#fuzz_}
	log=$BUILD/logs/$name.log
	mkdir -p "$BUILD/corpus/$name"
	# -timeout: one input taking 25 s is a hang (the server target has
	# its own 20 s watchdog). -rss_limit_mb: the server target maps
	# three 32 MiB buffer pools; anything near 2 GiB is a leak.
	rc=0
	"$bin" -max_total_time="$SECONDS_EACH" -timeout=25 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$BUILD/crashes/$name-" \
		"$BUILD/corpus/$name" "tests/fuzz/corpus/$name" >"$log" 2>&1 || rc=$?
	local runs cov
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	cov=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$log" | tail -1)
	if [ "$rc" -eq 0 ]; then
		printf 'PASS  fuzz/%-16s %ss, %s runs, %s\n' "$name" "$SECONDS_EACH" "${runs:-?}" "${cov:-?}"
	else
		printf 'FAIL  fuzz/%-16s status %d; input: %s\n' "$name" "$rc" \
			"$(grep -Eo 'Test unit written to [^ ]+' "$log" | tail -1 | sed 's/.* to //')"
		echo "----- $log -----"
		grep -Ev '^ +0x[0-9a-f]+:|^=>0x|^Shadow' "$log" | grep -A40 -E 'ERROR|FUZZ_ASSERT|runtime error|deadly signal|timeout|out-of-memory' | head -60
		echo "----- end of $name -----"
	fi
	return "$rc"
}

bins=("$BUILD"/fuzz/fuzz_*)
[ -x "${bins[0]}" ] || { echo "run.sh: no fuzz targets in $BUILD/fuzz (make fuzz builds them)" >&2; exit 1; }
passed=0 failed=0 running=0
for bin in "${bins[@]}"; do
	if [ "$running" -ge "$JOBS" ]; then
		if wait -n; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
		running=$((running - 1))
	fi
	run_one "$bin" &
	running=$((running + 1))
done
while [ "$running" -gt 0 ]; do
	if wait -n; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
	running=$((running - 1))
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
