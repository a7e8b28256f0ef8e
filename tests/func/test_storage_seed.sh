#!/usr/bin/env bash
# The seed's original command line: the DST example sequence
#   dst -n storage -A alg_linear -f /dev/dst -a ADDR -p P1
#   dst -n storage -A alg_linear -f /dev/dst -a ADDR -p P2 -R
# builds and starts a storage over two export nodes; data goes through it
# and lands on the nodes; `dst -n storage -A alg_linear -f /dev/dst -D`
# stops and deletes it (no config left, daemon gone). Also -d/-s/-S, -r, -b
# and -h. -f PATH is a FUSE file in the test's temp dir instead of /dev/dst
# (the machine's /dev is not ours to write in); without /dev/fuse the test
# goes on without -f.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
need qemu-io nbdinfo fio

step "two export nodes"
st_export kano 16M
P1=$PORT K_URI=$URI K_IMG=$IMG
st_export via 8M
P2=$PORT V_URI=$URI V_IMG=$IMG

DEV=$T_TMP/dst
F=(-f "$DEV")
if [ ! -c /dev/fuse ]; then
	note "no /dev/fuse: the seed commands run without -f"
	F=()
fi
# A failure with the storage still up must not leave its FUSE mount behind
# (the daemon is stopped by PID, which unmounts; this is the safety net).
seed_cleanup() {
	local rc=$?
	mountpoint -q "$DEV" 2>/dev/null && umount -l "$DEV"
	(exit $rc)
	st_cleanup
}
trap seed_cleanup EXIT

step "dst -h"
out=$("$DST" -h 2>&1) || fail "dst -h exited non-zero"
assert_contains "$out" "-n NAME" "dst -h"
assert_contains "$out" "-R" "dst -h"

step "dst -n storage -A alg_linear -f DEV -a 127.0.0.1 -p P1"
out=$(dst -n storage -A alg_linear "${F[@]}" -a 127.0.0.1 -p "$P1") || fail "first seed command failed"
note "$out"
[ -f "$DST_STATE_DIR/storage.conf" ] || fail "no storage.conf after the first command"
[ ! -e "$DST_STATE_DIR/storage.pid" ] || fail "the storage started without -R"
assert_eq "$(show_attr storage alg)" alg_linear "storage/alg"

step "dst -n storage -A alg_linear -f DEV -a 127.0.0.1 -p P2 -R"
out=$(dst -n storage -A alg_linear "${F[@]}" -a 127.0.0.1 -p "$P2" -R) || fail "second seed command failed"
note "$out"
track_export storage
SPID=$(export_pid storage) || fail "no pid file after -R"
pid_alive "$SPID" || fail "storage daemon not running after -R"
S_URI=$(st_uri storage)
assert_eq "$S_URI" "nbd+unix:///?socket=$DST_STATE_DIR/storage.sock" "storage/uri"
assert_eq "$(show_attr storage n-0/type)" "R: 127.0.0.1:$P1" "storage/n-0/type"
assert_eq "$(show_attr storage n-32768/type)" "R: 127.0.0.1:$P2" "storage/n-32768/type"
assert_eq "$(show_attr storage nodes)" "sectors (start [size]): 0 [32768] | 32768 [16384]" "storage/nodes"
assert_eq "$(dev_size "$S_URI")" $((24 * MiB)) "size"
if [ ${#F[@]} -gt 0 ]; then
	assert_eq "$(show_attr storage fuse)" "$DEV" "storage/fuse records -f"
	assert_eq "$(stat -c %s "$DEV")" $((24 * MiB)) "size of the FUSE file -f made"
fi

step "fio verify through it"
st_fio_verify "$S_URI" 2 12M || fail "fio verify through the seed-built storage"

step "write and read through it; the bytes land on kano then via"
qio "$S_URI" "write -P 0x6b 0 4k" "write -P 0x6c $((16 * MiB - 4096)) 8k" "write -P 0x6d $((24 * MiB - 4096)) 4k" "flush" \
	"read -P 0x6b 0 4k" "read -P 0x6c $((16 * MiB - 4096)) 8k" "read -P 0x6d $((24 * MiB - 4096)) 4k"
assert_node_pattern "$K_URI" 0 4096 0x6b "start of kano"
assert_node_pattern "$K_URI" $((16 * MiB - 4096)) 4096 0x6c "end of kano"
assert_node_pattern "$V_URI" 0 4096 0x6c "start of via"
assert_node_pattern "$V_URI" $((8 * MiB - 4096)) 4096 0x6d "end of via"

if [ ${#F[@]} -gt 0 ]; then
	step "the FUSE file reads what was written through NBD"
	assert_file_pattern "$DEV" $((16 * MiB - 4096)) 8192 0x6c "FUSE file across the node boundary"
fi

step "dst -n storage -A alg_linear -f DEV -D: stopped and deleted"
out=$(dst -n storage -A alg_linear "${F[@]}" -D) || fail "dst ... -D exited with status $?"
note "$out"
wait_gone "$SPID" 10 || fail "the storage daemon (pid $SPID) is still running after -D"
[ ! -e "$DST_STATE_DIR/storage.conf" ] || fail "storage.conf left after -D"
[ ! -e "$DST_STATE_DIR/storage.pid" ] || fail "storage.pid left after -D"
[ ! -e "$DST_STATE_DIR/storage.sock" ] || fail "storage.sock left after -D"
check_log "$DST_STATE_DIR/storage.log"
run_fails "dst show of the deleted storage" "$DST" show storage
if [ ${#F[@]} -gt 0 ]; then
	! mountpoint -q "$DEV" || fail "the FUSE file is still mounted after -D"
	assert_eq "$(stat -c %s "$DEV")" 0 "the FUSE file left after -D (an empty mount point)"
fi
# The nodes were not touched by the delete.
assert_file_pattern "$K_IMG" 0 4096 0x6b "kano's data after -D"

step "-d DISK with -s/-S, -b, -r, then -R and -D of a stopped storage"
truncate -s 4M "$T_TMP/d0.img" "$T_TMP/d1.img"
dst_ok -n st2 -A alg_linear -d "$T_TMP/d0.img" -S 4096 >/dev/null
dst_ok -n st2 -d "$T_TMP/d1.img" -s 4096 -S 2048 -b 16 >/dev/null
# (Each disk's label is in its last 4 KiB, past the node's data.)
ID='id=[0-9a-f]{32}'
grep -Eqx "node = disk start=0 size=4096 label=4190208 $ID $T_TMP/d0.img" "$DST_STATE_DIR/st2.conf" ||
	fail "-d -S: first node line"
grep -Eqx "node = disk start=4096 size=2048 label=4190208 $ID $T_TMP/d1.img" "$DST_STATE_DIR/st2.conf" ||
	fail "-d -s -S: second node line"
grep -qx "backlog = 16" "$DST_STATE_DIR/st2.conf" || fail "-b 16 not recorded"
dst_ok -n st2 -d "$T_TMP/d1.img" -r >/dev/null
! grep -q "d1.img" "$DST_STATE_DIR/st2.conf" || fail "-r left the node in st2.conf"
dst_ok -n st2 -a 127.0.0.1 -p "$P2" -R >/dev/null
track_export st2
assert_eq "$(show_attr st2 nodes)" "sectors (start [size]): 0 [4096] | 4096 [16384]" "st2/nodes"
assert_eq "$(dev_size "$(st_uri st2)")" $(((4096 + 16384) * 512)) "st2 size"
P=$(export_pid st2)
dst_ok stop st2 >/dev/null
wait_gone "$P" 10 || fail "st2 still running"
dst_ok -n st2 -D >/dev/null
[ ! -e "$DST_STATE_DIR/st2.conf" ] || fail "st2.conf left after -D of a stopped storage"

stop_export kano
stop_export via
echo "PASS"
