#!/usr/bin/env bash
# run.sh - run every test: unit test binaries, then functional tests.
#
#   tests/run.sh [FILTER]
#
# DST_BUILD      build dir holding dstd, dst and tests/test_* (default build;
#                `make check` uses build-check, the ASan+UBSan build)
# DST_TEST_TIMEOUT  seconds one functional test may take (default 300)
# DST_TEST_JOBS  functional tests run at once (default 1). Most of a test's
#                time is waiting on its daemons, so two or three at a time
#                shorten the run on a small machine. A test whose file has
#                a line "# run.sh: alone" (it measures time or CPU, or
#                floods the machine) runs with no other test beside it; of
#                the tests with a line "# run.sh: group NAME" (they share
#                something of the machine's, e.g. loop devices), one runs
#                at a time.
#
# Each unit binary $DST_BUILD/tests/test_* counts as one test (it prints
# PASS/FAIL per case and exits non-zero if any failed). Each
# tests/func/test_*.sh counts as one test; its output goes to
# tests/out/NAME.log and is printed if it fails. Exit status 77 means
# skipped. With FILTER, only tests whose name contains FILTER run.
# The last line is "N passed, N failed, N skipped"; the exit status is 1 if
# anything failed.
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
export DST_BUILD=${DST_BUILD:-build}
TIMEOUT=${DST_TEST_TIMEOUT:-300}
FILTER=${1:-}
OUT=$ROOT/tests/out
mkdir -p "$OUT"

passed=0 failed=0 skipped=0
failed_names=() failed_why=()

fmt_time() { printf '%d.%ds' $(($1 / 1000)) $((($1 % 1000) / 100)); }
now_ms() { date +%s%3N; }

# record NAME RC MS LOG
record() {
	local name=$1 rc=$2 ms=$3 log=$4 why
	if [ "$rc" -eq 0 ]; then
		passed=$((passed + 1))
		printf 'PASS  %-36s %s\n' "$name" "$(fmt_time "$ms")"
	elif [ "$rc" -eq 77 ]; then
		skipped=$((skipped + 1))
		why=$(grep -m1 '^SKIP' "$log" 2>/dev/null | sed 's/^SKIP:* *//')
		printf 'SKIP  %-36s %s\n' "$name" "${why:-no reason given}"
	else
		failed=$((failed + 1))
		failed_names+=("$name")
		# The FAIL lines again at the very end: a CI log cut to its head
		# and tail still says why a test failed.
		failed_why+=("$name: $(grep -m3 'FAIL' "$log" 2>/dev/null | tr '\n' ' ')")
		if [ "$rc" -eq 124 ]; then
			printf 'FAIL  %-36s %s (timed out after %ss)\n' "$name" "$(fmt_time "$ms")" "$TIMEOUT"
		else
			printf 'FAIL  %-36s %s (status %d)\n' "$name" "$(fmt_time "$ms")" "$rc"
		fi
		echo "----- $log -----"
		tail -n 150 "$log"
		echo "----- end of $name -----"
	fi
}

matches() { [ -z "$FILTER" ] || [[ $1 == *"$FILTER"* ]]; }

if [ ! -x "$DST_BUILD/dstd" ] || [ ! -x "$DST_BUILD/dst" ]; then
	echo "run.sh: $DST_BUILD/dstd or $DST_BUILD/dst missing; build first (make, or make check)" >&2
fi

# ---- unit tests ----
for bin in "$DST_BUILD"/tests/test_*; do
	if [ ! -x "$bin" ] || [ ! -f "$bin" ]; then continue; fi
	name=unit/$(basename "$bin")
	matches "$name" || continue
	log=$OUT/$(basename "$bin").log
	t0=$(now_ms)
	rc=0
	timeout -k 10 "$TIMEOUT" "$bin" >"$log" 2>&1 || rc=$?
	record "$name" "$rc" $(($(now_ms) - t0)) "$log"
done

# ---- functional tests ----
JOBS=${DST_TEST_JOBS:-1}
declare -A running=() # base name -> start time (ms)
declare -A group_of=() # running base name -> its group
alone=''              # a test that must run by itself is running

# start_test FILE: run it in the background; its status and time go to
# $OUT/NAME.rc when it ends.
start_test() {
	local t=$1 base
	base=$(basename "$t" .sh)
	rm -f "$OUT/$base.rc"
	running[$base]=$(now_ms)
	(
		rc=0
		# On timeout, timeout(1) signals its whole process group: the
		# test's clients die, then the test's EXIT trap stops its
		# daemons by PID.
		timeout -k 10 "$TIMEOUT" bash "$t" >"$OUT/$base.log" 2>&1 </dev/null || rc=$?
		echo "$rc" >"$OUT/$base.rc.tmp" && mv "$OUT/$base.rc.tmp" "$OUT/$base.rc"
	) &
}

# reap: record every test that has ended.
reap() {
	local base rc
	for base in "${!running[@]}"; do
		[ -f "$OUT/$base.rc" ] || continue
		rc=$(cat "$OUT/$base.rc")
		rm -f "$OUT/$base.rc"
		record "func/$base" "$rc" $(($(now_ms) - running[$base])) "$OUT/$base.log"
		unset "running[$base]" "group_of[$base]"
		[ "$alone" = "$base" ] && alone=''
	done
}

# wait_below N: until fewer than N tests run.
wait_below() {
	reap
	while [ ${#running[@]} -ge "$1" ]; do
		wait -n 2>/dev/null || sleep 0.1
		reap
	done
}

# group_busy GROUP: a test of GROUP is running.
group_busy() {
	local b
	for b in "${!group_of[@]}"; do
		[ "${group_of[$b]}" = "$1" ] && return 0
	done
	return 1
}

for t in tests/func/test_*.sh; do
	[ -f "$t" ] || continue
	base=$(basename "$t" .sh)
	matches "func/$base" || continue
	group=$(sed -n 's/^# run.sh: group \([A-Za-z0-9_-]*\).*/\1/p' "$t" | head -1)
	if grep -qx '# run.sh: alone' "$t"; then
		wait_below 1
		alone=$base
	else
		[ -z "$alone" ] || wait_below 1
		wait_below "$JOBS"
		while [ -n "$group" ] && group_busy "$group"; do
			wait -n 2>/dev/null || sleep 0.1
			reap
		done
	fi
	start_test "$t"
	[ -z "$group" ] || group_of[$base]=$group
done
wait_below 1

if [ ${#failed_names[@]} -gt 0 ]; then
	echo "failed: ${failed_names[*]}"
	printf '  %s\n' "${failed_why[@]}"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
