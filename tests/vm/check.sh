#!/usr/bin/env bash
# tests/vm/check.sh - make vm-check: run every tests/vm/test_*.sh inside a VM
# (tests/vm/run, one VM per test), and print "N passed, N failed, N skipped".
#
#   tests/vm/check.sh [FILTER]
#
# DST_BUILD       build dir the guest runs (make vm-check: build-check)
# DST_VM_TIMEOUT  seconds one test's VM may run (default 300)
# Each test's output goes to tests/out/vm_NAME.log and is printed if it
# fails; status 77 (no qemu, no kernel, no nbd...) counts as skipped.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
export DST_BUILD=${DST_BUILD:-build}
FILTER=${1:-}
OUT=$ROOT/tests/out
mkdir -p "$OUT"
passed=0 failed=0 skipped=0
for t in tests/vm/test_*.sh; do
	name=$(basename "$t" .sh)
	case $name in *"$FILTER"*) ;; *) continue ;; esac
	log=$OUT/vm_$name.log
	start=$(date +%s)
	rc=0
	tests/vm/run "$t" >"$log" 2>&1 || rc=$?
	if [ $rc -ne 0 ] && [ $rc -ne 77 ] && ! grep -q 'guest up in' "$log"; then
		# The guest's kernel died before the test ran (a TCG guest has
		# oopsed while booting, in its timer code): boot it once more.
		# A test that ran and failed is not run again.
		echo "vm/check: $name: the guest did not come up; booting it once more" >&2
		mv "$log" "$log.first-boot"
		rc=0
		tests/vm/run "$t" >"$log" 2>&1 || rc=$?
	fi
	secs=$(($(date +%s) - start))
	if [ $rc -eq 0 ]; then
		passed=$((passed + 1))
		printf 'PASS  %-36s %ds (%s)\n' "$name" "$secs" "$(grep -m1 -o 'guest up in [^)]*)' "$log")"
	elif [ $rc -eq 77 ]; then
		skipped=$((skipped + 1))
		printf 'SKIP  %-36s %s\n' "$name" "$(grep -m1 '^SKIP' "$log" | sed 's/^SKIP:* *//')"
	else
		failed=$((failed + 1))
		printf 'FAIL  %-36s %ds (status %d)\n' "$name" "$secs" "$rc"
		sed 's/^/    | /' "$log"
	fi
done
echo "$passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ]
