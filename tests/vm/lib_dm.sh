# shellcheck shell=bash
# lib_dm.sh - device-mapper helpers for the VM tests (tests/vm/test_*.sh);
# source it after lib.sh, lib_storage.sh and lib_fuse.sh.
#
# The guest's scratch disk ($DST_VM_DISK) is carved into dm-linear pieces
# (data disks, logs, replay targets), which dm-log-writes and dm-flakey sit
# on. On exit every dm device the test made is removed, after the daemons
# that hold them are stopped and the filesystems on them unmounted.

T_DMS=()     # dm device names, in the order made (removed in reverse)
DM_NEXT=2048 # next free sector of the scratch disk

# need_dm TARGET...: skip unless this kernel has these dm targets, the
# scratch disk exists and we are root.
need_dm() {
	local t have
	[ "$(id -u)" = 0 ] || skip "needs root (device-mapper): run it with tests/vm/run"
	[ -n "${DST_VM_DISK:-}" ] && [ -b "$DST_VM_DISK" ] || skip "no scratch disk: run it with tests/vm/run"
	need dmsetup
	have=$(dmsetup targets 2>&1) || skip "dmsetup targets: $have"
	for t in "$@"; do
		grep -q "^$t " <<<"$have" || skip "this kernel has no dm target $t"
	done
}

# dm_make NAME TABLE: dmsetup create NAME with TABLE; /dev/mapper/NAME.
dm_make() {
	local out
	out=$(dmsetup create "$1" --noudevsync --table "$2" 2>&1) ||
		fail "dmsetup create $1 '$2': $out"
	T_DMS+=("$1")
	[ -b "/dev/mapper/$1" ] || dmsetup mknodes "$1" >/dev/null 2>&1
	[ -b "/dev/mapper/$1" ] || fail "dmsetup create $1: no /dev/mapper/$1"
}

# dm_carve NAME BYTES: a piece of the scratch disk nobody used: zeroes,
# since tests/vm/run gives each VM a new sparse disk (a replay starts from
# the same blank state as the logged disk did). Zeroing it again would cost
# seconds per 100 MiB under TCG.
dm_carve() {
	local sectors=$(($2 / 512))
	[ $(($2 % 512)) -eq 0 ] || fail "dm_carve $1: $2 is not a multiple of 512"
	[ $((DM_NEXT + sectors)) -le "$(blockdev --getsz "$DST_VM_DISK")" ] ||
		fail "dm_carve $1: the scratch disk is full"
	dm_make "$1" "0 $sectors linear $DST_VM_DISK $DM_NEXT"
	DM_NEXT=$((DM_NEXT + sectors))
}

# dm_logwrites NAME DATA LOG: a dm-log-writes device over DATA logging to LOG.
dm_logwrites() {
	dm_make "$1" "0 $(blockdev --getsz "$2") log-writes $2 $3"
}

# dm_mark NAME MARK: a mark in the log of log-writes device NAME.
dm_mark() {
	dmsetup message "$1" 0 mark "$2" || fail "dmsetup message $1 0 mark $2"
}

# dm_remove NAME: remove it now (for a log-writes device: its log is then
# complete, with a last mark dm-log-writes-end).
dm_remove() {
	local i out
	for _ in $(seq 20); do
		out=$(dmsetup remove --noudevsync "$1" 2>&1) && break
		sleep 0.2
	done
	[ -z "$out" ] || grep -q 'already' <<<"$out" || ! dmsetup info "$1" >/dev/null 2>&1 ||
		fail "dmsetup remove $1: $out"
	for i in "${!T_DMS[@]}"; do
		[ "${T_DMS[i]}" = "$1" ] && unset 'T_DMS[i]'
	done
}

dm_cleanup() {
	local rc=$? m name pid i
	set +e
	for m in "${T_MOUNTS[@]}"; do
		is_mounted "$m" && { umount "$m" 2>/dev/null || umount -l "$m"; }
	done
	for name in "${T_EXPORTS[@]}"; do
		pid=$(export_pid "$name") || continue
		pid_alive "$pid" && kill_pid "$pid"
	done
	for ((i = ${#T_DMS[@]} - 1; i >= 0; i--)); do
		[ -n "${T_DMS[i]:-}" ] || continue
		dmsetup remove --noudevsync "${T_DMS[i]}" >/dev/null 2>&1 ||
			echo "   cleanup: dmsetup remove ${T_DMS[i]} failed"
	done
	(exit $rc)
	fuse_cleanup
}
trap dm_cleanup EXIT
