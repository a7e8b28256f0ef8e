# shellcheck shell=bash
# lib_ublk.sh - helpers for the VM tests of the ublk device (test_ublk*.sh);
# source it after lib.sh, lib_storage.sh, lib_fuse.sh and lib_knbd.sh (its
# free_port, knbd_export, show_snap/snap, blk_fio_verify, dmesg_*):
#
#   . "$(dirname "$0")/../func/lib.sh"
#   . "$TESTS_DIR/func/lib_storage.sh"
#   . "$TESTS_DIR/func/lib_fuse.sh"
#   . "$TESTS_DIR/vm/lib_knbd.sh"
#   . "$TESTS_DIR/vm/lib_ublk.sh"

# need_ublk TOOLS...: skip unless this is a guest with ublk (root, the
# ublk_drv driver) and the tools are there.
need_ublk() {
	[ "$(id -u)" = 0 ] || skip "needs root (ublk, mount): run it with tests/vm/run"
	[ -e /dev/ublk-control ] ||
		skip "no /dev/ublk-control (this kernel has no ublk): run it with tests/vm/run"
	need blockdev "$@"
}

# ublk_start NAME [dst start options]: dst start NAME --ublk [options],
# tracked for the cleanup. Sets ST_PID and UBLK (the device, /dev/ublkbN),
# which is there with the storage's size.
ublk_start() {
	local name=$1 rc=0
	shift
	"$DST" start "$name" --ublk "$@" >"$T_TMP/start.out" 2>"$T_TMP/start.err" || rc=$?
	check_stderr "$T_TMP/start.err" "dst start $name --ublk"
	[ $rc -eq 0 ] || {
		cat "$T_TMP/start.err" >&2
		fail "dst start $name --ublk $* exited with status $rc"
	}
	track_export "$name"
	ST_PID=$(export_pid "$name") || fail "no pid file for $name"
	show_snap "$name"
	UBLK=$(snap ublk_device)
	[ -b "$UBLK" ] || fail "$name: ublk_device '$UBLK' is not a block device"
	assert_eq "$(snap ublk_state)" live "$name/ublk_state"
	assert_eq "$(blockdev --getsize64 "$UBLK")" "$(($(snap size) * 512))" "size of $UBLK"
	note "storage $name on $UBLK (pid $ST_PID)"
}

# ublk_stop NAME DEV: dst stop; the daemon is gone, its log clean and the
# device deleted.
ublk_stop() {
	stop_export "$1"
	[ ! -e "$2" ] || fail "$2 is still there after dst stop $1"
	[ ! -e "/sys/block/${2#/dev/}" ] || fail "/sys/block/${2#/dev/} is still there after dst stop $1"
}

# ublk_queues_grew BEFORE AFTER WHAT: two values of ublk_io/queue_requests
# (one count per queue, space separated; the device's ublk_queues of them):
# every queue's count grew from BEFORE to AFTER.
ublk_queues_grew() {
	local -a b a
	local i
	read -ra b <<<"$1"
	read -ra a <<<"$2"
	[ ${#a[@]} -ge 2 ] || fail "$3: queue_requests '$2' has fewer than 2 queues"
	assert_eq ${#b[@]} ${#a[@]} "$3: number of queues in queue_requests"
	for i in "${!a[@]}"; do
		assert_ge "${a[$i]}" $((${b[$i]} + 1)) "$3: requests of queue $i ($1 -> $2)"
	done
}
