#!/usr/bin/env bash
# Both legs lost, then dstd restarted (two 16M file-backed legs): leg 0 is
# killed first, 1 MiB is written with leg 1 alone (acknowledged), then leg 1
# is killed too (DD). Leg 1 is now the only leg with every acknowledged
# write, and its header carries the higher generation. The storage is
# stopped, both exports come back, `dst start`: the mirror must take leg 1
# (the last leg in sync) as its source, not leg 0: the write made with leg 1
# alone reads back and ends up on both legs, the legs byte-identical.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
. "$TESTS_DIR/func/lib_mirror.sh"
need qemu-io nbdinfo

# leg_gen I: the generation in leg I's header (label: big-endian u64 at 64).
leg_gen() {
	python3 - "${LEG_IMG[$1]}" <<'EOF'
import os, struct, sys
with open(sys.argv[1], "rb") as f:
    f.seek(os.path.getsize(sys.argv[1]) - 4096)
    b = f.read(72)
print(struct.unpack(">Q", b[64:72])[0] if b[:8] == b"DSTLABL1" else -1)
EOF
}

step "mirror mz over two 16M exports; 0x11 over the first 8M"
mr_legs mz 16M 16M
mr_mirror mz
L0=${LEG_NODE[0]} L1=${LEG_NODE[1]}
qio "$M_URI" "write -P 0x11 0 8M" "flush"
mr_settle mz

step "kill -9 leg 0; write 0x22 at 0..1M with leg 1 alone; kill -9 leg 1"
leg_kill9 0
mr_wait mz health DA 5 "health after leg 0 died"
qio "$M_URI" "write -P 0x22 0 1M" "flush"
assert_file_pattern "${LEG_IMG[1]}" 0 $MiB 0x22 "the write on leg 1"
assert_file_pattern "${LEG_IMG[0]}" 0 $MiB 0x11 "leg 0 (dead) still has the old data"
leg_kill9 1
mr_wait mz health DD 5 "health after both legs died"
g0=$(leg_gen 0) g1=$(leg_gen 1)
note "header generations: leg 0 $g0, leg 1 $g1"
[ "$g1" -gt "$g0" ] || fail "leg 1's header generation ($g1) is not above leg 0's ($g0)"

step "dst stop mz; both exports back; dst start mz"
st_stop mz
leg_restart 0
leg_restart 1
mr_log_mark mz
st_start mz
M_PID=$ST_PID M_URI=$ST_URI
mr_wait mz health AA 20 "health after the restart"
note "log: $(tail -n +$((MR_LOG_MARK + 1)) "$DST_STATE_DIR/mz.log" | grep -E 'mirror' | cut -d' ' -f3- | tr '\n' '|')"

step "the write made with leg 1 alone is there (leg 1 was the last in sync)"
rc=0
qemu-io -f raw -r -c "read -P 0x22 0 1M" "$M_URI" >"$T_TMP/read.out" 2>&1 || rc=$?
if [ $rc -ne 0 ]; then
	cat "$T_TMP/read.out" >&2
	for i in 0 1; do
		file_pattern "${LEG_IMG[i]}" 0 $MiB 0x22 2>/dev/null && note "leg $i has 0x22" || note "leg $i lacks 0x22"
	done
	fail "an acknowledged write is lost: after both legs were lost and dstd restarted, the stale leg 0 was taken as the source"
fi
assert_file_pattern "${LEG_IMG[0]}" 0 $MiB 0x22 "leg 0 after the resync"
assert_file_pattern "${LEG_IMG[1]}" 0 $MiB 0x22 "leg 1 after the resync"
mr_legs_identical "after the restart"

step "stop"
st_stop mz
stop_export mz-leg0
stop_export mz-leg1
echo "PASS"
