#!/usr/bin/env bash
# A storage started before its nodes (as at boot, before the hosts of its
# nodes are up). alg_linear over two 8M exports, the second one stopped:
# `dst start` succeeds and warns which node is not up yet, the node's state
# says connecting, IO to the first node's range is served, and writes and
# reads to the missing node's range wait. A blank disk on the node's port
# (no label of this storage) is refused, as is a disk too small; IO goes on
# waiting. When the right export starts, the waiting IO completes and the
# data checks, through the storage and on the node's own disk. A node never
# up fails its IO after io-timeout, and still joins when it comes. Then a
# mirror started with one leg down: started with the same warning, serves,
# and takes the leg back when its export starts.
. "$(dirname "$0")/lib.sh"
. "$TESTS_DIR/func/lib_storage.sh"
need qemu-io nbdcopy

# wait_state NAME NODE STATE SECONDS
wait_state() {
	local got
	for _ in $(seq $(($4 * 5))); do
		got=$(show_attr "$1" "$2/state")
		[ "$got" = "$3" ] && return 0
		sleep 0.2
	done
	log_tail "$DST_STATE_DIR/$1.log" 10 >&2
	fail "$1/$2/state is '$got' after $4 s, expected '$3'"
}

# restart_on_port NAME IMG PORT: dst export IMG again on the node's port.
restart_on_port() {
	local rc=0
	for _ in $(seq 20); do
		rc=0
		"$DST" export "$2" --name "$1" --listen "127.0.0.1:$3" >/dev/null 2>"$T_TMP/dst.err" || rc=$?
		check_stderr "$T_TMP/dst.err" "dst export $1"
		[ $rc -eq 0 ] && break
		grep -q "Address already in use" "$T_TMP/dst.err" || break
		sleep 0.25
	done
	[ $rc -eq 0 ] || { cat "$T_TMP/dst.err" >&2; fail "dst export $2 on port $3"; }
	track_export "$1"
}

step "storage boot: alg_linear over b0 (8M) + b1 (8M); b1's export stopped"
st_export b0 8M
B0=$URI
st_export b1 8M
B1=$URI B1_IMG=$IMG B1_PORT=$PORT
st_create boot linear --io-timeout 60
st_add boot --remote "$B0"
st_add boot --remote "$B1"
stop_export b1
printf '\x55%.0s' $(seq 1048576) | dd of="$B1_IMG" bs=1M seek=2 conv=notrunc status=none ||
	fail "write b1's image"

step "dst start: succeeds, warns that n-16384 is not up yet"
PORT=$(free_port)
out=$("$DST" start boot --listen "127.0.0.1:$PORT" 2>&1) || fail "dst start with a node down: $out"
track_export boot
note "$(printf '%s\n' "$out" | grep warning)"
assert_contains "$out" "warning: node n-16384 ($B1) is not up yet" "dst start's warning"
URI_BOOT=nbd://127.0.0.1:$PORT
assert_eq "$(show_attr boot n-16384/state)" connecting "n-16384/state before its export starts"
assert_eq "$(show_attr boot n-0/state)" up "n-0/state"

step "IO to n-0 is served; IO to n-16384 waits"
qio "$URI_BOOT" "write -P 0x61 0 1M" "read -P 0x61 0 1M"
# A write that crosses into the missing node, and a copy into its range.
bg qemu-io -f raw -c "write -P 0x63 $((8 * MiB - 65536)) 131072" "$URI_BOOT" >"$T_TMP/cross.out"
CROSS=$BG_PID
# And nbdcopy reading the whole storage: 1M of 0x55 that b1 held before.
bg nbdcopy "$URI_BOOT" "$T_TMP/whole.img"
COPY=$BG_PID
bg qemu-io -f raw -c "write -P 0x62 $((12 * MiB)) 2M" -c "read -P 0x62 $((12 * MiB)) 2M" "$URI_BOOT" >"$T_TMP/writer.out"
WRITER=$BG_PID
sleep 1
pid_alive "$WRITER" || fail "the write to the missing node's range did not wait"
pid_alive "$CROSS" || fail "the write across into the missing node did not wait"
assert_ge "$(show_attr boot n-16384/waiting)" 1 "requests waiting for n-16384"

step "a blank disk on the node's port is refused; IO goes on waiting"
truncate -s $((8 * MiB + 4096)) "$T_TMP/blank.img"
restart_on_port blank "$T_TMP/blank.img" "$B1_PORT"
wait_state boot n-16384 foreign 15
assert_contains "$(show_attr boot n-16384/error)" "label" "n-16384/error on a disk without its label"
pid_alive "$WRITER" || fail "IO to the node's range went to a disk without its label"
stop_export blank

step "a disk too small on the node's port is refused"
truncate -s 4M "$T_TMP/small.img"
restart_on_port small "$T_TMP/small.img" "$B1_PORT"
for _ in $(seq 50); do
	case $(show_attr boot n-16384/error) in *"expects"*) break ;; esac
	sleep 0.2
done
assert_contains "$(show_attr boot n-16384/error)" "has $((4 * MiB)) bytes but the storage expects" "n-16384/error on a small disk"
pid_alive "$WRITER" || fail "IO to the node's range went to a disk too small"
stop_export small

step "b1's export starts: the waiting IO completes, the data checks"
restart_on_port b1 "$B1_IMG" "$B1_PORT"
wait_state boot n-16384 up 15
bg_wait "$WRITER" || fail "the write + read that waited for n-16384 failed"
bg_wait "$CROSS" || fail "the write across into n-16384 failed"
bg_wait "$COPY" || fail "nbdcopy reading the whole storage failed"
assert_file_pattern "$T_TMP/whole.img" $((10 * MiB)) $MiB 0x55 "what nbdcopy read of n-16384's range"
assert_file_pattern "$T_TMP/whole.img" 0 $MiB 0x61 "what nbdcopy read of n-0's range"
qio "$URI_BOOT" "read -P 0x61 0 1M" "read -P 0x62 $((12 * MiB)) 2M" \
	"read -P 0x63 $((8 * MiB - 65536)) 131072"
assert_node_pattern "$B1" $((4 * MiB)) $((2 * MiB)) 0x62 "the waiting write reached b1's disk"
assert_node_pattern "$B1" 0 65536 0x63 "the crossing write's second half reached b1's disk"
assert_node_pattern "$B0" $((8 * MiB - 65536)) 65536 0x63 "the crossing write's first half on b0"
st_stop boot

step "io-timeout holds for a node never up: IO fails with EIO after it, the node still joins later"
st_export l0 4M
L0=$URI L0_IMG=$IMG L0_PORT=$PORT
st_create late linear --io-timeout 2
st_add late --remote "$L0"
stop_export l0
# io-timeout counts from when the node was first found down (the start),
# as from when a node is lost.
t0=$(date +%s%3N)
st_start late
rc=0
out=$(timeout 20 qemu-io -f raw -c "read 0 4096" "$ST_URI" 2>&1) || rc=$?
ms=$(($(date +%s%3N) - t0))
note "a read from the node never up failed $ms ms after dst start: $out"
assert_contains "$out" "Input/output error" "a read past io-timeout"
assert_ge "$ms" 1950 "ms from dst start until the read failed (io-timeout 2)"
assert_le "$ms" 8000 "ms from dst start until the read failed (io-timeout 2)"
assert_eq "$(show_attr late n-0/state)" failed "n-0/state past io-timeout"
restart_on_port l0 "$L0_IMG" "$L0_PORT"
wait_state late n-0 up 15
qio "$(show_attr late uri)" "write -P 0x44 0 64K" "read -P 0x44 0 64K"
st_stop late
stop_export l0

step "mirror started with one leg down: starts, warns, serves, takes the leg back"
st_export m0 8M
M0=$URI
st_export m1 8M
M1=$URI M1_IMG=$IMG M1_PORT=$PORT
st_create mir mirror --assume-clean
st_add mir --remote "$M0"
st_add mir --remote "$M1"
st_start mir
st_stop mir
stop_export m1
out=$("$DST" start mir 2>&1) || fail "dst start of a mirror with a leg down: $out"
track_export mir
assert_contains "$out" "warning: node n-" "dst start's warning for the mirror"
assert_contains "$out" "($M1) is not up yet" "the warning names the leg's URI"
MURI=$(st_uri mir)
bg qemu-io -f raw -c "write -P 0x71 1M 2M" -c "read -P 0x71 1M 2M" "$MURI" >"$T_TMP/mw.out"
MW=$BG_PID
restart_on_port m1 "$M1_IMG" "$M1_PORT"
bg_wait "$MW" || fail "IO to the mirror started with a leg down"
for _ in $(seq 100); do
	[ "$(show_attr mir health)" = AA ] && break
	sleep 0.2
done
assert_eq "$(show_attr mir health)" AA "the mirror's health once the leg is back"
assert_node_pattern "$M1" $((1 * MiB)) $((2 * MiB)) 0x71 "the leg that came back got the writes"
st_stop mir
stop_export m0
stop_export m1
stop_export b0
stop_export b1
echo "PASS"
