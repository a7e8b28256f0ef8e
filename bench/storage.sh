# shellcheck shell=bash
# bench/storage.sh - sourced by bench/run.sh: the storage rows (issue 3).
#
# A 2-node linear dst storage of memory-backed export nodes, next to the same
# topology built from existing tools (nbdkit's nbd plugin proxying to nbdkit
# memory: 2 hops), next to a single nbdkit memory export (the nbdkit-mem column
# of the memory section, measured in the same run). All on loopback.
# Goals (issue 3): dst-storage >= 1.5x nbdkit-proxy on seq rows, >= 2.5x on
# 4K random rows, and >= 0.8x nbdkit-mem on 4K random read.
#
# CPU counts every process of the topology: storage daemon + both nodes for
# dst, proxy + backend for nbdkit.
#
# Uses from run.sh: $DST, $SIZE, $WORK, $DST_STATE_DIR, $DST_NAMES_FILE,
# free_port, track_pid, wait_pidfile, wait_nbd, start_dst, start_nbdkit, table.

# nbdkit nbd plugin (proxy) -> nbdkit memory $SIZE.
start_nbdkit_proxy() {
	local out bpid buri port pid uri
	out=$(start_nbdkit nbdkit-proxy-backend memory "$SIZE") || return 1
	read -r bpid buri <<<"$out"
	port=${buri##*:}
	out=$(start_nbdkit nbdkit-proxy nbd hostname=127.0.0.1 port="$port") || return 1
	read -r pid uri <<<"$out"
	echo "$pid,$bpid $uri"
}

# dst: two `dst export mem:` nodes of $SIZE/2 each, assembled by a linear
# storage served on its own port. Uses the CLI of issue 3
# (dst create/add/start); skipped until that exists.
start_dst_storage_available() { "$DST" create --help >/dev/null 2>&1; }
start_dst_storage_why() { echo "dst has no 'create' command yet"; }

start_dst_storage() {
	local half out p1 p2 u1 u2 port pid name=bench-storage
	half=$(($(numfmt --from=iec "$SIZE") / 2 / 1048576))M
	out=$(start_dst bench-node1 "mem:$half") || return 1
	read -r p1 u1 <<<"$out"
	out=$(start_dst bench-node2 "mem:$half") || return 1
	read -r p2 u2 <<<"$out"
	port=$(free_port)
	echo "$name" >>"$DST_NAMES_FILE"
	{
		"$DST" delete "$name" 2>/dev/null || true
		"$DST" create "$name" --alg linear &&
			"$DST" add "$name" --remote "$u1" &&
			"$DST" add "$name" --remote "$u2" &&
			"$DST" start "$name" --listen "127.0.0.1:$port"
	} >"$WORK/log/$name.out" 2>&1 || { cat "$WORK/log/$name.out" >&2; return 1; }
	pid=$(wait_pidfile "$DST_STATE_DIR/$name.pid") || return 1
	track_pid "$pid"
	wait_nbd "nbd://127.0.0.1:$port" "$pid" || return 1
	echo "$pid,$p1,$p2 nbd://127.0.0.1:$port"
}

# Entries for run.sh's server list: name, starter, prefill.
# shellcheck disable=SC2034 # used by run.sh
STORAGE_SERVERS=(
	"dst-storage start_dst_storage 1"
	"nbdkit-proxy start_nbdkit_proxy 1"
)

storage_table() {
	table "(c) 2-hop storage over memory nodes (nbdkit-mem: single hop, from (a))" \
		dst-storage nbdkit-proxy nbdkit-mem
}
