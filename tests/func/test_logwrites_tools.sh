#!/usr/bin/env bash
# The power-cut tools of the VM durability tests, on the host (no kernel
# needed): tests/tools/logwrites.py parses and replays a synthetic
# dm-log-writes log laid out as the kernel writes it (and refuses a bad
# magic and a backwards replay); tests/tools/durability.py's checker passes
# a log that keeps the client's promises and counts the lost and torn blocks
# of one that does not, so a "lost=0" of tests/vm/test_durability_*.sh
# means something.
. "$(dirname "$0")/lib.sh"
need python3

step "logwrites.py selftest"
out=$(python3 "$TESTS_DIR/tools/logwrites.py" selftest 2>&1) || { printf '%s\n' "$out" >&2; fail "logwrites.py selftest"; }
note "$out"

step "durability.py selftest"
out=$(python3 "$TESTS_DIR/tools/durability.py" selftest 2>&1) || { printf '%s\n' "$out" >&2; fail "durability.py selftest"; }
note "$out"

step "logwrites.py refuses what is not a log, in one line"
head -c 4096 /dev/zero >"$T_TMP/zero.log"
rc=0
python3 "$TESTS_DIR/tools/logwrites.py" list "$T_TMP/zero.log" >"$T_TMP/out" 2>"$T_TMP/err" || rc=$?
[ $rc -eq 1 ] || fail "logwrites.py list of zeroes: status $rc"
assert_contains "$(cat "$T_TMP/err")" "not a dm-log-writes log" "its message"
echo "PASS"
