#!/usr/bin/env bash
# One writer per disk (issue 15), with a regular file: a file exported
# read-write is claimed (an OFD lock), so a second read-write export of it
# is refused in one line naming the holder ("dstd PID (export x1)"), while
# --readonly and --shared exports are let in (and --shared is kept in the
# config); a storage whose local --disk node is that file does not start,
# naming the export; once the export is stopped the storage starts, and an
# export of its node's file is refused naming the storage and the node;
# kill -9 of the holder (storage or export) frees the claim. Block devices:
# test_export_exclusive_bdev.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
need qemu-io

F=$T_TMP/f.img
truncate -s 16M "$F"

# export_refused NAME WHAT NEEDLE [options]: dst export F as NAME must fail
# with one line that contains NEEDLE, and leave no config or daemon behind.
export_refused() {
	local name=$1 what=$2 needle=$3
	shift 3
	run_fails "$what" "$DST" export "$F" --name "$name" --listen "127.0.0.1:$(free_port)" "$@"
	check_stderr "$T_TMP/run.out" "dst export"
	note "refused: $RUN_OUT"
	assert_contains "$RUN_OUT" "export $name: $F: in use by $needle" "why $what was refused"
	[ "$(wc -l <"$T_TMP/run.out")" -eq 1 ] || fail "$what: the refusal is not one line"
	[ ! -e "$DST_STATE_DIR/$name.conf" ] || fail "$what: $name.conf left behind"
	[ -z "$(export_pid "$name")" ] || fail "$what: a daemon of $name runs"
}

step "export x1: the file read-write, claimed"
start_export x1 "$F"
X1=$URI X1_PID=$PID
assert_eq "$(show_attr x1 claim)" "exclusive (OFD lock)" "x1/claim"
qio "$X1" "write -P 0x11 0 64k" "flush"

step "a second read-write export of the file is refused, naming x1"
export_refused x2 "a second read-write export" "dstd $X1_PID (export x1)"
assert_contains "$RUN_OUT" "--shared" "the refusal says how to share"
pid_alive "$X1_PID" || fail "x1 died"
qio "$X1" "read -P 0x11 0 64k"

step "--readonly is let in: it never claims"
start_export x3 "$F" --readonly
assert_eq "$(show_attr x3 claim)" "none (read-only)" "x3/claim"
run_ok "a read through x3" qemu-io -r -f raw -c "read -P 0x11 0 64k" "$URI"
stop_export x3

step "--shared is let in, writes beside x1, and stays in the config"
start_export x4 "$F" --shared
X4=$URI
assert_eq "$(show_attr x4 claim)" "none (shared)" "x4/claim"
grep -qx "shared = 1" "$DST_STATE_DIR/x4.conf" || fail "x4.conf has no 'shared = 1'"
qio "$X4" "write -P 0x44 64k 64k" "flush"
qio "$X1" "read -P 0x44 64k 64k"
stop_export x4
dst_ok start x4 >/dev/null
assert_eq "$(show_attr x4 claim)" "none (shared)" "x4/claim after dst start"
stop_export x4
run_fails "--shared with --readonly" "$DST" export "$F" --name x9 --readonly --shared
assert_contains "$RUN_OUT" "--shared" "why --shared --readonly was refused"

step "a storage with the file as a local node does not start while x1 has it"
st_create sl linear
# dst add writes no label on a disk an export has: refused, naming it.
run_fails "dst add of a disk an export has" "$DST" add sl --disk "$F"
assert_contains "$RUN_OUT" "$F: writing its label block: in use by dstd $X1_PID (export x1)" \
	"why the disk was not added"
# Added unlabelled (--import writes nothing), the storage does not start.
st_add sl --disk "$F" --import
run_fails "dst start of a storage whose node is exported" "$DST" start sl
check_stderr "$T_TMP/run.out" "dst start"
note "refused: $RUN_OUT"
assert_contains "$RUN_OUT" "node n-0 ($F): $F: in use by dstd $X1_PID (export x1)" "why sl did not start"
[ -z "$(export_pid sl)" ] || fail "a daemon of sl runs after the refused start"

step "dst stop x1 (no clients): the claim goes with it; sl starts"
stop_export x1
st_start sl
SL_PID=$ST_PID
assert_eq "$(show_attr sl n-0/claim)" "exclusive (OFD lock)" "sl/n-0/claim"
qio "$ST_URI" "read -P 0x11 0 64k" "read -P 0x44 64k 64k"

step "the reverse: an export of the storage's node is refused, naming storage and node"
export_refused x5 "an export of a storage's local node" "dstd $SL_PID (storage sl, node n-0)"
pid_alive "$SL_PID" || fail "sl died"

step "kill -9 of the storage frees the claim: the file exports again"
kill -KILL "$SL_PID"
wait_gone "$SL_PID" 10 || fail "sl survived kill -9"
start_export x6 "$F"
X6_PID=$PID
qio "$URI" "read -P 0x11 0 64k"

step "kill -9 of an export frees it too"
kill -KILL "$X6_PID"
wait_gone "$X6_PID" 10 || fail "x6 survived kill -9"
start_export x7 "$F"
qio "$URI" "write -P 0x77 0 4k" "flush"
stop_export x7
echo "PASS"
