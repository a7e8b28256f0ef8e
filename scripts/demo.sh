#!/usr/bin/env bash
# demo.sh - `make demo`: a storage over two export nodes, end to end.
#
# Two export nodes serve sparse files on loopback; the original DST command
# line builds an alg_linear storage over them; qemu-io writes a pattern
# across the node boundary through the storage; reading each node directly
# shows where the bytes landed. Where FUSE can be used, the storage also
# appears as a file (-f), which shows the same bytes. Everything runs in a
# temp dir and is stopped and removed at the end.
set -euo pipefail

cd "$(dirname "$0")/.."
BIN=${DST_BUILD:-build}
DST="$BIN/dst"
[ -x "$DST" ] || { echo "demo: $DST not built; run 'make' first" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/dst-demo.XXXXXX")
export DST_STATE_DIR="$WORK/state"
PIDS=()

cleanup() {
	set +e
	for name in storage node0 node1; do
		"$DST" stop "$name" --force >/dev/null 2>&1
	done
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null
	done
	rm -rf "$WORK"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

# Two free loopback ports.
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
P0=$(free_port)
P1=$(free_port)
while [ "$P1" = "$P0" ]; do P1=$(free_port); done

step "Two export nodes, each serving a sparse 64 MiB file (and 4 KiB for the node's label) on 127.0.0.1"
truncate -s $((64 * 1024 * 1024 + 4096)) "$WORK/disk0.img" "$WORK/disk1.img"
run "$DST" export "$WORK/disk0.img" --name node0 --listen 127.0.0.1:$P0
run "$DST" export "$WORK/disk1.img" --name node1 --listen 127.0.0.1:$P1
PIDS+=("$(cat "$DST_STATE_DIR/node0.pid")" "$(cat "$DST_STATE_DIR/node1.pid")")

# -f PATH: the storage as a file over FUSE (the seed's /dev/dst, here in the
# temp dir), where /dev/fuse is there and usable.
DEV="$WORK/dst"
F=(-f "$DEV")
[ -r /dev/fuse ] && [ -w /dev/fuse ] || F=()

step "Build 'storage' with alg_linear, the original DST way"
run "$DST" -n storage -A alg_linear "${F[@]}" -a 127.0.0.1 -p $P0
run "$DST" -n storage -A alg_linear "${F[@]}" -a 127.0.0.1 -p $P1 -R
PIDS+=("$(cat "$DST_STATE_DIR/storage.pid")")
URI="nbd+unix:///?socket=$DST_STATE_DIR/storage.sock"

step "Write a pattern through the storage, across the node boundary"
# 64 MiB - 512 KiB .. 64 MiB + 512 KiB: half on node0, half on node1.
OFF=$((64 * 1024 * 1024 - 512 * 1024))
run qemu-io -f raw "$URI" -c "write -P 0xd5 $OFF 1M" -c flush
run qemu-io -f raw "$URI" -c "read -P 0xd5 $OFF 1M"

step "Read each node directly: where did the bytes land?"
echo "node0, its last 512 KiB (storage bytes $OFF..):"
run qemu-io -f raw "nbd://127.0.0.1:$P0" -c "read -P 0xd5 $((64 * 1024 * 1024 - 512 * 1024)) 512k"
echo "node1, its first 512 KiB:"
run qemu-io -f raw "nbd://127.0.0.1:$P1" -c "read -P 0xd5 0 512k"
echo "node1 right after the pattern is still empty:"
run qemu-io -f raw "nbd://127.0.0.1:$P1" -c "read -P 0 512k 512k"
echo "allocation map of node1 (the rest of its file is a hole, but for its label in the last 4 KiB):"
run nbdinfo --map "nbd://127.0.0.1:$P1"

if [ ${#F[@]} -gt 0 ]; then
	step "The storage as a file (FUSE): the same bytes at the same offset"
	run ls -l "$DEV"
	run od -A d -t x1 -j $OFF -N 16 "$DEV"
fi

step "At a glance: dst status (exit 0 healthy, 1 degraded, 2 failed or stopped)"
run "$DST" status

step "A few of its Prometheus metrics (dst metrics; --metrics-listen serves them over HTTP)"
printf '$ %s metrics storage | grep ...\n' "$DST"
"$DST" metrics storage | grep -E '^dst_(storage_written_bytes_total|storage_ops_total\{.*op="write"|node_up)'

step "The storage, as dst show prints it"
run "$DST" show storage

step "Stop everything"
run "$DST" stop storage
run "$DST" stop node0
run "$DST" stop node1
PIDS=()
echo
echo "demo finished: the storage put the first half of the write on node0 and the second on node1."
