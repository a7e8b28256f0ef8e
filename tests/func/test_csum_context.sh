#!/usr/bin/env bash
# The dst:csum-4k metadata context of a dst export, seen by clients nobody
# here wrote (nbdinfo, libnbd's python binding): listed, and each 4 KiB
# block's status its CRC32C as computed independently (tests/tools/
# csum4k.py), on a file (holes, data, a short last block, more than the
# per-request cap) and on a memory disk written through NBD; odd offsets
# and lengths, REQ_ONE, and base:allocation still right beside it. dst's
# own client: a mirror's legs ask for it (dst show NODE/csum), a linear
# storage's node does not, and a leg that comes back as nbdkit on the same
# port loses it.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
. "$TESTS_DIR/func/lib_mirror.sh"
need nbdinfo qemu-io nbdkit
need_nbdpy

CSUM="python3 $TESTS_DIR/tools/csum4k.py"

# check_map URI IMAGE: the whole map of dst:csum-4k against IMAGE's bytes.
check_map() {
	local n
	nbdinfo --map=dst:csum-4k --json "$1" >"$T_TMP/map.json" || fail "nbdinfo --map=dst:csum-4k $1 failed"
	n=$($CSUM map "$2" <"$T_TMP/map.json") || fail "dst:csum-4k map of $1 is wrong"
	note "dst:csum-4k: $n extents, every block's sum right"
	MAP_EXTENTS=$n
}

step "a 9 MiB + 100 file: holes, data, data across the 4 MiB cap, a short last block"
img=$T_TMP/disk.img
truncate -s $((9 * MiB + 100)) "$img"
for at in 0 $((256 * 1024)) $((4 * MiB - 8192)) $((7 * MiB + 4096 * 3)); do
	head -c 65536 /dev/urandom | dd of="$img" bs=4096 seek=$((at / 4096)) conv=notrunc status=none
done
head -c 100 /dev/urandom | dd of="$img" bs=1 seek=$((9 * MiB)) conv=notrunc status=none
start_export csum "$img"
FILE_URI=$URI

step "nbdinfo lists the context"
info=$(nbdinfo "$FILE_URI") || fail "nbdinfo failed"
assert_contains "$info" "dst:csum-4k" "nbdinfo's contexts"
assert_contains "$info" "base:allocation" "nbdinfo's contexts"
list=$(nbdinfo --list "$FILE_URI") || fail "nbdinfo --list failed"
assert_contains "$list" "dst:csum-4k" "nbdinfo --list"

step "nbdinfo --map=dst:csum-4k: every block's CRC32C, runs merged"
check_map "$FILE_URI" "$img"
# 4 data ranges of 16 random blocks, the 4 zero runs between them and
# after, a short last block: 64 + 4 + 1.
assert_eq "$MAP_EXTENTS" 69 "extents of the file's map"
text=$(nbdinfo --map=dst:csum-4k "$FILE_URI") || fail "nbdinfo --map text failed"
first=$(awk 'NR == 1 { print $1, $2, $3 }' <<<"$text")
# The first extent is the first random block alone; its status is its sum.
want=$(python3 -c '
import sys; sys.path.insert(0, sys.argv[1]); import csum4k
print(0, 4096, csum4k.crc32c(open(sys.argv[2], "rb").read(4096)))' "$TESTS_DIR/tools" "$img")
assert_eq "$first" "$want" "first extent in nbdinfo's text map"
assert_contains "$(log_tail "$DST_STATE_DIR/csum.log" 50)" "dst:csum-4k" "the export's log names the context"

step "libnbd: odd offsets and lengths, REQ_ONE, beyond the cap, both contexts"
run_ok "csum4k.py probe" "$NBDPY" "$TESTS_DIR/tools/csum4k.py" probe "$img" "$FILE_URI"
note "$(tail -2 "$T_TMP/run.out" | tr '\n' ' ')"

step "nbdinfo --map (base:allocation) is unchanged: data where written, holes elsewhere"
map=$(nbdinfo --map "$FILE_URI") || fail "nbdinfo --map failed"
data=$(awk '$3 == 0 { s += $2 } END { print s + 0 }' <<<"$map")
assert_ge "$data" $((4 * 65536)) "bytes reported as data"
assert_le "$data" $((4 * 65536 + 4 * MiB)) "bytes reported as data"
assert_contains "$map" "hole,zero" "base:allocation's holes"

step "a write changes the sums of exactly its blocks"
run_ok "qemu-io write" qemu-io -f raw -c "write -P 0x5a $((2 * MiB + 100)) 5000" "$FILE_URI"
check_map "$FILE_URI" "$img"
# Blocks 512 and 513 now differ from the zeroes around them: two more
# extents and one more zero run.
assert_eq "$MAP_EXTENTS" 72 "extents after a write of two blocks"

step "the file out of the page cache: its blocks read through the request's buffer"
python3 -c '
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)' "$img" || fail "fadvise DONTNEED on $img"
check_map "$FILE_URI" "$img"
assert_eq "$MAP_EXTENTS" 72 "extents read from the disk"

step "a memory disk written through NBD"
start_export csummem mem:5M
MEM_URI=$URI
head -c $((5 * MiB)) /dev/zero >"$T_TMP/mem.img"
head -c 200000 /dev/urandom | dd of="$T_TMP/mem.img" bs=1 seek=777777 conv=notrunc status=none
"$NBDPY" - "$MEM_URI" "$T_TMP/mem.img" <<'PY' || fail "writing the memory disk failed"
import sys, nbd
data = open(sys.argv[2], "rb").read()
h = nbd.NBD(); h.connect_uri(sys.argv[1])
h.pwrite(data[777777:977777], 777777)
h.shutdown()
PY
check_map "$MEM_URI" "$T_TMP/mem.img"
run_ok "csum4k.py probe (mem)" "$NBDPY" "$TESTS_DIR/tools/csum4k.py" probe "$T_TMP/mem.img" "$MEM_URI"

stop_export csum
stop_export csummem

step "a mirror's legs negotiate it; a linear storage's node does not ask"
mr_legs cm 4M 4M
mr_mirror cm
for i in 0 1; do
	assert_eq "$(show_attr cm "${LEG_NODE[i]}/csum")" dst:csum-4k "${LEG_NODE[i]}/csum"
done
assert_contains "$(cat "$DST_STATE_DIR/cm.log")" "offers checksums (dst:csum-4k)" "the mirror's log"
assert_contains "$(cat "$DST_STATE_DIR/cm-leg0.log")" "ready (read-write, structured replies, base:allocation, dst:csum-4k)" \
	"the leg's log of what the mirror negotiated"
st_export lin 4M
st_create ln linear
st_add ln --remote "$URI"
st_start ln --listen "127.0.0.1:$(free_port)"
assert_eq "$(show_attr ln n-0/csum)" "" "a linear storage's node/csum (not asked)"
assert_not_contains "$(cat "$DST_STATE_DIR/lin.log")" "dst:csum-4k" "the linear node's export log"
st_stop ln

step "leg 1 comes back as nbdkit on its port: no checksums any more"
stop_export "${LEG_EXPORT[1]}" --force
bg nbdkit -f -i 127.0.0.1 -p "${LEG_PORT[1]}" file "${LEG_IMG[1]}"
mr_wait cm "${LEG_NODE[1]}/csum" "none (verify and resync read its data)" 20 "leg 1 as nbdkit"
assert_eq "$(show_attr cm "${LEG_NODE[0]}/csum")" dst:csum-4k "${LEG_NODE[0]}/csum"
assert_contains "$(cat "$DST_STATE_DIR/cm.log")" "offers no checksums (no dst:csum-4k)" "the mirror's log"
st_stop cm
echo PASS
