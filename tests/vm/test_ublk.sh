#!/usr/bin/env bash
# The ublk device in a real kernel (run inside the VM by tests/vm/run; make
# vm-check):
#  1. a linear storage of a dst export and a local file, `dst start NAME
#     --ublk`: /dev/ublkbN of the storage's size, with its block sizes and
#     limits; ext4 on it with checksummed files; umount, dst stop deletes the
#     device; dst start (no --ublk: it is in the config) brings it back;
#     fsck clean, every file matches. dst stop is refused while the device
#     is mounted or open; dst detach --ublk and attach --ublk of the running
#     storage take the device away and give it back (as /dev/ublkb3).
#  2. a storage over a --readonly export: a read-only device, a write is
#     refused and reaches nothing.
#  3. bad input, one clear line each and nothing changed: a device number
#     in use by another storage; not root; no ublk driver (ublk_drv
#     unloaded, last). And a daemon killed with -9 in the middle of making
#     its device: the next start deletes the device that never started and
#     makes it again, or takes back the one that did.
# Outside a guest with ublk it skips. Files are on the guest's tmpfs /tmp.
. "$(dirname "$0")/../func/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
. "$TESTS_DIR/func/lib_fuse.sh"
. "$TESTS_DIR/vm/lib_knbd.sh"
. "$TESTS_DIR/vm/lib_ublk.sh"
need_ublk mkfs.ext4 fsck.ext4 python3 sha256sum setpriv
dmesg_mark

# ---------------------------------------------------------------------------
step "1. a linear storage of a dst export and a local file, dst start --ublk"
knbd_export na 48M
truncate -s $((16 * MiB + 4096)) "$T_TMP/local.img" || fail "truncate"
st_create ub linear
st_add ub --remote "$URI"
st_add ub --disk "$T_TMP/local.img"
ublk_start ub
DEV=${UBLK#/dev/}
assert_eq "$(blockdev --getsize64 "$UBLK")" $((64 * MiB)) "size of $UBLK"
assert_eq "$(blockdev --getss "$UBLK")" 512 "logical block size"
assert_eq "$(blockdev --getpbsz "$UBLK")" 4096 "physical block size"
assert_eq "$(<"/sys/block/$DEV/queue/max_sectors_kb")" 1024 "max_sectors_kb"
assert_eq "$(<"/sys/block/$DEV/queue/write_cache")" "write back" "write cache (flushes go to the nodes)"
assert_eq "$(<"/sys/block/$DEV/queue/fua")" 1 "FUA"
assert_eq "$(<"/sys/block/$DEV/queue/discard_max_bytes")" $((1024 * MiB)) "discard_max_bytes"
assert_eq "$(<"/sys/block/$DEV/queue/write_zeroes_max_bytes")" $((1024 * MiB)) "write_zeroes_max_bytes"
assert_eq "$(ls -d "/sys/block/$DEV/mq/"* | wc -l)" "$(snap ublk_queues)" "hardware queues"
assert_eq "$(snap ublk_recoveries)" 0 "ub/ublk_recoveries"
grep -q "ublk device $UBLK\$" "$T_TMP/start.out" ||
	fail "dst start did not name $UBLK: $(cat "$T_TMP/start.out")"

step "ext4 on $UBLK: files with checksums, umount"
ext4_mount "$UBLK"
write_tree "$MNT/tree" 40 "$T_TMP/tree.sha256"
run_ok "sync" sync
check_tree "$MNT/tree" "$T_TMP/tree.sha256"
run_fails "dst stop while $UBLK is mounted" "$DST" stop ub
assert_contains "$RUN_OUT" "$UBLK is mounted on $MNT" "the refusal"
run_ok "umount" umount "$MNT"
bg sleep 300 3<"$UBLK"
HOLDER=$BG_PID
run_fails "dst stop while $UBLK is open" "$DST" stop ub
assert_contains "$RUN_OUT" "$UBLK is open by sleep (pid $HOLDER)" "the refusal"
kill "$HOLDER"
wait "$HOLDER" 2>/dev/null
pid_alive "$ST_PID" || fail "ub's daemon died of a refused stop"
show_snap ub
[ "$(snap ublk_io/writes)" -gt 0 ] || fail "no writes counted on $UBLK"
[ "$(snap ublk_io/flushes)" -gt 0 ] || fail "no flushes counted on $UBLK (ext4's journal)"
assert_eq "$(snap ublk_io/errors)" 0 "ub/ublk_io/errors"
assert_eq "$(snap ublk_io/in_flight)" 0 "ub/ublk_io/in_flight"

step "dst stop deletes $UBLK; dst start brings it back with the files"
ublk_stop ub "$UBLK"
run_fails "mount of the deleted $UBLK" mount "$UBLK" "$MNT"
dst_ok start ub >"$T_TMP/start.out"
ST_PID=$(export_pid ub) || fail "no pid file for ub after the restart"
show_snap ub
assert_eq "$(snap ublk_device)" "$UBLK" "ub/ublk_device after the restart"
assert_eq "$(snap ublk_recoveries)" 0 "ub/ublk_recoveries (a new device, not taken back)"
run_ok "fsck.ext4 -f -n" fsck.ext4 -f -n "$UBLK"
run_ok "mount" mount "$UBLK" "$MNT"
check_tree "$MNT/tree" "$T_TMP/tree.sha256"
run_ok "umount" umount "$MNT"

step "dst detach --ublk of the running storage, dst attach --ublk 3"
dst_ok detach ub --ublk >/dev/null
[ ! -e "$UBLK" ] || fail "$UBLK is still there after dst detach --ublk"
grep -q '^ublk' "$DST_STATE_DIR/ub.conf" && fail "dst detach --ublk left ublk in the config"
[ -z "$(show_attr ub ublk_device)" ] || fail "dst show still names a ublk device"
out=$(dst_ok attach ub --ublk 3)
assert_contains "$out" /dev/ublkb3 "dst attach --ublk 3"
UBLK=/dev/ublkb3
assert_eq "$(blockdev --getsize64 "$UBLK")" $((64 * MiB)) "size of $UBLK"
grep -q '^ublk = 3$' "$DST_STATE_DIR/ub.conf" || fail "dst attach --ublk 3 did not save ublk = 3"
run_ok "mount" mount "$UBLK" "$MNT"
check_tree "$MNT/tree" "$T_TMP/tree.sha256"
run_ok "umount" umount "$MNT"
ublk_stop ub "$UBLK"
dmesg_clean "$UBLK" "ext4 on $UBLK across stop and start"

# ---------------------------------------------------------------------------
step "2. a storage over a --readonly export: a read-only device"
knbd_export ro 16M
RO_IMG=$IMG RO_PORT=$PORT
st_create ur linear
st_add ur --remote "$URI"
stop_export ro
dev_fill "$RO_IMG" 0 $((MiB)) 0x3c
dst_ok export "$RO_IMG" --name ro --listen "127.0.0.1:$RO_PORT" --readonly >/dev/null
ublk_start ur
assert_eq "$(blockdev --getro "$UBLK")" 1 "BLKROGET of $UBLK"
run_fails "a write to the read-only device" dd if=/dev/zero of="$UBLK" bs=64k count=1 \
	oflag=direct conv=notrunc status=none
has_patterns "the read-only device's data, and the node's file after the refused write" \
	"$UBLK:0:$((MiB)):0x3c" "$RO_IMG:0:$((MiB)):0x3c"
w=$(show_attr ur io/writes)
assert_eq "${w:-0}" 0 "writes that reached the read-only storage"
ublk_stop ur "$UBLK"
stop_export ro

# ---------------------------------------------------------------------------
step "3. bad input: a device number another storage has"
knbd_export nb 16M
st_create u1 linear
st_add u1 --remote "$URI"
truncate -s $((16 * MiB + 4096)) "$T_TMP/u2.img" || fail "truncate"
st_create u2 linear
st_add u2 --disk "$T_TMP/u2.img"
ublk_start u1 7
assert_eq "$UBLK" /dev/ublkb7 "u1's device"
cp "$DST_STATE_DIR/u2.conf" "$T_TMP/u2.conf.before"
run_fails "dst start u2 --ublk 7" "$DST" start u2 --ublk 7
assert_contains "$RUN_OUT" "ublk: device 7 is in use by another ublk server" "the refusal"
[ "$(grep -c 'ublk' <<<"$RUN_OUT")" -ge 1 ] || fail "no ublk line in: $RUN_OUT"
cmp -s "$DST_STATE_DIR/u2.conf" "$T_TMP/u2.conf.before" || fail "u2's config changed"
[ ! -e "$DST_STATE_DIR/u2.pid" ] || fail "u2 runs after the refusal"
assert_eq "$(show_attr u1 ublk_state)" live "u1's device after u2's refusal"
dd if=/dev/zero of=/dev/ublkb7 bs=64k count=4 oflag=direct status=none ||
	fail "u1's device does not take writes after u2's refusal"
ublk_stop u1 /dev/ublkb7

step "a daemon killed with -9 while it makes its device: the next start cleans up or takes it back"
bg "$DST" start u2 --ublk 9
START_PID=$BG_PID
for _ in $(seq 400); do
	[ -e /dev/ublkc9 ] && break
	sleep 0.02
done
[ -e /dev/ublkc9 ] || fail "u2's start made no /dev/ublkc9"
kill -9 "$(cat "$DST_STATE_DIR/u2.pid")" || fail "no daemon of u2 to kill"
bg_wait "$START_PID" && note "(u2's start finished before the kill)"
wait_gone "$(cat "$DST_STATE_DIR/u2.pid" 2>/dev/null || echo 0)" 10 || true
[ -e /dev/ublkc9 ] || fail "/dev/ublkc9 went away with its daemon"
ublk_start u2 9
assert_eq "$UBLK" /dev/ublkb9 "u2's device"
if grep -q "was left not started; making it again" "$DST_STATE_DIR/u2.log"; then
	note "killed before the device started: deleted and made again"
else
	grep -q "taking back /dev/ublkb9" "$DST_STATE_DIR/u2.log" ||
		fail "the second start neither remade nor took back /dev/ublkb9"
	note "killed after the device started: taken back"
fi
dev_fill "$UBLK" 0 $((MiB)) 0x6b
has_patterns "u2's device after the kill in its start" "$UBLK:0:$((MiB)):0x6b"
ublk_stop u2 "$UBLK"
cp "$DST_STATE_DIR/u2.conf" "$T_TMP/u2.conf.before"

step "not root: one line, nothing made"
# A storage of nobody's, in a directory of nobody's (the test's own is 0700).
NB_DIR=$(mktemp -d /tmp/dst-nobody.XXXXXX) || fail "mktemp"
chmod 755 "$NB_DIR"
chown 65534:65534 "$NB_DIR"
as_nobody() {
	DST_STATE_DIR=$NB_DIR/state setpriv --reuid=65534 --regid=65534 --clear-groups "$@"
}
as_nobody truncate -s $((16 * MiB + 4096)) "$NB_DIR/un.img" || fail "truncate as nobody"
as_nobody "$DST" create un --alg linear >/dev/null || fail "dst create as nobody"
as_nobody "$DST" add un --disk "$NB_DIR/un.img" >/dev/null || fail "dst add as nobody"
rc=0
out=$(as_nobody "$DST" start un --ublk 2>&1) || rc=$?
[ $rc -ne 0 ] || fail "dst start --ublk as nobody succeeded"
assert_contains "$out" "/dev/ublk-control: Permission denied (ublk needs root)" \
	"the refusal as nobody"
[ ! -e "$NB_DIR/state/un.pid" ] || fail "un runs after the refusal"
grep -q '^ublk' "$NB_DIR/state/un.conf" && fail "the refused --ublk was saved in un's config"
[ ! -e /dev/ublkb0 ] || fail "a ublk device was made for nobody"
note "as nobody: $(grep ublk <<<"$out" | head -1)"
rm -rf "$NB_DIR"

step "no ublk driver: one line, nothing changed"
run_ok "rmmod ublk_drv" rmmod ublk_drv
run_fails "dst start u2 --ublk without ublk_drv" "$DST" start u2 --ublk
assert_contains "$RUN_OUT" "no ublk driver in this kernel" "the refusal"
assert_contains "$RUN_OUT" "modprobe ublk_drv" "the refusal"
cmp -s "$DST_STATE_DIR/u2.conf" "$T_TMP/u2.conf.before" || fail "u2's config changed"
[ ! -e "$DST_STATE_DIR/u2.pid" ] || fail "u2 runs after the refusal"
stop_export nb
check_log "$DST_STATE_DIR/ub.log"
echo "PASS"
