#!/usr/bin/env bash
# Clients that stall, against `dst export mem:...`:
# - a "deaf" client sends 600 reads of 64 KiB and never reads the replies;
#   another stops in the middle of a write's payload. Without any timeout,
#   a well-behaved client (qemu-io) still gets answers within a bound: the
#   deaf one waits at its own limits (256 requests, --client-budget) instead
#   of at the head of the server's queue, where it held up every client;
#   and a client that goes over its budget as soon as the queue lets it in
#   does not hold up those queued behind it;
# - with --idle-timeout 3, deaf and stalled clients are closed after 3 s
#   (asserted within a window), logged and counted, and every buffer and
#   request slot they held comes back; a write whose payload trickles in
#   slowly is not idle.
# run.sh: alone
. "$(dirname "$0")/lib.sh"
# shellcheck source=lib_limits.sh
. "$TESTS_DIR/func/lib_limits.sh"
need python3 qemu-io

MiB=1048576

step "export with --buffers 32M (client budget: a quarter, 8 MiB), no idle timeout"
start_export st mem:256M --buffers 32M
assert_eq "$(show_attr st mem/client_budget)" $((8 * MiB)) "mem/client_budget"
assert_eq "$(show_attr st limits/idle_timeout)" 0 "limits/idle_timeout"

step "a deaf client (600 reads of 64 KiB, replies never read) and a stalled write; qemu-io meanwhile"
bg nbd_load 127.0.0.1 "$PORT" deaf 1 600 64K 12 >"$T_TMP/deaf.out"
deaf=$BG_PID
bg nbd_load 127.0.0.1 "$PORT" stall 2 12 >"$T_TMP/stall.out"
stall=$BG_PID
sleep 2
inuse=$(show_attr st mem/buffer_in_use)
note "while they hold on: io/inflight $(show_attr st io/inflight), buffers in use $inuse"
assert_le "$inuse" $((8 * MiB + 2 * 64 * 1024)) "buffers held by the deaf client (its budget) and two stalled writes"
probe_loop 6 "$URI" "$T_TMP/probe"
probe_check "$T_TMP/probe" 3000 "qemu-io beside a deaf and two stalled clients"
bg_wait "$deaf" || fail "nbd_load deaf failed"
bg_wait "$stall" || fail "nbd_load stall failed"
note "deaf: $(cat "$T_TMP/deaf.out"); stall: $(cat "$T_TMP/stall.out")"
assert_eq "$(kv "$(cat "$T_TMP/deaf.out")" dropped)" 0 "deaf client closed without an idle timeout"
stop_export st

step "a client let in from the queue goes over its own budget: those queued behind it go on"
# The server's queue used to stop at such a client as if it were still
# short of buffers, and W waited until something else came back.
start_export qp mem:64M --buffers 32M --client-budget 24M
out=$(nbd_load 127.0.0.1 "$PORT" queue 5) || fail "nbd_load queue failed"
note "$out"
assert_eq "$(kv "$out" answered)" 1 "the read queued behind the paused client answered"
secs_le "$(kv "$out" secs)" 2 || fail "the queued read took $(kv "$out" secs) s"
stop_export qp

step "export with --idle-timeout 3"
start_export it mem:256M --buffers 32M --idle-timeout 3
assert_eq "$(show_attr it limits/idle_timeout)" 3 "limits/idle_timeout"
bg nbd_load 127.0.0.1 "$PORT" deaf 3 600 64K 10 >"$T_TMP/deaf.out"
deaf=$BG_PID
bg nbd_load 127.0.0.1 "$PORT" stall 3 10 >"$T_TMP/stall.out"
stall=$BG_PID
bg_wait "$deaf" || fail "nbd_load deaf failed"
bg_wait "$stall" || fail "nbd_load stall failed"
note "deaf: $(cat "$T_TMP/deaf.out"); stall: $(cat "$T_TMP/stall.out")"
# A deaf client may not even see the close (the server's FIN waits behind
# replies it does not read): count and time them in the server's log.
assert_eq "$(grep -c 'info: client .*: closed: idle timeout' "$DST_STATE_DIR/it.log")" 6 "'closed: idle timeout' lines in the log"
gaps=$(idle_gaps "$DST_STATE_DIR/it.log" | tr '\n' ' ')
note "seconds from ready to closed: $gaps"
for g in $gaps; do
	secs_le 2.9 "$g" || fail "a client was closed $g s after its handshake, before the 3 s idle timeout"
	secs_le "$g" 6 || fail "a client was closed $g s after its handshake (idle timeout 3 s)"
done
assert_eq "$(kv "$(cat "$T_TMP/stall.out")" dropped)" 3 "stalled clients that saw the close"
assert_eq "$(show_attr it clients_dropped)" 6 "clients_dropped"
assert_eq "$(show_attr it mem/buffer_in_use)" 0 "buffers in use once they are gone"
assert_eq "$(show_attr it io/inflight)" 0 "requests in flight once they are gone"

step "a client that keeps working is not idle"
run_ok "qemu-io, 5 s of reads" qemu-io -f raw -c 'read 0 4k' -c 'sleep 2000' -c 'read 0 4k' \
	-c 'sleep 2000' -c 'read 0 4k' "$URI"
assert_eq "$(show_attr it clients_dropped)" 6 "clients_dropped after a client 2 s between reads"
stop_export it

step "with --idle-timeout 1: a write whose payload trickles in for 4 s is not idle"
# The server asks not to be woken before up to 256 KiB of a payload are
# there (SO_RCVLOWAT); at 80 KB/s that takes longer than the timeout, so the
# idle check must look at the bytes held back, not only at its wake-ups.
start_export tr mem:64M --idle-timeout 1
out=$(nbd_load 127.0.0.1 "$PORT" trickle 320K 8K 0.1) || fail "nbd_load trickle failed"
note "$out"
assert_eq "$(kv "$out" dropped)" 0 "trickling client closed"
assert_eq "$(kv "$out" answered)" 1 "the trickled write answered"
assert_eq "$(kv "$out" match)" 1 "the trickled write read back"
assert_eq "$(show_attr tr clients_dropped)" 0 "clients_dropped"
stop_export tr
echo "PASS"
